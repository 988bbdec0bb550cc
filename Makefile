# OpenSQT — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/lock.txt requirements/tools.txt pyproject.toml | cksum | cut -d' ' -f1)
PROTOS := $(wildcard api/proto/v1/*.proto)
CERTS ?= .certs

.DEFAULT_GOAL := help
.PHONY: help venv demo run test test-unit test-integration lint fmt proto proto-check certs clean dev deploy-check

help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements/lock.txt requirements/tools.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "OpenSQT needs Python 3.11 (set PYTHON=python3.11)")'
	rm -f $(VENV)/.installed-*
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/tools.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP) ## Create .venv and install the pinned dependencies (requirements/lock.txt)

demo: $(STAMP) ## A three-minute scripted run: both agents, a funding episode, a crash, a summary
	$(BIN)/opensqt demo --cert-dir $(CERTS)

run: $(STAMP) ## Run the local constellation (nats, redis, four services, mTLS) until Ctrl-C
	$(BIN)/opensqt run --cert-dir $(CERTS)

test: $(STAMP) ## Run every test (unit and integration, real servers)
	$(BIN)/python -m pytest -q

test-unit: $(STAMP) ## Run the unit tests only
	$(BIN)/python -m pytest -q tests/unit

test-integration: $(STAMP) ## Run the integration tests only
	$(BIN)/python -m pytest -q tests/integration

lint: $(STAMP) proto-check ## ruff (lint + format check), mypy, import contracts, proto staleness
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP) ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

proto: $(STAMP) ## Regenerate src/opensqt/v1 from api/proto/v1
	$(BIN)/python scripts/gen_proto.py src

proto-check: $(STAMP) ## Fail when the committed generated code is stale
	$(BIN)/python scripts/gen_proto.py --check src

certs: $(STAMP) ## Generate development mTLS certificates into .certs/
	$(BIN)/opensqt certs --out $(CERTS)

clean: ## Remove run data, caches and the virtualenv
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache $(VENV)

COMPOSE ?= docker compose

dev: $(STAMP) ## Run the constellation in Docker Compose (needs a Docker engine; certs in .certs/)
	test -f $(CERTS)/ca.pem || $(BIN)/opensqt certs --out $(CERTS)
	OPENSQT_UID=$$(id -u) OPENSQT_GID=$$(id -g) OPENSQT_CERT_DIR=$(abspath $(CERTS)) $(COMPOSE) up --build

deploy-check: $(STAMP) ## Render and strictly validate every kustomize overlay and compose.yaml (offline)
	$(BIN)/python scripts/validate_deploy.py
