"""Materialize one partition and SIGKILL this process in the middle of the warehouse write: after the partition's
old rows were deleted and part of the new rows inserted, inside the open transaction.

Usage: python -m tests.reliability.kill_during_write PARTITION
"""

import os
import signal
import sys

from dagster import DagsterInstance, materialize

import resources.warehouse as warehouse_module
from tests.reliability.warehouse_jobs import warehouse, wide_table


def insert_part_then_die(self, context, table_slice, obj, connection):
    connection.execute(f"insert into {table_slice.schema}.{table_slice.table} by name select * from obj limit 1000")
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    warehouse_module._PandasByNameTypeHandler.handle_output = insert_part_then_die
    with DagsterInstance.get() as instance:
        materialize(
            [wide_table],
            partition_key=sys.argv[1],
            instance=instance,
            resources={"io_manager": warehouse_module.WarehouseIOManager(warehouse=warehouse)},
        )
