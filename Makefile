# Everything a fresh machine with only Python needs: the virtualenv is made on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run migrate test fuzz lint fmt bench chaos clean

help:
	@echo "make run    serve the gateway on http://127.0.0.1:8080 (embedded PostgreSQL unless DATABASE_URL is set)"
	@echo "make test   run the whole test suite (throwaway embedded PostgreSQL unless TEST_DATABASE_URL is set)"
	@echo "make fuzz   long random runs of the stateful SCIM model test (FUZZ_ARGS=--hypothesis-seed=N)"
	@echo "make lint   ruff and mypy"
	@echo "make bench  benchmarks: figures and ratios (BENCH_DATABASE_URL, else embedded PostgreSQL)"
	@echo "make chaos  the reliability checks at full size against a served gateway (its own throwaway PostgreSQL)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) -m gateway migrate

run: install
	$(PY) -m gateway migrate
	exec $(PY) -m gateway serve

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Many more, longer generated runs than `make test`; no per-test timeout.
fuzz: install
	$(PY) -m pytest tests/scim/test_stateful.py --hypothesis-profile=fuzz --timeout=0 -s $(FUZZ_ARGS)

lint: install
	$(VENV)/bin/ruff check gateway dashboard tests
	$(VENV)/bin/ruff format --check gateway dashboard tests
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff format gateway dashboard tests
	$(VENV)/bin/ruff check --fix gateway dashboard tests

bench: install
	$(PY) -m tests.bench $(BENCH_ARGS)

chaos: install
	$(PY) -m tests.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
