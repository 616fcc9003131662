# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
RUNSTAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit dev bench reliability clean promtool browser redis

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

# promtool (Debian's prometheus package) checks docs/prometheus/; installed when it is
# missing and we are root (CI here), else its tests skip. A failed install is no error.
promtool:
	@command -v promtool >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus >/dev/null 2>&1 || \
		  { apt-get update -q >/dev/null 2>&1 && \
		    DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus >/dev/null 2>&1; }; } || \
		echo "promtool could not be installed: its tests skip"

# Chromium and its driver (Debian's chromium, chromium-driver) for the dashboard's
# browser tests; installed when missing and we are root (CI here), else those tests
# skip with the reason. A failed install is no error.
browser:
	@{ command -v chromedriver >/dev/null 2>&1 && \
	   { command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; }; } || \
		[ "$$(id -u)" != 0 ] || \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
		  { apt-get update -q >/dev/null 2>&1 && \
		    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }; } || \
		echo "chromium could not be installed: the browser tests skip"

# redis-server (Debian's redis-server package) for benchmark 15, Celery on Redis beside
# the engine; installed when missing and we are root, else that benchmark says why it
# did not run. A failed install is no error.
redis:
	@command -v redis-server >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null 2>&1 || \
		  { apt-get update -q >/dev/null 2>&1 && \
		    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null 2>&1; }; } || \
		echo "redis-server could not be installed: the Celery benchmark is skipped"

# Three pytest workers on two cores, a test file each at a time: the e2e files spend
# much of their time waiting on the servers and processes they start, so a third worker
# fills the gaps (5,191 tests: 7 min 27 s with three, 9 min 15 s with two, same machine,
# same hour; the CPU was 154% busy with three).
test: lint typecheck promtool browser redis
	$(BIN)/python -m pytest -n 3 --dist loadfile

# Every benchmark (about 15 minutes); writes docs/benchmarks.md, and the raw figures to
# docs/benchmarks.json (`python -m benchmarks.run --from-json docs/benchmarks.json` renders
# the report again without running anything).
bench: $(STAMP) redis
	$(BIN)/python -m benchmarks.run --json docs/benchmarks.json

# Delivery guarantees against real processes (sqlite, and aws on a moto server);
# long runs, several minutes. Writes docs/reliability.md.
reliability: $(STAMP)
	$(BIN)/python scripts/reliability.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
