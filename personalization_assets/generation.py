"""Stage 3 — generation: one message variant per configured tone for each segment, grounded in its retrieved
content.

Every variant is checked against the format rules right after generation; a broken one is asked for again with
the violations stated (up to `attempts_per_variant`), and stored as `rejected` with its reasons if it never
passes. Downstream stages read only `status == 'valid'` rows; the blocking checks below re-verify the valid
rows against the stored retrieval results, so nothing that breaks a rule reaches safety or the experiment.
"""

import json
import statistics
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    MetadataValue,
    PreviewWarning,
    asset,
    asset_check,
)
from pydantic import Field, field_validator

from personalization_assets.config import StrictModel
from personalization_assets.constants import SEGMENT_COLUMN, SEGMENT_PARTITION_METADATA, STORAGE_KINDS
from personalization_assets.lib.generation import (
    DEFAULT_TONES,
    STATUS_REJECTED,
    STATUS_VALID,
    VARIANT_COLUMNS,
    AnswerFormatError,
    FormatRules,
    ParsedAnswer,
    Price,
    Prompt,
    PromptTemplates,
    SegmentBrief,
    SourceDocument,
    brief_from_profile,
    build_prompt,
    check_variant,
    count_words,
    find_leftovers,
    load_prompt_templates,
    parse_citations,
    parse_free_text_answer,
    parse_keywords,
    parse_structured_answer,
    resolve_citations,
    revision_prompt,
    stable_hash,
    token_cost,
    variant_id,
    variant_json_schema,
)
from personalization_assets.lib.segmentation import slugify
from personalization_assets.partitions import segment_partitions
from resources.llm import (
    ChatMessage,
    ComposerBrief,
    GenerationRequest,
    GenerationResult,
    LLMBackendsConfig,
    LLMResource,
    MalformedResponseError,
)
from resources.search import DOCUMENTS_TABLE as CONTENT_INDEX_TABLE
from resources.search import read_content_index
from resources.settings import PipelineSettings
from resources.warehouse import SCHEMA, DuckDBWarehouse

# Partitioned asset checks are a Dagster preview feature; they are what makes the gates per segment partition.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning
)

GROUP = "generation"
GENERATION_CONFIG_FILE = "generation.yaml"
CACHE_TABLE = "llm_response_cache"


# --- Configuration ------------------------------------------------------------------------------------------


class PriceConfig(StrictModel):
    input_per_million: float = Field(ge=0, description="USD per 1M input tokens")
    output_per_million: float = Field(ge=0, description="USD per 1M output tokens")


class RulesConfig(StrictModel):
    subject_max_chars: int = Field(default=60, ge=10)
    body_min_words: int = Field(default=150, ge=1)
    body_max_words: int = Field(default=250, ge=1)
    min_citations: int = Field(default=1, ge=1)

    @field_validator("body_max_words")
    @classmethod
    def _range_ordered(cls, value: int, info) -> int:
        if value < info.data.get("body_min_words", 0):
            raise ValueError("body_max_words must be at least body_min_words")
        return value

    def to_rules(self) -> FormatRules:
        return FormatRules(**self.model_dump())


class GenerationConfig(LLMBackendsConfig):
    """config/generation.yaml"""

    tones: list[str] = Field(default_factory=lambda: list(DEFAULT_TONES), min_length=1)
    sender: str = Field(default="The Northwind Outfitters team", min_length=1, description="message sign-off")
    attempts_per_variant: int = Field(
        default=3, ge=1, le=10, description="generations per variant, incl. rewrites"
    )
    max_concurrency: int = Field(default=3, ge=1, le=32, description="model calls in flight per partition")
    max_documents: int = Field(default=5, ge=1, le=20, description="retrieved documents put in a prompt")
    temperature: float | None = Field(default=0.7, ge=0, le=2, description="null: the model's default")
    max_output_tokens: int = Field(default=1000, ge=100)
    cache: bool = Field(default=True, description="reuse stored answers for identical requests")
    prompts_dir: str = Field(default="prompts", description="folder of prompt templates, relative to config/")
    rules: RulesConfig = RulesConfig()
    prices: dict[str, PriceConfig] = Field(
        default_factory=lambda: {"gpt-4o-mini": PriceConfig(input_per_million=0.15, output_per_million=0.60)}
    )

    @field_validator("tones")
    @classmethod
    def _tones_are_unique_slugs(cls, tones: list[str]) -> list[str]:
        bad = [tone for tone in tones if tone != slugify(tone)]
        if bad:
            raise ValueError(f"tones must be lowercase slugs (file names in prompts/tones/), got {bad}")
        if len(set(tones)) != len(tones):
            raise ValueError(f"tones must be unique, got {tones}")
        return tones

    def price_for(self, model: str) -> Price | None:
        price = self.prices.get(model)
        return Price(price.input_per_million, price.output_per_million) if price else None


def load_generation_config(settings: PipelineSettings) -> GenerationConfig:
    return settings.load(GENERATION_CONFIG_FILE, GenerationConfig)


# --- Inputs -------------------------------------------------------------------------------------------------


def segment_brief(segment_profiles: pd.DataFrame, segment: str) -> SegmentBrief:
    rows = segment_profiles.loc[segment_profiles[SEGMENT_COLUMN] == segment]
    if rows.empty:
        raise ValueError(
            f"segment '{segment}' is not in segment_profiles: re-materialize segment_profiles "
            "(the segment partitions and the profiles are out of step)"
        )
    return brief_from_profile(rows.iloc[0].to_dict())


def segment_documents(
    retrieved_content: pd.DataFrame, content_index: pd.DataFrame | None, segment: str, limit: int
) -> tuple[SourceDocument, ...]:
    """The segment's best-ranked retrieved documents, with their keywords from the content index."""
    rows = retrieved_content.loc[retrieved_content[SEGMENT_COLUMN] == segment].sort_values("rank")
    rows = rows.drop_duplicates("document_id").head(limit)
    if rows.empty:
        raise ValueError(
            f"no retrieved content for segment '{segment}': materialize retrieved_content for this partition "
            "first (a message must cite at least one retrieved document)"
        )
    keywords = {}
    if content_index is not None and {"document_id", "keywords"} <= set(content_index.columns):
        keywords = dict(
            zip(content_index["document_id"], content_index["keywords"].map(parse_keywords), strict=True)
        )
    return tuple(
        SourceDocument(
            document_id=str(row["document_id"]),
            title=str(row["title"]),
            snippet=str(row.get("snippet") or ""),
            category=str(row.get("category") or ""),
            keywords=keywords.get(row["document_id"], ()),
            rank=int(row["rank"]),
        )
        for row in rows.to_dict("records")
    )


# --- Response cache -----------------------------------------------------------------------------------------


class ResponseCache:
    """Model answers keyed by (backend, model, prompt, parameters), in the warehouse table llm_response_cache.

    New answers are kept in memory and written by `flush()` in one transaction, so a failed partition stores
    nothing.
    """

    def __init__(self, warehouse: DuckDBWarehouse | None, enabled: bool = True):
        self._warehouse = warehouse
        self.enabled = enabled and warehouse is not None
        self._pending: dict[str, GenerationResult] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(llm: LLMResource, request: GenerationRequest) -> str:
        messages = [(message.role, message.content) for message in request.messages]
        return stable_hash(
            llm.backend_name, llm.model_name, request.instructions, messages, request.parameters(), length=64
        )

    def get(self, key: str) -> GenerationResult | None:
        if not self.enabled:
            return None
        with self._lock:
            if key in self._pending:
                return replace(self._pending[key], cached=True)
            found = self._warehouse.read_table(  # type: ignore[union-attr]
                CACHE_TABLE, "where cache_key = ?", [key]
            )
        if found.empty:
            return None
        row = found.iloc[0]
        parsed = json.loads(row["parsed_json"]) if isinstance(row["parsed_json"], str) else None
        return GenerationResult(
            text=row["response_text"],
            parsed=parsed,
            structured=bool(row["structured"]),
            input_tokens=int(row["input_tokens"]),
            output_tokens=int(row["output_tokens"]),
            latency_ms=float(row["latency_ms"]),
            model=row["model"],
            backend=row["backend"],
            cached=True,
        )

    def put(self, key: str, result: GenerationResult) -> None:
        if self.enabled:
            with self._lock:
                self._pending[key] = result

    def flush(self) -> int:
        """Write the new answers; returns how many were stored."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not self.enabled or not pending:
            return 0
        rows = pd.DataFrame(
            [
                {
                    "cache_key": key,
                    "backend": result.backend,
                    "model": result.model,
                    "structured": result.structured,
                    "response_text": result.text,
                    "parsed_json": json.dumps(result.parsed) if result.parsed is not None else None,
                    "input_tokens": result.input_tokens,
                    "output_tokens": result.output_tokens,
                    "latency_ms": result.latency_ms,
                    "created_at": datetime.now(UTC),
                }
                for key, result in pending.items()
            ]
        )
        with self._warehouse.transaction() as connection:  # type: ignore[union-attr]
            connection.register("new_cache_rows", rows)
            connection.execute(
                f"""create table if not exists {SCHEMA}.{CACHE_TABLE} (
                    cache_key varchar primary key, backend varchar, model varchar, structured boolean,
                    response_text varchar, parsed_json varchar, input_tokens bigint, output_tokens bigint,
                    latency_ms double, created_at timestamp with time zone)"""
            )
            connection.execute(
                f"insert or ignore into {SCHEMA}.{CACHE_TABLE} by name select * from new_cache_rows"
            )
        return len(pending)


# --- Generating variants ------------------------------------------------------------------------------------


class GenerationFailedError(RuntimeError):
    """A partition's variants could not be generated (the model service failed); nothing was stored."""


@dataclass(frozen=True)
class VariantRequest:
    """Everything needed to generate (or rewrite) one variant."""

    segment: str
    tone: str
    brief: SegmentBrief
    documents: tuple[SourceDocument, ...]
    prompt: Prompt
    templates: PromptTemplates
    rules: FormatRules
    sender: str
    structured: bool
    temperature: float | None
    max_output_tokens: int
    attempts: int
    price: Price | None

    def parameters(self) -> dict[str, object]:
        return {
            "temperature": self.temperature,
            "max_output_tokens": self.max_output_tokens,
            "structured": self.structured,
        }


@dataclass(frozen=True)
class Variant:
    segment: str
    variant_id: str
    tone: str
    subject: str
    body: str
    citations: tuple[str, ...]
    status: str
    rejection_reasons: tuple[str, ...]
    attempts: int
    backend: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    created_at: datetime
    model_calls: int = 0  # calls made in this run (cache hits excluded)
    cache_hits: int = 0
    run_cost_usd: float = 0.0  # cost of the calls made in this run

    @property
    def is_valid(self) -> bool:
        return self.status == STATUS_VALID

    def as_row(self) -> dict[str, object]:
        row = {column: getattr(self, column) for column in VARIANT_COLUMNS}
        row["citations"] = json.dumps(list(self.citations))
        row["rejection_reasons"] = json.dumps(list(self.rejection_reasons))
        return row


def build_variant_requests(
    config: GenerationConfig,
    templates: PromptTemplates,
    llm: LLMResource,
    brief: SegmentBrief,
    documents: Sequence[SourceDocument],
) -> list[VariantRequest]:
    """One request per configured tone."""
    structured = llm.supports_structured_output
    rules = config.rules.to_rules()
    return [
        VariantRequest(
            segment=brief.segment,
            tone=tone,
            brief=brief,
            documents=tuple(documents),
            prompt=build_prompt(
                templates, brief, documents, tone, rules, structured=structured, sender=config.sender
            ),
            templates=templates,
            rules=rules,
            sender=config.sender,
            structured=structured,
            temperature=config.temperature,
            max_output_tokens=config.max_output_tokens,
            attempts=config.attempts_per_variant,
            price=config.price_for(llm.model_name),
        )
        for tone in config.tones
    ]


def _read_answer(result: GenerationResult) -> ParsedAnswer:
    if result.structured:
        return parse_structured_answer(result.parsed if result.parsed is not None else result.text)
    return parse_free_text_answer(result.text)


def generate_variant(
    llm: LLMResource,
    request: VariantRequest,
    cache: ResponseCache | None = None,
    *,
    feedback: Sequence[str] = (),
    previous_answer: str | None = None,
) -> Variant:
    """Generate one variant, rewriting it with the violations stated until it passes or attempts run out.

    `feedback` starts the conversation as a rewrite: the previous answer (if given) and the feedback are sent
    after the prompt. Service failures (after the resource's retries) propagate as `LLMServiceError`.
    """
    messages = [ChatMessage("user", request.prompt.user)]
    if feedback:
        if previous_answer:
            messages.append(ChatMessage("assistant", previous_answer))
        messages.append(
            ChatMessage("user", revision_prompt(request.templates, feedback, request.prompt.output_format))
        )
    stated: list[str] = list(feedback)
    schema = variant_json_schema([doc.document_id for doc in request.documents])
    totals = {"input": 0, "output": 0, "latency": 0.0, "cost": 0.0, "calls": 0, "hits": 0, "run_cost": 0.0}
    subject = body = ""
    citations: tuple[str, ...] = ()
    problems: list[str] = []
    backend, model = llm.backend_name, llm.model_name
    attempts_made = 0
    for attempt in range(1, request.attempts + 1):
        attempts_made = attempt
        call = GenerationRequest(
            instructions=request.prompt.instructions,
            messages=tuple(messages),
            json_schema=schema if request.structured else None,
            temperature=request.temperature,
            max_output_tokens=request.max_output_tokens,
            composer_brief=ComposerBrief(
                request.brief, request.documents, request.tone, request.rules, request.sender, tuple(stated)
            ),
        )
        key = ResponseCache.key(llm, call) if cache is not None else ""
        result = cache.get(key) if cache is not None else None
        answer_text = ""
        try:
            if result is None:
                result = llm.generate(call)
                totals["calls"] += 1
                totals["run_cost"] += token_cost(result.input_tokens, result.output_tokens, request.price)
                if cache is not None:
                    cache.put(key, result)
            else:
                totals["hits"] += 1
            model = result.model or model
            totals["input"] += result.input_tokens
            totals["output"] += result.output_tokens
            totals["latency"] += result.latency_ms
            totals["cost"] += token_cost(result.input_tokens, result.output_tokens, request.price)
            answer_text = result.text
            answer = _read_answer(result)
            found = resolve_citations(
                parse_citations(answer.body), request.documents, answer.listed_citations
            )
            subject, body, citations = answer.subject, answer.body, found.document_ids
            problems = check_variant(subject, body, found, request.rules)
        except MalformedResponseError as error:
            totals["calls"] += 1
            problems = [f"the service returned an unreadable response ({error})"]
        except AnswerFormatError as error:
            problems = [f"the answer could not be read: {error}. {request.prompt.output_format}"]
        if not problems:
            break
        stated.extend(problems)
        if answer_text:
            messages.append(ChatMessage("assistant", answer_text))
        messages.append(
            ChatMessage("user", revision_prompt(request.templates, problems, request.prompt.output_format))
        )
    return Variant(
        segment=request.segment,
        variant_id=variant_id(
            request.segment,
            request.tone,
            backend,
            llm.model_name,
            request.prompt,
            {**request.parameters(), "feedback": list(feedback)},
        ),
        tone=request.tone,
        subject=subject,
        body=body,
        citations=citations,
        status=STATUS_VALID if not problems else STATUS_REJECTED,
        rejection_reasons=tuple(problems),
        attempts=attempts_made,
        backend=backend,
        model=model,
        input_tokens=int(totals["input"]),
        output_tokens=int(totals["output"]),
        cost_usd=round(float(totals["cost"]), 8),
        latency_ms=round(float(totals["latency"]), 1),
        created_at=datetime.now(UTC),
        model_calls=int(totals["calls"]),
        cache_hits=int(totals["hits"]),
        run_cost_usd=float(totals["run_cost"]),
    )


def regenerate_variant(
    llm: LLMResource,
    request: VariantRequest,
    feedback: str | Sequence[str],
    *,
    previous: Variant | Mapping[str, object] | pd.Series | None = None,
    cache: ResponseCache | None = None,
) -> Variant:
    """Rewrite a variant with `feedback` (e.g. why the safety stage blocked it) stated to the writer.

    `previous` is the blocked variant (a Variant or a `message_variants` row); the writer sees it with the
    feedback. The result passes the same format rules (or comes back `rejected` with reasons) and has a new
    variant_id.
    """
    reasons = [feedback] if isinstance(feedback, str) else list(feedback)
    previous_answer = None
    if previous is not None:
        subject, body = (
            (previous.subject, previous.body)
            if isinstance(previous, Variant)
            else (previous["subject"], previous["body"])
        )
        previous_answer = f"Subject: {subject}\n\n{body}"
    return generate_variant(llm, request, cache, feedback=reasons, previous_answer=previous_answer)


def variant_request_for(
    settings: PipelineSettings,
    llm: LLMResource,
    segment: str,
    tone: str,
    segment_profiles: pd.DataFrame,
    retrieved_content: pd.DataFrame,
    content_index: pd.DataFrame | None = None,
) -> VariantRequest:
    """The request this stage would build for (segment, tone), from the stored inputs (for rewrites)."""
    config = load_generation_config(settings)
    if tone not in config.tones:
        raise ValueError(
            f"tone '{tone}' is not configured in {GENERATION_CONFIG_FILE} (tones: {config.tones})"
        )
    templates = load_prompt_templates(settings.config_path(config.prompts_dir), config.tones)
    brief = segment_brief(segment_profiles, segment)
    documents = segment_documents(retrieved_content, content_index, segment, config.max_documents)
    requests = build_variant_requests(config, templates, llm, brief, documents)
    return next(request for request in requests if request.tone == tone)


def generate_variants(
    llm: LLMResource, requests: Sequence[VariantRequest], cache: ResponseCache | None, max_concurrency: int
) -> list[Variant]:
    """All variants of a partition, `max_concurrency` at a time; the first service failure fails them all."""
    if not requests:
        return []
    llm.warm_up()  # build the client once, not in every worker at the same time
    with ThreadPoolExecutor(
        max_workers=min(max_concurrency, len(requests)), thread_name_prefix="generate"
    ) as pool:
        futures = {pool.submit(generate_variant, llm, request, cache): request for request in requests}
        done, not_done = wait(futures, return_when=FIRST_EXCEPTION)
        for future in not_done:
            future.cancel()
        for future in futures:
            if future in done and future.exception() is not None:
                request = futures[future]
                error = future.exception()
                raise GenerationFailedError(
                    f"segment '{request.segment}', tone '{request.tone}': {str(error).rstrip('.')}. "
                    "No variants were stored for this partition."
                ) from error
    return [future.result() for future in futures]


def variants_frame(variants: Sequence[Variant]) -> pd.DataFrame:
    frame = pd.DataFrame([variant.as_row() for variant in variants], columns=VARIANT_COLUMNS)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame.astype(
        {
            "attempts": "int64",
            "input_tokens": "int64",
            "output_tokens": "int64",
            "cost_usd": "float64",
            "latency_ms": "float64",
        }
    )


def _markdown(frame: pd.DataFrame) -> MetadataValue:
    return MetadataValue.md(frame.to_markdown(index=False) if not frame.empty else "_none_")


def run_metadata(
    variants: Sequence[Variant], wall_seconds: float, llm: LLMResource, cache_writes: int
) -> dict:
    """Figures of one partition run for the asset's metadata."""
    called = [v.latency_ms for v in variants if v.model_calls]
    rejected = [v for v in variants if not v.is_valid]
    preview = pd.DataFrame(
        {
            "tone": [v.tone for v in variants],
            "status": [v.status for v in variants],
            "subject": [v.subject for v in variants],
            "words": [count_words(v.body) for v in variants],
            "citations": [", ".join(v.citations) for v in variants],
            "attempts": [v.attempts for v in variants],
        }
    )
    return {
        "backend": llm.backend_name,
        "model": llm.model_name,
        "variants": len(variants),
        "valid_variants": len(variants) - len(rejected),
        "rejected_variants": len(rejected),
        "rejection_reasons": _markdown(
            pd.DataFrame(
                {
                    "tone": [v.tone for v in rejected],
                    "reasons": ["; ".join(v.rejection_reasons) for v in rejected],
                }
            )
        ),
        "model_calls": sum(v.model_calls for v in variants),
        "cache_hits": sum(v.cache_hits for v in variants),
        "cache_entries_written": cache_writes,
        "input_tokens": sum(v.input_tokens for v in variants),
        "output_tokens": sum(v.output_tokens for v in variants),
        "cost_usd": MetadataValue.float(round(sum(v.cost_usd for v in variants), 6)),
        "cost_usd_this_run": MetadataValue.float(round(sum(v.run_cost_usd for v in variants), 6)),
        "latency_ms_median": MetadataValue.float(round(statistics.median(called), 1) if called else 0.0),
        "latency_ms_max": MetadataValue.float(round(max(called), 1) if called else 0.0),
        "wall_seconds": MetadataValue.float(round(wall_seconds, 3)),
        "preview": _markdown(preview),
    }


@asset(
    partitions_def=segment_partitions,
    metadata=SEGMENT_PARTITION_METADATA,
    kinds=STORAGE_KINDS,
    group_name=GROUP,
    # The content index is read for document keywords through the warehouse (it is not an IO-manager output).
    deps=[AssetKey(CONTENT_INDEX_TABLE)],
)
def message_variants(
    context: AssetExecutionContext,
    retrieved_content: pd.DataFrame,
    segment_profiles: pd.DataFrame,
    settings: PipelineSettings,
    warehouse: DuckDBWarehouse,
    llm: LLMResource,
) -> pd.DataFrame:
    """One message per tone for the segment: subject, body citing [Source: Title], status, tokens and cost."""
    config = load_generation_config(settings)
    templates = load_prompt_templates(settings.config_path(config.prompts_dir), config.tones)
    segment = context.partition_key
    brief = segment_brief(segment_profiles, segment)
    content_index = read_content_index(warehouse, columns=["document_id", "keywords"])
    documents = segment_documents(retrieved_content, content_index, segment, config.max_documents)
    cache = ResponseCache(warehouse, enabled=config.cache and llm.cacheable)
    requests = build_variant_requests(config, templates, llm, brief, documents)
    llm.warm_up()

    started = time.perf_counter()
    variants = generate_variants(llm, requests, cache, config.max_concurrency)
    wall_seconds = time.perf_counter() - started
    cache_writes = cache.flush()

    for variant in variants:
        if not variant.is_valid:
            context.log.warning(
                f"segment '{segment}', tone '{variant.tone}' rejected after {variant.attempts} attempt(s): "
                + "; ".join(variant.rejection_reasons)
            )
    context.add_output_metadata(run_metadata(variants, wall_seconds, llm, cache_writes))
    return variants_frame(variants)


# --- Checks (per partition; blocking ones gate safety and the experiment) ---------------------------------


def _valid_rows(message_variants: pd.DataFrame) -> pd.DataFrame:
    return message_variants.loc[message_variants["status"] == STATUS_VALID]


def _failures(frame: pd.DataFrame, mask: pd.Series, detail: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"tone": frame.loc[mask, "tone"], "problem": detail[mask]})


def _check_result(failing: pd.DataFrame, **metadata) -> AssetCheckResult:
    return AssetCheckResult(
        passed=failing.empty,
        metadata={"failing_variants": len(failing), "failures": _markdown(failing), **metadata},
    )


@asset_check(asset=message_variants, blocking=True, partitions_def=segment_partitions)
def all_tones_present(message_variants: pd.DataFrame, settings: PipelineSettings) -> AssetCheckResult:
    """Every configured tone has a variant row (valid or rejected) in the partition."""
    tones = load_generation_config(settings).tones
    present = message_variants["tone"].value_counts()
    missing = [tone for tone in tones if tone not in present.index]
    repeated = present[present > 1].index.tolist()
    return AssetCheckResult(
        passed=not missing and not repeated,
        metadata={
            "expected_tones": ", ".join(tones),
            "missing": ", ".join(missing) or "none",
            "repeated": ", ".join(repeated) or "none",
        },
    )


@asset_check(asset=message_variants, blocking=True, partitions_def=segment_partitions)
def subject_within_max_chars(message_variants: pd.DataFrame, settings: PipelineSettings) -> AssetCheckResult:
    """Valid variants' subjects are non-empty and no longer than rules.subject_max_chars."""
    limit = load_generation_config(settings).rules.subject_max_chars
    valid = _valid_rows(message_variants)
    lengths = valid["subject"].fillna("").str.strip().str.len()
    mask = (lengths == 0) | (lengths > limit)
    failing = _failures(valid, mask, lengths.astype(str) + " characters")
    return _check_result(failing, max_chars=limit, longest=int(lengths.max()) if len(lengths) else 0)


@asset_check(asset=message_variants, blocking=True, partitions_def=segment_partitions)
def body_within_word_range(message_variants: pd.DataFrame, settings: PipelineSettings) -> AssetCheckResult:
    """Valid variants' bodies have between rules.body_min_words and rules.body_max_words words."""
    rules = load_generation_config(settings).rules
    valid = _valid_rows(message_variants)
    words = valid["body"].fillna("").map(count_words)
    mask = (words < rules.body_min_words) | (words > rules.body_max_words)
    failing = _failures(valid, mask, words.astype(str) + " words")
    return _check_result(
        failing,
        expected=f"{rules.body_min_words}-{rules.body_max_words} words",
        observed=", ".join(f"{t}: {w}" for t, w in zip(valid["tone"], words, strict=True)) or "none",
    )


@asset_check(
    asset=message_variants,
    blocking=True,
    partitions_def=segment_partitions,
    additional_ins={"retrieved_content": AssetIn()},
)
def citations_map_to_retrieved_documents(
    message_variants: pd.DataFrame, retrieved_content: pd.DataFrame, settings: PipelineSettings
) -> AssetCheckResult:
    """Valid variants cite at least one source, and every citation names a document retrieved for them."""
    min_citations = load_generation_config(settings).rules.min_citations
    documents_by_segment = {
        segment: [SourceDocument(str(r.document_id), str(r.title), "") for r in rows.itertuples()]
        for segment, rows in retrieved_content.groupby(SEGMENT_COLUMN)
    }
    valid = _valid_rows(message_variants)
    problems = []
    for row in valid.itertuples():
        documents = documents_by_segment.get(row.segment, [])
        retrieved_ids = {doc.document_id for doc in documents}
        listed = json.loads(row.citations or "[]")
        found = resolve_citations(parse_citations(row.body or ""), documents)
        issues = []
        if len(found.document_ids) < min_citations:
            issues.append(f"{len(found.document_ids)} citation(s) in the body")
        if found.unknown:
            issues.append("unknown sources: " + ", ".join(found.unknown))
        outside = sorted(set(listed) - retrieved_ids)
        if outside:
            issues.append("citations column names unretrieved documents: " + ", ".join(outside))
        problems.append("; ".join(issues))
    detail = pd.Series(problems, index=valid.index, dtype="object")
    failing = _failures(valid, detail.str.len() > 0, detail)
    return _check_result(failing, retrieved_documents=int(retrieved_content["document_id"].nunique()))


@asset_check(asset=message_variants, blocking=True, partitions_def=segment_partitions)
def no_template_leftovers(message_variants: pd.DataFrame) -> AssetCheckResult:
    """Valid variants hold no Markdown labels, placeholders ([Your Name], {first_name}) or template fields."""
    valid = _valid_rows(message_variants)
    found = (valid["subject"].fillna("") + "\n" + valid["body"].fillna("")).map(
        lambda text: "; ".join(find_leftovers(text))
    )
    failing = _failures(valid, found.str.len() > 0, found)
    return _check_result(failing)


@asset_check(asset=message_variants, blocking=False, partitions_def=segment_partitions)
def no_rejected_variants(message_variants: pd.DataFrame) -> AssetCheckResult:
    """Warns when a tone was rejected after all attempts (it is kept out of safety and the experiment)."""
    rejected = message_variants.loc[message_variants["status"] != STATUS_VALID]
    reasons = rejected["rejection_reasons"].map(lambda text: "; ".join(json.loads(text or "[]")))
    return AssetCheckResult(
        passed=rejected.empty,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "rejected_variants": len(rejected),
            "rejections": _markdown(pd.DataFrame({"tone": rejected["tone"], "reasons": reasons})),
        },
    )
