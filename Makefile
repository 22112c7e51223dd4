# Two commands on a fresh machine with only Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-quick fuzz lint bench generate clean

install: $(STAMP)

# Reinstall when the dependency list changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shop-loadtest run scenarios/flash-sale.yaml --speedup 13

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-quick: $(STAMP)
	$(BIN)/python -m pytest -q -m "not e2e"

# The fuzz tests with the `fuzz` hypothesis profile (tests/conftest.py): 10x the examples of
# `make test`, random rather than derandomized, so each run explores new inputs.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q tests/test_fuzz.py

lint: $(STAMP)
	$(BIN)/ruff check shop_loadtest tests benchmarks
	$(BIN)/mypy shop_loadtest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

generate: $(STAMP)
	for f in scenarios/*.yaml; do $(BIN)/shop-loadtest generate $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
