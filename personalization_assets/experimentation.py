"""Stage 5 — experimentation: who gets which approved variant, what they did, what it means, and each
customer's personalized message.

Per segment partition:
- `assignments`: every customer of the segment in `control` or in the arm of one approved variant (a keyed
  hash of experiment id, salt and customer id, dealt by weight: deterministic and stateless).
- `engagement`: opened / clicked / converted per assigned customer, simulated (seeded) or read from a recorded
  events file — both behind `EngagementSource`.
- `experiment_metrics`: each arm against control per metric, with CIs, adjusted p-values, power, MDE and the
  chance to beat control.
- `personalized_messages`: for customers in a tone arm, the variant plus a name-free personal opening line.
Across segments: `pooled_experiment_metrics`, stratified by segment.

The safety gate is enforced in the data path: only variants with status `valid` in message_variants AND
decision `approved` in safety_verdicts get an arm or a message. Customers and variants are read with SQL
through the `warehouse` resource (only the segment's rows), never by loading whole tables into each partition.
"""

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MetadataValue,
    PreviewWarning,
    asset,
    asset_check,
)
from pydantic import Field, ValidationInfo, field_validator, model_validator

from personalization_assets.config import StrictModel
from personalization_assets.constants import (
    CUSTOMER_SEGMENTS_TABLE,
    CUSTOMERS_TABLE,
    PERSONAL_FIELDS_TABLE,
    SEGMENT_PARTITION_METADATA,
    STORAGE_KINDS,
)
from personalization_assets.lib.assignment import hash_key
from personalization_assets.lib.experimentation import (
    ARM_ORDER,
    ASSIGNMENT_COLUMNS,
    BINARY_METRICS,
    CONTROL,
    ENGAGEMENT_COLUMNS,
    METRICS_COLUMNS,
    REVENUE_METRIC,
    Baselines,
    EngagementSource,
    RecordedEngagement,
    SimulatedEngagement,
    assign_arms,
    check_balance,
    compute_experiment_metrics,
    compute_pooled_metrics,
    draw_arm_uplifts,
    effective_weights,
    sample_ratio_mismatch,
)
from personalization_assets.lib.frames import ARROW_STRING, arrow_to_pandas
from personalization_assets.lib.personalization import opening_lines, personal_field_values
from personalization_assets.lib.segmentation import slugify
from personalization_assets.lib.simulation import ENGAGEMENT_FLAGS
from personalization_assets.observability import hash_customer_id
from personalization_assets.partitions import segment_partitions
from resources.settings import PipelineSettings
from resources.warehouse import SCHEMA, DuckDBWarehouse, table_exists

# Partitioned asset checks are a Dagster preview feature; they make the checks run per segment partition.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning
)

GROUP = "experimentation"
EXPERIMENT_CONFIG_FILE = "experiment_config.yaml"

# Upstream tables this stage reads with SQL (declared as `deps`), and the values of their gate columns.
ASSIGNMENTS_TABLE = "assignments"
MESSAGE_VARIANTS_TABLE = "message_variants"
SAFETY_VERDICTS_TABLE = "safety_verdicts"
ENGAGEMENT_TABLE = "engagement"
STATUS_VALID = "valid"
DECISION_APPROVED = "approved"

# The checks, one property each (the names Dagster shows).
ASSIGNMENT_COMPLETE = "assignment_complete"  # every customer of the segment assigned exactly once (blocking)
ARMS_BALANCED = "arms_balanced"  # arm shares within tolerance, enough customers per arm (warning)
SAMPLE_RATIO_MATCHES = "sample_ratio_matches"  # SRM chi-square on the analysed sample (blocking)
FUNNEL_CONSISTENT = "funnel_consistent"  # no click without open, no conversion without click (blocking)
SRM_ALERT_P = 0.001  # the conventional SRM alarm level: a genuine mismatch gives p far below it

PRIMARY_METRIC = "conversion"
# Columns of personalized_messages: the variant is referenced, not copied (see render_message).
PERSONALIZED_COLUMNS = ["segment", "customer_id", "arm", "variant_id", "subject", "opening_line"]
_METRIC_TEXT = ["segment", "arm", "variant_id", "metric", "test", "note"]
_METRIC_INTEGERS = ["n_segments", "n_control", "n_arm"]


# --- Configuration ------------------------------------------------------------------------------------------

Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class AssignmentConfig(StrictModel):
    weights: dict[str, Weight] = Field(
        default_factory=lambda: dict.fromkeys(ARM_ORDER, 1 / len(ARM_ORDER)),
        description="arm -> weight: control plus one arm per tone; non-negative, summing to 1",
    )
    balance_tolerance: float = Field(default=0.05, gt=0, lt=0.5, description="allowed |share - weight|")
    min_customers_per_arm: int = Field(default=5, ge=1, description="fewer in an arm is a warning")

    @field_validator("weights")
    @classmethod
    def _weights_sum_to_one(cls, weights: dict[str, float]) -> dict[str, float]:
        if CONTROL not in weights:
            raise ValueError(f"must include the '{CONTROL}' arm (every comparison is against it)")
        if weights[CONTROL] <= 0:
            raise ValueError(f"the '{CONTROL}' weight must be positive (every comparison is against it)")
        bad = [arm for arm in weights if arm != slugify(arm)]
        if bad:
            raise ValueError(f"arm names must be lowercase slugs (the tones), got {bad}")
        total = sum(weights.values())
        if abs(total - 1) > 1e-9:
            raise ValueError(f"weights must sum to 1 (within 1e-9), they sum to {total!r}")
        return weights


class EngagementConfig(StrictModel):
    source: Literal["simulate", "file"] = "simulate"
    engagement_events_path: str | None = Field(
        default=None,
        validate_default=True,
        description="recorded events (CSV/Parquet) when source is 'file'; relative to the config folder",
    )
    missing: Literal["error", "drop", "no_engagement"] = "error"
    funnel: Literal["error", "infer"] = "error"

    @field_validator("engagement_events_path")
    @classmethod
    def _path_when_file(cls, path: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("source") == "file" and not path:
            raise ValueError("required when source is 'file' (the recorded engagement events)")
        return path


class BaselinesConfig(StrictModel):
    open: float = Field(default=0.30, gt=0, lt=1)
    click: float = Field(default=0.08, gt=0, lt=1)
    conversion: float = Field(default=0.02, gt=0, lt=1)

    @model_validator(mode="after")
    def _funnel_ordered(self) -> "BaselinesConfig":
        if not self.conversion <= self.click <= self.open:
            raise ValueError(
                "baselines must satisfy conversion <= click <= open (rates per customer sent to)"
            )
        return self

    def to_baselines(self) -> Baselines:
        return Baselines(open=self.open, click=self.click, conversion=self.conversion)


class UpliftConfig(StrictModel):
    mean: float = Field(default=0.15, gt=-1, allow_inf_nan=False)
    sd: float = Field(default=0.05, ge=0, allow_inf_nan=False)
    clip: tuple[float, float] = (0.05, 0.30)

    @field_validator("clip")
    @classmethod
    def _clip_ordered(cls, clip: tuple[float, float]) -> tuple[float, float]:
        low, high = clip
        if not -1 < low <= high:
            raise ValueError(f"must be [low, high] with -1 < low <= high, got [{low}, {high}]")
        return clip


class SimulationConfig(StrictModel):
    aa_mode: bool = Field(default=False, description="A/A test: every arm's true uplift is 0")
    baselines: BaselinesConfig = BaselinesConfig()
    uplift: UpliftConfig = UpliftConfig()
    noise_sd: float = Field(default=0.2, ge=0, allow_inf_nan=False)
    history_weight: float = Field(default=0.5, ge=0, le=1)


class StatisticsConfig(StrictModel):
    alpha: float = Field(default=0.05, gt=0, lt=1)
    power: float = Field(default=0.8, gt=0, lt=1)
    correction: Literal["holm", "fdr_bh"] = "holm"


class ExperimentConfig(StrictModel):
    """config/experiment_config.yaml"""

    experiment_id: str = Field(default="northwind-personalization", min_length=1)
    salt: str = ""
    seed: int = Field(default=42, ge=0)
    assignment: AssignmentConfig = AssignmentConfig()
    engagement: EngagementConfig = EngagementConfig()
    simulation: SimulationConfig = SimulationConfig()
    statistics: StatisticsConfig = StatisticsConfig()


def load_experiment_config(settings: PipelineSettings) -> ExperimentConfig:
    return settings.load(EXPERIMENT_CONFIG_FILE, ExperimentConfig)


# --- Reading the warehouse ----------------------------------------------------------------------------------


def _require_tables(connection, tables: Iterable[str], segment: str) -> None:
    missing = [table for table in tables if not table_exists(connection, table)]
    if missing:
        raise Failure(
            f"segment '{segment}': table(s) {', '.join(missing)} not in the warehouse yet: materialize "
            f"{', '.join(missing)} first"
        )


def read_segment_customers(warehouse: DuckDBWarehouse, segment: str, columns: Sequence[str]) -> pd.DataFrame:
    """`columns` of the customers table for the segment's customers only (SQL join, Arrow-backed strings)."""
    select_list = ", ".join(f'c."{column}"' for column in columns)
    with warehouse.connect() as connection:
        _require_tables(connection, [CUSTOMERS_TABLE, CUSTOMER_SEGMENTS_TABLE], segment)
        table = connection.execute(
            f"select {select_list} from {SCHEMA}.{CUSTOMERS_TABLE} c "
            f"join {SCHEMA}.{CUSTOMER_SEGMENTS_TABLE} s using (customer_id) where s.segment = ?",
            [segment],
        ).to_arrow_table()
    return arrow_to_pandas(table)


def read_assignments(
    warehouse: DuckDBWarehouse,
    segment: str,
    customer_columns: Sequence[str] = (),
    treated_only: bool = False,
) -> pd.DataFrame:
    """The segment's stored assignments (`segment, customer_id, arm, variant_id`) joined in DuckDB to
    `customer_columns` of the customers table; `treated_only` leaves out control."""
    joined = "".join(f', c."{column}"' for column in customer_columns)
    join = f" left join {SCHEMA}.{CUSTOMERS_TABLE} c using (customer_id)" if customer_columns else ""
    treated = " and a.arm <> ?" if treated_only else ""
    with warehouse.connect() as connection:
        _require_tables(connection, [ASSIGNMENTS_TABLE, *([CUSTOMERS_TABLE] if join else [])], segment)
        table = connection.execute(
            f"select a.segment, a.customer_id, a.arm, a.variant_id{joined} "
            f"from {SCHEMA}.{ASSIGNMENTS_TABLE} a{join} where a.segment = ?{treated}",
            [segment, *([CONTROL] if treated_only else [])],
        ).to_arrow_table()
    return arrow_to_pandas(table)


def read_engagement(warehouse: DuckDBWarehouse, segment: str | None = None) -> pd.DataFrame:
    """Stored engagement as the statistics need it (no customer ids), of one segment or of all.

    Without revenue the statistics only count customers per (segment, arm, opened, clicked, converted), so
    DuckDB counts them and one row per customer is rebuilt from the counts, its text columns referencing a
    handful of strings: the same statistics from a fraction of the memory and reading time.
    """
    where, params = (" where segment = ?", [segment]) if segment is not None else ("", [])
    with warehouse.connect() as connection:
        _require_tables(connection, [ENGAGEMENT_TABLE], segment or "(all)")
        stored = {row[0] for row in connection.execute(f"describe {SCHEMA}.{ENGAGEMENT_TABLE}").fetchall()}
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


def arm_counts(warehouse: DuckDBWarehouse, table: str, segment: str) -> pd.Series:
    """Rows per arm of the segment's partition of `table` (rows without an arm are left out)."""
    with warehouse.connect() as connection:
        _require_tables(connection, [table], segment)
        rows = connection.execute(
            f"select arm, count(*) from {SCHEMA}.{table} where segment = ? and arm is not null group by arm",
            [segment],
        ).fetchall()
    return pd.Series(dict(rows), dtype="int64").sort_index()


def count_rows(warehouse: DuckDBWarehouse, table: str, segment: str, condition: str = "true") -> int:
    with warehouse.connect() as connection:
        query = f"select count(*) from {SCHEMA}.{table} where segment = ? and ({condition})"
        return int(connection.execute(query, [segment]).fetchone()[0])


def balance_from_counts(
    segment: str, counts: pd.Series, weights: Mapping[str, float], tolerance: float, min_per_arm: int
) -> pd.DataFrame:
    """`check_balance` from arm counts: the rows are rebuilt as a categorical column (an int8 per customer),
    so the library's one definition of balance applies without loading the partition."""
    arms = pd.Categorical.from_codes(
        np.repeat(np.arange(len(counts)), counts.to_numpy()), categories=list(counts.index)
    )
    return check_balance(pd.DataFrame({"segment": segment, "arm": arms}), weights, tolerance, min_per_arm)


def read_variant_gate(warehouse: DuckDBWarehouse, segment: str) -> pd.DataFrame:
    """Each generated variant of the segment and whether it passed both gates: `source_variant_id, variant_id,
    tone, subject, status, decision, approved, reason`.

    Approved means status `valid` in message_variants and decision `approved` in safety_verdicts; a variant
    without a verdict is not approved (fail closed). The safety stage may rewrite a blocked variant: its
    verdict row then has a new `variant_id` (`source_variant_id` names the generated one) and the screened
    subject and body. `variant_id` and `subject` here are the verdict's, i.e. what is sent.
    """
    with warehouse.connect() as connection:
        _require_tables(connection, [MESSAGE_VARIANTS_TABLE, SAFETY_VERDICTS_TABLE], segment)
        variants = connection.execute(
            f"select variant_id as source_variant_id, tone, subject, status "
            f"from {SCHEMA}.{MESSAGE_VARIANTS_TABLE} where segment = ? order by tone",
            [segment],
        ).fetchdf()
        stored = {
            row[0] for row in connection.execute(f"describe {SCHEMA}.{SAFETY_VERDICTS_TABLE}").fetchall()
        }
        wanted = ["variant_id", "source_variant_id", "subject", "decision", "screened_at"]
        verdicts = connection.execute(
            f"select {', '.join(c for c in wanted if c in stored)} "
            f"from {SCHEMA}.{SAFETY_VERDICTS_TABLE} where segment = ?",
            [segment],
        ).fetchdf()
    if variants.empty:
        raise Failure(
            f"segment '{segment}' has no rows in {MESSAGE_VARIANTS_TABLE}: materialize message_variants and "
            "safety_verdicts for this partition first"
        )
    source = verdicts.get("source_variant_id", pd.Series(index=verdicts.index, dtype=object))
    verdicts["source_variant_id"] = source.fillna(verdicts["variant_id"])
    if "screened_at" in verdicts.columns:
        verdicts = verdicts.sort_values("screened_at", kind="stable")
    by_source = verdicts.groupby("source_variant_id", sort=False)
    latest = by_source.tail(1).set_index("source_variant_id")
    # One final verdict per variant by contract; should there be several, every one must approve.
    decision = by_source["decision"].agg(
        lambda values: (
            DECISION_APPROVED
            if (values == DECISION_APPROVED).all()
            else ", ".join(sorted(set(values.astype(str))))
        )
    )
    gate = variants.assign(
        variant_id=variants["source_variant_id"]
        .map(latest["variant_id"])
        .fillna(variants["source_variant_id"]),
        decision=variants["source_variant_id"].map(decision),
    )
    if "subject" in latest.columns:  # the screened (possibly rewritten) subject is the one sent
        gate["subject"] = gate["source_variant_id"].map(latest["subject"]).fillna(gate["subject"])
    valid = gate["status"] == STATUS_VALID
    approved_by_safety = gate["decision"] == DECISION_APPROVED
    rewritten = gate["variant_id"] != gate["source_variant_id"]
    gate["approved"] = valid & approved_by_safety
    gate["reason"] = np.select(
        [~valid, gate["decision"].isna(), ~approved_by_safety, rewritten],
        [
            "rejected by generation (status " + gate["status"].astype(str) + ")",
            "no safety verdict (not screened)",
            "blocked by safety (" + gate["decision"].astype(str) + ")",
            "approved after a safety rewrite (" + gate["variant_id"].astype(str) + ")",
        ],
        default="approved",
    )
    columns = [
        "source_variant_id",
        "variant_id",
        "tone",
        "subject",
        "status",
        "decision",
        "approved",
        "reason",
    ]
    return gate[columns]


def arm_weights(config: ExperimentConfig, approved_tones: Iterable[str]) -> dict[str, float]:
    """Effective weights of control and the approved tones' arms (blocked arms' weight redistributed)."""
    tones = list(approved_tones)
    configured = config.assignment.weights
    unweighted = [tone for tone in tones if tone not in configured]
    if unweighted:
        raise Failure(
            f"{EXPERIMENT_CONFIG_FILE}: assignment.weights has no weight for approved tone(s) {unweighted}; "
            f"configured arms: {sorted(configured)}"
        )
    return effective_weights([CONTROL, *tones], configured)


def approved_arms(gate: pd.DataFrame) -> list[tuple[str, str]]:
    """(variant_id, tone) of the approved variants, the input `assign_arms` expects."""
    approved = gate[gate["approved"]]
    return list(zip(approved["variant_id"].astype(str), approved["tone"].astype(str), strict=True))


def segment_seed(seed: int, segment: str) -> int:
    """A per-segment seed, so each segment draws its own true uplift per tone."""
    return int(hash_key(seed, "uplift", segment), 16)


def engagement_source(
    config: ExperimentConfig, settings: PipelineSettings, segment: str, arms: Sequence[str]
) -> EngagementSource:
    """Recorded events when `engagement.source` is `file`, else the seeded simulation."""
    if config.engagement.source == "file":
        path = settings.config_path(config.engagement.engagement_events_path or "")
        if not path.is_file():
            raise Failure(
                f"{EXPERIMENT_CONFIG_FILE}: engagement.engagement_events_path: file not found: {path}"
            )
        return RecordedEngagement(path, funnel=config.engagement.funnel, missing=config.engagement.missing)
    simulation = config.simulation
    uplifts = draw_arm_uplifts(
        arms,
        mean=simulation.uplift.mean,
        sd=simulation.uplift.sd,
        clip=simulation.uplift.clip,
        seed=segment_seed(config.seed, segment),
        aa_mode=simulation.aa_mode,
    )
    return SimulatedEngagement(
        uplifts,
        baselines=simulation.baselines.to_baselines(),
        noise_sd=simulation.noise_sd,
        seed=config.seed,
        history_weight=simulation.history_weight,
    )


# --- Formatting ---------------------------------------------------------------------------------------------


def _markdown(frame: pd.DataFrame) -> MetadataValue:
    return MetadataValue.md(frame.to_markdown(index=False) if not frame.empty else "_none_")


def _as_arrow_strings(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    return frame.astype({column: ARROW_STRING for column in columns})


def _pct(value: float, digits: int = 1) -> str:
    return "–" if pd.isna(value) else f"{value * 100:.{digits}f}%"


def _signed_pct(value: float) -> str:
    return "–" if pd.isna(value) else f"{value * 100:+.1f}%"


def _p_value(value: float) -> str:
    return "–" if pd.isna(value) else "<0.0001" if value < 1e-4 else f"{value:.4f}"


def _float(value: float) -> MetadataValue:
    return MetadataValue.float(float(value) if pd.notna(value) else float("nan"))


def metrics_markdown(metrics: pd.DataFrame, alpha: float) -> str:
    """The metrics table for people: rates in %, lifts in points / % with their CIs, raw and adjusted p."""
    if metrics.empty:
        return "_no comparisons (control only)_"
    level = f"{(1 - alpha) * 100:g}% CI"
    revenue = metrics["metric"] == REVENUE_METRIC

    def rate(value: float, is_revenue: bool) -> str:
        return ("–" if pd.isna(value) else f"{value:.2f}") if is_revenue else _pct(value)

    def difference(value: float, is_revenue: bool) -> str:
        if pd.isna(value):
            return "–"
        return f"{value:+.2f}" if is_revenue else f"{value * 100:+.2f} pp"

    rows = []
    for row, is_revenue in zip(metrics.itertuples(index=False), revenue, strict=True):  # a dozen rows
        rows.append(
            {
                "segment": row.segment,
                "arm": row.arm,
                "metric": row.metric,
                "n (control / arm)": f"{int(row.n_control):,} / {int(row.n_arm):,}",
                "control": rate(row.rate_control, is_revenue),
                "arm rate": rate(row.rate_arm, is_revenue),
                f"abs. lift [{level}]": f"{difference(row.abs_lift, is_revenue)} "
                f"[{difference(row.abs_ci_low, is_revenue)}, {difference(row.abs_ci_high, is_revenue)}]",
                f"rel. lift [{level}]": f"{_signed_pct(row.rel_lift)} "
                f"[{_signed_pct(row.rel_ci_low)}, {_signed_pct(row.rel_ci_high)}]",
                "p": _p_value(row.p_value),
                "p adj.": _p_value(row.p_adjusted),
                "significant": "yes" if row.significant else "no",
                "P(beat control)": _pct(row.prob_beat_control),
                "power": _pct(row.power_achieved, 0),
                "MDE": difference(row.mde_abs, is_revenue),
                "note": row.note or "",
            }
        )
    return pd.DataFrame(rows).to_markdown(index=False)


def typed_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """The metrics frame with the same column types for every partition (an empty control-only partition
    included), so the warehouse table's types never depend on which segment was stored first."""
    metrics = metrics.reindex(columns=METRICS_COLUMNS)
    types: dict[str, object] = {column: "float64" for column in METRICS_COLUMNS}
    types |= dict.fromkeys(_METRIC_TEXT, ARROW_STRING)
    types |= dict.fromkeys(_METRIC_INTEGERS, "int64")
    types["significant"] = "bool"
    metrics = metrics.assign(significant=metrics["significant"].fillna(False))
    return metrics.astype(types)


def metrics_figures(metrics: pd.DataFrame) -> dict[str, object]:
    """Numbers Dagster plots across materializations: comparisons, significant ones, best lifts, min p."""
    figures: dict[str, object] = {
        "comparisons": len(metrics),
        "significant_comparisons": int(metrics["significant"].sum()) if len(metrics) else 0,
        "min_p_adjusted": _float(metrics["p_adjusted"].min() if len(metrics) else np.nan),
    }
    for metric in BINARY_METRICS:
        rows = metrics[metrics["metric"] == metric]
        figures[f"best_rel_lift_{metric}"] = _float(rows["rel_lift"].max() if len(rows) else np.nan)
    primary = metrics[(metrics["metric"] == PRIMARY_METRIC) & metrics["rel_lift"].notna()]
    if len(primary):
        best = primary.loc[primary["rel_lift"].idxmax()]
        figures["best_arm_on_conversion"] = f"{best['arm']} ({_signed_pct(best['rel_lift'])})"
    return figures


def _arm_table(balance: pd.DataFrame, gate: pd.DataFrame | None = None) -> pd.DataFrame:
    approved = gate[gate["approved"]] if gate is not None else pd.DataFrame(columns=["tone", "variant_id"])
    variant = dict(zip(approved["tone"], approved["variant_id"], strict=True))
    return pd.DataFrame(
        {
            "arm": balance["arm"],
            "variant_id": balance["arm"].map(variant).fillna("–"),
            "customers": balance["n"],
            "share": balance["share"].map(_pct),
            "expected share": balance["expected_share"].map(_pct),
            "deviation (points)": (balance["deviation"] * 100).map("{:+.2f}".format),
            "within tolerance": balance["within_tolerance"].map({True: "yes", False: "no"}),
            "enough customers": balance["meets_min_per_arm"].map({True: "yes", False: "no"}),
        }
    )


# --- Assets -------------------------------------------------------------------------------------------------


@asset(
    partitions_def=segment_partitions,
    metadata=SEGMENT_PARTITION_METADATA,
    kinds=STORAGE_KINDS,
    group_name=GROUP,
    # Read with SQL (only this segment's rows), not loaded through the IO manager.
    deps=[
        AssetKey(CUSTOMERS_TABLE),
        AssetKey(CUSTOMER_SEGMENTS_TABLE),
        AssetKey(MESSAGE_VARIANTS_TABLE),
        AssetKey(SAFETY_VERDICTS_TABLE),
    ],
)
def assignments(
    context: AssetExecutionContext, settings: PipelineSettings, warehouse: DuckDBWarehouse
) -> pd.DataFrame:
    """Every customer of the segment in `control` or the arm of one approved variant (segment, customer_id,
    arm, variant_id, assigned_at). Deterministic: a keyed hash of (experiment id, salt, customer id) dealt by
    weight, so a re-run with the same customers and approvals reproduces every arm; assigned_at is the run's
    time."""
    segment = context.partition_key
    config = load_experiment_config(settings)
    gate = read_variant_gate(warehouse, segment)
    variants = approved_arms(gate)
    weights = arm_weights(config, [tone for _, tone in variants])

    customers = read_segment_customers(warehouse, segment, ["customer_id"])
    customers["segment"] = segment
    frame = assign_arms(customers, variants, weights, config.experiment_id, config.salt)
    frame["assigned_at"] = pd.Timestamp.now(tz="UTC")
    frame = _as_arrow_strings(frame, ["segment", "customer_id", "arm", "variant_id"])

    balance = check_balance(
        frame, weights, config.assignment.balance_tolerance, config.assignment.min_customers_per_arm
    )
    control_only = not variants
    excluded = gate[~gate["approved"]]
    if control_only:
        note = (
            f"no approved variant ({'; '.join(excluded['tone'] + ': ' + excluded['reason'])}): all "
            f"{len(frame):,} customers are in control and there is nothing to compare"
        )
        context.log.warning(f"segment '{segment}': {note}")
    else:
        note = "; ".join(excluded["tone"] + " arm dropped: " + excluded["reason"]) or "all variants approved"
        if len(excluded):
            context.log.info(f"segment '{segment}': {note}; weights redistributed over the remaining arms")
    thin = balance[~balance["meets_min_per_arm"]]
    if len(thin):
        context.log.warning(
            f"segment '{segment}': fewer than {config.assignment.min_customers_per_arm} customers in arm(s) "
            + ", ".join(f"{arm} ({n})" for arm, n in zip(thin["arm"], thin["n"], strict=True))
        )
    context.add_output_metadata(
        {
            "experiment_id": config.experiment_id,
            "customers": len(frame),
            "arms": ", ".join(balance["arm"]),
            "control_only": control_only,
            "note": note,
            "arm_sizes": _markdown(_arm_table(balance, gate)),
            "variants": _markdown(
                gate[["tone", "source_variant_id", "variant_id", "status", "decision", "reason"]].fillna("–")
            ),
            **{f"customers_{arm}": int(n) for arm, n in zip(balance["arm"], balance["n"], strict=True)},
        }
    )
    return frame


@asset(
    partitions_def=segment_partitions,
    metadata=SEGMENT_PARTITION_METADATA,
    kinds=STORAGE_KINDS,
    group_name=GROUP,
    # Read together with SQL: the segment's assignments joined to the customers' historical rates.
    deps=[assignments, AssetKey(CUSTOMERS_TABLE)],
)
def engagement(
    context: AssetExecutionContext, settings: PipelineSettings, warehouse: DuckDBWarehouse
) -> pd.DataFrame:
    """Opened / clicked / converted per assigned customer: simulated from each customer's historical rates
    with a seeded per-arm uplift (or uplift 0 in A/A mode), or read from a recorded events file."""
    segment = context.partition_key
    config = load_experiment_config(settings)
    simulate = config.engagement.source == "simulate"
    history = ["historical_open_rate", "historical_click_rate"] if simulate else []
    assigned = read_assignments(warehouse, segment, customer_columns=history)
    source = engagement_source(config, settings, segment, sorted(assigned["arm"].dropna().unique()))
    outcomes = source.engagement(assigned)
    if isinstance(source, SimulatedEngagement):
        aa_note = ", A/A mode: every uplift 0" if config.simulation.aa_mode else ""
        described = f"simulated (seed {config.seed}{aa_note})"
        truth = pd.DataFrame(
            {
                "arm": list(source.uplifts),
                "true relative uplift": [_signed_pct(u) for u in source.uplifts.values()],
            }
        )
        # The simulation keeps row order: take its flags, keep the Arrow-backed key columns.
        frame = assigned[ASSIGNMENT_COLUMNS].assign(
            **{flag: outcomes[flag].to_numpy() for flag in ENGAGEMENT_FLAGS}
        )
    else:
        described = f"recorded: {source.source}"
        truth = pd.DataFrame()
        columns = [*ENGAGEMENT_COLUMNS, *([REVENUE_METRIC] if REVENUE_METRIC in outcomes.columns else [])]
        frame = _as_arrow_strings(outcomes[columns], ASSIGNMENT_COLUMNS)
    del outcomes, assigned  # the simulation's per-row Python strings: free them before the frame is stored

    funnel = frame.groupby("arm", observed=True, sort=True).agg(
        sent=("arm", "size"),
        opened=("opened", "mean"),
        clicked=("clicked", "mean"),
        converted=("converted", "mean"),
    )
    funnel_table = funnel.reset_index().assign(
        **{column: funnel[column].map(_pct).to_numpy() for column in ("opened", "clicked", "converted")}
    )
    context.add_output_metadata(
        {
            "source": described,
            "customers": len(frame),
            "funnel": _markdown(funnel_table),
            "true_uplifts": _markdown(truth),
            "open_rate": _float(frame["opened"].mean() if len(frame) else np.nan),
            "click_rate": _float(frame["clicked"].mean() if len(frame) else np.nan),
            "conversion_rate": _float(frame["converted"].mean() if len(frame) else np.nan),
        }
    )
    return frame


@asset(
    partitions_def=segment_partitions,
    metadata=SEGMENT_PARTITION_METADATA,
    kinds=STORAGE_KINDS,
    group_name=GROUP,
    # engagement is read with SQL without customer ids; the approved arms come from the gate tables.
    deps=[engagement, AssetKey(MESSAGE_VARIANTS_TABLE), AssetKey(SAFETY_VERDICTS_TABLE)],
)
def experiment_metrics(
    context: AssetExecutionContext, settings: PipelineSettings, warehouse: DuckDBWarehouse
) -> pd.DataFrame:
    """Each approved arm against control per metric: n, rates, absolute and relative lift with CIs, p-value,
    Holm/BH-adjusted p and significance, achieved power, MDE and the Bayesian chance to beat control."""
    segment = context.partition_key
    config = load_experiment_config(settings)
    statistics = config.statistics
    gate = read_variant_gate(warehouse, segment)
    expected = [CONTROL, *(tone for _, tone in approved_arms(gate))]
    outcomes = read_engagement(warehouse, segment)
    metrics = typed_metrics(
        compute_experiment_metrics(
            outcomes, statistics.alpha, statistics.power, statistics.correction, expected_arms=expected
        )
    )
    if metrics.empty:
        context.log.warning(f"segment '{segment}': control only (no approved variant), no comparisons")
    context.add_output_metadata(
        {
            "customers": len(outcomes),
            "metrics": MetadataValue.md(metrics_markdown(metrics, statistics.alpha)),
            "correction": statistics.correction,
            "alpha": statistics.alpha,
            **metrics_figures(metrics),
        }
    )
    return metrics


@asset(kinds=STORAGE_KINDS, group_name=GROUP, deps=[engagement])
def pooled_experiment_metrics(
    context: AssetExecutionContext, settings: PipelineSettings, warehouse: DuckDBWarehouse
) -> pd.DataFrame:
    """Each arm against control pooled over all segments, stratified by segment (Mantel-Haenszel weights, CMH
    test), so segments with different arm mixes cannot bias the pooled lift (segment = `__pooled__`)."""
    statistics = load_experiment_config(settings).statistics
    outcomes = read_engagement(warehouse)
    metrics = typed_metrics(
        compute_pooled_metrics(outcomes, statistics.alpha, statistics.power, statistics.correction)
    )
    context.add_output_metadata(
        {
            "segments": int(outcomes["segment"].nunique()),
            "customers": len(outcomes),
            "metrics": MetadataValue.md(metrics_markdown(metrics, statistics.alpha)),
            "correction": statistics.correction,
            **metrics_figures(metrics),
        }
    )
    return metrics


def read_approved_field_values(warehouse: DuckDBWarehouse, segment: str) -> set[str]:
    """The tier and city values the safety stage approved for this segment's opening lines. Fail closed: none
    when the safety stage has not screened them (no table, or no rows for the segment)."""
    with warehouse.connect() as connection:
        if not table_exists(connection, PERSONAL_FIELDS_TABLE):
            return set()
        rows = connection.execute(
            f"select value from {SCHEMA}.{PERSONAL_FIELDS_TABLE} where segment = ? and decision = 'approved'",
            [segment],
        ).fetchall()
    return {row[0] for row in rows}


@asset(
    partitions_def=segment_partitions,
    metadata=SEGMENT_PARTITION_METADATA,
    kinds=STORAGE_KINDS,
    group_name=GROUP,
    # Read with SQL: the segment's treated customers joined to their tier, city and recency; the variants.
    deps=[
        assignments,
        AssetKey(CUSTOMERS_TABLE),
        AssetKey(MESSAGE_VARIANTS_TABLE),
        AssetKey(SAFETY_VERDICTS_TABLE),
    ],
)
def personalized_messages(context: AssetExecutionContext, warehouse: DuckDBWarehouse) -> pd.DataFrame:
    """Each customer in a tone arm: their variant's subject and a personal opening line from name-free fields
    (tier, city, time since last engagement). The body is not copied per customer: the full text is
    `lib.personalization.render_message(opening_line, body)` with the body of the approved safety_verdicts row
    (the screened text) joined on (segment, variant_id). Control customers get the regular newsletter and have
    no row."""
    segment = context.partition_key
    gate = read_variant_gate(warehouse, segment)
    approved = gate[gate["approved"]].set_index("variant_id")
    rows = read_assignments(
        warehouse, segment, ["tier", "location", "last_engagement_days"], treated_only=True
    )
    stale = sorted(set(rows["variant_id"].dropna().unique()) - set(approved.index))
    if stale or rows["variant_id"].isna().any():
        raise Failure(
            f"segment '{segment}': assignments name variant(s) {stale or '(none)'} that are not approved now "
            "(blocked or regenerated since the assignment): re-materialize assignments for this partition"
        )
    # A handful of variants: map codes rather than each row's string.
    codes, variant_ids = pd.factorize(rows["variant_id"])
    subjects = pa.array(
        approved["subject"].reindex(np.asarray(variant_ids, dtype=object)).astype(str).tolist()
    )
    rows["subject"] = pd.array(subjects.take(pa.array(codes)), dtype=ARROW_STRING)
    allowed = read_approved_field_values(warehouse, segment)
    quoted = personal_field_values(rows["tier"], rows["location"])
    withheld = [value for value in quoted if value not in allowed]
    rows["opening_line"] = opening_lines(
        rows["arm"], rows["tier"], rows["location"], rows["last_engagement_days"], allowed_fields=allowed
    )  # same index as rows; stays Arrow-backed (no Python string per customer)
    frame = rows[PERSONALIZED_COLUMNS]

    control = count_rows(warehouse, ASSIGNMENTS_TABLE, segment, f"arm = '{CONTROL}'")
    context.add_output_metadata(
        {
            "messages": len(frame),
            "control_customers_without_message": control,
            "distinct_opening_lines": int(frame["opening_line"].nunique()),
            # Tier and city values left out of the lines: not approved (or never screened) by the safety stage.
            "personal_field_values_withheld": len(withheld),
            "sample": _markdown(
                frame.drop_duplicates("opening_line").head(5)[
                    ["arm", "variant_id", "subject", "opening_line"]
                ]
            ),
        }
    )
    return frame


# --- Checks (per segment partition) -------------------------------------------------------------------------
# Each check aggregates the stored partition with SQL instead of loading it: a count per arm is all most need.


def _examples(ids: Iterable[object] | None) -> str:
    """Customer ids, pseudonymized (metadata is shown in the UI and kept in the event log)."""
    return ", ".join(hash_customer_id(value) for value in ids or ()) or "none"


_COMPLETENESS_SQL = f"""
with expected as (select customer_id from {SCHEMA}.{CUSTOMER_SEGMENTS_TABLE} where segment = $segment),
     assigned as (select customer_id, arm from {SCHEMA}.{ASSIGNMENTS_TABLE} where segment = $segment),
     missing as (select customer_id from expected anti join assigned using (customer_id)),
     unexpected as (select distinct customer_id from assigned anti join expected using (customer_id)),
     duplicated as (select customer_id from assigned group by customer_id having count(*) > 1)
select (select count(*) from expected),
       (select count(*) from assigned),
       (select count(*) from missing),
       (select count(*) - count(distinct customer_id) from assigned),
       (select count(*) from unexpected),
       (select count(*) from assigned where arm is null),
       (select list(customer_id order by customer_id) from (select * from missing order by 1 limit 5)),
       (select list(customer_id order by customer_id) from (select * from duplicated order by 1 limit 5)),
       (select list(customer_id order by customer_id) from (select * from unexpected order by 1 limit 5))
"""


@asset_check(asset=assignments, name=ASSIGNMENT_COMPLETE, blocking=True, partitions_def=segment_partitions)
def assignment_complete(context: AssetCheckExecutionContext, warehouse: DuckDBWarehouse) -> AssetCheckResult:
    """Every customer of the segment (customer_segments) is assigned exactly once, to an arm."""
    segment = context.partition_key
    with warehouse.connect() as connection:
        _require_tables(connection, [CUSTOMER_SEGMENTS_TABLE, ASSIGNMENTS_TABLE], segment)
        row = connection.execute(_COMPLETENESS_SQL, {"segment": segment}).fetchone()
    expected, rows, missing, duplicates, unexpected, without_arm, *examples = row
    problems = {
        "missing customers": missing,
        "duplicate rows": duplicates,
        "customers not in the segment": unexpected,
        "rows without an arm": without_arm,
    }
    found = [f"{count:,} {label}" for label, count in problems.items() if count]
    return AssetCheckResult(
        passed=not found,
        description=(
            f"segment '{segment}': {expected:,} customers expected, {rows:,} rows"
            + (f"; {', '.join(found)}" if found else ", each customer exactly once")
        ),
        metadata={
            "expected_customers": expected,
            "assigned_rows": rows,
            "missing_customers": missing,
            "duplicate_rows": duplicates,
            "unexpected_customers": unexpected,
            "rows_without_arm": without_arm,
            **{
                f"examples_{kind}": _examples(ids)
                for kind, ids in zip(("missing", "duplicated", "unexpected"), examples, strict=True)
            },
        },
    )


@asset_check(asset=assignments, name=ARMS_BALANCED, partitions_def=segment_partitions)
def arms_balanced(
    context: AssetCheckExecutionContext, settings: PipelineSettings, warehouse: DuckDBWarehouse
) -> AssetCheckResult:
    """Each arm's share is within the configured tolerance of its weight and each arm has at least the
    configured minimum of customers; a warning (it does not block), with observed vs expected per arm."""
    segment = context.partition_key
    experiment = load_experiment_config(settings)
    config = experiment.assignment
    weights = arm_weights(
        experiment, [tone for _, tone in approved_arms(read_variant_gate(warehouse, segment))]
    )
    counts = arm_counts(warehouse, ASSIGNMENTS_TABLE, segment)
    unexpected = sorted(set(counts.index) - set(weights))
    balance = balance_from_counts(
        segment, counts.drop(unexpected), weights, config.balance_tolerance, config.min_customers_per_arm
    )
    problems = [f"arm(s) {unexpected} assigned but not approved for this segment"] if unexpected else []
    for row in balance.itertuples(index=False):  # one row per arm
        if not row.within_tolerance:
            problems.append(
                f"arm '{row.arm}': share {_pct(row.share)} vs expected {_pct(row.expected_share)} "
                f"(tolerance ±{config.balance_tolerance * 100:g} points)"
            )
        if not row.meets_min_per_arm:
            problems.append(
                f"arm '{row.arm}': {row.n} customer(s), below the minimum of {config.min_customers_per_arm}"
            )
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.WARN,
        description=f"segment '{segment}': " + ("; ".join(problems) or "every arm within tolerance"),
        metadata={
            "arms": _markdown(_arm_table(balance)),
            "max_deviation_points": _float(balance["deviation"].abs().max() * 100 if len(balance) else 0.0),
            "tolerance_points": _float(config.balance_tolerance * 100),
            "smallest_arm_customers": int(balance["n"].min()) if len(balance) else 0,
            "min_customers_per_arm": config.min_customers_per_arm,
            "unexpected_arms": ", ".join(unexpected) or "none",
        },
    )


@asset_check(asset=engagement, name=SAMPLE_RATIO_MATCHES, blocking=True, partitions_def=segment_partitions)
def sample_ratio_matches(
    context: AssetCheckExecutionContext, settings: PipelineSettings, warehouse: DuckDBWarehouse
) -> AssetCheckResult:
    """The analysed arm sizes match the design weights: sample-ratio-mismatch chi-square, fails when p < 0.001
    (customers lost or duplicated between assignment and analysis)."""
    segment = context.partition_key
    config = load_experiment_config(settings)
    weights = arm_weights(config, [tone for _, tone in approved_arms(read_variant_gate(warehouse, segment))])
    counts = arm_counts(warehouse, ENGAGEMENT_TABLE, segment)
    unexpected = sorted(set(counts.index) - set(weights))
    if unexpected:
        chi2, p_value = float("inf"), 0.0  # customers in an arm the design does not have: a certain mismatch
    else:
        chi2, p_value = sample_ratio_mismatch(counts, weights)
    arms = [*weights, *unexpected]
    observed = counts.reindex(arms, fill_value=0)
    expected_share = pd.Series(weights).reindex(arms, fill_value=0.0)
    table = pd.DataFrame(
        {
            "arm": arms,
            "observed": observed.to_numpy(),
            "expected": (expected_share * observed.sum()).round(1).to_numpy(),
            "observed share": (observed / max(observed.sum(), 1)).map(_pct).to_numpy(),
            "expected share": expected_share.map(_pct).to_numpy(),
        }
    )
    mismatch = bool(p_value < SRM_ALERT_P)  # NaN (no customers) is not a mismatch
    return AssetCheckResult(
        passed=not mismatch,
        description=(
            f"segment '{segment}': chi² = {chi2:.2f}, p = {_p_value(p_value)} "
            + (f"< {SRM_ALERT_P}: sample ratio mismatch" if mismatch else f"(alarm below {SRM_ALERT_P})")
            + (f"; unexpected arm(s) {unexpected}" if unexpected else "")
        ),
        metadata={
            "arms": _markdown(table),
            "chi2": _float(chi2 if np.isfinite(chi2) else np.nan),
            "p_value": _float(p_value),
            "alarm_p": SRM_ALERT_P,
            "customers": int(observed.sum()),
        },
    )


@asset_check(asset=engagement, name=FUNNEL_CONSISTENT, blocking=True, partitions_def=segment_partitions)
def funnel_consistent(context: AssetCheckExecutionContext, warehouse: DuckDBWarehouse) -> AssetCheckResult:
    """Nobody clicked without opening or converted without clicking."""
    segment = context.partition_key
    with warehouse.connect() as connection:
        _require_tables(connection, [ENGAGEMENT_TABLE], segment)
        by_arm = connection.execute(
            "select arm, count(*) as customers, "
            'count(*) filter (where clicked and not opened) as "clicked without opening", '
            'count(*) filter (where converted and not clicked) as "converted without clicking" '
            f"from {SCHEMA}.{ENGAGEMENT_TABLE} where segment = ? group by arm order by arm",
            [segment],
        ).fetchdf()
    clicks = int(by_arm["clicked without opening"].sum())
    conversions = int(by_arm["converted without clicking"].sum())
    return AssetCheckResult(
        passed=clicks + conversions == 0,
        description=(
            f"segment '{segment}': {clicks:,} click(s) without an open, "
            f"{conversions:,} conversion(s) without a click"
        ),
        metadata={
            "customers": int(by_arm["customers"].sum()),
            "clicks_without_open": clicks,
            "conversions_without_click": conversions,
            "by_arm": _markdown(by_arm),
        },
    )
