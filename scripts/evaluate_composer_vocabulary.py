"""Does the embedded composer speak each business's language? Words of its own copy that the business never uses.

For each content library, runs `personalize run` (the embedded backends, the shipped customers and settings) in
a fresh warehouse and Dagster home and reads every message variant it wrote. The composer's campaign copy (the
sentences of `INTENT_COPY`: opening, why-you, call to action and extra lines, chosen by the segment's intent)
makes claims about the business; every word of those sentences in a message that occurs nowhere in the library
(titles, content, audiences, keywords) is counted: copy talking about things the business may not have
("wishlist", "sizing" to an airline's customers). English stop words are not counted. Quoted document
sentences, titles and keywords are the library's own words; greetings, lead-ins and sign-offs are not
campaign claims, and are not looked at.

    python scripts/evaluate_composer_vocabulary.py DIR [DIR ...]        # library folders (*.json documents)
    python scripts/evaluate_composer_vocabulary.py --summary-only DIR   # figures only, no word lists

A library folder holds the documents, or `documents/` with them (tests/data/libraries/<name>/). Prints, per
library: variants written, campaign sentences in them, how many of those hold a word foreign to the library,
the distinct foreign words and (without --summary-only) the most frequent ones.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # noqa: E402

from personalization_assets.embedded.composer import INTENT_COPY  # noqa: E402
from personalization_assets.lib.content import load_content_library  # noqa: E402
from scripts.benchmark import pipeline_env  # noqa: E402

WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    return [w.removesuffix("'s") for w in WORD.findall(text.casefold()) if len(w) >= 3]


def library_vocabulary(folder: Path) -> set[str]:
    frame = load_content_library(folder).to_frame()
    text = " ".join(
        " ".join(map(str, frame[column].fillna(""))) for column in ("title", "content", "audience", "keywords")
    )
    vocabulary = set(words(text))
    # A word the library writes in another form ("orders" for "order", "booked" for "book") is not foreign.
    return vocabulary | {w.rstrip("s") for w in vocabulary} | {re.sub(r"(ed|ing)$", "", w) for w in vocabulary}


def foreign(word: str, vocabulary: set[str]) -> bool:
    stems = {word, word.rstrip("s"), re.sub(r"(ed|ing)$", "", word), re.sub(r"(ed|ing|s)$", "e", word)}
    return word not in ENGLISH_STOP_WORDS and not stems & vocabulary


def documents_folder(folder: Path) -> Path:
    return folder / "documents" if (folder / "documents").is_dir() else folder


def messages(folder: Path) -> list[tuple[str, str, str, str]]:
    """(segment, tone, subject, body) of every variant `personalize run` wrote with this library."""
    work = Path(tempfile.mkdtemp(prefix="composer-eval-"))
    try:
        env = pipeline_env(work, ROOT / "data" / "customers.csv")  # the benchmark's fresh home and warehouse
        env["PERSONALIZATION_CONTENT"] = str(documents_folder(folder))
        run = subprocess.run(
            [sys.executable, "-m", "personalization_assets.cli", "run"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if not (work / "warehouse.duckdb").exists():
            raise RuntimeError(f"{folder}: personalize run wrote no warehouse:\n{run.stderr[-2000:]}")
        with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as connection:
            return connection.execute(
                "select segment, tone, subject, body from message_variants order by segment, tone"
            ).fetchall()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def campaign_sentences() -> list[str]:
    sentences = []
    for copy in INTENT_COPY.values():
        for part in ("opening", "why", "cta"):
            sentences.extend(copy[part].values())  # type: ignore[literal-required]
        sentences.extend(copy["extra"])
    return sentences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("libraries", nargs="+", type=Path)
    parser.add_argument("--summary-only", action="store_true", help="figures only, no word lists")
    args = parser.parse_args(argv)
    claims = campaign_sentences()
    print("| library | variants | campaign sentences used | with a foreign word | distinct foreign words |")
    print("|---|---:|---:|---:|---:|")
    details = []
    for folder in args.libraries:
        vocabulary = library_vocabulary(documents_folder(folder))
        variants = messages(folder)
        counts: Counter[str] = Counter()
        used = flagged = 0
        for _, _, _, body in variants:
            for sentence in (c for c in claims if c in body):
                used += 1
                found = [w for w in words(sentence) if foreign(w, vocabulary)]
                counts.update(found)
                flagged += bool(found)
        print(f"| {folder.name} | {len(variants)} | {used} | {flagged} | {len(counts)} |")
        details.append((folder.name, counts))
    if not args.summary_only:
        for name, counts in details:
            print(f"\n{name}: " + ", ".join(f"{w} ({n})" for w, n in counts.most_common(40)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
