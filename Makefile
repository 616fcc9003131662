# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
RUNSTAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit dev bench reliability clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(RUNSTAMP)

run: $(RUNSTAMP)
	$(BIN)/taskq serve

# The AWS path without Docker: a local moto endpoint, `taskq init`, `taskq serve` (aws).
dev: $(STAMP)
	$(BIN)/python -m scripts.dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

test: lint typecheck
	$(BIN)/python -m pytest

# All seven benchmarks (about 15 minutes); writes docs/benchmarks.md.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# Delivery guarantees against real processes (sqlite, and aws on a moto server);
# long runs, several minutes. Writes docs/reliability.md.
reliability: $(STAMP)
	$(BIN)/python scripts/reliability.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
