# torchgeo-lsr: every target sets itself up (creates the venv, installs) on a fresh machine.
#   make test                     tests on $(PYTHON) (default python3) in $(VENV)
#   make demo                     the main job on generated data
#   make lint                     ruff + mypy
#   make test PYTHON=python3.12 VENV=.venv-3.12    another Python line
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
DEMO_DIR ?= demo_out

# This machine's pip config lists local index folders that do not all exist; hide that noise.
QUIET_PIP := { grep -v '^WARNING: Location' || true; }

.PHONY: help install test test-slow lint demo clean

help:
	@echo "make test    run the test suite (creates $(VENV) from $(PYTHON) if needed)"
	@echo "make demo    run the demo on generated data"
	@echo "make lint    ruff + mypy"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test]' 2>&1 | $(QUIET_PIP)
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(BIN)/python -c 'import sys, torch, torchgeo, lightning; print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, torchgeo {torchgeo.__version__}, lightning {lightning.__version__}")'
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: $(VENV)/.installed
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check torchgeo_lsr
	$(BIN)/mypy

# Until `torchgeo-lsr map` lands (issue 5), the demo is the smallest real thing that
# exists: QR training on the checked-in generated region, then its validation scores.
demo: $(VENV)/.installed
	@echo "demo: QR training on the generated test region (tests/data/tiny); the one-command"
	@echo "      city map (torchgeo-lsr map) is not built yet, this is the training step it will use."
	rm -rf $(DEMO_DIR)
	$(BIN)/torchgeo-lsr fit --config configs/tiny.yaml --config configs/demo.yaml \
	    --trainer.default_root_dir $(DEMO_DIR)
	$(BIN)/torchgeo-lsr validate --config configs/tiny.yaml --config configs/demo.yaml \
	    --trainer.default_root_dir $(DEMO_DIR) --ckpt_path $(DEMO_DIR)/checkpoints/last.ckpt
	@echo "demo: model checkpoint in $(DEMO_DIR)/checkpoints/last.ckpt"

clean:
	rm -rf build *.egg-info .pytest_cache .mypy_cache .ruff_cache $(DEMO_DIR)
