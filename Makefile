# ehub — one workspace, one lock file (uv.lock), Python 3.11, 3.12 or 3.13 from the machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION ?= 0.13.9
HUBS ?= CN,CA
PYTEST_ARGS ?=
# `make run PORT_BASE=9100 STATE=var/other`: the first port of each hub's address and the
# state folder (SQLite files, hub keys, logs, network.json); empty = ehub's defaults.
PORT_BASE ?=
STATE ?=
NETWORK_ARGS := $(if $(PORT_BASE),--base-port $(PORT_BASE)) $(if $(STATE),--var-dir $(STATE))
STATE_ARGS := $(if $(STATE),--var-dir $(STATE))
# Never download a Python: use the newest of 3.13, 3.12, 3.11 that runs on this machine
# (run, not just found: a pyenv shim exists for versions that are not selected).
PYTHON_VERSIONS := 3.13 3.12 3.11
ifeq ($(origin UV_PYTHON),undefined)
UV_PYTHON := $(firstword $(foreach v,$(PYTHON_VERSIONS),$(shell python$(v) -c 'import sys' >/dev/null 2>&1 && echo $(v))))
endif
export UV_PYTHON
# uv itself, when missing, is installed with that Python (a version, or a path in UV_PYTHON).
BOOTSTRAP_PYTHON := $(if $(findstring /,$(UV_PYTHON)),$(UV_PYTHON),python$(UV_PYTHON))
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(CURDIR)/.tools/bin/uv
endif

.PHONY: help install run status demo test lint format bench proto clean

help:
	@echo "make run    - install if needed, then a local CN + CA network (HUBS=CN,CA,MY for more;"
	@echo "              PORT_BASE=9100 STATE=var/other for other ports and state folder)"
	@echo "make status - readiness of every service of the running network (STATE=... as for run)"
	@echo "make demo   - place the lobster order CN <- CA on the running network, print its timeline"
	@echo "make test   - install if needed, then the whole test suite"
	@echo "make chaos  - the 300-order crash test on SQLite and Postgres (EHUB_TEST_POSTGRES_URL)"
	@echo "make lint   - ruff + mypy"
	@echo "make bench  - benchmarks (results in docs/benchmarks.md)"
	@echo "make proto  - regenerate Python from proto/"

.PHONY: python
python:
	@if [ -z "$(UV_PYTHON)" ]; then \
	  echo "no Python 3.13, 3.12 or 3.11 runs here (tried python3.13, python3.12, python3.11 on PATH); install one, or set UV_PYTHON" >&2; \
	  exit 1; fi

$(CURDIR)/.tools/bin/uv: | python
	$(BOOTSTRAP_PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.installed: $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml) | python
	$(UV) sync --frozen --all-packages
	@touch $@

install: .venv/.installed

run: install
	$(UV) run --frozen ehub network up --hubs $(HUBS) $(NETWORK_ARGS)

status: install
	$(UV) run --frozen ehub network status $(STATE_ARGS)

demo: install
	$(UV) run --frozen python scripts/demo_order.py $(STATE_ARGS)

# The whole suite on TEST_WORKERS processes (a test file stays in one process): the
# in-process tests (libs/, services/), then the multi-hub tests (tests/: real networks of
# processes). With PYTEST_ARGS, just `pytest PYTEST_ARGS` (one process).
TEST_WORKERS ?= 2
test: install
ifeq ($(strip $(PYTEST_ARGS)),)
	$(UV) run --frozen pytest -n $(TEST_WORKERS) --dist loadfile --durations=15 libs services
	$(UV) run --frozen pytest -n $(TEST_WORKERS) --dist loadfile --durations=25 tests
else
	$(UV) run --frozen pytest $(PYTEST_ARGS)
endif

.PHONY: chaos
chaos: install  ## the order crash test in full: 300 orders, SQLite and Postgres, the broker killed once
	EHUB_CHAOS_ORDERS=$${EHUB_CHAOS_ORDERS:-300} EHUB_CHAOS_BACKENDS=$${EHUB_CHAOS_BACKENDS:-sqlite,postgres} \
	EHUB_CHAOS_BROKER_KILL=$${EHUB_CHAOS_BROKER_KILL:-1} \
	$(UV) run --frozen pytest tests/test_orders_chaos.py -p no:cacheprovider -s $(PYTEST_ARGS)

.PHONY: fuzz
fuzz: install  ## schemathesis against every service's OpenAPI, 1,000 fresh cases each
	EHUB_FUZZ_CASES=$${EHUB_FUZZ_CASES:-1000} $(UV) run --frozen pytest tests/test_fuzz.py -p no:cacheprovider -s $(PYTEST_ARGS)

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy -p ehub_core -p ehub_cli -p ehub_gateway -p ehub_catalog -p ehub_customs -p ehub_logistics

format: install
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

bench: install
	$(UV) run --frozen python bench/run_all.py

proto: install
	$(UV) run --frozen python scripts/gen_proto.py

clean:
	rm -rf .venv .tools var .pytest_cache .mypy_cache .ruff_cache
