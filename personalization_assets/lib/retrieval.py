"""Retrieval logic without Dagster: what a segment is looking for, how well each document suits it, snippets.

A segment's documents are chosen from two kinds of evidence, both derived from the segment itself and the
library, never from phrase lists written for one library (issue 17):

1. **Audience** — each document's `audience` text is matched against a description of every segment built from
   what the segment is: its name ("At-Risk" -> risk), its campaign intent (`win_back` -> lapsed, inactive,
   "haven't", come back, ...), its defining features (`last_engagement_days` far above the population ->
   inactive, away), its dominant tier and engagement level (`SegmentDescription`, `describe_segment`). The
   vocabularies describe customer situations (new, lapsed, loyal, high-value), not any business's products,
   so they work on a grocery, software or retail library alike. A document is *for* the segments whose
   description its audience matches best (`audience_matches`); a document for everyone ("All", "Everyone",
   "all customers", "general shoppers") is eligible for every segment (`universal_audiences`). An audience
   that names no one ("customers") lets the title and keywords speak, at half weight (`library_evidence`).
2. **Topic** — a full-text query (`segment_query`): the segment's own words, expanded with the library's own
   vocabulary by pseudo-relevance feedback — the keyword and title words that the documents written for this
   segment share and documents for other segments do not use (`feedback_phrases`). Either backend ranks the
   library with it (BM25 coverage for the embedded backend, the semantic reranker for Azure AI Search), giving
   a topical relevance in [0, 1].

`suitability` combines them into one score with the same meaning on every library (see its docstring): at or
above 0.5 the document suits the segment (written for it, or for everyone), below 0.5 it does not.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from personalization_assets.lib.customers import NUMERIC_FEATURES

SNIPPET_MAX_CHARS = 200
ELLIPSIS = "…"
# Columns of the `retrieved_content` table, in order.
RETRIEVED_COLUMNS = ("segment", "rank", "document_id", "title", "category", "score", "snippet", "query")
SEARCHABLE_FIELDS = ("title", "keywords", "audience", "content")
# Fewer documents than this above the threshold is a warning (generation has little to ground on).
MIN_DOCUMENTS_WARNING = 3


# ---- search hits -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchHit:
    """One document found by a search backend.

    `score` is the topical relevance in [0, 1] (`normalize_bm25`, `normalize_reranker`); `raw_score` is the
    backend's own. `ranked` is False when the backend returned the document without a relevance score it
    stands behind (an Azure semantic partial answer without a reranker score): it then gets no topical
    credit, never a rescaled BM25 score.
    """

    document_id: str
    title: str
    category: str
    raw_score: float
    score: float
    passage: str  # the part of the document that matched the query best
    ranked: bool = True


# ---- words ---------------------------------------------------------------------------------------------------
_WORD = re.compile(r"\w+")
_NEGATION = re.compile(r"\b(\w+)n['’]t\b")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "us",
        "we",
        "who",
        "whose",
        "with",
        "you",
        "your",
    ]
)
# Nouns naming a business's customers: they say nothing about which customers.
_POPULATION_NOUNS = frozenset(
    [
        "customer",
        "customers",
        "client",
        "clients",
        "user",
        "users",
        "shopper",
        "shoppers",
        "buyer",
        "buyers",
        "account",
        "accounts",
        "household",
        "households",
        "people",
        "person",
        "subscriber",
        "subscribers",
        "guest",
        "guests",
    ]
)
_SUFFIXES = ("ies", "ing", "ed", "ly", "es", "s")


def stem(word: str) -> str:
    """A light suffix stripper ("lapsed" -> "laps", "recently" -> "recent"), enough to match word forms."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + "y" if suffix == "ies" else base
    return word


def normalize_words(text: str) -> list[str]:
    """Lower-case stemmed words; "haven't" -> "have not", "not yet" -> one word (new, not lapsed)."""
    text = unicodedata.normalize("NFKC", str(text)).lower().replace("’", "'")
    text = _NEGATION.sub(lambda m: {"wo": "will", "ca": "can", "do": "do", "did": "did"}.get(m[1], m[1]) + " not", text)
    text = re.sub(r"\bnot\s+yet\b", "notyet", text)
    return [stem(word) for word in _WORD.findall(text.replace("_", " "))]


@lru_cache(maxsize=8192)  # the same segment and content phrases are normalized for every document and segment
def _phrase_words(phrase: str) -> tuple[str, ...]:
    return tuple(normalize_words(phrase))


# ---- what a segment is ---------------------------------------------------------------------------------------
def _phrases(*lines: str) -> tuple[str, ...]:
    """Comma-separated phrases (written as text so the vocabularies read as lists of words)."""
    return tuple(p.strip() for line in lines for p in line.split(",") if p.strip())


# Words that describe the customers of each campaign intent, for any business (weight 2 each).
INTENT_AUDIENCE: dict[str, tuple[str, ...]] = {
    "vip": _phrases(
        "top tier, top-tier, highest value, spender, top spender, affluent, high net worth, "
        "high balance, wealth, private client, concierge, black card, gold tier, platinum tier, vip, "
        "high value, high spending, highest spending, big spender, big basket, large basket, "
        "large order, top customer, top household, most valued, valued, premium, exclusive, "
        "best customers, platinum, elite, enterprise, luxury, high average order, spend the most, "
        "highest tier, key account, biggest"
    ),
    "win_back": _phrases(
        "dropped, declining, decline, slipping, lost touch, gone quiet, went quiet, lapsing, winback, "
        "re-activate, no longer active, stopped visiting, overdue, fewer visits, abandoned, "
        "unsubscribed, at risk, risk, lapsed, lapse, inactive, dormant, churn, churned, win back, "
        "come back, miss you, used to, no longer, have not, has not, did not, not ordered, "
        "not purchased, not visited, not logged, not shopped, away, quiet, lately, re-engage, "
        "reactivate, reactivation, cancel, cancelled, pause, stopped, absent, disengaged, unspent, "
        "expiring, since their last, since your last, no delivery, no order, no purchase, not opened, "
        "not been"
    ),
    "onboarding": _phrases(
        "newcomer, first-timer, new member, recently joined, recently opened, newly opened, just opened, "
        "welcome series, prospect, trialist, first 30 days, first month, first week, new, first, "
        "first time, first-time, just, newcomer, welcome, getting started, beginner, sign up, signed up, "
        "just joined, joined, trial, onboarding, new account, starter, newly, fewer than 3, first order, "
        "first purchase, setting up, set up"
    ),
    "loyalty": _phrases(
        "loyalist, devoted, dedicated, committed, consistent, consistently, veteran, tenure, "
        "times a week, per week, superfan, ambassador, long term, long-term, loyal, loyalty, frequent, "
        "regular, regulars, repeat, long time, long-time, long standing, long-standing, every week, "
        "weekly, often, member, points, rewards, champion, advocate, recommend, refer, referral, "
        "anniversary, enrolled, most active, power user, years, milestone"
    ),
    "nurture": _phrases(
        "mid-tier, mid tier, middle, moderate, steady, standard, general, occasional, now and then, "
        "typical, mailing list, average"
    ),
}
# An audience for everyone: eligible for every segment (unless it also names a specific segment).
UNIVERSAL_AUDIENCE = _phrases(
    "all, everyone, everybody, general, anyone, any, every, entire, whole, all customers, every customer, ",
    "all members, existing customers, current customers, whole customer base, mailing list, all segments, public",
)
# What a segment's intent needs, for the "no suitable content" outcome.
INTENT_CONTENT = {
    "vip": "content for high-value customers (premium products, early access, exclusive perks)",
    "win_back": "content for lapsed customers (come-back offers, what changed since their last visit)",
    "onboarding": "content for new customers (welcome offers, getting-started guides)",
    "loyalty": "content for loyal, frequent customers (rewards, referrals, member perks)",
    "nurture": "content for every customer (general offers, popular picks, news)",
}
# Defining features: the segment mean far above (high) or below (low) the population mean (weight 1 each).
FEATURE_AUDIENCE: dict[str, dict[str, tuple[str, ...]]] = {
    "last_engagement_days": {
        "high": ("inactive", "lapsed", "have not", "away", "since their last", "while"),
        "low": ("recent", "recently", "this month", "last few weeks", "active", "just"),
    },
    "purchase_frequency": {
        "high": ("frequent", "often", "regular", "every week", "weekly", "repeat"),
        "low": ("first", "new", "occasional", "now and then", "few"),
    },
    "avg_order_value": {
        "high": ("premium", "high value", "big", "large", "spend", "spending", "high average order"),
        "low": ("budget", "low price", "save", "savings", "value"),
    },
    "historical_open_rate": {"high": ("read our emails", "open", "engaged", "subscriber"), "low": ()},
    "historical_click_rate": {"high": ("engaged", "click"), "low": ()},
}
TIER_AUDIENCE = {"Platinum": ("premium", "vip", "top tier"), "Gold": ("gold", "member")}
ENGAGEMENT_AUDIENCE = {"high": ("engaged", "active"), "low": ("inactive", "disengaged")}
NAME_WEIGHT, INTENT_WEIGHT, TRAIT_WEIGHT = 3.0, 2.0, 1.0


@dataclass(frozen=True)
class SegmentDescription:
    """What a segment is: its name words, the phrases of its intent (and configured extras), and the phrases of
    its defining features, tier and engagement. Matched against audiences; name and intent words are the query."""

    segment: str
    name: str
    intent: str
    name_words: tuple[str, ...]
    intent_phrases: tuple[str, ...]
    trait_phrases: tuple[str, ...]
    # Which trait contributed which phrases (shown in the UI next to the query).
    sources: dict[str, list[str]] = field(default_factory=dict)

    @property
    def lacks(self) -> str:
        return INTENT_CONTENT.get(self.intent, f"content for the segment '{self.name}'")

    def audience_match(self, words: Sequence[str]) -> float:
        """NAME_WEIGHT if any name word occurs, plus INTENT_WEIGHT per intent phrase and TRAIT_WEIGHT per trait
        phrase found in `words` (normalized audience words)."""
        return self.audience_match_in(_word_runs(words, self.longest_phrase))

    @property
    def longest_phrase(self) -> int:
        phrases = (*_compiled(self.name_words), *_compiled(self.intent_phrases), *_compiled(self.trait_phrases))
        return max((len(p) for p in phrases), default=1)

    def audience_match_in(self, runs: AbstractSet[tuple[str, ...]]) -> float:
        """``audience_match`` given the text's word runs (``_word_runs``, at least ``longest_phrase`` long)."""
        name = NAME_WEIGHT if any(w in runs for w in _compiled(self.name_words)) else 0.0
        intent = INTENT_WEIGHT * sum(p in runs for p in _compiled(self.intent_phrases))
        traits = TRAIT_WEIGHT * sum(p in runs for p in _compiled(self.trait_phrases))
        return name + intent + traits


@lru_cache(maxsize=1024)  # a segment's phrase lists, matched against every document
def _compiled(phrases: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Normalized phrases, each once ("long-time" and "long time" are one phrase)."""
    return tuple(dict.fromkeys(p for p in (_phrase_words(phrase) for phrase in phrases) if p))


def _word_runs(words: Sequence[str], longest: int) -> frozenset[tuple[str, ...]]:
    """Every run of 1..``longest`` consecutive words: a phrase of at most that many words occurs in the text
    exactly when it is one of them: one lookup per phrase instead of a scan of the text."""
    return frozenset(tuple(words[i : i + n]) for n in range(1, longest + 1) for i in range(len(words) - n + 1))


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
    if isinstance(tier_mix, str):
        mix = json.loads(tier_mix)
    elif isinstance(tier_mix, Mapping):
        mix = dict(tier_mix)
    elif not tier_mix:
        mix = {}
    else:
        raise TypeError(f"tier_mix must be JSON text or a mapping, not {type(tier_mix).__name__}")
    return max(mix, key=mix.get) if mix else None


def describe_segment(
    profile: Mapping[str, object],
    population: pd.Series,
    extra_phrases: Mapping[str, Sequence[str]] | None = None,
    defining_count: int = 2,
    min_relative_difference: float = 0.25,
) -> SegmentDescription:
    """The segment's weighted phrases: name words (3), intent words (2), defining features, dominant tier and
    engagement level (1 each), plus `extra_phrases[intent]` from the configuration (2)."""
    name = str(profile.get("segment_name") or profile["segment"])
    intent = str(profile["intent"])
    sources: dict[str, list[str]] = {}
    name_words = [
        w
        for w in _WORD.findall(name.lower().replace("_", " "))
        if w not in _STOPWORDS and w not in _POPULATION_NOUNS and not w.isdigit()
    ]
    intent_phrases = list(INTENT_AUDIENCE.get(intent, ())) + list((extra_phrases or {}).get(intent, ()))
    sources[f"name {name}"] = name_words
    sources[f"intent {intent}"] = intent_phrases
    traits: list[str] = []
    for feature, direction, difference in defining_features(
        profile, population, defining_count, min_relative_difference
    ):
        words = list(FEATURE_AUDIENCE.get(feature, {}).get(direction, ()))
        sources[f"{feature} {direction} ({difference:+.0%} vs all customers)"] = words
        traits += words
    tier = dominant_tier(profile.get("tier_mix"))
    if tier is not None:
        sources[f"dominant tier {tier}"] = list(TIER_AUDIENCE.get(tier, ()))
        traits += TIER_AUDIENCE.get(tier, ())
    level = str(profile.get("engagement_level") or "")
    if level:
        sources[f"engagement {level}"] = list(ENGAGEMENT_AUDIENCE.get(level, ()))
        traits += ENGAGEMENT_AUDIENCE.get(level, ())
    return SegmentDescription(
        str(profile["segment"]),
        name,
        intent,
        tuple(name_words),
        tuple(dict.fromkeys(intent_phrases)),
        tuple(dict.fromkeys(traits)),
        {k: v for k, v in sources.items() if v},
    )


# ---- audience evidence -------------------------------------------------------------------------------------
def audience_matches(audiences: Sequence[str], segments: Sequence[SegmentDescription]) -> pd.DataFrame:
    """documents x segments: how strongly each audience text matches each segment's description."""
    longest = max((d.longest_phrase for d in segments), default=1)
    runs = [_word_runs(normalize_words(text), longest) for text in audiences]
    return pd.DataFrame(
        {d.segment: [d.audience_match_in(doc) for doc in runs] for d in segments},
        index=range(len(runs)),
        dtype=float,
    )


def universal_audiences(audiences: Sequence[str]) -> np.ndarray:
    """True where the audience text addresses everyone ("All", "Everyone", "all customers", "general ...")."""
    phrases = _compiled(tuple(UNIVERSAL_AUDIENCE))
    longest = max((len(p) for p in phrases), default=1)
    runs = [_word_runs(normalize_words(text), longest) for text in audiences]  # once per text, not per phrase
    return np.array([any(p in text_runs for p in phrases) for text_runs in runs], dtype=bool)


def targeted_segments(matches: pd.DataFrame, min_match: float, relative: float) -> pd.DataFrame:
    """documents x segments, True where the document is written for the segment: its audience matches the
    segment's description by at least `min_match` and by at least `relative` x its best-matching segment."""
    best = matches.max(axis=1)
    return (matches >= min_match) & matches.ge(best * relative, axis=0)


# ---- the query ---------------------------------------------------------------------------------------------
def feedback_phrases(
    keywords: Sequence[Sequence[str]],
    titles: Sequence[str],
    targeted: np.ndarray,
    others: np.ndarray,
    limit: int = 8,
) -> list[str]:
    """Pseudo-relevance feedback: words of the keywords and titles of the documents written for the segment
    (`targeted`) that at least two of them share and no document written for other segments (`others`) uses,
    most shared first. They are the library's own words for what the segment's documents talk about."""
    shared: Counter[str] = Counter()
    outside: set[str] = set()
    for phrases, title, is_in, is_other in zip(keywords, titles, targeted, others, strict=True):
        words = {w for text in [*phrases, title] for w in normalize_words(text)}
        words = {w for w in words if w not in _STOPWORDS and len(w) > 2 and not w.isdigit()}
        if is_in:
            shared.update(words)
        elif is_other:
            outside |= words
    ranked = sorted((w for w, n in shared.items() if n >= 2 and w not in outside), key=lambda w: (-shared[w], w))
    return ranked[:limit]


def segment_query(description: SegmentDescription, feedback: Sequence[str]) -> str:
    """The full-text query: the segment's name and intent words, then the library's feedback phrases."""
    phrases = [*description.name_words, *description.intent_phrases, *feedback]
    return " ".join(dict.fromkeys(p for p in phrases if p != "notyet"))


# ---- one score for both kinds of evidence ------------------------------------------------------------------
@dataclass(frozen=True)
class Calibration:
    """How evidence becomes a score (defaults measured on the development libraries, docs/retrieval.md)."""

    min_match: float = 2.0  # audience weight that makes a document "for" a segment
    relative: float = 0.6  # ... if at least this share of its best-matching segment's weight
    strong_match: float = 6.0  # audience weight counted as a full match
    untargeted_ceiling: float = 0.65  # best score of a document whose audience names no segment
    other_ceiling: float = 0.45  # best score of a document written for other segments only
    title_weight: float = 0.5  # weight of the title and keywords' match when the audience names no one

    def __post_init__(self) -> None:
        if self.min_match <= 0 or self.strong_match <= 0:
            raise ValueError("min_match and strong_match must be > 0")
        if not 0 < self.relative <= 1 or not 0 <= self.untargeted_ceiling <= 1:
            raise ValueError("relative must be in (0, 1] and untargeted_ceiling in [0, 1]")
        if not 0 <= self.other_ceiling < 0.5:
            raise ValueError("other_ceiling must be in [0, 0.5): documents for other segments are never kept")


def suitability(
    matches: pd.Series,
    targeted: pd.Series,
    targeted_elsewhere: pd.Series,
    universal: pd.Series,
    topical: pd.Series,
    calibration: Calibration = Calibration(),
    share: pd.Series | None = None,
) -> tuple[pd.Series, pd.Series]:
    """(score, reason) per document for one segment, scores in [0, 1]:

    - written for the segment: 0.6 + 0.25 x audience match (up to `strong_match`, times the segment's `share`
      of the matches of all segments the document is written for) + 0.15 x topical -> 0.6..1;
    - for everyone: 0.5 + 0.1 x topical -> 0.5..0.6 (eligible for every segment, after its own documents);
    - audience names no segment: `untargeted_ceiling` x topical (kept only on strong topical evidence);
    - written for other segments only: `other_ceiling` x topical -> always below 0.5.
    """
    c = calibration
    strength = np.clip(matches / c.strong_match, 0.0, 1.0) * (1.0 if share is None else share)
    score = np.select(
        [targeted, universal, ~targeted_elsewhere],
        [0.6 + 0.25 * strength + 0.15 * topical, 0.5 + 0.1 * topical, c.untargeted_ceiling * topical],
        default=c.other_ceiling * topical,
    )
    reason = np.select(
        [targeted, universal, ~targeted_elsewhere],
        ["written for this segment", "for everyone", "topic only"],
        default="written for other segments",
    )
    return pd.Series(np.round(score, 4), index=matches.index), pd.Series(reason, index=matches.index)


@dataclass(frozen=True)
class LibraryEvidence:
    """The audience evidence of a library for a set of segments (computed once per library and segment set)."""

    matches: pd.DataFrame  # documents x segments
    targeted: pd.DataFrame  # documents x segments, bool
    universal: np.ndarray  # documents, bool


def library_evidence(
    documents: pd.DataFrame, segments: Sequence[SegmentDescription], calibration: Calibration = Calibration()
) -> LibraryEvidence:
    """Audience matches of every document (`documents`: document_id, audience, title, keywords) against every
    segment. When the audience text names no segment and not everyone ("customers", "shoppers"), the title and
    keywords speak instead, at `calibration.title_weight` ("Welcome: 20% off your first order")."""
    audiences = documents["audience"].tolist()
    matches = audience_matches(audiences, segments)
    everyone = universal_audiences(audiences)
    silent = (matches.max(axis=1) < calibration.min_match).to_numpy() & ~everyone
    if calibration.title_weight > 0 and "title" in documents and silent.any():
        texts = [
            f"{title}, {', '.join(words)}"
            for title, words in zip(documents["title"], keyword_lists(documents), strict=True)
        ]
        from_titles = calibration.title_weight * audience_matches(texts, segments)
        matches = matches + from_titles.mul(silent, axis=0)
    matches.index = documents["document_id"].tolist()
    targeted = targeted_segments(matches, calibration.min_match, calibration.relative)
    nurture = [s.segment for s in segments if s.intent == "nurture"]
    specific = targeted.drop(columns=nurture)
    universal = everyone & ~specific.any(axis=1).to_numpy()
    return LibraryEvidence(matches, targeted, universal)


def keyword_lists(documents: pd.DataFrame) -> list[list[str]]:
    if "keywords" not in documents:
        return [[] for _ in range(len(documents))]
    return [json.loads(k) if isinstance(k, str) else list(k) for k in documents["keywords"]]


def segment_feedback(documents: pd.DataFrame, evidence: LibraryEvidence, segment: str) -> list[str]:
    """Feedback phrases for `segment` from the documents written for it."""
    targeted = evidence.targeted[segment].to_numpy()
    others = evidence.targeted.drop(columns=[segment]).any(axis=1).to_numpy() & ~targeted
    return feedback_phrases(keyword_lists(documents), documents["title"].tolist(), targeted, others)


def score_documents(
    documents: pd.DataFrame,
    evidence: LibraryEvidence,
    segment: str,
    hits: Sequence[SearchHit],
    calibration: Calibration = Calibration(),
    query: str = "",
) -> pd.DataFrame:
    """Every document of the library scored for `segment`: document_id, title, category, audience_match,
    topical, score, reason, passage (from the backend's hit, empty when the backend did not return it)."""
    by_id = {h.document_id: h for h in hits}
    ids = documents["document_id"].tolist()
    contents = documents["content"].tolist() if "content" in documents else [""] * len(ids)
    topical = pd.Series(
        [by_id[i].score if i in by_id and by_id[i].ranked else 0.0 for i in ids], index=ids, dtype=float
    )
    targeted = evidence.targeted[segment]
    elsewhere = evidence.targeted.drop(columns=[segment]).any(axis=1) & ~targeted
    universal = pd.Series(evidence.universal, index=ids)
    score, reason = suitability(evidence.matches[segment], targeted, elsewhere, universal, topical, calibration)
    return pd.DataFrame(
        {
            "document_id": ids,
            "title": documents["title"].tolist(),
            "category": documents["category"].tolist(),
            "audience_match": evidence.matches[segment].to_numpy(),
            "topical": topical.round(4).to_numpy(),
            "score": score.to_numpy(),
            "reason": reason.to_numpy(),
            # The backend's matched passage; for documents it did not return, the passage sharing most query words.
            "passage": [
                by_id[i].passage if i in by_id and by_id[i].passage else best_passage(str(c), query)
                for i, c in zip(ids, contents, strict=True)
            ],
        }
    ).sort_values(["score", "document_id"], ascending=[False, True], ignore_index=True)


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
        word_ends = [i for i in range(1, budget + 1) if _is_word_char(text[i - 1]) and not _is_word_char(text[i])]
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
        ratio = np.where(coverage > 0, half_relevance_coverage / np.where(coverage > 0, coverage, 1.0), np.inf)
    return np.where(coverage > 0, 1.0 / (1.0 + ratio**steepness), 0.0)


def normalize_reranker(reranker_scores: Sequence[float]) -> np.ndarray:
    """Azure semantic reranker scores (0 = irrelevant .. 4 = highly relevant) -> [0, 1] by dividing by 4."""
    return np.clip(np.asarray(reranker_scores, dtype=float) / 4.0, 0.0, 1.0)


# ---- selecting what is kept --------------------------------------------------------------------------------
def select_documents(scored: pd.DataFrame, threshold: float, top_k: int) -> pd.DataFrame:
    """Scored documents at or above the threshold, best first (ties by document id), at most `top_k`."""
    kept = scored[scored["score"] >= threshold]
    return kept.sort_values(["score", "document_id"], ascending=[False, True]).head(top_k)


def retrieved_frame(segment: str, query: str, kept: pd.DataFrame) -> pd.DataFrame:
    """`retrieved_content` rows for one segment (rank from 1, snippet cut from the matched passage)."""
    return pd.DataFrame(
        {
            "segment": segment,
            "rank": np.arange(1, len(kept) + 1, dtype="int64"),
            "document_id": kept["document_id"].astype(str).to_numpy(),
            "title": kept["title"].astype(str).to_numpy(),
            "category": kept["category"].astype(str).to_numpy(),
            "score": kept["score"].astype(float).round(4).to_numpy(),
            "snippet": [cut_snippet(p) for p in kept["passage"]],
            "query": query,
        },
        columns=list(RETRIEVED_COLUMNS),
    )


# ---- checks on the frame about to be written (pure; the asset turns them into check results) -------------
@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    blocking: bool  # a failed blocking check stops the write; otherwise a warning
    description: str
    metadata: dict[str, object]


def relevant_documents_outcome(
    frame: pd.DataFrame,
    segment: str,
    query: str,
    threshold: float,
    lacks: str,
    minimum: int = MIN_DOCUMENTS_WARNING,
) -> CheckOutcome:
    """`has_relevant_documents`: at least one document at or above the threshold (blocking), warning below
    `minimum`. None at all is the explicit "no suitable content" outcome, naming what the segment lacks."""
    count = int((frame["score"] >= threshold).sum())
    metadata: dict[str, object] = {
        "segment": segment,
        "query": query,
        "documents_above_threshold": count,
        "threshold": threshold,
    }
    if count == 0:
        return CheckOutcome(
            False,
            True,
            # One line for the CLI summary and the report's check; the (long, expanded) query is in the metadata.
            f"no suitable content for segment '{segment}': no document scored >= {threshold}; the library lacks "
            f"{lacks}",
            {**metadata, "outcome": "no_suitable_content", "lacks": lacks},
        )
    if count < minimum:
        return CheckOutcome(
            False,
            False,
            f"segment '{segment}': only {count} document(s) scored >= {threshold} (want {minimum}) for the "
            f"query {query!r}",
            metadata,
        )
    return CheckOutcome(True, True, f"segment '{segment}': {count} document(s) scored >= {threshold}", metadata)


def snippet_problems(frame: pd.DataFrame, contents: Mapping[str, str]) -> pd.DataFrame:
    """Rows whose snippet is longer than SNIPPET_MAX_CHARS or is not document text ending on a word boundary."""
    rows = frame.assign(
        length=frame["snippet"].astype(str).str.len(),
        source=frame["document_id"].map(contents).fillna(""),
    )
    too_long = rows["length"] > SNIPPET_MAX_CHARS
    off_boundary = ~pd.Series(
        [ends_on_word_boundary(s, c) for s, c in zip(rows["snippet"], rows["source"], strict=True)],
        index=rows.index,
        dtype=bool,
    )
    rows["problem"] = np.where(too_long, "longer than 200 characters", "not document text ending on a word boundary")
    return rows.loc[too_long | off_boundary, ["rank", "document_id", "length", "problem", "snippet"]]


# ---- one segment, end to end (the asset and the evaluation script both use this) --------------------------
def describe_segments(
    profiles: pd.DataFrame,
    extra_phrases: Mapping[str, Sequence[str]] | None = None,
    defining_count: int = 2,
    min_relative_difference: float = 0.25,
) -> list[SegmentDescription]:
    """A description of every segment in `segment_profiles` (features compared with the whole population)."""
    population = population_means(profiles)
    return [
        describe_segment(row, population, extra_phrases, defining_count, min_relative_difference)
        for row in profiles.to_dict(orient="records")
    ]


@dataclass(frozen=True)
class SegmentPlan:
    description: SegmentDescription
    evidence: LibraryEvidence
    feedback: list[str]
    query: str


def plan_segment(
    documents: pd.DataFrame,
    descriptions: Sequence[SegmentDescription],
    segment: str,
    calibration: Calibration = Calibration(),
) -> SegmentPlan:
    """The audience evidence of the library and the segment's full-text query (with feedback phrases)."""
    description = next(d for d in descriptions if d.segment == segment)
    evidence = library_evidence(documents, descriptions, calibration)
    feedback = segment_feedback(documents, evidence, segment)
    return SegmentPlan(description, evidence, feedback, segment_query(description, feedback))
