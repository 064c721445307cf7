"""The declared frame schema of each asset table, as dagster-pandas types (`dagster_type=` on the asset).

The UI shows each type's columns and dtypes on the asset's page, and Dagster checks the frame an asset returns
before the IO manager stores it: a missing column or a wrong dtype fails the step with the column named, and
nothing is written. The check stays cheap on a 1,000,000-row frame: it looks at the column names and each
column's dtype only, never at the rows (row rules such as ranges, unique ids and the funnel are the assets'
checks). Extra columns are allowed (e.g. `revenue` in recorded engagement is declared optional).

Column lists come from the constants the producing code uses (lib/), so a schema cannot drift from its table.
"""

import warnings
from collections.abc import Iterable, Mapping

import pandas as pd
from dagster import BetaWarning, DagsterType
from dagster_pandas import PandasColumn, create_dagster_pandas_dataframe_type
from dagster_pandas.constraints import (
    ColumnConstraint,
    ColumnDTypeFnConstraint,
    ColumnDTypeInSetConstraint,
    DataFrameConstraint,
    DataFrameConstraintViolationException,
)
from pandas.api.types import is_datetime64_any_dtype, is_float_dtype, is_integer_dtype, is_string_dtype

from personalization_assets.lib.assignment import ASSIGNMENT_COLUMNS
from personalization_assets.lib.customers import NUMERIC_RULES, QUARANTINE_COLUMNS, REQUIRED_COLUMNS
from personalization_assets.lib.experimentation import METRICS_DTYPES
from personalization_assets.lib.frames import ARROW_STRING
from personalization_assets.lib.generation import VARIANT_COLUMNS
from personalization_assets.lib.personalization import PERSONALIZED_COLUMNS
from personalization_assets.lib.retrieval import RETRIEVED_COLUMNS
from personalization_assets.lib.safety import CONCERNS
from personalization_assets.lib.segmentation import PROFILE_COLUMNS, SEGMENT_COLUMNS
from personalization_assets.lib.simulation import ENGAGEMENT_COLUMNS, ENGAGEMENT_FLAGS
from personalization_assets.lib.statistics import REVENUE_METRIC

# Dtype kinds of a column. TEXT: object or Arrow-backed strings (both are stored as VARCHAR); TIMESTAMP: any
# datetime64 (with or without a time zone); INTEGER / FLOAT: numpy or nullable (pandas aggregations over Arrow
# columns give Int64). Anything else is an exact pandas dtype name ("int64", "float64", "bool", "Int64"), for
# columns the producing code casts.
TEXT = "text"
TIMESTAMP = "timestamp"
INTEGER = "integer"
FLOAT = "float"
_DTYPE_TESTS = {
    TEXT: is_string_dtype,
    TIMESTAMP: is_datetime64_any_dtype,
    INTEGER: is_integer_dtype,
    FLOAT: is_float_dtype,
}


class RequiredColumns(DataFrameConstraint):
    """Every declared column is present; a failure names all missing columns at once (dagster-pandas' own
    presence check stops at the first) and the columns the frame has."""

    def __init__(self, columns: Iterable[str]):
        self.columns = tuple(columns)
        description = f"Columns {', '.join(self.columns)} are present."
        super().__init__(error_description=description, markdown_description=description)

    def validate(self, dataframe: pd.DataFrame) -> None:
        missing = [column for column in self.columns if column not in dataframe.columns]
        if missing:
            raise DataFrameConstraintViolationException(
                constraint_name=self.name,
                constraint_description=(
                    f"missing column(s): {', '.join(missing)} (the frame has: "
                    f"{', '.join(map(str, dataframe.columns)) or 'no columns'})"
                ),
            )


def _column(name: str, kind: str) -> PandasColumn:
    """A column with a dtype of `kind`, checked when present (presence is RequiredColumns' check): one
    comparison per column, no pass over the rows."""
    constraint: ColumnConstraint = (
        ColumnDTypeFnConstraint(_DTYPE_TESTS[kind]) if kind in _DTYPE_TESTS else ColumnDTypeInSetConstraint({kind})
    )
    return PandasColumn(name, constraints=[constraint], is_required=False)


def frame_type(
    name: str, description: str, columns: Mapping[str, str], optional: Mapping[str, str] | None = None
) -> DagsterType:
    """A dagster-pandas DataFrame type declaring `columns` (name -> dtype kind) in order, plus `optional`
    columns checked only when present."""
    # dagster-pandas marks these APIs beta; they are the ones the design names, so the warning is not repeated
    # on every load of the code location.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        declared = [_column(column, kind) for column, kind in {**columns, **(optional or {})}.items()]
        return create_dagster_pandas_dataframe_type(
            name=name,
            description=description,
            columns=declared,
            dataframe_constraints=[RequiredColumns(columns)],
        )


def _kinds(columns: Iterable[str], kind: str = TEXT, **exceptions: str) -> dict[str, str]:
    """Every column of `columns` as `kind`, except those named in `exceptions`."""
    return {column: exceptions.get(column, kind) for column in columns}


def _pandas_kind(dtype: object) -> str:
    return TEXT if dtype == ARROW_STRING else str(dtype)


# --- segmentation ---------------------------------------------------------------------------------------------
CustomersFrame = frame_type(
    "CustomersFrame",
    "Validated customers, one row per customer_id (text columns Arrow-backed).",
    {
        column: TEXT if column not in NUMERIC_RULES else "int64" if NUMERIC_RULES[column][2] else "float64"
        for column in REQUIRED_COLUMNS
    },
)
CustomersQuarantineFrame = frame_type(
    "CustomersQuarantineFrame",
    "Rejected customer rows: the line, customer_id, reasons, each column's value as written (text), raw_row.",
    _kinds(QUARANTINE_COLUMNS, line="int64"),
)
CustomerSegmentsFrame = frame_type(
    "CustomerSegmentsFrame",
    "Each customer's segment: slug key (the partition key), readable name, campaign intent.",
    _kinds(SEGMENT_COLUMNS),
)
SegmentProfilesFrame = frame_type(
    "SegmentProfilesFrame",
    "One row per segment: size, share, feature means and medians, tier mix and top cities (JSON text).",
    {
        column: INTEGER if column == "customers" else FLOAT if column.startswith(("mean_", "median_")) else TEXT
        for column in PROFILE_COLUMNS
    }
    | {"share": FLOAT},
)

# --- generation -------------------------------------------------------------------------------------------------
MessageVariantsFrame = frame_type(
    "MessageVariantsFrame",
    "One row per segment and tone: the message, its status (valid | rejected), citations and reasons as JSON "
    "text, tokens, cost and latency.",
    _kinds(
        VARIANT_COLUMNS,
        attempts="int64",
        input_tokens="int64",
        output_tokens="int64",
        cost_usd="float64",
        latency_ms="float64",
        created_at=TIMESTAMP,
    ),
)

# --- experimentation --------------------------------------------------------------------------------------------
AssignmentsFrame = frame_type(
    "AssignmentsFrame",
    "Every customer of the segment in control or one approved variant's arm, and when the arm was dealt.",
    {**_kinds(ASSIGNMENT_COLUMNS), "assigned_at": TIMESTAMP},
)
EngagementFrame = frame_type(
    "EngagementFrame",
    "Opened / clicked / converted per assigned customer (revenue when recorded).",
    _kinds(ENGAGEMENT_COLUMNS, **dict.fromkeys(ENGAGEMENT_FLAGS, "bool")),
    optional={REVENUE_METRIC: "float64"},
)
_METRICS_KINDS = {column: _pandas_kind(dtype) for column, dtype in METRICS_DTYPES.items()}
ExperimentMetricsFrame = frame_type(
    "ExperimentMetricsFrame",
    "Each approved arm against control per metric: rates, lifts with CIs, p-values, power, MDE.",
    _METRICS_KINDS,
)
PooledExperimentMetricsFrame = frame_type(
    "PooledExperimentMetricsFrame",
    "Each arm against control pooled over the segments (segment = `__pooled__`), stratified by segment.",
    _METRICS_KINDS,
)
PersonalizedMessagesFrame = frame_type(
    "PersonalizedMessagesFrame",
    "Each treated customer's variant (referenced by variant_id), its subject and the personal opening line.",
    _kinds(PERSONALIZED_COLUMNS),
)

# --- defined here, attached by the lead after the retrieval and safety refactors are merged -------------------
# retrieval.py: `@asset(..., dagster_type=RetrievedContentFrame)` on retrieved_content;
# safety.py: `@asset(..., dagster_type=SafetyVerdictsFrame)` on safety_verdicts.
RetrievedContentFrame = frame_type(
    "RetrievedContentFrame",
    "The documents retrieved for each segment, best first: rank from 1, score in [0, 1], snippet, query.",
    _kinds(RETRIEVED_COLUMNS, rank="int64", score="float64"),
)
# The verdict columns are listed in workflows/safety.py (VERDICT_COLUMNS, next to the resources it imports);
# written out here so this module stays light, and held equal to that list by tests/test_schemas.py.
SafetyVerdictsFrame = frame_type(
    "SafetyVerdictsFrame",
    "Each screened variant text (original or rewrite): severity per concern (the four harm categories and "
    "phishing; empty = not screened), decision, reasons and the blocklist hits as JSON text.",
    {
        **_kinds(["segment", "variant_id", "source_variant_id", "tone", "subject", "body", "citations"]),
        **dict.fromkeys(CONCERNS, "Int64"),
        **_kinds(["blocklist_hits", "decision", "reasons", "backend"]),
        "screened_at": TIMESTAMP,
        "attempts": "int64",
        "rewritten": "bool",
    },
)

# Every type by the asset it declares (the attached ones; tests and the UI docs read this).
ASSET_TYPES: dict[str, DagsterType] = {
    "customers": CustomersFrame,
    "customers_quarantine": CustomersQuarantineFrame,
    "customer_segments": CustomerSegmentsFrame,
    "segment_profiles": SegmentProfilesFrame,
    "message_variants": MessageVariantsFrame,
    "assignments": AssignmentsFrame,
    "engagement": EngagementFrame,
    "experiment_metrics": ExperimentMetricsFrame,
    "pooled_experiment_metrics": PooledExperimentMetricsFrame,
    "personalized_messages": PersonalizedMessagesFrame,
    "safety_verdicts": SafetyVerdictsFrame,
    "retrieved_content": RetrievedContentFrame,
}
