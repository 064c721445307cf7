"""The embedded screen's speed work (issue #19) changes no verdict: literal prefilters only skip patterns that
cannot match, stored requirements equal derived ones, and the screen's results equal main's (fixture)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

import pytest

from personalization_assets.embedded import concepts, prefilter, screen, structure
from personalization_assets.embedded.prefilter import SLOT, LiteralIndex, derive, holds, requirement, satisfied

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"


def _dev_texts(limit: int = 400) -> list[str]:
    texts = []
    for path in sorted((ROOT / "tests" / "data").glob("safety_*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return texts[:: max(1, len(texts) // limit)]


@pytest.mark.parametrize(
    ("pattern", "clauses"),
    [
        (r"kill(?:s|ed)?", [{"kill"}]),
        (r"(?:slit|cut) (?:his|her)", [{"slit his", "slit her", "cut his", "cut her"}]),
        (r"\bfoo\b|bar", [{"foo", "bar"}]),
        (r"x(?:y|.)z", []),  # one-letter literals are not worth a clause
        (r"should\s+be\s+(?:\w+\s+)?(?:killed|deported)", [{"should "}, {"killed", "deported"}, {" be "}]),
    ],
)
def test_requirements_name_what_every_match_holds(pattern, clauses):
    assert sorted(map(sorted, derive(pattern))) == sorted(map(sorted, clauses))


@pytest.mark.parametrize("pattern", [r"a*", r"(?i)kill", r"(?i:kill)s", r"(?:kill)?", r"\w+", r"(a)\1"])
def test_patterns_that_promise_nothing_are_always_run(pattern):
    assert derive(pattern) == ()
    assert holds(derive(pattern), "")


def test_whitespace_is_read_as_a_space_in_pattern_and_text():
    required = derive(r"no\s+(?:any\s+)?kids")
    assert holds(required, "we said no\u2003kids")
    assert holds(required, "no\tany \n kids")
    assert not holds(required, "nokids")


def test_a_slot_stands_for_the_texts_own_strings():
    required = derive(f"\\bno (?:women|{SLOT})s\\b")
    assert holds(required, "no kethians here", ["kethian", "kethians"])
    assert not holds(required, "no kethians here", [])
    assert holds(required, "no womens", [])


def test_literal_index_finds_what_a_plain_search_finds():
    literals = {"kill", "no ", "ab", "the pills", "pill", "zzz", "x"}
    index = LiteralIndex(literals)
    for text in ["", "ab", "take the pills now", "no kill\u00a0here", "z" * 500 + " kill"]:
        assert index.present(text) == {lit for lit in literals if lit in prefilter.spaced(text)}


def _screen_patterns() -> list[tuple[re.Pattern[str], prefilter.Requirement]]:
    patterns = [(rule.regex, rule.required) for rule in screen._RULES]
    patterns += [
        (regex, req) for v in screen._VERBS for regex, req in zip((v.base, v.inflected), v.required, strict=True)
    ]
    structure.prefilter_requirements()
    statics = structure._static_literals()[1]
    fixed = [structure._GET_RID, *(p for p, _, _ in structure._SCAMS), *(p for p, _ in structure._SELF_ACT_RES)]
    fixed += [p for p, _, _ in structure._THREAT_RES]
    return patterns + [(p, statics[p.pattern]) for p in fixed]


def test_no_pattern_matches_a_text_its_requirement_rules_out():
    """Soundness on real text: wherever a pattern matches, its requirement holds (else a verdict would change)."""
    texts = [screen.masked_text(t) for t in _dev_texts()]
    for regex, required in _screen_patterns():
        for text in texts:
            if regex.search(text):
                assert holds(required, text), (regex.pattern[:80], text[:80])


def test_per_text_hate_patterns_match_only_where_their_template_requirement_holds():
    names = ["kethian", "varnai"]
    group_alt = "|".join(re.escape(n) + r"s?" for n in names)
    texts = [screen.masked_text(t) for t in _dev_texts()]
    texts += ["the kethians are vermin", "no varnai served here", "those people should be deported"]
    for alternation, slot in ((group_alt, structure._slot(names)), ("", [])):
        for pattern, required in zip(structure._hate_patterns(alternation), structure._HATE_REQUIRED, strict=True):
            compiled = re.compile(pattern)
            for text in texts:
                if compiled.search(text):
                    assert holds(required, text, slot), (pattern[:80], text[:80])


def test_every_rule_compiles():
    """Rules are compiled on first use: all of them must compile."""
    assert all(isinstance(rule.regex, re.Pattern) for rule in screen._RULES)
    assert all(isinstance(v.base, re.Pattern) and isinstance(v.inflected, re.Pattern) for v in screen._VERBS)


def test_stored_requirements_are_the_derived_ones_for_every_pattern():
    """The store (embedded/prefilter_requirements.json) is up to date: regenerate it with
    `python -m personalization_assets.embedded.prefilter` after changing a pattern."""
    screen.prefilter_requirements()
    structure.prefilter_requirements()
    stored = prefilter._stored()
    keys = {prefilter._key(p): p for p in prefilter._REQUESTED}
    assert set(stored) == set(keys)
    for key, pattern in keys.items():
        assert stored[key] == derive(pattern), pattern[:80]
        assert requirement(pattern) == derive(pattern)


def test_satisfied_agrees_with_holds():
    index = screen._rule_literals()
    for text in [screen.masked_text(t) for t in _dev_texts(100)]:
        found = index.present(text)
        for rule in screen._RULES:
            assert satisfied(rule.required, found) == holds(rule.required, text)


def test_one_pass_concept_search_finds_the_spans_of_one_search_per_concept():
    for text in _dev_texts(200):
        for language in ("en", "de"):
            words = [w for w in (re.sub(r"[^a-z0-9]", "", t) for t in concepts._tokens(screen.masked_text(text))) if w]
            tokens = concepts._token_keys(language, words)
            expected = {name: concepts._find(tokens, phrases) for name, phrases in concepts._concepts(language).items()}
            assert concepts._find_concepts(tokens, language) == expected


def test_the_screen_gives_mains_results_on_the_content_library_and_dev_sample():
    """A quick part of scripts/screen_identity.py (which compares all ~9,700 development and used held-out
    texts): the fixture was written by main's screen."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("screen_identity", SCRIPTS / "screen_identity.py")
    identity = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(identity)
    with gzip.open(identity.FIXTURE, "rt", encoding="utf-8") as handle:
        reference = json.load(handle)
    library = []
    for path in sorted((ROOT / "data" / "content").glob("*.json")):
        row = json.loads(path.read_text(encoding="utf-8"))
        row = {k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()}
        library.append(identity.document_text(row, ("title", "content", "keywords")))
    texts = library + _dev_texts(300)
    compared = 0
    for text in texts:
        key = hashlib.sha256(text.encode()).hexdigest()
        assert key in reference
        assert json.loads(json.dumps(identity.outcome(text))) == reference[key], text[:100]
        compared += 1
    assert compared == len(texts) >= 38 + 250
