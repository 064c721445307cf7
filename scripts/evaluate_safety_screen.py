#!/usr/bin/env python
"""Evaluate the embedded content-safety screen on the labelled set (tests/data/safety_eval.jsonl).

Prints, per split (dev / heldout / all): confusion counts, per-category catch rate, false-block rate,
and timing. ``--show-errors`` lists every missed unsafe text and every falsely blocked safe text.

    .venv/bin/python scripts/evaluate_safety_screen.py [--data PATH] [--show-errors]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from personalization_assets.lib.safety import (  # noqa: E402 - path set up above
    CATEGORIES,
    evaluate_examples,
    evaluation_summary,
    screen_text,
)

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "safety_eval.jsonl"


def _rate(value: float) -> str:
    return "   n/a" if pd.isna(value) else f"{value:6.3f}"


def _print_split(name: str, scored: pd.DataFrame) -> None:
    summary = evaluation_summary(scored)
    overall = summary[summary["category"].eq("all")].iloc[0]
    print(f"\n== {name}: {len(scored)} texts ({overall['unsafe']} unsafe, {overall['safe']} safe)")
    print(f"confusion: caught (TP) {overall['caught']}  missed (FN) {overall['missed']}  "
          f"false blocks (FP) {overall['false_blocks']}  passed (TN) {overall['passed']}")
    print(f"catch rate {_rate(overall['catch_rate'])}   "
          f"false-block rate {_rate(overall['false_block_rate'])}")
    print(f"{'category':<10} {'unsafe':>6} {'caught':>6} {'catch':>6}")
    for row in summary[summary["category"].ne("all")].itertuples():
        print(f"{row.category:<10} {row.unsafe:>6} {row.caught:>6} {_rate(row.catch_rate)}")


def _timing(texts: list[str]) -> None:
    screen_text("warm up")
    per_text = []
    for text in texts:
        start = time.perf_counter()
        screen_text(text)
        per_text.append(time.perf_counter() - start)
    batches = []
    for _ in range(20):
        start = time.perf_counter()
        for text in texts[:15]:
            screen_text(text)
        batches.append(time.perf_counter() - start)
    print(f"\n== timing: {len(texts)} texts in {sum(per_text) * 1000:.0f} ms; per text median "
          f"{statistics.median(per_text) * 1000:.2f} ms, max {max(per_text) * 1000:.2f} ms; "
          f"15 texts median {statistics.median(batches) * 1000:.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled JSONL file")
    parser.add_argument("--show-errors", action="store_true", help="list misses and false blocks")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"labelled data file not found: {args.data}")

    examples = pd.read_json(args.data, lines=True)
    if "split" not in examples:
        examples["split"] = "all"
    scored = evaluate_examples(examples)
    for split in sorted(scored["split"].unique()):
        _print_split(split, scored[scored["split"].eq(split)])
    if scored["split"].nunique() > 1:
        _print_split("all splits", scored)
    _timing(scored["text"].tolist())

    if args.show_errors:
        severity_columns = [f"severity_{c}" for c in CATEGORIES]
        errors = scored[scored["blocked"] != scored["label"].eq("unsafe")]
        print(f"\n== errors ({len(errors)}); severities as {'/'.join(CATEGORIES)}")
        for row in errors.itertuples():
            kind = "MISSED" if row.label == "unsafe" else "FALSE BLOCK"
            severities = "/".join(str(getattr(row, c)) for c in severity_columns)
            print(f"[{row.split}] {kind:<11} {row.category or '-':<9} {severities}  {row.text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
