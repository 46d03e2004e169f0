# wa-gateway — `make run` starts it, `make test` runs the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test test-fast lint bench soak test-deps clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP) $@

run: $(STAMP)
	$(BIN)/python -m gateway

# What the tests need from Debian: chromium's headless shell for the browser tests (never a downloaded
# browser; the full chromium too, for CHROMIUM=/usr/bin/chromium), wrk for the
# bench smoke test, node for the Node webhook-verification snippet of API.md, ffmpeg for media conversion,
# and PostgreSQL + nats-server for the cluster tests (the tests use the machine's running servers when they
# answer on 5432/4222, else start throwaway ones from these binaries: tests/support/services.py).
test-deps:
	@{ command -v chromium && command -v chromium-headless-shell && command -v wrk && command -v node && command -v ffmpeg && \
	   { command -v nats-server || test -x /usr/sbin/nats-server; } && ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    chromium chromium-headless-shell wrk nodejs ffmpeg postgresql nats-server >/dev/null; }

# The gates, in the order a change fails them fastest: formatting, lint, types (strict on gateway/),
# then the import layers (lint-imports: the next line of this recipe). `make test` runs them first.
lint: $(TEST_STAMP)
	$(BIN)/python -m ruff format --check .
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy
	$(BIN)/lint-imports

# The whole suite: unit and in-process HTTP tests, live-server tests (WebSocket, raw sockets), the real
# process (e2e), the browser pages and the benchmark smoke tests. Spread over TEST_WORKERS processes
# (pytest-xdist): most tests wait on sockets, processes and the browser, so 4 workers on 2 cores keep
# both cores busy where 2 left a quarter of them idle. The workers take tests one at a time, the ones
# that start processes first (tests/conftest.py), so no long test is left to finish alone at the end.
# TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 4
test: lint test-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS)

# Quick iteration: no gates, no browser, no real-process (e2e) tests, no benchmark smoke.
FAST_MARKERS := not e2e and not browser and not bench
test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) -m "$(FAST_MARKERS)"

bench: $(TEST_STAMP)
	$(BIN)/python -m bench

soak: $(TEST_STAMP)
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
