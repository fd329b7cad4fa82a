# Two commands on a fresh machine: `make up` (the whole stack, here) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install services up down test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e ".[test]"

# Starts this machine's Postgres and Redis if they are down (not when the URLs point elsewhere).
services:
	bash .ci/services

up: install services
	$(BIN)/python -m collector_server local up

down:
	$(BIN)/python -m collector_server local down

test: install services
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/ingest.py
