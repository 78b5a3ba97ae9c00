# MedFILIP Curation Studio — the two set-up commands are `make demo` and `make test`.
# Each creates .venv when it is missing (Python 3.11; torch/torchvision pinned in pyproject.toml).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

DEMO_DIR  ?= data/demo
DEMO_N    ?= 1000
DEMO_SEED ?= 7
PORT      ?= 8501
DB_URL    ?= $(or $(DATABASE_URL),sqlite:///data/medfilip.db)

# The store-backed tests (those using the db_url fixtures) run a second time on PostgreSQL.
PG_TEST_PATHS ?= tests/db tests/pipeline tests/app

.PHONY: venv demo demo-data serve test test-fast test-postgres lint clean-demo help

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)  ## create/refresh the virtualenv

demo-data: $(STAMP)  ## generate the demo corpus (if absent), ingest it, extract findings, load IKI
	test -f $(DEMO_DIR)/manifest.csv || $(BIN)/python -m pipeline.demo --out $(DEMO_DIR) --n $(DEMO_N) --seed $(DEMO_SEED)
	$(BIN)/python -m db upgrade --db $(DB_URL)
	$(BIN)/python -m pipeline.ingest --db $(DB_URL) --dataset demo folder $(DEMO_DIR) --manifest $(DEMO_DIR)/manifest.csv
	$(BIN)/python -m pipeline.knowledge sync --db $(DB_URL)
	$(BIN)/python -m pipeline.extract --db $(DB_URL) --extractor rules
	@# a demo admin (its password is printed once, when it is made) with the demo studies to review
	$(BIN)/python -m db reviewers add demo-admin --role admin --generate-password --if-missing --db $(DB_URL)
	$(BIN)/python -m pipeline.assign --db $(DB_URL) --reviewers demo-admin --dataset demo

serve: $(STAMP)  ## serve the app on 127.0.0.1:$(PORT)
	DATABASE_URL=$(DB_URL) $(BIN)/streamlit run streamlit_app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

demo: demo-data serve  ## build the demo corpus and database, then serve the app

test: $(STAMP)  ## run every test (browser tests included), then the store-backed ones on PostgreSQL
	$(BIN)/python -m pytest
	@$(MAKE) --no-print-directory test-postgres

test-postgres: $(STAMP)  ## the store-backed tests on a throwaway PostgreSQL cluster (skipped without one)
	tests/with_postgres.sh $(BIN)/python -m pytest -m "not browser" --store-only $(PG_TEST_PATHS)

test-fast: $(STAMP)  ## every test but the browser ones
	$(BIN)/python -m pytest -m "not browser"

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check .

clean-demo:  ## remove the demo corpus and the default database
	rm -rf $(DEMO_DIR) data/medfilip.db data/medfilip.db-wal data/medfilip.db-shm data/images
