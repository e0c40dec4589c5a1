# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format bench bench-webhook clean-data help

help:
	@echo "make run    start the whole system (embedded NATS + Postgres + services + simulator)"
	@echo "make test   lint, type-check and run the whole test suite against real NATS and Postgres"
	@echo "make lint   ruff, import-linter (the direction of imports) and mypy"
	@echo "make bench  benchmarks (event store, relay); writes docs/BENCHMARKS.md"
	@echo "make bench-webhook  messages/s end to end, webhook to ticket; writes docs/BENCHMARKS-WEBHOOK.md"

# The virtual environment is rebuilt whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "adminduk needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/adminduk run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy adminduk shared services tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

bench-webhook: $(STAMP)
	$(BIN)/python -m benchmarks.webhook

clean-data:
	rm -rf .adminduk
