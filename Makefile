# ehub — one workspace, one lock file (uv.lock), Python 3.11 from the machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION ?= 0.13.9
HUBS ?= CN,CA
PYTEST_ARGS ?=
# Never download a Python: use the machine's 3.11.
export UV_PYTHON ?= 3.11
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(CURDIR)/.tools/bin/uv
endif

.PHONY: help install run status demo test lint format bench proto clean

help:
	@echo "make run    - install if needed, then a local CN + CA network (HUBS=CN,CA,MY for more)"
	@echo "make status - readiness of every service of the running network"
	@echo "make demo   - place the lobster order CN <- CA on the running network, print its timeline"
	@echo "make test   - install if needed, then the whole test suite"
	@echo "make lint   - ruff + mypy"
	@echo "make bench  - benchmarks (results in docs/benchmarks.md)"
	@echo "make proto  - regenerate Python from proto/"

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.installed: $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	$(UV) sync --frozen --all-packages
	@touch $@

install: .venv/.installed

run: install
	$(UV) run --frozen ehub network up --hubs $(HUBS)

status: install
	$(UV) run --frozen ehub network status

demo: install
	$(UV) run --frozen python scripts/demo_order.py

test: install
	$(UV) run --frozen pytest $(PYTEST_ARGS)

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
