"""Stage 4 — safety: each valid variant is screened (subject and body) before it can reach the experiment.

`safety_verdicts` holds one row per variant of the segment with the final screened text, the four severities,
blocklist hits, `decision` (approved | blocked) and reasons. Experimentation takes the text it sends from
`safety_verdicts` rows with `decision == 'approved'` (a rewritten variant's text exists only here).

Fail-closed: a variant is approved only when both texts were fully screened (all four categories, valid
severities, no error) and every severity is below its threshold with no blocklist hit. A variant blocked for
its content may be rewritten by the generation stage's `llm` with the reasons stated (`rewrite_attempts`) and
is screened again; a screening failure is not rewritten (the service, not the text, is the problem).

Every screening decision is appended to `safety_audit` (hashes, not text) in one transaction that reads the
chain head and appends, so concurrent partitions never fork the hash chain. The head is also kept in this
asset's materialization metadata, which `audit_chain_intact` and the next append use to detect truncation.
"""

import hashlib
import json
import random
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    DagsterInstance,
    MetadataValue,
    PreviewWarning,
    asset,
    asset_check,
)
from pydantic import Field, field_validator

from personalization_assets.constants import (
    CUSTOMER_SEGMENTS_TABLE,
    CUSTOMERS_TABLE,
    PERSONAL_FIELDS_TABLE,
    SEGMENT_PARTITION_METADATA,
    STORAGE_KINDS,
)
from personalization_assets.config.generation import GenerationConfig
from personalization_assets.store.generation import ResponseCache
from personalization_assets.workflows.generation import Variant, regenerate_variant, variant_request_for
from personalization_assets.lib.generation import STATUS_VALID
from personalization_assets.lib.personalization import personal_field_values
from personalization_assets.lib.safety import (
    AUDIT_FIELDS,
    CATEGORIES,
    DEFAULT_THRESHOLDS,
    GENESIS_HASH,
    chain_audit_records,
    decide,
    find_blocklist_hits,
    text_sha256,
    validate_thresholds,
    verify_audit_chain,
)
from personalization_assets.partitions import segment_partitions
from resources.content_safety import (
    CONFIG_FILE,
    ContentSafetyBackendsConfig,
    ContentSafetyResource,
    ScreenOutcome,
    merge_outcomes,
)
from resources.llm import LLMResource
from resources.search import read_content_index
from resources.settings import PipelineSettings
from resources.warehouse import SCHEMA, DuckDBWarehouse, table_exists

# Partitioned asset checks are a Dagster preview feature; they are what makes the gates per segment partition.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning
)

GROUP = "safety"
SAFETY_CONFIG_FILE = CONFIG_FILE
AUDIT_TABLE = "safety_audit"
SCREEN_CACHE_TABLE = "safety_screen_cache"
CACHED_BACKEND_SUFFIX = " (cached)"
VERDICTS_ASSET = AssetKey("safety_verdicts")
APPROVED = "approved"
BLOCKED = "blocked"
VERDICT_COLUMNS = [
    "segment",
    "variant_id",
    "source_variant_id",
    "tone",
    "subject",
    "body",
    "citations",
    *CATEGORIES,
    "blocklist_hits",
    "decision",
    "reasons",
    "backend",
    "screened_at",
    "attempts",
    "rewritten",
]
AUDIT_COLUMNS = ["sequence", *AUDIT_FIELDS, "prev_hash", "record_hash"]
# Materialization metadata keys that anchor the audit chain outside the warehouse.
HEAD_SEQUENCE, HEAD_HASH, CHAIN_ROOT = "audit_head_sequence", "audit_head_hash", "audit_chain_root"


# --- Configuration ------------------------------------------------------------------------------------------


class SafetyConfig(ContentSafetyBackendsConfig):
    """config/safety_thresholds.yaml"""

    thresholds: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_THRESHOLDS),
        description="block when severity >= threshold, per category (0-8; 8 never blocks)",
    )
    rewrite_attempts: int = Field(
        default=1, ge=0, le=5, description="rewrites of a variant blocked for content"
    )
    max_concurrency: int = Field(
        default=6, ge=1, le=32, description="screening calls in flight per partition"
    )
    cache: bool = Field(
        default=True,
        description="reuse a remote backend's complete outcome for a text screened before with the same "
        "settings (decisions still apply the current thresholds, and every one is audited)",
    )

    @field_validator("thresholds")
    @classmethod
    def _complete_thresholds(cls, thresholds: dict[str, int]) -> dict[str, int]:
        return validate_thresholds(thresholds)


def load_safety_config(settings: PipelineSettings) -> SafetyConfig:
    return settings.load(SAFETY_CONFIG_FILE, SafetyConfig)


# --- Decisions ----------------------------------------------------------------------------------------------


def decide_outcome(
    outcome: ScreenOutcome, thresholds: dict[str, int], extra_reasons: Sequence[str] = ()
) -> tuple[str, list[str]]:
    """approved | blocked with reasons. Approved only if screening is complete, nothing reaches a threshold,
    no blocklist term was found and there is no extra reason (e.g. a rewrite that broke the format rules)."""
    decision, reasons = decide(outcome.severities, outcome.blocklist_hits, thresholds)
    if outcome.errors:
        # The errors say why categories are missing; the per-category "missing" lines would only repeat it.
        reasons = [
            *outcome.errors,
            *(r for r in reasons if not r.startswith("screening incomplete: missing")),
        ]
    reasons.extend(extra_reasons)
    return (BLOCKED if reasons or outcome.errors else decision), reasons


def screened_text(subject: str, body: str) -> str:
    """The text a variant's audit hash covers: subject, a blank line, body."""
    return f"{subject}\n\n{body}"


@dataclass(frozen=True)
class Candidate:
    """One variant text to screen: the original (attempt 0) or a rewrite of it."""

    source_variant_id: str
    variant_id: str
    tone: str
    subject: str
    body: str
    citations: str  # JSON list
    attempt: int = 0
    format_problems: tuple[str, ...] = ()  # a rewrite the generation rules rejected
    feedback: tuple[str, ...] = ()  # what the writer was told when asked for this rewrite


@dataclass(frozen=True)
class Screening:
    candidate: Candidate
    outcome: ScreenOutcome
    decision: str
    reasons: tuple[str, ...]
    screened_at: datetime
    notes: tuple[str, ...] = ()  # what happened after this screening (a failed rewrite)

    @property
    def rewritable(self) -> bool:
        """Blocked for its content: screening completed, or the service found a blocklist term. A service
        failure is not fixed by rewriting."""
        return self.decision == BLOCKED and (not self.outcome.errors or bool(self.outcome.blocklist_hits))


class ScreenCache:
    """Complete outcomes of a remote backend in the warehouse table safety_screen_cache, keyed by a hash of
    the backend's outcome settings (endpoint, blocklists) and the text: an unchanged text is not sent again.

    Only complete, error-free outcomes are kept (a failure is retried next run); no text is stored. A hit
    comes back with `backend` "<backend> (cached)" and no service request; the decision is still made with
    the current thresholds and audited like any other. New outcomes are written by `flush()` in one
    transaction.
    """

    def __init__(self, warehouse: DuckDBWarehouse, resource: ContentSafetyResource, enabled: bool = True):
        self._warehouse = warehouse
        self.enabled = enabled and resource.cacheable
        self._settings = json.dumps(resource.outcome_settings(), sort_keys=True)
        self._pending: dict[str, ScreenOutcome] = {}
        self._lock = threading.Lock()

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self._settings}\n{text}".encode()).hexdigest()

    def lookup(self, texts: Iterable[str]) -> dict[str, ScreenOutcome]:
        """Stored outcomes of those `texts` that have one (one query for all)."""
        if not self.enabled:
            return {}
        keys = {self.key(text): text for text in texts}
        with self._lock:
            found = {keys[k]: outcome for k, outcome in self._pending.items() if k in keys}
        if self._warehouse.table_exists(SCREEN_CACHE_TABLE):
            rows = self._warehouse.read_table(
                SCREEN_CACHE_TABLE, "where cache_key in (select unnest(?))", [list(keys)]
            )
            for key, stored in zip(rows["cache_key"], rows["outcome_json"], strict=True):
                found[keys[key]] = _outcome_from_json(stored)
        return {
            text: replace(outcome, backend=outcome.backend + CACHED_BACKEND_SUFFIX, requests=0)
            for text, outcome in found.items()
        }

    def put(self, text: str, outcome: ScreenOutcome) -> None:
        if self.enabled and outcome.complete:
            with self._lock:
                self._pending[self.key(text)] = outcome

    def flush(self) -> int:
        """Write the new outcomes; returns how many were stored."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        rows = pd.DataFrame(
            {
                "cache_key": list(pending),
                "backend": [outcome.backend for outcome in pending.values()],
                "outcome_json": [_outcome_to_json(outcome) for outcome in pending.values()],
                "created_at": datetime.now(UTC),
            }
        )
        with self._warehouse.transaction() as connection:
            connection.execute(
                f"""create table if not exists {SCHEMA}.{SCREEN_CACHE_TABLE} (cache_key varchar primary key,
                    backend varchar, outcome_json varchar, created_at timestamp with time zone)"""
            )
            connection.register("new_screen_outcomes", rows)
            connection.execute(
                f"insert or ignore into {SCHEMA}.{SCREEN_CACHE_TABLE} by name "
                "select * from new_screen_outcomes"
            )
            connection.unregister("new_screen_outcomes")
        return len(pending)


def _outcome_to_json(outcome: ScreenOutcome) -> str:
    return json.dumps(
        {
            "severities": outcome.severities,
            "blocklist_hits": list(outcome.blocklist_hits),
            "backend": outcome.backend,
            "detail": {category: list(labels) for category, labels in outcome.detail.items()},
        },
        ensure_ascii=False,
    )


def _outcome_from_json(text: str) -> ScreenOutcome:
    stored = json.loads(text)
    return ScreenOutcome(
        severities={category: int(value) for category, value in stored["severities"].items()},
        blocklist_hits=tuple(stored["blocklist_hits"]),
        backend=stored["backend"],
        detail={category: tuple(labels) for category, labels in stored["detail"].items()},
    )


def _cached_screener(
    resource: ContentSafetyResource, cache: ScreenCache | None, texts: Sequence[str]
) -> Callable[[str], ScreenOutcome]:
    """`resource.screen`, answering from `cache` for those of `texts` it holds (one lookup for all) and adding
    new complete outcomes to it."""
    known = cache.lookup(texts) if cache is not None else {}

    def screen(text: str) -> ScreenOutcome:
        if text in known:
            return known[text]
        outcome = resource.screen(text)
        if cache is not None:
            cache.put(text, outcome)
        return outcome

    return screen


def screen_candidates(
    resource: ContentSafetyResource,
    candidates: Sequence[Candidate],
    thresholds: dict[str, int],
    pool: ThreadPoolExecutor,
    cache: ScreenCache | None = None,
) -> list[Screening]:
    """Screen subject and body of every candidate, all calls in `pool` at once; one decision per candidate.
    Texts with an outcome in `cache` are not sent; new complete outcomes are added to it."""
    screen = _cached_screener(resource, cache, [t for c in candidates for t in (c.subject, c.body)])
    futures = [
        (pool.submit(screen, candidate.subject), pool.submit(screen, candidate.body))
        for candidate in candidates
    ]
    screenings = []
    for candidate, (subject, body) in zip(candidates, futures, strict=True):
        outcome = merge_outcomes([subject.result(), body.result()], labels=["subject", "body"])
        extra = (
            ["rewrite rejected by the generation format rules: " + "; ".join(candidate.format_problems)]
            if candidate.format_problems
            else []
        )
        decision, reasons = decide_outcome(outcome, thresholds, extra)
        screenings.append(Screening(candidate, outcome, decision, tuple(reasons), datetime.now(UTC)))
    return screenings


def rewrite_feedback(screening: Screening) -> list[str]:
    """What the writer is told about a blocked variant (the composer drops sentences with quoted terms)."""
    problems = [f"The content-safety screen blocked the message: {'; '.join(screening.reasons)}."]
    for category, labels in screening.outcome.detail.items():
        problems.append(f"Flagged as {category.replace('_', '-')}: {', '.join(labels[:3])}.")
    problems.extend(f'Do not mention "{hit}" at all.' for hit in screening.outcome.blocklist_hits)
    problems.append(
        "Write it again with no violent, hateful, sexual or self-harm wording; keep offer, tone and sources."
    )
    return problems


# --- Rewrites through the generation stage ------------------------------------------------------------------


class Rewriter:
    """Asks the generation stage's llm for a rewrite of a blocked variant, with the reasons stated."""

    def __init__(
        self, settings: PipelineSettings, llm: LLMResource, warehouse: DuckDBWarehouse, segment: str
    ):
        self._settings, self._llm, self._segment = settings, llm, segment
        config = settings.stage(GenerationConfig)
        self.max_concurrency = config.max_concurrency
        self.cache = ResponseCache(warehouse, enabled=config.cache and llm.cacheable)
        # Read once, here: rewrites run in threads, and DuckDB refuses a read-only connection to a file that
        # another thread has open for writing.
        self._profiles = warehouse.read_table("segment_profiles")
        self._retrieved = warehouse.read_table("retrieved_content", "where segment = ?", [segment])
        self._content_index = read_content_index(warehouse, columns=["document_id", "keywords"])

    def rewrite(self, screening: Screening) -> Candidate:
        """The rewritten candidate (LLM failures propagate to the caller)."""
        candidate = screening.candidate
        request = variant_request_for(
            self._settings,
            self._llm,
            self._segment,
            candidate.tone,
            self._profiles,
            self._retrieved,
            self._content_index,
        )
        previous = Variant(
            segment=self._segment,
            variant_id=candidate.variant_id,
            tone=candidate.tone,
            subject=candidate.subject,
            body=candidate.body,
            citations=tuple(json.loads(candidate.citations or "[]")),
            status=STATUS_VALID,
            rejection_reasons=(),
            attempts=1,
            backend=self._llm.backend_name,
            model=self._llm.model_name,
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
            latency_ms=0.0,
            created_at=screening.screened_at,
        )
        # Feedback accumulates over rounds, so a second rewrite is not asked for the same thing as the first.
        feedback = (*candidate.feedback, *rewrite_feedback(screening))
        variant = regenerate_variant(self._llm, request, feedback, previous=previous, cache=self.cache)
        return Candidate(
            source_variant_id=candidate.source_variant_id,
            variant_id=variant.variant_id,
            tone=candidate.tone,
            subject=variant.subject,
            body=variant.body,
            citations=json.dumps(list(variant.citations)),
            attempt=candidate.attempt + 1,
            format_problems=() if variant.is_valid else variant.rejection_reasons or ("rejected",),
            feedback=feedback,
        )


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:300]}"


def screen_with_rewrites(
    resource: ContentSafetyResource,
    candidates: Sequence[Candidate],
    thresholds: dict[str, int],
    max_concurrency: int,
    rewrite_attempts: int,
    rewriter: Callable[[], Rewriter] | None,
    log: Callable[[str], None] = lambda message: None,
    cache: ScreenCache | None = None,
) -> tuple[list[Screening], list[Screening]]:
    """Screen every candidate; rewrite and re-screen those blocked for content (`rewrite_attempts` rounds).

    Returns (final screening per candidate in input order, every screening made in order, for the audit).
    """
    with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="screen") as pool:
        final = screen_candidates(resource, candidates, thresholds, pool, cache)
        history = list(final)
        writer = None
        for _ in range(rewrite_attempts):
            pending = [i for i, screening in enumerate(final) if screening.rewritable]
            if not pending or rewriter is None:
                break
            if writer is None:
                try:
                    writer = rewriter()
                except Exception as error:  # e.g. the generation inputs are gone: nothing can be rewritten
                    note = f"rewrite unavailable: {_one_line(error)}"
                    log(note)
                    for i in pending:
                        final[i] = replace(final[i], notes=(*final[i].notes, note))
                    break
            with ThreadPoolExecutor(
                max_workers=writer.max_concurrency, thread_name_prefix="rewrite"
            ) as writers:
                jobs = {i: writers.submit(writer.rewrite, final[i]) for i in pending}
                rewritten: dict[int, Candidate] = {}
                for i, job in jobs.items():
                    try:
                        rewritten[i] = job.result()
                    except Exception as error:  # the variant stays blocked; the reason is kept with it
                        note = f"rewrite failed: {_one_line(error)}"
                        log(f"tone '{final[i].candidate.tone}': {note}")
                        final[i] = replace(final[i], notes=(*final[i].notes, note))
            order = sorted(rewritten)
            for i, screening in zip(
                order,
                screen_candidates(resource, [rewritten[i] for i in order], thresholds, pool, cache),
                strict=True,
            ):
                final[i] = screening
                history.append(screening)
        if writer is not None:
            writer.cache.flush()
    return final, history


# --- Frames -------------------------------------------------------------------------------------------------


def candidates_from_variants(message_variants: pd.DataFrame) -> list[Candidate]:
    """The valid variants (rejected ones never reach safety), in tone order as stored."""
    valid = message_variants.loc[message_variants["status"] == STATUS_VALID]
    return [
        Candidate(
            source_variant_id=str(row.variant_id),
            variant_id=str(row.variant_id),
            tone=str(row.tone),
            subject=str(row.subject),
            body=str(row.body),
            citations=str(row.citations or "[]"),
        )
        for row in valid.itertuples()
    ]


def verdicts_frame(segment: str, screenings: Sequence[Screening]) -> pd.DataFrame:
    rows = []
    for s in screenings:
        c = s.candidate
        rows.append(
            {
                "segment": segment,
                "variant_id": c.variant_id,
                "source_variant_id": c.source_variant_id,
                "tone": c.tone,
                "subject": c.subject,
                "body": c.body,
                "citations": c.citations,
                **{category: s.outcome.severities.get(category) for category in CATEGORIES},
                "blocklist_hits": json.dumps(list(s.outcome.blocklist_hits), ensure_ascii=False),
                "decision": s.decision,
                "reasons": json.dumps([*s.reasons, *s.notes], ensure_ascii=False),
                "backend": s.outcome.backend,
                "screened_at": s.screened_at,
                "attempts": c.attempt + 1,
                "rewritten": c.attempt > 0,
            }
        )
    frame = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    frame["screened_at"] = pd.to_datetime(frame["screened_at"], utc=True)
    return frame.astype({**dict.fromkeys(CATEGORIES, "Int64"), "attempts": "int64", "rewritten": "bool"})


def _audit_frame(
    segment: str,
    run_id: str,
    decisions: Iterable[tuple[str, str, ScreenOutcome, str, Sequence[str], datetime]],
) -> pd.DataFrame:
    """One audit record per (variant_id, text screened, outcome, decision, reasons, screened_at): hashes and
    severities, never the text."""
    return pd.DataFrame(
        [
            {
                "record_id": uuid.uuid4().hex,
                "screened_at": screened_at,
                "run_id": run_id,
                "segment": segment,
                "variant_id": variant_id,
                "text_sha256": text_sha256(text),
                "severities": {category: outcome.severities.get(category) for category in CATEGORIES},
                "decision": decision,
                "reasons": list(reasons),
                "backend": outcome.backend,
            }
            for variant_id, text, outcome, decision, reasons, screened_at in decisions
        ],
        columns=list(AUDIT_FIELDS),
    )


def audit_records(segment: str, run_id: str, screenings: Sequence[Screening]) -> pd.DataFrame:
    """One audit record per variant screening decision."""
    return _audit_frame(
        segment,
        run_id,
        (
            (
                s.candidate.variant_id,
                screened_text(s.candidate.subject, s.candidate.body),
                s.outcome,
                s.decision,
                s.reasons,
                s.screened_at,
            )
            for s in screenings
        ),
    )


# --- Personal fields (customer data quoted by personalized opening lines) --------------------------------------

PERSONAL_FIELDS_VARIANT = "personal-fields"  # the audit records' variant_id for these screenings
# Values go to the screen several to a text, one per line, well under Azure's 10,000 characters per analysis.
PERSONAL_FIELDS_CHUNK_CHARS = 5_000
FIELD_VERDICT_COLUMNS = ["segment", "value", "decision", "reasons", "backend", "screened_at"]


@dataclass(frozen=True)
class FieldScreening:
    text: str  # the values, one per line
    values: tuple[str, ...]
    outcome: ScreenOutcome
    decision: str
    reasons: tuple[str, ...]
    screened_at: datetime


def _value_chunks(values: Sequence[str], limit: int = PERSONAL_FIELDS_CHUNK_CHARS) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    size = 0
    for value in values:
        if chunks[-1] and size + len(value) + 1 > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(value)
        size += len(value) + 1
    return [chunk for chunk in chunks if chunk]


def screen_personal_fields(
    values: Sequence[str],
    resource: ContentSafetyResource,
    thresholds: dict[str, int],
    max_concurrency: int = 6,
    cache: ScreenCache | None = None,
) -> list[FieldScreening]:
    """Screen the tier and city values a segment's opening lines may quote, like any message text.

    The values go several to a text (one call per segment in the usual case); only a text blocked for its
    content has its values screened one by one, so one bad value does not withhold the others. A value is
    usable only if a screening of it was approved: a failed screening approves nothing (fail closed)."""
    chunks = _value_chunks(sorted(set(values)))
    if not chunks:
        return []
    with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="screen-fields") as pool:

        def screen_all(groups: list[list[str]]) -> list[FieldScreening]:
            texts = ["\n".join(group) for group in groups]
            screen = _cached_screener(resource, cache, texts)
            futures = [pool.submit(screen, text) for text in texts]
            done = []
            for group, text, future in zip(groups, texts, futures, strict=True):
                outcome = future.result()
                decision, reasons = decide_outcome(outcome, thresholds)
                done.append(FieldScreening(text, tuple(group), outcome, decision, tuple(reasons), datetime.now(UTC)))
            return done

        screenings = screen_all(chunks)
        # Only a text blocked for its content is split; one the service failed to screen stays withheld whole
        # (splitting it would multiply the calls into an outage).
        again = [
            [value]
            for s in screenings
            if s.decision != APPROVED and len(s.values) > 1 and (not s.outcome.errors or s.outcome.blocklist_hits)
            for value in s.values
        ]
        return screenings + (screen_all(again) if again else [])


def field_verdicts(segment: str, screenings: Sequence[FieldScreening]) -> pd.DataFrame:
    """One row per value: approved if any screening of it was approved, else blocked with the reasons of the
    last screening that covered it."""
    rows: dict[str, dict[str, object]] = {}
    for s in screenings:
        for value in s.values:
            if rows.get(value, {}).get("decision") == APPROVED:
                continue
            rows[value] = {
                "segment": segment,
                "value": value,
                "decision": s.decision,
                "reasons": json.dumps(list(s.reasons)),
                "backend": s.outcome.backend,
                "screened_at": s.screened_at,
            }
    frame = pd.DataFrame(list(rows.values()), columns=FIELD_VERDICT_COLUMNS)
    frame["screened_at"] = pd.to_datetime(frame["screened_at"], utc=True)
    return frame.sort_values("value", ignore_index=True)


def field_audit_records(segment: str, run_id: str, screenings: Sequence[FieldScreening]) -> pd.DataFrame:
    """One audit record per personal-field screening (the hash of the values text screened)."""
    return _audit_frame(
        segment,
        run_id,
        ((PERSONAL_FIELDS_VARIANT, s.text, s.outcome, s.decision, s.reasons, s.screened_at) for s in screenings),
    )


def read_personal_field_values(warehouse: DuckDBWarehouse, segment: str) -> list[str]:
    """The distinct tier and city values of the segment's customers that an opening line could quote."""
    with warehouse.connect() as connection:
        if not all(table_exists(connection, t) for t in (CUSTOMERS_TABLE, CUSTOMER_SEGMENTS_TABLE)):
            return []
        pairs = connection.execute(
            f"select distinct c.tier, c.location from {SCHEMA}.{CUSTOMERS_TABLE} c "
            f"join {SCHEMA}.{CUSTOMER_SEGMENTS_TABLE} s using (customer_id) where s.segment = ?",
            [segment],
        ).fetchdf()
    return personal_field_values(pairs["tier"], pairs["location"])


def store_field_verdicts(warehouse: DuckDBWarehouse, segment: str, verdicts: pd.DataFrame) -> None:
    """Replace the segment's rows of personal_field_verdicts in one transaction."""
    with warehouse.transaction() as connection:
        connection.execute(
            f"""create table if not exists {SCHEMA}.{PERSONAL_FIELDS_TABLE} (segment varchar not null,
                value varchar not null, decision varchar not null, reasons varchar, backend varchar,
                screened_at timestamp with time zone)"""
        )
        connection.execute(f"delete from {SCHEMA}.{PERSONAL_FIELDS_TABLE} where segment = ?", [segment])
        if len(verdicts):
            connection.register("new_field_verdicts", verdicts)
            connection.execute(
                f"insert into {SCHEMA}.{PERSONAL_FIELDS_TABLE} by name select * from new_field_verdicts"
            )
            connection.unregister("new_field_verdicts")


# --- The audit log ------------------------------------------------------------------------------------------


class AuditChainError(RuntimeError):
    """The stored audit chain no longer holds a head recorded earlier: records were deleted or rewritten."""


@dataclass(frozen=True)
class AuditAnchor:
    """A chain head recorded in a materialization's metadata (outside the warehouse)."""

    root: str  # record_hash of sequence 0: which chain this head belongs to
    sequence: int
    record_hash: str


@dataclass(frozen=True)
class AuditAppend:
    appended: int
    head_sequence: int
    head_hash: str
    root: str
    new_chain: bool  # the warehouse held no chain this Dagster instance had recorded a head for


AUDIT_DDL = f"""create table if not exists {SCHEMA}.{AUDIT_TABLE} (
    record_id varchar not null, sequence bigint not null, screened_at timestamp with time zone not null,
    run_id varchar, segment varchar, variant_id varchar, text_sha256 varchar, severities varchar,
    decision varchar, reasons varchar, backend varchar, prev_hash varchar not null,
    record_hash varchar not null)"""


def recorded_audit_heads(instance: DagsterInstance, limit: int = 100) -> list[AuditAnchor]:
    """Chain heads recorded by recent safety_verdicts materializations (any partition), newest first."""
    anchors = []
    for record in instance.fetch_materializations(VERDICTS_ASSET, limit=limit).records:
        materialization = record.asset_materialization
        metadata = materialization.metadata if materialization else {}
        if {HEAD_SEQUENCE, HEAD_HASH, CHAIN_ROOT} <= set(metadata):
            anchors.append(
                AuditAnchor(
                    str(metadata[CHAIN_ROOT].value),
                    int(metadata[HEAD_SEQUENCE].value),
                    str(metadata[HEAD_HASH].value),
                )
            )
    return anchors


def latest_anchor(anchors: Iterable[AuditAnchor], root: str | None) -> AuditAnchor | None:
    """The furthest recorded head of the chain starting at `root` (appends are ordered, events may not be)."""
    same_chain = [anchor for anchor in anchors if root is not None and anchor.root == root]
    return max(same_chain, key=lambda anchor: anchor.sequence, default=None)


_APPEND_LOCKS: dict[str, threading.Lock] = {}
_APPEND_LOCKS_GUARD = threading.Lock()


def _append_lock(warehouse: DuckDBWarehouse) -> threading.Lock:
    with _APPEND_LOCKS_GUARD:
        return _APPEND_LOCKS.setdefault(str(Path(warehouse.path).resolve()), threading.Lock())


# Writers that do not share a lock (processes on several machines sharing one MotherDuck database) can both read
# the same head; the unique sequence makes the second commit fail instead of forking the chain, and it retries.
AUDIT_SEQUENCE_INDEX = f"create unique index if not exists {AUDIT_TABLE}_sequence on {SCHEMA}.{AUDIT_TABLE} (sequence)"
AUDIT_APPEND_ATTEMPTS = 20


def _lost_append_race(error: Exception) -> bool:
    """Another writer committed first: the same sequence (unique index) or a concurrent catalog change."""
    text = str(error).lower()
    return isinstance(error, duckdb.ConstraintException | duckdb.TransactionException) and (
        "duplicate key" in text or "conflict" in text
    )


def append_audit(warehouse: DuckDBWarehouse, records: pd.DataFrame, anchors: Sequence[AuditAnchor] = ()) -> AuditAppend:
    """Append `records` to the chain in one transaction that reads the head first. Refuses to append when a
    recorded head is missing. A writer that loses the race for the next sequence (possible only when writers
    do not share DuckDB's file lock, e.g. a shared MotherDuck database) rolls back and retries on the new
    head, so the chain never forks."""
    # Threads of one process share DuckDB's database instance, where concurrent appends would conflict and
    # retry: a lock per warehouse file serializes them instead, as the file lock serializes processes.
    with _append_lock(warehouse):
        for attempt in range(1, AUDIT_APPEND_ATTEMPTS + 1):
            try:
                with warehouse.transaction() as connection:
                    return _append_audit_once(connection, records, anchors)
            except (duckdb.ConstraintException, duckdb.TransactionException) as error:
                if not _lost_append_race(error) or attempt == AUDIT_APPEND_ATTEMPTS:
                    raise AuditChainError(
                        f"could not append to {AUDIT_TABLE} after {attempt} attempt(s): {error}"
                    ) from None
                time.sleep(min(0.5, 0.01 * attempt) * (0.5 + random.random()))  # jitter: writers spread out
    raise AssertionError("unreachable")


def _append_audit_once(
    connection: duckdb.DuckDBPyConnection, records: pd.DataFrame, anchors: Sequence[AuditAnchor]
) -> AuditAppend:
    connection.execute(AUDIT_DDL)
    table = f"{SCHEMA}.{AUDIT_TABLE}"
    indexed = connection.execute(
        "select count(*) from duckdb_indexes() where table_name = ? and index_name = ?",
        [AUDIT_TABLE, f"{AUDIT_TABLE}_sequence"],
    ).fetchone()[0]
    if not indexed:  # a table from before the unique sequence: refuse a chain that already forked
        forked = connection.execute(
            f"select sequence from {table} group by sequence having count(*) > 1 order by sequence limit 5"
        ).fetchall()
        if forked:
            raise AuditChainError(
                f"{AUDIT_TABLE} holds more than one record with sequence {', '.join(str(r[0]) for r in forked)}: "
                "the chain has forked (two writers appended at once without a shared lock); export it with "
                "`personalize audit-export` and restore a linear chain before screening again"
            )
        connection.execute(AUDIT_SEQUENCE_INDEX)
    count, head_sequence = connection.execute(f"select count(*), max(sequence) from {table}").fetchone()
    root_row = connection.execute(f"select record_hash from {table} where sequence = 0").fetchone()
    root = root_row[0] if root_row else None
    if count and root is None:
        raise AuditChainError(
            f"{AUDIT_TABLE} has {count} records but none with sequence 0: the start of the chain was "
            "deleted; restore the table before screening again"
        )
    anchor = latest_anchor(anchors, root)
    if anchor is not None:
        stored = connection.execute(f"select record_hash from {table} where sequence = ?", [anchor.sequence]).fetchone()
        if stored is None or stored[0] != anchor.record_hash:
            raise AuditChainError(
                f"{AUDIT_TABLE} no longer holds the head recorded earlier (sequence {anchor.sequence}, "
                f"hash {anchor.record_hash[:12]}...): records were deleted or rewritten; restore the "
                "table before screening again"
            )
    prev_hash, next_sequence = GENESIS_HASH, 0
    if count:
        prev_hash = connection.execute(
            f"select record_hash from {table} where sequence = ?", [head_sequence]
        ).fetchone()[0]
        next_sequence = int(head_sequence) + 1
    chained = chain_audit_records(records, prev_hash, next_sequence)
    if not chained.empty:
        connection.register("new_audit_records", chained)
        connection.execute(f"insert into {table} by name select * from new_audit_records")
        connection.unregister("new_audit_records")
    head_hash = str(chained["record_hash"].iloc[-1]) if len(chained) else prev_hash
    final_sequence = next_sequence + len(chained) - 1
    root = root or (str(chained["record_hash"].iloc[0]) if len(chained) else GENESIS_HASH)
    return AuditAppend(len(chained), final_sequence, head_hash, root, new_chain=bool(anchors) and anchor is None)


def read_audit(warehouse: DuckDBWarehouse) -> pd.DataFrame:
    """The whole audit log in chain order (empty frame with the columns when there is none)."""
    if not warehouse.table_exists(AUDIT_TABLE):
        return pd.DataFrame(columns=AUDIT_COLUMNS)
    return warehouse.read_table(AUDIT_TABLE, "order by sequence")[AUDIT_COLUMNS]


@dataclass(frozen=True)
class AuditExport:
    path: Path
    records: int
    ok: bool
    message: str


def export_audit_csv(warehouse: DuckDBWarehouse, out: str | Path) -> AuditExport:
    """Write the audit log to CSV in chain order, timestamps as the hashed UTC form, so the file re-verifies.

    The chain is verified first; the file is written either way (a broken chain is evidence too).
    """
    if not warehouse.table_exists(AUDIT_TABLE):
        raise ValueError(
            f"no {AUDIT_TABLE} table in the warehouse {warehouse.path}: materialize safety_verdicts first"
        )
    audit = read_audit(warehouse)
    verification = verify_audit_chain(audit)
    export = audit.copy()
    export["screened_at"] = pd.to_datetime(export["screened_at"], utc=True).dt.strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    export.to_csv(path, index=False)
    return AuditExport(path, len(export), verification.ok, verification.message)


# --- The asset ----------------------------------------------------------------------------------------------


def _markdown(frame: pd.DataFrame) -> MetadataValue:
    return MetadataValue.md(frame.to_markdown(index=False) if not frame.empty else "_none_")


@asset(
    partitions_def=segment_partitions,
    metadata=SEGMENT_PARTITION_METADATA,
    kinds=STORAGE_KINDS,
    group_name=GROUP,
    # Read with SQL: the tier and city values of the segment's customers, screened for the opening lines.
    deps=[AssetKey(CUSTOMERS_TABLE), AssetKey(CUSTOMER_SEGMENTS_TABLE)],
)
def safety_verdicts(
    context: AssetExecutionContext,
    message_variants: pd.DataFrame,
    settings: PipelineSettings,
    warehouse: DuckDBWarehouse,
    content_safety: ContentSafetyResource,
    llm: LLMResource,
) -> pd.DataFrame:
    """Each valid variant's final screened text, severities (0-7), blocklist hits and approved | blocked with
    reasons; every screening decision is also appended to the hash-chained `safety_audit` log."""
    config = load_safety_config(settings)
    segment = context.partition_key
    candidates = candidates_from_variants(message_variants)

    cache = ScreenCache(warehouse, content_safety, enabled=config.cache)
    field_values = read_personal_field_values(warehouse, segment)
    started = time.perf_counter()
    # The customer fields the opening lines quote are screened while the variants are (their own bounded pool).
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
        )
        field_screenings = fields_job.result()
    wall_seconds = time.perf_counter() - started
    cache_writes = cache.flush()

    records = audit_records(segment, context.run.run_id, history)
    if field_screenings:
        field_records = field_audit_records(segment, context.run.run_id, field_screenings)
        records = pd.concat([records, field_records], ignore_index=True) if len(records) else field_records
    appended = append_audit(warehouse, records, recorded_audit_heads(context.instance))
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
    all_blocked = approved.empty
    if all_blocked:
        context.log.warning(
            f"segment '{segment}': no approved variant ({len(candidates)} screened, "
            f"{len(message_variants) - len(candidates)} rejected by generation): the segment gets no message "
            "in the experiment"
        )
    severity_columns = verdicts[list(CATEGORIES)]
    context.add_output_metadata(
        {
            "backend": content_safety.backend_name,
            "variants_screened": len(verdicts),
            "approved": len(approved),
            "blocked": len(blocked),
            "all_variants_blocked": all_blocked,
            "rewritten": int(verdicts["rewritten"].sum()),
            "rewrites_approved": int((verdicts["rewritten"] & (verdicts["decision"] == APPROVED)).sum()),
            "screening_decisions": len(history) + len(field_screenings),
            "service_requests": sum(s.outcome.requests for s in [*history, *field_screenings]),
            "cached_screenings": sum(
                s.outcome.backend.endswith(CACHED_BACKEND_SUFFIX) for s in [*history, *field_screenings]
            ),
            "cache_entries_written": cache_writes,
            "screening_seconds": MetadataValue.float(round(wall_seconds, 3)),
            "thresholds": ", ".join(f"{c} >= {t}" for c, t in config.thresholds.items()),
            "blocked_reasons": _markdown(
                pd.DataFrame(
                    {
                        "tone": blocked["tone"],
                        "reasons": blocked["reasons"].map(lambda r: "; ".join(json.loads(r))),
                    }
                )
            ),
            "preview": _markdown(
                pd.DataFrame(
                    {
                        "tone": verdicts["tone"],
                        "decision": verdicts["decision"],
                        "max_severity": severity_columns.max(axis=1).astype("Int64"),
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
    )
    return verdicts


# --- Checks (per partition; blocking: nothing unsafe or unscreened reaches the experiment) ------------------


@asset_check(asset=safety_verdicts, blocking=True, partitions_def=segment_partitions)
def no_unsafe_variant_approved(
    safety_verdicts: pd.DataFrame, settings: PipelineSettings, warehouse: DuckDBWarehouse
) -> AssetCheckResult:
    """Approved variants have all four severities below their thresholds, no blocklist hit (stored or found
    again in the text with the current terms), and an approved audit record for exactly this text."""
    config = load_safety_config(settings)
    approved = safety_verdicts.loc[safety_verdicts["decision"] == APPROVED]
    severities = approved[list(CATEGORIES)].apply(pd.to_numeric, errors="coerce").astype("float64")
    over = severities.ge(pd.Series(config.thresholds)[list(CATEGORIES)])  # NaN (unscreened) is not >=
    problems = pd.DataFrame(index=approved.index)
    problems["unscreened"] = [
        ", ".join(c for c in CATEGORIES if pd.isna(severities.at[i, c])) for i in approved.index
    ]
    problems["over_threshold"] = [
        ", ".join(f"{c} {severities.at[i, c]:.0f}" for c in CATEGORIES if over.at[i, c])
        for i in approved.index
    ]
    texts = approved["subject"].fillna("") + "\n\n" + approved["body"].fillna("")
    stored_hits = approved["blocklist_hits"].map(lambda value: ", ".join(json.loads(value or "[]")))
    found_hits = texts.map(lambda text: ", ".join(find_blocklist_hits(text, config.blocklist)))
    problems["blocklist"] = (stored_hits + " " + found_hits).str.strip()
    audit = read_audit(warehouse)
    audited = set(
        zip(
            audit.loc[audit["decision"] == APPROVED, "variant_id"],
            audit.loc[audit["decision"] == APPROVED, "text_sha256"],
            strict=True,
        )
    )
    hashes = texts.map(text_sha256)
    problems["not_screened_as_stored"] = [
        "" if (variant, digest) in audited else "no approved audit record for this text"
        for variant, digest in zip(approved["variant_id"], hashes, strict=True)
    ]
    failing = problems.loc[(problems != "").any(axis=1)]
    undecided = safety_verdicts.loc[~safety_verdicts["decision"].isin([APPROVED, BLOCKED])]
    return AssetCheckResult(
        passed=failing.empty and undecided.empty,
        metadata={
            "approved_variants": len(approved),
            "failing_variants": len(failing) + len(undecided),
            "failures": _markdown(pd.concat([approved.loc[failing.index, ["tone"]], failing], axis=1)),
            "unknown_decisions": ", ".join(map(str, undecided["decision"].unique())) or "none",
            "thresholds": ", ".join(f"{c} >= {t}" for c, t in config.thresholds.items()),
        },
    )


@asset_check(
    asset=safety_verdicts,
    blocking=True,
    partitions_def=segment_partitions,
    additional_ins={"message_variants": AssetIn()},
)
def every_variant_screened(safety_verdicts: pd.DataFrame, message_variants: pd.DataFrame) -> AssetCheckResult:
    """Every valid variant of the partition has exactly one verdict; no verdict is for an unknown variant."""
    expected = set(message_variants.loc[message_variants["status"] == STATUS_VALID, "variant_id"])
    counts = safety_verdicts["source_variant_id"].value_counts()
    missing = sorted(expected - set(counts.index))
    repeated = sorted(counts.index[counts > 1])
    unknown = sorted(set(counts.index) - expected)
    return AssetCheckResult(
        passed=not (missing or repeated or unknown),
        metadata={
            "valid_variants": len(expected),
            "verdicts": len(safety_verdicts),
            "missing": ", ".join(missing) or "none",
            "repeated": ", ".join(repeated) or "none",
            "unknown": ", ".join(unknown) or "none",
        },
    )


@asset_check(asset=safety_verdicts, blocking=True, partitions_def=segment_partitions)
def audit_chain_intact(context: AssetCheckExecutionContext, warehouse: DuckDBWarehouse) -> AssetCheckResult:
    """The whole safety_audit hash chain verifies, and it still reaches the furthest head recorded in this
    asset's materialization metadata (so deleting the newest records is caught too)."""
    audit = read_audit(warehouse)
    verification = verify_audit_chain(audit)
    root_rows = (
        audit.loc[audit["sequence"] == 0, "record_hash"] if not audit.empty else pd.Series(dtype=object)
    )
    anchor = latest_anchor(
        recorded_audit_heads(context.instance), str(root_rows.iloc[0]) if len(root_rows) else None
    )
    anchored = None
    if anchor is not None:
        prefix = audit.loc[audit["sequence"] <= anchor.sequence]
        anchored = verify_audit_chain(prefix, expected_head=anchor.record_hash)
    passed = verification.ok and (anchored is None or anchored.ok)
    message = verification.message if not verification.ok or anchored is None else anchored.message
    return AssetCheckResult(
        passed=passed,
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


# --- `personalize screen`: screen copy outside the pipeline -------------------------------------------------


def _parse_line(number: int, line: str) -> tuple[str | None, dict]:
    """(text, echo fields) or (None, error verdict)."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        return None, {
            "line": number,
            "error": f"line {number}: not valid JSON ({error.msg} at column {error.colno})",
        }
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        got = type(item).__name__ if not isinstance(item, dict) else f"keys {sorted(item)}"
        return None, {
            "line": number,
            "error": f'line {number}: expected an object with a "text" string, got {got}',
        }
    return item["text"], {"line": number, **({"id": item["id"]} if "id" in item else {})}


def screen_json_lines(
    lines: Iterable[str],
    resource: ContentSafetyResource,
    thresholds: dict[str, int],
    max_concurrency: int = 6,
    batch_size: int = 64,
) -> Iterator[dict]:
    """One verdict per non-blank input line `{"text": ...}` (an optional "id" is echoed), in input order.

    A line that is not such an object yields `{"line": n, "error": ...}` instead.
    """

    def screen_batch(batch: list[tuple[str | None, dict]], pool: ThreadPoolExecutor) -> Iterator[dict]:
        futures = [pool.submit(resource.screen, text) if text is not None else None for text, _ in batch]
        for (_, fields), future in zip(batch, futures, strict=True):
            if future is None:
                yield fields
                continue
            outcome = future.result()
            decision, reasons = decide_outcome(outcome, thresholds)
            yield {
                **fields,
                "decision": decision,
                **{category: outcome.severities.get(category) for category in CATEGORIES},
                "blocklist_hits": list(outcome.blocklist_hits),
                "reasons": reasons,
                "backend": outcome.backend or resource.backend_name,
            }

    with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="screen") as pool:
        batch: list[tuple[str | None, dict]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            batch.append(_parse_line(number, line))
            if len(batch) >= batch_size:
                yield from screen_batch(batch, pool)
                batch = []
        yield from screen_batch(batch, pool)


def screen_command_resource(
    settings: PipelineSettings | None = None,
) -> tuple[ContentSafetyResource, SafetyConfig]:
    """The configured backend and configuration, as the pipeline would use them."""
    from resources.content_safety import content_safety_resource_from_config

    config = load_safety_config(settings or PipelineSettings())
    return content_safety_resource_from_config(config), config
