# Two commands matter (SPEC §3): `make serve` and `make test`. Both build their own virtualenv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# AWS SAM CLI and cfn-lint live in their own virtualenv: aws-sam-cli's pins conflict with the app's.
SAM_VENV  := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed

.PHONY: install sam-tools chromium node-clients serve emulate test audit bench load lint format mutate clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	# text-generation 0.7.0 pins huggingface-hub<1.0 and langchain-huggingface 1.2.3 <2.0 (for
	# tests/test_clients.py); both work with today's: install them alone.
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt text-generation langchain-huggingface
	touch $(STAMP)

install: $(STAMP)

$(SAM_STAMP): scripts/requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --upgrade pip
	$(SAM_VENV)/bin/python -m pip install -q -r scripts/requirements-sam.txt
	touch $(SAM_STAMP)

sam-tools: $(SAM_STAMP)

serve: $(STAMP)
	$(BIN)/llm-gateway serve

emulate: $(STAMP)
	$(BIN)/llm-gateway emulate

# The browser tests (tests/browser) drive Debian's chromium: Playwright's own browser download
# cannot work here. Installed once when missing (CI runs as root); a no-op afterwards.
chromium:
	@command -v chromium >/dev/null || { export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; }

# The Node clients of the Responses API tests (tests/node): their pinned packages, installed
# from package-lock.json when it changed; a no-op afterwards.
NODE_STAMP := tests/node/node_modules/.installed

$(NODE_STAMP): tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

node-clients: $(NODE_STAMP)

test: $(STAMP) $(SAM_STAMP) chromium $(NODE_STAMP)
	$(BIN)/python -m pytest

# Known vulnerabilities in the installed dependencies (fails on any found). Where PyPI's JSON
# API is out of reach, pip-audit lists the packages it could not check instead.
audit: $(STAMP)
	$(BIN)/pip-audit --progress-spinner off --skip-editable

# The gateway against direct boto3 and the bare stack, and against the code of BENCH_BEFORE
# (default a32f9ee) in the same run; rewrites its part of docs/benchmarks.md.
bench: $(STAMP) $(SAM_STAMP)
	$(BIN)/python bench/run.py

load: $(STAMP)
	$(BIN)/python bench/load.py

# Style (ruff), types (mypy --strict over src/) and the layering (import-linter's contracts in
# pyproject.toml: the core imports no web framework, no dialect and no backend; http/ imports no
# dialect; backends import no dialect).
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Mutation testing (not in CI: about 12 minutes with one worker): mutants of the modules listed
# under [tool.mutmut] in pyproject.toml, run against their fast tests; docs/testing.md has the
# latest survival rate and what was done about the survivors. `mutmut run` fails only when the
# unmutated tests fail; survivors are listed by `mutmut results` (`mutmut show NAME` shows one).
mutate: $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt mutmut
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis mutants
