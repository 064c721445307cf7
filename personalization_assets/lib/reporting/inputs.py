"""Reading the warehouse: the tables the report reads and the columns it relies on (the contracts), the
queries, ``ReportInputs``, and the campaign's segments seen in them.

``read_inputs`` is the only function of the report that touches the warehouse (read-only queries on a
connection it is given); a table that does not exist yet yields an empty frame with the contract's columns,
so every section can say "not available yet" instead of failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

from personalization_assets.lib.assignment import ordered_arms
from personalization_assets.lib.customers import NUMERIC_FEATURES
from personalization_assets.lib.reporting.formatting import _missing
from personalization_assets.lib.statistics import METRICS_COLUMNS

# Warehouse tables the report reads and the columns it relies on (docs/architecture.md).
# fmt: off
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "segment_profiles": (
        "segment", "segment_name", "intent", "customers", "share", "mean_avg_order_value",
        "mean_purchase_frequency", "median_last_engagement_days", "mean_historical_open_rate",
        "mean_historical_click_rate", "tier_mix", "top_locations", "engagement_level", "description",
    ),
    "experiment_metrics": tuple(METRICS_COLUMNS),
    "pooled_experiment_metrics": tuple(METRICS_COLUMNS),
    "message_variants": (
        "segment", "variant_id", "tone", "subject", "body", "citations", "status", "rejection_reasons",
        "attempts", "backend", "model", "input_tokens", "output_tokens", "cost_usd", "latency_ms",
        "created_at",
    ),
    "safety_verdicts": (
        "segment", "variant_id", "hate", "violence", "self_harm", "sexual", "blocklist_hits", "decision",
        "reasons", "backend", "screened_at",
    ),
    "safety_audit": (
        "record_id", "sequence", "screened_at", "run_id", "segment", "variant_id", "text_sha256",
        "severities", "decision", "reasons", "backend", "prev_hash", "record_hash",
    ),
    "retrieved_content": ("segment", "rank", "document_id", "title", "category", "score", "snippet", "query"),
    "content_index": ("document_id", "title", "category", "source_url"),
}
# fmt: on
FUNNEL_COLUMNS = ("segment", "arm", "variant_id", "sent", "opened", "clicked", "converted")
PERSONALIZED_SUMMARY_COLUMNS = ("segment", "messages", "distinct_opening_lines", "variants")
PERSONAL_FIELDS_COLUMNS = ("segment", "values_screened", "values_withheld")
PERSONALIZED_SAMPLE_COLUMNS = (
    "segment", "customer_id", "arm", "variant_id", "subject", "opening_line",
    "tier", "location", "last_engagement_days", "body",
)  # fmt: skip
ATTRIBUTION_FEATURES = NUMERIC_FEATURES  # every numeric customer attribute; tier enters as dummies
SAMPLE_COLUMNS = ("segment", "arm", "opened", "clicked", "converted", "tier", *ATTRIBUTION_FEATURES)


@dataclass
class ReportInputs:
    """Everything the report shows, read from the warehouse (or built in a test)."""

    profiles: pd.DataFrame
    metrics: pd.DataFrame
    pooled: pd.DataFrame
    funnel: pd.DataFrame  # engagement aggregated per segment × arm (FUNNEL_COLUMNS)
    variants: pd.DataFrame
    verdicts: pd.DataFrame
    audit: pd.DataFrame
    retrieved: pd.DataFrame
    content: pd.DataFrame
    attribution_sample: pd.DataFrame  # engagement joined with customer attributes (SAMPLE_COLUMNS), sampled
    engagement_rows: int = 0
    missing_tables: tuple[str, ...] = ()
    # personalized_messages: counts per segment, and a few customers per segment × tone with what they receive
    personalized_summary: pd.DataFrame = field(default_factory=lambda: empty_table("personalized_summary"))
    personalized_sample: pd.DataFrame = field(default_factory=lambda: empty_table("personalized_sample"))
    # personal_field_verdicts per segment: tier and city values screened for the opening lines, and withheld
    personal_fields: pd.DataFrame = field(default_factory=lambda: empty_table("personal_fields"))


_DERIVED_COLUMNS = {
    "funnel": FUNNEL_COLUMNS,
    "sample": SAMPLE_COLUMNS,
    "personalized_summary": PERSONALIZED_SUMMARY_COLUMNS,
    "personalized_sample": PERSONALIZED_SAMPLE_COLUMNS,
    "personal_fields": PERSONAL_FIELDS_COLUMNS,
}


def empty_table(table: str) -> pd.DataFrame:
    columns = _DERIVED_COLUMNS.get(table) or TABLE_COLUMNS[table]
    return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})


def _existing_tables(connection) -> set[str]:
    rows = connection.execute("select table_name from information_schema.tables where table_schema = 'main'").fetchall()
    return {row[0] for row in rows}


def _columns(connection, table: str) -> set[str]:
    return {row[0] for row in connection.execute(f"describe main.{table}").fetchall()}


FUNNEL_SQL = """
select segment, arm, any_value(variant_id) as variant_id, count(*) as sent,
       sum(opened::int) as opened, sum(clicked::int) as clicked, sum(converted::int) as converted
from main.engagement
group by segment, arm
order by segment, arm
"""

# A deterministic sample: the rows with the smallest seeded hash of customer_id (same rows on every run, no
# state, and DuckDB evaluates it as a top-N, so 1M rows cost well under a second).
SAMPLE_SQL = """
select e.segment, e.arm, e.opened::int as opened, e.clicked::int as clicked, e.converted::int as converted,
       c.tier, c.age, c.purchase_frequency, c.avg_order_value, c.last_engagement_days,
       c.historical_open_rate, c.historical_click_rate
from main.engagement e join main.customers c using (customer_id)
order by hash(e.customer_id || ?), e.customer_id
limit ?
"""


PERSONALIZED_SUMMARY_SQL = """
select segment, count(*) as messages, count(distinct opening_line) as distinct_opening_lines,
       count(distinct variant_id) as variants
from main.personalized_messages
group by segment
order by segment
"""


PERSONAL_FIELDS_SQL = """
select segment, count(*) as values_screened, count(*) filter (where decision <> 'approved') as values_withheld
from main.personal_field_verdicts
group by segment
order by segment
"""


def personalized_sample_sql(with_customers: bool, with_bodies: bool) -> str:
    """``messages_per_tone`` customers per segment × tone (the smallest seeded hashes of their ids: the same
    customers on every run), with the fields their opening line came from and the approved body it opens.
    Parameters: seed, messages_per_tone, seed. A table that is not there leaves its columns null."""
    customer_columns, customer_join = "null as tier, null as location, null as last_engagement_days", ""
    if with_customers:
        customer_columns = "c.tier, c.location, c.last_engagement_days"
        customer_join = "left join main.customers c using (customer_id)"
    body_column, body_join = "null as body", ""
    if with_bodies:  # the screened text that was approved is the text sent (docs/architecture.md)
        body_column = "v.body"
        body_join = (
            "left join main.safety_verdicts v "
            "on v.segment = s.segment and v.variant_id = s.variant_id and v.decision = 'approved'"
        )
    return f"""
with picked as (  -- a streaming aggregate keeping n ids per group: no sort of the whole table
    select segment, unnest(min_by(customer_id, hash(customer_id || ?), ?)) as customer_id
    from main.personalized_messages
    group by segment, arm
),
sampled as (
    select segment, customer_id, arm, variant_id, subject, opening_line
    from main.personalized_messages semi join picked using (segment, customer_id)
)
select s.segment, s.customer_id, s.arm, s.variant_id, s.subject, s.opening_line, {customer_columns}, {body_column}
from sampled s
{customer_join}
{body_join}
order by s.segment, s.arm, hash(s.customer_id || ?), s.customer_id
"""


def read_attribution_sample(connection, sample_rows: int = 200_000, seed: int = 0) -> pd.DataFrame:
    """The attribution model's sample (``SAMPLE_SQL``): engagement joined with customer attributes, the
    ``sample_rows`` rows with the smallest seeded hashes; empty while either table is missing. ``read_inputs``
    reads it too; the report step reads it on its own, in a thread beside the other reads and the charts."""
    if sample_rows < 1:
        raise ValueError(f"sample_rows must be at least 1, got {sample_rows}")
    if not {"engagement", "customers"} <= _existing_tables(connection):
        return empty_table("sample")
    return connection.execute(SAMPLE_SQL, [str(seed), int(sample_rows)]).fetchdf()


def read_inputs(
    connection,
    sample_rows: int = 200_000,
    seed: int = 0,
    messages_per_tone: int = 2,
    attribution_sample: bool = True,
) -> ReportInputs:
    """Read the report's tables through an open (read-only) DuckDB connection; absent tables: empty frames.
    ``attribution_sample=False`` leaves the attribution sample empty (for a caller that reads it apart, with
    ``read_attribution_sample``)."""
    if sample_rows < 1:
        raise ValueError(f"sample_rows must be at least 1, got {sample_rows}")
    if messages_per_tone < 0:
        raise ValueError(f"messages_per_tone must be at least 0, got {messages_per_tone}")
    existing = _existing_tables(connection)
    frames: dict[str, pd.DataFrame] = {}
    present: dict[str, set[str]] = {}  # columns of each contract table that exists
    for table, columns in TABLE_COLUMNS.items():
        if table in existing:
            present[table] = _columns(connection, table)
            wanted = ", ".join(f'"{c}"' for c in columns if c in present[table])
            frame = connection.execute(f"select {wanted} from main.{table}").fetchdf()
            frames[table] = frame.reindex(columns=list(columns))
        else:
            frames[table] = empty_table(table)
    funnel, sample, engagement_rows = empty_table("funnel"), empty_table("sample"), 0
    if "engagement" in existing:
        funnel = connection.execute(FUNNEL_SQL).fetchdf()
        engagement_rows = int(funnel["sent"].sum()) if len(funnel) else 0
        if "customers" in existing and attribution_sample:
            sample = read_attribution_sample(connection, sample_rows, seed)
    personalized_summary = empty_table("personalized_summary")
    personalized_sample = empty_table("personalized_sample")
    if "personalized_messages" in existing:
        personalized_summary = connection.execute(PERSONALIZED_SUMMARY_SQL).fetchdf()
    if "personalized_messages" in existing and messages_per_tone:
        bodies = "body" in present.get("safety_verdicts", set())
        personalized_sample = connection.execute(
            personalized_sample_sql("customers" in existing, bodies),
            [str(seed), int(messages_per_tone), str(seed)],
        ).fetchdf()
    personal_fields = empty_table("personal_fields")
    if "personal_field_verdicts" in existing:
        personal_fields = connection.execute(PERSONAL_FIELDS_SQL).fetchdf()
    extra_tables = ("engagement", "customers", "personalized_messages", "personal_field_verdicts")
    missing = tuple(t for t in (*TABLE_COLUMNS, *extra_tables) if t not in existing)
    return ReportInputs(
        profiles=frames["segment_profiles"],
        metrics=frames["experiment_metrics"],
        pooled=frames["pooled_experiment_metrics"],
        funnel=funnel,
        variants=frames["message_variants"],
        verdicts=frames["safety_verdicts"],
        audit=frames["safety_audit"],
        retrieved=frames["retrieved_content"],
        content=frames["content_index"],
        attribution_sample=sample,
        engagement_rows=engagement_rows,
        missing_tables=missing,
        personalized_summary=personalized_summary,
        personalized_sample=personalized_sample,
        personal_fields=personal_fields,
    )


def campaign_segments(inputs: ReportInputs) -> pd.DataFrame:
    """One row per segment seen anywhere (profiles, engagement, metrics, variants), in profile order:
    ``segment, segment_name, customers, arms`` (arms that received customers, canonical order)."""
    order = list(inputs.profiles["segment"].dropna())
    for frame in (inputs.funnel, inputs.metrics, inputs.variants, inputs.verdicts, inputs.retrieved):
        order += [s for s in frame["segment"].dropna().unique() if s not in order]
    names = inputs.profiles.set_index("segment")["segment_name"].to_dict() if len(inputs.profiles) else {}
    sizes = inputs.profiles.set_index("segment")["customers"].to_dict() if len(inputs.profiles) else {}
    sent = inputs.funnel.groupby("segment")["sent"].sum().to_dict() if len(inputs.funnel) else {}
    arms = (
        inputs.funnel.groupby("segment")["arm"].agg(lambda a: tuple(ordered_arms(a))).to_dict()
        if len(inputs.funnel)
        else {}
    )
    return pd.DataFrame(
        {
            "segment": order,
            "segment_name": [
                names.get(s) if not _missing(names.get(s)) else s.replace("_", " ").title() for s in order
            ],
            "customers": [int(sizes.get(s, sent.get(s, 0)) or 0) for s in order],
            "arms": [arms.get(s, ()) for s in order],
        }
    )


# Per-segment frames of ReportInputs. The audit log stays whole: its hash chain is verified end to end.
_SEGMENT_FRAMES = (
    "profiles", "metrics", "funnel", "variants", "verdicts", "retrieved", "attribution_sample",
    "personalized_summary", "personalized_sample", "personal_fields",
)  # fmt: skip


def restrict_to_segments(inputs: ReportInputs, segments: Sequence[str]) -> ReportInputs:
    """The inputs of `segments` only: the rows a campaign produced in this run, never another segment's older
    rows. The pooled metrics (computed over every stored segment) are kept only if no segment is left out."""
    keep = set(segments)
    frames = {name: getattr(inputs, name) for name in _SEGMENT_FRAMES}
    restricted = {name: frame[frame["segment"].isin(keep)].reset_index(drop=True) for name, frame in frames.items()}
    stored = set(inputs.profiles["segment"].dropna()) | set(inputs.metrics["segment"].dropna())
    pooled = inputs.pooled if stored <= keep else inputs.pooled.iloc[0:0]
    engagement_rows = int(restricted["funnel"]["sent"].sum()) if len(restricted["funnel"]) else 0
    return replace(inputs, **restricted, pooled=pooled, engagement_rows=engagement_rows)
