"""Stage 4 — safety: each valid variant is screened (subject and body) before it can reach the experiment.

`safety_verdicts` holds one row per variant of the segment with the final screened text, the severities of the
four harm categories and phishing, blocklist hits, `decision` (approved | blocked) and reasons. Experimentation
takes the text it sends from `safety_verdicts` rows with `decision == 'approved'` (the gate in the data path).

Fail-closed: a variant is approved only when both texts were fully screened (every concern, valid severities, no
error, a language the screen judges) and every severity is below its threshold with no blocklist hit. A variant
blocked for its content may be rewritten by the generation stage's `llm` (workflows/safety.py) and is screened
again. With `second_opinion.enabled`, a variant approved near a threshold is also judged by that `llm`; the second
opinion can only block (and blocks when it cannot be had). Credentials the service refuses (HTTP 401/403) stop
the run with a one-line configuration error.

Every screening decision is appended to `safety_audit` (store/safety.py: hashes, not text) in one transaction
that reads the chain head and appends; the head is also kept in this asset's materialization metadata. The three
blocking checks are evaluated on the frame about to be stored (gates.gated_output): a failure stores nothing.
"""

import json
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    MetadataValue,
    PreviewWarning,
    asset,
)

from personalization_assets.config.safety import SafetyConfig
from personalization_assets.constants import (
    CUSTOMER_SEGMENTS_TABLE,
    CUSTOMERS_TABLE,
    SEGMENT_PARTITION_METADATA,
    STORAGE_KINDS,
)
from personalization_assets.gates import blocking_spec, gated_output
from personalization_assets.lib.audit_chain import verify_audit_chain
from personalization_assets.lib.generation import STATUS_VALID
from personalization_assets.lib.safety import APPROVED, BLOCKED, CONCERNS
from personalization_assets.lib.safety_checks import screening_coverage, unsafe_approvals
from personalization_assets.metadata import markdown_preview
from personalization_assets.partitions import segment_partitions
from personalization_assets.schemas import SafetyVerdictsFrame
from personalization_assets.store.safety import (
    AUDIT_TABLE,
    CACHED_BACKEND_SUFFIX,
    CHAIN_ROOT,
    HEAD_HASH,
    HEAD_SEQUENCE,
    ScreenCache,
    append_audit,
    latest_anchor,
    read_audit,
    read_personal_field_values,
    recorded_audit_heads,
    store_field_verdicts,
)
from personalization_assets.workflows.safety import (
    FieldScreening,
    Rewriter,
    Screening,
    SecondOpinion,
    audit_records,
    candidates_from_variants,
    field_audit_records,
    field_verdicts,
    screen_personal_fields,
    screen_with_rewrites,
    second_opinion_counts,
    verdicts_frame,
)
from resources.content_safety import ContentSafetyConfigError, ContentSafetyResource
from resources.llm import LLMResource
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse

# Partitioned asset checks are a Dagster preview feature; they are what makes the gates per segment partition.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning)

GROUP = "safety"
VERDICTS_ASSET = AssetKey("safety_verdicts")
NO_UNSAFE = "no_unsafe_variant_approved"
EVERY_SCREENED = "every_variant_screened"
CHAIN_INTACT = "audit_chain_intact"


def _md(frame: pd.DataFrame) -> MetadataValue:
    return markdown_preview(frame, rows=50) if len(frame) else MetadataValue.md("_none_")


def _thresholds(config: SafetyConfig) -> str:
    return ", ".join(f"{c} >= {t}" for c, t in config.thresholds.items())


def check_no_unsafe_approved(verdicts: pd.DataFrame, config: SafetyConfig, audit: pd.DataFrame) -> AssetCheckResult:
    """Approved variants have every severity below its threshold, no blocklist hit (stored or found again with
    the current terms), and an approved audit record for exactly this text."""
    failing, undecided = unsafe_approvals(verdicts, config.thresholds, config.blocklist, audit)
    return AssetCheckResult(
        check_name=NO_UNSAFE,
        passed=failing.empty and undecided.empty,
        metadata={
            "approved_variants": int((verdicts["decision"] == APPROVED).sum()),
            "failing_variants": len(failing) + len(undecided),
            "failures": _md(failing),
            "unknown_decisions": ", ".join(map(str, undecided["decision"].unique())) or "none",
            "thresholds": _thresholds(config),
        },
    )


def check_every_variant_screened(verdicts: pd.DataFrame, message_variants: pd.DataFrame) -> AssetCheckResult:
    """Every valid variant of the partition has exactly one verdict; no verdict is for an unknown variant."""
    valid = message_variants.loc[message_variants["status"] == STATUS_VALID, "variant_id"]
    coverage = screening_coverage(verdicts, valid)
    return AssetCheckResult(
        check_name=EVERY_SCREENED,
        passed=not any(coverage.values()),
        metadata={
            "valid_variants": int(valid.nunique()),
            "verdicts": len(verdicts),
            **{name: ", ".join(ids) or "none" for name, ids in coverage.items()},
        },
    )


def check_audit_chain(audit: pd.DataFrame, anchors: list) -> AssetCheckResult:
    """The whole safety_audit hash chain verifies, and it still reaches the furthest head recorded in this
    asset's materialization metadata (so deleting the newest records is caught too)."""
    verification = verify_audit_chain(audit)
    root_rows = audit.loc[audit["sequence"] == 0, "record_hash"] if not audit.empty else pd.Series(dtype=object)
    anchor = latest_anchor(anchors, str(root_rows.iloc[0]) if len(root_rows) else None)
    anchored = None
    if anchor is not None:
        anchored = verify_audit_chain(audit.loc[audit["sequence"] <= anchor.sequence], expected_head=anchor.record_hash)
    message = verification.message if not verification.ok or anchored is None else anchored.message
    return AssetCheckResult(
        check_name=CHAIN_INTACT,
        passed=verification.ok and (anchored is None or anchored.ok),
        metadata={
            "records": len(audit),
            "result": message,
            "first_bad_record": (anchored.first_bad_record_id if anchored and not anchored.ok else None)
            or verification.first_bad_record_id
            or "none",
            "expected_head_sequence": anchor.sequence if anchor else -1,
            "expected_head_hash": anchor.record_hash if anchor else "none recorded for this chain",
        },
    )


@asset(
    partitions_def=segment_partitions,
    metadata=SEGMENT_PARTITION_METADATA,
    kinds=STORAGE_KINDS,
    group_name=GROUP,
    # Read with SQL: the tier and city values of the segment's customers, screened for the opening lines.
    deps=[AssetKey(CUSTOMERS_TABLE), AssetKey(CUSTOMER_SEGMENTS_TABLE)],
    dagster_type=SafetyVerdictsFrame,
    check_specs=[
        blocking_spec(NO_UNSAFE, "safety_verdicts", check_no_unsafe_approved.__doc__ or ""),
        blocking_spec(EVERY_SCREENED, "safety_verdicts", check_every_variant_screened.__doc__ or ""),
        blocking_spec(CHAIN_INTACT, "safety_verdicts", check_audit_chain.__doc__ or ""),
    ],
)
def safety_verdicts(
    context: AssetExecutionContext,
    message_variants: pd.DataFrame,
    settings: PipelineSettings,
    warehouse: DuckDBWarehouse,
    content_safety: ContentSafetyResource,
    llm: LLMResource,
):
    """Each valid variant's final screened text, severities (0-7) of the four categories and phishing, blocklist
    hits and approved | blocked with reasons; every screening decision is also appended to the hash-chained
    `safety_audit` log."""
    config = settings.stage(SafetyConfig)
    segment = context.partition_key
    candidates = candidates_from_variants(message_variants)
    cache = ScreenCache(warehouse, content_safety, enabled=config.cache)
    # None when off; a ConfigError (before anything is screened) when enabled with the embedded composer.
    opinion_resource = config.second_opinion_resource(llm)
    second_opinion = (
        SecondOpinion(
            opinion_resource,
            config.second_opinion.margin,
            ScreenCache(warehouse, opinion_resource, enabled=config.cache),
            screen=content_safety,
            model_margin=config.second_opinion.model_margin,
        )
        if opinion_resource is not None
        else None
    )
    field_values = read_personal_field_values(warehouse, segment)
    started = time.perf_counter()
    try:
        # The customer fields the opening lines quote are screened while the variants are (their own pool).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="personal-fields") as fields_runner:
            fields_job = fields_runner.submit(
                screen_personal_fields, field_values, content_safety, config.thresholds, config.max_concurrency, cache
            )
            final, history = screen_with_rewrites(
                content_safety,
                candidates,
                config.thresholds,
                config.max_concurrency,
                config.rewrite_attempts,
                rewriter=lambda: Rewriter(settings, llm, warehouse, segment),
                log=context.log.warning,
                cache=cache,
                second_opinion=second_opinion,
            )
            field_screenings = fields_job.result()
    except ContentSafetyConfigError:  # not a verdict on any text: stop the run with the error that says what to fix
        raise
    wall_seconds = time.perf_counter() - started
    cache_writes = cache.flush()
    if second_opinion is not None and second_opinion.cache is not None:
        cache_writes += second_opinion.cache.flush()

    records = audit_records(segment, context.run.run_id, history)
    if field_screenings:
        field_records = field_audit_records(segment, context.run.run_id, field_screenings)
        records = pd.concat([records, field_records], ignore_index=True) if len(records) else field_records
    anchors = recorded_audit_heads(context.instance, VERDICTS_ASSET)
    appended = append_audit(warehouse, records, anchors)
    fields = field_verdicts(segment, field_screenings)
    store_field_verdicts(warehouse, segment, fields)
    withheld = fields.loc[fields["decision"] != APPROVED]
    if len(withheld):
        context.log.warning(
            f"segment '{segment}': {len(withheld)} of {len(fields)} customer field value(s) withheld from "
            "opening lines by safety screening: "
            + "; ".join(sorted({r for reasons in withheld["reasons"] for r in json.loads(reasons)}))
        )
    if appended.new_chain:
        context.log.warning(
            f"{AUDIT_TABLE} in {warehouse.path} starts a new hash chain: the chain this Dagster instance "
            "recorded before is not in this warehouse (a new warehouse file, or the table was dropped)"
        )

    verdicts = verdicts_frame(segment, final)
    approved = verdicts.loc[verdicts["decision"] == APPROVED]
    blocked = verdicts.loc[verdicts["decision"] == BLOCKED]
    for row in blocked.itertuples():
        context.log.warning(
            f"segment '{segment}', tone '{row.tone}' blocked after {row.attempts} screening(s): "
            + "; ".join(json.loads(row.reasons))
        )
    if approved.empty:
        context.log.warning(
            f"segment '{segment}': no approved variant ({len(candidates)} screened, "
            f"{len(message_variants) - len(candidates)} rejected by generation): the segment gets no message "
            "in the experiment"
        )
    screenings: list[Screening | FieldScreening] = [*history, *field_screenings]
    metadata = {
        "backend": content_safety.backend_name,
        "variants_screened": len(verdicts),
        "approved": len(approved),
        "blocked": len(blocked),
        "all_variants_blocked": approved.empty,
        "rewritten": int(verdicts["rewritten"].sum()),
        "rewrites_approved": int((verdicts["rewritten"] & (verdicts["decision"] == APPROVED)).sum()),
        "screening_decisions": len(screenings),
        "service_requests": sum(s.outcome.requests for s in screenings),
        "cached_screenings": sum(s.outcome.backend.endswith(CACHED_BACKEND_SUFFIX) for s in screenings),
        "cache_entries_written": cache_writes,
        "screening_seconds": MetadataValue.float(round(wall_seconds, 3)),
        "thresholds": _thresholds(config),
        "second_opinion": (
            f"{opinion_resource.backend_name}, margin {config.second_opinion.margin}" if opinion_resource else "off"
        ),
        **second_opinion_counts(history),
        "blocked_reasons": _md(
            pd.DataFrame(
                {"tone": blocked["tone"], "reasons": blocked["reasons"].map(lambda r: "; ".join(json.loads(r)))}
            )
        ),
        "preview": _md(
            pd.DataFrame(
                {
                    "tone": verdicts["tone"],
                    "decision": verdicts["decision"],
                    "max_severity": verdicts[list(CONCERNS)].max(axis=1).astype("Int64"),
                    "rewritten": verdicts["rewritten"],
                    "subject": verdicts["subject"],
                }
            )
        ),
        "personal_field_values_screened": len(fields),
        "personal_field_values_withheld": len(withheld),
        "audit_records_appended": appended.appended,
        HEAD_SEQUENCE: appended.head_sequence,
        HEAD_HASH: appended.head_hash,
        CHAIN_ROOT: appended.root,
    }
    audit = read_audit(warehouse)
    results = [
        check_no_unsafe_approved(verdicts, config, audit),
        check_every_variant_screened(verdicts, message_variants),
        # The head just appended is not yet in the instance's metadata: verify up to the recorded ones.
        check_audit_chain(audit, anchors),
    ]
    yield from gated_output(verdicts, results, metadata)
