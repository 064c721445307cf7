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
