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

# The tests also cover the scale-out options (Snowflake IO manager, Kubernetes and Celery deploy files), so the
# test environment installs their extras as well; `make demo` does not need them.
$(VENV)/.scale-out-extras: $(BIN)/personalize pyproject.toml
	$(BIN)/pip install --quiet -e ".[dev,snowflake,k8s,celery]"
	@touch $@

# The instance settings (run retries, JSON logs, no telemetry) come from the tracked template dagster.yaml.
$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

# Whole pipeline on the embedded backends, then the Dagster UI at http://127.0.0.1:3000.
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/personalize run
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

run: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/personalize run

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# pytest exits 5 when it collected no tests: that is a failure here, never a silent pass.
test: install $(VENV)/.scale-out-extras
	@$(BIN)/python -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$status

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python scripts/benchmark.py

clean:
	rm -rf $(VENV) .dagster_home data/warehouse.duckdb* reports
