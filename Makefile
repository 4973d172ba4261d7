# make run   — install into .venv, migrate, create development keys, load the demo, serve on :5000
# make test  — lint, types and the whole test suite (PostgreSQL too when HANDOVER_TEST_DATABASE_URL is set;
#              the browser tests in tests/browser drive Debian's /usr/bin/chromium)
# make assets — the web interface's CSS and JS into handover/static/ (git-ignored) from the npm registry
# make fuzz  — the long schemathesis run against /api/v1/openapi.json (make test runs a CI-sized one)
# make load  — gunicorn + PostgreSQL, then gunicorn + SQLite, under the locust scenario (bench/load)
# make deploy-check — README's production steps from a clean clone, then a handover end to end
# make soak  — the crash tests of tests/reliability, ten times bigger (HANDOVER_SOAK_SCALE=N: N times)
# make bench — the benchmarks of bench/ (DESIGN §12), ending with one summary line per figure

VENV   := .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app handover
STATIC := handover/static

.PHONY: install assets run test lint check-migrations clean fuzz load deploy-check bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# GOV.UK Frontend and sass, exactly as package-lock.json pins them (the npm registry only).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

# Our stylesheets (GOV.UK Frontend without the crown or GDS Transport), GOV.UK Frontend's JS and
# our two small scripts: Flask serves them at /static.
$(STATIC)/.built: node_modules/.installed $(wildcard handover/static_src/*)
	mkdir -p $(STATIC)
	node_modules/.bin/sass --pkg-importer=node --no-source-map --style=compressed --quiet-deps \
		handover/static_src/app.scss:$(STATIC)/app.css \
		handover/static_src/print.scss:$(STATIC)/print.css
	cp node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.js $(STATIC)/
	cp handover/static_src/*.js handover/static_src/*.svg $(STATIC)/
	touch $@

assets: $(STATIC)/.built

run: install assets
	$(FLASK) keys init
	$(FLASK) db upgrade
	$(FLASK) demo
	@echo "Serving on http://127.0.0.1:5000 — API: http://127.0.0.1:5000/api/v1/openapi.json"
	HANDOVER_SCHEDULER_IN_PROCESS=true $(FLASK) run --host 127.0.0.1 --port 5000

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy handover

# tests/fuzz named first: its conftest then adds up (and checks) the fuzzer's requests; no test runs twice.
test: lint assets
	$(BIN)/pytest -n auto tests/fuzz tests

fuzz: install
	HANDOVER_FUZZ_EXAMPLES=200 HANDOVER_FUZZ_COVERAGE=1 $(BIN)/pytest -n auto tests/fuzz

load: install
	$(BIN)/python bench/load/run.py

deploy-check:
	scripts/deploy-check

# PostgreSQL figures use the server .ci/postgres.sh starts on 127.0.0.1:54329 (see bench/common.py).
bench: install
	$(BIN)/python -m bench

# The same crash tests as make test runs, with more rounds, kills and requests; -rP prints what each did.
.PHONY: soak
soak: install
	HANDOVER_SOAK=1 $(BIN)/pytest -rP tests/reliability

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache node_modules $(STATIC)
