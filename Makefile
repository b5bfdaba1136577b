# Stratus: the two commands of the README, and the pieces they are made of.
#   make aio        deploy the all-in-one cloud on this machine and boot a demo server
#   make test       install the test dependencies and run lint and the whole test suite
#   make test-fast  unit tests only
#   make venv       the project's virtualenv .venv (the package, editable, with its test extra)
#   make lint       ruff (src, tests, benchmarks, plugins), mypy, lint-imports (the import
#                   layers in pyproject.toml), ansible-lint

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
ANSIBLE_ARGS ?=

.PHONY: aio test test-fast lint unit integration e2e deps test-deps venv clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# What `make aio` needs: Ansible and the OpenStack client.
$(VENV)/.aio-deps: $(BIN)/python
	$(BIN)/pip install --quiet "ansible-core>=2.19,<2.20" python-openstackclient
	touch $@

# The package in editable mode with its test extra (pytest, httpx, the
# OpenStack client, ansible-core, ruff, mypy, ansible-lint).
$(VENV)/.test-deps: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.test-deps

deps:
	./scripts/install-aio-deps.sh

test-deps:
	./scripts/install-test-deps.sh

# site.yml deploys the cloud, demo.yml boots the server `demo` and prints its
# addresses and its console's ready line.
aio: deps $(VENV)/.aio-deps
	$(BIN)/ansible-playbook -i inventories/aio playbooks/site.yml $(ANSIBLE_ARGS)
	$(BIN)/ansible-playbook -i inventories/aio playbooks/demo.yml $(ANSIBLE_ARGS)
	@echo
	@echo "Stratus is up. Try:  $(BIN)/openstack --os-cloud stratus server list"

lint: $(VENV)/.test-deps
	$(BIN)/ruff check src tests benchmarks plugins
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/ansible-lint
	VENV=$(VENV) ./scripts/sanity.sh

test: test-deps $(VENV)/.test-deps
	$(MAKE) lint
	STRATUS_REQUIRE_POSTGRES=1 $(BIN)/pytest tests $(PYTEST_ARGS)

test-fast: $(VENV)/.test-deps
	$(BIN)/pytest -m unit tests $(PYTEST_ARGS)

unit: test-fast

integration: test-deps $(VENV)/.test-deps
	$(BIN)/pytest -m integration tests $(PYTEST_ARGS)

e2e: test-deps $(VENV)/.test-deps
	$(BIN)/pytest -m e2e tests $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
