"""Retrieval logic without Dagster: configuration, profile -> query, passages, snippets, score scaling.

How a segment profile becomes a query (`build_query`): the query is a bag of short phrases, concatenated in
this order, duplicates dropped (all phrase lists live in `config/retrieval.yaml` under `query:`):

1. **Intent** — the segment's campaign intent (`win_back`, `onboarding`, `vip`, `loyalty`, `nurture`, set by
   the segmentation rules or derived from the K-means cluster) selects `query.intents[intent]`, e.g.
   win-back -> "win-back", "we miss you", "comeback discount", "lapsed customers". The core of the query.
2. **Defining features** — each numeric feature's segment mean is compared with the population mean (the
   customer-weighted mean over all segments). The `query.defining_features` features with the largest relative
   difference, if at least `query.min_relative_difference`, add their `high` or `low` phrases
   (`last_engagement_days` high -> "since your last visit"; `avg_order_value` high -> "premium").
3. **Tier mix** — the segment's dominant tier (largest share in `tier_mix`) adds `query.tiers[tier]`.
4. **Engagement level** — `low` / `medium` / `high` adds `query.engagement[level]`.

Both backends receive the same text. Full-text ranking (BM25) ignores word order, so the query is a list of
phrases, not a sentence.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from personalization_assets.config import StrictModel
from personalization_assets.lib.content import CATEGORIES
from personalization_assets.lib.customers import NUMERIC_FEATURES
from personalization_assets.lib.segmentation import INTENTS
from resources.azure_auth import AzureAuthConfig

SNIPPET_MAX_CHARS = 200
ELLIPSIS = "…"
# Columns of the `retrieved_content` table, in order.
RETRIEVED_COLUMNS = ("segment", "rank", "document_id", "title", "category", "score", "snippet", "query")
SEARCHABLE_FIELDS = ("title", "keywords", "audience", "content")


# ---- configuration (config/retrieval.yaml) -----------------------------------------------------------------
class FeaturePhrases(StrictModel):
    high: list[str] = Field(default_factory=list)
    low: list[str] = Field(default_factory=list)


class QueryConfig(StrictModel):
    """The profile -> query mapping (see the module docstring)."""

    intents: dict[str, list[str]] = Field(default_factory=dict)
    features: dict[str, FeaturePhrases] = Field(default_factory=dict)
    defining_features: int = Field(default=2, ge=0, le=len(NUMERIC_FEATURES))
    min_relative_difference: float = Field(default=0.25, ge=0)
    tiers: dict[str, list[str]] = Field(default_factory=dict)
    engagement: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("intents")
    @classmethod
    def _known_intents(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(INTENTS))
        if unknown:
            raise ValueError(f"unknown intent(s) {', '.join(unknown)}; expected some of {', '.join(INTENTS)}")
        return value

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: dict[str, FeaturePhrases]) -> dict[str, FeaturePhrases]:
        unknown = sorted(set(value) - set(NUMERIC_FEATURES))
        if unknown:
            raise ValueError(
                f"unknown feature(s) {', '.join(unknown)}; expected some of {', '.join(NUMERIC_FEATURES)}"
            )
        return value

    @field_validator("engagement")
    @classmethod
    def _known_levels(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - {"low", "medium", "high"})
        if unknown:
            raise ValueError(f"unknown engagement level(s) {', '.join(unknown)}; expected low, medium, high")
        return value


class EmbeddedSearchConfig(StrictModel):
    """BM25 over the DuckDB full-text index of `content_index`; scores scaled by `normalize_bm25`."""

    field_weights: dict[str, float] = Field(
        default_factory=lambda: {"title": 2.0, "keywords": 2.0, "audience": 1.5, "content": 1.0}
    )
    half_relevance_coverage: float = Field(
        default=0.3, gt=0, description="query coverage (BM25 / query IDF sum) that scores 0.5"
    )
    steepness: float = Field(default=2.0, gt=0, le=10, description="slope of the logistic curve on coverage")

    @field_validator("field_weights")
    @classmethod
    def _known_fields(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(SEARCHABLE_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(unknown)}; expected some of {', '.join(SEARCHABLE_FIELDS)}"
            )
        if not value or any(weight < 0 for weight in value.values()) or not any(value.values()):
            raise ValueError("field weights must be >= 0 with at least one positive")
        return value


class AzureSearchConfig(AzureAuthConfig):
    """Azure AI Search (azure-search-documents SearchClient); auth fields come from AzureAuthConfig."""

    endpoint: str = ""
    index_name: str = "approved-content"
    semantic_configuration: str = "content-semantic"
    ca_bundle_path: str | None = Field(
        default=None, description="CA bundle to verify TLS (private CA, emulator)"
    )
    max_retries: int = Field(default=3, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=0.8, ge=0)
    retry_backoff_max_seconds: float = Field(default=30.0, ge=0)
    timeout_seconds: float = Field(default=30.0, gt=0)


class RetrievalConfig(StrictModel):
    """config/retrieval.yaml"""

    backend: str = Field(default="embedded", pattern="^(embedded|azure)$")
    threshold: float = Field(default=0.5, ge=0, le=1, description="minimum normalized score a document needs")
    top_k: int = Field(default=4, ge=3, le=5, description="documents kept per segment (3-5)")
    category: str | None = Field(default=None, description="only retrieve this category (null = all)")
    query: QueryConfig = QueryConfig()
    embedded: EmbeddedSearchConfig = EmbeddedSearchConfig()
    azure: AzureSearchConfig = AzureSearchConfig()

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str | None) -> str | None:
        if value is not None and value not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)} or null, got {value!r}")
        return value

    @model_validator(mode="after")
    def _azure_needs_endpoint(self) -> RetrievalConfig:
        if self.backend == "azure" and not self.azure.endpoint:
            raise ValueError("backend 'azure' needs azure.endpoint")
        return self


# ---- search hits -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchHit:
    """One document found by a search backend. `score` is in [0, 1]; `raw_score` is the backend's own."""

    document_id: str
    title: str
    category: str
    raw_score: float
    score: float
    passage: str  # the part of the document that matched the query best


# ---- query building ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SegmentQuery:
    text: str
    phrases: tuple[str, ...]
    # Which profile trait contributed which phrases (shown in the UI next to the query).
    sources: dict[str, list[str]] = field(default_factory=dict)


def population_means(profiles: pd.DataFrame) -> pd.Series:
    """Customer-weighted mean of each `mean_<feature>` over all segments (the whole customer base)."""
    columns = [f"mean_{f}" for f in NUMERIC_FEATURES if f"mean_{f}" in profiles]
    weights = profiles["customers"].to_numpy(dtype=float)
    values = profiles[columns].to_numpy(dtype=float)
    means = weights @ values / weights.sum()
    return pd.Series(means, index=[c.removeprefix("mean_") for c in columns])


def defining_features(
    profile: Mapping[str, object], population: pd.Series, count: int, min_relative_difference: float
) -> list[tuple[str, str, float]]:
    """(feature, "high" | "low", relative difference) of the segment's most distinctive features."""
    segment = pd.Series({f: float(profile[f"mean_{f}"]) for f in population.index})  # type: ignore[arg-type]
    base = population.replace(0, np.nan)
    relative = ((segment - base) / base.abs()).dropna()
    relative = relative[relative.abs() >= min_relative_difference]
    ranked = relative.reindex(relative.abs().sort_values(ascending=False).index).head(count)
    return [(name, "high" if value > 0 else "low", float(value)) for name, value in ranked.items()]


def dominant_tier(tier_mix: object) -> str | None:
    mix = json.loads(tier_mix) if isinstance(tier_mix, str) else dict(tier_mix or {})  # type: ignore
    return max(mix, key=mix.get) if mix else None


def build_query(profile: Mapping[str, object], population: pd.Series, config: QueryConfig) -> SegmentQuery:
    """The segment's query: intent, defining features, dominant tier, engagement level (module docstring)."""
    sources: dict[str, list[str]] = {}
    intent = str(profile["intent"])
    sources[f"intent {intent}"] = list(config.intents.get(intent, []))
    mapped = population[[f for f in population.index if f in config.features]]
    for feature, direction, difference in defining_features(
        profile, mapped, config.defining_features, config.min_relative_difference
    ):
        phrases = getattr(config.features[feature], direction)
        sources[f"{feature} {direction} ({difference:+.0%} vs all customers)"] = list(phrases)
    tier = dominant_tier(profile.get("tier_mix"))
    if tier is not None:
        sources[f"dominant tier {tier}"] = list(config.tiers.get(tier, []))
    level = str(profile.get("engagement_level", ""))
    if level:
        sources[f"engagement {level}"] = list(config.engagement.get(level, []))

    # Drop a phrase whose words all appear already: BM25 counts each distinct term once anyway.
    phrases: list[str] = []
    words: set[str] = set()
    for phrase in (p.strip() for group in sources.values() for p in group):
        phrase_words = set(_WORD.findall(phrase.lower()))
        if phrase and not phrase_words <= words:
            words |= phrase_words
            phrases.append(phrase)
    if not phrases:
        raise ValueError(
            f"segment {profile.get('segment')!r} (intent {intent!r}) gives an empty query: add phrases for "
            "this intent under query.intents in config/retrieval.yaml"
        )
    return SegmentQuery(text=" ".join(phrases), phrases=tuple(phrases), sources=sources)


# ---- passages and snippets ---------------------------------------------------------------------------------
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# A sentence ends at . ! ? … and a space (not after a digit: list numbers "3. ", "$75.") or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?…])(?<![0-9]\.)\s+|\s*\n\s*")
_WORD = re.compile(r"\w+")


def _clean(text: str) -> str:
    """NFC-normalized text with runs of whitespace collapsed to one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def split_passages(content: str, max_chars: int = SNIPPET_MAX_CHARS) -> list[str]:
    """Paragraphs, split into windows of whole sentences of at most `max_chars` (longer sentences alone).

    Passages are what the embedded index ranks within a document, so a snippet comes from the matched part.
    """
    passages: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(unicodedata.normalize("NFC", content)):
        window = ""
        for sentence in (_clean(s) for s in _SENTENCE_END.split(paragraph)):
            if not sentence:
                continue
            if window and len(window) + 1 + len(sentence) > max_chars:
                passages.append(window)
                window = sentence
            else:
                window = f"{window} {sentence}" if window else sentence
        if window:
            passages.append(window)
    return passages


def _is_word_char(character: str) -> bool:
    return character.isalnum() or character == "_" or unicodedata.category(character).startswith("M")


def cut_snippet(text: str, max_chars: int = SNIPPET_MAX_CHARS) -> str:
    """At most `max_chars` characters of `text`, ending on a word boundary, with "…" when shortened.

    Cuts at the last whitespace that fits; a single word longer than the limit (a URL, a long compound) is cut
    at its last inner boundary (e.g. before a '/' or '-') that fits, and skipped when it has none.
    """
    # A passage that is a list item starts with its bullet; the snippet starts at the words.
    text = _clean(text).lstrip("-*•–— ")
    if len(text) <= max_chars:
        return text
    budget = max_chars - len(ELLIPSIS)
    while text:
        head = text[: budget + 1]
        # Last whitespace within the budget: the cut falls between two words.
        cut = head.rfind(" ")
        if cut > 0:
            return text[:cut].rstrip(" ,;:-–—") + ELLIPSIS
        # One over-long first token: cut at the last end of a word inside it (before '/', '-', '.', ...).
        word_ends = [
            i for i in range(1, budget + 1) if _is_word_char(text[i - 1]) and not _is_word_char(text[i])
        ]
        if word_ends:
            return text[: word_ends[-1]] + ELLIPSIS
        # An unbreakable run of letters longer than the snippet: leave it out, start at the next word.
        _, _, text = text.partition(" ")
        if len(text) <= max_chars:
            return text
    return ""


def ends_on_word_boundary(snippet: str, source: str) -> bool:
    """True when `snippet` (without its "…") occurs in `source` and stops where a word stops there."""
    core = snippet.removesuffix(ELLIPSIS)
    if not core:
        return True
    source = _clean(source)
    start = source.find(core)
    while start >= 0:
        end = start + len(core)
        # A boundary: the end of the text, or any position not between two characters of the same word.
        if end == len(source) or not (_is_word_char(source[end - 1]) and _is_word_char(source[end])):
            return True
        start = source.find(core, start + 1)
    return False


def _stems(text: str) -> set[str]:
    # A crude stem (first 5 letters) so "lapsed" matches "lapse"; only used to pick a passage, not to rank.
    return {word[:5] for word in _WORD.findall(text.lower()) if len(word) > 2}


def best_passage(content: str, query: str) -> str:
    """The passage of `content` sharing most query words (first on ties), for backends without passages."""
    passages = split_passages(content) or [_clean(content)]
    terms = _stems(query)
    overlaps = [len(terms & _stems(p)) for p in passages]
    return passages[int(np.argmax(overlaps))]


# ---- score scaling -----------------------------------------------------------------------------------------
def bm25_coverage(raw_scores: Sequence[float], query_idf: float) -> np.ndarray:
    """BM25 score / sum of the IDF of the query's terms: how much of the query a document explains.

    A document of average length that mentions every query term once (in a field of weight 1) scores 1.0:
    each term contributes its IDF there. Matches in heavier fields or repeated mentions score more; a document
    that only matches common words, or few of the query's terms, scores well below 1.
    """
    scores = np.asarray(raw_scores, dtype=float)
    if query_idf <= 0:
        return np.zeros_like(scores)
    return np.clip(np.nan_to_num(scores, nan=0.0), 0.0, None) / query_idf


def normalize_bm25(
    raw_scores: Sequence[float],
    query_idf: float,
    half_relevance_coverage: float = 0.3,
    steepness: float = 2.0,
) -> np.ndarray:
    """BM25 scores -> [0, 1] with a logistic curve on the query coverage (`bm25_coverage`).

    `score = 1 / (1 + (half_relevance_coverage / coverage) ** steepness)`: a document covering
    `half_relevance_coverage` of the query scores 0.5 (the default threshold), twice that scores 0.8, half
    of it 0.2. BM25 itself has no upper bound and grows with the query length; dividing by the query's IDF sum
    makes scores comparable across queries, and each document's score depends only on itself and the query,
    not on which other documents happen to match.
    """
    coverage = bm25_coverage(raw_scores, query_idf)
    with np.errstate(divide="ignore"):
        ratio = np.where(
            coverage > 0, half_relevance_coverage / np.where(coverage > 0, coverage, 1.0), np.inf
        )
    return np.where(coverage > 0, 1.0 / (1.0 + ratio**steepness), 0.0)


def normalize_reranker(reranker_scores: Sequence[float]) -> np.ndarray:
    """Azure semantic reranker scores (0 = irrelevant .. 4 = highly relevant) -> [0, 1] by dividing by 4."""
    return np.clip(np.asarray(reranker_scores, dtype=float) / 4.0, 0.0, 1.0)


# ---- selecting what is kept --------------------------------------------------------------------------------
def select_hits(hits: Sequence[SearchHit], threshold: float, top_k: int) -> list[SearchHit]:
    """Hits with score >= threshold, best first (ties by document id), at most `top_k`."""
    kept = [hit for hit in hits if hit.score >= threshold]
    return sorted(kept, key=lambda hit: (-hit.score, hit.document_id))[:top_k]


def retrieved_frame(segment: str, query: str, hits: Sequence[SearchHit]) -> pd.DataFrame:
    """`retrieved_content` rows for one segment (rank from 1, snippet cut from the matched passage)."""
    frame = pd.DataFrame(
        {
            "segment": segment,
            "rank": np.arange(1, len(hits) + 1, dtype="int64"),
            "document_id": [h.document_id for h in hits],
            "title": [h.title for h in hits],
            "category": [h.category for h in hits],
            "score": np.round([h.score for h in hits], 4).astype(float),
            "snippet": [cut_snippet(h.passage) for h in hits],
            "query": query,
        },
        columns=list(RETRIEVED_COLUMNS),
    )
    return frame
