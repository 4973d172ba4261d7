# make run   — install into .venv, migrate, create development keys, load the demo, serve on :5000
# make test  — lint, types and the whole test suite (PostgreSQL too when HANDOVER_TEST_DATABASE_URL is set)

VENV   := .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app handover

.PHONY: install run test lint check-migrations clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(FLASK) keys init
	$(FLASK) db upgrade
	$(FLASK) demo
	@echo "Serving on http://127.0.0.1:5000 — API: http://127.0.0.1:5000/api/v1/openapi.json"
	HANDOVER_SCHEDULER_IN_PROCESS=true $(FLASK) run --host 127.0.0.1 --port 5000

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy handover

test: lint
	$(BIN)/pytest -n auto

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
