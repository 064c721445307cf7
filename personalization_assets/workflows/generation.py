"""Generating message variants: one request per tone, rewrites with the violations stated, bounded concurrency.

Every variant is checked against the format rules right after generation; a broken one is asked for again with
the violations stated (up to `attempts_per_variant`), and comes back `rejected` with its reasons if it never
passes. An answer that is not a message - a refusal, an incomplete answer, a prompt blocked by the content
filter - rejects the variant at once with that reason (asking again would pay for the same answer).
"""

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from personalization_assets.config.generation import GenerationConfig
from personalization_assets.lib.generation import (
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
    build_prompt,
    check_variant,
    load_prompt_templates,
    parse_citations,
    parse_free_text_answer,
    parse_structured_answer,
    resolve_citations,
    revision_prompt,
    segment_brief,
    segment_documents,
    token_cost,
    variant_id,
    variant_json_schema,
)
from personalization_assets.store.generation import ResponseCache
from resources.llm import (
    STOP_CONTENT_FILTER,
    STOP_INCOMPLETE,
    STOP_REFUSAL,
    ChatMessage,
    ComposerBrief,
    GenerationRequest,
    GenerationResult,
    LLMResource,
    MalformedResponseError,
)
from resources.settings import PipelineSettings


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
    stop: str = ""  # why the model gave no message: refusal | incomplete | content_filter ("" otherwise)

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
            prompt=build_prompt(templates, brief, documents, tone, rules, structured=structured, sender=config.sender),
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


def stop_reason(result: GenerationResult, max_output_tokens: int) -> str:
    """The rejection reason of an answer that is not a message (stated to an analyst, not to the model)."""
    if result.stop == STOP_REFUSAL:
        return f"the model refused: {result.stop_detail}"
    if result.stop == STOP_CONTENT_FILTER:
        return f"the prompt was blocked by the service's content filter ({result.stop_detail})"
    if result.stop == STOP_INCOMPLETE and result.stop_detail == "max_output_tokens":
        return (
            f"the answer was cut off at max_output_tokens ({max_output_tokens}): raise max_output_tokens in "
            "generation.yaml (reasoning models spend part of it on reasoning; lower reasoning_effort)"
        )
    if result.stop == STOP_INCOMPLETE and result.stop_detail == "content_filter":
        return "the answer was stopped by the service's content filter (incomplete: content_filter)"
    return f"the answer is incomplete ({result.stop_detail})"


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
    after the prompt. Service failures (after the SDK's retries) propagate as `LLMServiceError`.
    """
    messages = [ChatMessage("user", request.prompt.user)]
    if feedback:
        if previous_answer:
            messages.append(ChatMessage("assistant", previous_answer))
        messages.append(ChatMessage("user", revision_prompt(request.templates, feedback, request.prompt.output_format)))
    stated: list[str] = list(feedback)
    schema = variant_json_schema([doc.document_id for doc in request.documents])
    totals = {"input": 0, "output": 0, "latency": 0.0, "cost": 0.0, "calls": 0, "hits": 0, "run_cost": 0.0}
    subject = body = stop = ""
    citations: tuple[str, ...] = ()
    problems: list[str] = []
    model = llm.model_name
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
            if result.stop:
                stop, problems = result.stop, [stop_reason(result, request.max_output_tokens)]
                subject = body = ""
                citations = ()
                break
            answer_text = result.text
            answer = _read_answer(result)
            found = resolve_citations(parse_citations(answer.body), request.documents, answer.listed_citations)
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
        messages.append(ChatMessage("user", revision_prompt(request.templates, problems, request.prompt.output_format)))
    return Variant(
        segment=request.segment,
        variant_id=variant_id(
            request.segment,
            request.tone,
            llm.backend_name,
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
        backend=llm.backend_name,
        model=model,
        input_tokens=int(totals["input"]),
        output_tokens=int(totals["output"]),
        cost_usd=round(float(totals["cost"]), 8),
        latency_ms=round(float(totals["latency"]), 1),
        created_at=datetime.now(UTC),
        model_calls=int(totals["calls"]),
        cache_hits=int(totals["hits"]),
        run_cost_usd=float(totals["run_cost"]),
        stop=stop,
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
    """The request the generation stage would build for (segment, tone), from the stored inputs (for rewrites)."""
    config = settings.stage(GenerationConfig)
    if tone not in config.tones:
        raise ValueError(f"tone '{tone}' is not configured in {config.FILENAME} (tones: {config.tones})")
    templates = load_prompt_templates(settings.config_path(config.prompts_dir), [tone])
    brief = segment_brief(segment_profiles, segment)
    documents = segment_documents(retrieved_content, content_index, segment, config.max_documents)
    one_tone = config.model_copy(update={"tones": [tone]})
    return build_variant_requests(one_tone, templates, llm, brief, documents)[0]


def generate_variants(
    llm: LLMResource, requests: Sequence[VariantRequest], cache: ResponseCache | None, max_concurrency: int
) -> list[Variant]:
    """All variants of a partition, `max_concurrency` at a time; the first service failure fails them all."""
    if not requests:
        return []
    llm.warm_up()  # build the client once, not in every worker at the same time
    with ThreadPoolExecutor(max_workers=min(max_concurrency, len(requests)), thread_name_prefix="generate") as pool:
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
    """The `message_variants` rows of `variants`."""
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
