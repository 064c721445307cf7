"""Content-safety logic: embedded text screen, approve/block decision, audit hash chain, evaluation.

Pure Python (no Dagster). The embedded screen is the offline default backend of "Azure AI Content
Safety": it scores text on Azure's four harm categories with Azure's eight-level severity scale
(0 safe, 2 low, 4 medium, 6 high; odd values in between). How it works and its measured accuracy are
in docs/safety_screen.md.

Public API
----------
- ``CATEGORIES``, ``DEFAULT_THRESHOLDS``, ``MAX_SEVERITY``
- ``normalize_text(text)``: NFKC + casefold + de-obfuscation, as used by the screen and blocklists
- ``screen_text(text, blocklist=()) -> ScreenResult``
- ``find_blocklist_hits(text, terms) -> tuple[str, ...]``
- ``split_for_screening(text, max_chars=10_000) -> list[str]``
- ``decide(severities, blocklist_hits, thresholds) -> (decision, reasons)`` (fail-closed)
- ``text_sha256``, ``GENESIS_HASH``, ``chain_audit_records``, ``chain_head``, ``verify_audit_chain``
- ``evaluate_examples``, ``evaluation_summary`` (labelled evaluation, tests/data/safety_eval.jsonl)
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import numbers
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import pandas as pd

CATEGORIES: tuple[str, ...] = ("hate", "violence", "self_harm", "sexual")
MAX_SEVERITY = 7
DEFAULT_THRESHOLD = 4
DEFAULT_THRESHOLDS: Mapping[str, int] = MappingProxyType(dict.fromkeys(CATEGORIES, DEFAULT_THRESHOLD))
AZURE_MAX_TEXT_CHARS = 10_000  # Azure AI Content Safety text:analyze limit (Unicode code points)

# ---------------------------------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------------------------------

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"), None)
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'", "\u00b4": "'",
                         "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-"})
# Cyrillic/Greek letters that render like Latin ones (after casefold); applied only to tokens that
# become pure ASCII, so genuine Cyrillic/Greek words are left alone.
_CONFUSABLES = str.maketrans("аеорсухіјѕкмтвοαειкνρτυχ", "aeopcyxijskmtboaeikvptux")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s", "!": "i", "|": "l", "€": "e"})
_LEET_CHARS = frozenset("013457@$!|€")
# Size/unit/ordinal tokens like 4k, 3xl, 2nd, 50ml are not obfuscated words.
_UNIT_TOKEN = re.compile(r"\d+(?:st|nd|rd|th|k|x|xl|xxl|xs|s|m|g|kg|mg|ml|l|oz|lb|lbs|ft|in|cm|mm|gb|tb|"
                         r"mb|hz|w|v|mah|p|d|am|pm|yo|yr|yrs|h|hr|hrs|min|mins|pc|pcs|pk)")
_SPACED_LETTERS = re.compile(r"(?<![\w@$!])(?:[a-z0-9@$!][-._*\s]){2,}[a-z0-9@$!](?![\w@$])")
_TOKEN_CANDIDATE = re.compile(r"[a-z0-9@$!|*€']+")
_ELONGATED = re.compile(r"([a-z])\1{2,}")
_INNER_HYPHEN = re.compile(r"(?<=\w)[-_](?=\w)")

# Words the screen cares about; used to undo elongation ("kiiilll") and masking ("f*ck", "p**n").
_REPAIR_VOCABULARY = frozenset((  # noqa: SIM905 - one readable word list
    "kill kills killed killing murder rape raped raping porn porno sex sexy fuck fucking fucked fucker "
    "slut whore bitch die dead death suicide yourself myself shoot stab hurt hang nude nudes naked dick "
    "cock tits pussy cum horny xxx orgasm blowjob kys hate vermin scum trash exterminate deport burn bomb "
    "shit"
).split())


def _repair_token(token: str) -> str:
    """Undo leetspeak, elongation and '*' masking in one token (already casefolded)."""
    core = token.strip("!|*'")
    if not core:
        return token
    lead = token[: token.index(core[0])]
    trail = token[len(lead) + len(core):]
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
            candidates = [variant for c in candidates for variant in (
                _ELONGATED.sub(r"\1", c, count=1), _ELONGATED.sub(r"\1\1", c, count=1))]
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
# Rules: weighted lexicon entries, context patterns, and violent verbs scored with intent/target
# ---------------------------------------------------------------------------------------------------

# Benign idioms are removed before scoring, so "killer deals" or "shoot us an email" contribute nothing
# while a real threat elsewhere in the same text is still scored.
_COMM = (r"(?:e ?mails?|messages?|lines?|notes?|texts?|dms?|reminders?|invites?|invitations?|links?|"
         r"updates?|calls?|questions?|photos?|pics?|pictures?|replies|reply|feedback|quotes?|coupons?|"
         r"codes?|details|info|confirmations?|receipts?)")
_PROMO = (r"(?:deals?|offers?|savings?|discounts?|news|updates?|styles?|prices?|coupons?|codes?|bargains?|"
          r"perks?|rewards?|drops?|releases?|freebies|gifts?|looks?|sales?|value)")
_IDIOMS = re.compile("|".join(rf"(?:{p})" for p in [
    r"\bkiller (?:deals?|prices?|savings?|offers?|sales?|discounts?|bargains?|workouts?|abs|looks?|style|"
    r"views?|app|apps|features?|combo|lineup|collection|playlist|recipes?|flavou?rs?|heels|outfits?|smile|"
    r"bundle|value|whales?|bees?|instinct|fries|sound|cardio|legs|arms|glutes)\b",
    r"\b(?:weed|bug|germ|pain|odou?r|weed and grass|mold|mould) ?killers?\b",
    r"\bto die for\b", r"\bdressed to kill\b", r"\bdrop dead (?:gorgeous|beautiful|stunning|sexy|handsome)\b",
    rf"\bshoot(?:s|ing)? (?:us|me|him|her|them|you|u) (?:(?:a|an|the|our|your|over|back|some|quick|"
    rf"short|brief|little|friendly)\s+){{0,3}}{_COMM}\b",
    r"\bphoto ?shoots?\b", r"\bshoot(?:ing)? for the (?:stars|moon)\b", r"\bshoot(?:ing)? hoops\b",
    r"\b(?:shoot|shooting) (?:photos|video|videos|a video|pictures|footage|the breeze)\b",
    r"\bblow ?outs?\b", r"\bknock ?outs?\b", r"\bknock(?:s|ed|ing)? (?:'?em|them) dead\b",
    r"\bknock(?:s|ed|ing)? (?:your|the|their) socks off\b", r"\bknock(?:s|ed|ing)? (?:you|u) out with\b",
    r"\bblow(?:s|n)? (?:you|u|them|'?em) away\b",
    r"\bcrush(?:ing|ed|es)? it\b",
    r"\bcrush(?:ing|ed|es)? (?:your|the|those|these|all|my|our|their) (?:\w+ )?(?:goals?|workouts?|day|"
    r"week|competition|to do|lists?|cravings?|fitness|targets?|quotas?|pbs?|records?|miles)\b",
    r"\bbang for (?:your|the|my|our) bucks?\b",
    r"\bslash(?:ed|ing|es)? (?:\w+ )?(?:prices?|rates?|fees?|costs?|bills?)\b", r"\bprices? slashed\b",
    r"\b(?:dying|die|dyin) (?:to|2) (?:hear|know|see|try|show|share|meet|tell|get|find out|taste|welcome)\b",
    r"\b(?:is|are|'re|'s|was) dying (?:of|for) (?:loneliness|attention|a refill|an upgrade|you)\b",
    r"\bhit(?:s|ting)? (?:the )?(?:trails?|slopes?|gym|road|beach|shops?|stores?|waves?|pool|track|books|"
    r"hay|sack|mall|links|town|stage|jackpot|ground running|snooze|spot|mark|button|refresh|save|send|"
    r"target|sweet spot|shelves|dance floor|court|field|lanes?|pavement|open road|water)\b",
    rf"\bhit(?:s|ting)? (?:you|u|them|'?em) with (?:(?:our|the|some|a|an|more|even|big|huge|great|"
    rf"amazing|exclusive|fresh|new|best|latest|special|fall|summer|spring|winter|"
    rf"holiday)\s+){{0,3}}{_PROMO}\b",
    r"\battack(?:s|ing)? (?:the |your |any |those |tough )?(?:mountains?|slopes?|trails?|day|week|"
    r"workouts?|stains?|grime|dirt|clutter|mess|wrinkles|frizz|dandruff|germs|odou?rs?|hills?|climbs?|"
    r"course|season|summit|inbox|laundry|weeds)\b",
    r"\b(?:heart|panic|asthma|anxiety|allergy|shark) attacks?\b",
    r"\bexplosive (?:savings?|sales?|growth|flavou?rs?|deals?|performance|power|results?|taste|sound|"
    r"speed|energy|workouts?)\b",
    r"\bkill(?:s|ed|ing)? it\b", r"\b(?:is|are|'re|'s|was|were) killing (?:me|us)\b",
    r"\bkill(?:s|ing)? (?:some )?time\b", r"\bkill(?:s|ing)? the (?:lights|engine|music|game|look|"
    r"competition|mood|vibe)\b", r"\bmake (?:a )?killing\b|\bmade a killing\b|\bmaking a killing\b",
    r"\bkill(?:s|ed|ing)? (?:up to )?(?:\d+(?:\.\d+)? ?%? ?(?:of )?)?(?:all |the |most |household |common )?"
    r"(?:germs|bacteria|viruses|virus|mold|mould|weeds?|bugs|pests|insects|mosquito(?:e)?s|fleas|ticks|"
    r"lice|odou?rs?|roaches|ants|flies|spiders|dandelions|grubs|mites|fungus|algae|the smell|cravings?)\b",
    r"\bwake the dead\b", r"\bhit(?:s|ting)? (?:you|u|me|us|them|'?em) up\b",
    r"\b(?:die|dying|died) (?:laughing|of (?:laughter|envy|jealousy|boredom|"
    r"embarrassment|happiness)|happy)\b",
    r"\b(?:kill|killing) for (?:these|this|that|a|an|the|one|it|them)\b",
    r"\bsteal(?:s)? (?:the show|of a deal|the spotlight)\b", r"\bfire sales?\b",
    r"\b(?:bath|flavou?r|glitter|seed|calorie|photo|truth|cherry|cocoa|confetti) ?bomb(?:s|ed|ing)?\b",
    r"\bda bomb\b", r"\bbomb(?:shell)? (?:deals?|dress|looks?)\b",
    r"\bshop (?:till|til|until|'?til) (?:you|u) drop\b", r"\bdead ?lines?\b", r"\bdead sea\b",
    r"\bdead (?:tired|right|on|serious|set|center|centre|certain|simple|easy|quiet|ends?|skin|batter(?:y|"
    r"ies))\b",
    r"\bcut(?:s|ting)? (?:yourself|urself) (?:a|an|some) (?:slice|piece|break|deal|discount|wedge)\b",
    r"\b(?:packs?|packed|packing) a punch\b", r"\bfruit punch\b", r"\bpunch (?:cards?|lines?|bowls?|list)\b",
    r"\btake a stab at\b", r"\bstab at (?:it|this|that)\b",
    r"\bblood (?:orange|oranges|pressure|sugar|type|tests?|work|drive|donors?|donations?|bank|moon|red|"
    r"cells?|glucose|flow|circulation|panel|count)\b",
    r"\b(?:murder|crime) myster(?:y|ies)\b", r"\bbullet (?:points?|journals?|proof|train|list)\b",
    r"\b(?:glue|massage|spray|nail|heat|water|squirt|nerf|staple|caulk|grease|tape|top) guns?\b",
    r"\bnaked (?:juice|cake|cakes|eye|truth|palette|bar|bars|wines?|grape)\b",
    r"\bnude (?:lipsticks?|shades?|heels|pumps|tones?|colou?rs?|palettes?|makeup|lips?|lipliner|nails|"
    r"polish|beige|bras?|underwear|sandals|flats|blush|gloss)\b",
    r"\b(?:magna |summa )?cum laude\b", r"\bhardcore (?:fans?|workouts?|training|gamers?|hikers?|fitness)\b",
    r"\bsmoking hot\b", r"\bcrack (?:open|the code|a smile|a joke)\b",
    r"\bhook(?:s|ed|ing)? (?:it |them )?up (?:to |with )?(?:your|the|a|an|our|any) (?:\w+ )?(?:tv|speakers?|"
    r"devices?|printer|console|phone|laptop|router|stereo|hose|grill|trailer|camera|system|sink)\b",
    r"\bhunt(?:s|ing)? (?:down )?(?:the |a |your )?(?:perfect|best|bargains?|deals?|gifts?)\b",
]))

_INTENT = (r"(?:i\s?'?ll|i will|ill|i'?m (?:going to|gonna|about to|coming to)|im (?:going to|gonna)|"
           r"i am (?:going to|gonna|about to)|gonna|going to|we'?ll|we will|we'?re (?:going to|gonna)|"
           r"we are going to|let'?s|lets|we should|we must|we need to|we have to|we ought to|"
           r"you should|u should|someone should|somebody should|someone needs to|somebody needs to|"
           r"someone ought to|i want to|i wanna|we want to|i'?d love to|i'?d like to|i plan to|"
           r"i'?m planning to|i intend to|i swear i'?ll|will|should|must|wanna|gotta|got to|have to|"
           r"need to|ought to|time to|go|deserves? to|i'?m gonna)")
_INTENT_BEFORE = re.compile(rf"(?:^|\W){_INTENT}(?:\s+[\w']+){{0,3}}\s+$")
_NEGATION_BEFORE = re.compile(r"(?:^|\W)(?<!why )(?:don'?t|do not|never|without|avoid|won'?t|wouldn'?t|"
                              r"not|no need to|careful not to|stop|how not to|rather than|instead of)"
                              r"(?:\s+[\w']+){0,2}\s+$")

_PERSON_NOUN = (r"(?:guys?|man|men|woman|women|girls?|boys?|kids?|child|children|bab(?:y|ies)|people|person|"
                r"persons|folks|managers?|boss|bosses|cashiers?|clerks?|drivers?|neighbou?rs?|teachers?|"
                r"cops?|police|officers?|wife|husband|famil(?:y|ies)|mom|dad|mother|father|brother|sister|son|"
                r"daughter|co ?workers?|colleagues?|staff|employees?|workers?|customers?|protesters?|"
                r"students?|bitch|bastard|idiot|jerk|owners?|ceo|landlord|ex|girlfriend|boyfriend|president|senator|"
                r"mayor|judge|journalists?|reporters?|doctors?|nurses?|priests?|imams?|rabbis?|fags?|kid)")
_GROUP = (r"(?:immigrants?|migrants?|refugees?|foreigners?|aliens|illegals|muslims?|moslems?|islamists|jews?|"
          r"jewish people|christians?|catholics?|hindus?|sikhs?|buddhists?|atheists?|blacks|black people|"
          r"black folks|whites|white people|asians?|asian people|mexicans?|latinos?|latinas?|hispanics?|"
          r"arabs?|africans?|chinese(?: people)?|indians?|pakistanis?|gypsies|gipsies|roma|romani|gays?|"
          r"gay people|gay men|(?:brown|yellow|colou?red|black|white) (?:people|folks|men|women|kids)|"
          r"lesbians?|homosexuals?|bisexuals?|trans people|transgender people|"
          r"transgenders?|trans women|trans men|trannies|queers?|lgbt people|women|females|men|males|"
          r"disabled (?:people|folks|persons|kids)|the disabled|cripples|autistic people|retards|"
          r"the poor|poor people|old people|"
          r"(?:those|these|their|such) people|their kind|natives|aboriginals?|indigenous people|slavs|"
          r"haitians?|somalis?|syrians?|afghans?|palestinians?|israelis?|jamaicans?|irish|italians?|"
          r"poles|russians?|ukrainians?|koreans?|japanese|filipinos?|vietnamese|nigerians?)")
_GROUP_SUBJECT = (rf"(?:(?:all|every|each|any|most|the|these|those) )?{_GROUP}(?: (?:person|people|man|men|"
                  r"woman|women|one|guy|guys|kid|kids|folks))?")
_TARGET = re.compile(
    r"(?:\s+(?:all|of|the|crap|shit|hell|living|daylights|out|every|single|one|last|up|down|both|"
    r"fucking|damn|goddamn|bloody|right|now|again|whole))*\s+"
    rf"(?:(?:you|u|ya|y'?all|him|them|'?em|everyone|everybody|anyone|anybody)(?![\w'])|"
    r"her(?=\s*(?:$|[.!?,;]|\s(?:and|with|to|in|at|until|if|so|for|tonight|now|again|up|down|out|"
    r"too|right)\b))|"
    rf"(?:(?:the|that|this|those|these|my|his|her|your|ur|their|our|every|some|all|a|all the)\s+)"
    rf"(?:[\w']+\s+)?{_PERSON_NOUN}\b|"
    r"(?:your|ur|his|her|their)\s+(?:\w+\s+)?(?:face|head|skull|neck|throat|legs?|arms?|knees?|"
    r"kneecaps?|teeth|jaw|ribs|spine|fingers?|eyes?|kids|children|family|wife|husband)\b|"
    rf"(?:all\s+)?{_GROUP}\b)")


@dataclass(frozen=True)
class _Rule:
    """A lexicon entry or context pattern: a regex over normalized text and per-category severities."""

    label: str
    regex: re.Pattern[str]
    severities: Mapping[str, int]
    intent_boost: bool = False  # +1 when preceded by intent ("we're going to torch your shop")
    negatable: bool = False  # drops to 1 after a negation ("don't hurt yourself lifting boxes")


@dataclass(frozen=True)
class _Verb:
    """A violent verb; severity grows with intent before it and a person/group target after it."""

    label: str
    base: re.Pattern[str]
    inflected: re.Pattern[str]
    weight: int


def _rule(label: str, pattern: str, intent_boost: bool = False, negatable: bool = False,
          **severities: int) -> _Rule:
    unknown = set(severities) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"rule {label!r}: unknown categories {sorted(unknown)}")
    return _Rule(label, re.compile(pattern), MappingProxyType(severities), intent_boost, negatable)


def _lexicon(category: str, weighted_terms: Mapping[str, int], prefix: str = "term") -> list[_Rule]:
    """One rule per lexicon term; terms are regex fragments matched on word boundaries."""
    return [_rule(f"{prefix}: {_term_label(term)}", rf"(?<![\w'])(?:{term})(?![\w'])", **{category: weight})
            for term, weight in weighted_terms.items()]


def _term_label(term: str) -> str:
    """Readable label for a lexicon regex: its first alternative without regex syntax."""
    return re.sub(r"[^a-z ]", "", re.split(r"[(|\[?]", term)[0]).strip() or term


def _verb(label: str, base: str, inflected: str, weight: int) -> _Verb:
    return _Verb(label, re.compile(rf"(?<![\w'])(?:{base})(?![\w'])"),
                 re.compile(rf"(?<![\w'])(?:{inflected})(?![\w'])"), weight)


# Slurs are stored ROT13-encoded so the source stays readable for reviewers (decode with codecs).
_SLURS_ROT13 = {
    "avttre": 6, "avttn": 5, "fnaqavttre": 6, "xvxr": 6, "fcvp": 5, "puvax": 5, "tbbx": 5, "jrgonpx": 6,
    "ornare": 5, "enturnq": 5, "gbjryurnq": 5, "snttbg": 6, "snt": 4, "qlxr": 4, "genaal": 5,
    "ergneq": 4, "ergneqrq": 4, "pbba": 4, "cnxv": 5, "wnc": 4, "xenhg": 3, "tlccb": 5, "cvxrl": 4,
    "furznyr": 4, "mvccreurnq": 5, "ubaxl": 4, "jbc": 4, "qntb": 4, "zhmmvr": 5,
}


def _slur_rules() -> list[_Rule]:
    """One rule per severity level; each slur also matches its plural ("-s", "-es", "-y" -> "-ies")."""
    by_weight: dict[int, list[str]] = {}
    for encoded, weight in _SLURS_ROT13.items():
        word = codecs.decode(encoded, "rot13")
        form = f"{word[:-1]}(?:y|ies)" if word.endswith("y") else f"{word}(?:e?s)?"
        by_weight.setdefault(weight, []).append(form)
    return [_rule("slur", rf"(?<![\w'])(?:{'|'.join(sorted(forms))})(?![\w'])", hate=weight)
            for weight, forms in sorted(by_weight.items())]


_SLUR_RULES = _slur_rules()

_PLACE = (r"(?:homes?|house|houses|shops?|stores?|cars?|business(?:es)?|offices?|church(?:es)?|mosques?|"
          r"synagogues?|temples?|schools?|places?|buildings?|neighbou?rhoods?|warehouses?|malls?|"
          r"factor(?:y|ies)|stations?|clinics?|banks?|restaurants?|bars?|clubs?|campus|headquarters|hq|"
          r"plants?|embass(?:y|ies)|trucks?|vans?|vehicles?|fleet|lorr(?:y|ies)|courthouses?|hospitals?|airports?|stadiums?|trains?|buses|"
          r"branch(?:es)?|locations?|apartments?|flats?|village|town|city)")
_SELF = r"(?:yourself|urself|your self|ur self|yourselves|yo self)"
_ELIM_KILL = (r"(?:exterminated|wiped out|eradicated|eliminated|gassed|killed|purged|shot|hanged|hung|"
              r"burned|burnt|lynched|slaughtered|executed|put down|put in (?:camps|ovens)|lined up and shot|"
              r"thrown off (?:\w+ )?(?:buildings|roofs|rooftops|cliffs|bridges|towers)|burned alive|"
              r"put to death|drowned|stoned|exterminated like \w+|beaten|hunted down|strung up|bombed|nuked|"
              r"sent to (?:the )?(?:ovens|camps|gas chambers|concentration camps)|wiped off (?:the face of )?"
              r"(?:the earth|the planet|the map)|erased|annihilated)")
_ELIM_EXPEL = (r"(?:deported|removed|banned|locked up|sterili[sz]ed|rounded up|thrown out|kicked out|"
               r"sent back|segregated|expelled|caged)")
_DEHUMANIZE = (r"(?:vermin|animals|beasts|savages|subhuman|sub human|not human|less than human|parasites|"
               r"cockroaches|roaches|rats|rodents|insects|lice|leeches|maggots|pigs|dogs|apes|monkeys|"
               r"filth|scum|trash|garbage|a disease|a plague|a cancer|a virus|an infestation|a pest|pests|"
               r"subhumans|animals not humans|not people|cattle|useless eaters|breeders|baby factories|bugs|"
               r"termites|locusts|a swarm|an invasion|germs|dirt|a drain|a blight|a stain)")
_DEMEAN = (r"(?:criminals|rapists|terrorists|thieves|invaders|inferior|degenerates?|mentally ill|freaks|"
           r"worthless|disgusting|dirty|evil|a burden|stupid|dumb|lazy|sick|perverts|pedophiles|"
           r"groomers|the enemy|a threat|ruining (?:everything|this country|our country)|useless)")

_RULES: list[_Rule] = [
    # ---- violence: context patterns ----
    _rule("threat: knows where target lives", r"\b(?:i|we)\b(?:\s+[\w']+){0,3}\s+(?:know|found out|"
          r"have) (?:where|your address)(?: (?:you|u|he|she|they) (?:live|lives|sleep|sleeps|work|works))?",
          violence=5),
    _rule("threat: you are dead", r"\b(?:you|u)(?:'re| are| r|re) (?:so )?(?:dead(?! (?:tired|right|on|"
          r"serious|set|center|certain|wrong|sexy|last|gorgeous|cute|simple|easy))|dead meat|a dead man|"
          r"finished|going to die|gonna die|next(?! (?:in line|up|on|to|week|month|time)))\b", violence=5),
    _rule("threat: you will suffer", r"\b(?:you|u)(?:'ll| will| are going to| r gonna|'re gonna) "
          r"(?:die|bleed|suffer|regret (?:this|it|that|the day)|pay for (?:this|that|it)|be sorry)\b",
          violence=4),
    _rule("threat: watch your back", r"\b(?:watch your back|sleep with one eye open|better watch out|"
          r"you(?:'ve| have) been warned|count your days|your days are numbered)\b", violence=4),
    _rule("incitement: arson/destruction of homes or places",
          r"\b(?:burn|burns|burning|torch|torches|torching|firebomb|firebombs|bomb|bombs|blow up|blows up|"
          r"smash up|vandali[sz]e|shoot up)(?: down)? (?:your|their|his|her|the|that|those|these|every|our) "
          rf"(?:\w+ )?{_PLACE}\b", violence=5, intent_boost=True),
    _rule("mass violence: shoot up a place", r"\bshoot(?:s|ing)? up (?:the|a|that|this|our|your|my|his|"
          r"their) (?:\w+ )?(?:school|store|mall|office|church|mosque|synagogue|warehouse|place|party|"
          r"concert|club|building|class|work)\b", violence=7),
    _rule("weapon instructions", r"\b(?:how to|ways? to|instructions?(?: for| to|:)?|guide to|steps to|"
          r"learn to) (?:make|build|assemble|construct|put together)?\s?(?:a |an |your own )?(?:pipe |"
          r"nail |car |homemade |home made |fertili[sz]er |pressure cooker )?(?:bomb|explosives?|"
          r"molotovs?|molotov cocktails?|ied|detonators?|napalm|ghost gun)\b", violence=6),
    _rule("incitement: should be harmed", rf"\b(?:should|must|need to|needs to|ought to|deserves? to|"
          rf"has to|have to|gotta)(?: all)? (?:be|get) (?:beaten|{_ELIM_KILL}|stabbed|murdered|tortured|"
          r"raped|beaten up|run over|strung up|shot dead)\b", violence=5),
    _rule("graphic violence", r"\b(?:(?:slit|slits|slitting|cut|ripped|tore|torn|sliced|gouged) (?:open )?"
          r"(?:his|her|their|your|its) (?:throats?|guts|heads?|hearts?|eyes? out|stomachs?)|blood "
          r"(?:everywhere|all over|pooling|spurting|splattered|gushing|pouring)|beheaded|decapitated|"
          r"dismembered|disembowell?ed|bashed (?:his|her|their) (?:head|skull) in|brains? (?:splattered|"
          r"blown out)|guts (?:spilling|hanging) out)\b", violence=5),
    _rule("violence: to death", r"\b(?:beat|beaten|beating|stab|stabbed|stabbing|burn|burned|burnt|kick|"
          r"kicked|choke|choked|strangle|strangled|torture|tortured|whip|whipped|stone|stoned|bludgeon|"
          r"bludgeoned)(?:\s+[\w']+){0,3} to death\b", violence=5, intent_boost=True),
    _rule("incitement: take up arms", r"\b(?:grab|get|load|bring|take up) (?:your|our|the|my|their) "
          r"(?:guns|rifles|weapons|arms|pitchforks|machetes)\b|\btake up arms\b|\block and load\b",
          violence=3),
    _rule("lethal threat idiom", r"\b(?:put|puts|putting) (?:a |one |two |some )?(?:bullets?|rounds?|a knife|"
          r"a blade|a hole) (?:in|into|through|between) (?:your|his|her|their|that|the|this|those|these|"
          r"ur)\b|\b(?:put|send|puts|sending|putting) (?:you|him|her|them|u|(?:the|that|this|your|his|her) "
          r"\w+) (?:six feet under|(?:in|into) (?:the|a) (?:ground|hospital|body bag|morgue|wheelchair|coma|"
          r"grave|icu|emergency room))\b|\b(?:break|snap|crush|shatter)(?:\s+\w+){0,2} bones? in (?:your|"
          r"ur|his|her|their) body\b|\b(?:you|he|she|they)(?:'ll| will) (?:end up|be) (?:six feet under|in "
          r"a body bag|in the morgue)\b", violence=6),
    _rule("harm as deserved", r"\b(?:needs?|deserves?|is getting|gonna get|will get|going to get|asking "
          r"for|earned) (?:a |an |some )?(?:bullet|beating|bullets|knife|noose|rope|ass ?whooping|"
          r"whooping|bullet in (?:the|his|her) head|(?:a )?bat to the (?:head|face))\b", violence=5),
    _rule("dehumanizing violence simile", r"\b(?:kill|hunt|shoot|slaughter|put down|beat|treat|gut|"
          r"butcher)(?:s|ed|ing)? (?:you|u|him|her|them|em)(?: down)? like (?:a |the )?(?:dogs?|animals?|"
          r"pigs?|rats?|vermin|cattle)\b", violence=5),
    _rule("property will burn", rf"\b(?:your|ur|their|his|her) {_PLACE} (?:burns|will burn|'ll burn|is "
          r"going to burn|gonna burn|goes up in flames|will go up in flames|gets? (?:torched|burned|"
          r"bombed|blown up)|blows up|will blow up)\b", violence=5),
    _rule("stalking with weapon", r"\b(?:waiting|wait|lurking|coming|come|show up|showing up|see you)\b"
          r"[^.!?]{0,15}\b(?:outside|for (?:you|u)|at (?:your|ur)|behind|in (?:your|ur))\b[^.!?]{0,40}"
          r"\bwith (?:a|my|the) (?:knife|gun|bat|axe|hammer|machete|rifle|pistol|crowbar|blade|shotgun)\b",
          violence=6),
    _rule("watch them suffer", r"\b(?:see|watch|make|hear) (?:you|u|him|her|them|that \w+|the \w+|"
          r"your \w+) (?:bleed|die|suffer|burn|scream|beg for (?:mercy|(?:his|her|their|your) life))\b",
          violence=5),
    _rule("violent phrasal verb", r"\b(?:run|mow|gun|beat|cut|tie|string|shoot|smoke) (?:you|u|him|"
          r"her|them|em) (?:over|down|up|out)\b(?! (?:to|for) (?:dinner|lunch|a|the|our|\w+ing))", violence=3,
          intent_boost=True),
    _rule("slang kill verb", rf"\b(?:pop|cap|smoke|whack|waste|shank|merk|body|off) (?:him|her|you|u|"
          rf"(?:that|this|the) (?:\w+ )?{_PERSON_NOUN})\b", violence=4, intent_boost=True),
    _rule("coming for you", r"\b(?:we'?re|i'?m|we are|i am|they'?re|they are) coming for (?:you|u|your|"
          r"ur)\b", violence=4),
    _rule("family named in threat", r"\b(?:and|&) (?:your|ur) (?:whole )?(?:kids|family|children|wife|"
          r"husband|mom|mother)\b", violence=3),
    _rule("face beating", r"\b(?:rearrange|break|smash|bash|knock|punch|kick|cave|bust|beat) (?:in )?"
          r"(?:your|ur|his|her|their|(?:that|the|this) \w+'s) (?:\w+ )?(?:face|nose|jaw|teeth|skull|head)"
          r"(?: in| out)?\b", violence=5,
          intent_boost=True),
    _rule("acid attack", r"\b(?:throw|splash|pour)(?:s|ing)? (?:acid|bleach|boiling water|lye) (?:in|on|at|"
          r"into) (?:your|ur|his|her|their|the) (?:face|eyes)\b", violence=6),
    _rule("bomb making", r"\b(?:building|making|build|make|made|built|assembling|assemble)(?: a| an| my| "
          r"some)? (?:pipe |homemade |nail |car )?(?:bombs?|explosives?|ieds?)\b", violence=5),
    _rule("passive harm", r"\b(?:gets?|will get|gonna get|is getting|is going to get) (?:stabbed|shot|killed|"
          r"murdered|beaten|hurt|strangled|burned|jumped|shanked)\b", violence=4),
    _rule("lynching", r"\bhang (?:\w+ ){0,2}from (?:a |the )?(?:\w+ )?(?:tree|trees|lamppost|lampposts|"
          r"bridge|rafters|streetlights?)\b", violence=6),
    _rule("armed and coming", r"\b(?:loading|loaded|cleaning|sharpening|grabbing|got|bought) (?:my|a|the) "
          r"(?:gun|rifle|pistol|shotgun|knife|machete|ar ?15|glock)\b[^.!?]{0,60}\b(?:see you|for you|"
          r"for u|coming for|waiting for|at your)\b", violence=5),
    _rule("set on fire", r"\bset (?:you|u|him|her|them|em|\w+) (?:on fire|alight|ablaze)\b|\bburn "
          r"(?:you|u|him|her|them|em) alive\b|\bdouse (?:you|u|him|her|them) in (?:gas|gasoline|petrol)\b",
          violence=6, intent_boost=True),
    _rule("bringing a weapon to a place", r"\b(?:bring|bringing|brought|taking|take|carry|carrying|coming "
          r"with) (?:my|a|the|his|our|some) (?:loaded )?(?:gun|guns|rifle|pistol|knife|machete|weapon|"
          r"weapons|ar ?15|shotgun|bomb) (?:to|into|in) (?:your|the|their|his|her|our|that|this|school|"
          r"work|class|church)\b", violence=5),
    _rule("passive threat", r"\b(?:you|u|your (?:\w+ )?(?:family|kids|children|wife|husband|mom|dad|"
          r"friends|staff|employees|workers|store|shop|house|home)|he|she|they|everyone)(?:'re|'s| is| are|"
          r"'ll| will| gonna| going to| is going to| are going to| will soon)(?: \w+)? (?:get|be|end up) "
          r"(?:hurt|killed|shot|stabbed|beaten|murdered|burned|burnt|blown up|bombed|tortured|raped|"
          r"beaten up|dead)\b", violence=5),
    _rule("wish of harm", r"\b(?:i hope|hope|i wish|wish|may|pray that|praying that) (?:someone|somebody|"
          r"a \w+|they|you|u|he|she|your \w+)\b[^.!?]{0,25}\b(?:kills?|killed|stabs?|stabbed|shoots?|shot|"
          r"beats?|beaten|rapes?|raped|murders?|murdered|hurts?|runs? (?:you |u |him |her )?over|dies|die|"
          r"burns?|chokes?|gets? (?:shot|stabbed|killed|run over|cancer|hit by a (?:car|bus|truck|train)))\b"
          r"(?! (?:laughing|of laughter|happy|of envy|for))", violence=5),
    _rule("intimidation: show them what happens", r"\bshow (?:them|those|these|him|her|you)(?: \w+)? "
          r"what happens\b|\bteach (?:them|him|her|you|(?:those|these|the|that) \w+) a lesson\b",
          violence=3),
    _rule("armed group", r"\bwith (?:bats|baseball bats|guns|knives|machetes|crowbars|pipes|rifles|weapons|"
          r"pitchforks|torches|clubs|chains)\b", violence=3),
    _rule("beating outcome", r"\b(?:beat|kick|punch|hit|stomp|choke|strangle|stab|whip|hold|drown)\w*\b"
          r"[^.!?]{0,40}\buntil (?:he|she|they|you|u|it) (?:stops? (?:moving|breathing)|can'?t (?:move|walk|"
          r"breathe|stand|see)|bleeds?|dies|die|is dead|are dead|passes out|pass out)\b|\b(?:choke|beat|"
          r"squeeze|kick|knock|strangle|punch)(?:s|ed|ing)? the (?:life|shit|crap|hell|living daylights) out "
          r"of\b", violence=5, intent_boost=True),
    _rule("blood price", r"\bpay (?:in|with) (?:blood|(?:your|their|his|her) (?:lives|life|blood))\b|"
          r"\bnobody (?:leaves|gets out|walks out|makes it out) alive\b|\bno one (?:leaves|gets out|walks "
          r"out) alive\b", violence=6),
    _rule("returning armed", r"\b(?:coming|come|going|show up|showing up|walk in|walking in|be back|"
          r"returning)(?: back)?(?: (?:in|into|to) (?:\w+ )?\w+)? with (?:a|my|the|an) (?:gun|rifle|pistol|"
          r"shotgun|knife|machete|bomb|ar ?15|glock|weapon|axe)\b", violence=5),
    _rule("mutilation", r"\b(?:gouge|rip|tear|pluck|claw|poke|cut|burn)(?:s|ed|ing)? (?:out )?(?:his|her|"
          r"their|your|ur) (?:eyes?|tongue|throat|heart|guts|teeth|fingers?|fingernails|nails)(?: out)?\b",
          violence=5, intent_boost=True),
    _rule("mass target", r"\b(?:kill|shoot|stab|murder|bomb)(?:\s+[\w']+){0,2} (?:everyone|everybody|"
          r"all of (?:you|them)|every last one) (?:at|in|from|who)\b", violence=6, intent_boost=True),
    _rule("threat: weapon against person", r"\b(?:with|using) (?:a|my|the|this) (?:bat|knife|gun|hammer|"
          r"machete|crowbar|axe|blade|pistol|rifle|brick)\b(?=[^.!?]*\b(?:you|him|her|them)\b)|\b(?:you|"
          r"him|her|them) with (?:a|my|the|this) (?:bat|knife|gun|hammer|machete|crowbar|axe|pistol|"
          r"rifle|brick)\b", violence=3),
    # ---- violence: weighted lexicon (mentions; intent/target do not apply) ----
    *_lexicon("violence", {
        "violence": 1, "violent": 1, "bloodshed": 3, "bloodbath": 3, "massacres?": 3, "massacred": 3,
        "genocide": 2, "terrorist attack": 3, "terrorism": 2, "terrorists?": 2, "bombings?": 3,
        "shootings?": 2, "gunman": 2, "homicides?": 2, "assault(?:ed|s)?": 1, "assault rifles?": 2,
        "weapons?": 1, "guns?": 1, "grenades?": 2, "bombs?": 2, "explosives?": 1, "gore": 2,
        "corpses?": 2, "dead bod(?:y|ies)": 2, "blood": 1, "bleed(?:ing)? out": 3, "hostages?": 2,
        "war crimes?": 2, "mutilat(?:e|ed|ion)": 4, "lynch(?:ing|ed)?": 4,
    }, prefix="violence term"),
    # ---- hate: context patterns ----
    _rule("dehumanizing group", rf"\b{_GROUP_SUBJECT} (?:are|is|r|=|were|be)(?: all| just| nothing but| "
          rf"basically| literally| no better than| like| such| truly| simply)* (?:a |an )?(?:[\w']+ ){{0,2}}"
          rf"{_DEHUMANIZE}\b", hate=6),
    _rule("group likened to vermin", rf"\b{_GROUP}\b[^.!?]{{0,50}}\blike (?:a |the |some )?(?:plague|"
          r"cockroaches|roaches|rats|locusts|vermin|animals|parasites|cancer|virus|rabbits|insects|flies|"
          r"cattle|dogs|pigs|apes|monkeys|savages|a disease)\b", hate=6),
    _rule("demeaning generalization about group", rf"\b{_GROUP_SUBJECT} (?:are|is|r|=)(?: all| just|"
          rf" basically| literally| naturally| born| always| nothing but| genetically| too| so| very| "
          rf"really| far too| way too| inherently| clearly| obviously| by nature)* (?:a |an )?"
          rf"(?:[\w']+ (?:and )?)?{_DEMEAN}\b|\b{_GROUP_SUBJECT} (?:are|is) (?:not|never) (?:smart|"
          rf"intelligent|"
          r"capable|human|clean|civili[sz]ed|fit) enough\b", hate=5),
    _rule("group invasion rhetoric", rf"\b{_GROUP_SUBJECT} (?:are|is|keep)(?: \w+)? (?:invading|infesting|"
          r"swarming|flooding|overrunning|breeding like|taking over|destroying|ruining|poisoning|polluting|"
          r"replacing)\b", hate=5),
    _rule("group denied right to live", rf"\b{_GROUP_SUBJECT}\b[^.!?]{{0,40}}\b(?:don'?t|do not|doesn'?t|"
          r"does not) deserve (?:to live|to exist|to breathe|rights|to be here|to live here)\b", hate=6),
    _rule("discrimination against group member", r"\b(?:never|won'?t|wouldn'?t|refuse to|don'?t|will not) "
          r"(?:hire|rent to|serve|date|trust|work with|sell to|let in) (?:a |an |any )?(?:woman|women|"
          r"jew|jews|muslim|muslims|black|blacks|immigrant|immigrants|gay|gays|mexican|mexicans|arab|"
          r"arabs|asian|asians|foreigner|foreigners|trans person|trans people|disabled person)\b", hate=4),
    _rule("group kept in their place", rf"\b{_GROUP_SUBJECT} (?:belong|should stay|should be kept|must "
          r"stay)(?: only)? (?:in the kitchen|barefoot|in chains|in cages|in zoos|in camps|in the fields|in "
          r"their place|at home and silent|out of sight)\b", hate=5),
    _rule("group smell insult", rf"\b{_GROUP_SUBJECT} (?:all )?(?:smell|stink|reek)\b", hate=4),
    _rule("holocaust denial or praise", r"\bhitler (?:was|is) (?:right|a hero)\b|\bholocaust (?:never "
          r"happened|was a hoax|is a lie|didn'?t happen|was fake)\b|\bfinish what hitler started\b|"
          r"\b(?:bring back|reopen) the (?:camps|ovens|gas chambers)\b", hate=6),
    _rule("only good group member", rf"\bthe only good {_GROUP} (?:is|are) (?:a |an )?(?:dead|deported|"
          r"gone|absent|hanged|locked up|silent)\b", hate=6),
    _rule("group should be eliminated", rf"\b{_GROUP}\b[^.!?]{{0,60}}\b(?:should|must|need to|ought to|"
          rf"deserve to|have to|will|gotta)(?: all)? (?:be|get) {_ELIM_KILL}\b", hate=7, violence=6),
    _rule("group should be expelled", rf"\b{_GROUP}\b[^.!?]{{0,60}}\b(?:should|must|need to|ought to|"
          rf"deserve to|have to|gotta)(?: all)? (?:be|get) {_ELIM_EXPEL}\b", hate=5),
    _rule("call to eliminate group", rf"\b(?:exterminate|eradicate|wipe out|gas|kill|slaughter|purge|"
          rf"lynch|hang|shoot|burn|eliminate)(?: all| every| the| these| those| every last| of the| "
          rf"off)* {_GROUP}\b", hate=7, violence=6),
    _rule("call to expel group", rf"\b(?:deport|ban|get rid of|kick out|throw out|round up|lock up|"
          rf"remove|send back)(?: all| every| the| these| those| of the)* {_GROUP}\b|\bkeep (?:the |all |"
          rf"those |these )?{_GROUP} out\b|\b{_GROUP}\b[^.!?]{{0,60}}\b(?:should|must|need to|can|"
          r"better) go (?:home|back)\b", hate=5),
    _rule("call to act against group (pronoun)", rf"\b{_GROUP}\b[^.!?]{{0,80}}\b(?:ban|deport|kill|"
          r"exterminate|gas|get rid of|kick out|lock up|round up|shoot|hang|throw out) (?:them|em|'em)"
          r"(?: all)?\b|\b{_GROUP}\b[^.!?]{{0,80}}\bput (?:them|em|'em) (?:all )?down\b", hate=5),
    _rule("exclusion of group", rf"\bno {_GROUP}(?:(?:,| or| and|, or|, and) {_GROUP})* (?:allowed|welcome|"
          rf"wanted|served|permitted)\b|\b{_GROUP} "
          r"(?:(?:don'?t|do not|doesn'?t|does not) belong|(?:are|is) not welcome|not allowed)\b", hate=5),
    _rule("hatred of group", rf"\b(?:i|we) (?:\w+ )?(?:hate|despise|loathe|can'?t stand)(?: all| the| "
          rf"these| those| every)* {_GROUP}\b", hate=5),
    _rule("xenophobic go-back", r"\bgo back (?:to )?(?:your|their|where (?:you|they) came from|africa|"
          r"mexico|china|your own|their own)\b(?:(?: own)? (?:country|countries|kind|shithole|jungle))?",
          hate=5),
    _rule("slur-like epithet for group", rf"\b(?:dirty|filthy|stinking|disgusting|subhuman|savage|"
          rf"greasy|inbred|illegal) (?:fucking )?(?:{_GROUP}|foreigner|immigrant|jew|muslim|arab|mexican|"
          rf"gay|tranny|migrant|refugee|asian|african|gypsy)\b", hate=5),
    _rule("get group out", r"\bget (?:these|those|the|all|all the|all these) (?:\w+ )?(?:out of|off) "
          r"(?:my|our|this|the)\b", hate=3),
    _rule("supremacist slogan", r"\b(?:heil hitler|sieg heil|white power|master race|race traitors?|"
          r"white genocide|great replacement|gas the|14 ?88|1488)\b", hate=5),
    *_lexicon("hate", {
        "nazis?": 1, "white supremac(?:y|ist|ists)": 2, "ethnic cleansing": 3, "racial purity": 3,
        "hate crimes?": 1, "bigot(?:s|ry)?": 1, "racist": 1, "idiots?": 1, "morons?": 1, "losers?": 1,
        "stupid": 1, "bitch(?:es)?": 2, "cunts?": 3, "whores?": 2, "sluts?": 2, "bastards?": 1,
        "assholes?": 2, "dumbass": 1, "fuck (?:you|u|off|them)": 3, "scumbags?": 2,
    }, prefix="hate term"),
    *_SLUR_RULES,
    # ---- self-harm: context patterns ----
    _rule("self-harm encouragement", rf"\b(?:you should|u should|you need to|u need to|you ought to|"
          rf"just|go|go and|go ahead and|why don'?t you|why not|pls|please|plz|do us a favou?r and|"
          rf"do everyone a favou?r and|do the world a favou?r and|better|might as well)(?:\s+[\w']+)?"
          rf"\s+(?:kill|hang|hurt|cut|starve|off|drown|shoot|poison|burn|end|harm) {_SELF}\b", self_harm=7,
          negatable=True),
    _rule("self-harm directive", rf"\b(?:kill(?:s|ing)?|hang(?:s|ing)?|hurt(?:s|ing)?|cut(?:s|ting)?|"
          rf"starv(?:e|es|ing)|off(?:s|ing)?|drown(?:s|ing)?|shoot(?:s|ing)?|poison(?:s|ing)?|burn(?:s|ing)?|"
          rf"harm(?:s|ing)?|end(?:s|ing)?) {_SELF}\b", self_harm=6, negatable=True),
    _rule("end your life push", r"\b(?:end|take|ending|taking) (?:your|ur) (?:own )?life\b(?! (?:to|back|"
          r"into|in|up|with|further|forward|outdoors|on the road|by storm))", self_harm=6,
          negatable=True),
    _rule("self-harm abbreviation", r"(?<![\w'])kys(?![\w'])", self_harm=6),
    _rule("wish of death", r"\b(?:go|just|please|pls) (?:die|drop dead|jump off a (?:bridge|cliff|roof)|"
          r"rot)\b|\bdo (?:everyone|us|the world) a favou?r and (?:die|disappear|vanish|jump)\b|"
          r"\bdie already\b|\bi hope you die\b|\bhope (?:you|u) (?:die|get cancer|choke)\b", self_harm=5),
    _rule("worthlessness push", r"\b(?:nobody|no one|noone) (?:would|will|is going to|gonna)? ?(?:miss|care"
          r" about|notice|cry for|mourn) (?:you|u)\b|\b(?:the )?world (?:would be|is|'d be) better (?:off )?"
          r"without (?:you|u)\b|\b(?:nobody|no one) (?:would|will)? ?(?:care|notice) if (?:you|u) "
          r"(?:died|were gone|disappeared)\b", self_harm=4),
    _rule("end-it push", r"\b(?:so|just|go|you should|u should|why don'?t you|then) end it(?: all)?\b",
          self_harm=5),
    _rule("self-harm ideation", r"\bi(?:'?m| am)?(?: \w+)? (?:want|wanna|going|gonna|plan|planning|"
          r"about|ready|thinking about|decided|deserve|need)(?: to)? (?:kill myself|end my life|end it "
          r"all|end it|commit suicide|hang myself|cut myself|hurt myself|overdose|die|disappear forever|"
          r"not wake up)\b", self_harm=4, negatable=True),
    _rule("self-harm first person", r"\b(?:kill|hang|cut|hurt|starve|killing|cutting|hurting|starving|"
          r"harming) myself\b", self_harm=4, negatable=True),
    _rule("self-harm plan timing", r"\b(?:kill myself|end my life|end it all|commit suicide|overdose)\b"
          r"[^.!?]{0,30}\b(?:tonight|tomorrow|this weekend|today|soon|next week|before)\b", self_harm=5),
    _rule("suicide method", r"\b(?:how|ways?|best way|easiest way|quickest way|fastest way|painless way|"
          r"tips?|guide|methods?) to (?:kill (?:yourself|myself|urself)|commit suicide|end (?:your|my|ur) "
          r"life|die|cut (?:deeper|yourself|myself)|hang (?:yourself|myself)|overdose|od|slit)\b",
          self_harm=6),
    _rule("overdose push", r"\b(?:take|swallow|down|taking|swallowing)(?: all| a whole bottle of| a "
          r"bottle of| the whole bottle of| \d+ of| a bunch of| a handful of| handfuls of| lots of| a lot of|"
          r" way too many| too many)(?: your| the| my| ur)?(?: [\w']+'s)? (?:pills|meds|medication|"
          r"tablets|sleeping pills|painkillers|tylenol|acetaminophen|paracetamol|ibuprofen|aspirin|xanax|"
          r"oxy|opioids|insulin)\b|"
          r"\boverdose on (?:your|ur|my|the|all|some)? ?(?:meds|pills|medication|insulin|"
          r"tylenol|painkillers|sleeping pills)\b", self_harm=5),
    _rule("cutting method", r"\bslit (?:your|ur|my|their) wrists?\b|\bcut (?:deeper|along the veins?)\b|"
          r"\b(?:cut|slice|slash|carve|open)(?:s|ing)? (?:up |open )?(?:your|ur|my) (?:wrists?|arms?|thighs?|"
          r"veins?|skin|legs?)\b|\brazors? (?:to|on|across) (?:your|ur|my) "
          r"(?:skin|wrists?|arms?|thighs?)\b", self_harm=6),
    _rule("suicide method question", r"\bhow (?:many|much) (?:[\w']+ ){0,3}(?:does it take|do i need|would"
          r" it take|to take|should i take|until) (?:to )?(?:die|overdose|kill|od|not wake up|be fatal|"
          r"stop (?:my|your) heart)\b", self_harm=6),
    _rule("lethal jump", r"\b(?:jump|throw yourself|lie down|step|walk) in front of (?:a |the )?(?:train|bus|"
          r"truck|car|subway)\b|\b(?:jump|throw yourself) off (?:a |the |of a )?(?:bridge|roof|cliff|"
          r"building|balcony|tower|overpass)\b", self_harm=6, negatable=True),
    _rule("self-harm coping", r"\b(?:cut|cutting|burn|burning|hurt|hurting|scratch|scratching)(?: myself)?"
          r"(?: again)? when (?:i|i'm) (?:feel|get|am)(?: so| really)? (?:bad|sad|down|low|numb|empty|"
          r"anxious|"
          r"worthless|overwhelmed|upset|depressed)\b|\brazors?(?: blades?)?\b[^.!?]{0,40}\bto cut\b(?! "
          r"(?:\w+ )?(?:hair|beard|paper|fabric|tape|boxes|box|coupons))", self_harm=5),
    _rule("death wish ideation", r"\bi (?:don'?t|do not) want to (?:be alive|live|exist|wake up)\b|\bi "
          r"(?:want|wanna|wish i (?:could|was|were)) (?:to )?(?:disappear forever|be dead|not exist|stop "
          r"existing|never wake up)\b|\bi wish i (?:was|were) dead\b|\b(?:no|not any) (?:reason|point) "
          r"(?:to|in) (?:live|living|going on)\b|\b(?:sleep forever|never wake up|eternal sleep|end the "
          r"pain forever)\b", self_harm=4),
    _rule("eating-disorder push: ignore body", r"\bignore (?:the |your )?(?:dizziness|hunger|fainting|"
          r"hunger pains?|hunger pangs|your body|headaches)\b|\b(?:best|only|fastest|quickest) way to "
          r"(?:get|be|stay) (?:skinny|thin|bony|underweight)\b|\buntil (?:you|u) can see (?:your|ur) "
          r"(?:ribs|bones|collarbones|hip bones)\b", self_harm=4),
    _rule("better off without you", r"\bwould be (?:so much |much |a lot )?(?:happier|better(?: off)?|"
          r"easier)\b[^.!?]{0,20}\b(?:if|without) (?:you|u)\b", self_harm=4),
    _rule("do it push", r"\b(?:just|so|go|now|then) do it(?: already| tonight| now| today)?\b|\bdo it "
          r"already\b", self_harm=3),
    _rule("question of being alive", r"\bwhy (?:are|r) (?:you|u) (?:still )?alive\b|\bwhy (?:don'?t|dont) "
          r"(?:you|u) (?:just )?die\b|\b(?:you|u) (?:should|ought to) (?:be dead|not exist|not be alive)\b|"
          r"\b(?:you|u) (?:don'?t|do not) deserve to (?:live|exist|be alive)\b", self_harm=5),
    _rule("worthless taunt", r"\b(?:you'?re|you are|ur|u r) (?:such )?(?:a burden|worthless|pathetic|a "
          r"waste of (?:space|air|oxygen)|useless)\b|\b(?:nobody|no one) (?:loves|likes|wants) (?:you|u)\b|"
          r"\beveryone hates (?:you|u)\b", self_harm=3),
    _rule("end your suffering", r"\bend (?:your|ur) (?:suffering|misery|pain)\b", self_harm=3),
    _rule("self-harm promotion", r"\b(?:cutting|self harm|starving|purging|bleeding)(?: yourself| myself)? "
          r"(?:is|was|helps|works|really helps)\b[^.!?]{0,40}\b(?:best|only|helps|works|feel|try it)\b|"
          r"\bcutting (?:is|was) the\b", self_harm=5),
    _rule("poison ingestion", r"\b(?:drink|swallow|chug|inject)(?:ing)? (?:bleach|antifreeze|drain cleaner|"
          r"rat poison|poison|lye)\b|\b(?:bleach|antifreeze|rat poison|"
          r"drain cleaner)\b[^.!?]{0,40}\b(?:drink|"
          r"swallow|way out|chug)\b", self_harm=6, negatable=True),
    _rule("way out", r"\b(?:fastest|easiest|quickest|only|best|painless) way out\b", self_harm=4),
    _rule("cut deeper", r"\b(?:blades?|razors?|knife|cut|cuts|wrists?)\b[^.!?]{0,40}\b(?:go|cut|press) "
          r"deeper\b", self_harm=6),
    _rule("purge everything", r"\bthrow(?:ing)? up (?:everything|all|whatever|what) (?:you|u) eat\b|"
          r"\bvomit (?:after|everything)\b", self_harm=6),
    _rule("mono-diet push", r"\b(?:eat|eating|have|drink)\b[^.!?]{0,40}\b(?:and nothing else|nothing but "
          r"(?:water|coffee|gum|ice|black coffee))\b", self_harm=4),
    _rule("thinness goal", r"\b(?:you'?ll|you will|u will|to) be (?:so )?(?:skinny|thin|bony|tiny)\b|"
          r"\b(?:get|stay) (?:skinny|bony)\b(?! (?:jeans|fit|denim))|\bhow models stay thin\b", self_harm=3),
    _rule("hiding self-harm", r"\bhid(?:e|es|ing) (?:your |the |my |ur )?(?:cuts|scars|self harm|burns|"
          r"wounds)\b|\bcut(?:ting)? (?:higher|lower|deeper|somewhere|where)\b[^.!?]{0,20}\b(?:thighs?|arms?|"
          r"wrists?|hips?|stomach)\b", self_harm=5),
    _rule("starve until", r"\bstarv(?:e|ing) (?:yourself )?(?:until|till|til) (?:you|u)\b", self_harm=5),
    _rule("pain claim", r"\b(?:it'?s|its|is) (?:painless|quick and painless|the only way out|the easy "
          r"way out)\b", self_harm=2),
    _rule("eating-disorder push: stop eating", r"\bstop eating(?=\s*(?:$|[.!?,;]|\s(?:entirely|"
          r"completely|altogether|for (?:a |\d+ |two |three |several )?(?:days?|weeks?|months?|while)|until|"
          r"and (?:you|u|watch)|if you want|to (?:lose|get|be|stay)\b)))", self_harm=5, negatable=True),
    _rule("eating-disorder push: skip meals", r"\b(?:skip|skipping|skips)(?: every| all| all your| your| "
          r"most)+ meals?\b|\b(?:eat|eating|consume)(?: nothing| no food)(?: at all)?(?: for| until)\b|"
          r"\b(?:under|less than|below|max) [1-7]\d{2} (?:calories|kcal|cals)\b", self_harm=4,
          negatable=True),
    _rule("eating-disorder community terms", r"\b(?:thinspo|thinspiration|pro ?ana|pro ?mia|meanspo|"
          r"bonespo|ana tips|mia tips|ana buddy|ana coach(?:es)?|mia buddy)\b", self_harm=5),
    _rule("purging", rf"\b(?:make|force) (?:{_SELF}|yourself to|urself to|your self to)\s?(?:to )?(?:throw"
          r" up|vomit|puke|purge)\b|\bpurge (?:after|if you|every|when)\b|\blaxatives to (?:lose|drop)\b",
          self_harm=6, negatable=True),
    *_lexicon("self_harm", {
        "suicide": 2, "suicidal": 2, "self harm(?:ing)?": 2, "overdos(?:e|ed|ing)": 1, "anorexi(?:a|c)": 1,
        "bulimi(?:a|c)": 1, "starve": 2, "hang myself": 4,
    }, prefix="self-harm term"),
    # ---- sexual: context patterns ----
    _rule("sexual solicitation", r"\b(?:want|wanna|going|gonna|let'?s|lets|would love|'d love|looking|"
          r"dying|ready|down)(?: to)? (?:have sex|fuck|hook up|sleep with|bang|screw|get laid|smash|"
          r"make out|suck|lick|ride)\b(?! (?:your|the|a|an|our) (?:\w+ )?(?:tv|speakers?|devices?|"
          r"printer|console|phone|system))", sexual=6),
    _rule("nudes solicitation", r"\b(?:send|show|post|dm|text|give)(?: me| us)?(?: your| ur| some| a)? "
          r"(?:nudes?|nude pics?|nude photos?|naked pics?|naked photos?|tits|boobs|titties|dick pics?|"
          r"pussy|ass|body pics?|pics of your (?:body|tits|boobs|ass))\b", sexual=6),
    _rule("sex spam", r"\b(?:hot|horny|lonely|sexy|naughty|local|single|desperate|slutty)(?: \w+)? "
          r"(?:singles|girls|women|milfs|moms|wives|guys|men|babes|housewives|cougars|teens)(?: \w+)?"
          r" (?:in your area|near you|nearby|waiting|online now|want to|wanna|looking for)\b", sexual=6),
    _rule("hook-up solicitation", r"\bhook ?up (?:with (?:me|you|u|someone|singles|strangers|locals|"
          r"girls|guys|women|men|hot)|tonight|now|today|near you)\b", sexual=5),
    _rule("explicit act", r"\b(?:suck(?:s|ed|ing)?|lick(?:s|ed|ing)?|stroke(?:s|d)?|rub(?:s|bed|bing)?|"
          r"finger(?:s|ed|ing)?|ride|riding|spread(?:s|ing)?)(?:\s+[\w']+){0,3}? (?:dick|cock|pussy|tits|"
          r"clit|balls|penis|vagina|ass|nipples|it dry)\b|\b(?:dick|cock|pussy|tits|clit|penis|vagina)\b"
          r"[^.!?]{0,40}\b(?:suck|lick|stroke|ride|finger|touch|rub)(?:s|ed|ing)?\b", sexual=6),
    _rule("sexual act with target", r"\bfuck(?:s|ed|ing)? (?:me|her|him|them|us)\b(?! (?:off|up|over))|"
          r"\bspread(?:s|ing)? (?:her|his|your|my|their) (?:legs|thighs|cheeks)\b|\b(?:bend|bent) (?:her|"
          r"you|me) over\b", sexual=5),
    _rule("explicit anatomy description", r"\b(?:wet|tight|hard|throbbing|dripping|juicy|hairy|shaved|"
          r"big|huge|giant|massive|thick|swollen|rock hard|naked|bare)\s+(?:pussy|pussies|cock|cocks|dick|"
          r"dicks|tits|clit|boobs|penis|boner)\b|\bsit on (?:my|your|his|her) face\b|\bbarely legal\b",
          sexual=6),
    _rule("nude pictures request", r"\b(?:pics?|photos?|pictures|videos?|selfies?)\b[^.!?]{0,40}\b(?:no "
          r"clothes|without clothes|nothing on|naked|nude|topless|undressed)\b|\b(?:see|watch) (?:me|her|him|"
          r"us|them) (?:get )?(?:naked|nude|topless|strip|undress)\b", sexual=5),
    _rule("sexual intensity", r"\b(?:screw|bang|fuck|pound|smash|ride)(?:ing)? (?:all night|each other|so "
          r"hard|you so|you all night|me all night|you senseless|me senseless)\b", sexual=5),
    _rule("sex spam: meet locals", r"\bmeet (?:\w+ )?(?:local|hot|horny|lonely|sexy|naughty|single|real|"
          r"dirty) (?:\w+ )?(?:singles|girls|women|milfs|moms|wives|guys|men|babes|housewives|cougars|"
          r"sluts|hotties)\b", sexual=5),
    _rule("escort cues", r"\bescorts?\b[^.!?]{0,40}\b(?:full service|incall|outcall|discreet|hourly|"
          r"overnight|gfe|24 ?7|available|tonight)\b", sexual=5),
    _rule("casual sex cues", r"\b(?:no strings attached|nsa fun|discreet encounters|casual encounters|"
          r"friends with benefits|fwb)\b", sexual=3),
    _rule("explicit body contact", r"\b(?:see|show|suck|touch|lick|feel|taste|grab|squeeze|play with|"
          r"kiss|caress)(?:ing|ed|s)? (?:every inch of |all over )?(?:my|your|ur|his|her) (?:naked |wet |"
          r"hard )?(?:dick|cock|pussy|tits|boobs|ass|balls|penis|nipples|clit)\b", sexual=6),
    _rule("whole body contact", r"\b(?:lick|kiss|taste|touch|caress)(?:ing|ed|es|s)? every inch of (?:your|"
          r"ur|my|her|his) body\b", sexual=5),
    _rule("sexual enhancement spam", r"\b(?:penis|dick|cock) enlargement\b|\bmale enhancement\b|\blast "
          r"longer in bed\b|\bplease her all night\b|\brock hard erections?\b", sexual=4),
    _rule("oral sex slang", r"\b(?:give|gave|giving|gives|get|got|getting) (?:him|me|you|u|her) head\b(?! "
          r"(?:to|start|room|first|over|up|count|of))", sexual=6),
    _rule("wants sex", r"\b(?:want|wants|wanting|looking for|need|needs|crave|craves|craving) (?:some )?"
          r"(?:sex|to have sex|to fuck|dick|cock|a hookup|a quickie|pussy)\b|\bget(?:ting)? laid\b(?! "
          r"(?:back|off|out|down|flat))", sexual=5),
    _rule("watching sex", r"\bget(?:s|ting)? fucked\b|\b(?:watch|see) (?:her|him|them|me|us) (?:get|"
          r"getting) (?:fucked|banged|laid|naked|nailed)\b", sexual=5),
    _rule("sex on camera", r"\b(?:fuck(?:s|ing)?|sex|masturbat\w*|screw(?:s|ing)?) (?:live )?on (?:camera|"
          r"cam|webcam|video|tape|stream)\b", sexual=5),
    _rule("spanking", r"\bspank(?:s|ed|ing)? (?:that|your|ur|her|his|my|this) (?:ass|butt|booty)\b|\bbend "
          r"over and (?:let|take|spread)\b", sexual=5),
    _rule("sexual self-touch", r"\btouch(?:es|ed|ing)? (?:herself|himself|yourself|myself|themselves|me)"
          r"(?: \w+)? (?:until|while|till|down there|all over|thinking (?:about|of) (?:you|u))\b|"
          r"\b(?:jerk(?:s|ed|ing)? off|"
          r"jack(?:s|ed|ing)? off|get(?:ting)? off on)\b", sexual=5),
    _rule("stripped naked", r"\b(?:strip(?:s|ped|ping)?) (?:fully |completely |all )?"
          r"(?:naked|nude)\b|\bstrip(?:s|ped|ping)? (?:for|4) (?:you|u|me|him|the camera)\b|\bstrip ?tease\b",
          sexual=4),
    _rule("porn category", r"\bxxx (?:videos?|movies?|content|pics|sites?|porn|cams?|clips?|action)\b|"
          r"\b(?:cam ?girls|webcam girls|cam ?models|live cams?|sex cams?|escort (?:services?|girls|"
          r"agenc(?:y|ies))|happy endings?|sugar daddy|sugar babies|adult (?:videos?|content|dating))\b",
          sexual=5),
    _rule("sex toys", r"\b(?:sex toys?|dildos?|butt plugs?|cock rings?|strap ?ons?|fleshlights?|"
          r"vibrators?)\b", sexual=4),
    _rule("sexual act with person", r"\b(?:have|having|had|want|wants|wanted|do|doing)(?: \w+)? "
          r"(?:sex|intercourse|oral|anal|a threesome) (?:with|on)\b", sexual=5),
    *_lexicon("sexual", {
        "porn(?:o|ography|ographic|hub)?": 5, "xxx": 3, "nudes": 4, "nude": 2, "naked": 2, "nudity": 2,
        "(?:nude|naked) (?:pics?|photos?|pictures|videos?|selfies|images|scenes|girls|women|babes|teens|"
        "chicks|models|celebrities|celebs|wives|men|guys)": 4,
        "(?:girls|women|babes|chicks|models|wives|milfs|celebs) (?:\\w+ )?(?:naked|nude)": 4,
        "sex": 2, "sexual(?:ly)?": 1, "sexy": 1, "sensual": 1, "seductive": 1, "erotic(?:a)?": 3,
        "kinky": 3, "naughty": 1, "horny": 4, "aroused": 3, "orgasms?": 4, "moan(?:s|ed|ing)?": 2,
        "cum(?:ming|shot)?": 4, "masturbat(?:e|es|ed|ing|ion)": 5, "blow ?jobs?": 6, "hand ?jobs?": 6,
        "dicks?": 3, "cocks?": 3, "penis(?:es)?": 3, "vaginas?": 3, "genitals?": 3, "puss(?:y|ies)": 3,
        "tits": 4, "titties": 4, "boobs": 2, "nipples?": 2, "booty": 1, "fuck(?:s|ed|ing)?": 2,
        "anal": 4, "oral sex": 5, "threesomes?": 4, "orgy|orgies": 5, "bdsm": 4, "fetish(?:es)?": 3,
        "bondage": 3, "prostitut(?:e|es|ion)": 3, "hookers?": 3, "sluts": 3, "strippers?": 2, "onlyfans": 3,
        "nsfw": 3, "milfs?": 5, "topless": 3, "boners?": 4, "creampies?": 6, "deep ?throat(?:ing)?": 6,
        "gang ?bang(?:s|ing)?": 6, "lap ?dances?": 3, "strip clubs?": 3, "brothels?": 3, "cumshots?": 6,
        "sexting": 4, "one night stand": 3, "booty call": 4, "rape[ds]?|raping": 5,
        "molest(?:ed|ing|ation)?": 5, "hentai": 5, "camgirls?": 5, "escorts?": 1, "slutty": 3,
    }, prefix="sexual term"),
]

_VERBS: list[_Verb] = [
    _verb("kill", "kill", "kills|killed|killing|killer", 2),
    _verb("murder", "murder", "murders|murdered|murdering|murderer", 2),
    _verb("shoot", "shoot", "shoots|shot|shooting", 2),
    _verb("stab", "stab", "stabs|stabbed|stabbing", 2),
    _verb("strangle", "strangle|choke", "strangles|strangled|strangling|chokes|choked|choking", 2),
    _verb("slaughter", "slaughter|butcher|massacre", "slaughters|slaughtered|butchered|butchering", 2),
    _verb("execute", "execute|lynch|behead|decapitate", "executed|lynched|beheaded|decapitated", 2),
    _verb("torture", "torture", "tortures|tortured|torturing", 2),
    _verb("rape", "rape", "rapes|raped|raping", 3),
    _verb("gun down", "gun down|mow down|run over", "gunned down|mowed down|ran over", 2),
    _verb("hurt", "hurt|harm|injure|maim|wound", "hurts|hurting|harmed|harming|injured|maimed|wounded", 1),
    _verb("beat", "beat|beat up|punch|kick|slap|hit|smack|bash|batter", "beats|beaten|beating|punched|"
          "punching|kicked|kicking|slapped|smacked|bashed|battered", 0),
    _verb("attack", "attack|assault|jump", "attacks|attacked|attacking|assaulted", 1),
    _verb("break", "break|snap|crack|smash", "breaks|broke|broken|snapped|smashed", 0),
    _verb("burn", "burn|torch|set fire to|set on fire", "burns|burned|burnt|torched", 0),
    _verb("cut", "cut|slash|slice|gut", "cuts|cutting|slashed|sliced|gutted", 0),
    _verb("destroy", "destroy|wreck|end|finish|eliminate", "destroyed|wrecked", 0),
    _verb("poison", "poison|drown|bury|hang", "poisoned|drowned|hanged", 1),
    _verb("hunt down", "hunt|track down|hunt down", "hunted|hunting|tracked down", 0),
]

# A sentence opening with one of these is an instruction ("Drag him out and beat him"), so violent
# verbs later in it count as intended, like those opening the sentence themselves.
_IMPERATIVE_OPENER = re.compile(r"^(?:drag|go|grab|take|bring|get|find|make|come|just|tie|hold|pin|lure)\b")
_SENTENCE_SPLIT = re.compile(r"[.!?;]+(?:\s+|$)|\s+-\s+|\n+")


# ---------------------------------------------------------------------------------------------------
# Screening
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScreenResult:
    """Embedded-screen output: severity per category (0-7), blocklist hits, and what triggered each."""

    severities: dict[str, int]
    blocklist_hits: tuple[str, ...] = ()
    matched: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _combine(signals: list[tuple[int, str]]) -> int:
    """Category severity: strongest signal, +1 per further independent signal of severity >= 3 (max +2)."""
    if not signals:
        return 0
    best: dict[str, int] = {}
    for severity, label in signals:
        best[label] = max(severity, best.get(label, 0))
    ranked = sorted(best.values(), reverse=True)
    corroborating = sum(1 for s in ranked[1:] if s >= 3)
    return int(min(MAX_SEVERITY, ranked[0] + min(2, corroborating)))


def _scan_sentence(sentence: str, signals: dict[str, list[tuple[int, str]]]) -> None:
    for rule in _RULES:
        for match in rule.regex.finditer(sentence):
            before = sentence[: match.start()]
            negated = rule.negatable and _NEGATION_BEFORE.search(before) is not None
            imperative = not before.strip()
            boost = 1 if rule.intent_boost and (imperative or _INTENT_BEFORE.search(before)) else 0
            for category, severity in rule.severities.items():
                score = 1 if negated else min(MAX_SEVERITY, severity + boost)
                signals[category].append((score, rule.label))
    for verb in _VERBS:
        for form, regex in (("base", verb.base), ("inflected", verb.inflected)):
            for match in regex.finditer(sentence):
                before = sentence[: match.start()]
                if _NEGATION_BEFORE.search(before):
                    continue
                targeted = _TARGET.match(sentence, match.end()) is not None
                # A verb opening the sentence is an imperative ("Stab the driver"), i.e. intent.
                intent = form == "base" and (_INTENT_BEFORE.search(before) is not None or not before.strip()
                                             or _IMPERATIVE_OPENER.match(sentence) is not None)
                score = verb.weight
                if targeted:
                    score += 2 if form == "base" else 1
                score += (2 if targeted else 1) if intent else 0
                if score:
                    parts = [f"violent verb: {verb.label}"] + ["intent"] * intent + ["target"] * targeted
                    signals["violence"].append((min(MAX_SEVERITY, score), " + ".join(parts)))


def screen_text(text: str, blocklist: Sequence[str] = ()) -> ScreenResult:
    """Score ``text`` on the four categories with the embedded classifier and check ``blocklist``.

    Idioms are removed first, then lexicon terms, context patterns and violent verbs (with intent and
    target modifiers) are matched sentence by sentence; see docs/safety_screen.md.
    """
    normalized = normalize_text(text)
    masked = _IDIOMS.sub(" ~ ", normalized)
    signals: dict[str, list[tuple[int, str]]] = {c: [] for c in CATEGORIES}
    for sentence in _SENTENCE_SPLIT.split(masked):
        if sentence.strip(" ~"):
            _scan_sentence(sentence.strip(), signals)
    # Sexual content involving minors is always the top severity.
    if any(s >= 3 for s, _ in signals["sexual"]) and _MINORS.search(masked):
        signals["sexual"].append((MAX_SEVERITY, "sexual content involving minors"))
    severities = {c: _combine(signals[c]) for c in CATEGORIES}
    matched = {c: tuple(dict.fromkeys(label for s, label in sorted(signals[c], reverse=True) if s > 0))
               if severities[c] else () for c in CATEGORIES}
    return ScreenResult(severities, find_blocklist_hits(text, blocklist), matched)


_MINORS = re.compile(r"\b(?:child|children|kids?|minors?|underage|preteens?|teens?|teenagers?|little "
                     r"(?:girls?|boys?)|schoolgirls?|schoolboys?|1[0-7] ?(?:yo|y o|year olds?|years old)|"
                     r"[1-9] ?(?:yo|year olds?|years old))\b")


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
                f"{len(word.group())} characters long, over the {max_chars}-character limit")
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
    """Complete ``thresholds`` with defaults (4) and reject unknown categories or values outside 0-8.

    A threshold of 8 never blocks the category; 0 always blocks it.
    """
    merged = dict(DEFAULT_THRESHOLDS)
    for category, value in (thresholds or {}).items():
        if category not in CATEGORIES:
            raise ValueError(f"unknown safety threshold category {category!r}; expected one of {CATEGORIES}")
        if not _is_integral(value) or not 0 <= int(value) <= MAX_SEVERITY + 1:
            raise ValueError(f"safety threshold for {category} must be an integer 0-8, got {value!r}")
        merged[category] = int(value)
    return merged


def _is_integral(value: object) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer()


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(float(value))


def decide(severities: Mapping[str, int | None], blocklist_hits: Sequence[str],
           thresholds: Mapping[str, int] | None = None) -> tuple[str, list[str]]:
    """Return ("approved"|"blocked", reasons). Blocks when any severity >= its threshold.

    Fail-closed: a missing category, None/NaN, non-integer (bools, strings, 4.5) or out-of-range
    (outside 0-7) severity blocks with a reason. Integral floats such as 4.0 (pandas upcasts) count as
    integers. Categories other than the four are ignored. Reasons look like "violence severity 6 >= 4",
    "blocklist: AcmeMart", "screening incomplete: missing self_harm".
    """
    limits = validate_thresholds(thresholds)
    if not isinstance(severities, Mapping):
        return "blocked", [f"screening incomplete: severities is {type(severities).__name__}, not a mapping"]
    reasons: list[str] = []
    for category in CATEGORIES:
        if category not in severities:
            reasons.append(f"screening incomplete: missing {category}")
            continue
        value = severities[category]
        if _is_missing(value):
            reasons.append(f"screening incomplete: no {category} severity")
        elif not _is_integral(value):
            reasons.append(f"screening invalid: {category} severity {value!r} is not an integer")
        elif not 0 <= int(value) <= MAX_SEVERITY:
            reasons.append(f"screening invalid: {category} severity {int(value)} outside 0-{MAX_SEVERITY}")
        elif int(value) >= limits[category]:
            reasons.append(f"{category} severity {int(value)} >= {limits[category]}")
    reasons.extend(f"blocklist: {term}" for term in blocklist_hits)
    return ("blocked" if reasons else "approved"), reasons


# ---------------------------------------------------------------------------------------------------
# Audit hash chain
# ---------------------------------------------------------------------------------------------------

GENESIS_HASH = "0" * 64
AUDIT_FIELDS: tuple[str, ...] = ("record_id", "screened_at", "run_id", "segment", "variant_id",
                                 "text_sha256", "severities", "decision", "reasons", "backend")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def text_sha256(text: str) -> str:
    """Hex SHA-256 of the UTF-8 bytes of ``text`` (the audit log stores this, not the text)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical_timestamp(value: object) -> str:
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        raise ValueError("screened_at is missing")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical_json(value: object, *, kind: str) -> str:
    """Severities/reasons as canonical JSON, whether given as objects or as stored JSON text."""
    parsed = json.loads(value) if isinstance(value, str) else value
    if kind == "severities":
        if not isinstance(parsed, Mapping):
            raise ValueError(f"severities must be a mapping or JSON object, got {type(parsed).__name__}")
        parsed = {str(k): (None if _is_missing(v) else int(v) if _is_integral(v) else v)
                  for k, v in parsed.items()}
    else:
        if isinstance(parsed, np.ndarray):
            parsed = parsed.tolist()
        if not isinstance(parsed, list | tuple):
            raise ValueError(f"reasons must be a list or JSON array, got {type(parsed).__name__}")
        parsed = [str(r) for r in parsed]
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical_record(row: Mapping[str, object]) -> dict[str, object]:
    record: dict[str, object] = {}
    for name in ("record_id", "run_id", "segment", "variant_id", "text_sha256", "decision", "backend"):
        value = row[name]
        record[name] = None if _is_missing(value) else str(value)
    record["screened_at"] = _canonical_timestamp(row["screened_at"])
    record["severities"] = _canonical_json(row["severities"], kind="severities")
    record["reasons"] = _canonical_json(row["reasons"], kind="reasons")
    record["sequence"] = int(row["sequence"])
    return record


def _record_hash(record: Mapping[str, object], prev_hash: str) -> str:
    payload = json.dumps({**record, "prev_hash": prev_hash}, sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing columns {missing}; has {list(frame.columns)}")


class ChainHead(NamedTuple):
    """Where the next batch of audit records continues the chain."""

    prev_hash: str
    next_sequence: int


def chain_head(audit: pd.DataFrame | None) -> ChainHead:
    """Hash and next sequence after the last record of ``audit`` (genesis for an empty/None log)."""
    if audit is None or audit.empty:
        return ChainHead(GENESIS_HASH, 0)
    _require_columns(audit, ("sequence", "record_hash"), "audit log")
    last = audit.loc[audit["sequence"].astype("int64").idxmax()]
    return ChainHead(str(last["record_hash"]), int(last["sequence"]) + 1)


def chain_audit_records(records: pd.DataFrame, prev_hash: str, start_sequence: int = 0) -> pd.DataFrame:
    """Append-ready copy of ``records`` (in row order) with ``sequence``, ``prev_hash``, ``record_hash``.

    ``record_hash`` = sha256 of canonical JSON of AUDIT_FIELDS + sequence + prev_hash, so each record
    commits to its predecessor. ``severities``/``reasons`` are stored as canonical JSON strings and
    ``screened_at`` as a UTC timestamp. Continue an existing log with ``chain_head(existing)``.
    """
    _require_columns(records, AUDIT_FIELDS, "audit records")
    if not isinstance(prev_hash, str) or not _HEX64.fullmatch(prev_hash):
        raise ValueError("prev_hash must be 64 lowercase hex characters (use GENESIS_HASH for a new log)")
    if not _is_integral(start_sequence) or int(start_sequence) < 0:
        raise ValueError(f"start_sequence must be a non-negative integer, got {start_sequence!r}")
    chained = records.reset_index(drop=True).copy()
    chained["sequence"] = np.arange(int(start_sequence), int(start_sequence) + len(chained), dtype="int64")
    canonical = [_canonical_record(row) for row in chained.to_dict("records")]
    hashes: list[str] = []
    previous = prev_hash
    for record in canonical:  # inherently sequential: each hash feeds the next
        previous = _record_hash(record, previous)
        hashes.append(previous)
    chained["screened_at"] = pd.to_datetime([r["screened_at"] for r in canonical], utc=True)
    chained["severities"] = [r["severities"] for r in canonical]
    chained["reasons"] = [r["reasons"] for r in canonical]
    chained["prev_hash"] = [prev_hash, *hashes[:-1]] if hashes else []
    chained["record_hash"] = hashes
    return chained


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    records: int
    first_bad_record_id: str | None
    message: str


def verify_audit_chain(audit: pd.DataFrame, expected_head: str | None = None,
                       genesis: str = GENESIS_HASH) -> ChainVerification:
    """Check the whole audit log, in ``sequence`` order (storage row order is irrelevant).

    Detects: any changed field (record_hash mismatch), a deleted or inserted record (sequence gap or
    prev_hash mismatch), records moved in the chain (sequence values swapped), a chain not starting at
    ``genesis``. Deleting the newest records is only detectable with ``expected_head``: the last
    record_hash kept elsewhere (e.g. the run's materialization metadata).
    """
    required = (*AUDIT_FIELDS, "sequence", "prev_hash", "record_hash")
    missing = [c for c in required if c not in audit.columns]
    if missing:
        return ChainVerification(False, len(audit), None, f"audit log is missing columns {missing}")
    if audit.empty:
        if expected_head not in (None, genesis):
            return ChainVerification(False, 0, None, "audit log is empty but a non-genesis head was expected")
        return ChainVerification(True, 0, None, "audit log is empty")
    try:
        sequence_numbers = audit["sequence"].astype("int64")
    except (ValueError, TypeError):
        return ChainVerification(False, len(audit), None, "audit log has non-integer sequence values")
    ordered = (audit.assign(sequence=sequence_numbers).sort_values("sequence", kind="stable")
               .reset_index(drop=True))
    record_ids = ordered["record_id"].astype(str).to_numpy()
    sequence = ordered["sequence"].to_numpy()
    problems = np.full(len(ordered), "", dtype=object)

    recomputed: list[str | None] = []
    for i, row in enumerate(ordered.to_dict("records")):
        try:
            recomputed.append(_record_hash(_canonical_record(row), str(row["prev_hash"])))
        except (ValueError, TypeError, KeyError) as exc:
            recomputed.append(None)
            problems[i] = f"record cannot be canonicalized: {exc}"
    stored = ordered["record_hash"].astype(str).to_numpy()
    prev = ordered["prev_hash"].astype(str).to_numpy()
    expected_prev = np.concatenate([[genesis], stored[:-1]])
    expected_sequence = sequence[0] + np.arange(len(ordered))

    # Checks in priority order per record; the first record (in chain order) with a problem is reported.
    checks = [
        (sequence != expected_sequence, lambda i: f"sequence {sequence[i]} where {expected_sequence[i]} "
                                                  "was expected (record deleted, inserted or moved)"),
        (prev != expected_prev, lambda i: "prev_hash does not match the previous record's record_hash"
                                          + (" (chain does not start at genesis)" if i == 0 else
                                             f" (previous record {record_ids[i - 1]})")),
        (np.array([r is not None and r != s for r, s in zip(recomputed, stored, strict=True)]),
         lambda i: "record_hash does not match the record's contents (field tampered)"),
    ]
    for mask, describe in checks:
        for i in np.flatnonzero(mask & (problems == "")):
            problems[i] = describe(i)
    bad = np.flatnonzero(problems != "")
    if len(bad):
        i = int(bad[0])
        return ChainVerification(False, len(ordered), record_ids[i],
                                 f"record {record_ids[i]} (sequence {sequence[i]}): {problems[i]}")
    if sequence[0] != 0 and genesis == GENESIS_HASH:
        return ChainVerification(False, len(ordered), record_ids[0],
                                 f"record {record_ids[0]}: chain starts at sequence {sequence[0]}, not 0")
    if expected_head is not None and stored[-1] != expected_head:
        return ChainVerification(False, len(ordered), record_ids[-1],
                                 f"last record {record_ids[-1]} is not the expected head (records deleted "
                                 "from the end or appended without updating the head)")
    return ChainVerification(True, len(ordered), None, f"{len(ordered)} records verified")


# ---------------------------------------------------------------------------------------------------
# Labelled evaluation
# ---------------------------------------------------------------------------------------------------

def evaluate_examples(examples: pd.DataFrame, thresholds: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Screen each labelled example; adds decision, blocked, predicted and per-category severities.

    ``examples`` needs ``text`` and ``label`` ("safe"|"unsafe"); ``category`` is the expected category.
    ``predicted`` is the category with the highest severity (None when all are 0).
    """
    _require_columns(examples, ("text", "label"), "evaluation examples")
    bad_labels = sorted(set(examples["label"]) - {"safe", "unsafe"})
    if bad_labels:
        raise ValueError(f"evaluation labels must be 'safe' or 'unsafe', found {bad_labels}")
    results = [screen_text(text) for text in examples["text"]]
    scored = examples.reset_index(drop=True).copy()
    severity_frame = pd.DataFrame([r.severities for r in results], columns=list(CATEGORIES))
    for category in CATEGORIES:
        scored[f"severity_{category}"] = severity_frame[category].to_numpy()
    decisions = [decide(r.severities, r.blocklist_hits, thresholds) for r in results]
    scored["decision"] = [d for d, _ in decisions]
    scored["reasons"] = [reasons for _, reasons in decisions]
    scored["blocked"] = scored["decision"].eq("blocked")
    values = severity_frame.to_numpy()
    scored["predicted"] = np.where(values.max(axis=1) > 0, np.array(CATEGORIES)[values.argmax(axis=1)], None)
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
        overall = {"group": group, "category": "all", "unsafe": len(unsafe),
                   "caught": int(unsafe["blocked"].sum()), "safe": len(safe),
                   "false_blocks": int(safe["blocked"].sum())}
        rows.append(overall)
        for category, per_category in unsafe.groupby("category", sort=True):
            rows.append({"group": group, "category": category, "unsafe": len(per_category),
                         "caught": int(per_category["blocked"].sum()), "safe": 0, "false_blocks": 0})
    summary = pd.DataFrame(rows)
    summary["missed"] = summary["unsafe"] - summary["caught"]
    summary["passed"] = summary["safe"] - summary["false_blocks"]
    summary["catch_rate"] = summary["caught"] / summary["unsafe"].where(summary["unsafe"] > 0)
    summary["false_block_rate"] = summary["false_blocks"] / summary["safe"].where(summary["safe"] > 0)
    return summary
