"""Check that the embedded safety screen still gives exactly the verdicts of a reference version.

Screens every development and used held-out text (tests/data/safety_*, tests/heldout/safety{,_v2,_v3,_v4}),
the string literals of the screen's test files and every content document in data/ with
`screen_text`, `phishing_check` and `masked_text`, and compares the full results (severities, labels,
language, errors, blocklist hits) with a fixture written by the reference version (`--write`, run on main;
rewritten when the screen changes verdicts on purpose, as round 5 did).
Texts are stored by SHA-256 only, so the fixture copies no held-out text. tests/heldout/safety_v5 is never read.

    PYTHONPATH=$PWD python scripts/screen_identity.py            # compare; exit 1 on any difference
    PYTHONPATH=$PWD python scripts/screen_identity.py --write    # (on main) write the fixture
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from personalization_assets.embedded.screen import masked_text, phishing_check, screen_text  # noqa: E402
from personalization_assets.lib.safety import document_text  # noqa: E402

FIXTURE = ROOT / "tests" / "data" / "screen_identity_reference.json.gz"
# Used held-out sets only (treated as development data now); safety_v5 is deliberately absent.
HELDOUT = [
    ROOT / "tests" / "heldout" / name / "heldout.jsonl" for name in ("safety", "safety_v2", "safety_v3", "safety_v4")
]
BLOCKLIST = ("deal", "free shipping", "kill")


def corpus() -> dict[str, str]:
    """Every text to compare, by SHA-256."""
    texts: list[str] = []
    for path in [*sorted((ROOT / "tests" / "data").glob("safety_*.jsonl")), *HELDOUT]:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(json.loads(line)["text"])
    # Python data files and the screen's tests: every string literal long enough to be a text.
    sources = [
        *sorted((ROOT / "tests" / "data").glob("safety_*.py")),
        *sorted((ROOT / "tests").glob("test_safety*.py")),
    ]
    # (not this work's own test file: its strings are not in main, so main's fixture has no outcome for them)
    sources += [p for p in sorted((ROOT / "tests").glob("test_*screen*.py")) if p.name != "test_screen_prefilter.py"]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) >= 12:
                texts.append(node.value)
    for path in sorted((ROOT / "data" / "content").glob("*.json")):
        row = json.loads(path.read_text(encoding="utf-8"))
        row = {k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()}
        texts.append(document_text(row, ("title", "content", "keywords")))
        # Each paragraph on its own too: shorter texts take other paths (language, sentences).
        texts += [p for p in str(row.get("content", "")).split("\n\n") if p.strip()]
    return {hashlib.sha256(t.encode()).hexdigest(): t for t in texts}


def outcome(text: str) -> dict:
    result = screen_text(text, BLOCKLIST)
    severity, labels = phishing_check(text)
    return {
        "severities": result.severities,
        "matched": {k: list(v) for k, v in result.matched.items()},
        "blocklist_hits": list(result.blocklist_hits),
        "language": result.language,
        "errors": list(result.errors),
        "phishing_check": [severity, list(labels)],
        "masked": hashlib.sha256(masked_text(text).encode()).hexdigest(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the reference fixture (run on main)")
    args = parser.parse_args(argv)
    texts = corpus()
    results = {key: outcome(text) for key, text in texts.items()}
    if args.write:
        with gzip.open(FIXTURE, "wt", encoding="utf-8") as handle:
            json.dump(results, handle, sort_keys=True)
        print(f"wrote {len(results)} reference outcomes to {FIXTURE.relative_to(ROOT)}")
        return 0
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as handle:
        reference = json.load(handle)
    missing = [key for key in results if key not in reference]
    differences = [
        key for key in results if key in reference and json.loads(json.dumps(results[key])) != reference[key]
    ]
    for key in differences[:10]:
        print(f"DIFFERENT: {texts[key][:100]!r}\n  reference {reference[key]}\n  now       {results[key]}")
    print(
        f"compared {len(results) - len(missing)} texts: {len(differences)} differences; {len(missing)} not in fixture"
    )
    return 1 if differences else 0  # texts the fixture lacks (added after it was written) cannot be compared


if __name__ == "__main__":
    raise SystemExit(main())
