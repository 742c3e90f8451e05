# Archivist: `make run` sets up and starts the app; `make test` sets up and runs every check.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.archivist-installed
PORT   ?= 8501
# Extra pip arguments for torch, e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
# on machines whose default index would pick a CUDA build.
TORCH_PIP_ARGS ?=
# The code runner's sandbox (Pyodide under Deno), installed from npm outside the clone
PYODIDE_HOME ?= $(HOME)/.cache/archivist/pyodide
PYODIDE_VERSION := 0.28.3

.PHONY: setup run test test-fast check lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml runtime/build_llama.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	@# torch first, CPU build, so sentence-transformers does not pull a CUDA one
	$(PY) -m pip install --quiet "torch==2.13.0" $(TORCH_PIP_ARGS)
	@# llama-cpp-python built with this CPU's features named one by one (never AMX), wheel cached outside the clone
	$(PY) runtime/build_llama.py --python $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	@# Pyodide for the code sandbox (deno comes from PyPI); without npm, code the user writes runs with limits only
	@test -f $(PYODIDE_HOME)/node_modules/pyodide/pyodide.mjs || { command -v npm >/dev/null 2>&1 \
		&& npm install --silent --no-audit --no-fund --prefix $(PYODIDE_HOME) pyodide@$(PYODIDE_VERSION); } \
		|| echo "npm not found: the code runner's sandbox is not installed (see docs/tools.md)"
	$(PY) -c "import torch, sys; sys.exit('torch is a CUDA build; see TORCH_PIP_ARGS in the Makefile' if torch.version.cuda and '$(ARCHIVIST_LLAMA_BACKEND)' != 'cuda' else 0)"
	touch $@

run: setup
	$(VENV)/bin/archivist ingest docs --collection archivist-docs --exclude architecture.md --exclude benchmarks.md --quiet
	$(VENV)/bin/archivist ui --port $(PORT)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@# the layers (app -> assistants -> retriever -> ingest -> runtime) and the CLI's direction, from .importlinter
	$(VENV)/bin/lint-imports

test: setup lint
	$(PY) -m pytest

# while working: everything but the tests marked slow (real model answers, browser); CI runs `make test`, all of it
test-fast: setup
	$(PY) -m pytest -m "not slow"

bench: setup
	$(PY) bench/generation.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
