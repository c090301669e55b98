# The two entry points: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
TOOLS ?= .tools
UV_VERSION := 0.13.9
UV := $(TOOLS)/bin/uv
BIN := $(VENV)/bin
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))

.PHONY: install demo test lint clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-extras --group dev --python $(PYTHON)
	touch $@

install: $(VENV)/.synced

demo: install
	$(BIN)/dataset-pipeline demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check shared_tasks dataset_pipeline
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(TOOLS)
