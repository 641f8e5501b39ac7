# One target per developer task. `make run` and `make test` work on a fresh
# Debian machine with Python 3.11+: they create the environment first.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint security bench env assets clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==0.13.9"

env: $(UV)
	$(UV) sync --frozen

assets:
	npm ci --no-audit --no-fund --silent

run: env assets
	$(BIN)/doorstep serve

test: env assets security
	bash scripts/test-deps.sh
	$(BIN)/pytest

# bandit over the packages and pip-audit over uv.lock; pip-audit needs PyPI.
security: env
	bash scripts/security-checks.sh

bench: env assets
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(TOOLS) node_modules var
