# Billing Portal: `make run` serves the portal, `make test` runs the whole suite.
# Both work on a fresh machine with Python 3.11: they create .venv and install the lock.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help install run test simulate simulate-recovery bench lint format migrations-check lock clean

help:
	@echo "make run    - serve the portal on http://127.0.0.1:8000 (PORT) with a Celery worker and beat"
	@echo "make test   - run the whole test suite"
	@echo "make simulate - 1,000 renewals through the emulator: largest Stripe-vs-ledger difference;"
	@echo "                and 500 failed-payment recoveries (SIMULATE_RECOVERY): paid twice, wrong card"
	@echo "make simulate-recovery - only the recoveries (SIMULATE_RECOVERY=500)"
	@echo "make bench  - print the benchmarks' figures"
	@echo "make lint   - ruff check and format check"
	@echo "make lock   - re-pin requirements*.lock from requirements*.in"

$(INSTALLED): requirements-dev.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is needed, found " + sys.version'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	touch $@

install: $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/python scripts/run_local.py

test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# SIMULATE_CUSTOMERS x SIMULATE_CYCLES renewals (SIMULATE_SEED); the suite runs 2 x 2.
SIMULATE_CUSTOMERS ?= 100
SIMULATE_CYCLES ?= 10
# Renewals with 1 to 4 cards of random kinds and lost answers; the suite runs 10.
SIMULATE_RECOVERY ?= 500
simulate: $(INSTALLED)
	SIMULATE_CUSTOMERS=$(SIMULATE_CUSTOMERS) SIMULATE_CYCLES=$(SIMULATE_CYCLES) \
		SIMULATE_RECOVERY=$(SIMULATE_RECOVERY) \
		$(BIN)/python -m pytest -q -s -p no:cacheprovider tests/billing/test_simulation.py

simulate-recovery: $(INSTALLED)
	SIMULATE_RECOVERY=$(SIMULATE_RECOVERY) $(BIN)/python -m pytest -q -s -p no:cacheprovider \
		tests/billing/test_simulation.py -k failed_renewals

# check-access beside a no-op view over HTTP (PostgreSQL, production settings, wrk): the
# default server; HTTP_BENCH_ARGS="--server all --access-log both" compares every shape.
HTTP_BENCH_ARGS ?=
bench: $(INSTALLED)
	$(BIN)/python bench/http_compare.py $(HTTP_BENCH_ARGS)
	$(BIN)/python bench/portal_bench.py
	$(BIN)/python bench/invoice_sync_bench.py
	$(BIN)/python -m stripe_emulator.bench

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrations-check: $(INSTALLED)
	$(BIN)/python manage.py makemigrations --check --dry-run

lock: $(INSTALLED)
	$(BIN)/pip-compile --quiet --strip-extras --generate-hashes --allow-unsafe --no-emit-index-url \
		--no-emit-find-links -o requirements.lock requirements.in
	$(BIN)/pip-compile --quiet --strip-extras --generate-hashes --allow-unsafe --no-emit-index-url \
		--no-emit-find-links -o requirements-dev.lock requirements-dev.in

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
