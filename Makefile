# queue-scaler. `make help` lists the targets; `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# What `make transform` writes: the tests/contract input and the local cloud's roles.
TRANSFORMED := .aws-sam/contract/templates.json
# Steps that can print nothing for minutes (pip --quiet, mypy, SAM, a long e2e test) say what they do,
# that they still run after 20 s of silence, and how long they took (scripts/keepalive.py).
KEEPALIVE := python3 scripts/keepalive.py
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
# Nothing here may reach a real AWS endpoint: tests and the demo use moto on 127.0.0.1.
export AWS_ACCESS_KEY_ID ?= testing
export AWS_SECRET_ACCESS_KEY ?= testing

.PHONY: build-x86_64 help setup test lint typecheck unit demo bench bench-features bench-worker clean tools validate build transform lock mutate generate

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# The locked runtime dependencies first (layers/core/requirements.txt): the tests run on exactly
# the versions the layer and the worker image ship.
$(STAMP): pyproject.toml layers/core/requirements.txt
	@set -e; py=$$(scripts/find-python.sh); \
	  echo "setup: creating $(VENV) with $$py"; \
	  "$$py" -m venv $(VENV); \
	  $(KEEPALIVE) "setup: upgrading pip" $(PY) -m pip install --quiet --upgrade pip; \
	  $(KEEPALIVE) "setup: installing the locked runtime dependencies" \
	    $(PY) -m pip install --quiet --require-hashes -r layers/core/requirements.txt; \
	  $(KEEPALIVE) "setup: installing the project and its dev tools" $(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

setup: $(STAMP) ## Create .venv (Python 3.12) with the project and its dev tools

lint: $(STAMP) ## ruff, and mypy (strict on layers/core)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(KEEPALIVE) mypy -- $(VENV)/bin/mypy layers/core/queue_scaler $(wildcard functions) devkit workers/queue_worker
	$(VENV)/bin/hadolint workers/Dockerfile
	$(VENV)/bin/shellcheck workers/*.sh

# pytest-xdist spreads the tests over every core (-n auto); tests that share the checkout's own state
# folders are kept on one worker by their xdist_group (--dist loadgroup). Each tier names its slowest tests.
PYTEST_ARGS ?= -n auto --dist loadgroup --durations=8
# One tier after another, each on every core, so that each says how long it took (README, "Tests").
TEST_TIERS := unit functional contract e2e
test: lint validate build transform ## Lint, validate and build the templates, run every test suite (the README's test command)
	@set -e; for tier in $(TEST_TIERS); do \
	  $(KEEPALIVE) "pytest tests/$$tier" -- $(VENV)/bin/pytest $(PYTEST_ARGS) tests/$$tier; \
	done

unit: $(STAMP) ## Unit tests only (no sockets, fast)
	$(VENV)/bin/pytest tests/unit

# The local cloud takes its roles from the transformed templates: a fresh clone makes them first, and
# an edit of a template remakes them (the local cloud refuses a stale copy, naming it).
demo: $(STAMP) $(TRANSFORMED) ## The whole system on the local cloud: a burst across plans, scale-out from zero, DLQ refunds, drain
	$(VENV)/bin/queue-scaler demo

# The templates' generated parts (devkit/templategen.py): run after changing what they are made from
# (queue_scaler.scaling.config.RECOMMENDED); tests/unit/tooling/test_templategen.py fails until then.
generate: $(STAMP) ## Write the templates' generated parts (the pools' recommended policy) from their sources
	$(PY) -m devkit.templategen

# Mutation testing (devkit/mutation.py, mutmut): slow, so not part of `make test`. MUTATE_ARGS narrows it:
# "--sample 40 --seed 1", "--changed main", "--paths layers/core/queue_scaler/scaling/domain/decision.py".
MUTATE_ARGS ?=
mutate: $(STAMP) ## Mutation testing of each area's domain/ and services/, the worker, the ledger adapter; report in out/mutation (MUTATE_ARGS="--changed main")
	$(PY) -m devkit.mutation $(MUTATE_ARGS)

bench: $(STAMP) ## The simulator's scenarios (built-in and held-out) under queue-scaler and its peers (plots in out/bench, tables into docs/benchmark.md), then the worker's
	$(VENV)/bin/queue-scaler bench --plots out/bench --write-doc docs/benchmark.md
	$(PY) -m devkit.bench_worker

bench-features: $(STAMP) ## The feature scenarios (schedule, forecast; days of simulated time each): not in make bench
	$(VENV)/bin/queue-scaler bench --plots out/bench $(addprefix --scenario ,$(shell cat devkit/sim/scenarios/features/SUITE))

bench-worker: $(STAMP) ## Messages per second: the worker against a one-at-a-time consumer, same moto server
	$(PY) -m devkit.bench_worker

# The layer's and the worker image's dependencies, every version pinned with the hashes of all its
# files (arm64 wheels included): `sam build` and workers/Dockerfile install exactly these. Needs the
# package index; run it after changing layers/core/requirements.in.
lock: $(STAMP) ## Re-resolve layers/core/requirements.in into the hashed lock layers/core/requirements.txt
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	  --output-file layers/core/requirements.txt layers/core/requirements.in

clean: ## Remove environments and build output
	rm -rf $(VENV) $(TOOLS) .aws-sam .sam-cli out .mutate .localcloud .localcloud-demo .pytest_cache .mypy_cache .ruff_cache

# --- Deployment tooling: SAM CLI, cfn-lint, checkov, shellcheck -------------------------------------
# Their own environment: SAM CLI pins boto3, click and (through aws-sam-translator) pydantic~=2.13,
# which would drag the project's .venv back or make pip backtrack SAM CLI (../shared/TOOLCHAIN.md).
TOOLS       ?= .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
SAM         := $(TOOLS)/bin/sam
TEMPLATES   := template.yaml $(wildcard templates/*.yaml)
SHELL_SCRIPTS := $(wildcard scripts/*.sh workers/*.sh) .ci/run
# checkov: --skip-download keeps it offline (it otherwise fetches guideline links from its vendor).
# SAM writes its own state (telemetry id, caches) under the checkout, not in the home directory.
export __SAM_CLI_APP_DIR := $(CURDIR)/.sam-cli

$(TOOLS_STAMP): requirements-tools.txt
	@set -e; py=$$(scripts/find-python.sh); \
	  echo "tools: creating $(TOOLS) with $$py"; \
	  "$$py" -m venv $(TOOLS); \
	  $(KEEPALIVE) "tools: upgrading pip" $(TOOLS)/bin/python -m pip install --quiet --upgrade pip; \
	  $(KEEPALIVE) "tools: installing SAM CLI, cfn-lint, checkov, shellcheck" \
	    $(TOOLS)/bin/python -m pip install --quiet -r requirements-tools.txt
	@touch $@

tools: $(TOOLS_STAMP) ## Create .venv-tools (SAM CLI, cfn-lint, checkov, shellcheck)

validate: $(TOOLS_STAMP) ## sam validate --lint, cfn-lint and checkov on every template, shellcheck on shell scripts
	$(KEEPALIVE) sam-validate -- $(SAM) validate --lint --template template.yaml
	$(KEEPALIVE) cfn-lint -- $(TOOLS)/bin/cfn-lint $(TEMPLATES)
	$(KEEPALIVE) checkov -- $(TOOLS)/bin/checkov --quiet --compact --skip-download --framework cloudformation $(addprefix -f ,$(TEMPLATES))
	$(TOOLS)/bin/shellcheck $(SHELL_SCRIPTS)

# No container: sam build installs python3.12 arm64 wheels itself, and needs python3.12 on PATH.
build: $(TOOLS_STAMP) ## sam build with Python 3.12, without Docker
	@set -e; py=$$(scripts/find-python.sh); \
	  PATH="$$(dirname "$$py"):$$PATH" $(KEEPALIVE) sam-build -- $(SAM) build --template template.yaml

# For `sam local invoke` on an x86_64 host without emulation: the same stack built for x86_64 from a
# generated copy of the template (never deployed: the stack is arm64).
build-x86_64: $(TOOLS_STAMP) ## sam build for x86_64 into .aws-sam/build-x86_64, for local invokes on x86 hosts
	python3 scripts/arch-template.py x86_64
	@set -e; py=$$(scripts/find-python.sh); \
	  PATH="$$(dirname "$$py"):$$PATH" $(KEEPALIVE) sam-build-x86_64 -- $(SAM) build \
	    --template template.x86_64.yaml --build-dir .aws-sam/build-x86_64

# The contract tests (tests/contract) read the transformed templates this writes. The translation
# runs in .venv-tools because aws-sam-translator pins pydantic~=2.13, below the project's pydantic.
# A real file target: remade when a template (or the script) is newer than it.
transform: $(TRANSFORMED) ## Translate the SAM templates to CloudFormation JSON for tests/contract and the local cloud

$(TRANSFORMED): $(TOOLS_STAMP) $(TEMPLATES) scripts/transform-templates.py
	$(KEEPALIVE) transform -- $(TOOLS)/bin/python scripts/transform-templates.py --out $(@D)
