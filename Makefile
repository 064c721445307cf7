# The README's two set-up commands are `make demo` and `make test`; both start from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install demo run ui test lint bench clean

$(BIN)/personalize: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

install: $(BIN)/personalize

# Whole pipeline on the embedded backends, then the Dagster UI at http://127.0.0.1:3000.
demo: install
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/personalize run
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

run: install
	$(BIN)/personalize run

ui: install
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# pytest exits 5 when it collected no tests: that is a failure here, never a silent pass.
test: install
	@$(BIN)/python -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$status

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python scripts/benchmark.py

clean:
	rm -rf $(VENV) .dagster_home data/warehouse.duckdb* reports
