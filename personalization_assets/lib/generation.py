"""Pure logic of the generation stage: prompt templates, citation parsing, format rules, ids, cost.

No Dagster and no network here: the asset module wires these to the `llm` resource and the warehouse.

Vocabulary
- A *variant* is one message (subject + body) for one segment in one tone.
- A *citation* is a `[Source: Title]` marker in the body (or a document id returned by structured output);
  it must name a document retrieved for the segment.
- A *violation* is a human-readable sentence naming a broken format rule; violations are fed back to the model
  in the follow-up prompt and stored as a rejected variant's `rejection_reasons`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import jinja2.meta
import pandas as pd

from personalization_assets.constants import SEGMENT_COLUMN

DEFAULT_TONES = ("urgent", "informational", "friendly")
STATUS_VALID = "valid"
STATUS_REJECTED = "rejected"

VARIANT_COLUMNS = [
    "segment",
    "variant_id",
    "tone",
    "subject",
    "body",
    "citations",
    "status",
    "rejection_reasons",
    "attempts",
    "backend",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms",
    "created_at",
]


# --- Inputs of a variant ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceDocument:
    """A retrieved document as the prompt and the composer see it."""

    document_id: str
    title: str
    snippet: str
    category: str = ""
    keywords: tuple[str, ...] = ()
    rank: int = 0

    def as_prompt_data(self) -> dict[str, object]:
        return {
            "document_id": self.document_id,
            "title": self.title,
            "category": self.category,
            "keywords": list(self.keywords),
            "snippet": self.snippet,
        }


@dataclass(frozen=True)
class SegmentBrief:
    """What the writer knows about the audience (one segment profile row, no raw customer data)."""

    segment: str
    segment_name: str
    intent: str
    description: str = ""
    engagement_level: str = ""
    customers: int = 0
    figures: Mapping[str, float] = field(default_factory=dict)

    def as_prompt_data(self) -> dict[str, object]:
        return {
            "segment": self.segment,
            "name": self.segment_name,
            "campaign_intent": self.intent,
            "engagement_level": self.engagement_level,
            "customers": self.customers,
            "description": self.description,
            **{key: round(float(value), 2) for key, value in self.figures.items()},
        }


# Profile columns shown to the writer: behaviour that shapes the message, nothing that identifies anyone.
PROFILE_FIGURES = (
    "mean_avg_order_value",
    "mean_purchase_frequency",
    "median_last_engagement_days",
    "mean_historical_open_rate",
    "mean_historical_click_rate",
)


def brief_from_profile(profile: Mapping[str, object]) -> SegmentBrief:
    """A SegmentBrief from one `segment_profiles` row (missing optional columns are left empty)."""
    figures = {
        name: float(profile[name])  # type: ignore[arg-type]
        for name in PROFILE_FIGURES
        if name in profile and profile[name] is not None and profile[name] == profile[name]  # skip NaN
    }
    return SegmentBrief(
        segment=str(profile["segment"]),
        segment_name=str(profile.get("segment_name") or profile["segment"]),
        intent=str(profile.get("intent") or "nurture"),
        description=str(profile.get("description") or ""),
        engagement_level=str(profile.get("engagement_level") or ""),
        customers=int(profile.get("customers") or 0),  # type: ignore[call-overload]
        figures=figures,
    )


def parse_keywords(value: object) -> tuple[str, ...]:
    """Keywords from the content index: JSON text, a list, or missing."""
    if value is None or (isinstance(value, float) and value != value):
        return ()
    if isinstance(value, str):
        text = value
        try:
            value = json.loads(text) if text.strip() else []
        except json.JSONDecodeError:
            value = text.split(",")
    if isinstance(value, Iterable):
        return tuple(str(item).strip() for item in value if str(item).strip())
    return ()


# --- Prompt templates ---------------------------------------------------------------------------------------


class PromptTemplateError(ValueError):
    """A prompt template is missing, unreadable, malformed or uses undocumented variables; names the file."""


# Templates are Jinja2 (`{{ name }}`); an undefined variable is an error, never an empty string sent to a model.
_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


@dataclass(frozen=True)
class TemplateSpec:
    """Variables a template must use (required) and may use (allowed)."""

    required: frozenset[str]
    optional: frozenset[str] = frozenset()

    @property
    def allowed(self) -> frozenset[str]:
        return self.required | self.optional


# The documented variables of each template in config/prompts/ (see config/prompts/README.md).
SYSTEM_TEMPLATE = TemplateSpec(
    required=frozenset({"subject_max_chars", "body_min_words", "body_max_words"}),
    optional=frozenset({"sender"}),
)
TONE_TEMPLATE = TemplateSpec(required=frozenset(), optional=frozenset({"tone", "sender"}))
USER_TEMPLATE = TemplateSpec(
    required=frozenset({"segment_profile", "documents", "output_format"}),
    optional=frozenset({"tone", "segment_name", "intent"}),
)
REVISION_TEMPLATE = TemplateSpec(required=frozenset({"problems"}), optional=frozenset({"output_format"}))


@dataclass(frozen=True)
class PromptTemplate:
    """One compiled template and the file it came from (named in every error)."""

    source: str
    template: jinja2.Template

    def render(self, values: Mapping[str, object]) -> str:
        try:
            return self.template.render(values).strip()
        except jinja2.UndefinedError as error:
            raise PromptTemplateError(f"{self.source}: no value for template variable ({error.message})") from None


@dataclass(frozen=True)
class PromptTemplates:
    system: PromptTemplate
    tones: Mapping[str, PromptTemplate]
    user: PromptTemplate
    revision: PromptTemplate
    directory: str = ""


def _names(names: Iterable[str]) -> str:
    return ", ".join(f"{{{{ {name} }}}}" for name in sorted(names))


def _read_template(path: Path, spec: TemplateSpec) -> PromptTemplate:
    if not path.is_file():
        raise PromptTemplateError(f"{path}: prompt template is missing")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise PromptTemplateError(f"{path}: not valid UTF-8 text ({error.reason} at byte {error.start})") from None
    if not text.strip():
        raise PromptTemplateError(f"{path}: prompt template is empty")
    try:
        found = jinja2.meta.find_undeclared_variables(_JINJA.parse(text))
        template = _JINJA.from_string(text)
    except jinja2.TemplateSyntaxError as error:
        raise PromptTemplateError(f"{path}, line {error.lineno}: invalid prompt template: {error.message}") from None
    problems = []
    if missing := spec.required - found:
        problems.append(f"missing required placeholder(s) {_names(missing)}")
    if unknown := found - spec.allowed:
        problems.append(f"unknown placeholder(s) {_names(unknown)} (allowed: {', '.join(sorted(spec.allowed))})")
    if problems:
        raise PromptTemplateError(f"{path}: invalid prompt template: {'; '.join(problems)}")
    return PromptTemplate(str(path), template)


def load_prompt_templates(directory: str | Path, tones: Sequence[str]) -> PromptTemplates:
    """Read system.md, tones/<tone>.md for every tone, user.md and revision.md; errors name the file."""
    root = Path(directory)
    return PromptTemplates(
        system=_read_template(root / "system.md", SYSTEM_TEMPLATE),
        tones={tone: _read_template(root / "tones" / f"{tone}.md", TONE_TEMPLATE) for tone in tones},
        user=_read_template(root / "user.md", USER_TEMPLATE),
        revision=_read_template(root / "revision.md", REVISION_TEMPLATE),
        directory=str(root),
    )


# --- Rules --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormatRules:
    subject_max_chars: int = 60
    body_min_words: int = 150
    body_max_words: int = 250
    min_citations: int = 1


# --- Prompts ------------------------------------------------------------------------------------------------

STRUCTURED_OUTPUT_FORMAT = (
    'Answer with a JSON object with exactly these fields: "subject" (the subject line), "body" (the '
    'message body, citing sources inline as [Source: Title]) and "citations" (the document_id of every '
    "document the body cites)."
)
FREE_TEXT_OUTPUT_FORMAT = (
    "Answer in plain text, nothing else: the first line is `Subject: ` followed by the subject line; then "
    "an empty line; then the message body, citing sources inline as [Source: Title]. No Markdown, no labels "
    "in the body."
)


@dataclass(frozen=True)
class Prompt:
    instructions: str
    user: str
    output_format: str


def quote_documents(documents: Sequence[SourceDocument]) -> str:
    """The documents as one JSON array, escaped so that no document text can close the fence around it.

    Backticks and angle brackets are written as JSON unicode escapes: the JSON stays valid, but a document
    that contains ``` or </documents> cannot end the quoted block and pose as instructions.
    """
    text = json.dumps([doc.as_prompt_data() for doc in documents], ensure_ascii=False, indent=2)
    return text.replace("`", "\\u0060").replace("<", "\\u003c").replace(">", "\\u003e")


def build_prompt(
    templates: PromptTemplates,
    brief: SegmentBrief,
    documents: Sequence[SourceDocument],
    tone: str,
    rules: FormatRules,
    *,
    structured: bool,
    sender: str = "",
) -> Prompt:
    """System instructions (shared + tone) and the user message for one variant."""
    if tone not in templates.tones:
        raise PromptTemplateError(f"{templates.directory}: no prompt template for tone {tone!r} (tones/{tone}.md)")
    output_format = STRUCTURED_OUTPUT_FORMAT if structured else FREE_TEXT_OUTPUT_FORMAT
    system_values = {
        "subject_max_chars": rules.subject_max_chars,
        "body_min_words": rules.body_min_words,
        "body_max_words": rules.body_max_words,
        "sender": sender,
        "tone": tone,
    }
    instructions = templates.system.render(system_values) + "\n\n" + templates.tones[tone].render(system_values)
    user = templates.user.render(
        {
            "segment_profile": json.dumps(brief.as_prompt_data(), ensure_ascii=False, indent=2),
            "documents": quote_documents(documents),
            "output_format": output_format,
            "tone": tone,
            "segment_name": brief.segment_name,
            "intent": brief.intent,
        },
    )
    return Prompt(instructions=instructions, user=user, output_format=output_format)


def revision_prompt(templates: PromptTemplates, problems: Sequence[str], output_format: str) -> str:
    """The follow-up message asking for a corrected answer, stating every violation."""
    listed = "\n".join(f"- {problem}" for problem in problems)
    return templates.revision.render({"problems": listed, "output_format": output_format})


def variant_json_schema(document_ids: Sequence[str]) -> dict[str, object]:
    """Structured-output schema: subject, body, citations restricted to the retrieved document ids."""
    return {
        "type": "object",
        "properties": {
            "subject": {"type": "string", "description": "the subject line"},
            "body": {
                "type": "string",
                "description": "the message body with inline [Source: Title] citations",
            },
            "citations": {
                "type": "array",
                "description": "document_id of every cited document",
                "items": {"type": "string", "enum": list(document_ids)},
            },
        },
        "required": ["subject", "body", "citations"],
        "additionalProperties": False,
    }


# --- Parsing answers ----------------------------------------------------------------------------------------


class AnswerFormatError(ValueError):
    """The model's answer cannot be read as subject + body (+ citations)."""


@dataclass(frozen=True)
class ParsedAnswer:
    subject: str
    body: str
    listed_citations: tuple[str, ...] = ()  # document ids returned by structured output


def parse_structured_answer(answer: object) -> ParsedAnswer:
    """Read `{subject, body, citations}` from a parsed JSON answer or its text."""
    if isinstance(answer, str):
        try:
            answer = json.loads(answer)
        except json.JSONDecodeError as error:
            raise AnswerFormatError(f"the answer is not valid JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(answer, dict):
        raise AnswerFormatError(f"the answer must be a JSON object, got {type(answer).__name__}")
    missing = [key for key in ("subject", "body", "citations") if key not in answer]
    if missing:
        raise AnswerFormatError(f"the answer lacks the field(s) {', '.join(missing)}")
    subject, body, citations = answer["subject"], answer["body"], answer["citations"]
    if not isinstance(subject, str) or not isinstance(body, str):
        raise AnswerFormatError("subject and body must be strings")
    if not isinstance(citations, list) or not all(isinstance(item, str) for item in citations):
        raise AnswerFormatError("citations must be a list of document ids (strings)")
    return ParsedAnswer(subject.strip(), body.strip(), tuple(item.strip() for item in citations))


SUBJECT_LINE = re.compile(r"^\s*subject\s*:\s*(?P<subject>.*)$", re.IGNORECASE)


def parse_free_text_answer(text: str) -> ParsedAnswer:
    """Read `Subject: ...` + body from a plain-text answer (fallback for endpoints without structured output).

    Only a plain `Subject:` label is removed; anything else (a Markdown `**Subject:**`, a `Body:` label) stays
    in the text so the format rules can reject it and the model is told what to fix.
    """
    lines = (text or "").strip().splitlines()
    if not lines:
        raise AnswerFormatError("the answer is empty")
    first, rest = lines[0], lines[1:]
    match = SUBJECT_LINE.match(first)
    subject = match.group("subject") if match else first
    body = "\n".join(rest).strip()
    if not body:
        raise AnswerFormatError("the answer has a subject line but no body")
    return ParsedAnswer(subject.strip(), body)


# --- Citations ----------------------------------------------------------------------------------------------

# [Source: Title], [Sources: A; B], (Source: Title (with parentheses)); case-insensitive.
_BRACKET_CITATION = re.compile(r"\[\s*sources?\s*:\s*(?P<label>[^\]\n]+?)\s*\]", re.IGNORECASE)
_PAREN_CITATION = re.compile(r"\(\s*sources?\s*:\s*(?P<label>(?:[^()\n]|\([^()\n]*\))+?)\s*\)", re.IGNORECASE)
_LABEL_SEPARATOR = re.compile(r"\s*[;|]\s*")


def citation_markers(text: str) -> list[re.Match[str]]:
    """Every citation marker in `text`, in order of appearance."""
    matches = list(_BRACKET_CITATION.finditer(text)) + list(_PAREN_CITATION.finditer(text))
    return sorted(matches, key=lambda match: match.start())


def parse_citations(text: str) -> list[str]:
    """The cited labels (titles or ids) in order; `[Sources: A; B]` yields A and B."""
    labels: list[str] = []
    for match in citation_markers(text):
        labels.extend(part for part in _LABEL_SEPARATOR.split(match.group("label")) if part.strip())
    return labels


def strip_citations(text: str) -> str:
    for pattern in (_BRACKET_CITATION, _PAREN_CITATION):
        text = pattern.sub(" ", text)
    return text


def _normalize(label: str) -> str:
    # Quotes, emphasis and punctuation around a label are not part of the title (applied to both sides).
    label = label.strip().strip("\"'“”‘’*_`.,;:!").strip()
    return re.sub(r"\s+", " ", label).casefold()


def _short_title(title: str) -> str:
    """The main title, before a colon or parenthesis ("We Miss You: 25% Off ..." -> "we miss you")."""
    return _normalize(re.split(r"[:(]", title, maxsplit=1)[0])


@dataclass(frozen=True)
class CitationCheck:
    document_ids: tuple[str, ...]  # cited retrieved documents, first mention first, no duplicates
    unknown: tuple[str, ...]  # cited labels that name no retrieved document


def resolve_citations(
    labels: Iterable[str], documents: Sequence[SourceDocument], listed_ids: Iterable[str] = ()
) -> CitationCheck:
    """Map cited labels (title, main title or document id) and listed ids to the retrieved documents.

    A label naming no retrieved document, or naming several ambiguously, is *unknown*: it is reported, never
    dropped, so the variant is rejected rather than shipped with a made-up source.
    """
    by_key: dict[str, set[str]] = {}
    for doc in documents:
        for key in {_normalize(doc.document_id), _normalize(doc.title), _short_title(doc.title)}:
            if key:
                by_key.setdefault(key, set()).add(doc.document_id)
    found: list[str] = []
    unknown: list[str] = []
    for label in [*labels, *listed_ids]:
        ids = by_key.get(_normalize(label), set())
        if len(ids) == 1:
            doc_id = next(iter(ids))
            if doc_id not in found:
                found.append(doc_id)
        elif label.strip() not in unknown:
            unknown.append(label.strip())
    return CitationCheck(tuple(found), tuple(unknown))


# --- Format rules -------------------------------------------------------------------------------------------

_WORD = re.compile(r"[0-9A-Za-zÀ-ÿ]")

# Leftovers of a model's Markdown or of an unfilled template. Square brackets other than citations are
# placeholders in marketing copy ("[Your Name]", "[Insert link]").
LEFTOVER_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "Markdown bold label",
        re.compile(r"(\*\*|__)\s*[A-Za-z][\w \-]{0,30}:\s*(\*\*|__)|(\*\*|__)[A-Za-z][\w \-]{0,30}(\*\*|__)\s*:"),
    ),
    (
        "label line",
        re.compile(
            r"(?im)^\s*(subject(?: line)?|body|email body|message|preheader|preview text|cta|call to action"
            r"|signature)\s*:"
        ),
    ),
    ("Markdown heading", re.compile(r"(?m)^\s*#{1,6}\s+\S")),
    ("Markdown emphasis", re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")),
    ("placeholder in brackets", re.compile(r"\[(?!\s*sources?\s*:)[^\[\]\n]{1,60}\]", re.IGNORECASE)),
    ("template field in braces", re.compile(r"\{\{?[^{}\n]{0,60}\}?\}|\{%.*?%\}")),
    ("placeholder in angle brackets", re.compile(r"<<[^<>\n]{1,60}>>|<\s*[A-Za-z_][A-Za-z _]{0,40}>")),
    ("placeholder in percent signs", re.compile(r"%[A-Z][A-Z_]{1,40}%")),
)


def count_words(body: str) -> int:
    """Words of the body as a reader counts them; citation markers are references, not words."""
    return sum(1 for token in strip_citations(body).split() if _WORD.search(token))


def find_leftovers(text: str) -> list[str]:
    """Descriptions of Markdown or template leftovers in `text` (empty when clean)."""
    found: list[str] = []
    reported: list[tuple[int, int]] = []
    for name, pattern in LEFTOVER_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            # One leftover, one message: `**Subject:**` is a bold label, not also "emphasis".
            if not any(start < done_end and done_start < end for done_start, done_end in reported):
                found.append(f"{name} {match.group(0).strip()!r}")
                reported.append((start, end))
                break
    return found


def check_variant(subject: str, body: str, citations: CitationCheck, rules: FormatRules) -> list[str]:
    """Every format rule the variant breaks, as sentences a model (and an analyst) can act on."""
    problems: list[str] = []
    if not subject.strip():
        problems.append("the subject is empty")
    elif len(subject) > rules.subject_max_chars:
        problems.append(f"the subject has {len(subject)} characters; the maximum is {rules.subject_max_chars}")
    if "\n" in subject.strip():
        problems.append("the subject must be a single line")
    if parse_citations(subject):
        problems.append("the subject must not contain citations")
    words = count_words(body)
    if not rules.body_min_words <= words <= rules.body_max_words:
        problems.append(
            f"the body has {words} words; it must have {rules.body_min_words} to {rules.body_max_words} words"
        )
    if len(citations.document_ids) < rules.min_citations:
        problems.append(
            f"the body cites {len(citations.document_ids)} retrieved document(s); cite at least "
            f"{rules.min_citations} as [Source: Title]"
        )
    if citations.unknown:
        problems.append(
            "citations name sources that were not provided: " + ", ".join(repr(label) for label in citations.unknown)
        )
    for where, text in (("subject", subject), ("body", body)):
        for leftover in find_leftovers(text):
            problems.append(f"the {where} contains a {leftover}")
    return problems


# --- Identity and cost --------------------------------------------------------------------------------------


def stable_hash(*parts: object, length: int = 16) -> str:
    """Hex digest of the canonical JSON of `parts` (stable across processes and runs)."""
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:length]


def variant_id(segment: str, tone: str, backend: str, model: str, prompt: Prompt, parameters: Mapping) -> str:
    """Same segment, tone, backend, model, prompt and parameters -> same id."""
    return "v-" + stable_hash(segment, tone, backend, model, prompt.instructions, prompt.user, dict(parameters))


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens."""

    input_per_million: float
    output_per_million: float


def token_cost(input_tokens: int, output_tokens: int, price: Price | None) -> float:
    """Cost in USD; 0 when no price is configured (local models)."""
    if price is None:
        return 0.0
    return (input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1_000_000


def estimate_tokens(text: str) -> int:
    """Rough token count (1.3 per word) for backends that report no usage."""
    return int(round(len(text.split()) * 1.3))


# --- Inputs from the stored frames --------------------------------------------------------------------------


def segment_brief(segment_profiles: pd.DataFrame, segment: str) -> SegmentBrief:
    """The brief of `segment` from the `segment_profiles` table."""
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
        keywords = dict(zip(content_index["document_id"], content_index["keywords"].map(parse_keywords), strict=True))
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


# --- Checks of the stored variants (evaluated by the asset before its rows are written) ---------------------


@dataclass(frozen=True)
class CheckOutcome:
    """A check's verdict and what it observed (plain values; frames are rendered by the asset)."""

    passed: bool
    metadata: dict[str, object]


def _valid_rows(variants: pd.DataFrame) -> pd.DataFrame:
    return variants.loc[variants["status"] == STATUS_VALID]


def _failing(frame: pd.DataFrame, mask: pd.Series, detail: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"tone": frame.loc[mask, "tone"], "problem": detail[mask]})


def _outcome(failing: pd.DataFrame, **metadata: object) -> CheckOutcome:
    return CheckOutcome(failing.empty, {"failing_variants": len(failing), "failures": failing, **metadata})


def check_all_tones_present(variants: pd.DataFrame, tones: Sequence[str]) -> CheckOutcome:
    """Every configured tone has exactly one variant row (valid or rejected)."""
    present = variants["tone"].value_counts()
    missing = [tone for tone in tones if tone not in present.index]
    repeated = present[present > 1].index.tolist()
    return CheckOutcome(
        not missing and not repeated,
        {
            "expected_tones": ", ".join(tones),
            "missing": ", ".join(missing) or "none",
            "repeated": ", ".join(repeated) or "none",
        },
    )


def check_subject_within_max_chars(variants: pd.DataFrame, max_chars: int) -> CheckOutcome:
    """Valid variants' subjects are non-empty and at most `max_chars` long."""
    valid = _valid_rows(variants)
    lengths = valid["subject"].fillna("").str.strip().str.len()
    failing = _failing(valid, (lengths == 0) | (lengths > max_chars), lengths.astype(str) + " characters")
    return _outcome(failing, max_chars=max_chars, longest=int(lengths.max()) if len(lengths) else 0)


def check_body_within_word_range(variants: pd.DataFrame, rules: FormatRules) -> CheckOutcome:
    """Valid variants' bodies have between rules.body_min_words and rules.body_max_words words."""
    valid = _valid_rows(variants)
    words = valid["body"].fillna("").map(count_words)
    mask = (words < rules.body_min_words) | (words > rules.body_max_words)
    return _outcome(
        _failing(valid, mask, words.astype(str) + " words"),
        expected=f"{rules.body_min_words}-{rules.body_max_words} words",
        observed=", ".join(f"{t}: {w}" for t, w in zip(valid["tone"], words, strict=True)) or "none",
    )


def check_citations_map_to_retrieved_documents(
    variants: pd.DataFrame, retrieved_content: pd.DataFrame, min_citations: int
) -> CheckOutcome:
    """Valid variants cite at least `min_citations` sources, and every citation names a retrieved document."""
    documents_by_segment = {
        segment: [SourceDocument(str(r.document_id), str(r.title), "") for r in rows.itertuples()]
        for segment, rows in retrieved_content.groupby(SEGMENT_COLUMN)
    }
    valid = _valid_rows(variants)
    problems = []
    for row in valid.itertuples():
        documents = documents_by_segment.get(row.segment, [])
        retrieved_ids = {doc.document_id for doc in documents}
        found = resolve_citations(parse_citations(row.body or ""), documents)
        issues = []
        if len(found.document_ids) < min_citations:
            issues.append(f"{len(found.document_ids)} citation(s) in the body")
        if found.unknown:
            issues.append("unknown sources: " + ", ".join(found.unknown))
        if outside := sorted(set(json.loads(row.citations or "[]")) - retrieved_ids):
            issues.append("citations column names unretrieved documents: " + ", ".join(outside))
        problems.append("; ".join(issues))
    detail = pd.Series(problems, index=valid.index, dtype="object")
    return _outcome(
        _failing(valid, detail.str.len() > 0, detail),
        retrieved_documents=int(retrieved_content["document_id"].nunique()),
    )


def check_no_template_leftovers(variants: pd.DataFrame) -> CheckOutcome:
    """Valid variants hold no Markdown labels, placeholders ([Your Name], {first_name}) or template fields."""
    valid = _valid_rows(variants)
    found = (valid["subject"].fillna("") + "\n" + valid["body"].fillna("")).map(
        lambda text: "; ".join(find_leftovers(text))
    )
    return _outcome(_failing(valid, found.str.len() > 0, found))


def check_no_rejected_variants(variants: pd.DataFrame) -> CheckOutcome:
    """No tone was rejected after all attempts (a rejected one is kept out of safety and the experiment)."""
    rejected = variants.loc[variants["status"] != STATUS_VALID]
    reasons = rejected["rejection_reasons"].map(lambda text: "; ".join(json.loads(text or "[]")))
    return CheckOutcome(
        rejected.empty,
        {
            "rejected_variants": len(rejected),
            "rejections": pd.DataFrame({"tone": rejected["tone"], "reasons": reasons}),
        },
    )
