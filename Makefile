# Stratus: the two commands of the README, and the pieces they are made of.
#   make aio        deploy the all-in-one cloud on this machine and boot a demo server
#   make test       install the test dependencies and run lint and the whole test suite
#   make test-fast  unit tests only
#   make venv       the project's virtualenv .venv (the package, editable, with its test extra)
#   make tempest    Tempest's smoke tests against the cloud of /etc/stratus (make aio's);
#                   TEMPEST_ARGS='--regex tempest.api.network' for another set (docs/tempest.md)
#   make lint       ruff (src, tests, benchmarks, plugins), mypy, lint-imports (the import
#                   layers in pyproject.toml), ansible-lint
#   make collection the installable collection dist/stratus-cloud-<version>.tar.gz, carrying
#                   the stratus package (scripts/build-collection.sh, docs/collection.md)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
ANSIBLE_ARGS ?=

.PHONY: aio test test-fast lint unit integration e2e deps test-deps venv clean-venv tempest collection test-molecule

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

# scripts/run-tests.sh: tests/e2e first (but molecule), then molecule's two scenarios and the
# unit tests beside the integration and guest-image tests (none deploys onto this host).
test: test-deps $(VENV)/.test-deps
	$(MAKE) lint
	STRATUS_REQUIRE_POSTGRES=1 VENV=$(VENV) ./scripts/run-tests.sh --durations=30 $(PYTEST_ARGS)

# molecule's aio and multinode scenarios on podman systemd hosts alone (docs/molecule.md: the
# figures); `make test` runs them too
test-molecule: $(VENV)/.test-deps
	STRATUS_MOLECULE=1 $(BIN)/pytest -m e2e tests/e2e/test_molecule.py $(PYTEST_ARGS)

test-fast: $(VENV)/.test-deps
	$(BIN)/pytest -m unit tests $(PYTEST_ARGS)

unit: test-fast

integration: test-deps $(VENV)/.test-deps
	$(BIN)/pytest -m integration tests $(PYTEST_ARGS)

e2e: test-deps $(VENV)/.test-deps
	$(BIN)/pytest -m e2e tests $(PYTEST_ARGS)

# A fresh Tempest workspace, its tempest.conf generated from the deployed cloud
# (stratus.tools.tempest_conf), then `tempest run` without the tests of etc/tempest-skips.txt.
TEMPEST_CLOUDS ?= /etc/stratus/clouds.yaml
TEMPEST_IMAGE ?= stratus-tiny
TEMPEST_DIR ?= .tempest
TEMPEST_ARGS ?= --smoke
TEMPEST_DASHBOARD ?= http://127.0.0.1:8000/
tempest: $(VENV)/.test-deps
	rm -rf $(TEMPEST_DIR) && mkdir -p $(TEMPEST_DIR)
	$(BIN)/tempest init --workspace-path $(TEMPEST_DIR)/workspace.yaml $(TEMPEST_DIR)/ws
	$(BIN)/python -m stratus.tools.tempest_conf --clouds-yaml $(TEMPEST_CLOUDS) \
	    --image $(TEMPEST_IMAGE) --ssh-user root --dashboard-url $(TEMPEST_DASHBOARD) \
	    --output $(TEMPEST_DIR)/ws/etc/tempest.conf
	cd $(TEMPEST_DIR)/ws && $(abspath $(BIN))/tempest run --concurrency 2 \
	    --exclude-list $(abspath etc/tempest-skips.txt) $(TEMPEST_ARGS)

clean-venv:
	rm -rf $(VENV)

collection: $(BIN)/python
	$(BIN)/pip install --quiet "ansible-core>=2.19,<2.20"
	scripts/build-collection.sh dist
