# The README's two commands: `make demo` and `make test`. Each creates .venv/ when missing and
# installs the project with the pinned versions in constraints.txt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m pipelines.demo

test: $(STAMP)
	$(BIN)/python -m ruff check checks pipelines provenance reasons tests benchmarks
	$(BIN)/python -m mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/python -m ruff check checks pipelines provenance reasons tests benchmarks
	$(BIN)/python -m mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) demo-out .trainguard
