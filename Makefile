# torchgeo-lsr: every target sets itself up (creates the venv, installs) on a fresh machine.
#   make test                     tests on $(PYTHON) (default python3) in $(VENV)
#   make demo                     the main job on generated data
#   make lint                     ruff + mypy
#   make notebooks                run notebooks/*.ipynb with full settings into notebooks/executed/
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

.PHONY: help install test test-slow lint demo bench notebooks docs clean

help:
	@echo "make test    run the test suite (creates $(VENV) from $(PYTHON) if needed)"
	@echo "make demo    run the demo on generated data"
	@echo "make lint    ruff + mypy"
	@echo "make bench   every benchmark with --quick, then benchmarks/RESULTS.md"
	@echo "make notebooks  run notebooks/*.ipynb with full settings; executed copies in notebooks/executed/"
	@echo "make docs    the documentation site (API + user guide) into docs/_build/html; warnings are errors"

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

# The main job on the generated sample city: build the prior from its NLCD, OSM and
# footprints, train QR on the prior (no hi-res label), map every tile, score against the
# city's labels. Rerunning resumes (finished stages are reused).
demo: $(VENV)/.installed
	$(BIN)/torchgeo-lsr map --out $(DEMO_DIR) --config configs/map/demo.yaml
	@echo "demo: maps in $(DEMO_DIR)/q.vrt and $(DEMO_DIR)/r.vrt, quicklook $(DEMO_DIR)/quicklook.png,"
	@echo "      scores in $(DEMO_DIR)/summary.json (the sample city is in $(DEMO_DIR)/region)"

# Every benchmark with --quick on this machine, then the tables of benchmarks/RESULTS.md
# from their JSON (--quick forms: each under 10 min on 2 cores; full_tile's first run also
# generates its 3,500 x 3,000 px region into benchmarks/.cache, a few minutes more).
BENCHES := sampling priors mapping sample_city chesapeake raleigh negative_labels rankings \
	training full_tile workers
bench: $(VENV)/.installed
	mkdir -p benchmarks/results
	for b in $(BENCHES); do \
	    echo "== benchmarks/$$b.py --quick"; \
	    $(BIN)/python benchmarks/$$b.py --quick --out benchmarks/results/$${b}_quick.json || exit 1; \
	done
	$(BIN)/python benchmarks/report.py

# The notebooks with full settings (`make test` runs them with LSR_NOTEBOOK_QUICK=1); the
# executed copies, outputs and all, go to notebooks/executed/ (ignored by git). A notebook
# whose data is absent (03_real_naip: TORCHGEO_LSR_CHESAPEAKE) is skipped with the reason.
notebooks: $(VENV)/.installed
	env -u LSR_NOTEBOOK_QUICK $(BIN)/python tests/test_notebooks.py notebooks/executed

# The documentation site: the API from the docstrings (autodoc + napoleon) and the user
# guide (docs/*.md, MyST), into docs/_build/html. Every warning is an error, an unresolved
# cross-reference included (nitpicky); -E reads every page afresh, so a page that warned
# once cannot pass unread on the next run.
$(VENV)/.docs-installed: $(VENV)/.installed setup.cfg
	$(BIN)/python -m pip install -q -e '.[docs]' 2>&1 | $(QUIET_PIP)
	touch $@

docs: $(VENV)/.docs-installed
	$(BIN)/python -m sphinx -b html -E -n -W --keep-going docs docs/_build/html

clean:
	rm -rf build *.egg-info .pytest_cache .mypy_cache .ruff_cache $(DEMO_DIR)
