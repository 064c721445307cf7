"""The safety stage's blocking checks as pure functions of frames (evaluated inside the asset, before the write)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

from personalization_assets.lib.audit_chain import text_sha256
from personalization_assets.lib.safety import APPROVED, BLOCKED, CONCERNS, find_blocklist_hits


def unsafe_approvals(
    verdicts: pd.DataFrame, thresholds: Mapping[str, int], blocklist: Sequence[str], audit: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(approved variants failing a rule, one column per problem; verdicts whose decision is unknown).

    An approved variant fails when a concern (four categories, phishing) is unscreened or at/over its
    threshold, a blocklist term is stored or found again in its text with the current terms, or no approved
    audit record covers exactly its text."""
    approved = verdicts.loc[verdicts["decision"] == APPROVED]
    severities = approved.reindex(columns=list(CONCERNS)).apply(pd.to_numeric, errors="coerce").astype("float64")
    over = severities.ge(pd.Series(thresholds)[list(CONCERNS)])  # NaN (unscreened) is not >=
    problems = pd.DataFrame(index=approved.index)
    problems["unscreened"] = [", ".join(c for c in CONCERNS if pd.isna(severities.at[i, c])) for i in approved.index]
    problems["over_threshold"] = [
        ", ".join(f"{c} {severities.at[i, c]:.0f}" for c in CONCERNS if over.at[i, c]) for i in approved.index
    ]
    texts = approved["subject"].fillna("") + "\n\n" + approved["body"].fillna("")
    stored_hits = approved["blocklist_hits"].map(lambda value: ", ".join(json.loads(value or "[]")))
    found_hits = texts.map(lambda text: ", ".join(find_blocklist_hits(text, blocklist)))
    problems["blocklist"] = (stored_hits + " " + found_hits).str.strip()
    approved_audit = audit.loc[audit["decision"] == APPROVED]
    audited = set(zip(approved_audit["variant_id"], approved_audit["text_sha256"], strict=True))
    problems["not_screened_as_stored"] = [
        "" if (variant, digest) in audited else "no approved audit record for this text"
        for variant, digest in zip(approved["variant_id"], texts.map(text_sha256), strict=True)
    ]
    failing = problems.loc[(problems != "").any(axis=1)]
    undecided = verdicts.loc[~verdicts["decision"].isin([APPROVED, BLOCKED])]
    return pd.concat([approved.loc[failing.index, ["tone"]], failing], axis=1), undecided


def screening_coverage(verdicts: pd.DataFrame, valid_variant_ids: Iterable[str]) -> dict[str, list[str]]:
    """Valid variants without a verdict, variants with more than one, and verdicts for unknown variants."""
    expected = set(valid_variant_ids)
    counts = verdicts["source_variant_id"].value_counts()
    return {
        "missing": sorted(expected - set(counts.index)),
        "repeated": sorted(counts.index[counts > 1]),
        "unknown": sorted(set(counts.index) - expected),
    }
