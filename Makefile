# The documented way to do everything. `make test` and `make bench` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: install test test-fast lint format typecheck bench bench-full microbench clean

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

lint: install  ## ruff (lint and format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install  ## the concurrent-writer benchmark, quick mode (about a minute)
	$(BIN)/python -m livermore_cache.bench --mode quick

bench-full: install  ## every writer count and contestant
	$(BIN)/python -m livermore_cache.bench --mode full

microbench: install  ## validate+encode and decode against the standard library's json
	$(BIN)/python -m pytest tests/test_microbench.py --benchmark-only --benchmark-enable

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis dist build
