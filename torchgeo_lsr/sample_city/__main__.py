"""``python -m torchgeo_lsr.sample_city``: the same as ``torchgeo-lsr sample-city``."""

import sys

from .cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
