"""The IO manager is a resource chosen by configuration (PERSONALIZATION_IO_MANAGER): the same asset code
stores its tables in the DuckDB warehouse (a file, or a MotherDuck database) or in Snowflake."""

import json
import subprocess
import sys

import pytest
from dagster import EnvVar

from personalization_assets.config import ConfigError
from resources.io_managers import ENV_IO_MANAGER, io_manager_from_environment
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager
from tests.conftest import PROJECT_ROOT, require_extra

SNOWFLAKE_ENV = {
    "SNOWFLAKE_ACCOUNT": "acme-eu1",
    "SNOWFLAKE_USER": "pipeline",
    "SNOWFLAKE_DATABASE": "MARKETING",
    "SNOWFLAKE_PASSWORD": "not-a-real-password-3141",
    "SNOWFLAKE_WAREHOUSE": "TRANSFORM_XS",
}


def test_default_is_the_duckdb_warehouse_io_manager(tmp_path):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    for environ in ({}, {ENV_IO_MANAGER: ""}, {ENV_IO_MANAGER: " DuckDB "}):
        manager = io_manager_from_environment(warehouse, environ)
        assert isinstance(manager, WarehouseIOManager) and manager.warehouse.path == warehouse.path


def test_unknown_choice_and_missing_settings_are_named(tmp_path):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    with pytest.raises(ConfigError, match=r"PERSONALIZATION_IO_MANAGER='postgress' is not an IO manager.*snowflake"):
        io_manager_from_environment(warehouse, {ENV_IO_MANAGER: "postgress"})
    partial = {ENV_IO_MANAGER: "snowflake", "SNOWFLAKE_ACCOUNT": "acme"}
    with pytest.raises(ConfigError) as raised:
        io_manager_from_environment(warehouse, partial)
    message = str(raised.value)
    assert "SNOWFLAKE_USER, SNOWFLAKE_DATABASE, SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY_PATH" in message
    assert "SNOWFLAKE_ACCOUNT" not in message.split(":", 1)[1]


def test_snowflake_reads_credentials_from_the_environment_at_run_time(tmp_path):
    require_extra("dagster_snowflake_pandas", "snowflake")
    from dagster_snowflake_pandas import SnowflakePandasIOManager

    manager = io_manager_from_environment(
        DuckDBWarehouse(path=str(tmp_path / "w.duckdb")), {ENV_IO_MANAGER: "snowflake", **SNOWFLAKE_ENV}
    )
    assert isinstance(manager, SnowflakePandasIOManager)
    # Secrets stay references to the environment (resolved in the run's process), never config values.
    assert manager.password == EnvVar("SNOWFLAKE_PASSWORD") and manager.role is None
    assert manager.schema_ == "PERSONALIZATION"
    assert SNOWFLAKE_ENV["SNOWFLAKE_PASSWORD"] not in json.dumps(manager.model_dump(), default=str)


def test_the_code_location_loads_with_the_snowflake_io_manager_and_unchanged_assets(tmp_path):
    """What `dagster dev` / a run worker does: import the definitions with the variable set."""
    require_extra("dagster_snowflake_pandas", "snowflake")
    script = (
        "import json\n"
        "from personalization_assets.definitions import defs\n"
        "job = defs.resolve_job_def('campaign_job')\n"
        "print(json.dumps({'io_manager': type(defs.resources['io_manager']).__name__,"
        " 'assets': sorted(k.to_user_string() for k in job.asset_layer.asset_graph.get_all_asset_keys())}))\n"
    )
    environ = {ENV_IO_MANAGER: "snowflake", **SNOWFLAKE_ENV, "DAGSTER_HOME": str(tmp_path)}
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, **environ},
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert loaded["io_manager"] == "SnowflakePandasIOManager"
    assert {"assignments", "message_variants", "safety_verdicts"} <= set(loaded["assets"])


def test_a_motherduck_database_is_not_treated_as_a_local_file(tmp_path):
    remote = DuckDBWarehouse(path="md:campaigns")
    assert not remote.is_local_file and remote.exists()  # nothing on disk to look for or create
    local = DuckDBWarehouse(path=str(tmp_path / "sub" / "w.duckdb"))
    assert local.is_local_file and not local.exists() and not local.table_exists("customers")
    with local.connect() as connection:  # a local file's folder is created on first use
        connection.execute("create table customers (customer_id varchar)")
    assert local.exists() and local.table_exists("customers")
