"""Deterministic, stratified assignment of a segment's customers to experiment arms.

Every customer gets a keyed 64-bit hash of their id (the key is derived from the experiment id and salt).
Within a segment, customers are ordered by that hash and the arms are dealt over the ranks by cumulative
weight, so each arm receives floor or ceil of ``n * weight`` customers: exact balance even for 20-customer
segments, and no state to store — the same inputs always give the same assignment. docs/statistics.md
discusses the trade-off against plain hash buckets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from personalization_assets.lib.frames import ARROW_STRING
from personalization_assets.lib.statistics import CONTROL, sample_ratio_mismatch

# Canonical arm order: arms are dealt in this order, so the order of the approved-variants list never matters.
ARM_ORDER: tuple[str, ...] = (CONTROL, "urgent", "informational", "friendly")

ASSIGNMENT_COLUMNS = ["segment", "customer_id", "arm", "variant_id"]
BALANCE_COLUMNS = [
    "segment",
    "arm",
    "n",
    "share",
    "expected_share",
    "deviation",
    "within_tolerance",
    "meets_min_per_arm",
    "srm_chi2",
    "srm_p_value",
]


def hash_key(*parts: object) -> str:
    """A 16-character key for pandas' SipHash, derived from ``parts`` (stable across processes and runs)."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode("utf-8")).hexdigest()
    return digest[:16]


def keyed_hash(values: pd.Series, *key_parts: object) -> np.ndarray:
    """Keyed SipHash-2-4 of each value's string form as uint64, vectorized.

    Unlike Python's ``hash`` this does not depend on PYTHONHASHSEED, so it is reproducible in any process.
    """
    as_text = values.astype(str)
    hashed = pd.util.hash_pandas_object(as_text, index=False, hash_key=hash_key(*key_parts), categorize=False)
    return hashed.to_numpy(dtype=np.uint64)


def ordered_arms(arms: Sequence[str]) -> list[str]:
    """``arms`` de-duplicated in canonical order: ARM_ORDER first, any other name alphabetically after."""
    rank = {arm: position for position, arm in enumerate(ARM_ORDER)}
    return sorted(set(arms), key=lambda arm: (rank.get(arm, len(ARM_ORDER)), arm))


def effective_weights(arms: Sequence[str], weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """Normalized weights of ``arms`` (canonical order); absent arms give up their weight pro rata.

    ``weights`` maps arm name to a non-negative weight and may name more arms than are present (a blocked
    variant's arm); ``None`` means equal weights.
    """
    present = ordered_arms(arms)
    if not present:
        raise ValueError("effective_weights: no arms given")
    if weights is None:
        return {arm: 1.0 / len(present) for arm in present}
    missing = [arm for arm in present if arm not in weights]
    if missing:
        raise ValueError(f"arm weights: no weight configured for arm(s) {missing}; configured: {sorted(weights)}")
    raw = np.array([float(weights[arm]) for arm in present])
    if not np.all(np.isfinite(raw)) or np.any(raw < 0):
        raise ValueError(f"arm weights must be finite and non-negative, got {dict(zip(present, raw, strict=True))}")
    total = raw.sum()
    if total <= 0:
        raise ValueError(f"arm weights of the present arms {present} sum to 0; at least one must be positive")
    return {arm: float(weight / total) for arm, weight in zip(present, raw, strict=True)}


def _variant_arms(variants: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Map tone (arm name) -> variant_id, refusing a control-named tone or two variants with one tone."""
    variant_by_arm: dict[str, str] = {}
    for variant_id, tone in variants:
        if tone == CONTROL:
            raise ValueError(f"variant {variant_id!r} has tone {CONTROL!r}, which is reserved for the control arm")
        if tone in variant_by_arm:
            raise ValueError(
                f"variants {variant_by_arm[tone]!r} and {variant_id!r} share tone {tone!r}; "
                "a segment may have one approved variant per tone"
            )
        variant_by_arm[tone] = variant_id
    return variant_by_arm


def assign_arms(
    customers: pd.DataFrame,
    variants: Sequence[tuple[str, str]],
    weights: Mapping[str, float] | None = None,
    experiment_id: str = "experiment",
    salt: str = "",
    arrow_strings: bool = False,
) -> pd.DataFrame:
    """Assign each customer to ``control`` or to the arm of one approved variant.

    ``customers`` needs ``segment`` and ``customer_id`` (unique within a segment); ``variants`` lists the
    segment's approved ``(variant_id, tone)`` pairs, the tone naming the arm. Arms of blocked variants are
    absent and their weight is redistributed proportionally (see ``effective_weights``). Returns one row per
    customer, in input order, with columns ``segment, customer_id, arm, variant_id`` (``variant_id`` is None
    for control). With ``arrow_strings`` the four columns are Arrow-backed strings (control's ``variant_id``
    missing) and the customer ids are the input's own column: no Python string per row.
    """
    missing = [column for column in ("segment", "customer_id") if column not in customers.columns]
    if missing:
        raise ValueError(f"assign_arms: customers frame lacks column(s) {missing}; has {list(customers.columns)}")
    variant_by_arm = _variant_arms(variants)
    arm_weights = effective_weights([CONTROL, *variant_by_arm], weights)
    arm_names = np.array(list(arm_weights), dtype=object)

    customer_ids = customers["customer_id"].astype(str).reset_index(drop=True)
    segments = customers["segment"].astype(str).reset_index(drop=True)
    if segments.empty or (segments == segments.iloc[0]).all():  # one segment (a partition): the ids alone decide
        duplicated = customer_ids.duplicated()
    else:
        duplicated = pd.DataFrame({"segment": segments, "customer_id": customer_ids}).duplicated()
    if duplicated.any():
        examples = customer_ids[duplicated].unique()[:5].tolist()
        raise ValueError(
            f"assign_arms: {int(duplicated.sum())} duplicate customer_id(s) within a segment, e.g. {examples}"
        )
    if customer_ids.empty:
        dtype = ARROW_STRING if arrow_strings else object
        return pd.DataFrame({column: pd.Series(dtype=dtype) for column in ASSIGNMENT_COLUMNS})

    hashes = keyed_hash(customer_ids, "assignment", experiment_id, salt)
    segment_codes, segment_names = pd.factorize(segments, sort=True)
    order = np.lexsort((hashes, segment_codes))  # the last key is the primary one
    sorted_hashes, sorted_codes = hashes[order], segment_codes[order]
    if np.any((sorted_hashes[1:] == sorted_hashes[:-1]) & (sorted_codes[1:] == sorted_codes[:-1])):
        # A 64-bit collision (odds ~n²/2⁶⁵): break the tie by id so that input order never matters.
        order = np.lexsort((customer_ids.to_numpy(), hashes, segment_codes))

    # Rank of each customer within its segment, in hash order, mapped to a position in (0, 1) and dealt to the
    # arm whose cumulative-weight interval contains it: arm sizes are floor/ceil of n * weight.
    segment_sizes = np.bincount(segment_codes)
    segment_starts = np.concatenate(([0], np.cumsum(segment_sizes)[:-1]))
    rank = np.arange(len(order)) - segment_starts[sorted_codes]
    position = (rank + 0.5) / segment_sizes[sorted_codes]
    cumulative = np.cumsum(list(arm_weights.values()))
    cumulative /= cumulative[-1]  # exactly 1.0 at the end, so round-off can never leave a position uncovered
    arm_index = np.empty(len(order), dtype=np.int64)
    arm_index[order] = np.searchsorted(cumulative, position, side="right")

    arm_variant_ids = np.array([variant_by_arm.get(arm) for arm in arm_names], dtype=object)
    if arrow_strings:
        return pd.DataFrame(
            {
                "segment": _take_strings(list(segment_names), segment_codes),
                "customer_id": (
                    customers["customer_id"] if customers["customer_id"].dtype == ARROW_STRING else customer_ids
                )
                .astype(ARROW_STRING)
                .array,
                "arm": _take_strings(list(arm_names), arm_index),
                "variant_id": _take_strings(list(arm_variant_ids), arm_index),
            }
        )
    return pd.DataFrame(
        {
            "segment": segments.to_numpy(dtype=object),
            "customer_id": customer_ids.to_numpy(dtype=object),
            "arm": arm_names[arm_index],
            "variant_id": arm_variant_ids[arm_index],
        }
    )


def _take_strings(values: list, codes: np.ndarray) -> pd.arrays.ArrowStringArray:
    """``values[code]`` for each code as Arrow-backed strings (None gives a missing value), gathered in Arrow."""
    return pd.array(pa.array(values, pa.large_string()).take(pa.array(codes)), dtype=ARROW_STRING)


def check_balance(
    assignments: pd.DataFrame,
    weights: Mapping[str, float],
    tolerance: float = 0.05,
    min_per_arm: int = 5,
) -> pd.DataFrame:
    """Observed vs expected arm shares per segment.

    ``weights`` are the weights of the arms that should be present (for instance ``effective_weights`` of the
    approved arms); they are normalized here. An expected arm with no customers appears with ``n = 0``; an arm
    in ``assignments`` that is not in ``weights`` is an error. ``srm_chi2``/``srm_p_value`` are the segment's
    sample-ratio-mismatch test, repeated on each of its rows.
    """
    missing = [column for column in ("segment", "arm") if column not in assignments.columns]
    if missing:
        raise ValueError(f"check_balance: assignments frame lacks column(s) {missing}")
    expected = effective_weights(list(weights), weights)
    unexpected = sorted(set(assignments["arm"].unique()) - set(expected))
    if unexpected:
        raise ValueError(f"check_balance: arm(s) {unexpected} were assigned but have no expected weight {expected}")
    if assignments.empty:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in BALANCE_COLUMNS})

    counts = assignments.groupby(["segment", "arm"], observed=True).size().unstack("arm", fill_value=0)
    counts = counts.reindex(columns=list(expected), fill_value=0)
    srm = pd.DataFrame(
        [sample_ratio_mismatch(row, expected) for _, row in counts.iterrows()],  # one test per segment, not per row
        index=counts.index,
        columns=["srm_chi2", "srm_p_value"],
    )
    table = counts.stack().rename("n").reset_index()
    table["share"] = table["n"] / table.groupby("segment")["n"].transform("sum")
    table["expected_share"] = table["arm"].map(expected)
    table["deviation"] = table["share"] - table["expected_share"]
    # A hair of slack so that a share sitting exactly on the tolerance (5 of 20 vs 0.30) is not failed by
    # round-off.
    table["within_tolerance"] = table["deviation"].abs() <= tolerance + 1e-12
    table["meets_min_per_arm"] = (table["n"] >= min_per_arm) | (table["expected_share"] == 0)
    table = table.join(srm, on="segment")
    return table[BALANCE_COLUMNS]
