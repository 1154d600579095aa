# queue-scaler. `make help` lists the targets; `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
# Nothing here may reach a real AWS endpoint: tests and the demo use moto on 127.0.0.1.
export AWS_ACCESS_KEY_ID ?= testing
export AWS_SECRET_ACCESS_KEY ?= testing

.PHONY: help setup test lint typecheck unit demo clean bench-worker

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@set -e; py=$$(scripts/find-python.sh); \
	  echo "setup: creating $(VENV) with $$py"; \
	  "$$py" -m venv $(VENV); \
	  $(PY) -m pip install --quiet --upgrade pip; \
	  $(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

setup: $(STAMP) ## Create .venv (Python 3.12) with the project and its dev tools

lint: $(STAMP) ## ruff, and mypy (strict on layers/core)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/core/queue_scaler $(wildcard functions) devkit workers/queue_worker
	$(VENV)/bin/hadolint workers/Dockerfile
	$(VENV)/bin/shellcheck workers/*.sh

test: lint ## Lint, type-check and run every test suite (the README's test command)
	$(VENV)/bin/pytest

unit: $(STAMP) ## Unit tests only (no sockets, fast)
	$(VENV)/bin/pytest tests/unit

demo: $(STAMP) ## Run the scaler locally on an in-process AWS emulator: a burst, scale-out from zero, scale-in
	$(VENV)/bin/queue-scaler demo

bench-worker: $(STAMP) ## Messages per second: the worker against a one-at-a-time consumer, same moto server
	$(PY) -m devkit.bench_worker

clean: ## Remove environments and build output
	rm -rf $(VENV) .aws-sam out .pytest_cache .mypy_cache .ruff_cache
