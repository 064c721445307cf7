"""Importable jobs for the warehouse reliability tests (subprocesses and the multiprocess executor need to
reconstruct them by module path)."""

import os
import time

import pandas as pd
from dagster import Definitions, asset, define_asset_job, multiprocess_executor

from personalization_assets.constants import SEGMENT_PARTITION_METADATA
from personalization_assets.partitions import segment_partitions
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager

ROWS_PER_PARTITION = 200_000


@asset(partitions_def=segment_partitions, metadata=SEGMENT_PARTITION_METADATA)
def wide_table(context) -> pd.DataFrame:
    rows = int(os.environ.get("RELIABILITY_ROWS", ROWS_PER_PARTITION))
    generation = int(os.environ.get("RELIABILITY_GENERATION", "1"))
    return pd.DataFrame(
        {"segment": context.partition_key, "row": range(rows), "generation": generation, "payload": "x" * 40}
    )


@asset(partitions_def=segment_partitions, metadata=SEGMENT_PARTITION_METADATA)
def second_table(context, wide_table: pd.DataFrame) -> pd.DataFrame:
    time.sleep(0.05)
    return wide_table.groupby("segment", as_index=False).size()


warehouse = DuckDBWarehouse(path=os.environ.get("RELIABILITY_WAREHOUSE", "reliability.duckdb"))
partition_job = define_asset_job(
    "partition_job",
    selection=[wide_table, second_table],
    executor_def=multiprocess_executor.configured({"max_concurrent": 2}),
)
defs = Definitions(
    assets=[wide_table, second_table],
    jobs=[partition_job],
    resources={"io_manager": WarehouseIOManager(warehouse=warehouse)},
)
