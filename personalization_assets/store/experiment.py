"""Warehouse reads of the experimentation stage (only the segment's rows, with SQL) and its look log."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import duckdb
import numpy as np
import pandas as pd

from personalization_assets.constants import CUSTOMER_SEGMENTS_TABLE, CUSTOMERS_TABLE, PERSONAL_FIELDS_TABLE
from personalization_assets.lib.frames import arrow_to_pandas
from personalization_assets.lib.simulation import ENGAGEMENT_FLAGS
from personalization_assets.lib.statistics import CONTROL, REVENUE_METRIC
from resources.warehouse import SCHEMA, DuckDBWarehouse

ASSIGNMENTS_TABLE = "assignments"
MESSAGE_VARIANTS_TABLE = "message_variants"
SAFETY_VERDICTS_TABLE = "safety_verdicts"
ENGAGEMENT_TABLE = "engagement"
# One row per analysis of a segment's recorded engagement whose counts changed: the sequential tests' looks.
LOOKS_TABLE = "experiment_looks"


class MissingInput(RuntimeError):
    """An upstream table (or the segment's rows in it) is not in the warehouse yet; the message says what to
    materialize."""


Source = DuckDBWarehouse | duckdb.DuckDBPyConnection


@contextmanager
def connected(source: Source) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection: the warehouse's (closed on exit), or `source` itself when it is one already, so that an
    asset reads its inputs back to back on one connection."""
    if isinstance(source, DuckDBWarehouse):
        with source.connect() as connection:
            yield connection
    else:
        yield source


def table_columns(connection, tables: Iterable[str]) -> dict[str, list[str]]:
    """The columns of each of `tables` that exists (one query for all of them)."""
    tables = list(tables)
    rows = connection.execute(
        "select table_name, column_name from information_schema.columns where table_schema = ? "
        f"and table_name in ({', '.join('?' for _ in tables)}) order by table_name, ordinal_position",
        [SCHEMA, *tables],
    ).fetchall()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return columns


def require_tables(connection, tables: Iterable[str], segment: str) -> dict[str, list[str]]:
    """The columns of each of `tables`; MissingInput names the ones not in the warehouse yet."""
    tables = list(tables)
    columns = table_columns(connection, tables)
    missing = [table for table in tables if table not in columns]
    if missing:
        raise MissingInput(
            f"segment '{segment}': table(s) {', '.join(missing)} not in the warehouse yet: materialize "
            f"{', '.join(missing)} first"
        )
    return columns


def read_segment_members(warehouse: Source, segment: str) -> pd.Series:
    """customer_id of every member of the segment in customer_segments (whether or not customers has them)."""
    with connected(warehouse) as connection:
        require_tables(connection, [CUSTOMER_SEGMENTS_TABLE], segment)
        table = connection.execute(
            f"select customer_id from {SCHEMA}.{CUSTOMER_SEGMENTS_TABLE} where segment = ?", [segment]
        ).to_arrow_table()
    return arrow_to_pandas(table)["customer_id"]


def read_segment_customers(warehouse: Source, segment: str, columns: Sequence[str]) -> pd.DataFrame:
    """`columns` of the customers table for the segment's customers only (SQL join, Arrow-backed strings)."""
    select_list = ", ".join(f'c."{column}"' for column in columns)
    with connected(warehouse) as connection:
        require_tables(connection, [CUSTOMERS_TABLE, CUSTOMER_SEGMENTS_TABLE], segment)
        table = connection.execute(
            f"select {select_list} from {SCHEMA}.{CUSTOMERS_TABLE} c "
            f"join {SCHEMA}.{CUSTOMER_SEGMENTS_TABLE} s using (customer_id) where s.segment = ?",
            [segment],
        ).to_arrow_table()
    return arrow_to_pandas(table)


def campaign_segments(warehouse: Source) -> int:
    """Segments of the campaign (customer_segments): with the pooled analysis, the families sharing alpha."""
    with connected(warehouse) as connection:
        require_tables(connection, [CUSTOMER_SEGMENTS_TABLE], "(all)")
        row = connection.execute(f"select count(distinct segment) from {SCHEMA}.{CUSTOMER_SEGMENTS_TABLE}").fetchone()
    return int(row[0]) if row else 0


def read_assignments(
    warehouse: Source,
    segment: str,
    customer_columns: Sequence[str] = (),
    treated_only: bool = False,
) -> pd.DataFrame:
    """The segment's stored assignments (`segment, customer_id, arm, variant_id`) joined in DuckDB to
    `customer_columns` of the customers table; `treated_only` leaves out control."""
    joined = "".join(f', c."{column}"' for column in customer_columns)
    join = f" left join {SCHEMA}.{CUSTOMERS_TABLE} c using (customer_id)" if customer_columns else ""
    treated = " and a.arm <> ?" if treated_only else ""
    with connected(warehouse) as connection:
        require_tables(connection, [ASSIGNMENTS_TABLE, *([CUSTOMERS_TABLE] if join else [])], segment)
        table = connection.execute(
            f"select a.segment, a.customer_id, a.arm, a.variant_id{joined} "
            f"from {SCHEMA}.{ASSIGNMENTS_TABLE} a{join} where a.segment = ?{treated}",
            [segment, *([CONTROL] if treated_only else [])],
        ).to_arrow_table()
    return arrow_to_pandas(table)


def read_engagement(warehouse: Source, segment: str | None = None) -> pd.DataFrame:
    """Stored engagement as the statistics need it (no customer ids), of one segment or of all.

    Without revenue the statistics only count customers per (segment, arm, opened, clicked, converted), so
    DuckDB counts them and one row per customer is rebuilt from the counts, its text columns referencing a
    handful of strings: the same statistics from a fraction of the memory and reading time.
    """
    where, params = (" where segment = ?", [segment]) if segment is not None else ("", [])
    with connected(warehouse) as connection:
        stored = set(require_tables(connection, [ENGAGEMENT_TABLE], segment or "(all)")[ENGAGEMENT_TABLE])
        columns = ", ".join(["segment", "arm", "variant_id", *ENGAGEMENT_FLAGS])
        if REVENUE_METRIC in stored:  # a per-customer amount: every row is needed
            table = connection.execute(
                f"select {columns}, {REVENUE_METRIC} from {SCHEMA}.{ENGAGEMENT_TABLE}{where}", params
            ).to_arrow_table()
            return arrow_to_pandas(table)
        groups = connection.execute(
            f"select {columns}, count(*) as customers from {SCHEMA}.{ENGAGEMENT_TABLE}{where} "
            f"group by all order by all",
            params,
        ).fetchdf()
    rows = np.repeat(np.arange(len(groups)), groups.pop("customers").to_numpy())
    return groups.iloc[rows].reset_index(drop=True)


def count_rows(warehouse: Source, table: str, segment: str, condition: str = "true") -> int:
    with connected(warehouse) as connection:
        query = f"select count(*) from {SCHEMA}.{table} where segment = ? and ({condition})"
        row = connection.execute(query, [segment]).fetchone()
    return int(row[0]) if row else 0


def read_variant_tables(warehouse: Source, segment: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The segment's message_variants (`source_variant_id, tone, subject, status`) and its safety_verdicts
    (the contract's columns that are stored); `lib.experimentation.variant_gate` joins them."""
    with connected(warehouse) as connection:
        stored = set(
            require_tables(connection, [MESSAGE_VARIANTS_TABLE, SAFETY_VERDICTS_TABLE], segment)[SAFETY_VERDICTS_TABLE]
        )
        variants = connection.execute(
            f"select variant_id as source_variant_id, tone, subject, status "
            f"from {SCHEMA}.{MESSAGE_VARIANTS_TABLE} where segment = ? order by tone",
            [segment],
        ).fetchdf()
        wanted = ["variant_id", "source_variant_id", "subject", "decision", "screened_at"]
        verdicts = connection.execute(
            f"select {', '.join(c for c in wanted if c in stored)} "
            f"from {SCHEMA}.{SAFETY_VERDICTS_TABLE} where segment = ?",
            [segment],
        ).fetchdf()
    if variants.empty:
        raise MissingInput(
            f"segment '{segment}' has no rows in {MESSAGE_VARIANTS_TABLE}: materialize message_variants and "
            "safety_verdicts for this partition first"
        )
    return variants, verdicts


def read_approved_field_values(warehouse: Source, segment: str) -> set[str]:
    """The tier and city values the safety stage approved for this segment's opening lines. Fail closed: none
    when the safety stage has not screened them (no table, or no rows for the segment)."""
    with connected(warehouse) as connection:
        if PERSONAL_FIELDS_TABLE not in table_columns(connection, [PERSONAL_FIELDS_TABLE]):
            return set()
        rows = connection.execute(
            f"select value from {SCHEMA}.{PERSONAL_FIELDS_TABLE} where segment = ? and decision = 'approved'",
            [segment],
        ).fetchall()
    return {row[0] for row in rows}


def record_look(warehouse: DuckDBWarehouse, segment: str, customers: int, fingerprint: str) -> int:
    """Log one analysis of the segment's engagement if its counts (`fingerprint`) changed since the last
    logged look; returns the number of looks so far (the sequential tests report it)."""
    with warehouse.transaction() as connection:
        connection.execute(
            f"create table if not exists {SCHEMA}.{LOOKS_TABLE} (segment varchar, look integer, "
            "customers bigint, fingerprint varchar, looked_at timestamp with time zone)"
        )
        last = connection.execute(
            f"select look, fingerprint from {SCHEMA}.{LOOKS_TABLE} where segment = ? order by look desc limit 1",
            [segment],
        ).fetchone()
        if last is not None and last[1] == fingerprint:
            return int(last[0])
        look = 1 if last is None else int(last[0]) + 1
        connection.execute(
            f"insert into {SCHEMA}.{LOOKS_TABLE} values (?, ?, ?, ?, now())", [segment, look, customers, fingerprint]
        )
    return look
