"""How the safety stage screens: each variant's subject and body on the configured backend (bounded concurrency,
cached outcomes of paid backends), the optional LLM second opinion on texts approved near a threshold, rewrites
of variants blocked for their content through the generation stage's model, the customer field values the
opening lines quote, the frames the asset stores and the audit records, and `personalize screen` over JSON
lines. No Dagster imports; personalization_assets/safety.py wires it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pandas as pd

from personalization_assets.config.generation import GenerationConfig
from personalization_assets.config.safety import SafetyConfig
from personalization_assets.lib.audit_chain import AUDIT_FIELDS, text_sha256
from personalization_assets.lib.generation import STATUS_VALID
from personalization_assets.lib.safety import (
    APPROVED,
    BLOCKED,
    CONCERNS,
    MAX_SEVERITY,
    LibraryScreening,
    decide_screened,
    document_text,
    screen_documents,
)
from personalization_assets.store.generation import ResponseCache
from personalization_assets.store.safety import CACHED_BACKEND_SUFFIX, ScreenCache
from personalization_assets.workflows.generation import Variant, regenerate_variant, variant_request_for
from resources.content_safety import (
    SECOND_OPINION,
    SECOND_OPINION_UNAVAILABLE,
    ContentSafetyResource,
    ScreenOutcome,
    merge_outcomes,
)
from resources.llm import LLMResource
from resources.search import read_content_index
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse

# What of a content document is screened before anything is quoted from it.
LIBRARY_TEXT_COLUMNS = ("title", "content", "keywords")
VERDICT_COLUMNS = [
    "segment",
    "variant_id",
    "source_variant_id",
    "tone",
    "subject",
    "body",
    "citations",
    *CONCERNS,
    "blocklist_hits",
    "decision",
    "reasons",
    "backend",
    "screened_at",
    "attempts",
    "rewritten",
]


def decide_outcome(
    outcome: ScreenOutcome, thresholds: Mapping[str, int], extra_reasons: Sequence[str] = ()
) -> tuple[str, list[str]]:
    """approved | blocked with reasons. Approved only if screening is complete, nothing reaches a threshold,
    no blocklist term was found and there is no extra reason (e.g. a rewrite that broke the format rules)."""
    return decide_screened(outcome, thresholds, extra_reasons)


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
    second_opinion: ScreenOutcome | None = None  # the LLM's outcome, when it was asked

    @property
    def rewritable(self) -> bool:
        """Blocked for its content: screening completed, or the service found a blocklist term. A service
        failure (or an unavailable second opinion) is not fixed by rewriting."""
        return self.decision == BLOCKED and (not self.outcome.errors or bool(self.outcome.blocklist_hits))

    @property
    def backend(self) -> str:
        """The screen's backend, and the second opinion's when one was asked."""
        if self.second_opinion is None:
            return self.outcome.backend
        return f"{self.outcome.backend} + {self.second_opinion.backend}"


# --- LLM second opinion ---------------------------------------------------------------------------------------


def near_threshold(severities: Mapping[str, int], thresholds: Mapping[str, int], margin: int) -> list[str]:
    """The concerns whose severity is below their threshold by at most `margin` (threshold - margin <= severity
    < threshold). A threshold above the scale (8: never blocks) has nothing near it."""
    return [
        concern
        for concern in CONCERNS
        if concern in severities
        and thresholds[concern] <= MAX_SEVERITY
        and thresholds[concern] - margin <= severities[concern] < thresholds[concern]
    ]


def with_second_opinion(screening: Screening, opinion: ScreenOutcome, thresholds: Mapping[str, int]) -> Screening:
    """The screening after the LLM's opinion: only ever stricter. Severities are the higher of the two per concern;
    blocked if the opinion reaches a threshold ("LLM second opinion: violence severity 5 >= 4") or could not be
    had ("LLM second opinion unavailable: ..."); otherwise the screen's decision stands."""
    decision, reasons = decide_outcome(opinion, thresholds)
    reasons = [r if r.startswith(SECOND_OPINION_UNAVAILABLE) else f"{SECOND_OPINION}: {r}" for r in reasons]
    screen = screening.outcome
    detail = dict(screen.detail)
    for concern, labels in opinion.detail.items():
        detail[concern] = detail.get(concern, ()) + labels
    outcome = replace(
        screen,
        severities={c: max(v, opinion.severities.get(c, v)) for c, v in screen.severities.items()},
        errors=(*screen.errors, *opinion.errors),
        detail=detail,
    )
    return replace(
        screening,
        outcome=outcome,
        decision=screening.decision if decision == APPROVED else BLOCKED,
        reasons=(*screening.reasons, *reasons),
        screened_at=datetime.now(UTC),  # the decision is made now
        second_opinion=opinion,
    )


@dataclass(frozen=True)
class SecondOpinion:
    """Who gives the second opinion (SafetyConfig.second_opinion_resource), how near a threshold a text must be
    to get one, and the screening cache its complete answers go to (safety_screen_cache, keyed by the model
    and prompt). Calls run in the screening pool, so at most `max_concurrency` are in flight."""

    resource: ContentSafetyResource
    margin: int
    cache: ScreenCache | None = None
    screen: ContentSafetyResource | None = None  # the backend that screened, when its model score counts too
    model_margin: float = 0.0

    def wanted(self, screening: Screening, thresholds: Mapping[str, int]) -> bool:
        """Approved by the screen, but near a threshold: by severity, or (embedded screen) by its model's
        unsafe probability on the subject or the body (each judged alone, as the screen does)."""
        if screening.decision != APPROVED:
            return False
        if near_threshold(screening.outcome.severities, thresholds, self.margin):
            return True
        candidate = screening.candidate
        return self.screen is not None and any(
            self.screen.near_model_boundary(text, self.model_margin) for text in (candidate.subject, candidate.body)
        )

    def review(
        self, screenings: Sequence[Screening], thresholds: Mapping[str, int], pool: ThreadPoolExecutor
    ) -> list[Screening]:
        """`screenings`, those near a threshold after the LLM's opinion on their whole text (subject, blank
        line, body: the text the audit hash covers)."""
        wanted = [i for i, screening in enumerate(screenings) if self.wanted(screening, thresholds)]
        texts = {i: screened_text(screenings[i].candidate.subject, screenings[i].candidate.body) for i in wanted}
        ask = _cached_screener(self.resource, self.cache, list(texts.values()))
        futures = {i: pool.submit(ask, text) for i, text in texts.items()}
        reviewed = list(screenings)
        for i, future in futures.items():
            reviewed[i] = with_second_opinion(screenings[i], future.result(), thresholds)
        return reviewed


def second_opinion_counts(screenings: Sequence[Screening]) -> dict[str, int]:
    """How many screenings got a second opinion, how many were blocked after it (unavailable ones included),
    how many of those could not get one, the LLM requests made and the answers taken from the cache."""
    answers = [(s, s.second_opinion) for s in screenings if s.second_opinion is not None]
    return {
        "second_opinions": len(answers),
        "second_opinion_blocked": sum(s.decision == BLOCKED for s, _ in answers),
        "second_opinion_unavailable": sum(bool(answer.errors) for _, answer in answers),
        "second_opinion_requests": sum(answer.requests for _, answer in answers),
        "second_opinion_cached": sum(answer.backend.endswith(CACHED_BACKEND_SUFFIX) for _, answer in answers),
    }


def screen_library(
    documents: pd.DataFrame, resource: ContentSafetyResource, config: SafetyConfig, warehouse: DuckDBWarehouse
) -> LibraryScreening:
    """Screen every approved document with the configured backend before anything can be quoted from it
    (lib.safety.screen_documents), answering unchanged documents from the screening cache."""
    cache = ScreenCache(warehouse, resource, enabled=config.cache)
    texts = [document_text(row, LIBRARY_TEXT_COLUMNS) for row in documents.to_dict("records")]
    screen = _cached_screener(resource, cache, texts)
    # Remote backends answer a document at a time: at most `max_concurrency` calls in flight.
    with ThreadPoolExecutor(max_workers=config.max_concurrency, thread_name_prefix="library-screen") as pool:
        outcomes = dict(zip(texts, pool.map(screen, texts), strict=True))
    screening = screen_documents(documents, outcomes.__getitem__, config.thresholds, LIBRARY_TEXT_COLUMNS)
    cache.flush()
    return screening


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
    second_opinion: SecondOpinion | None = None,
) -> list[Screening]:
    """Screen subject and body of every candidate, all calls in `pool` at once; one decision per candidate.
    Texts with an outcome in `cache` are not sent; new complete outcomes are added to it. With
    `second_opinion`, candidates approved near a threshold are then judged by the LLM as well."""
    screen = _cached_screener(resource, cache, [t for c in candidates for t in (c.subject, c.body)])
    futures = [
        (pool.submit(screen, candidate.subject), pool.submit(screen, candidate.body)) for candidate in candidates
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
    if second_opinion is not None:
        screenings = second_opinion.review(screenings, thresholds, pool)
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

    def __init__(self, settings: PipelineSettings, llm: LLMResource, warehouse: DuckDBWarehouse, segment: str):
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
    second_opinion: SecondOpinion | None = None,
) -> tuple[list[Screening], list[Screening]]:
    """Screen every candidate; rewrite and re-screen those blocked for content (`rewrite_attempts` rounds).
    With `second_opinion`, every screening (rewrites too) approved near a threshold also gets the LLM's.

    Returns (final screening per candidate in input order, every screening made in order, for the audit).
    """
    with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="screen") as pool:
        final = screen_candidates(resource, candidates, thresholds, pool, cache, second_opinion)
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
            with ThreadPoolExecutor(max_workers=writer.max_concurrency, thread_name_prefix="rewrite") as writers:
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
                screen_candidates(resource, [rewritten[i] for i in order], thresholds, pool, cache, second_opinion),
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
                **{category: s.outcome.severities.get(category) for category in CONCERNS},
                "blocklist_hits": json.dumps(list(s.outcome.blocklist_hits), ensure_ascii=False),
                "decision": s.decision,
                "reasons": json.dumps([*s.reasons, *s.notes], ensure_ascii=False),
                "backend": s.backend,
                "screened_at": s.screened_at,
                "attempts": c.attempt + 1,
                "rewritten": c.attempt > 0,
            }
        )
    frame = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    frame["screened_at"] = pd.to_datetime(frame["screened_at"], utc=True)
    return frame.astype({**dict.fromkeys(CONCERNS, "Int64"), "attempts": "int64", "rewritten": "bool"})


def _audit_frame(
    segment: str,
    run_id: str,
    decisions: Iterable[tuple[str, str, ScreenOutcome, str, Sequence[str], datetime, str]],
) -> pd.DataFrame:
    """One audit record per (variant_id, text screened, outcome, decision, reasons, screened_at, backend):
    hashes and severities, never the text."""
    return pd.DataFrame(
        [
            {
                "record_id": uuid.uuid4().hex,
                "screened_at": screened_at,
                "run_id": run_id,
                "segment": segment,
                "variant_id": variant_id,
                "text_sha256": text_sha256(text),
                "severities": {category: outcome.severities.get(category) for category in CONCERNS},
                "decision": decision,
                "reasons": list(reasons),
                "backend": backend,
            }
            for variant_id, text, outcome, decision, reasons, screened_at, backend in decisions
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
                s.backend,
            )
            for s in screenings
        ),
    )


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
        (
            (PERSONAL_FIELDS_VARIANT, s.text, s.outcome, s.decision, s.reasons, s.screened_at, s.outcome.backend)
            for s in screenings
        ),
    )


# --- `personalize screen`: screen copy outside the pipeline ---------------------------------------------------


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
                **{category: outcome.severities.get(category) for category in CONCERNS},
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


def screen_command_resource(settings: PipelineSettings | None = None) -> tuple[ContentSafetyResource, SafetyConfig]:
    """The configured backend and configuration, as the pipeline would use them (`personalize screen`)."""
    config = (settings or PipelineSettings()).stage(SafetyConfig)
    return config.validated_resource(), config
