"""The embedded safety screen: the offline default backend of "Azure AI Content Safety", and the project's own
phishing check that runs next to every backend.

It scores text on Azure's four harm categories and on phishing with Azure's eight-level severity scale (0 safe,
2 low, 4 medium, 6 high; odd values in between). Three layers, the strongest signal wins per concern:

1. the rule lexicon (English): benign idioms masked, weighted terms, context patterns, violent verbs scored with
   intent and target;
2. harm concepts (embedded/concepts.py): words reduced to Snowball stems in English, German, Spanish and
   French and matched as concepts with their target and intent (a harm verb aimed at a person, a group named
   with a dehumanizing or eliminationist predicate, a self-harm method offered as advice, an explicit sexual
   word, a request for a card number or one-time code), so inflected and reworded forms are judged alike;
3. language identification (stopword profiles): the screen judges English, German, Spanish and French; a
   text in another language is not approved (`UNSUPPORTED_LANGUAGE`, fail-closed).

Sexual content involving minors is always the maximum severity (7). How it works and its measured accuracy on
development and held-out text are in docs/safety_screen.md.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from types import MappingProxyType

from personalization_assets.embedded.concepts import concept_signals, mentions_minor, suspicious_links
from personalization_assets.embedded.language import SUPPORTED_LANGUAGES, UNDETERMINED, identify_language
from personalization_assets.embedded.loading import load_once
from personalization_assets.embedded.minors import minor_signal, protective_copy
from personalization_assets.embedded.model import MODEL_HIGH, screen_model
from personalization_assets.embedded.prefilter import LiteralIndex, Requirement, requirement, satisfied
from personalization_assets.embedded.structure import hate_help_framed, help_framed, structural_signals
from personalization_assets.lib.safety import (
    CATEGORIES,
    CONCERNS,
    MAX_SEVERITY,
    PHISHING,
    UNSUPPORTED_LANGUAGE,
    find_blocklist_hits,
    normalize_text,
)

# Benign idioms are removed before scoring, so "killer deals" or "shoot us an email" contribute nothing
# while a real threat elsewhere in the same text is still scored.
_COMM = (
    r"(?:e ?mails?|messages?|lines?|notes?|texts?|dms?|reminders?|invites?|invitations?|links?|"
    r"updates?|calls?|questions?|photos?|pics?|pictures?|replies|reply|feedback|quotes?|coupons?|"
    r"codes?|details|info|confirmations?|receipts?)"
)
_PROMO = (
    r"(?:deals?|offers?|savings?|discounts?|news|updates?|styles?|prices?|coupons?|codes?|bargains?|"
    r"perks?|rewards?|drops?|releases?|freebies|gifts?|looks?|sales?|value)"
)
_IDIOMS = re.compile(
    "|".join(
        rf"(?:{p})"
        for p in [
            r"\bkiller (?:deals?|prices?|savings?|offers?|sales?|discounts?|bargains?|workouts?|abs|looks?|style|"
            r"views?|app|apps|features?|combo|lineup|collection|playlist|recipes?|flavou?rs?|heels|outfits?|smile|"
            r"bundle|value|whales?|bees?|instinct|fries|sound|cardio|legs|arms|glutes)\b",
            r"\b(?:weed|bug|germ|pain|odou?r|weed and grass|mold|mould) ?killers?\b",
            r"\bto die for\b",
            r"\bdressed to kill\b",
            r"\bdrop dead (?:gorgeous|beautiful|stunning|sexy|handsome)\b",
            rf"\bshoot(?:s|ing)? (?:us|me|him|her|them|you|u) (?:(?:a|an|the|our|your|over|back|some|quick|"
            rf"short|brief|little|friendly)\s+){{0,3}}{_COMM}\b",
            r"\bphoto ?shoots?\b",
            r"\bshoot(?:ing)? for the (?:stars|moon)\b",
            r"\bshoot(?:ing)? hoops\b",
            r"\b(?:shoot|shooting) (?:photos|video|videos|a video|pictures|footage|the breeze)\b",
            r"\bblow ?outs?\b",
            r"\bknock ?outs?\b",
            r"\bknock(?:s|ed|ing)? (?:'?em|them) dead\b",
            r"\bknock(?:s|ed|ing)? (?:your|the|their) socks off\b",
            r"\bknock(?:s|ed|ing)? (?:you|u) out with\b",
            r"\bblow(?:s|n)? (?:you|u|them|'?em) away\b",
            r"\bcrush(?:ing|ed|es)? it\b",
            r"\bcrush(?:ing|ed|es)? (?:your|the|those|these|all|my|our|their) (?:\w+ )?(?:goals?|workouts?|day|"
            r"week|competition|to do|lists?|cravings?|fitness|targets?|quotas?|pbs?|records?|miles)\b",
            r"\bbang for (?:your|the|my|our) bucks?\b",
            r"\bslash(?:ed|ing|es)? (?:\w+ )?(?:prices?|rates?|fees?|costs?|bills?)\b",
            r"\bprices? slashed\b",
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
            r"\bkill(?:s|ed|ing)? it\b",
            # Round 3: hyperbole about a thing, not a person (the object decides, so "kill your boss" still counts).
            r"\bkill(?:s|ing)? two birds with one stone\b",
            r"\bkill(?:s|ing)? (?:your |the |those |all |any |every )?(?:excuses|cravings?|boredom|awkward "
            r"silences?|silences?|procrastination|stress|frizz|odou?rs?|bacteria|germs|weeds)\b",
            r"\bmurder(?:s|ing|ed)? (?:the |this |that |a |your |every )?(?:\w+ )?(?:game|look|fit|set|playlist|track|"
            r"dance ?floor|karaoke|mystery|mysteries|to-?do list|workout|runway|catwalk|stage)\b",
            r"\bshoot(?:s|ing)? (?:your |the |our |a |an |their |his |her )?(?:\w+ ){0,2}(?:portraits?|photos?|"
            r"headshots?|weddings?|campaigns?|lookbooks?|videos?|films?|scenes?|engagements?|events?|"
            r"commercials?|reels?|content)\b",
            # Round 4: a leap that is a decision or a sport, not a fall.
            r"\btake the (?:leap|plunge)\b(?! (?:off|from|into the (?:river|sea|water)))|\bbungee[ -]?jump\w*",
            # Round 4: venues for grown-ups, not adult content ("adults-only pool", "adults only: no kids in the spa").
            r"\badults? ?only\b(?=:?\s+(?:\w+\s+){0,6}(?:hotel|resort|spa|pool|swim|sessions?|hours|area|zone|section|"
            r"screenings?|night|cruise|holidays?|retreat|dinner|lounge|floor|after \d))",
            r"\b(?:photo|outdoor|indoor|studio|family|fashion|product|portrait|wedding|engagement|newborn|location) "
            r"shoots?\b",
            r"\bbreak(?:s|ing)? in for (?:you|u)\b",
            r"\bshot (?:by|on|with) (?:\w+ ){0,2}(?:photographers?|iphones?|cameras?|film|\d+ ?mm)\b",
            r"\bpen(?:etration)? ?test(?:s|ing|ers?)?\b",
            r"\b(?:these|those|new|fresh|sick|clean|retro|limited) kicks\b",
            r"\b(?:beat|whip|kick|knock|lick)(?:s|ing)? (?:you|u|them|'?em|yourself) into (?:\w+ ){0,3}shape\b",
            r"\b(?:don'?t|do not|never|avoid|stop) get(?:ting)? (?:sun)?burn(?:ed|t)\b",
            r"\battack(?:s|ing)? (?:your |the |our |their )?(?:it |computer |company )?(?:systems?|networks?|"
            r"servers?|apps?|websites?|defen[cs]es|infrastructure|code)\b",
            r"\b(?:feel|check|examine)(?:ing)? (?:your|their|her|his) (?:boobs|breasts?|chest|balls|testicles)\b",
            r"\b(?:sauce|sauces|chil(?:l)?is?|peppers?|habaneros?|jalape\w*|curry|wings|workout|class|hiit|leg day|"
            r"burpees|bootcamp|puzzle|level|boss fight|finale|plot twist)\b[^.!?\n]{0,40}\b(?:will|gonna|is going "
            r"to|'ll|might|could) (?:destroy|wreck|murder|kill|ruin|hurt|break) (?:you|u|your \w+)\b",
            r"\b(?:is|are|'re|'s|was|were) killing (?:me|us)\b",
            r"\bkill(?:s|ing)? (?:some )?time\b",
            r"\bkill(?:s|ing)? the (?:lights|engine|music|game|look|"
            r"competition|mood|vibe)\b",
            r"\bmake (?:a )?killing\b|\bmade a killing\b|\bmaking a killing\b",
            r"\bkill(?:s|ed|ing)? (?:up to )?(?:\d+(?:\.\d+)? ?%? ?(?:of )?)?(?:all |the |most |household |common )?"
            r"(?:germs|bacteria|viruses|virus|mold|mould|weeds?|bugs|pests|insects|mosquito(?:e)?s|fleas|ticks|"
            r"lice|odou?rs?|roaches|ants|flies|spiders|dandelions|grubs|mites|fungus|algae|the smell|cravings?)\b",
            r"\bwake the dead\b",
            r"\bshoot(?:s|ing)? (?:the |a |our |your |this |next )?"
            r"(?:new |spring |summer |autumn |fall |winter |holiday )?"
            r"(?:catalogues?|catalogs?|campaigns?|lookbooks?|films?|episodes?|commercials?|ads?|adverts?|scenes?)\b",
            r"\b(?:kill|murder|slaughter|massacre|annihilate|obliterate|destroy|butcher|execute|assassinate)"
            r"(?:s|es|ed|d|ing)? (?:the |your |our |those |these |all |any |every )?(?:\w+ )?"
            r"(?:competition|prices?|deals?|"
            r"mou?ld|mildew|germs|bacteria|stains?|weeds?|dirt|grime|odou?rs?|bills?|costs?|boredom|cravings?|"
            r"presentations?|exams?|interviews?|to ?do lists?|inbox|dust|limescale|rust|clutter|wrinkles|frizz)\b",
            r"\bbeat(?:s|ing)? (?:you|u|them|'?em|yourself) (?:back )?into shape\b",
            r"\btorture[ -]?test(?:s|ed|ing)?\b",
            r"\bkill(?:s)? (?:you|u)(?:,)? in the best (?:way|possible way)\b",
            r"\bsmash(?:es|ed|ing)? (?:those|your|the|our|all|these) (?:\w+ )?"
            r"(?:goals?|targets?|records?|pbs?|workouts?)\b",
            r"\bhit(?:s|ting)? (?:you|u|me|us|them|'?em) up\b",
            r"\b(?:die|dying|died) (?:laughing|of (?:laughter|envy|jealousy|boredom|"
            r"embarrassment|happiness)|happy)\b",
            r"\b(?:kill|killing) for (?:these|this|that|a|an|the|one|it|them)\b",
            r"\bsteal(?:s)? (?:the show|of a deal|the spotlight)\b",
            r"\bfire sales?\b",
            r"\b(?:bath|flavou?r|glitter|seed|calorie|photo|truth|cherry|cocoa|confetti) ?bomb(?:s|ed|ing)?\b",
            r"\bda bomb\b",
            r"\bbomb(?:shell)? (?:deals?|dress|looks?)\b",
            r"\bshop (?:till|til|until|'?til) (?:you|u) drop\b",
            r"\bdead ?lines?\b",
            r"\bdead sea\b",
            r"\bdead (?:tired|right|on|serious|set|center|centre|certain|simple|easy|quiet|ends?|skin|batter(?:y|"
            r"ies))\b",
            r"\bcut(?:s|ting)? (?:yourself|urself) (?:a|an|some|(?:a )?little) (?:\w+ )?"
            r"(?:slice|piece|break|deal|discount|wedge|slack|"
            r"credit)|\bcut(?:s|ting)? (?:yourself|urself) (?:some )?slack\b",
            r"\b(?:packs?|packed|packing) a punch\b",
            r"\bfruit punch\b",
            r"\bpunch (?:cards?|lines?|bowls?|list)\b",
            r"\btake a stab at\b",
            r"\bstab at (?:it|this|that)\b",
            r"\bblood (?:orange|oranges|pressure|sugar|type|tests?|work|drive|donors?|donations?|bank|moon|red|"
            r"cells?|glucose|flow|circulation|panel|count)\b",
            r"\b(?:murder|crime) myster(?:y|ies)\b",
            r"\bbullet (?:points?|journals?|proof|train|list)\b",
            r"\b(?:glue|massage|spray|nail|heat|water|squirt|nerf|staple|caulk|grease|tape|top) guns?\b",
            r"\bnaked (?:juice|cake|cakes|eye|truth|palette|bar|bars|wines?|grape)\b",
            r"\bnude (?:lipsticks?|shades?|heels|pumps|tones?|colou?rs?|palettes?|makeup|lips?|lipliner|nails|"
            r"polish|beige|bras?|underwear|sandals|flats|blush|gloss)\b",
            r"\b(?:magna |summa )?cum laude\b",
            r"\bhardcore (?:fans?|workouts?|training|gamers?|hikers?|fitness)\b",
            r"\bsmoking hot\b",
            r"\bcrack (?:open|the code|a smile|a joke)\b",
            r"\bhook(?:s|ed|ing)? (?:it |them )?up (?:to |with )?(?:your|the|a|an|our|any) (?:\w+ )?(?:tv|speakers?|"
            r"devices?|printer|console|phone|laptop|router|stereo|hose|grill|trailer|camera|system|sink)\b",
            r"\bhunt(?:s|ing)? (?:down )?(?:the |a |your )?(?:perfect|best|bargains?|deals?|gifts?)\b",
            # Sports and team colours: fans "bleed blue", "bleed green and gold", "bleed for the badge".
            r"\bbleed(?:s|ing)? (?:(?:\w+ )?(?:blue|red|green|gold|orange|purple|black|maroon|white|silver|crimson|"
            r"navy|yellow|claret|scarlet|teal|burgundy)(?: and (?:\w+ )?\w+)?|(?:the )?(?:team |club |school )?"
            r"colou?rs|for (?:the|your|our|their) (?:badge|team|club|shirt|jersey|crest|colou?rs|city|squad))\b",
            r"\b(?:blood|sweat|tears),? (?:sweat|tears|blood),? (?:and|&) (?:tears|sweat|blood|cheers)\b",
            r"\b(?:penalty |overtime )?shoot ?outs?\b|\bsudden death\b|\btake no prisoners\b",
            # "You've been warned" / "be warned" in marketing is playful urgency, not a threat.
            r"\b(?:you'?ve|you have|you'?re|you are|consider yourselves?|be|been|fair) (?:been |officially |all )?"
            r"warned\b",
            r"\bwarning: (?:these|this|our|the|highly|seriously|may|contains|addictive)\b",
            r"\bmiss(?:es|ed|ing)? out\b",
            r"\bkill(?:s|ing)? (?:them|'?em|it|\w+) (?:on contact|at the root|at the source)\b",
            r"\b(?:mosquito(?:e?s)?|fly|flies|ants?|fleas?|ticks?|roach(?:es)?|cockroach(?:es)?|bugs?|weeds?|germs?|"
            r"bacteria|mou?lds?|lice|mites?|moths?|wasps?|slugs?|aphids?|insects?|pests?|bedbugs?|termites?|"
            r"spiders?|midges?|gnats?|viruses|virus)\b[^.]{0,60}"
            r"\bkill(?:s|ing|ed)? (?:them|'?em|it|most|all|every)\b",
            r"\b(?:break|breaks|breaking|broke) (?:it |things |them |this |that )?down "
            r"(?=(?:the |all |every |each |our |your |those |these )?(?:rules|costs?|prices?|options|steps|basics|"
            r"details|numbers|process|fees|plans?|"
            r"jargon|barriers|myths|menu|ingredients|science|data|results|terms|benefits|differences)\b|how |what "
            r"|why |for (?:you|u)\b)",
            r"\bburn(?:s|ing|ed|t)? (?:off |away |out )?(?:the |those |that |your |old |extra |some |more )*"
            r"(?:stumps?|calories|fat|leaves|brush|rubbish|fuel|candles?|incense|wood|logs|cds?|dvds?|"
            r"playlists?|discs?|midnight oil|bridges|energy|stubble)\b",
        ]
    )
)

_INTENT = (
    r"(?:i\s?'?ll|i will|ill|i'?m (?:going to|gonna|about to|coming to)|im (?:going to|gonna)|"
    r"i am (?:going to|gonna|about to)|gonna|going to|we'?ll|we will|we'?re (?:going to|gonna)|"
    r"we are going to|let'?s|lets|we should|we must|we need to|we have to|we ought to|"
    r"you should|u should|someone should|somebody should|someone needs to|somebody needs to|"
    r"someone ought to|i want to|i wanna|we want to|i'?d love to|i'?d like to|i plan to|"
    r"i'?m planning to|i intend to|i swear i'?ll|will|should|must|wanna|gotta|got to|have to|"
    r"need to|ought to|time to|go|deserves? to|i'?m gonna)"
)
_INTENT_BEFORE = re.compile(rf"(?:^|\W){_INTENT}(?:\s+[\w']+){{0,3}}\s+$")
_NEGATION_BEFORE = re.compile(
    r"(?:^|\W)(?<!why )(?:don'?t|do not|never|without|avoid|won'?t|wouldn'?t|"
    r"not|no need to|careful not to|stop|how not to|rather than|instead of)"
    r"(?:\s+[\w']+){0,2}\s+$"
)

_PERSON_NOUN = (
    r"(?:guys?|man|men|woman|women|girls?|boys?|kids?|child|children|bab(?:y|ies)|people|person|"
    r"persons|folks|managers?|boss|bosses|cashiers?|clerks?|drivers?|neighbou?rs?|teachers?|"
    r"cops?|police|officers?|wife|husband|famil(?:y|ies)|mom|dad|mother|father|brother|sister|son|"
    r"daughter|co ?workers?|colleagues?|staff|employees?|workers?|customers?|protesters?|"
    r"students?|bitch|bastard|idiot|jerk|owners?|ceo|landlord|ex|girlfriend|boyfriend|president|senator|"
    r"mayor|judge|journalists?|reporters?|doctors?|nurses?|priests?|imams?|rabbis?|fags?|kid)"
)
_GROUP = (
    r"(?:immigrants?|migrants?|refugees?|foreigners?|aliens|illegals|muslims?|moslems?|islamists|jews?|"
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
    r"poles|russians?|ukrainians?|koreans?|japanese|filipinos?|vietnamese|nigerians?)"
)
_GROUP_SUBJECT = (
    rf"(?:(?:all|every|each|any|most|the|these|those) )?{_GROUP}(?: (?:person|people|man|men|"
    r"woman|women|one|guy|guys|kid|kids|folks))?"
)
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
    rf"(?:all\s+)?{_GROUP}\b)"
)


@dataclass(frozen=True)
class _Rule:
    """A lexicon entry or context pattern: a regex over normalized text and per-category severities.

    The regex is compiled on first use and only run on a text holding its required literals
    (embedded/prefilter.py): most of the 250 rules cannot match a given text, and compiling them all cost more
    than screening a document (issue #19)."""

    label: str
    pattern: str
    severities: Mapping[str, int]
    intent_boost: bool = False  # +1 when preceded by intent ("we're going to torch your shop")
    negatable: bool = False  # drops to 1 after a negation ("don't hurt yourself lifting boxes")

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)

    @cached_property
    def required(self) -> Requirement:
        return requirement(self.pattern)


@dataclass(frozen=True)
class _Verb:
    """A violent verb; severity grows with intent before it and a person/group target after it. Compiled and
    prefiltered like `_Rule`."""

    label: str
    base_pattern: str
    inflected_pattern: str
    weight: int

    @cached_property
    def base(self) -> re.Pattern[str]:
        return re.compile(self.base_pattern)

    @cached_property
    def inflected(self) -> re.Pattern[str]:
        return re.compile(self.inflected_pattern)

    @cached_property
    def required(self) -> tuple[Requirement, Requirement]:
        return requirement(self.base_pattern), requirement(self.inflected_pattern)


def _rule(label: str, pattern: str, intent_boost: bool = False, negatable: bool = False, **severities: int) -> _Rule:
    return _checked_rule(label, pattern, severities, intent_boost, negatable)


def _checked_rule(
    label: str, pattern: str, severities: Mapping[str, int], intent_boost: bool = False, negatable: bool = False
) -> _Rule:
    unknown = set(severities) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"rule {label!r}: unknown categories {sorted(unknown)}")
    return _Rule(label, pattern, MappingProxyType(dict(severities)), intent_boost, negatable)


def _lexicon(category: str, weighted_terms: Mapping[str, int], prefix: str = "term") -> list[_Rule]:
    """One rule per lexicon term; terms are regex fragments matched on word boundaries."""
    return [
        _checked_rule(f"{prefix}: {_term_label(term)}", rf"(?<![\w'])(?:{term})(?![\w'])", {category: weight})
        for term, weight in weighted_terms.items()
    ]


def _term_label(term: str) -> str:
    """Readable label for a lexicon regex: its first alternative without regex syntax."""
    return re.sub(r"[^a-z ]", "", re.split(r"[(|\[?]", term)[0]).strip() or term


def _verb(label: str, base: str, inflected: str, weight: int) -> _Verb:
    return _Verb(label, rf"(?<![\w'])(?:{base})(?![\w'])", rf"(?<![\w'])(?:{inflected})(?![\w'])", weight)


# Slurs are stored ROT13-encoded so the source stays readable for reviewers (decode with codecs).
_SLURS_ROT13 = {
    "avttre": 6,
    "avttn": 5,
    "fnaqavttre": 6,
    "xvxr": 6,
    "fcvp": 5,
    "puvax": 5,
    "tbbx": 5,
    "jrgonpx": 6,
    "ornare": 5,
    "enturnq": 5,
    "gbjryurnq": 5,
    "snttbg": 6,
    "snt": 4,
    "qlxr": 4,
    "genaal": 5,
    "ergneq": 4,
    "ergneqrq": 4,
    "pbba": 4,
    "cnxv": 5,
    "wnc": 4,
    "xenhg": 3,
    "tlccb": 5,
    "cvxrl": 4,
    "furznyr": 4,
    "mvccreurnq": 5,
    "ubaxl": 4,
    "jbc": 4,
    "qntb": 4,
    "zhmmvr": 5,
}


def _slur_rules() -> list[_Rule]:
    """One rule per severity level; each slur also matches its plural ("-s", "-es", "-y" -> "-ies")."""
    by_weight: dict[int, list[str]] = {}
    for encoded, weight in _SLURS_ROT13.items():
        word = codecs.decode(encoded, "rot13")
        form = f"{word[:-1]}(?:y|ies)" if word.endswith("y") else f"{word}(?:e?s)?"
        by_weight.setdefault(weight, []).append(form)
    return [
        _rule("slur", rf"(?<![\w'])(?:{'|'.join(sorted(forms))})(?![\w'])", hate=weight)
        for weight, forms in sorted(by_weight.items())
    ]


_SLUR_RULES = _slur_rules()

_PLACE = (
    r"(?:homes?|house|houses|shops?|stores?|cars?|business(?:es)?|offices?|church(?:es)?|mosques?|"
    r"synagogues?|temples?|schools?|places?|buildings?|neighbou?rhoods?|warehouses?|malls?|"
    r"factor(?:y|ies)|stations?|clinics?|banks?|restaurants?|bars?|clubs?|campus|headquarters|hq|"
    r"plants?|embass(?:y|ies)|trucks?|vans?|vehicles?|fleet|lorr(?:y|ies)|courthouses?|hospitals?|airports?|stadiums?|trains?|buses|"
    r"branch(?:es)?|locations?|apartments?|flats?|village|town|city)"
)
_SELF = r"(?:yourself|urself|your self|ur self|yourselves|yo self)"
_ELIM_KILL = (
    r"(?:exterminated|wiped out|eradicated|eliminated|gassed|killed|purged|shot|hanged|hung|"
    r"burned|burnt|lynched|slaughtered|executed|put down|put in (?:camps|ovens)|lined up and shot|"
    r"thrown off (?:\w+ )?(?:buildings|roofs|rooftops|cliffs|bridges|towers)|burned alive|"
    r"put to death|drowned|stoned|exterminated like \w+|beaten|hunted down|strung up|bombed|nuked|"
    r"sent to (?:the )?(?:ovens|camps|gas chambers|concentration camps)|wiped off (?:the face of )?"
    r"(?:the earth|the planet|the map)|erased|annihilated)"
)
_ELIM_EXPEL = (
    r"(?:deported|removed|banned|locked up|sterili[sz]ed|rounded up|thrown out|kicked out|"
    r"sent back|segregated|expelled|caged)"
)
_DEHUMANIZE = (
    r"(?:vermin|animals|beasts|savages|subhuman|sub human|not human|less than human|parasites|"
    r"cockroaches|roaches|rats|rodents|insects|lice|leeches|maggots|pigs|dogs|apes|monkeys|"
    r"filth|scum|trash|garbage|a disease|a plague|a cancer|a virus|an infestation|a pest|pests|"
    r"subhumans|animals not humans|not people|cattle|useless eaters|breeders|baby factories|bugs|"
    r"termites|locusts|a swarm|an invasion|germs|dirt|a drain|a blight|a stain)"
)
_DEMEAN = (
    r"(?:criminals|rapists|terrorists|thieves|invaders|inferior|degenerates?|mentally ill|freaks|"
    r"worthless|disgusting|dirty|evil|a burden|stupid|dumb|lazy|sick|perverts|pedophiles|"
    r"groomers|the enemy|a threat|ruining (?:everything|this country|our country)|useless)"
)

_RULES: list[_Rule] = [
    # ---- violence: context patterns ----
    _rule(
        "threat: knows where target lives",
        r"\b(?:i|we)\b(?:\s+[\w']+){0,3}\s+(?:know|found out) (?:where|your address)"
        r"(?: (?:you|u|he|she|they) (?:live|lives|sleep|sleeps|work|works))?",
        violence=5,
    ),
    _rule(
        "threat: you are dead",
        r"\b(?:you|u)(?:'re| are| r|re) (?:so )?(?:dead(?! (?:tired|right|on|"
        r"serious|set|center|certain|wrong|sexy|last|gorgeous|cute|simple|easy))|dead meat|a dead man|"
        r"finished|going to die|gonna die|next(?! (?:in line|up|on|to|week|month|time)))\b",
        violence=5,
    ),
    _rule(
        "threat: you will suffer",
        r"\b(?:you|u)(?:'ll| will| are going to| r gonna|'re gonna) "
        r"(?:die|bleed|suffer|regret (?:this|it|that|the day)|pay for (?:this|that|it)|be sorry)\b",
        violence=4,
    ),
    _rule(
        "threat: watch your back",
        r"\b(?:sleep with one eye open|your days are numbered)\b",
        violence=4,
    ),
    _rule(
        "incitement: arson/destruction of homes or places",
        r"\b(?:burn|burns|burning|torch|torches|torching|firebomb|firebombs|bomb|bombs|blow up|blows up|"
        r"smash up|vandali[sz]e|shoot up)(?: down)? (?:your|their|his|her|the|that|those|these|every|our) "
        rf"(?:\w+ )?{_PLACE}\b",
        violence=5,
        intent_boost=True,
    ),
    _rule(
        "mass violence: shoot up a place",
        r"\bshoot(?:s|ing)? up (?:the|a|that|this|our|your|my|his|"
        r"their) (?:\w+ )?(?:school|store|mall|office|church|mosque|synagogue|warehouse|place|party|"
        r"concert|club|building|class|work)\b",
        violence=7,
    ),
    _rule(
        "weapon instructions",
        r"\b(?:how to|ways? to|instructions?(?: for| to|:)?|guide to|steps to|"
        r"learn to) (?:make|build|assemble|construct|put together)?\s?(?:a |an |your own )?(?:pipe |"
        r"nail |car |homemade |home made |fertili[sz]er |pressure cooker )?(?:bomb|explosives?|"
        r"molotovs?|molotov cocktails?|ied|detonators?|napalm|ghost gun)\b",
        violence=6,
    ),
    _rule(
        "incitement: should be harmed",
        rf"\b(?:should|must|need to|needs to|ought to|deserves? to|"
        rf"has to|have to|gotta)(?: all)? (?:be|get) (?:beaten|{_ELIM_KILL}|stabbed|murdered|tortured|"
        r"raped|beaten up|run over|strung up|shot dead)\b",
        violence=5,
    ),
    _rule(
        "graphic violence",
        r"\b(?:(?:slit|slits|slitting|cut|ripped|tore|torn|sliced|gouged) (?:open )?"
        r"(?:his|her|their|your|its) (?:throats?|guts|heads?|hearts?|eyes? out|stomachs?)|blood "
        r"(?:everywhere|all over|pooling|spurting|splattered|gushing|pouring)|beheaded|decapitated|"
        r"dismembered|disembowell?ed|bashed (?:his|her|their) (?:head|skull) in|brains? (?:splattered|"
        r"blown out)|guts (?:spilling|hanging) out)\b",
        violence=5,
    ),
    _rule(
        "violence: to death",
        r"\b(?:beat|beaten|beating|stab|stabbed|stabbing|burn|burned|burnt|kick|"
        r"kicked|choke|choked|strangle|strangled|torture|tortured|whip|whipped|stone|stoned|bludgeon|"
        r"bludgeoned)(?:\s+[\w']+){0,3} to death\b",
        violence=5,
        intent_boost=True,
    ),
    _rule(
        "incitement: take up arms",
        r"\b(?:grab|get|load|bring|take up) (?:your|our|the|my|their) "
        r"(?:guns|rifles|weapons|arms|pitchforks|machetes)\b|\btake up arms\b|\block and load\b",
        violence=3,
    ),
    _rule(
        "lethal threat idiom",
        r"\b(?:put|puts|putting) (?:a |one |two |some )?(?:bullets?|rounds?|a knife|"
        r"a blade|a hole) (?:in|into|through|between) (?:your|his|her|their|that|the|this|those|these|"
        r"ur)\b|\b(?:put|send|puts|sending|putting) (?:you|him|her|them|u|(?:the|that|this|your|his|her) "
        r"\w+) (?:six feet under|(?:in|into) (?:the|a) (?:ground|hospital|body bag|morgue|wheelchair|coma|"
        r"grave|icu|emergency room))\b|\b(?:break|snap|crush|shatter)(?:\s+\w+){0,2} bones? in (?:your|"
        r"ur|his|her|their) body\b|\b(?:you|he|she|they)(?:'ll| will) (?:end up|be) (?:six feet under|in "
        r"a body bag|in the morgue)\b",
        violence=6,
    ),
    _rule(
        "harm as deserved",
        r"\b(?:needs?|deserves?|is getting|gonna get|will get|going to get|asking "
        r"for|earned) (?:a |an |some )?(?:bullet|beating|bullets|knife|noose|rope|ass ?whooping|"
        r"whooping|bullet in (?:the|his|her) head|(?:a )?bat to the (?:head|face))\b",
        violence=5,
    ),
    _rule(
        "dehumanizing violence simile",
        r"\b(?:kill|hunt|shoot|slaughter|put down|beat|treat|gut|"
        r"butcher)(?:s|ed|ing)? (?:you|u|him|her|them|em)(?: down)? like (?:a |the )?(?:dogs?|animals?|"
        r"pigs?|rats?|vermin|cattle)\b",
        violence=5,
    ),
    _rule(
        "property will burn",
        rf"\b(?:your|ur|their|his|her) {_PLACE} (?:burns|will burn|'ll burn|is "
        r"going to burn|gonna burn|goes up in flames|will go up in flames|gets? (?:torched|burned|"
        r"bombed|blown up)|blows up|will blow up)\b",
        violence=5,
    ),
    _rule(
        "stalking with weapon",
        r"\b(?:waiting|wait|lurking|coming|come|show up|showing up|see you)\b"
        r"[^.!?]{0,15}\b(?:outside|for (?:you|u)|at (?:your|ur)|behind|in (?:your|ur))\b[^.!?]{0,40}"
        r"\bwith (?:a|my|the) (?:knife|gun|bat|axe|hammer|machete|rifle|pistol|crowbar|blade|shotgun)\b",
        violence=6,
    ),
    _rule(
        "watch them suffer",
        r"\b(?:see|watch|make|hear) (?:you|u|him|her|them|that \w+|the \w+|"
        r"your \w+) (?:bleed|die|suffer|burn|scream|beg for (?:mercy|(?:his|her|their|your) life))\b",
        violence=5,
    ),
    _rule(
        "violent phrasal verb",
        r"\b(?:run|mow|gun|beat|cut|tie|string|shoot|smoke) (?:you|u|him|"
        r"her|them|em) (?:over|down|up|out)\b(?! (?:to|for) (?:dinner|lunch|a|the|our|\w+ing))",
        violence=3,
        intent_boost=True,
    ),
    _rule(
        "slang kill verb",
        rf"\b(?:pop|cap|smoke|whack|waste|shank|merk|body|off) (?:him|her|you|u|"
        rf"(?:that|this|the) (?:\w+ )?{_PERSON_NOUN})\b",
        violence=4,
        intent_boost=True,
    ),
    _rule(
        "coming for you",
        r"\b(?:we'?re|i'?m|we are|i am|they'?re|they are) coming for (?:you|u|your|"
        r"ur)\b",
        violence=4,
    ),
    _rule(
        "family named in threat",
        r"\b(?:and|&) (?:your|ur) (?:whole )?(?:kids|family|children|wife|"
        r"husband|mom|mother)\b",
        violence=3,
    ),
    _rule(
        "face beating",
        r"\b(?:rearrange|break|smash|bash|knock|punch|kick|cave|bust|beat) (?:in )?"
        r"(?:your|ur|his|her|their|(?:that|the|this) \w+'s) (?:\w+ )?(?:face|nose|jaw|teeth|skull|head)"
        r"(?: in| out)?\b",
        violence=5,
        intent_boost=True,
    ),
    _rule(
        "acid attack",
        r"\b(?:throw|splash|pour)(?:s|ing)? (?:acid|bleach|boiling water|lye) (?:in|on|at|"
        r"into) (?:your|ur|his|her|their|the) (?:face|eyes)\b",
        violence=6,
    ),
    _rule(
        "bomb making",
        r"\b(?:building|making|build|make|made|built|assembling|assemble)(?: a| an| my| "
        r"some)? (?:pipe |homemade |nail |car )?(?:bombs?|explosives?|ieds?)\b",
        violence=5,
    ),
    _rule(
        "passive harm",
        r"\b(?:gets?|will get|gonna get|is getting|is going to get) (?:stabbed|shot|killed|"
        r"murdered|beaten|hurt|strangled|burned|jumped|shanked)\b",
        violence=4,
    ),
    _rule(
        "lynching",
        r"\bhang (?:\w+ ){0,2}from (?:a |the )?(?:\w+ )?(?:tree|trees|lamppost|lampposts|"
        r"bridge|rafters|streetlights?)\b",
        violence=6,
    ),
    _rule(
        "armed and coming",
        r"\b(?:loading|loaded|cleaning|sharpening|grabbing|got|bought) (?:my|a|the) "
        r"(?:gun|rifle|pistol|shotgun|knife|machete|ar ?15|glock)\b[^.!?]{0,60}\b(?:see you|for you|"
        r"for u|coming for|waiting for|at your)\b",
        violence=5,
    ),
    _rule(
        "set on fire",
        r"\bset (?:you|u|him|her|them|em|\w+) (?:on fire|alight|ablaze)\b|\bburn "
        r"(?:you|u|him|her|them|em) alive\b|\bdouse (?:you|u|him|her|them) in (?:gas|gasoline|petrol)\b",
        violence=6,
        intent_boost=True,
    ),
    _rule(
        "bringing a weapon to a place",
        r"\b(?:bring|bringing|brought|taking|take|carry|carrying|coming "
        r"with) (?:my|a|the|his|our|some) (?:loaded )?(?:gun|guns|rifle|pistol|knife|machete|weapon|"
        r"weapons|ar ?15|shotgun|bomb) (?:to|into|in) (?:your|the|their|his|her|our|that|this|school|"
        r"work|class|church)\b",
        violence=5,
    ),
    _rule(
        "passive threat",
        r"\b(?:you|u|your (?:\w+ )?(?:family|kids|children|wife|husband|mom|dad|"
        r"friends|staff|employees|workers|store|shop|house|home)|he|she|they|everyone)(?:'re|'s| is| are|"
        r"'ll| will| gonna| going to| is going to| are going to| will soon)(?: \w+)? (?:get|be|end up) "
        r"(?:hurt|killed|shot|stabbed|beaten|murdered|burned|burnt|blown up|bombed|tortured|raped|"
        r"beaten up|dead)\b",
        violence=5,
    ),
    _rule(
        "wish of harm",
        r"\b(?:i hope|hope|i wish|wish|may|pray that|praying that) (?:someone|somebody|"
        r"a \w+|they|you|u|he|she|your \w+)\b[^.!?]{0,25}\b(?:kills?|killed|stabs?|stabbed|shoots?|shot|"
        r"beats?|beaten|rapes?|raped|murders?|murdered|hurts?|runs? (?:you |u |him |her )?over|dies|die|"
        r"burns?|chokes?|gets? (?:shot|stabbed|killed|run over|cancer|hit by a (?:car|bus|truck|train)))\b"
        r"(?! (?:laughing|of laughter|happy|of envy|for))",
        violence=5,
    ),
    _rule(
        "intimidation: show them what happens",
        r"\bshow (?:them|those|these|him|her|you)(?: \w+)? "
        r"what happens\b|\bteach (?:them|him|her|you|(?:those|these|the|that) \w+) a lesson\b",
        violence=3,
    ),
    _rule(
        "armed group",
        r"\bwith (?:bats|baseball bats|guns|knives|machetes|crowbars|pipes|rifles|weapons|"
        r"pitchforks|torches|clubs|chains)\b",
        violence=3,
    ),
    _rule(
        "beating outcome",
        r"\b(?:beat|kick|punch|hit|stomp|choke|strangle|stab|whip|hold|drown)\w*\b"
        r"[^.!?]{0,40}\buntil (?:he|she|they|you|u|it) (?:stops? (?:moving|breathing)|can'?t (?:move|walk|"
        r"breathe|stand|see)|bleeds?|dies|die|is dead|are dead|passes out|pass out)\b|\b(?:choke|beat|"
        r"squeeze|kick|knock|strangle|punch)(?:s|ed|ing)? the (?:life|shit|crap|hell|living daylights) out "
        r"of\b",
        violence=5,
        intent_boost=True,
    ),
    _rule(
        "blood price",
        r"\bpay (?:in|with) (?:blood|(?:your|their|his|her) (?:lives|life|blood))\b|"
        r"\bnobody (?:leaves|gets out|walks out|makes it out) alive\b|\bno one (?:leaves|gets out|walks "
        r"out) alive\b",
        violence=6,
    ),
    _rule(
        "returning armed",
        r"\b(?:coming|come|going|show up|showing up|walk in|walking in|be back|"
        r"returning)(?: back)?(?: (?:in|into|to) (?:\w+ )?\w+)? with (?:a|my|the|an) (?:gun|rifle|pistol|"
        r"shotgun|knife|machete|bomb|ar ?15|glock|weapon|axe)\b",
        violence=5,
    ),
    _rule(
        "mutilation",
        r"\b(?:gouge|rip|tear|pluck|claw|poke|cut|burn)(?:s|ed|ing)? (?:out )?(?:his|her|"
        r"their|your|ur) (?:eyes?|tongue|throat|heart|guts|teeth|fingers?|fingernails|nails)(?: out)?\b",
        violence=5,
        intent_boost=True,
    ),
    _rule(
        "mass target",
        r"\b(?:kill|shoot|stab|murder|bomb)(?:\s+[\w']+){0,2} (?:everyone|everybody|"
        r"all of (?:you|them)|every last one) (?:at|in|from|who)\b",
        violence=6,
        intent_boost=True,
    ),
    _rule(
        "threat: weapon against person",
        r"\b(?:with|using) (?:a|my|the|this) (?:bat|knife|gun|hammer|"
        r"machete|crowbar|axe|blade|pistol|rifle|brick)\b(?=[^.!?]*\b(?:you|him|her|them)\b)|\b(?:you|"
        r"him|her|them) with (?:a|my|the|this) (?:bat|knife|gun|hammer|machete|crowbar|axe|pistol|"
        r"rifle|brick)\b",
        violence=3,
    ),
    # ---- violence: weighted lexicon (mentions; intent/target do not apply) ----
    *_lexicon(
        "violence",
        {
            "violence": 1,
            "violent": 1,
            "bloodshed": 3,
            "bloodbath": 3,
            "massacres?": 3,
            "massacred": 3,
            "genocide": 2,
            "terrorist attack": 3,
            "terrorism": 2,
            "terrorists?": 2,
            "bombings?": 3,
            "shootings?": 2,
            "gunman": 2,
            "homicides?": 2,
            "assault(?:ed|s)?": 1,
            "assault rifles?": 2,
            "weapons?": 1,
            "guns?": 1,
            "grenades?": 2,
            "bombs?": 2,
            "explosives?": 1,
            "gore": 2,
            "corpses?": 2,
            "dead bod(?:y|ies)": 2,
            "blood": 1,
            "bleed(?:ing)? out": 3,
            "hostages?": 2,
            "war crimes?": 2,
            "mutilat(?:e|ed|ion)": 4,
            "lynch(?:ing|ed)?": 4,
        },
        prefix="violence term",
    ),
    # ---- hate: context patterns ----
    _rule(
        "dehumanizing group",
        rf"\b{_GROUP_SUBJECT} (?:are|is|r|=|were|be)(?: all| just| nothing but| "
        rf"basically| literally| no better than| like| such| truly| simply)* (?:a |an )?(?:[\w']+ ){{0,2}}"
        rf"{_DEHUMANIZE}\b",
        hate=6,
    ),
    _rule(
        "group likened to vermin",
        rf"\b{_GROUP}\b[^.!?]{{0,50}}\blike (?:a |the |some )?(?:plague|"
        r"cockroaches|roaches|rats|locusts|vermin|animals|parasites|cancer|virus|rabbits|insects|flies|"
        r"cattle|dogs|pigs|apes|monkeys|savages|a disease)\b",
        hate=6,
    ),
    _rule(
        "demeaning generalization about group",
        rf"\b{_GROUP_SUBJECT} (?:are|is|r|=)(?: all| just|"
        rf" basically| literally| naturally| born| always| nothing but| genetically| too| so| very| "
        rf"really| far too| way too| inherently| clearly| obviously| by nature)* (?:a |an )?"
        rf"(?:[\w']+ (?:and )?)?{_DEMEAN}\b|\b{_GROUP_SUBJECT} (?:are|is) (?:not|never) (?:smart|"
        rf"intelligent|"
        r"capable|human|clean|civili[sz]ed|fit) enough\b",
        hate=5,
    ),
    _rule(
        "group invasion rhetoric",
        rf"\b{_GROUP_SUBJECT} (?:are|is|keep)(?: \w+)? (?:invading|infesting|"
        r"swarming|flooding|overrunning|breeding like|taking over|destroying|ruining|poisoning|polluting|"
        r"replacing)\b",
        hate=5,
    ),
    _rule(
        "group denied right to live",
        rf"\b{_GROUP_SUBJECT}\b[^.!?]{{0,40}}\b(?:don'?t|do not|doesn'?t|"
        r"does not) deserve (?:to live|to exist|to breathe|rights|to be here|to live here)\b",
        hate=6,
    ),
    _rule(
        "discrimination against group member",
        r"\b(?:never|won'?t|wouldn'?t|refuse to|don'?t|will not) "
        r"(?:hire|rent to|serve|date|trust|work with|sell to|let in) (?:a |an |any )?(?:woman|women|"
        r"jew|jews|muslim|muslims|black|blacks|immigrant|immigrants|gay|gays|mexican|mexicans|arab|"
        r"arabs|asian|asians|foreigner|foreigners|trans person|trans people|disabled person)\b",
        hate=4,
    ),
    _rule(
        "group kept in their place",
        rf"\b{_GROUP_SUBJECT} (?:belong|should stay|should be kept|must "
        r"stay)(?: only)? (?:in the kitchen|barefoot|in chains|in cages|in zoos|in camps|in the fields|in "
        r"their place|at home and silent|out of sight)\b",
        hate=5,
    ),
    _rule("group smell insult", rf"\b{_GROUP_SUBJECT} (?:all )?(?:smell|stink|reek)\b", hate=4),
    _rule(
        "holocaust denial or praise",
        r"\bhitler (?:was|is) (?:right|a hero)\b|\bholocaust (?:never "
        r"happened|was a hoax|is a lie|didn'?t happen|was fake)\b|\bfinish what hitler started\b|"
        r"\b(?:bring back|reopen) the (?:camps|ovens|gas chambers)\b",
        hate=6,
    ),
    _rule(
        "only good group member",
        rf"\bthe only good {_GROUP} (?:is|are) (?:a |an )?(?:dead|deported|"
        r"gone|absent|hanged|locked up|silent)\b",
        hate=6,
    ),
    _rule(
        "group should be eliminated",
        rf"\b{_GROUP}\b[^.!?]{{0,60}}\b(?:should|must|need to|ought to|"
        rf"deserve to|have to|will|gotta)(?: all)? (?:be|get) {_ELIM_KILL}\b",
        hate=7,
        violence=6,
    ),
    _rule(
        "group should be expelled",
        rf"\b{_GROUP}\b[^.!?]{{0,60}}\b(?:should|must|need to|ought to|"
        rf"deserve to|have to|gotta)(?: all)? (?:be|get) {_ELIM_EXPEL}\b",
        hate=5,
    ),
    _rule(
        "call to eliminate group",
        rf"\b(?:exterminate|eradicate|wipe out|gas|kill|slaughter|purge|"
        rf"lynch|hang|shoot|burn|eliminate)(?: all| every| the| these| those| every last| of the| "
        rf"off)* {_GROUP}\b",
        hate=7,
        violence=6,
    ),
    _rule(
        "call to expel group",
        rf"\b(?:deport|ban|get rid of|kick out|throw out|round up|lock up|"
        rf"remove|send back)(?: all| every| the| these| those| of the)* {_GROUP}\b|\bkeep (?:the |all |"
        rf"those |these )?{_GROUP} out\b|\b{_GROUP}\b[^.!?]{{0,60}}\b(?:should|must|need to|can|"
        r"better) go (?:home|back)\b",
        hate=5,
    ),
    _rule(
        "call to act against group (pronoun)",
        rf"\b{_GROUP}\b[^.!?]{{0,80}}\b(?:ban|deport|kill|"
        r"exterminate|gas|get rid of|kick out|lock up|round up|shoot|hang|throw out) (?:them|em|'em)"
        r"(?: all)?\b|\b{_GROUP}\b[^.!?]{{0,80}}\bput (?:them|em|'em) (?:all )?down\b",
        hate=5,
    ),
    _rule(
        "exclusion of group",
        rf"\bno {_GROUP}(?:(?:,| or| and|, or|, and) {_GROUP})* (?:allowed|welcome|"
        rf"wanted|served|permitted)\b|\b{_GROUP} "
        r"(?:(?:don'?t|do not|doesn'?t|does not) belong|(?:are|is) not welcome|not allowed)\b",
        hate=5,
    ),
    _rule(
        "hatred of group",
        rf"\b(?:i|we) (?:\w+ )?(?:hate|despise|loathe|can'?t stand)(?: all| the| "
        rf"these| those| every)* {_GROUP}\b",
        hate=5,
    ),
    _rule(
        "xenophobic go-back",
        r"\bgo back (?:to )?(?:your|their|where (?:you|they) came from|africa|"
        r"mexico|china|your own|their own)\b(?:(?: own)? (?:country|countries|kind|shithole|jungle))?",
        hate=5,
    ),
    _rule(
        "slur-like epithet for group",
        rf"\b(?:dirty|filthy|stinking|disgusting|subhuman|savage|"
        rf"greasy|inbred|illegal) (?:fucking )?(?:{_GROUP}|foreigner|immigrant|jew|muslim|arab|mexican|"
        rf"gay|tranny|migrant|refugee|asian|african|gypsy)\b",
        hate=5,
    ),
    _rule(
        "get group out",
        r"\bget (?:these|those|the|all|all the|all these) (?:\w+ )?(?:out of|off) "
        r"(?:my|our|this|the)\b",
        hate=3,
    ),
    _rule(
        "supremacist slogan",
        r"\b(?:heil hitler|sieg heil|white power|master race|race traitors?|"
        r"white genocide|great replacement|gas the|14 ?88|1488)\b",
        hate=5,
    ),
    *_lexicon(
        "hate",
        {
            "nazis?": 1,
            "white supremac(?:y|ist|ists)": 2,
            "ethnic cleansing": 3,
            "racial purity": 3,
            "hate crimes?": 1,
            "bigot(?:s|ry)?": 1,
            "racist": 1,
            "idiots?": 1,
            "morons?": 1,
            "losers?": 1,
            "stupid": 1,
            "bitch(?:es)?": 2,
            "cunts?": 3,
            "whores?": 2,
            "sluts?": 2,
            "bastards?": 1,
            "assholes?": 2,
            "dumbass": 1,
            "fuck (?:you|u|off|them)": 3,
            "scumbags?": 2,
        },
        prefix="hate term",
    ),
    *_SLUR_RULES,
    # ---- self-harm: context patterns ----
    _rule(
        "self-harm encouragement",
        rf"\b(?:you should|u should|you need to|u need to|you ought to|"
        rf"just|go|go and|go ahead and|why don'?t you|why not|pls|please|plz|do us a favou?r and|"
        rf"do everyone a favou?r and|do the world a favou?r and|better|might as well)(?:\s+[\w']+)?"
        rf"\s+(?:kill|hang|hurt|cut|starve|off|drown|shoot|poison|burn|end|harm) {_SELF}\b",
        self_harm=7,
        negatable=True,
    ),
    _rule(
        "self-harm directive",
        rf"\b(?:kill(?:s|ing)?|hang(?:s|ing)?|hurt(?:s|ing)?|cut(?:s|ting)?|"
        rf"starv(?:e|es|ing)|off(?:s|ing)?|drown(?:s|ing)?|shoot(?:s|ing)?|poison(?:s|ing)?|burn(?:s|ing)?|"
        rf"harm(?:s|ing)?|end(?:s|ing)?) {_SELF}\b",
        self_harm=6,
        negatable=True,
    ),
    _rule(
        "end your life push",
        r"\b(?:end|take|ending|taking) (?:your|ur) (?:own )?life\b(?! (?:to|back|"
        r"into|in|up|with|further|forward|outdoors|on the road|by storm))",
        self_harm=6,
        negatable=True,
    ),
    _rule("self-harm abbreviation", r"(?<![\w'])kys(?![\w'])", self_harm=6),
    _rule(
        "wish of death",
        r"\b(?:go|just|please|pls) (?:die|drop dead|jump off a (?:bridge|cliff|roof)|"
        r"rot)\b|\bdo (?:everyone|us|the world) a favou?r and (?:die|disappear|vanish|jump)\b|"
        r"\bdie already\b|\bi hope you die\b|\bhope (?:you|u) (?:die|get cancer|choke)\b",
        self_harm=5,
    ),
    _rule(
        "worthlessness push",
        r"\b(?:nobody|no one|noone) (?:would|will|is going to|gonna)? ?(?:miss|care"
        r" about|notice|cry for|mourn) (?:you|u)\b|\b(?:the )?world (?:would be|is|'d be) better (?:off )?"
        r"without (?:you|u)\b|\b(?:nobody|no one) (?:would|will)? ?(?:care|notice) if (?:you|u) "
        r"(?:died|were gone|disappeared)\b",
        self_harm=4,
    ),
    _rule("end-it push", r"\b(?:so|just|go|you should|u should|why don'?t you|then) end it(?: all)?\b", self_harm=5),
    _rule(
        "self-harm ideation",
        r"\bi(?:'?m| am)?(?: \w+)? (?:want|wanna|going|gonna|plan|planning|"
        r"about|ready|thinking about|decided|deserve|need)(?: to)? (?:kill myself|end my life|end it "
        r"all|end it|commit suicide|hang myself|cut myself|hurt myself|overdose|die|disappear forever|"
        r"not wake up)\b",
        self_harm=4,
        negatable=True,
    ),
    _rule(
        "self-harm first person",
        r"\b(?:kill|hang|cut|hurt|starve|killing|cutting|hurting|starving|"
        r"harming) myself\b",
        self_harm=4,
        negatable=True,
    ),
    _rule(
        "self-harm plan timing",
        r"\b(?:kill myself|end my life|end it all|commit suicide|overdose)\b"
        r"[^.!?]{0,30}\b(?:tonight|tomorrow|this weekend|today|soon|next week|before)\b",
        self_harm=5,
    ),
    _rule(
        "suicide method",
        r"\b(?:how|ways?|best way|easiest way|quickest way|fastest way|painless way|"
        r"tips?|guide|methods?) to (?:kill (?:yourself|myself|urself)|commit suicide|end (?:your|my|ur) "
        r"life|die|cut (?:deeper|yourself|myself)|hang (?:yourself|myself)|overdose|od|slit)\b",
        self_harm=6,
    ),
    _rule(
        "overdose push",
        r"\b(?:take|swallow|down|taking|swallowing)(?: all| a whole bottle of| a "
        r"bottle of| the whole bottle of| \d+ of| a bunch of| a handful of| handfuls of| lots of| a lot of|"
        r" way too many| too many)(?: your| the| my| ur)?(?: [\w']+'s)? (?:pills|meds|medication|"
        r"tablets|sleeping pills|painkillers|tylenol|acetaminophen|paracetamol|ibuprofen|aspirin|xanax|"
        r"oxy|opioids|insulin)\b|"
        r"\boverdose on (?:your|ur|my|the|all|some)? ?(?:meds|pills|medication|insulin|"
        r"tylenol|painkillers|sleeping pills)\b",
        self_harm=5,
    ),
    _rule(
        "cutting method",
        r"\bslit (?:your|ur|my|their) wrists?\b|\bcut (?:deeper|along the veins?)\b|"
        r"\b(?:cut|slice|slash|carve|open)(?:s|ing)? (?:up |open )?(?:your|ur|my) (?:wrists?|arms?|thighs?|"
        r"veins?|skin|legs?)\b|\brazors? (?:to|on|across) (?:your|ur|my) "
        r"(?:skin|wrists?|arms?|thighs?)\b",
        self_harm=6,
    ),
    _rule(
        "suicide method question",
        r"\bhow (?:many|much) (?:[\w']+ ){0,3}(?:does it take|do i need|would"
        r" it take|to take|should i take|until) (?:to )?(?:die|overdose|kill|od|not wake up|be fatal|"
        r"stop (?:my|your) heart)\b",
        self_harm=6,
    ),
    _rule(
        "lethal jump",
        r"\b(?:jump|throw yourself|lie down|step|walk) in front of (?:a |the )?(?:train|bus|"
        r"truck|car|subway)\b|\b(?:jump|throw yourself) off (?:a |the |of a )?(?:bridge|roof|cliff|"
        r"building|balcony|tower|overpass)\b",
        self_harm=6,
        negatable=True,
    ),
    _rule(
        "self-harm coping",
        r"\b(?:cut|cutting|burn|burning|hurt|hurting|scratch|scratching)(?: myself)?"
        r"(?: again)? when (?:i|i'm) (?:feel|get|am)(?: so| really)? (?:bad|sad|down|low|numb|empty|"
        r"anxious|"
        r"worthless|overwhelmed|upset|depressed)\b|\brazors?(?: blades?)?\b[^.!?]{0,40}\bto cut\b(?! "
        r"(?:\w+ )?(?:hair|beard|paper|fabric|tape|boxes|box|coupons))",
        self_harm=5,
    ),
    _rule(
        "death wish ideation",
        r"\bi (?:don'?t|do not) want to (?:be alive|live|exist|wake up)\b|\bi "
        r"(?:want|wanna|wish i (?:could|was|were)) (?:to )?(?:disappear forever|be dead|not exist|stop "
        r"existing|never wake up)\b|\bi wish i (?:was|were) dead\b|\b(?:no|not any) (?:reason|point) "
        r"(?:to|in) (?:live|living|going on)\b|\b(?:sleep forever|never wake up|eternal sleep|end the "
        r"pain forever)\b",
        self_harm=4,
    ),
    _rule(
        "eating-disorder push: ignore body",
        r"\bignore (?:the |your )?(?:dizziness|hunger|fainting|"
        r"hunger pains?|hunger pangs|your body|headaches)\b|\b(?:best|only|fastest|quickest) way to "
        r"(?:get|be|stay) (?:skinny|thin|bony|underweight)\b|\buntil (?:you|u) can see (?:your|ur) "
        r"(?:ribs|bones|collarbones|hip bones)\b",
        self_harm=4,
    ),
    _rule(
        "better off without you",
        r"\bwould be (?:so much |much |a lot )?(?:happier|better(?: off)?|"
        r"easier)\b[^.!?]{0,20}\b(?:if|without) (?:you|u)\b",
        self_harm=4,
    ),
    _rule(
        "do it push",
        r"\b(?:just|so|go|now|then) do it(?: already| tonight| now| today)?\b|\bdo it "
        r"already\b",
        self_harm=3,
    ),
    _rule(
        "question of being alive",
        r"\bwhy (?:are|r) (?:you|u) (?:still )?alive\b|\bwhy (?:don'?t|dont) "
        r"(?:you|u) (?:just )?die\b|\b(?:you|u) (?:should|ought to) (?:be dead|not exist|not be alive)\b|"
        r"\b(?:you|u) (?:don'?t|do not) deserve to (?:live|exist|be alive)\b",
        self_harm=5,
    ),
    _rule(
        "worthless taunt",
        r"\b(?:you'?re|you are|ur|u r) (?:such )?(?:a burden|worthless|pathetic|a "
        r"waste of (?:space|air|oxygen)|useless)\b|\b(?:nobody|no one) (?:loves|likes|wants) (?:you|u)\b|"
        r"\beveryone hates (?:you|u)\b",
        self_harm=3,
    ),
    _rule("end your suffering", r"\bend (?:your|ur) (?:suffering|misery|pain)\b", self_harm=3),
    _rule(
        "self-harm promotion",
        r"\b(?:cutting|self harm|starving|purging|bleeding)(?: yourself| myself)? "
        r"(?:is|was|helps|works|really helps)\b[^.!?]{0,40}\b(?:best|only|helps|works|feel|try it)\b|"
        r"\bcutting (?:is|was) the\b",
        self_harm=5,
    ),
    _rule(
        "poison ingestion",
        r"\b(?:drink|swallow|chug|inject)(?:ing)? (?:bleach|antifreeze|drain cleaner|"
        r"rat poison|poison|lye)\b|\b(?:bleach|antifreeze|rat poison|"
        r"drain cleaner)\b[^.!?]{0,40}\b(?:drink|"
        r"swallow|way out|chug)\b",
        self_harm=6,
        negatable=True,
    ),
    _rule("way out", r"\b(?:fastest|easiest|quickest|only|best|painless) way out\b", self_harm=4),
    _rule(
        "cut deeper",
        r"\b(?:blades?|razors?|knife|cut|cuts|wrists?)\b[^.!?]{0,40}\b(?:go|cut|press) "
        r"deeper\b",
        self_harm=6,
    ),
    _rule(
        "purge everything",
        r"\bthrow(?:ing)? up (?:everything|all|whatever|what) (?:you|u) eat\b|"
        r"\bvomit (?:after|everything)\b",
        self_harm=6,
    ),
    _rule(
        "mono-diet push",
        r"\b(?:eat|eating|have|drink)\b[^.!?]{0,40}\b(?:and nothing else|nothing but "
        r"(?:water|coffee|gum|ice|black coffee))\b",
        self_harm=4,
    ),
    _rule(
        "thinness goal",
        r"\b(?:you'?ll|you will|u will|to) be (?:so )?(?:skinny|thin|bony|tiny)\b|"
        r"\b(?:get|stay) (?:skinny|bony)\b(?! (?:jeans|fit|denim))|\bhow models stay thin\b",
        self_harm=3,
    ),
    _rule(
        "hiding self-harm",
        r"\bhid(?:e|es|ing) (?:your |the |my |ur )?(?:cuts|scars|self harm|burns|"
        r"wounds)\b|\bcut(?:ting)? (?:higher|lower|deeper|somewhere|where)\b[^.!?]{0,20}\b(?:thighs?|arms?|"
        r"wrists?|hips?|stomach)\b",
        self_harm=5,
    ),
    _rule("starve until", r"\bstarv(?:e|ing) (?:yourself )?(?:until|till|til) (?:you|u)\b", self_harm=5),
    _rule(
        "pain claim",
        r"\b(?:it'?s|its|is) (?:painless|quick and painless|the only way out|the easy "
        r"way out)\b",
        self_harm=2,
    ),
    _rule(
        "eating-disorder push: stop eating",
        r"\bstop eating(?=\s*(?:$|[.!?,;]|\s(?:entirely|"
        r"completely|altogether|for (?:a |\d+ |two |three |several )?(?:days?|weeks?|months?|while)|until|"
        r"and (?:you|u|watch)|if you want|to (?:lose|get|be|stay)\b)))",
        self_harm=5,
        negatable=True,
    ),
    _rule(
        "eating-disorder push: skip meals",
        r"\b(?:skip|skipping|skips)(?: every| all| all your| your| "
        r"most)+ meals?\b|\b(?:eat|eating|consume)(?: nothing| no food)(?: at all)?(?: for| until)\b|"
        r"\b(?:under|less than|below|max) [1-7]\d{2} (?:calories|kcal|cals)\b",
        self_harm=4,
        negatable=True,
    ),
    _rule(
        "eating-disorder community terms",
        r"\b(?:thinspo|thinspiration|pro ?ana|pro ?mia|meanspo|"
        r"bonespo|ana tips|mia tips|ana buddy|ana coach(?:es)?|mia buddy)\b",
        self_harm=5,
    ),
    _rule(
        "purging",
        rf"\b(?:make|force) (?:{_SELF}|yourself to|urself to|your self to)\s?(?:to )?(?:throw"
        r" up|vomit|puke|purge)\b|\bpurge (?:after|if you|every|when)\b|\blaxatives to (?:lose|drop)\b",
        self_harm=6,
        negatable=True,
    ),
    *_lexicon(
        "self_harm",
        {
            "suicide": 2,
            "suicidal": 2,
            "self harm(?:ing)?": 2,
            "overdos(?:e|ed|ing)": 1,
            "anorexi(?:a|c)": 1,
            "bulimi(?:a|c)": 1,
            "starve": 2,
            "hang myself": 4,
        },
        prefix="self-harm term",
    ),
    # ---- sexual: context patterns ----
    _rule(
        "sexual solicitation",
        r"\b(?:want|wanna|going|gonna|let'?s|lets|would love|'d love|looking|"
        r"dying|ready|down)(?: to)? (?:have sex|fuck|hook up|sleep with|bang|screw|get laid|smash|"
        r"make out|suck|lick|ride)\b(?! (?:your|the|a|an|our) (?:\w+ )?(?:tv|speakers?|devices?|"
        r"printer|console|phone|system))",
        sexual=6,
    ),
    _rule(
        "nudes solicitation",
        r"\b(?:send|show|post|dm|text|give)(?: me| us)?(?: your| ur| some| a)? "
        r"(?:nudes?|nude pics?|nude photos?|naked pics?|naked photos?|tits|boobs|titties|dick pics?|"
        r"pussy|ass|body pics?|pics of your (?:body|tits|boobs|ass))\b",
        sexual=6,
    ),
    _rule(
        "sex spam",
        r"\b(?:hot|horny|lonely|sexy|naughty|local|single|desperate|slutty)(?: \w+)? "
        r"(?:singles|girls|women|milfs|moms|wives|guys|men|babes|housewives|cougars|teens)(?: \w+)?"
        r" (?:in your area|near you|nearby|waiting|online now|want to|wanna|looking for)\b",
        sexual=6,
    ),
    _rule(
        "hook-up solicitation",
        r"\bhook ?up (?:with (?:me|you|u|someone|singles|strangers|locals|"
        r"girls|guys|women|men|hot)|tonight|now|today|near you)\b",
        sexual=5,
    ),
    _rule(
        "explicit act",
        r"\b(?:suck(?:s|ed|ing)?|lick(?:s|ed|ing)?|stroke(?:s|d)?|rub(?:s|bed|bing)?|"
        r"finger(?:s|ed|ing)?|ride|riding|spread(?:s|ing)?)(?:\s+[\w']+){0,3}? (?:dick|cock|pussy|tits|"
        r"clit|balls|penis|vagina|ass|nipples|it dry)\b|\b(?:dick|cock|pussy|tits|clit|penis|vagina)\b"
        r"[^.!?]{0,40}\b(?:suck|lick|stroke|ride|finger|touch|rub)(?:s|ed|ing)?\b",
        sexual=6,
    ),
    _rule(
        "sexual act with target",
        r"\bfuck(?:s|ed|ing)? (?:me|her|him|them|us)\b(?! (?:off|up|over))|"
        r"\bspread(?:s|ing)? (?:her|his|your|my|their) (?:legs|thighs|cheeks)\b|\b(?:bend|bent) (?:her|"
        r"you|me) over\b",
        sexual=5,
    ),
    _rule(
        "explicit anatomy description",
        r"\b(?:wet|tight|hard|throbbing|dripping|juicy|hairy|shaved|"
        r"big|huge|giant|massive|thick|swollen|rock hard|naked|bare)\s+(?:pussy|pussies|cock|cocks|dick|"
        r"dicks|tits|clit|boobs|penis|boner)\b|\bsit on (?:my|your|his|her) face\b|\bbarely legal\b",
        sexual=6,
    ),
    _rule(
        "nude pictures request",
        r"\b(?:pics?|photos?|pictures|videos?|selfies?)\b[^.!?]{0,40}\b(?:no "
        r"clothes|without clothes|nothing on|naked|nude|topless|undressed)\b|\b(?:see|watch) (?:me|her|him|"
        r"us|them) (?:get )?(?:naked|nude|topless|strip|undress)\b",
        sexual=5,
    ),
    _rule(
        "sexual intensity",
        r"\b(?:screw|bang|fuck|pound|smash|ride)(?:ing)? (?:all night|each other|so "
        r"hard|you so|you all night|me all night|you senseless|me senseless)\b",
        sexual=5,
    ),
    _rule(
        "sex spam: meet locals",
        r"\bmeet (?:\w+ )?(?:local|hot|horny|lonely|sexy|naughty|single|real|"
        r"dirty) (?:\w+ )?(?:singles|girls|women|milfs|moms|wives|guys|men|babes|housewives|cougars|"
        r"sluts|hotties)\b",
        sexual=5,
    ),
    _rule(
        "escort cues",
        r"\bescorts?\b[^.!?]{0,40}\b(?:full service|incall|outcall|discreet|hourly|"
        r"overnight|gfe|24 ?7|available|tonight)\b",
        sexual=5,
    ),
    _rule(
        "casual sex cues",
        r"\b(?:no strings attached|nsa fun|discreet encounters|casual encounters|"
        r"friends with benefits|fwb)\b",
        sexual=3,
    ),
    _rule(
        "explicit body contact",
        r"\b(?:see|show|suck|touch|lick|feel|taste|grab|squeeze|play with|"
        r"kiss|caress)(?:ing|ed|s)? (?:every inch of |all over )?(?:my|your|ur|his|her) (?:naked |wet |"
        r"hard )?(?:dick|cock|pussy|tits|boobs|ass|balls|penis|nipples|clit)\b",
        sexual=6,
    ),
    _rule(
        "whole body contact",
        r"\b(?:lick|kiss|taste|touch|caress)(?:ing|ed|es|s)? every inch of (?:your|"
        r"ur|my|her|his) body\b",
        sexual=5,
    ),
    _rule(
        "sexual enhancement spam",
        r"\b(?:penis|dick|cock) enlargement\b|\bmale enhancement\b|\blast "
        r"longer in bed\b|\bplease her all night\b|\brock hard erections?\b",
        sexual=4,
    ),
    _rule(
        "oral sex slang",
        r"\b(?:give|gave|giving|gives|get|got|getting) (?:him|me|you|u|her) head\b(?! "
        r"(?:to|start|room|first|over|up|count|of))",
        sexual=6,
    ),
    _rule(
        "wants sex",
        r"\b(?:want|wants|wanting|looking for|need|needs|crave|craves|craving) (?:some )?"
        r"(?:sex|to have sex|to fuck|dick|cock|a hookup|a quickie|pussy)\b|\bget(?:ting)? laid\b(?! "
        r"(?:back|off|out|down|flat))",
        sexual=5,
    ),
    _rule(
        "watching sex",
        r"\bget(?:s|ting)? fucked\b|\b(?:watch|see) (?:her|him|them|me|us) (?:get|"
        r"getting) (?:fucked|banged|laid|naked|nailed)\b",
        sexual=5,
    ),
    _rule(
        "sex on camera",
        r"\b(?:fuck(?:s|ing)?|sex|masturbat\w*|screw(?:s|ing)?) (?:live )?on (?:camera|"
        r"cam|webcam|video|tape|stream)\b",
        sexual=5,
    ),
    _rule(
        "spanking",
        r"\bspank(?:s|ed|ing)? (?:that|your|ur|her|his|my|this) (?:ass|butt|booty)\b|\bbend "
        r"over and (?:let|take|spread)\b",
        sexual=5,
    ),
    _rule(
        "sexual self-touch",
        r"\btouch(?:es|ed|ing)? (?:herself|himself|yourself|myself|themselves|me)"
        r"(?: \w+)? (?:until|while|till|down there|all over|thinking (?:about|of) (?:you|u))\b|"
        r"\b(?:jerk(?:s|ed|ing)? off|"
        r"jack(?:s|ed|ing)? off|get(?:ting)? off on)\b",
        sexual=5,
    ),
    _rule(
        "stripped naked",
        r"\b(?:strip(?:s|ped|ping)?) (?:fully |completely |all )?"
        r"(?:naked|nude)\b|\bstrip(?:s|ped|ping)? (?:for|4) (?:you|u|me|him|the camera)\b|\bstrip ?tease\b",
        sexual=4,
    ),
    _rule(
        "porn category",
        r"\bxxx (?:videos?|movies?|content|pics|sites?|porn|cams?|clips?|action)\b|"
        r"\b(?:cam ?girls|webcam girls|cam ?models|live cams?|sex cams?|escort (?:services?|girls|"
        r"agenc(?:y|ies))|happy endings?|sugar daddy|sugar babies|adult (?:videos?|content|dating))\b",
        sexual=5,
    ),
    _rule(
        "sex toys",
        r"\b(?:sex toys?|dildos?|butt plugs?|cock rings?|strap ?ons?|fleshlights?|"
        r"vibrators?)\b",
        sexual=4,
    ),
    _rule(
        "sexual act with person",
        r"\b(?:have|having|had|want|wants|wanted|do|doing)(?: \w+)? "
        r"(?:sex|intercourse|oral|anal|a threesome) (?:with|on)\b",
        sexual=5,
    ),
    *_lexicon(
        "sexual",
        {
            "porn(?:o|ography|ographic|hub)?": 5,
            "xxx": 3,
            "nudes": 4,
            "nude": 2,
            "naked": 2,
            "nudity": 2,
            "(?:nude|naked) (?:pics?|photos?|pictures|videos?|selfies|images|scenes|girls|women|babes|teens|"
            "chicks|models|celebrities|celebs|wives|men|guys)": 4,
            "(?:girls|women|babes|chicks|models|wives|milfs|celebs) (?:\\w+ )?(?:naked|nude)": 4,
            "sex": 2,
            "sexual(?:ly)?": 1,
            "sexy": 1,
            "sensual": 1,
            "seductive": 1,
            "erotic(?:a)?": 3,
            "kinky": 3,
            "naughty": 1,
            "horny": 4,
            "aroused": 3,
            "orgasms?": 4,
            "moan(?:s|ed|ing)?": 2,
            "cum(?:ming|shot)?": 4,
            "masturbat(?:e|es|ed|ing|ion)": 5,
            "blow ?jobs?": 6,
            "hand ?jobs?": 6,
            "dicks?": 3,
            "cocks?": 3,
            "penis(?:es)?": 3,
            "vaginas?": 3,
            "genitals?": 3,
            "puss(?:y|ies)": 3,
            "tits": 4,
            "titties": 4,
            "boobs": 2,
            "nipples?": 2,
            "booty": 1,
            "fuck(?:s|ed|ing)?": 2,
            "anal": 4,
            "oral sex": 5,
            "threesomes?": 4,
            "orgy|orgies": 5,
            "bdsm": 4,
            "fetish(?:es)?": 3,
            "bondage": 3,
            "prostitut(?:e|es|ion)": 3,
            "hookers?": 3,
            "sluts": 3,
            "strippers?": 2,
            "onlyfans": 3,
            "nsfw": 3,
            "milfs?": 5,
            "topless": 3,
            "boners?": 4,
            "creampies?": 6,
            "deep ?throat(?:ing)?": 6,
            "gang ?bang(?:s|ing)?": 6,
            "lap ?dances?": 3,
            "strip clubs?": 3,
            "brothels?": 3,
            "cumshots?": 6,
            "sexting": 4,
            "one night stand": 3,
            "booty call": 4,
            "rape[ds]?|raping": 5,
            "molest(?:ed|ing|ation)?": 5,
            "hentai": 5,
            "camgirls?": 5,
            "escorts?": 1,
            "slutty": 3,
        },
        prefix="sexual term",
    ),
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
    _verb(
        "beat",
        "beat|beat up|punch|kick|slap|hit|smack|bash|batter",
        "beats|beaten|beating|punched|punching|kicked|kicking|slapped|smacked|bashed|battered",
        0,
    ),
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
    """Embedded-screen output: severity per concern (the four categories and phishing, 0-7), blocklist hits,
    what triggered each severity, the language judged, and `errors` (a language the screen cannot judge)."""

    severities: dict[str, int]
    blocklist_hits: tuple[str, ...] = ()
    matched: dict[str, tuple[str, ...]] = field(default_factory=dict)
    language: str = "en"
    errors: tuple[str, ...] = ()


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


def _active(masked: str) -> tuple[list[_Rule], list[tuple[_Verb, bool, bool]]]:
    """The rules and verb forms that can match somewhere in ``masked`` (a sentence is a part of it), in their
    order: the others have no match in any of its sentences, so leaving them out changes no signal."""
    found = _rule_literals().present(masked)
    rules = [rule for rule in _RULES if satisfied(rule.required, found)]
    verbs = [(verb, satisfied(verb.required[0], found), satisfied(verb.required[1], found)) for verb in _VERBS]
    return rules, [(verb, base, inflected) for verb, base, inflected in verbs if base or inflected]


def prefilter_requirements() -> None:
    """Ask for the requirement of every rule and verb (for prefilter.write_store)."""
    _rule_literals()


@load_once()
def _rule_literals() -> LiteralIndex:
    """Every literal of the rules' and verbs' requirements (derived on first use, not at import)."""
    requirements = [rule.required for rule in _RULES] + [r for verb in _VERBS for r in verb.required]
    return LiteralIndex(literal for required in requirements for clause in required for literal in clause)


def _scan_sentence(
    sentence: str,
    signals: dict[str, list[tuple[int, str]]],
    active: tuple[list[_Rule], list[tuple[_Verb, bool, bool]]] | None = None,
) -> None:
    rules, verbs = active if active is not None else _active(sentence)
    for rule in rules:
        for match in rule.regex.finditer(sentence):
            before = sentence[: match.start()]
            negated = rule.negatable and _NEGATION_BEFORE.search(before) is not None
            imperative = not before.strip()
            boost = 1 if rule.intent_boost and (imperative or _INTENT_BEFORE.search(before)) else 0
            for category, severity in rule.severities.items():
                score = 1 if negated else min(MAX_SEVERITY, severity + boost)
                signals[category].append((score, rule.label))
    for verb, base, inflected in verbs:
        forms = ((("base", verb.base),) if base else ()) + ((("inflected", verb.inflected),) if inflected else ())
        for form, regex in forms:
            for match in regex.finditer(sentence):
                before = sentence[: match.start()]
                if _NEGATION_BEFORE.search(before):
                    continue
                targeted = _TARGET.match(sentence, match.end()) is not None
                # A verb opening the sentence is an imperative ("Stab the driver"), i.e. intent.
                intent = form == "base" and (
                    _INTENT_BEFORE.search(before) is not None
                    or not before.strip()
                    or _IMPERATIVE_OPENER.match(sentence) is not None
                )
                score = verb.weight
                if targeted:
                    score += 2 if form == "base" else 1
                score += (2 if targeted else 1) if intent else 0
                if score:
                    parts = [f"violent verb: {verb.label}"] + ["intent"] * intent + ["target"] * targeted
                    signals["violence"].append((min(MAX_SEVERITY, score), " + ".join(parts)))


HELP_KEEPS = 6  # a self-harm signal this strong ("kill yourself") keeps its severity in help-framed text
CONCEPT_MIN_SEVERITY = 4  # weaker concept signals (a mention, a verb without a target) are not reported
# Changes when what the screen (or the phishing check run next to remote backends) finds changes; part of the
# screening cache key, so outcomes stored by an older screen are not reused.
SCREEN_VERSION = "2026-12-round-5"


# Round 3: security notices name what a scam asks for ("someone may ask for your PIN - we never will", "if
# anyone asks you to forward a code, it's a scam", "our bank details have not changed"). A text that warns this
# way gets at most WARNING_CAP for phishing, unless it also carries a look-alike or raw link (a phisher's "we will
# never ask for your password, confirm at secure-bank-login.com" keeps its severity).
_SCAM_WARNING = re.compile(
    r"\b(?:we(?: will|'ll)? never (?:ask|call|text|email|e-mail|request|accept|send|contact|need)|we never will|"
    r"never (?:share|give|tell|disclose|send|forward|read out|enter|type|reveal)|(?:don'?t|do not) (?:ever )?"
    r"(?:share|give (?:out|away)?|disclose|forward|reveal|read out)|nobody legitimate|no legitimate|"
    r"(?:it'?s|it is|that'?s|that is|is|are) (?:always )?(?:a |an )?(?:scam|scammer|scammers|fraud|fraudster|"
    r"fraudsters|phishing|fake)\b|hang up|not even (?:with |to )?us|"
    r"(?:only|always) (?:by )?(?:calling|call|ring|phone) (?:your|the|us on the) (?:usual|known|regular|existing)|"
    r"(?:the )?number you already (?:have|know)|(?:has|have) not changed|(?:hasn'?t|haven'?t) "
    r"changed|only (?:log in|sign in|enter \w+) (?:through|via|in|on)|report (?:it|scams?|fraud|phishing|"
    r"suspicious)|niemals am telefon|geben sie (?:\w+ ){0,4}(?:nie|niemals) weiter|geben sie (?:ihn|sie|es) "
    r"nicht weiter|nicht weitergeben|nunca (?:te|le|les|os) (?:pediremos|pedimos|pedira)|nunca compartas|"
    r"no (?:lo|la|los|las) compartas|no compartas|ne (?:le |la |les )?partagez pas|ne le communiquez "
    r"(?:a personne|pas)|ne (?:vous|te) demanderons jamais|ne communiquez jamais)"
)
WARNING_CAP = 3
# Crisis-line copy addresses the reader's own thoughts ("if you're having thoughts of ending your life, call 988"):
# with help framing, even the strongest self-harm wording in it is lowered.
_CRISIS_COPY = re.compile(
    r"\b(?:thoughts? (?:of|about)|thinking (?:of|about)|considering|feel(?:ing)? like|urges? to) (?:\w+ ){0,2}"
    r"(?:ending (?:your|their|it)|ending your life|suicide|killing (?:yourself|themselves)|self-?harm|hurting "
    r"(?:yourself|themselves)|taking (?:your|their) (?:own )?life)"
)
# Suicide endorsed as an answer ("suicide is a valid choice", "ending it would be the brave option").
_ENDORSED = re.compile(
    r"\b(?:suicide|ending it(?: all)?|ending your (?:own )?life|killing yourself|taking your (?:own )?life|an "
    r"overdose|self-?harm|cutting) (?:is|'s|would be|could be|might be|really is) (?:honestly |really |totally |just )?"
    r"(?:a |the |your )?(?:valid|good|reasonable|right|best|brave|only|smart|fine|kindest|easiest|real) "
    r"(?:choice|option|answer|way out|decision|move|solution|way)"
)
# Help framing that is itself undermined ("don't call a hotline, they'll just stop you", "suicide is a valid
# choice") does not lower anything.
_HELP_UNDERMINED = re.compile(
    r"\b(?:(?:don'?t|do not|never|no need to) (?:call|contact|ring|text|tell|talk to|reach out to|listen to) (?:a |the "
    r"|any |your )?(?:hotline|helpline|crisis line|doctor|therapist|counsell?or|anyone|someone|988|samaritans|"
    r"family|parents)|(?:valid|good|right|best|brave|only) (?:choice|option|way out|decision)|go for it|"
    r"do it quietly|they'?ll (?:just )?(?:stop|save) you)"
)


def _warns_of_scam(masked: str, raw: str) -> bool:
    return _SCAM_WARNING.search(masked) is not None and not suspicious_links(raw)


def _capped(signals: list[tuple[int, str]], cap: int, reason: str) -> list[tuple[int, str]]:
    return [(min(cap, s), f"{label} (lowered: {reason})" if s > cap else label) for s, label in signals]


def phishing_check(text: str) -> tuple[int, tuple[str, ...]]:
    """The project's phishing severity (0-7) and its labels for one text, in whatever language: run next to
    backends that have no phishing category (Azure AI Content Safety). German, Spanish and French wording is
    judged in its language; other text in all four."""
    language = identify_language(text)
    judged = language if language in SUPPORTED_LANGUAGES else UNDETERMINED
    normalized, masked = _normalized_and_masked(text)
    found = [
        (s, label)
        for concern, s, label in concept_signals(normalized, judged, text)
        if concern == PHISHING and s >= CONCEPT_MIN_SEVERITY
    ]
    found += [
        (s, label)
        for concern, s, label in structural_signals(masked, text)
        if concern == PHISHING and s >= CONCEPT_MIN_SEVERITY
    ]
    model = screen_model()
    verdict = model.judge(masked) if model is not None else None
    if verdict is not None and verdict[0] == PHISHING:
        found.append((5 if verdict[1] >= MODEL_HIGH else 4, f"model: phishing p={verdict[1]:.2f}"))
    if _warns_of_scam(masked, text):
        found = _capped(found, WARNING_CAP, "scam warning")
    return max((s for s, _ in found), default=0), tuple(dict.fromkeys(label for _, label in found))


def masked_text(text: str) -> str:
    """Normalized text with the benign idioms masked: what the concepts and the linear model read."""
    return _normalized_and_masked(text)[1]


def _normalized_and_masked(text: str) -> tuple[str, str]:
    """`normalize_text` and `masked_text` of a text, kept for the next call: the safety stage asks for the masked
    text of a text it has just screened (the model's distance to its threshold), and the phishing check for it
    three times."""
    if not isinstance(text, str):
        normalize_text(text)  # raises its TypeError, as before (the cache would raise another for a list)
    return _normalized_and_masked_cached(text)


@lru_cache(maxsize=256)
def _normalized_and_masked_cached(text: str) -> tuple[str, str]:
    normalized = normalize_text(text)
    return normalized, _IDIOMS.sub(" ~ ", normalized)


def screen_text(text: str, blocklist: Sequence[str] = ()) -> ScreenResult:
    """Score ``text`` on the four categories and phishing with the embedded screen and check ``blocklist``.

    English text goes through the rule lexicon (idioms masked, then terms, context patterns and violent verbs
    with intent and target, sentence by sentence) and the stemmed harm concepts; German, Spanish and French
    text through the concepts of its language. Text identified as another language gets no severities and the
    error `UNSUPPORTED_LANGUAGE` (fail-closed); see docs/safety_screen.md.
    """
    masked = _normalized_and_masked(text)[1]
    hits = find_blocklist_hits(text, blocklist)
    language = identify_language(text)
    if language not in (*SUPPORTED_LANGUAGES, UNDETERMINED):
        return ScreenResult({}, hits, {}, language, (f"{UNSUPPORTED_LANGUAGE} (detected: {language})",))
    signals: dict[str, list[tuple[int, str]]] = {c: [] for c in CONCERNS}
    if language in ("en", UNDETERMINED):
        active = _active(masked)
        for sentence in _SENTENCE_SPLIT.split(masked):
            if sentence.strip(" ~"):
                _scan_sentence(sentence.strip(), signals, active)
    concepts: dict[str, list[tuple[int, str]]] = {c: [] for c in CONCERNS}
    for concern, severity, label in concept_signals(masked, language, text):
        if severity >= CONCEPT_MIN_SEVERITY:
            concepts[concern].append((severity, label))
    if language in ("en", UNDETERMINED):
        for concern, severity, label in structural_signals(masked, text):
            if severity >= CONCEPT_MIN_SEVERITY:
                concepts[concern].append((severity, label))
    # The concept layer decides on its own strongest signal; it does not corroborate the lexicon's weak ones.
    # The linear model raises the concern it finds most probable when it is confident the text is unsafe.
    model = screen_model()
    judged = model.judge(masked) if model is not None else None
    if judged is not None:
        concern, probability = judged
        concepts[concern].append((5 if probability >= MODEL_HIGH else 4, f"model: unsafe p={probability:.2f}"))
    # --- round 5 hook (embedded/classifier.py): packaged sentence vectors + the project's head; only raises ---
    from personalization_assets.embedded.classifier import classifier_signals

    for concern, severity, label in classifier_signals(masked, language):
        concepts[concern].append((severity, label))
    # --- end of round 5 hook ---
    if _ENDORSED.search(masked):
        concepts["self_harm"].append((5, "self-harm endorsed as a choice"))
    # Warnings and help: a scam warning names credentials, prevention copy names methods (see _SCAM_WARNING).
    if _warns_of_scam(masked, text):
        signals[PHISHING] = _capped(signals[PHISHING], WARNING_CAP, "scam warning")
        concepts[PHISHING] = _capped(concepts[PHISHING], WARNING_CAP, "scam warning")
        # The model's unsafe probability on a security notice comes from its credential words, whichever
        # concern it names: its signal is lowered too (the rules still judge every other concern).
        for concern in CONCERNS:
            model_signals = [(s, label) for s, label in concepts[concern] if label.startswith("model:")]
            others = [(s, label) for s, label in concepts[concern] if not label.startswith("model:")]
            concepts[concern] = others + _capped(model_signals, WARNING_CAP, "scam warning")
    harm_to_self = signals["self_harm"] + concepts["self_harm"]
    if (
        harm_to_self
        and (max(s for s, _ in harm_to_self) < HELP_KEEPS or _CRISIS_COPY.search(masked))
        and help_framed(masked)
        and not _HELP_UNDERMINED.search(masked)
    ):
        signals["self_harm"] = _capped(signals["self_harm"], WARNING_CAP, "prevention or help")
        concepts["self_harm"] = _capped(concepts["self_harm"], WARNING_CAP, "prevention or help")
    # Inclusive and protective copy (a heritage festival, "stop hate", "know the signs of grooming, report it") names
    # groups and dangers: where the model is the only signal for a concern, it is lowered (round 4).
    if _INCLUSIVE_OR_PROTECTIVE.search(masked):
        for concern in CONCERNS:
            if (
                concepts[concern]
                and not signals[concern]
                and all(lb.startswith("model:") for _, lb in concepts[concern])
            ):
                concepts[concern] = _capped(concepts[concern], WARNING_CAP, "inclusive or protective copy")
    # Copy that teaches about hate quotes what it condemns: the structure layer already stands down for it, the
    # concept layer and the model are lowered the same way (round 4), unless the lexicon is sure.
    if concepts["hate"] and hate_help_framed(masked) and not any(s >= 6 for s, _ in signals["hate"]):
        concepts["hate"] = _capped(concepts["hate"], WARNING_CAP, "teaches about hate")
    # Sexual content involving minors is always the top severity.
    protective = protective_copy(text)
    if protective:
        # Sex education, puberty talks and grooming warnings name sex and children together: the model's guess and
        # a sexual word next to a minor are lowered there; an explicit term of the rules still counts (round 4).
        concepts["sexual"] = [
            (min(s, WARNING_CAP), f"{lb} (lowered: protective or educational copy)")
            if s > WARNING_CAP and (lb.startswith("model:") or "minor" in lb or "sexual mention" in lb)
            else (s, lb)
            for s, lb in concepts["sexual"]
        ]
    sexual = signals["sexual"] + concepts["sexual"]
    if any(s >= (WARNING_CAP + 1 if protective else 3) for s, _ in sexual) and (
        _MINORS.search(masked) or any("minor" in label for _, label in sexual) or mentions_minor(masked, language)
    ):
        signals["sexual"].append((MAX_SEVERITY, "sexual content involving minors"))
    else:
        # Round 4 safety net (embedded/minors.py): a minor cue with any sexual signal, sexualized body talk or
        # grooming intent is 7 whatever the model says; the model cannot lower it.
        involving_minor = minor_signal(text, max((s for s, _ in sexual), default=0), language)
        if involving_minor:
            signals["sexual"].append((MAX_SEVERITY, f"sexual content involving minors: {involving_minor}"))
    severities = {c: max(_combine(signals[c]), max((s for s, _ in concepts[c]), default=0)) for c in CONCERNS}
    matched = {
        c: tuple(dict.fromkeys(label for s, label in sorted(signals[c] + concepts[c], reverse=True) if s > 0))
        if severities[c]
        else ()
        for c in CONCERNS
    }
    return ScreenResult(severities, hits, matched, language)


_INCLUSIVE_OR_PROTECTIVE = re.compile(
    r"\b(?:festivals?|heritage|pride (?:month|parade|weekend|march)|interfaith|all our neighbou?rs|diversity|"
    r"inclusi(?:on|ve)|stop hate|report (?:it|concerns?|hate|abuse)|know the signs|warning signs|signs of grooming|"
    r"safeguarding|help safely|stand up (?:to|against) (?:hate|racism|bullying))\b"
)
_MINORS = re.compile(
    r"\b(?:child|children|kids?|minors?|underage|preteens?|teens?|teenagers?|little "
    r"(?:girls?|boys?)|schoolgirls?|schoolboys?|1[0-7] ?(?:yo|y o|year olds?|years old)|"
    r"[1-9] ?(?:yo|year olds?|years old)|ages? (?:1[0-7]|[1-9])(?: ?(?:-|to|and) ?(?:1[0-7]|[1-9]))?|young "
    r"(?:campers|pupils|students|ones|kids|boys|girls|children|teens)|(?:primary|middle|junior high|elementary) "
    r"school(?:ers)?|schoolkids?|(?:year|grade|class) (?:1[0-2]|[1-9]) (?:girls?|boys?|pupils?|students?|kids?))\b"
)
