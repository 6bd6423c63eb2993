"""Shared fixtures of the reliability suite: a small city, a fast map budget, the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from torchgeo_lsr.sample_city import make_sample_city

HERE = Path(__file__).parent
if str(HERE) not in sys.path:  # reliability_helpers and killer, importable by the tests
    sys.path.insert(0, str(HERE))

#: A map budget that trains through 3 epochs of 40 steps (checkpoints at 30, 60, 90).
MAP_CONFIG = """\
steps: 120
patch_size: 64
batch_size: 4
num_filters: 8
num_layers: 3
window: 128
accelerator: cpu
"""


@pytest.fixture(scope="session")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 128 px tiles of the sample city (read-only for the tests)."""
    root = tmp_path_factory.mktemp("reliability") / "city"
    make_sample_city(root, seed=0, tiles=2, size=128, progress=False)
    return root


@pytest.fixture(scope="session")
def map_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "map.yaml"
    path.write_text(MAP_CONFIG)
    return path
