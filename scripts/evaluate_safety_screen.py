#!/usr/bin/env python
"""Evaluate the embedded content-safety screen: development and held-out catch and false-block rates.

Development text: tests/data/safety_eval.jsonl, tests/data/safety_dev_*.jsonl (including the round-3 composed grid)
and the held-out sets that were each measured once in rounds 1-4 (tests/heldout/safety, safety_v2; since round 5
also safety_v3, safety_v4): the screen's rules and models were built on these. Held-out text: pass it with --heldout
(the newest held-out set is measured once, by the lead). For each set: catch rate per category, false-block rate,
both per language, how many texts involving minors got the maximum severity, and screening time. `--show-errors`
lists every miss and false block.

    .venv/bin/python scripts/evaluate_safety_screen.py [--dev PATH ...] [--heldout PATH] [--heldout-label NAME]
        [--show-errors]

`--dev` with no paths skips development text (`--dev` alone, then only the held-out set is scored)."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from personalization_assets.embedded.screen import screen_text  # noqa: E402 - path set up above
from personalization_assets.lib.safety import CONCERNS, MAX_SEVERITY, evaluate_examples, evaluation_summary  # noqa: E402

USED_HELDOUT = [  # measured once each (rounds 1-4); development text since the round after (v3, v4: round 5)
    ROOT / "tests" / "heldout" / "safety" / "heldout.jsonl",
    ROOT / "tests" / "heldout" / "safety_v2" / "heldout.jsonl",
    ROOT / "tests" / "heldout" / "safety_v3" / "heldout.jsonl",
    ROOT / "tests" / "heldout" / "safety_v4" / "heldout.jsonl",
]
DEV = [
    ROOT / "tests" / "data" / "safety_eval.jsonl",
    *sorted((ROOT / "tests" / "data").glob("safety_dev_*.jsonl")),
    *USED_HELDOUT,
]
HELDOUT = None  # no default: the held-out set of a round is named on the command line and measured once


def load(paths: list[Path]) -> pd.DataFrame:
    """Labelled texts in one frame: label safe|unsafe, category (None when safe), language, minor."""
    frame = pd.concat(
        [pd.read_json(path, lines=True).assign(source=f"{path.parent.name}/{path.name}") for path in paths],
        ignore_index=True,
    )
    if "category" not in frame:
        frame["category"] = None
    category = frame["category"].where(frame["category"].notna(), None)
    derived = category.map(lambda c: "safe" if c in (None, "safe") else "unsafe")
    frame["label"] = frame["label"].fillna(derived) if "label" in frame else derived
    frame["category"] = category.where(frame["label"].eq("unsafe"), None)
    frame["language"] = frame["language"].fillna("en") if "language" in frame else "en"
    frame["minor"] = frame["minor"].map(lambda v: v is True or v == 1) if "minor" in frame else False
    return frame


def _rate(value: float) -> str:
    return "   n/a" if pd.isna(value) else f"{value:6.3f}"


def report(name: str, scored: pd.DataFrame) -> None:
    summary = evaluation_summary(scored)
    overall = summary[summary["category"].eq("all")].iloc[0]
    print(f"\n== {name}: {len(scored)} texts ({overall['unsafe']} unsafe, {overall['safe']} safe)")
    print(
        f"caught {overall['caught']}/{overall['unsafe']} (catch {_rate(overall['catch_rate'])}), "
        f"false blocks {overall['false_blocks']}/{overall['safe']} (rate {_rate(overall['false_block_rate'])})"
    )
    by_language = evaluation_summary(scored, by="language")
    categories = sorted(c for c in scored["category"].dropna().unique())
    languages = sorted(scored["language"].unique())
    header = f"{'category':<12}" + "".join(f"{lang:>14}" for lang in languages) + f"{'all':>14}"
    print(header)
    for category in [*categories, "safe (false blocks)"]:
        cells = []
        for lang in [*languages, "all"]:
            part = summary if lang == "all" else by_language[by_language["group"].eq(lang)]
            if category.startswith("safe"):
                row = part[part["category"].eq("all")]
                cell = (
                    ""
                    if row.empty or not row["safe"].iloc[0]
                    else (f"{row['false_blocks'].iloc[0]}/{row['safe'].iloc[0]} {row['false_block_rate'].iloc[0]:.2f}")
                )
            else:
                row = part[part["category"].eq(category)]
                cell = (
                    ""
                    if row.empty
                    else f"{row['caught'].iloc[0]}/{row['unsafe'].iloc[0]} {row['catch_rate'].iloc[0]:.2f}"
                )
            cells.append(f"{cell:>14}")
        print(f"{category:<12}" + "".join(cells))
    minors = scored[scored["label"].eq("unsafe") & scored["minor"]]
    if len(minors):
        at_max = int((minors["severity_sexual"] == MAX_SEVERITY).sum())
        print(
            f"texts involving minors: {len(minors)}, blocked {int(minors['blocked'].sum())}, "
            f"sexual severity {MAX_SEVERITY}: {at_max}"
        )


def timing(texts: list[str]) -> None:
    screen_text("warm up")
    per_text = []
    for text in texts:
        start = time.perf_counter()
        screen_text(text)
        per_text.append(time.perf_counter() - start)
    print(
        f"\n== timing: {len(texts)} texts in {sum(per_text):.2f} s; per text median "
        f"{statistics.median(per_text) * 1000:.2f} ms, max {max(per_text) * 1000:.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", type=Path, nargs="*", default=DEV, help="development JSONL files")
    parser.add_argument("--heldout", type=Path, default=HELDOUT, help="held-out JSONL file (skipped if absent)")
    parser.add_argument(
        "--by-source", action="store_true", help="also print each development file's figures on its own"
    )
    parser.add_argument(
        "--heldout-label", default="held-out", help='name printed for the --heldout set (e.g. "v1, used set")'
    )
    parser.add_argument("--show-errors", action="store_true", help="list misses and false blocks")
    args = parser.parse_args(argv)
    sets = {"development": args.dev} if args.dev else {}
    if args.heldout and args.heldout.is_file():
        sets[args.heldout_label] = [args.heldout]
    all_texts: list[str] = []
    for name, paths in sets.items():
        missing = [p for p in paths if not p.is_file()]
        if missing:
            parser.error(f"labelled data file not found: {missing[0]}")
        scored = evaluate_examples(load(paths), screen_text)
        report(name, scored)
        if args.by_source and len(paths) > 1:
            for source, part in scored.groupby("source", sort=False):
                report(f"{name} / {source}", part.reset_index(drop=True))
        all_texts += scored["text"].tolist()
        if args.show_errors:
            errors = scored[scored["blocked"] != scored["label"].eq("unsafe")]
            print(f"-- {name} errors ({len(errors)}); severities as {'/'.join(CONCERNS)}")
            for row in errors.itertuples():
                kind = "MISSED" if row.label == "unsafe" else "FALSE BLOCK"
                severities = "/".join(str(getattr(row, f"severity_{c}")) for c in CONCERNS)
                print(f"{kind:<11} {row.category or '-':<10} {row.language:<3} {severities}  {row.text}")
    timing(all_texts[:300])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
