# The README's two set-up commands are `make demo` and `make test`; both start from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install demo run ui test test-quick check lint format typecheck bench clean

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
# Two workers (the CI machine has 2 cores); each test file stays on one worker so its module fixtures are built once.
PYTEST_PARALLEL := -n 2 --dist loadfile
test: install $(VENV)/.scale-out-extras
	@$(BIN)/python -m pytest $(PYTEST_PARALLEL); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$status

# The quick loop (about a minute on 2 cores): the pure logic, the embedded backends, input reading, the frame
# types, the warehouse and the service emulators; no pipeline runs, subprocesses or browser.
QUICK_TESTS := tests/test_experimentation_lib.py tests/test_safety_lib.py tests/test_safety_structure.py \
	tests/test_composer.py tests/test_customers.py tests/test_segmentation.py tests/test_schemas.py \
	tests/test_content.py tests/test_warehouse.py tests/test_emulators.py tests/test_deploy.py tests/test_definitions.py
test-quick: install
	@$(BIN)/python -m pytest $(PYTEST_PARALLEL) $(QUICK_TESTS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$status

# What CI checks before the tests: lint, formatting, types.
check: lint typecheck
	$(BIN)/ruff format --check .

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python scripts/benchmark.py

clean:
	rm -rf $(VENV) .dagster_home data/warehouse.duckdb* reports
