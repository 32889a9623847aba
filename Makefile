# Shanhai — the two set-up commands: `make run` (embedded SQLite + demo data) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := core geodata carbon gep trading ecovalue access api web shanhai witness

.PHONY: run test install lint typecheck contracts pytest clean vendor messages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/shanhai run --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-report=term $(PYTEST_ARGS)

test: lint typecheck contracts pytest

# The pages' browser assets: npm installs the locked versions, the script copies the minified files it lists into
# web/static/vendor/ (committed, with manifest.json) — run only to upgrade them; `make run` needs neither Node nor a network.
vendor:
	cd web/assets && npm ci --no-audit --no-fund --ignore-scripts
	$(PYTHON) scripts/vendor_web.py

# The pages' message catalogs: extract from templates and web/*.py, merge into zh_CN and en, compile the .mo files.
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --omit-header -o web/locale/messages.pot .
	$(BIN)/pybabel update -i web/locale/messages.pot -d web/locale -D messages --width 120 --no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d web/locale -D messages --statistics

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .coverage
