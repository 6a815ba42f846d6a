# neuralops: the two commands of the README, on a fresh machine.
#   make demo   create .venv if missing, install, run the end-to-end quickstart on CPU
#   make test   same set-up, then the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-all lint format bench krypy-venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python setup.cfg pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/neuralops demo quickstart --out demo_out

test: install
	$(BIN)/python -m pytest -q

test-all: install
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint: install
	$(BIN)/ruff check neuralops tests benchmarks
	$(BIN)/ruff format --check neuralops tests benchmarks

format: install
	$(BIN)/ruff format neuralops tests benchmarks

bench: install
	$(BIN)/python benchmarks/run.py

# krypy's RecyclingGmres (a column of benchmarks/skr.py) needs numpy < 2: its own pinned venv
krypy-venv:
	$(PYTHON) -m venv .venv-krypy
	.venv-krypy/bin/python -m pip install --quiet "numpy==1.26.4" "scipy==1.11.4" "krypy==2.2.0"

clean:
	rm -rf demo_out .pytest_cache build *.egg-info
