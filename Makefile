# Set-up and entry points; every target installs what it needs into .venv and tests/js/node_modules.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_READY := $(VENV)/.installed
JS_READY := tests/js/node_modules/.installed

.PHONY: demo test lint bench devserver

demo: $(PY_READY)
	$(BIN)/python examples/quickstart.py

test: $(PY_READY) $(JS_READY)
	$(BIN)/ruff check langchain_ably_transport tests benchmarks examples
	$(BIN)/python -m pytest

bench: $(PY_READY)
	$(BIN)/python benchmarks/devserver_throughput.py
	$(BIN)/python benchmarks/checkpoint_saver.py

devserver: $(PY_READY)
	$(BIN)/langchain-ably-transport devserver

$(PY_READY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(JS_READY): tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund
	touch $@
