# Set-up and entry points; every target installs what it needs into .venv and tests/js/node_modules.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_READY := $(VENV)/.installed
JS_READY := tests/js/node_modules/.installed
# examples/web: its JS dependencies (SDKs, esbuild, playwright-core) and the Chromium tests/web drives.
WEB_READY := examples/web/node_modules/.installed
# examples/langgraph-web: React's useStream on js/langgraph-transport (its JS packages, esbuild, playwright-core).
LANGGRAPH_WEB_READY := examples/langgraph-web/node_modules/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: demo test lint bench devserver

demo: $(PY_READY)
	$(BIN)/python examples/quickstart.py

test: $(PY_READY) $(JS_READY) $(WEB_READY) $(LANGGRAPH_WEB_READY) $(CHROMIUM)
	$(BIN)/ruff check langchain_ably_transport tests benchmarks examples
	$(BIN)/python -m pytest -n 2

bench: $(PY_READY) $(JS_READY)
	$(BIN)/python benchmarks/devserver_startup.py
	$(BIN)/python benchmarks/devserver_throughput.py
	$(BIN)/python benchmarks/devserver_store.py
	$(BIN)/python benchmarks/checkpoint_saver.py
	$(BIN)/python benchmarks/checkpoint_read.py
	$(BIN)/python benchmarks/rest_reads.py
	$(BIN)/python benchmarks/session_streaming.py
	$(BIN)/python benchmarks/callback_handler.py
	$(BIN)/python benchmarks/graph_serving.py
	$(BIN)/python benchmarks/limits.py
	$(BIN)/python benchmarks/graph_alone.py
	$(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/agent_crash.py
	$(BIN)/python benchmarks/adoption.py
	$(BIN)/python benchmarks/replicas.py
	$(BIN)/python benchmarks/messages_per_turn.py
	$(BIN)/python benchmarks/billed_messages.py
	$(BIN)/python benchmarks/langgraph_protocol.py

devserver: $(PY_READY)
	$(BIN)/langchain-ably-transport devserver

$(PY_READY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# pip compiles what it installs, but not an editable package: compiled here, its bytecode is read even where
	# PYTHONDONTWRITEBYTECODE=1 stops Python writing it (importing it from source costs about 110 ms more each time).
	$(BIN)/python -m compileall -q langchain_ably_transport
	touch $@

$(JS_READY): tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund
	touch $@

$(WEB_READY): examples/web/package-lock.json
	npm ci --prefix examples/web --no-audit --no-fund
	touch $@

$(LANGGRAPH_WEB_READY): examples/langgraph-web/package-lock.json
	npm ci --prefix examples/langgraph-web --no-audit --no-fund
	touch $@

# Debian's chromium (root, as in CI); the file itself is the stamp. Elsewhere, install Chromium yourself and set
# both `make test CHROMIUM=/path/to/chromium` and CHROMIUM_PATH=/path/to/chromium (what tests/web reads).
$(CHROMIUM):
	apt-get update && apt-get install -y chromium
