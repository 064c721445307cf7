"""The `content_quarantine` table: documents of the content library left out, one row per problem."""

import duckdb
import pandas as pd

from resources.warehouse import SCHEMA

CONTENT_QUARANTINE_TABLE = "content_quarantine"


def write_content_quarantine(connection: duckdb.DuckDBPyConnection, quarantine: pd.DataFrame) -> None:
    """Replace the table with `quarantine` (file, document_id, field, problem); run inside the transaction
    that writes the content index, so the index and its quarantine always describe the same library."""
    connection.register("_quarantine", quarantine)
    try:
        connection.execute(
            f"create or replace table {SCHEMA}.{CONTENT_QUARANTINE_TABLE} as "
            "select file::varchar as file, document_id::varchar as document_id, field::varchar as field, "
            "problem::varchar as problem from _quarantine"
        )
    finally:
        connection.unregister("_quarantine")
