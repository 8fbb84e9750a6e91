# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint format protos simnet worker beat listener clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

## run: the forum at http://127.0.0.1:8000 (embedded default: SQLite, no Redis, simnet, demo wallet)
run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runforum --host 127.0.0.1 --port 8000

## test: the whole suite (SQLite unless DATABASE_URL is set; Redis tests need REDIS_URL)
test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## protos: regenerate lightning/rpc stubs from the .proto files
protos: $(VENV)/.dev
	$(BIN)/python -m lightning.rpc.generate

simnet: $(VENV)/.runtime
	$(BIN)/python manage.py simnet

worker: $(VENV)/.runtime
	$(BIN)/celery -A config worker --loglevel=INFO

beat: $(VENV)/.runtime
	$(BIN)/celery -A config beat --loglevel=INFO

listener: $(VENV)/.runtime
	$(BIN)/python manage.py listen

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache test-artifacts
