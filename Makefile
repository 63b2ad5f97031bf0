# AUGANE: the two entry points of the README.
#   make demo   run the whole workflow on the embedded default (config/config.yaml)
#   make test   run the test suite
# Both create or update the virtual environment in .venv first; a second run
# reuses it (the stamp is rebuilt only when pyproject or the constraints change).

SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.augane-installed
CORES ?= 2

# glibc returns large blocks to the kernel eagerly by default; keeping them
# mapped speeds up eager PyTorch on CPU considerably.
export MALLOC_MMAP_THRESHOLD_ ?= 4294967296
export MALLOC_TRIM_THRESHOLD_ ?= 68719476736
export MALLOC_TOP_PAD_ ?= 1073741824

.PHONY: demo test venv lint clean-results

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e ".[test,bench]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) all

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/snakemake --lint

clean-results:
	rm -rf results .snakemake
