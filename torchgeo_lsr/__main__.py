"""``python -m torchgeo_lsr``: the command-line interface."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())  # the subcommand's status: 2 for bad input, as the console script
