# Two commands matter (SPEC §3): `make serve` and `make test`. Both build their own virtualenv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install serve emulate test bench lint format clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	# text-generation 0.7.0 pins huggingface-hub<1.0 but works with today's; install it alone.
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt text-generation
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/llm-gateway serve

emulate: $(STAMP)
	$(BIN)/llm-gateway emulate

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
