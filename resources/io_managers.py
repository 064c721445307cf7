"""Which IO manager stores the assets' tables, chosen by `PERSONALIZATION_IO_MANAGER` when the code location
loads (docs/scale_out.md). Assets never name a storage: they return DataFrames to the `io_manager` resource.

- `duckdb` (default): `WarehouseIOManager` on the `warehouse` resource, i.e. `PERSONALIZATION_WAREHOUSE`: a
  local DuckDB file, or `md:<database>` for MotherDuck (a DuckDB service several machines share; token in
  the `motherduck_token` environment variable). Everything else the pipeline does with
  SQL (audit log, caches, full-text index, the experiment's reads, the report) runs on the same database.
- `snowflake`: dagster-snowflake-pandas' `SnowflakePandasIOManager` (extra `snowflake`) for the tables the
  IO manager stores, configured from `SNOWFLAKE_*` environment variables, the password or key read at run
  time (`EnvVar`, never stored in the run config). The direct SQL above still runs on the `warehouse`
  resource's DuckDB, so this alone does not move the whole pipeline (see docs/scale_out.md).
"""

import os
from collections.abc import Mapping

from dagster import ConfigurableIOManagerFactory, EnvVar

from personalization_assets.config import ConfigError
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager

ENV_IO_MANAGER = "PERSONALIZATION_IO_MANAGER"
DUCKDB, SNOWFLAKE = "duckdb", "snowflake"
IO_MANAGERS = (DUCKDB, SNOWFLAKE)
SNOWFLAKE_REQUIRED = ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_DATABASE")
SNOWFLAKE_SECRETS = ("SNOWFLAKE_PASSWORD", "SNOWFLAKE_PRIVATE_KEY_PATH")  # one of them
SNOWFLAKE_DEFAULT_SCHEMA = "PERSONALIZATION"


def io_manager_from_environment(
    warehouse: DuckDBWarehouse, environ: Mapping[str, str] = os.environ
) -> ConfigurableIOManagerFactory:
    """The IO manager `PERSONALIZATION_IO_MANAGER` names (default duckdb); errors name the variable."""
    choice = (environ.get(ENV_IO_MANAGER) or DUCKDB).strip().lower()
    if choice == DUCKDB:
        return WarehouseIOManager(warehouse=warehouse)
    if choice == SNOWFLAKE:
        return _snowflake_io_manager(environ)
    raise ConfigError(f"{ENV_IO_MANAGER}={choice!r} is not an IO manager of this project; use one of {IO_MANAGERS}")


def _snowflake_io_manager(environ: Mapping[str, str]) -> ConfigurableIOManagerFactory:
    missing = [name for name in SNOWFLAKE_REQUIRED if not environ.get(name)]
    if not any(environ.get(name) for name in SNOWFLAKE_SECRETS):
        missing.append(" or ".join(SNOWFLAKE_SECRETS))
    if missing:
        raise ConfigError(f"{ENV_IO_MANAGER}=snowflake needs the environment variable(s): {', '.join(missing)}")
    try:
        from dagster_snowflake_pandas import SnowflakePandasIOManager
    except ImportError:
        raise ConfigError(
            f"{ENV_IO_MANAGER}=snowflake needs dagster-snowflake-pandas: pip install -e '.[snowflake]'"
        ) from None

    def optional(name: str) -> EnvVar | None:
        return EnvVar(name) if environ.get(name) else None

    return SnowflakePandasIOManager(
        account=EnvVar("SNOWFLAKE_ACCOUNT"),
        user=EnvVar("SNOWFLAKE_USER"),
        database=EnvVar("SNOWFLAKE_DATABASE"),
        schema=environ.get("SNOWFLAKE_SCHEMA") or SNOWFLAKE_DEFAULT_SCHEMA,
        warehouse=optional("SNOWFLAKE_WAREHOUSE"),
        role=optional("SNOWFLAKE_ROLE"),
        password=optional("SNOWFLAKE_PASSWORD"),
        private_key_path=optional("SNOWFLAKE_PRIVATE_KEY_PATH"),
    )
