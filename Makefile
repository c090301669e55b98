# The two entry points: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
TOOLS ?= .tools
UV_VERSION := 0.13.9
UV := $(TOOLS)/bin/uv
BIN := $(VENV)/bin
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
# Bytecode compiled at install, as the image does: a process that may not write it (PYTHONDONTWRITEBYTECODE)
# would otherwise compile every module it imports, in every step, task and CLI call (seconds each).
export UV_COMPILE_BYTECODE := 1
PACKAGES := shared_tasks orchestrator_clients dataset_pipeline airflow_dags dagster_assets

CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install demo test test-fast lint clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-extras --group dev --python $(PYTHON)
	$(BIN)/python -m compileall -q -j 0 $(PACKAGES) > /dev/null
	touch $@

install: $(VENV)/.synced

# checkov cannot share Airflow's environment; it is locked in uv.lock as group deploy-scan.
CHECKOV_VENV := $(TOOLS)/checkov
$(CHECKOV_VENV)/.synced: $(UV) pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(abspath $(CHECKOV_VENV)) $(UV) sync --frozen --only-group deploy-scan --no-install-project --python $(PYTHON)
	touch $@

# The browser tests drive Debian's Chromium (a test tool's own browser download cannot work here).
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium

demo: install
	$(BIN)/dataset-pipeline demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint $(CHROMIUM) $(CHECKOV_VENV)/.synced
	CHECKOV=$(abspath $(CHECKOV_VENV))/bin/checkov $(BIN)/pytest -n 2

# Day-to-day: every test that starts no orchestrator, real Git origin or S3 API (about two minutes).
test-fast: install $(CHECKOV_VENV)/.synced
	CHECKOV=$(abspath $(CHECKOV_VENV))/bin/checkov $(BIN)/pytest -m "not slow" -n 2

clean:
	rm -rf $(VENV) $(TOOLS)
