# Gatewayz: `make run` serves on 127.0.0.1:8000, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	# instructor (tests/clients) declares jiter<0.15; the pinned openai needs jiter>=0.16.
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -c constraints.txt instructor
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/gatewayz serve

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts api
	$(BIN)/ruff format --check src tests bench scripts api
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench scripts api
	$(BIN)/ruff format src tests bench scripts api

bench: $(STAMP)
	bash bench/run_ours.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
