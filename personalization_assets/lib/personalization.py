"""Per-customer personalization of a segment's approved variant, at zero model cost.

Every customer in a tone arm gets that arm's variant (subject and body, shared by the segment) plus one
opening line assembled from name-free fields of their own record: loyalty tier, city and how long ago they
last engaged. Nothing is generated per customer: a million messages cost one vectorized pass over the
distinct combinations of (tone, tier, location, recency band) — a few thousand sentences at most — and a
lookup.

The stored row is compact (``variant_id`` + ``opening_line``); ``render_message`` puts the full text together
when the message is sent or shown.

Tier and location come from the customer file, so they are treated as untrusted text: a value that is not a
short, plain name (letters, spaces, ``.'-``) is left out of the sentence rather than copied into an email.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from personalization_assets.lib.frames import ARROW_STRING

# Columns of `personalized_messages`: the variant is referenced, not copied (see render_message).
PERSONALIZED_COLUMNS = ("segment", "customer_id", "arm", "variant_id", "subject", "opening_line")

# Upper bounds (days since last engagement, inclusive) of the recency bands, and each band's sentence.
RECENCY_BANDS: tuple[tuple[float, str], ...] = (
    (7, "Good to see you again so soon."),
    (30, "It's been a few weeks since we last connected."),
    (90, "It's been a couple of months since we last heard from you."),
    (np.inf, "It's been a while, and we've missed you."),
)
# How each tone hands over to the variant body; unknown tones get the neutral phrase.
TONE_HANDOVER: dict[str, str] = {
    "urgent": "here's something you'll want to act on quickly",
    "informational": "here's an update we picked out for you",
    "friendly": "we chose this one just for you",
}
NEUTRAL_HANDOVER = "here's something we picked out for you"
# A tier or city is used only if it is a short plain name; else (markup, digits, long text) is omitted.
# Letters of any script (São Paulo, Zürich, Kraków): a name is never dropped for its accents.
_PLAIN_NAME = re.compile(r"[^\W\d_](?:[^\W\d_]|[ .'\-]){0,39}")
# A first paragraph this short is a greeting ("Hi there,"): the opening line goes after it, not before it.
GREETING_MAX_WORDS = 8


def plain_name(value: object) -> str:
    """``value`` with single spaces if it is a plain name of at most 40 characters, else ``""``."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    # NFC: macOS exports write accents as combining marks, which would not match a letter.
    text = unicodedata.normalize("NFC", " ".join(str(value).split()))
    return text if _PLAIN_NAME.fullmatch(text) else ""


def tier_name(value: object) -> str:
    """A tier as quoted in a message: ``plain_name``, and "PLATINUM" or "platinum" shown as "Platinum" (a
    mixed-case name is kept as written). The customers table keeps the tier exactly as the file had it."""
    name = plain_name(value)
    return name.title() if name.isupper() or name.islower() else name


def _recency_band(days: pd.Series) -> np.ndarray:
    """Index into RECENCY_BANDS for each value; -1 where the value is missing or negative."""
    values = pd.to_numeric(days, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bounds = np.array([bound for bound, _ in RECENCY_BANDS])
    band = np.searchsorted(bounds, values, side="left")
    return np.where(np.isnan(values) | (values < 0), -1, band)


def opening_sentence(tone: str, tier: str, location: str, recency_band: int) -> str:
    """The opening line for one combination (tier and location already cleaned by ``plain_name``)."""
    handover = TONE_HANDOVER.get(tone, NEUTRAL_HANDOVER)
    if tier and location:
        intro = f"As one of our {tier} members in {location}, {handover}."
    elif tier:
        intro = f"As one of our {tier} members, {handover}."
    elif location:
        intro = f"For our customers in {location}, {handover}."
    else:
        intro = f"{handover[0].upper()}{handover[1:]}."
    recency = RECENCY_BANDS[recency_band][1] if recency_band >= 0 else ""
    return f"{recency} {intro}".strip()


def personal_field_values(tiers: pd.Series, locations: pd.Series) -> list[str]:
    """The distinct values an opening line could quote, exactly as quoted (``tier_name`` for tiers,
    ``plain_name`` for locations), sorted: what the safety stage screens before any reaches a message."""
    values = {tier_name(value) for value in pd.Series(tiers).dropna().unique()}
    values.update(plain_name(value) for value in pd.Series(locations).dropna().unique())
    values.discard("")
    return sorted(values)


def opening_lines(
    tone: pd.Series,
    tier: pd.Series,
    location: pd.Series,
    days_since_engagement: pd.Series,
    allowed_fields: Collection[str] | None = None,
) -> pd.Series:
    """One opening line per row (Arrow-backed strings, same index as ``tone``).

    Sentences are built once per distinct (tone, tier, location, recency band) and gathered by code, so the
    cost per row is a hash and a lookup, not string formatting. With ``allowed_fields``, a tier or location
    is quoted only if its cleaned value is in it (the values the safety screen approved); others are left out.
    """
    lengths = {len(tone), len(tier), len(location), len(days_since_engagement)}
    if len(lengths) != 1:
        raise ValueError(f"opening_lines: inputs differ in length: {sorted(lengths)}")
    if not len(tone):
        return pd.Series([], dtype=ARROW_STRING, index=tone.index, name="opening_line")
    # Each field is factorized, then mapped to the text a line quotes (`GOLD` and `gold` both quote `Gold`): one
    # introduction per distinct (tone, tier text, location text), the recency sentence put in front by Arrow. The
    # Python work grows with the distinct quoted combinations, never with rows or recency bands.
    tone_codes, tones = pd.factorize(pd.Series(tone), use_na_sentinel=True)
    tone_texts = [*(str(value) for value in tones), ""]
    tone_codes = np.where(tone_codes < 0, len(tones), tone_codes)  # a missing tone: the appended ""

    def quoted(column: pd.Series, clean) -> tuple[np.ndarray, list[str]]:  # noqa: ANN001
        codes, uniques = pd.factorize(pd.Series(column), use_na_sentinel=True)
        texts = [clean(value) for value in uniques]
        if allowed_fields is not None:
            texts = [text if text in allowed_fields else "" for text in texts]
        text_codes, distinct_texts = pd.factorize(pd.Series([*texts, ""], dtype=object))
        return text_codes[codes], [str(text) for text in distinct_texts]  # codes -1 take the appended ""

    tier_codes, tier_texts = quoted(tier, tier_name)
    location_codes, location_texts = quoted(location, plain_name)
    combined = tone_codes.astype(np.int64) * len(tier_texts) + tier_codes
    combined = combined * len(location_texts) + location_codes
    intro_codes, distinct = pd.factorize(combined)
    intros = []
    for value in distinct:
        rest, location_index = divmod(int(value), len(location_texts))
        tone_index, tier_index = divmod(rest, len(tier_texts))
        intros.append(
            opening_sentence(tone_texts[tone_index], tier_texts[tier_index], location_texts[location_index], -1)
        )
    band = _recency_band(days_since_engagement)
    prefixes = ["", *(f"{text} " for _, text in RECENCY_BANDS)]  # band -1 (missing): no recency sentence
    # Arrow gathers and joins the strings by code in C; no Python string per row is ever created.
    lines = pc.binary_join_element_wise(
        pa.DictionaryArray.from_arrays(pa.array(band + 1, pa.int32()), pa.array(prefixes, pa.large_string())).cast(
            pa.large_string()
        ),
        pa.DictionaryArray.from_arrays(pa.array(intro_codes, pa.int32()), pa.array(intros, pa.large_string())).cast(
            pa.large_string()
        ),
        pa.scalar("", pa.large_string()),  # the separator: nothing
    )
    # large_string: what pandas' Arrow-backed strings hold (a plain string array would be cast once more).
    return pd.Series(pd.array(lines, dtype=ARROW_STRING), index=tone.index, name="opening_line")


def render_message(opening_line: str, body: str) -> str:
    """The full message text: the opening line after the body's greeting paragraph (or first, if it has none).

    Paragraphs are separated by blank lines, as in ``message_variants.body``.
    """
    paragraphs = body.split("\n\n")
    first = paragraphs[0].strip()
    if len(paragraphs) > 1 and len(first.split()) <= GREETING_MAX_WORDS:
        return "\n\n".join([paragraphs[0], opening_line, *paragraphs[1:]])
    return "\n\n".join([opening_line, *paragraphs])
