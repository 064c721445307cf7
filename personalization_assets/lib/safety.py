"""Content-safety logic shared by every backend: normalization, blocklists, chunking, the fail-closed decision,
prompt-injection detection, screening of the content library, and the labelled evaluation.

Pure Python (no Dagster). Severities use Azure AI Content Safety's eight-level scale (0 safe, 2 low, 4 medium,
6 high; odd values in between) for the four harm categories and for the project's own fifth concern, phishing
(requests for card numbers, PINs, passwords, one-time codes, log-ins at look-alike links), which Azure does not
screen. The embedded screen itself is personalization_assets/embedded/screen.py; the audit hash chain is
lib/audit_chain.py.
"""

from __future__ import annotations

import json
import math
import numbers
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:  # pandas is imported where frames are built, not at import (the screen does not need it)
    import pandas as pd

CATEGORIES: tuple[str, ...] = ("hate", "violence", "self_harm", "sexual")  # Azure's four harm categories
PHISHING = "phishing"  # the project's own fifth concern, screened next to every backend
CONCERNS: tuple[str, ...] = (*CATEGORIES, PHISHING)  # everything a decision needs a severity for
MAX_SEVERITY = 7
DEFAULT_THRESHOLD = 4
DEFAULT_THRESHOLDS: Mapping[str, int] = MappingProxyType(dict.fromkeys(CONCERNS, DEFAULT_THRESHOLD))
APPROVED, BLOCKED = "approved", "blocked"
UNSUPPORTED_LANGUAGE = "language not supported by the embedded screen"
AZURE_MAX_TEXT_CHARS = 10_000  # Azure AI Content Safety text:analyze limit (Unicode code points)

# ---------------------------------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------------------------------

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"), None)
_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "`": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
    }
)
# Cyrillic/Greek letters that render like Latin ones (after casefold); applied only to tokens that
# become pure ASCII, so genuine Cyrillic/Greek words are left alone.
_CONFUSABLES = str.maketrans("аеорсухіјѕкмтвοαειкνρτυχ", "aeopcyxijskmtboaeikvptux")
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l", "€": "e"}
)
_LEET_CHARS = frozenset("013457@$!|€")
# Size/unit/ordinal tokens like 4k, 3xl, 2nd, 50ml are not obfuscated words.
_UNIT_TOKEN = re.compile(
    r"\d+(?:st|nd|rd|th|k|x|xl|xxl|xs|s|m|g|kg|mg|ml|l|oz|lb|lbs|ft|in|cm|mm|gb|tb|"
    r"mb|hz|w|v|mah|p|d|am|pm|yo|yr|yrs|h|hr|hrs|min|mins|pc|pcs|pk)"
)
_SPACED_LETTERS = re.compile(r"(?<![\w@$!])(?:[a-z0-9@$!][-._*\s]){2,}[a-z0-9@$!](?![\w@$])")
_TOKEN_CANDIDATE = re.compile(r"[a-z0-9@$!|*€']+")
_ELONGATED = re.compile(r"([a-z])\1{2,}")
_INNER_HYPHEN = re.compile(r"(?<=\w)[-_](?=\w)")

# Words the screen cares about; used to undo elongation ("kiiilll") and masking ("f*ck", "p**n").
_REPAIR_VOCABULARY = frozenset(
    (  # noqa: SIM905 - one readable word list
        "kill kills killed killing murder rape raped raping porn porno sex sexy fuck fucking fucked fucker "
        "slut whore bitch die dead death suicide yourself myself shoot stab hurt hang nude nudes naked dick "
        "cock tits pussy cum horny xxx orgasm blowjob kys hate vermin scum trash exterminate deport burn bomb "
        "shit"
    ).split()
)


def _repair_token(token: str) -> str:
    """Undo leetspeak, elongation and '*' masking in one token (already casefolded)."""
    core = token.strip("!|*'")
    if not core:
        return token
    lead = token[: token.index(core[0])]
    trail = token[len(lead) + len(core) :]
    letters = sum(ch.isalpha() for ch in core)
    leet = sum(ch in _LEET_CHARS for ch in core)
    if letters and leet and leet <= letters + 1 and not _UNIT_TOKEN.fullmatch(core):
        core = core.translate(_LEET)
    if "*" in core:
        pattern = re.compile(re.sub(r"\\\*+", "[a-z]{1,3}", re.escape(core)))
        core = next((w for w in sorted(_REPAIR_VOCABULARY) if pattern.fullmatch(w)), core.replace("*", ""))
    if _ELONGATED.search(core) and core not in _REPAIR_VOCABULARY:
        runs = _ELONGATED.findall(core)
        candidates = [core]
        for _ in runs[:3]:  # each run can stand for a single or a double letter
            candidates = [
                variant
                for c in candidates
                for variant in (_ELONGATED.sub(r"\1", c, count=1), _ELONGATED.sub(r"\1\1", c, count=1))
            ]
        core = next((c for c in candidates if c in _REPAIR_VOCABULARY), _ELONGATED.sub(r"\1\1", core))
    return lead + core + trail


def normalize_text(text: str) -> str:
    """Canonical form the screen matches on: NFKC, casefold, no accents, lookalikes, leetspeak, spacing.

    "K1LL", "k-i-l-l", "kiiiill", "ｋｉｌｌ" and "k\u200bill" all become "kill". Newlines become
    sentence breaks; hyphens/underscores inside words become spaces ("drop-dead" -> "drop dead").
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    out = unicodedata.normalize("NFKC", text).casefold().translate(_INVISIBLE).translate(_QUOTES)
    # Drop diacritics ("kíll", "k\u0301ill") - the lexicon is English and accents are an evasion trick.
    out = "".join(ch for ch in unicodedata.normalize("NFKD", out) if not unicodedata.combining(ch))
    out = re.sub(r"\w+", lambda m: _fold_confusables(m.group()), out)
    out = _SPACED_LETTERS.sub(lambda m: re.sub(r"[-._*\s]", "", m.group()), out)
    out = _TOKEN_CANDIDATE.sub(lambda m: _repair_token(m.group()), out)
    out = _INNER_HYPHEN.sub(" ", out)
    out = re.sub(r"\s*\n\s*", " . ", out)
    return re.sub(r"[ \t\r\f\v]+", " ", out).strip()


def _fold_confusables(word: str) -> str:
    folded = word.translate(_CONFUSABLES)
    return folded if folded != word and folded.isascii() else word


# ---------------------------------------------------------------------------------------------------
# Blocklists
# ---------------------------------------------------------------------------------------------------


def _light_normalize(text: str) -> str:
    out = unicodedata.normalize("NFKC", text).casefold().translate(_INVISIBLE).translate(_QUOTES)
    return re.sub(r"\s+", " ", out)


def _term_pattern(normalized_term: str) -> re.Pattern[str]:
    # Whitespace/hyphen/underscore inside a configured phrase match any run of those separators.
    parts = [re.escape(p) for p in re.split(r"[\s\-_]+", normalized_term.strip()) if p]
    return re.compile(r"(?<![^\W_])" + r"[\s\-_]+".join(parts) + r"(?![^\W_])")


def find_blocklist_hits(text: str, terms: Iterable[str]) -> tuple[str, ...]:
    """Configured ``terms`` found in ``text`` (returned as configured, in configuration order, no repeats).

    Matching is case-insensitive on NFKC/casefolded text at word boundaries, so "AcmeMart" matches
    "ACMEMART" but not "AcmeMarts" or "acme mart" (configure "acme mart" for the spaced form; its
    space then also matches "acme-mart" and "acme  mart"). Alphabetic terms are also matched on the
    de-obfuscated text ("@cm3m4rt"); terms with digits only literally, so "3M" never matches "em".
    """
    if isinstance(terms, str):
        raise TypeError("blocklist terms must be a sequence of strings, not a single string")
    light = _light_normalize(text)
    full: str | None = None
    hits: list[str] = []
    for position, term in enumerate(terms):
        if not isinstance(term, str) or not term.strip():
            raise ValueError(f"blocklist term #{position} is empty or not a string: {term!r}")
        if term in hits:
            continue
        light_term = _light_normalize(term)
        if _term_pattern(light_term).search(light):
            hits.append(term)
            continue
        if re.fullmatch(r"[^\W\d_]+(?:[\s\-_]+[^\W\d_]+)*", light_term.strip()):
            full = normalize_text(text) if full is None else full
            if _term_pattern(normalize_text(term)).search(full):
                hits.append(term)
    return tuple(hits)


# ---------------------------------------------------------------------------------------------------
# Chunking for length-limited services
# ---------------------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?\n])\s+")


def split_for_screening(text: str, max_chars: int = AZURE_MAX_TEXT_CHARS) -> list[str]:
    """Split ``text`` into chunks of at most ``max_chars`` code points at sentence, else word, boundaries.

    Chunks are stripped of surrounding whitespace; whitespace-only input gives ``[]`` (nothing to
    screen). Raises ValueError if a single word is longer than ``max_chars``.
    """
    if not isinstance(max_chars, int) or isinstance(max_chars, bool) or max_chars < 1:
        raise ValueError(f"max_chars must be a positive integer, got {max_chars!r}")
    if not text.strip():
        return []
    for word in re.finditer(r"\S+", text):
        if len(word.group()) > max_chars:
            raise ValueError(
                f"cannot split text for screening: the word at character {word.start()} is "
                f"{len(word.group())} characters long, over the {max_chars}-character limit"
            )
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, max_chars):
        candidate = f"{current} {piece}" if current else piece
        if len(candidate) <= max_chars:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    chunks.append(current)
    return chunks


def _pieces(text: str, max_chars: int) -> Iterable[str]:
    """Sentences of ``text``; sentences longer than ``max_chars`` are broken into word runs."""
    for sentence in _SENTENCE_END.split(text.strip()):
        sentence = sentence.strip()
        if len(sentence) <= max_chars:
            if sentence:
                yield sentence
            continue
        yield from _word_runs(sentence, max_chars)


def _word_runs(sentence: str, max_chars: int) -> Iterable[str]:
    run = ""
    for word in sentence.split():
        candidate = f"{run} {word}" if run else word
        if len(candidate) <= max_chars:
            run = candidate
        else:
            yield run
            run = word
    if run:
        yield run


# ---------------------------------------------------------------------------------------------------
# Decision (fail-closed)
# ---------------------------------------------------------------------------------------------------


def validate_thresholds(thresholds: Mapping[str, int] | None) -> dict[str, int]:
    """Complete ``thresholds`` with defaults (4) and reject unknown concerns or values outside 0-8.

    A threshold of 8 never blocks the concern; 0 always blocks it.
    """
    merged = dict(DEFAULT_THRESHOLDS)
    for category, value in (thresholds or {}).items():
        if category not in CONCERNS:
            raise ValueError(f"unknown safety threshold category {category!r}; expected one of {CONCERNS}")
        if not is_integral(value) or not 0 <= int(value) <= MAX_SEVERITY + 1:
            raise ValueError(f"safety threshold for {category} must be an integer 0-8, got {value!r}")
        merged[category] = int(value)
    return merged


def is_integral(value: object) -> bool:
    """An integer, or an integral float (pandas upcasts); never a bool."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer()


def is_missing(value: object) -> bool:
    if value is None:
        return True
    pandas = sys.modules.get("pandas")  # pd.NA / pd.NaT can only exist once pandas is imported
    if pandas is not None and (value is pandas.NA or value is pandas.NaT):
        return True
    return isinstance(value, float | np.floating) and math.isnan(float(value))


def decide(
    severities: Mapping[str, int | None], blocklist_hits: Sequence[str], thresholds: Mapping[str, int] | None = None
) -> tuple[str, list[str]]:
    """Return ("approved"|"blocked", reasons). Blocks when any severity >= its threshold.

    Fail-closed: a missing concern (the four categories and phishing), None/NaN, non-integer (bools, strings,
    4.5) or out-of-range (outside 0-7) severity blocks with a reason. Integral floats such as 4.0 (pandas
    upcasts) count as integers. Other keys are ignored. Reasons look like "violence severity 6 >= 4",
    "blocklist: AcmeMart", "screening incomplete: missing self_harm".
    """
    limits = validate_thresholds(thresholds)
    if not isinstance(severities, Mapping):
        return BLOCKED, [f"screening incomplete: severities is {type(severities).__name__}, not a mapping"]
    reasons: list[str] = []
    for category in CONCERNS:
        if category not in severities:
            reasons.append(f"screening incomplete: missing {category}")
            continue
        value = severities[category]
        if value is None or is_missing(value):
            reasons.append(f"screening incomplete: no {category} severity")
        elif not is_integral(value):
            reasons.append(f"screening invalid: {category} severity {value!r} is not an integer")
        elif not 0 <= int(value) <= MAX_SEVERITY:
            reasons.append(f"screening invalid: {category} severity {int(value)} outside 0-{MAX_SEVERITY}")
        elif int(value) >= limits[category]:
            reasons.append(f"{category} severity {int(value)} >= {limits[category]}")
    reasons.extend(f"blocklist: {term}" for term in blocklist_hits)
    return (BLOCKED if reasons else APPROVED), reasons


class Screened(Protocol):
    """What a screen returns for one text (the embedded ScreenResult and the resources' ScreenOutcome)."""

    # Read-only properties: frozen dataclasses (ScreenResult, ScreenOutcome) satisfy them, and a read-only
    # member is covariant, so a dict[str, int] field fits Mapping[str, int].
    @property
    def severities(self) -> Mapping[str, int]: ...

    @property
    def blocklist_hits(self) -> tuple[str, ...]: ...

    @property
    def errors(self) -> tuple[str, ...]: ...


def decide_screened(
    screened: Screened, thresholds: Mapping[str, int] | None = None, extra_reasons: Sequence[str] = ()
) -> tuple[str, list[str]]:
    """approved | blocked for one screening outcome. Approved only if screening is complete (no errors),
    nothing reaches a threshold, no blocklist term was found and there is no extra reason."""
    decision, reasons = decide(screened.severities, screened.blocklist_hits, thresholds)
    if screened.errors:
        # The errors say why concerns are missing; the per-concern "missing" lines would only repeat it.
        reasons = [*screened.errors, *(r for r in reasons if not r.startswith("screening incomplete: missing"))]
    reasons.extend(extra_reasons)
    return (BLOCKED if reasons else decision), reasons


# ---------------------------------------------------------------------------------------------------
# Prompt injection in documents (the way Azure Prompt Shields treat documents)
# ---------------------------------------------------------------------------------------------------

_INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern))
    for label, pattern in [
        (
            "instruction override",
            r"\b(?:ignore|disregard|forget|override|bypass|skip)\b(?:\s+\S+){0,4}\s+"
            r"(?:previous|prior|above|earlier|preceding|all|any|your|the|system|original|initial)\s+"
            r"(?:\S+\s+){0,2}(?:instructions?|prompts?|rules|directions|guidelines|guardrails|messages?|context|"
            r"policies|polic(?:y|ies))\b",
        ),
        (
            "instruction override",
            r"\b(?:ignorier\w*|vergiss|vergessen sie|missacht\w*)\b(?:\s+\S+){0,4}\s+"
            r"(?:anweisungen|anweisung|regeln|vorgaben|instruktionen|systemprompt)\b",
        ),
        (
            "instruction override",
            r"\b(?:ignora\w*|olvida\w*|omite|omitir|haz caso omiso de)\b(?:\s+\S+){0,4}\s+"
            r"(?:instrucciones|reglas|indicaciones|directrices)\b",
        ),
        (
            "instruction override",
            r"\b(?:ignore[rz]?|oublie[rz]?|oubliez|ne tiens pas compte des?)\b"
            r"(?:\s+\S+){0,4}\s+(?:instructions|consignes|regles|directives)\b",
        ),
        (
            "system prompt",
            r"\b(?:system ?prompt|system message|developer message|systemprompt|"
            r"prompt (?:del|du) (?:sistema|systeme)|instrucciones del sistema|hidden instructions?|"
            r"initial instructions|your instructions)\b",
        ),
        (
            "role reassignment",
            r"\byou are (?:now|no longer)\b|\bfrom now on,? you\b|\bact as (?:an?|the) "
            r"(?:unfiltered|unrestricted|different|new|evil|jailbroken)\b|\bpretend (?:to be|you are)\b|"
            r"\b(?:jailbreak|dan mode|developer mode|do anything now)\b|\bdu bist (?:jetzt|nun|ab sofort)\b|"
            r"\b(?:ahora eres|a partir de ahora eres)\b|\b(?:tu es (?:maintenant|desormais)|vous etes "
            r"(?:maintenant|desormais))\b",
        ),
        (
            "instructions to the model",
            r"\b(?:(?:ai|assistant|language model|llm|chatbot|model|copywriter|"
            r"writer|bot)s?,? (?:must|should|will|shall|please)|(?:note|instructions?|message) (?:to|for) "
            r"(?:the )?(?:ai|assistant|model|llm|bot|writer|copywriter)|when (?:summari[sz]ing|quoting|using|"
            r"reading|rewriting) this(?: document| text| page)?,? (?:always |you must |please )?"
            r"(?:add|include|insert|say|write|tell|mention|append)|(?:new|updated|real|actual|additional) "
            r"instructions?\s*:|do not (?:tell|mention|reveal|inform) (?:the )?(?:user|customer|reader)s?)\b",
        ),
        (
            "hidden markup",
            r"<\s*/?\s*(?:system|assistant|instructions?|im_start|im_end)\s*>|\[\s*(?:system|"
            r"inst|/inst|assistant)\s*\]|<!--|###\s*(?:system|instruction)|\{\{\s*system|"
            r"\bbegin (?:system|hidden) (?:prompt|instructions)\b",
        ),
        (
            "exfiltration",
            r"\b(?:reveal|print|repeat|output|show|leak|send)\b(?:\s+\S+){0,3}\s+(?:your|the)\s+"
            r"(?:system prompt|instructions|prompt|configuration|api keys?|secrets?|hidden rules)\b",
        ),
    ]
)
_HIDDEN_CHARACTERS = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]")


def find_prompt_injection(text: str) -> tuple[str, ...]:
    """Labels of prompt-injection signs in a document: instructions to ignore or override earlier instructions,
    talk of a system prompt, reassigning the model's role, instructions addressed to the model, chat/markup
    role tags, requests to reveal the prompt, and characters that hide text from a reader (tag characters,
    bidi overrides, zero-width runs). English, German, Spanish and French wording."""
    labels: list[str] = []
    if len(_HIDDEN_CHARACTERS.findall(text)) >= 3 or re.search("[\U000e0000-\U000e007f\u202a-\u202e]", text):
        labels.append("hidden characters")
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).translate(_INVISIBLE)
    folded = re.sub(r"\s+", " ", folded)
    labels.extend(label for label, pattern in _INJECTION_PATTERNS if pattern.search(folded))
    return tuple(dict.fromkeys(labels))


# ---------------------------------------------------------------------------------------------------
# Screening the content library before anything is quoted from it
# ---------------------------------------------------------------------------------------------------

QUARANTINE_COLUMNS = ("document_id", "title", "reasons", *CONCERNS)


@dataclass(frozen=True)
class LibraryScreening:
    kept: pd.DataFrame  # the documents that passed, as given
    quarantined: pd.DataFrame  # QUARANTINE_COLUMNS; reasons as a "; "-joined string

    def summary(self) -> str:
        if self.quarantined.empty:
            return "none"
        return "; ".join(f"{row.document_id}: {row.reasons}" for row in self.quarantined.itertuples())


def document_text(row: Mapping[str, object], text_columns: Sequence[str]) -> str:
    """The text of one document that is screened: its text columns, a blank line apart; a JSON list (keywords)
    becomes one line per item, so unrelated keywords are not read as one sentence."""
    parts = []
    for column in text_columns:
        value = row.get(column)
        if value is None or is_missing(value) or not str(value).strip():
            continue
        text = str(value)
        if text.lstrip().startswith("["):
            try:
                items = json.loads(text)
            except ValueError:
                items = None
            if isinstance(items, list):
                text = "\n".join(str(item) for item in items)
        parts.append(text)
    return "\n\n".join(parts)


def screen_documents(
    documents: pd.DataFrame,
    screen: Callable[[str], Screened],
    thresholds: Mapping[str, int] | None = None,
    text_columns: Sequence[str] = ("title", "content", "keywords"),
) -> LibraryScreening:
    """Screen each approved content document before anything can be quoted from it.

    A document is quarantined, with every reason, when its text reaches a threshold in one of the four
    categories or phishing, when screening failed or was incomplete (fail closed), or when it holds
    prompt-injection instructions (`find_prompt_injection`). Blocklist terms do not quarantine a document
    (they govern what a message claims; the variant screen applies them). `screen` is the configured
    backend's `screen(text)` (content_safety resource) or the embedded `screen_text`.
    """
    if "document_id" not in documents.columns:
        raise ValueError(f"documents need a document_id column; have {list(documents.columns)}")
    limits = validate_thresholds(thresholds)
    quarantined: list[dict[str, object]] = []
    for row in documents.to_dict("records"):
        text = document_text(row, text_columns)
        outcome = screen(text)
        _, reasons = decide_screened(_without_blocklist(outcome), limits)
        reasons.extend(f"prompt injection: {label}" for label in find_prompt_injection(text))
        if reasons:
            quarantined.append(
                {
                    "document_id": row["document_id"],
                    "title": row.get("title"),
                    "reasons": "; ".join(reasons),
                    **{c: outcome.severities.get(c) for c in CONCERNS},
                }
            )
    bad = {q["document_id"] for q in quarantined}
    kept = documents.loc[~documents["document_id"].isin(bad)].reset_index(drop=True)
    import pandas as pd

    frame = pd.DataFrame(quarantined, columns=list(QUARANTINE_COLUMNS))
    return LibraryScreening(kept, frame.astype(dict.fromkeys(CONCERNS, "Int64")))


@dataclass(frozen=True)
class _NoBlocklist:
    severities: Mapping[str, int]
    errors: tuple[str, ...]
    blocklist_hits: tuple[str, ...] = ()


def _without_blocklist(outcome: Screened) -> Screened:
    return _NoBlocklist(outcome.severities, tuple(outcome.errors))


# ---------------------------------------------------------------------------------------------------
# Labelled evaluation
# ---------------------------------------------------------------------------------------------------


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing columns {missing}; has {list(frame.columns)}")


def evaluate_examples(
    examples: pd.DataFrame, screen: Callable[[str], Screened], thresholds: Mapping[str, int] | None = None
) -> pd.DataFrame:
    """Screen each labelled example with ``screen``; adds decision, blocked, reasons, predicted and a
    severity_<concern> column per concern.

    ``examples`` needs ``text`` and ``label`` ("safe"|"unsafe"); ``category`` is the expected category.
    ``predicted`` is the concern with the highest severity (None when all are 0).
    """
    require_columns(examples, ("text", "label"), "evaluation examples")
    bad_labels = sorted(set(examples["label"]) - {"safe", "unsafe"})
    if bad_labels:
        raise ValueError(f"evaluation labels must be 'safe' or 'unsafe', found {bad_labels}")
    import pandas as pd

    results = [screen(text) for text in examples["text"]]
    scored = examples.reset_index(drop=True).copy()
    severity_frame = pd.DataFrame(
        [{c: r.severities.get(c, 0) for c in CONCERNS} for r in results], columns=list(CONCERNS)
    )
    for category in CONCERNS:
        scored[f"severity_{category}"] = severity_frame[category].to_numpy()
    decisions = [decide_screened(r, thresholds) for r in results]
    scored["decision"] = [d for d, _ in decisions]
    scored["reasons"] = [reasons for _, reasons in decisions]
    scored["blocked"] = scored["decision"].eq(BLOCKED)
    values = severity_frame.to_numpy()
    scored["predicted"] = np.where(values.max(axis=1) > 0, np.array(CONCERNS)[values.argmax(axis=1)], None)
    return scored


def evaluation_summary(scored: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Confusion counts and rates per expected category (plus "all"), optionally grouped by ``by``.

    catch_rate = unsafe blocked / unsafe; false_block_rate = safe blocked / safe.
    """
    frame = scored.assign(_group=scored[by] if by else "all")
    rows = []
    for group, part in frame.groupby("_group", sort=True):
        unsafe = part[part["label"].eq("unsafe")]
        safe = part[part["label"].eq("safe")]
        overall = {
            "group": group,
            "category": "all",
            "unsafe": len(unsafe),
            "caught": int(unsafe["blocked"].sum()),
            "safe": len(safe),
            "false_blocks": int(safe["blocked"].sum()),
        }
        rows.append(overall)
        for category, per_category in unsafe.groupby("category", sort=True):
            rows.append(
                {
                    "group": group,
                    "category": category,
                    "unsafe": len(per_category),
                    "caught": int(per_category["blocked"].sum()),
                    "safe": 0,
                    "false_blocks": 0,
                }
            )
    import pandas as pd

    summary = pd.DataFrame(rows)
    summary["missed"] = summary["unsafe"] - summary["caught"]
    summary["passed"] = summary["safe"] - summary["false_blocks"]
    summary["catch_rate"] = summary["caught"] / summary["unsafe"].where(summary["unsafe"] > 0)
    summary["false_block_rate"] = summary["false_blocks"] / summary["safe"].where(summary["safe"] > 0)
    return summary
