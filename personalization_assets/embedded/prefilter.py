"""Literal prefilters for the embedded screen's regular expressions: skip a pattern that cannot match a text
without compiling or running it (issue #19: compiling every pattern cost more than screening a document).

`requirement(pattern)` reads the pattern's syntax tree (Python's own regex parser) and returns clauses: sets of
literal strings such that EVERY match of the pattern contains at least one literal of EVERY clause. If a text
lacks all literals of one clause, the pattern has no match in the text nor in any part of it (a sentence), so
skipping it changes no verdict. The derivation only uses facts that hold for every regex, whatever the engine's
backtracking order:

- a sequence matches a contiguous run of its elements' matches: the clauses of all its elements hold;
- an alternation matches one of its branches: clause by clause, the union of one clause of each branch (none if
  a branch has none);
- a repetition with a minimum of 1 or more contains its body's match, and begins and ends with one (so "no\\s+"
  requires "no "); with a minimum of 0 it promises nothing;
- anchors and lookarounds consume nothing (they only restrict where a match is; ignored here, which is safe);
- small finite parts (literals, short character classes, alternations of them) are expanded to their exact
  strings and concatenated, so "kill(?:s|ed)?" requires "kill" and "(?:slit|cut) (?:his|her)" requires one of
  "slit his", "slit her", "cut his", "cut her".

Whitespace is read as a plain space: literals are looked for in `spaced(text)`, the text with every whitespace
character (what `\\s` matches) replaced by " ", so `\\s` and a literal tab both stand for " ". Anything else
(`.`, `\\w`, negated classes, back-references, case-insensitive flags) promises nothing, which is always
correct: the pattern is then simply run.

A pattern built per text around a variable alternation (the group names of embedded/structure.py) is analysed
once as a template with `SLOT` in the alternation's place; `holds(..., slot=[...])` then stands the text's strings
in for it (all the strings that alternation can match), or none when the text has no such alternation.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from re import _constants as sre  # type: ignore[attr-defined]  # noqa: PLC2701 - the stdlib's regex syntax tree, read only
from re import _parser as sre_parse  # type: ignore[attr-defined]  # noqa: PLC2701
from typing import Any

from personalization_assets.embedded.loading import load_once

# Requirements of the screen's own patterns, derived once and stored (`write_store`); keyed by pattern text.
STORE = Path(__file__).with_name("prefilter_requirements.json")
DERIVATION = 1  # bump when `derive` changes: requirements stored by another derivation are not used
_REQUESTED: set[str] = set()
SLOT = "\x00"  # stands for a per-text alternation in a template (a text holding it only has the pattern run)
_EXACT_LIMIT = 64  # a part with more exact strings than this is summarised by its clauses
_CLASS_LIMIT = 10  # character classes up to this size are expanded to their characters
_CLAUSES = 8  # clauses kept per part (the most selective; fewer clauses is a weaker but still true promise)
_BRANCH_PRODUCT = 16  # at most this many clauses from distributing an alternation's clauses

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT))
Clause = frozenset[str]
Requirement = tuple[Clause, ...]  # every clause must hold; () promises nothing
# (exact strings a part can match, or None; clauses every match of the part satisfies)
_Info = tuple[frozenset[str] | None, Requirement]
_EMPTY = frozenset([""])
_OTHER_WHITESPACE = re.compile(r"[^\S ]")  # whitespace other than the space itself


def _char(code: int) -> str:
    char = chr(code)
    return " " if char.isspace() else char  # what `spaced` makes of it (str.isspace is what \s matches)


def requirement(pattern: str) -> Requirement:
    """The clauses every match of ``pattern`` satisfies (see the module doc); () when it promises nothing.
    Case-sensitive, like the patterns it is used for. Read from `STORE` when it holds this pattern (deriving
    costs about as much as compiling: ~0.15 s for all the screen's patterns in every fresh process), else
    derived."""
    _REQUESTED.add(pattern)
    stored = _stored().get(_key(pattern))
    return stored if stored is not None else derive(pattern)


def derive(pattern: str) -> Requirement:
    """`requirement` worked out from the pattern's syntax tree."""
    parsed = sre_parse.parse(pattern)
    if parsed.state.flags & (re.IGNORECASE | re.LOCALE):
        return ()
    try:
        exact, clauses = _sequence(parsed.data)
    except _UnsupportedError:
        return ()
    # Minimal literals only at the end: fewer to look for, and the same promise.
    return tuple(_minimal(clause) for clause in _best(clauses + _as_clauses(exact)))


def write_store() -> int:
    """Derive and store the requirement of every pattern asked for so far (`python -m
    personalization_assets.embedded.prefilter` asks for all of the screen's); returns how many."""
    # Clauses in their order (most selective first, as `holds` should try them), literals sorted.
    requirements = {_key(p): [sorted(clause) for clause in derive(p)] for p in sorted(_REQUESTED)}
    entries = ",\n".join(
        f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in sorted(requirements.items())
    )
    STORE.write_text(f'{{"derivation": {DERIVATION}, "requirements": {{\n{entries}\n}}}}\n', encoding="utf-8")
    _stored.cache_clear()
    return len(requirements)


@load_once()
def _stored() -> dict[str, Requirement]:
    try:
        data = json.loads(STORE.read_text(encoding="utf-8"))
        if data["derivation"] != DERIVATION:
            return {}
        return {key: tuple(frozenset(clause) for clause in clauses) for key, clauses in data["requirements"].items()}
    except (OSError, ValueError, LookupError, TypeError, AttributeError):
        return {}  # no store (or a broken one): every requirement is derived, which is slower but the same


def _key(pattern: str) -> str:
    # The pattern text itself decides: an edited pattern has a new key, so a stale entry is never used for it.
    return hashlib.sha256(pattern.encode("utf-8")).hexdigest()[:32]


def spaced(text: str) -> str:
    """``text`` as the literals are looked for in it: every whitespace character a space (same length)."""
    return _OTHER_WHITESPACE.sub(" ", text)


def holds(required: Requirement, text: str, slot: Sequence[str] = ()) -> bool:
    """Whether ``text`` may hold a match: one literal of every clause is in it (`slot`: the strings standing in
    for `SLOT` in a template's literals)."""
    if required and _OTHER_WHITESPACE.search(text):
        text = spaced(text)
    contains = text.__contains__
    for clause in required:
        # Every literal as it stands first (a C loop); a slot literal found this way only means the pattern is
        # run. Then the slot literals with the text's strings in place of the slot.
        if any(map(contains, clause)):
            continue
        if slot and any(_present(literal, text, slot) for literal in clause if SLOT in literal):
            continue
        return False
    return True


class LiteralIndex:
    """The literals of many patterns' requirements (without slots), indexed by their first three letters: a text
    is searched only for the literals all of whose three-letter pieces it holds (set operations instead of
    scanning the text for each of thousands of literals it lacks)."""

    def __init__(self, literals: Iterable[str]):
        self._short: list[str] = []
        self._by_head: dict[str, list[tuple[str, frozenset[str]]]] = {}
        for literal in sorted(set(literals)):
            if len(literal) < 3:
                self._short.append(literal)
            else:
                pieces = frozenset(literal[i : i + 3] for i in range(len(literal) - 2))
                self._by_head.setdefault(literal[:3], []).append((literal, pieces))
        self._heads = frozenset(self._by_head)

    def present(self, text: str) -> set[str]:
        """Those of the literals ``text`` holds, for `satisfied`."""
        text = spaced(text)
        found = {literal for literal in self._short if literal in text}
        grams = {text[i : i + 3] for i in range(len(text) - 2)}
        for head in self._heads.intersection(grams):
            found.update(
                literal for literal, pieces in self._by_head[head] if grams.issuperset(pieces) and literal in text
            )
        return found


def satisfied(required: Requirement, found: set[str]) -> bool:
    """`holds` for a text whose literals `present` found (a requirement without slots)."""
    return all(not clause.isdisjoint(found) for clause in required)


def _present(literal: str, text: str, slot: Sequence[str]) -> bool:
    if SLOT not in literal:
        return literal in text
    parts = literal.split(SLOT)
    if len(parts) == 2:
        return any(parts[0] + s + parts[1] in text for s in slot)
    # Several slots may stand for different strings: each fixed part and some slot string must be there.
    return any(s in text for s in slot) and all(part in text for part in parts)


class _UnsupportedError(Exception):
    """A construct the derivation refuses (scoped case-insensitive flags): the pattern is never skipped."""


def _minimal(literals: Iterable[str]) -> Clause:
    """Drop literals that contain a shorter one of the set: a text holding the longer also holds the shorter."""
    kept: list[str] = []
    for literal in sorted(set(literals), key=len):
        if not any(k in literal for k in kept):
            kept.append(literal)
    return frozenset(kept)


def _rank(clause: Clause) -> tuple[int, int, list[str]]:
    """Sort key, most selective first: longer shortest literal, then fewer literals; then the literals themselves,
    so the choice is the same in every process. A slot counts as three letters (the shortest name): it stands
    for names taken from the text itself, which a text therefore nearly always holds."""
    return -min(len(literal.replace(SLOT, "xxx")) for literal in clause), len(clause), sorted(clause)


def _best(clauses: Iterable[Clause]) -> Requirement:
    """The most selective clauses, without one that another implies (a clause holding all of a kept clause's
    literals and more is met whenever that one is) or one a one-letter literal meets (nearly every text)."""
    unique = sorted({clause for clause in clauses if clause and _rank(clause)[0] < -1}, key=_rank)
    kept: list[Clause] = []
    for clause in unique:
        if not any(k <= clause for k in kept):
            kept.append(clause)
    return tuple(kept[:_CLAUSES])


def _as_clauses(exact: frozenset[str] | None) -> Requirement:
    """Exact strings as a clause: only if the part cannot match the empty string."""
    return () if exact is None or "" in exact else (exact,)


def _sequence(items: Iterable[tuple[Any, Any]]) -> _Info:
    exact: frozenset[str] | None = _EMPTY  # exact strings of the run of parts since the last restart
    clauses: list[Clause] = []
    whole = True  # whether `exact` still covers the whole sequence
    for op, av in items:
        if op in _REPEATS and av[0] >= 1 and av[1] != 1:
            body_exact, _ = _sequence(av[2].data)
            if body_exact is not None and "" not in body_exact:
                # x{1,} (and any repetition of at least one) begins and ends with a match of x: the run so far
                # followed by x is in every match, and so is x followed by what comes next.
                if exact is not None and len(exact) * len(body_exact) <= _EXACT_LIMIT:
                    clauses += _as_clauses(frozenset(a + b for a in exact for b in body_exact))
                else:
                    clauses += _as_clauses(exact)
                exact, whole = body_exact, False
                continue
        part_exact, part_clauses = _part(op, av)
        if exact is not None and part_exact is not None and len(exact) * len(part_exact) <= _EXACT_LIMIT:
            exact = frozenset(a + b for a in exact for b in part_exact)
            continue
        clauses += _as_clauses(exact)  # the run so far is contiguous in every match
        clauses += part_clauses
        exact = part_exact  # a new run starts here (None: after an unknown part)
        whole = False
    if exact is not None and not whole:
        clauses += _as_clauses(exact)
    return (exact if whole else None), _best(clauses)


def _branch(infos: list[_Info]) -> _Info:
    if all(exact is not None for exact, _ in infos):
        union = frozenset[str]().union(*(exact for exact, _ in infos if exact is not None))
        if len(union) <= _EXACT_LIMIT:
            return union, ()
    options = [_best(clauses + _as_clauses(exact)) for exact, clauses in infos]
    if not all(options):
        return None, ()
    # (a1 and a2) or (b1) == (a1 or b1) and (a2 or b1): one clause of each branch, united. All combinations of
    # the most selective clauses (a small product), and for each clause of the first branch the combination with
    # the most alike clause of every other branch (so a clause all branches share, a group word, survives).
    width = 1
    while width < _CLAUSES and math.prod(min(len(o), width + 1) for o in options) <= _BRANCH_PRODUCT:
        width += 1
    combinations = [frozenset().union(*c) for c in itertools.product(*(o[:width] for o in options))]
    for clause in options[0]:
        alike = [max(o, key=lambda other: (len(clause & other), -len(other - clause))) for o in options[1:]]
        combinations.append(clause.union(*alike))
    return None, _best(combinations)


def _part(op: object, av) -> _Info:  # noqa: ANN001, C901, PLR0911 - one case per node type of the tree
    if op is sre.LITERAL:
        return frozenset([_char(av)]), ()
    if op is sre.IN:
        chars: set[str] = set()
        for item_op, item in av:
            if item_op is sre.LITERAL:
                chars.add(_char(item))
            elif item_op is sre.RANGE and item[1] - item[0] < _CLASS_LIMIT:
                chars.update(_char(c) for c in range(item[0], item[1] + 1))
            elif item_op is sre.CATEGORY and item is sre.CATEGORY_SPACE:
                chars.add(" ")
            else:  # NEGATE, another category (\w, \d), a wide range
                return None, ()
        return (frozenset(chars), ()) if len(chars) <= _CLASS_LIMIT else (None, ())
    if op is sre.SUBPATTERN:
        _group, add_flags, del_flags, body = av
        if (add_flags | del_flags) & (re.IGNORECASE | re.LOCALE):
            raise _UnsupportedError
        return _sequence(body.data)
    if op is sre.BRANCH:
        return _branch([_sequence(branch.data) for branch in av[1]])
    if op in _REPEATS:
        low, high, body = av
        exact, clauses = _sequence(body.data)
        if low == 0:
            return (exact | _EMPTY, ()) if high == 1 and exact is not None else (None, ())
        if low == high == 1:
            return exact, clauses
        return None, _best(clauses + _as_clauses(exact))
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
        return _EMPTY, ()  # zero-width: consumes nothing
    return None, ()  # ANY, NOT_LITERAL, categories, back-references, atomic groups, conditionals


def _main() -> int:
    # Run as a module this file is __main__: ask the imported module (the one the screen uses) for everything.
    from personalization_assets.embedded import prefilter, screen, structure

    screen.prefilter_requirements()
    structure.prefilter_requirements()
    print(f"stored {prefilter.write_store()} requirements in {prefilter.STORE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
