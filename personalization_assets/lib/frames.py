"""DataFrame conventions shared by the stages.

Text columns are Arrow-backed (`string[pyarrow]`): a million customer ids as Python `str` objects cost several
hundred MiB, as Arrow strings a tenth of that, and DuckDB reads and writes them without conversion.
"""

import pandas as pd
import pyarrow as pa

ARROW_STRING = pd.StringDtype("pyarrow")


def arrow_types_mapper(arrow_type: pa.DataType):
    """`types_mapper` for `pyarrow.Table.to_pandas`: strings become Arrow-backed pandas strings."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return ARROW_STRING
    return None


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=arrow_types_mapper)


# Distinctness of a million ids: DuckDB's hash aggregate takes ~0.08 s where Arrow's `unique` took 0.2-0.8 s
# (its string hash table grows from empty) and a sort-and-compare of two id columns ~0.5 s (2-core machine).


def distinct_count(values: pa.ChunkedArray) -> int:
    """How many distinct values `values` holds, a null counting as one value (as `pyarrow.compute.unique`)."""
    import duckdb  # the validation and check paths need it only here

    id_values = pa.table({"value": values})  # noqa: F841 - read by DuckDB's replacement scan
    with duckdb.connect() as connection:
        row = connection.execute("select count(distinct value) from id_values").fetchone()
    return int(row[0]) + int(values.null_count > 0)  # type: ignore[index]


def each_once_on_both_sides(left: pa.ChunkedArray, right: pa.ChunkedArray) -> bool:
    """Whether every value occurs exactly once in `left` and exactly once in `right` (a null is a value)."""
    import duckdb

    left_side, right_side = pa.table({"value": left}), pa.table({"value": right})  # noqa: F841 - read by DuckDB
    with duckdb.connect() as connection:
        row = connection.execute(
            """
            select count(*) from (
                select count(*) filter (where side = 1) as on_left, count(*) filter (where side = 2) as on_right
                from (select value, 1 as side from left_side union all select value, 2 from right_side)
                group by value
            ) where on_left <> 1 or on_right <> 1
            """
        ).fetchone()
    return row[0] == 0  # type: ignore[index]
