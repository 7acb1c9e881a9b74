# jobrelay: the two commands are `make run` and `make test`; both set the environment up from nothing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_VERSION := $(shell cat .python-version)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

# Python 3.13 (the Lambda runtime's version): pyenv's, selected by .python-version, else one on PATH.
PYTHON313 := $(or $(shell pyenv which python3.13 2>/dev/null),$(shell command -v python3.13 2>/dev/null),$(wildcard $(HOME)/.pyenv/versions/$(PYTHON_VERSION)/bin/python3.13))

.PHONY: help run test lint unit integration e2e fuzz bench build clean

help:
	@echo "make run    start the local stack (HTTP API on http://127.0.0.1:3000, moto, vendor sandbox)"
	@echo "           options: make run ARGS='--port 3001 --profile test' (python -m devstack --help lists them)"
	@echo "make test   lint the code (ruff, mypy), the template and the state machine, then run the whole test suite"
	@echo "make fuzz   fuzz every API route against the local stack far longer than make test does"
	@echo "           (1,000 examples per route and mode instead of 40, about 45 min; FUZZ_EXAMPLES=5000 for more)"
	@echo "make bench  run the benchmarks and print their figures"
	@echo "make build  sam build (needs the AWS SAM CLI and python3.13 on PATH)"

# The environment: the pinned packages, then the `jobrelay` command (cli/, .venv/bin/jobrelay) installed
# editable, without its dependencies (pinned in requirements/dev.txt) or an isolated build (setuptools is
# pinned there too). pyproject.toml declares the command, so a change to it installs it again.
$(STAMP): requirements/dev.txt layers/jobrelay/requirements.txt pyproject.toml
	@if [ -z "$(PYTHON313)" ]; then \
	  echo "Python 3.13 was not found. Install it first, for example:"; \
	  echo "    pyenv install $(PYTHON_VERSION)      (this repo's .python-version selects it)"; \
	  echo "or your system's python3.13 package, then run make again."; exit 1; fi
	@[ -x $(PY) ] || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@touch $@

# ARGS passes options to the stack: make run ARGS='--port 3001 --profile test' (python -m devstack --help).
run: $(STAMP)
	$(PY) -m devstack $(ARGS)

lint: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/ruff check layers functions devstack bench cli tests
	$(VENV)/bin/ruff format --check layers functions devstack bench cli tests
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml
	npx --no-install asl-validator --json-path statemachines/job.asl.json

test: lint
	$(PY) -m pytest

unit integration e2e: $(STAMP)
	$(PY) -m pytest tests/$@

# The fuzz test of make test (tests/e2e/test_api_fuzz.py) with many more examples, new ones each run;
# no per-test timeout, since a route at this many examples runs for minutes.
fuzz: $(STAMP)
	JOBRELAY_FUZZ_EXAMPLES=$(or $(FUZZ_EXAMPLES),1000) $(PY) -m pytest tests/e2e/test_api_fuzz.py --timeout=0

bench: $(STAMP)
	$(PY) -m bench

build:
	sam build

clean:
	rm -rf $(VENV) node_modules .aws-sam .pytest_cache
