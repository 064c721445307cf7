"""Structural harm patterns for the embedded screen (English): who is targeted and what is intended, not which
words appear.

The lexicon and concept layers know harmful words; these patterns know harmful *shapes*, so they hold for
groups, payment methods and everyday verbs nobody listed:

- hate: a group reference (a known group word, a demonym, "those people", or any capitalized name introduced
  as "the X" / "all X" in the raw text) + a dehumanizing predicate (vermin, parasites, a disease, "not human",
  "breed like rats", "should be exterminated / deported", "don't belong here").
- phishing and scams by intent: payment in gift cards or vouchers, changed bank details with a payment request,
  an urgent secret transfer, a fee to release a parcel or a prize, "double your crypto", remote-access installs.
- self-harm: an act against oneself in everyday words (stop eating, skip your insulin, the whole bottle of pills,
  cut, jump) offered as advice or encouragement, or "nobody would miss you"; prevention and help framing vetoes.
- violence: threat structure (we / I / our people + will / gonna / know where + harm to you, your family or
  property; "would be a shame if", "accidents happen", a weapon "with your name on it").

Input is the screen's masked, normalized text (lowercase); the raw text is used only to find capitalized group
names. Returns (concern, severity, label) like concepts.concept_signals. No dagster, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from personalization_assets.embedded.loading import load_once
from personalization_assets.embedded.prefilter import SLOT, LiteralIndex, Requirement, holds, requirement, satisfied

_SENTENCES = re.compile(r"[.!?;]+(?:\s+|$)|\n+|\s+-\s+")

# --------------------------------------------------------------------------------------------- hate
_KNOWN_GROUP = (
    r"immigrants?|migrants?|refugees?|foreigners?|aliens|illegals|muslims?|jews?|christians?|catholics?|"
    r"protestants?|mormons?|hindus?|sikhs?|buddhists?|atheists?|pagans?|blacks|whites|asians?|mexicans?|"
    r"latinos?|latinas?|hispanics?|arabs?|africans?|gypsies|roma|travellers|travelers|gays?|lesbians?|"
    r"homosexuals?|bisexuals?|queers?|transgenders?|trans (?:people|women|men|folks)|women|females|"
    r"disabled|cripples|autistics?|natives|aboriginals?|tribes?(?:men|people)?|northerners|southerners|"
    r"easterners|westerners|islanders|highlanders|lowlanders|villagers|nomads|settlers|outsiders|newcomers|"
    r"minorities|leftists|conservatives|liberals|feminists|vegans|boomers|millennials|zoomers|foreign workers"
)
# Plural people-words ending like demonyms or adherents ("Kethians", "Dravese", "Orvanites", "Zulanis").
_DEMONYM = r"[a-z]{3,}(?:ians|ans|ese|ites|ists|anis|is|ish|ers|ics|ards|ins|ees|ots|ards|ics|ars|ai|i|ae|ae)"
_PEOPLE_NOUN = (
    r"people|persons|folks?|folk|families|men|women|kids|children|families|workers|tenants|neighbou?rs|"
    r"customers|immigrants|migrants|refugees|believers|worshippers|communit(?:y|ies)|tribes?|clans?|races?|"
    r"kind|sort|type|lot|breed|ones"
)
_GROUP_REF = (
    rf"(?:(?:the|all|those|these|most|every|such|their|them|many|so many|too many|any)\s+)?"
    rf"(?:(?:{_KNOWN_GROUP})|(?:\w+\s+)?(?:{_PEOPLE_NOUN})|\w+ (?:from|of|like) (?:the )?(?:\w+\s*){{1,2}}|"
    rf"__group__)"
)
_DEMONYM_REF = rf"(?:(?:the|all|those|these|most|every|such|many|so many|too many)\s+)?(?:{_DEMONYM})"
_PESTS = re.compile(
    r"\b(?:rats?|mice|mouse|rodents?|pests?|bugs?|insects?|termites?|roaches|cockroaches|ants|fleas|ticks|"
    r"lice|mites|bedbugs|bed bugs|weeds?|pigeons?|squirrels?|raccoons?|moles|wasps?|hornets?|mosquito(?:e)?s|"
    r"slugs|snails|aphids|moths|flies|worms?|spiders?|fungus|fungi|mou?lds?|bacteria|germs|viruses|"
    r"invaders|dandelions|stains|clutter|carpets?|tiles?|files|cookies|ads|popups|spam|plants?|trees?|"
    r"dogs?|cats?|pets?|puppies|kittens|horses|cattle|pigs|sheep|goats|chickens|animals|creatures|"
    r"critters|wildlife|deer|geese|gulls|crows|foxes|coyotes|snakes|toads|frogs|fish|algae)\b"
)
_STRONG_DEHUMANIZE = (
    r"vermin|parasites?|parasitic|cockroach(?:es)?|roaches|maggots|leeches|locusts|sub ?humans?|subhuman|"
    r"untermenschen|not (?:even |really |fully )?(?:human|people|persons)|less than human|barely human|"
    r"no better than (?:animals|dogs|rats|pigs|beasts|vermin)|(?:a |an )?(?:disease|plague|cancer|infestation|"
    r"pestilence|blight|scourge|contagion)|human (?:garbage|trash|waste|filth)|genetically inferior|"
    r"a lower (?:race|form of life)|breeding like (?:rats|rabbits|flies|cockroaches|vermin)|born criminals|"
    r"criminals by nature"
)
# Weaker words ("animals", "trash") count only for a clear group (a known group, a named one, "those people").
_WEAK_DEHUMANIZE = (
    r"rats|lice|insects|termites|animals|beasts|savages|apes|monkeys|pigs|dogs|swine|mongrels|filth|filthy|"
    r"dirty (?:animals|rats|dogs|pigs)|garbage|trash|scum|degenerates|inbred|inferior|a virus|an infection|"
    r"a tumou?r|pollution|a stain on (?:\w+\s+){0,2}\w+"
)
_BE = r"(?:are|is|'re|r|were|remain|seem|become|have become|are all|are just|are nothing but|are basically)"
_FILLER = r"(?:\s+(?:all|just|nothing but|basically|really|simply|no more than|little more than|like|literally))*"
_REMOVE = (
    r"(?:should|must|need to|needs to|ought to|deserve to|have to|has to|will|are going to|gotta)\s+"
    r"(?:have\s+)?(?:been|be)\s+(?:\w+\s+)?(?:finished off|killed|exterminated|eradicated|wiped out|wiped off|"
    r"purged|gassed|culled|sterili[sz]ed|"
    r"eliminated|removed|deported|expelled|driven out|kicked out|thrown out|rounded up|locked up|caged|"
    r"put down|got rid of|gotten rid of|cleansed|erased|banned from (?:\w+\s*){1,3}|shipped back|sent back|"
    r"kept out|hunted|shot|hanged|burned)"
)
_NOT_BELONG = (
    r"(?:don'?t|do not|doesn'?t|does not|never|will never|can never)\s+belong|"
    r"(?:should|must|need to|ought to)\s+(?:go back|be sent back|leave (?:our|this) (?:country|town|city|land))|"
    r"(?:breed|multiply|spread|reproduce)\s+like\s+(?:rats|rabbits|flies|cockroaches|vermin|insects|animals|"
    r"lice|a (?:plague|disease|virus))|"
    r"(?:should not|shouldn'?t|must not|mustn'?t)\s+be allowed to\s+(?:live|breed|vote|exist|have (?:kids|children)|"
    r"marry|work|own|enter|stay)|"
    r"(?:are|is)\s+(?:ruining|destroying|poisoning|infesting|invading|polluting|contaminating)\s+"
    r"(?:our|this|the)\s+(?:\w+\s+)?(?:country|nation|town|city|neighbou?rhood|streets|blood|race|culture|"
    r"society|land)"
)
_GET_RID = re.compile(
    rf"\b(?:get rid of|exterminate|eradicate|wipe out|purge|gas|cull|sterili[sz]e|deport|cleanse (?:\w+\s+)?of|"
    rf"(?:keep|make|get)\s+(?:\w+\s+){{0,3}}?(?:clean|free|clear|rid)\s+of(?:\s+\w+){{0,3}}?(?:\s+and)?(?:\s+of)?|"
    rf"round up|drive out|kick out|throw out|eliminate)\s+(?:all\s+)?({_GROUP_REF}|{_DEMONYM_REF})\b"
)
# Everyday removal verbs ("remove", "ban", "keep out") are hate only with a clear group: a known group word or a
# capitalized name the text introduces as a group ("remove the Nuvari from our schools").
_REMOVE_ACTIVE = (
    r"\b(?:remove|expel|ban|bar|keep|get|kick|throw|drive|force|chase|run|push|clear|purge|rid)\s+(?:out\s+)?"
    r"(?:all\s+|every\s+|any\s+)?(?:of\s+)?(?:the\s+|those\s+|these\s+)?({clear})\s+(?:out\s+)?(?:of|from)\s+"
    r"(?:our|this|the|my)\s+(?:\w+\s+)?(?:schools?|country|nation|town|city|streets|neighbou?rhoods?|land|"
    r"community|jobs|workplaces?|shops?|businesses|parks|society|island|state|county|village|area|estate)"
)
_HATE_HELP = re.compile(
    r"\b(?:report (?:hate|abuse)|anti ?(?:racism|hate|bullying|discrimination)|stand (?:up )?against|"
    r"combat(?:ting)? (?:hate|racism|dehumani\w+)|history of (?:propaganda|genocide)|propaganda (?:called|described|"
    r"that called)|never again|we condemn|was (?:once |long )?called|were (?:once |long )?called|"
    r"workshop|museum|exhibit)\b"
)


# Round 4: a group shut out of housing, work, shops or a neighbourhood ("we're hiring, but not Travellers", "our
# shop does not serve Somalis", "room to let - no Roma", "keep the Kallumi families out of our street"). Fair-
# housing and equal-opportunity notices name the same shapes to forbid them.
_PLACE = (
    r"(?:neighbou?rhoods?|streets?|block|area|estate|building|town|village|city|schools?|shops?|stores?|"
    r"pubs?|bars?|clubs?|restaurants?|high street|co-?op|community|workplaces?|jobs?|company|park)"
)
_EXCLUDE_SERVICE = (
    r"(?:^|[,:;(~-]\s*|\bbut\s+|\bsorry,?\s+|\bstrictly\s+|\bdefinitely\s+)(?:no|not)\s+(?:any\s+)?({grp})\b"
    r"|\b(?:does not|doesn'?t|do not|don'?t|won'?t|will not|we never|refuse to|cannot|can'?t|not allowed to)\s+"
    r"(?:serve|hire|employ|rent to|let to|sell to|admit|accept|take on|house|rent (?:\w+ )?to)\s+(?:any\s+)?({grp})\b"
    r"|\brefus(?:e|es|ing)? (?:service|entry|housing|tenancy|a room|work|jobs?) to\s+({grp})\b"
    r"|\b(?:keep|get|run|push|drive)\s+({grp})(?:\s+\w+){{0,4}}?\s+(?:out of|away from)\s+(?:our|this|the|my)\s+"
    r"(?:\w+\s+)?" + _PLACE + r"\b"
)
_EXCLUDE_CONTEXT = re.compile(
    r"\b(?:hir\w*|jobs?|apply|applicants?|vacanc\w*|rent\w*|let|tenants?|rooms?|flats?|apartments?|house|"
    r"lodg\w*|serve|service|shop|store|customers|admit\w*|entry|enter|welcome|allowed|neighbou?rhood|street|"
    r"staff|employ\w*|bar|pub|club|restaurant|co-?op)\b|\b(?:out of|away from) (?:our|this|the|my) (?:\w+\s+)?" + _PLACE
)
_FAIR_NOTICE = re.compile(
    r"\b(?:regardless|discriminat\w*|illegal|unlawful|protected|equal opportunit\w*|fair housing|report (?:it|them|"
    r"this)|against the law|never refuse|we welcome|all are welcome|everyone is welcome)\b"
)


# Round 4, whole-text shapes of coded hate: a group said to take over or replace "us" (replacement conspiracy), a
# group kept out by a rule of the place ("not permitted", "membership reserved for people of European stock"), and
# a home steered away from a family named by its origin ("a Pakistani family viewed number 12 ... make sure it goes
# elsewhere").
_TAKEOVER = re.compile(
    r"\b(?:out ?breed(?:ing)?|outnumber(?:ing)?|replac(?:e|ing)|vote|push(?:ing)?|driv(?:e|ing))\s+us\s+out\b"
    r"|\b(?:out ?breed|outnumber|replace|swamp|overrun)\s+(?:us|our (?:people|race|kind|children|nation|country))\b"
    r"|\btake over (?:our|this) (?:country|nation|town|city|neighbou?rhood|street|streets|schools?)\b"
    r"|\bout of our own (?:country|nation|land|town|homes?)\b"
)
# Conspiracy framing: a group said to secretly run the institutions ("the Orrish secretly control the banks").
_CONTROL_VERB = (
    r"(?:control|controls|run|runs|own|owns|rig|rigs|pull(?:s|ing)? the strings (?:of|at|behind)|infiltrat\w+)"
)
_CONTROL = re.compile(
    rf"\b(?:secretly|quietly|really|actually|all|behind the scenes|from the shadows)\s+"
    rf"(?:{_CONTROL_VERB}|are behind|is "
    rf"behind)\s+(?:the\s+|our\s+|all\s+the\s+)?(?:banks?|media|newspapers|press|government|world|hollywood|courts|"
    rf"economy|elections?|money|schools|police|weather)\b"
    rf"|\b{_CONTROL_VERB}\s+(?:the\s+|our\s+|all\s+the\s+)?(?:banks|media|newspapers|press|government|courts|"
    rf"elections|hollywood)\b(?! (?:budget|team|department|campaign|account|plan))"
)
_RESERVED_STOCK = re.compile(
    r"\b(?:reserv\w*|only|restricted|exclusively|limited)\b(?:\s+\w+){0,4}\s+(?:for|to)\s+(?:people|those|members|"
    r"families|applicants|tenants|customers|folk)\s+of\s+(?:\w+\s+){0,2}(?:stock|blood|bloodlines?|race)\b"
)
_NOT_PERMITTED = re.compile(
    r"\b(?:aren'?t|are not|is not|isn'?t|not|no longer|never)\s+(?:permitted|allowed|admitted|welcome)\b"
)
_ORIGIN_HOUSEHOLD = re.compile(
    r"\b(?:[Aa]n?|[Tt]he)\s+[A-Z][a-z]+(?:i|ese|ian|an|ish|ic)\s+(?:family|couple|man|woman|tenant)"
)
_STEER_AWAY = re.compile(
    r"\b(?:goes|go|sold|rented|let)\s+elsewhere\b|\bmake sure (?:they|it|he|she) (?:don'?t|doesn'?t|never|goes)\b"
    r"|\bbefore (?:they|he|she) (?:move|moves|get|gets) in\b|\bkeep (?:them|him|her) from (?:buying|renting)\b"
)


# Adjectives and nationalities that name a group in these shapes ("the Traveller problem", "Asian-sounding names").
_GROUP_ADJ = (
    r"(?:jewish|muslim|islamic|asian|black|african|arab|mexican|gypsy|traveller|traveler|roma|romani|gay|trans|"
    r"indian|pakistani|polish|romanian|somali|chinese|nigerian|turkish|kurdish|syrian|afghan|foreign|immigrant|"
    r"migrant|refugee|zionist)"
)
_CODED_SHAPES = [
    # "finally deal with the Traveller problem once and for all"
    (
        rf"\b(?:deal(?:t|s|ing)? with|solv\w*|solution to|fix\w*|end(?:s|ing)?|answer to) (?:the|our) "
        rf"(?:{_GROUP_ADJ}|{{names}}) "
        rf"(?:problem|question|issue|situation)\b",
        "eliminationist euphemism about a group",
    ),
    # "trans members will be asked to train elsewhere", "foreigners wait until everyone else is done"
    (
        rf"\b(?:{_GROUP_ADJ}|{{group}})(?:\s+(?:members|customers|guests|people|pupils|families|staff|tenants|shoppers))?"
        rf"\s+(?:\w+\s+){{0,3}}(?:asked|told|made|required|expected) to (?:\w+ )?(?:elsewhere|leave|go|stay away|"
        rf"sit (?:in )?(?:the )?back)|\b(?:{_GROUP_ADJ}|{{group}})\s+(?:must |will |should |can )?wait (?:until|till) "
        rf"(?:everyone|all|the rest)",
        "group served last or sent elsewhere",
    ),
    # "avoid shortlisting candidates with Asian-sounding names"
    (
        rf"\b(?:avoid|don'?t|do not|never|stop|no)\s+(?:hiring|hire|shortlist\w*|interview\w*|rent\w* to|serv\w*|"
        rf"accept\w*|admit\w*)\s+(?:any\s+)?(?:candidates|applicants|tenants|people|anyone|customers)\s+"
        rf"(?:with|who are|from)\s+(?:{_GROUP_ADJ}|{{group}})",
        "group screened out of jobs or housing",
    ),
    # "Jewish bankers again. Every crash, same names. Draw your own conclusions."
    (
        rf"\b(?:{_GROUP_ADJ}|{{group}})\s+(?:bankers|financiers|elites?|media|globalists|lobby|money|\w+)\b.{{0,120}}"
        rf"\b(?:same names|draw your own conclusions?|do your (?:own )?research|follow the money|coincidence\?|"
        rf"you know who)",
        "conspiracy insinuated about a group",
    ),
    # "everyone knows the Karesh only pretend to work"
    (
        r"\b(?:everyone knows|we all know|it'?s a fact|fact is|let'?s be honest|say what you like)\b,?\s+(?:that\s+)?"
        r"(?:the\s+)?(?:{group})\s+(?:\w+\s+){0,3}(?:pretend to work|never work|don'?t work|live off|scroung\w*|"
        r"sponge\w*|steal|lie|cheat|breed|can'?t be trusted|are (?:all )?(?:lazy|dirty|criminals|thieves|liars))",
        "stereotype stated as fact",
    ),
]


def _coded_shape(shape: str, group_words: str, group_alt: str) -> str:
    return shape.replace("{group}", group_words).replace("{names}", group_alt or "~~")


def _hate_text(masked: str, raw: str, names: list[str]) -> Iterator[tuple[str, int, str]]:
    """Coded hate whose group and intent sit in different sentences of one text."""
    if _FAIR_NOTICE.search(masked):
        return
    group_alt = "|".join(re.escape(n) + r"s?" for n in names)
    group_words = rf"(?:{_KNOWN_GROUP}" + (f"|{group_alt}" if names else "") + r")"
    # The patterns below embed this text's group names, so each text has its own: they are compiled only when
    # the text holds their required literals (`_CODED_REQUIRED`), and the group pattern only when asked.
    group_pattern = rf"\b(?:{_KNOWN_GROUP}" + (f"|{group_alt}" if names else "") + r"|those people|their kind)\b"

    def has_group(text: str) -> bool:
        return re.search(group_pattern, text) is not None

    slot = _slot(names)
    for (shape, label), required in zip(_CODED_SHAPES, _CODED_REQUIRED, strict=True):
        shape_slot = (slot or ["~~"]) if "{names}" in shape else slot
        if holds(required, masked, shape_slot) and re.search(_coded_shape(shape, group_words, group_alt), masked):
            yield "hate", 5, f"structure: {label}"
            return
    # Two groups shut out in one list ("no Indians, no Pakistanis, no drama"). Every match starts with "no" and a
    # space, so fewer than two of those means fewer than two matches.
    if len(_NO_SPACE.findall(masked)) >= 2:
        no_list = re.findall(rf"\bno\s+(?:{_GROUP_ADJ}s?|{group_words})\b", masked)
        if len(no_list) >= 2:
            yield "hate", 5, "structure: groups listed as not wanted"
            return
    control = _CONTROL.search(masked)
    # The group is the subject: named before the verb, in the same stretch of text.
    before = masked[max(0, control.start() - 80) : control.start()] if control else ""
    if control and (has_group(before) or re.search(rf"\b(?:{_DEMONYM_REF}|that lot|those \w+)\b", before)):
        yield "hate", 5, "structure: group said to secretly run the institutions"
    elif _TAKEOVER.search(masked) and (has_group(masked) or _ORIGIN_HOUSEHOLD.search(raw)):
        yield "hate", 5, "structure: group said to take over or replace us"
    elif _RESERVED_STOCK.search(masked):
        yield "hate", 5, "structure: place reserved for one race or stock"
    elif _NOT_PERMITTED.search(masked) and _EXCLUDE_CONTEXT.search(masked) and has_group(masked):
        yield "hate", 5, "structure: group not permitted in a place"
    elif _ORIGIN_HOUSEHOLD.search(raw) and _STEER_AWAY.search(masked):
        yield "hate", 5, "structure: home steered away from a family by origin"


def _group_names(raw: str) -> list[str]:
    """Capitalized names introduced as a group in the raw text: "the Varnai", "all Kethians", "those Dravese"."""
    names = re.findall(
        r"\b(?:[Tt]he|[Aa]ll|[Tt]hose|[Tt]hese|[Mm]ost|[Ee]very|[Mm]any|[Ss]uch|[Tt]heir)\s+([A-Z][a-z]{2,})\b", raw
    )
    names += re.findall(r"(?:^|[.!?]\s+)([A-Z][a-z]{2,}(?:s|i|ai|ese|ans|ians|ites))\s+(?:are|were)\b", raw)
    names += re.findall(
        r"\b(?:[Ss]erve|[Hh]ire|[Ee]mploy|[Rr]ent to|[Ll]et to|[Ss]ell to|[Aa]dmit|[Nn]o|[Nn]ot)\s+([A-Z][a-z]{2,}s)\b",
        raw,
    )
    common = {"The", "All", "Our", "Your", "This", "These", "Those", "They", "We", "You", "Its", "Their"}
    return sorted({n.lower() for n in names if n not in common})


def _hate_patterns(group_alt: str) -> tuple[str, ...]:
    """The sentence patterns of `_hate` for a text whose group names form the alternation ``group_alt`` ("" for
    none), in the order they are tried."""
    group_ref = (
        _GROUP_REF.replace("__group__", f"(?:{group_alt})") if group_alt else _GROUP_REF.replace("|__group__", "")
    )
    subject = rf"(?:{group_ref}|{_DEMONYM_REF})"
    clear = (
        rf"(?:(?:the|all|those|these|most|every|such|their|many|so many|too many|any)\s+)?(?:{_KNOWN_GROUP}"
        + (f"|{group_alt}" if group_alt else "")
        + r")|(?:those|these|such|their|that) (?:people|kind|sort|type|lot|folks?)|people (?:from|of|like) \w+"
    )
    grp = clear + rf"(?:\s+(?:{_PEOPLE_NOUN}))?"
    return (
        rf"\b({subject})\s+{_BE}{_FILLER}\s+(?:(?:a|an|the|like)\s+)?(?:{_STRONG_DEHUMANIZE})\b",
        rf"\b({clear})\s+{_BE}{_FILLER}\s+(?:(?:a|an|the|like)\s+)?(?:{_WEAK_DEHUMANIZE})\b",
        rf"\b({subject}),?\s+(?:(?:who|that)\s+(?:\w+\s+)?)?{_REMOVE}\b",
        rf"\b({subject})\s+(?:\w+\s+)?(?:{_NOT_BELONG})\b",
        _REMOVE_ACTIVE.replace("{clear}", clear),
        _EXCLUDE_SERVICE.format(grp=grp),
    )


# What every match of each pattern contains, derived once from the patterns with `SLOT` for the group names
# (prefilter.py); `_slot` gives the strings a text's names alternation matches.
_HATE_REQUIRED = tuple(requirement(p) for p in _hate_patterns(SLOT))
_CODED_REQUIRED = tuple(
    requirement(_coded_shape(shape, rf"(?:{_KNOWN_GROUP}|{SLOT})", SLOT)) for shape, _ in _CODED_SHAPES
)
_NO_SPACE = re.compile(r"\bno\s")


def _slot(names: list[str]) -> list[str]:
    """What `re.escape(name) + "s?"` matches for each name (names are lowercase letters)."""
    return [form for n in names for form in (n, n + "s")]


def _hate(
    sentence: str, names: list[str], possible: tuple[bool, ...] = (True,) * 6, literals: set[str] | None = None
) -> Iterator[tuple[str, int, str]]:
    # Each text has its own patterns (its group names are in them), so each costs a compilation: a pattern is
    # built and compiled only for a sentence holding its required literals (`possible`: which the whole text may
    # match at all). `literals`: what the text holds of the fixed patterns' literals.
    slot = _slot(names)
    maybe = [can and holds(required, sentence, slot) for can, required in zip(possible, _HATE_REQUIRED, strict=True)]
    patterns = _hate_patterns("|".join(re.escape(n) + r"s?" for n in names)) if any(maybe) else ("",) * 6
    strong, weak, remove, not_belong, remove_active, exclude_service = patterns
    for pattern, can in ((strong, maybe[0]), (weak, maybe[1])):
        for match in re.finditer(pattern, sentence) if can else ():
            if not _PESTS.search(match.group(1)):
                yield "hate", 6, "structure: group + dehumanizing predicate"
                return
    for pattern, can, label in (
        (remove, maybe[2], "structure: group + elimination"),
        (not_belong, maybe[3], "structure: group + exclusion"),
    ):
        for match in re.finditer(pattern, sentence) if can else ():
            if not _PESTS.search(match.group(1)):
                yield "hate", 5, label
                return
    for match in re.finditer(remove_active, sentence) if maybe[4] else ():
        if not _PESTS.search(match.group(1)):
            yield "hate", 5, "structure: removal of a group"
            return
    if not _FAIR_NOTICE.search(sentence):
        context = _EXCLUDE_CONTEXT.search(sentence) is not None
        for match in re.finditer(exclude_service, sentence) if maybe[5] else ():
            found = next((g for g in match.groups() if g), "")
            # "No Roma, they ..." opening a sentence shuts a group out on its own; elsewhere the sentence must
            # speak of housing, work, shops or a place.
            if found and not _PESTS.search(found) and (context or sentence[: match.start()].strip(" ~") == ""):
                yield "hate", 5, "structure: group shut out of housing, work or shops"
                return
    for match in _GET_RID.finditer(sentence) if _may_match(_GET_RID, literals) else ():
        if not _PESTS.search(match.group(1)):
            yield "hate", 5, "structure: elimination of a group"
            return


# ----------------------------------------------------------------------------------------- phishing
_GIFT = (
    r"(?:gift ?cards?|gift ?vouchers?|vouchers?|itunes|apple cards?|google play|steam (?:cards?|wallet)|"
    r"amazon (?:cards?|codes?)|prepaid (?:cards?|debit|visa)|paysafecards?|vanilla (?:cards?|visa)|"
    r"store cards?|e ?gift)"
)
_DEBT = (
    r"(?:fine|fines|fee|fees|bill|bills|invoice|balance|tax|taxes|penalt(?:y|ies)|debt|arrears|charges?|bail|"
    r"warrant|outstanding|overdue|owed?|payment|settle|settlement|deposit|dues|rent|premium|amount)"
)
_PAY = (
    r"(?:pay|paid|paying|payment|settled?|settling|clear(?:ed)?|cover(?:ed)?|transfer(?:red)?|wired?|send|sent|"
    r"remit(?:ted)?|deposit(?:ed)?|made|done)"
)
_CRYPTO = r"(?:crypto|cryptocurrenc(?:y|ies)|bitcoin|btc|eth|ether|ethereum|usdt|tether|coins?|tokens?|doge)"
# Secrecy asked for around a payment: business e-mail compromise ("keep this between us", "don't loop anyone in").
_SECRECY = (
    r"(?:confidential|secret|between us|between you and me|discreet|tell no one|without telling|no one else|"
    r"keep (?:this|it) (?:quiet|private|to yourself|off (?:email|the record))|(?:don'?t|do not|no need to|please "
    r"don'?t|without) (?:tell|loop|cc|copy|involve|inform|mention|discuss|check with|call|bother|include|let|"
    r"alert|speak to|talk to|share (?:this|it) with)\b(?:\s+\w+){0,2}\s+(?:anyone|anybody|others|else|"
    r"finance|accounts|the team|your manager|the bank|colleagues|in|on (?:this|it)|about (?:this|it)))"
)
_SCAMS: list[tuple[re.Pattern[str], int, str]] = [
    (
        re.compile(rf"\b{_PAY}\b[^.]{{0,60}}\b(?:with|using|in|via|by|through|as)\s+(?:\S+\s+){{0,3}}{_GIFT}"),
        3,
        "payment by gift cards",
    ),
    (
        re.compile(
            rf"\b(?:buy|purchase|get|pick up|grab)\s+(?:\S+\s+){{0,4}}{_GIFT}[^.]{{0,120}}?(?<!we )(?<!we'll )"
            rf"(?<!we will )\b(?:send|text|email|"
            rf"share|read|give|forward|photo|picture|scratch)\b[^.]{{0,40}}\b(?:codes?|numbers?|pins?|photos?|"
            rf"pictures?|back)\b"
        ),
        6,
        "gift card codes requested",
    ),
    (
        re.compile(
            rf"\b(?:send|text|email|share|read|give|forward)\s+(?:\w+\s+){{0,3}}(?:codes?|numbers?|pins?|"
            rf"photos?|pictures?)\s+(?:on|from|of)\s+(?:the\s+)?(?:back|cards?|{_GIFT})|\b(?:send|text|email|share|"
            rf"read|give|forward)\s+(?:\S+\s+){{0,3}}(?:{_GIFT}|card|voucher)\s+(?:codes?|numbers?|pins?)"
        ),
        6,
        "gift card codes requested",
    ),
    (
        re.compile(rf"\b(?:only|exclusively)\s+(?:accept|accepts|accepted|take|takes)\s+(?:\w+\s+){{0,2}}{_GIFT}"),
        5,
        "payment by gift cards",
    ),
    (
        re.compile(
            r"\b(?:our|my|the company'?s|company|supplier'?s?|vendor'?s?|banking|bank|remittance|payment|"
            r"account)\s+(?:bank(?:ing)?\s+)?(?:details|information|info|account|instructions|account number|"
            r"iban|sort code|routing number)\s+(?:have|has|had)?\s*(?:been\s+)?(?:changed|updated|moved|"
            r"switched|modified|replaced)"
        ),
        3,
        "changed bank details",
    ),
    (
        re.compile(
            r"\b(?:pay|paid|payments?|transfer|wire|remit|send|direct|redirect|settle|use|invoice|go|be sent|"
            r"be paid)\b[^.]{0,60}"
            r"\b(?:to|into|in|via|with)\s+(?:the|this|our|my)\s+(?:new|updated|different|following|"
            r"alternative|alternate|temporary|other)\s+(?:bank\s+)?(?:account|details|iban|bank)\b"
            r"(?! manag| holder| opening| team| executive)"
        ),
        5,
        "payment to a new account",
    ),
    (
        re.compile(
            r"\b(?:our|my|the company'?s|this|the following) (?:new|updated|different|alternative|temporary)\s+"
            r"(?:bank\s+)?(?:account|details|iban)\b(?! manag| holder| opening| team).{0,120}"
            r"\b(?:pay|payment|transfer|wire|remit|settle|invoice)"
        ),
        3,
        "new account mentioned with a payment",
    ),
    (
        re.compile(
            r"\b(?:old|previous|former|usual|existing) (?:bank |business )?(?:account|one|details|iban)\b[^.]{0,30}"
            r"(?:is|was|has been|have been|are)?\s*(?:closed|no longer (?:in use|valid|active|used)|suspended|frozen|"
            r"under (?:audit|review)|not (?:to be used|valid|active))"
        ),
        3,
        "old account closed",
    ),
    (
        re.compile(
            r"\b(?:wire|transfer|send|move|process)\b[^.]{0,60}(?:\$|€|£|\d|funds|money|payment).{0,120}" + _SECRECY
        ),
        6,
        "urgent secret transfer",
    ),
    (
        re.compile(
            r"(?:confidential|secret|between us|don'?t tell|do not tell|keep (?:this|it) (?:quiet|private|to "
            r"yourself)|discreet|i'?m in (?:a )?meeting|can'?t talk|cannot talk|can'?t take calls).{0,120}"
            r"(?:wire|transfer|send|pay|process)\b[^.]{0,40}(?:\$|€|£|\d|funds|money|payment|invoice|amount)"
        ),
        6,
        "urgent secret transfer",
    ),
    (
        re.compile(
            r"\b(?:wire|transfer|send|move|pay|remit)\b.{0,60}\bto (?:a|the|this|our|my) new (?:supplier|vendor|payee|"
            r"beneficiary|partner|contractor|account)\b"
        ),
        3,
        "transfer to a new payee",
    ),
    (
        re.compile(
            r"\b(?:parcel|package|delivery|shipment|courier|consignment|order|item|postal)\b[^.]{0,100}\b(?:held|"
            r"on hold|detained|awaiting|pending|suspended|stopped|stuck|could not be delivered|couldn'?t be "
            r"delivered|undeliver\w*|failed|unable to deliver|at our depot|in customs|returned to sender)"
        ),
        2,
        "parcel held",
    ),
    (
        re.compile(
            r"\b(?:pay|settle|cover|confirm)\s+(?:a|the|an|your)?\s*(?:[$€£]?\s?\d+(?:[.,]\d+)?\s*(?:usd|eur|gbp)?\s*)?"
            r"(?:small|minor|outstanding|unpaid|pending|"
            r"required|one ?time)?\s*(?:redelivery|re delivery|customs|release|handling|shipping|postage|"
            r"delivery|clearance|import|storage|processing|claim|admin(?:istration)?|transfer|unlock|"
            r"activation|verification)\s+(?:fee|charge|duty|cost|tax|payment)"
            r"|\b(?:pay|send|transfer|wire)\s+(?:a |the |just )?[$€£]\s?\d[\d,]*(?:[.,]\d+)?\s+"
            r"(?:(?:for|as|in|to cover)\s+)?(?:the |a |an |your )?(?:\w+\s+){0,2}"
            r"(?:fees?|charges?|postage|shipping|duty|taxes|p&p)\b"
        ),
        3,
        "pay a fee to release",
    ),
    (
        re.compile(
            r"\b(?:small|minor|one ?time|processing|release|handling|customs|redelivery|clearance|unlock|activation|"
            r"verification|transfer|admin(?:istration)?|claim|courier|storage|shipping|delivery|postage)\s+"
            r"(?:fee|charge|duty)\b"
        ),
        3,
        "fee to release",
    ),
    (
        re.compile(
            r"\b(?:you(?:'?ve| have)? (?:won|been selected|been chosen)|you (?:were|are) (?:selected|chosen)|"
            r"(?:the|a|sole) beneficiary|"
            r"(?:lucky|grand|prize|selected|chosen|confirmed|our|the|a)\s+"
            r"winners?\b|"
            r"(?:claim|release|collect|receive) (?:your )?(?:prize|winnings|reward|jackpot|inheritance|"
            r"compensation|refund|payout|funds|cash prize)|(?:tax |your )refund (?:of \S+ )?(?:is|has been) "
            r"(?:ready|approved|waiting|available|on hold|pending)|\d[\d,]*(?:st|nd|rd|th) (?:visitor|customer|caller|"
            r"shopper|user)|claim (?:your|the|a) (?:free |brand new |new )?\w+ (?:now|today|here|before)|lottery|"
            r"sweepstakes winner|"
            r"unclaimed (?:prize|funds))"
        ),
        2,
        "prize or funds claim",
    ),
    (
        re.compile(
            rf"\d[\d.,]*\s?{_CRYPTO}\b.{{0,80}}?\b(?:back|returns?|returned|receive\w*|get|payout|paid out|"
            rf"comes? back)\b.{{0,30}}?\d[\d.,]*\s?{_CRYPTO}\b|"
            rf"\b(?:doubl\w*|tripl\w*|2x|3x|10x|multipl\w*)\b[^.]{{0,40}}\b{_CRYPTO}\b|\b{_CRYPTO}\b[^.]{{0,60}}"
            rf"\b(?:doubl\w*|tripl\w*|2x|multipl\w*|guaranteed)\b|\bsend\s+(?:\w+\s+){{0,3}}{_CRYPTO}\b[^.]{{0,80}}\b(?:back|"
            rf"return|receive|get)\b[^.]{{0,20}}(?:double|twice|2x|\d+ ?x|\d+ ?%)|\bguaranteed\s+(?:\d+\s*%\s+)?"
            rf"(?:daily |weekly |monthly )?(?:returns?|profits?|income|gains)\b"
        ),
        6,
        "crypto doubling or guaranteed returns",
    ),
    (
        re.compile(
            r"\b(?:install|download|open|run|set up|setup)\s+(?:\w+\s+){0,3}(?:anydesk|any desk|teamviewer|team "
            r"viewer|quick ?support|quick ?assist|rustdesk|ultraviewer|logmein|splashtop|remote (?:access|desktop|"
            r"support|control|viewer)(?: app| tool| software)?|screen ?shar\w+ app)|\b(?:give|grant|allow|let)\s+"
            r"(?:us|me|our (?:technician|agent|engineer|team|support)|the (?:technician|agent))\s+(?:\w+\s+){0,2}"
            r"(?:remote )?(?:access to|control of|into)\s+(?:your\s+)?(?:computer|pc|laptop|device|phone|"
            r"screen|mac|machine|bank(?:ing)? app)"
        ),
        6,
        "remote access request",
    ),
]
_URGENT = re.compile(
    r"\b(?:urgent|urgently|asap|immediately|right away|right now|today|within (?:\d+|an?|one|two|24|48) "
    r"(?:hours?|minutes?|days?)|before (?:end of day|eod|\d\w*|tomorrow|noon|tonight|it is|it'?s)|final notice|"
    r"or (?:it|your|we|the)|otherwise|to avoid)\b"
)
_PAY_REQUEST = re.compile(
    r"\b(?:pay|paying|payment|transfer|wire|remit|settle|send|fee|charge|deposit|card details|click|link|"
    r"confirm)\b"
)
_PHISH_BENIGN = re.compile(
    r"\b(?:we will never|we'?ll never|never ask|never request|never send|be aware of scams|scam alert|beware of|"
    r"report (?:it|scams|fraud|phishing)|(?:is|are) (?:a |an )?(?:scam|fraud|phishing)|protect yourself|"
    r"warning signs|how to spot|don'?t fall for|do not fall for)\b"
)


def _phishing(text: str, literals: set[str] | None = None) -> Iterator[tuple[str, int, str]]:
    found: dict[str, int] = {}
    for pattern, severity, label in _SCAMS:
        if _may_match(pattern, literals) and pattern.search(text):
            found[label] = max(severity, found.get(label, 0))
    # Gift card codes asked for anywhere in the text (not "we'll email the code to your recipient").
    codes = re.search(
        r"(?<!we )(?<!we'll )(?<!we will )(?<!and we'll )\b(?:send|text|email|e mail|share|read|give|forward|whatsapp)"
        r"\s+(?:me|us|them|him|her|it to me)?\s*(?:the|all the|those|these|all|your)?\s*(?:card\s+)?(?:codes?|"
        r"numbers?|pins?|photos?|pictures?|pics?)\b",
        text,
    )
    if re.search(_GIFT, text) and codes:
        found["gift card codes requested"] = 6
    if not found:
        return
    urgent = _URGENT.search(text) is not None
    pay = _PAY_REQUEST.search(text) is not None
    # Weak shapes only count together: a held parcel or a prize with a fee to pay; changed details with a payment.
    if "payment by gift cards" in found and re.search(rf"\b{_DEBT}\b", text):
        found["payment by gift cards"] = 5
    new_account = "new account mentioned with a payment" in found
    if "transfer to a new payee" in found and urgent:
        found["transfer to a new payee"] = 5
    if new_account and ("changed bank details" in found or "old account closed" in found):
        found["payment to a new account"] = 5
    if "changed bank details" in found and pay:
        found["changed bank details"] = 5
    if "fee to release" in found and ("parcel held" in found or "prize or funds claim" in found):
        found["fee to release"] = 5
    # A fee the reader is told to pay, next to a parcel on its way back or a prize, inheritance or job kit.
    if "pay a fee to release" in found and (
        "parcel held" in found
        or "prize or funds claim" in found
        or re.search(
            r"\b(?:parcel|package|redeliver\w*|tried to deliver|shipment|courier|customs|beneficiary|inheritance|"
            r"you were (?:selected|chosen)|giveaway|free (?:gift|phone|iphone|laptop|dyson)|work laptop|to receive)\b",
            text,
        )
    ):
        found["pay a fee to release"] = 5
    if "parcel held" in found and re.search(r"\b(?:pay|fee|charge|duty|card|click|link|confirm)\b", text):
        found["parcel held"] = 4
    if "prize or funds claim" in found and re.search(
        r"\b(?:fee|charge|tax|shipping|handling|deposit|processing|transfer|wire|small amount|card details|"
        r"bank details|pay)\b",
        text,
    ):
        found["prize or funds claim"] = 5
    if urgent:
        found = {label: min(7, s + (1 if s >= 4 else 0)) for label, s in found.items()}
    benign = _PHISH_BENIGN.search(text) is not None
    for label, severity in found.items():
        if severity >= 4:
            yield "phishing", (severity - 3 if benign else severity), f"structure: {label}"


# ---------------------------------------------------------------------------------------- self-harm
_SELF_ACTS = [
    (
        r"\b(?:stop|quit|skip|skipping|stopping|ditch|ditching|forget|forgetting|drop|dropping|throw away|flush|"
        r"cut out|cutting out|hide|hiding|ration|rationing)\s+(?:(?:taking|using)\s+(?:\w+\s+){0,2}|(?:all\s+)?"
        r"(?:of\s+)?(?:your|ur|my|her|his)\s+(?:\w+\s+)?)(?:meds|medication|medications|medicine|insulin|"
        r"pills|antidepressants|prescriptions?|inhaler|dialysis|chemo|treatment|lithium|tablets|shots|"
        r"injections|doses|dose)\b",
        "stopping medication",
    ),
    (r"\b(?:skipping|skip|no more|without|ditch(?:ing)?)\s+(?:your\s+)?insulin\b", "skipping insulin"),
    (
        r"\b(?:you )?(?:don'?t|do not|never) (?:really |even )?need (?:your|ur|those|the|any|that) (?:\w+\s+)?(?:meds|"
        r"medication|medicine|insulin|pills|antidepressants|inhaler|epipen|dialysis|chemo|treatment|lithium|"
        r"tablets|prescriptions?)\b",
        "stopping medication",
    ),
    (
        r"\b(?:stop|quit)\s+eating(?:\s+(?:entirely|completely|altogether|for\s+(?:\w+\s+)?(?:days?|weeks?|a week|"
        r"good)|until)|\s*$)|\b(?:don'?t|do not|never|just don'?t)\s+eat\s+(?:anything|at all|for\s+(?:\w+\s+)?"
        r"(?:days?|weeks?))|\beat (?:nothing|less than \d+|under \d+)|\bstarv(?:e|ing)\s+(?:yourself|urself)|"
        r"\b(?:make|making) (?:yourself|urself) (?:throw up|vomit|sick|puke|purge)|\bpurg(?:e|ing) after\b|"
        r"\b(?:under|below|less than) [1-6]\d\d calories\b|\bcalories (?:under|below|less than|at|to) [1-7]\d\d\b|"
        r"\bhide (?:the |your )?food\b|"
        r"\bfast(?:ing)? until you (?:faint|pass out|collapse)\b|"
        r"\b(?:throw(?:ing)? up|vomit(?:ing)?) after (?:every|each|meals|eating)\b",
        "starving or purging",
    ),
    (
        r"\b(?:take|swallow|down|chug|pop|taking|swallowing)\s+(?:\w+\s+){0,3}(?:(?:all|the rest) (?:of )?(?:your|"
        r"the|those|them|my) (?:\w+\s+)?(?:pills|tablets|meds|sleeping pills|painkillers)|the (?:whole|entire) "
        r"(?:bottle|pack|packet|box|strip|blister)|(?:a|the) (?:whole |entire |full )?bottle of (?:\w+\s+)?"
        r"(?:pills|tablets|tylenol|paracetamol|painkillers|aspirin|sleeping pills)|(?:enough|a handful of|"
        r"fistfuls of|dozens of|\d{2,} )\s*(?:\w+\s+)?(?:pills|tablets|painkillers|sleeping pills|~)|them all at "
        r"once)",
        "overdose",
    ),
    (
        # Round 4: the pills named first, the overdose in everyday words after ("stock up on your sleeping tablets
        # and take the lot").
        r"\b(?:sleeping (?:tablets|pills)|pills|tablets|painkillers|meds|medication)\b.{0,80}\b(?:take|swallow|down|"
        r"chug)\s+(?:the lot|all of them|them all|every (?:last )?one|the whole lot)\b",
        "overdose",
    ),
    (
        # Round 4: suicide planned under a euphemism ("plan a peaceful exit", "details of a painless way out").
        r"\b(?:plan|planning|help (?:you|each other|people)|details|methods?|how to|guide to|ways? to)\b.{0,40}\b"
        r"(?:peaceful|painless|quiet|final|dignified|permanent|gentle)\s+(?:exit|way out|way to go|goodbye|"
        r"departure|sleep)\b",
        "suicide planning",
    ),
    (
        r"\b(?:cut|cutting|slice|slicing|slit|burn|burning|hurt|hurting|scratch|carve|carving)\s+(?:into\s+)?"
        r"(?:yourself|urself|your (?:wrists?|arms?|thighs?|skin|legs?))\b|\bdeeper (?:cuts|this time)\b|"
        r"\b(?:hide|hiding|cover|covering) (?:the |your )?(?:cuts|scars|burns)\b",
        "self-injury",
    ),
    (
        r"(?<!bungee )\bjump(?:ing)?\s+(?:off|from)\s+(?:a|the|that|your|this)\s+(?:\w+\s+)?"
        r"(?:bridge|roof|rooftop|building|"
        r"ledge|balcony|window|overpass|tower|car park|parking (?:garage|structure))(?! into)(?!.{0,40}\b(?:water|"
        r"lake|sea|pool|river|ocean|waves|harbou?r|guides?|tours?|instructors?|harness|bungee|parachute|"
        r"zip ?line|trampoline|foam pit))|\bjump(?:ing)? in front of "
        r"(?:a|the)\s+(?:\w+\s+)?(?:train|bus|car|truck|lorry|subway)|\b(?:step|walk)(?:ing)? (?:off|into) "
        r"(?:the )?(?:ledge|traffic|the tracks)",
        "jumping",
    ),
    (
        r"\b(?:no ?one|nobody|no body|none of them|not a soul)\s+(?:would|will|is going to|'?d|'?ll)\s+"
        r"(?:even |really |ever )?(?:miss|mourn|cry (?:for|over))\s+you\b|\b(?:no ?one|nobody|no body|not a soul)"
        r"\s+(?:would|will|'?d|'?ll)\s+(?:even |really |ever )?(?:notice|care)\s+(?:if|when|that)\s+you(?:'re|'d| are|"
        r" were| was)?\s+(?:\w+\s+)?(?:gone|dead|died|disappeared|not here|not around|no longer)|"
        r"\b(?:everyone|the world|your "
        r"family|they|everybody)\s+(?:would|will)\s+be\s+better\s+off\s+without\s+you|\byou'?d be better off "
        r"dead|\bdo (?:everyone|us all|the world) a favou?r and (?:\w+\s+)?(?:disappear|die|end it|leave|go)\b|"
        r"\bend (?:it all|your life|things) (?:tonight|now|already|for good)\b|\bjust end it\b|\bno reason "
        r"(?:for you )?to (?:live|stay|keep going)\b|\byou (?:don'?t|do not) deserve to live\b",
        "encouraging suicide",
    ),
]
_SELF_ACT_RES = [(re.compile(p), label) for p, label in _SELF_ACTS]
_ENCOURAGE = re.compile(
    r"(?:^|\b)(?:just|try|you should|u should|you could|you need to|you have to|you gotta|go ahead|why not|"
    r"best way|fastest way|easiest way|quickest way|only way|secret is|trick is|tip|hack|works|worked for me|"
    r"nobody will|no one will|you'?ll (?:feel|look|be)|lose|drop|shed|results?|guaranteed|promise|trust me|"
    r"instead|skip|stop|take|swallow|do it|do this|start|begin|let'?s|the answer|solution|deserve|keep|hide|"
    r"nobody (?:notices|will notice|has to know|needs to know)|so (?:no one|nobody))\b"
)
# Prevention and help framing: the act is warned against or the reader is pointed to help. A doctor merely
# mentioned ("your doctor is lying to you") is not help framing.
_HELP_FRAME = re.compile(
    r"\b(?:(?:never|don'?t|do not|please don'?t)\s+(?:\w+\s+){0,2}(?:skip|stop|quit|miss|change|cut|ditch|ration|"
    r"starve|purge|hurt|harm)|without (?:first )?(?:talking|speaking|consulting|checking)|(?:talk|speak|check) "
    r"(?:to|with) (?:your |a |our )?(?:doctor|gp|pharmacist|nurse|dietitian|therapist|counsell?or|care team|"
    r"diabetes team|clinician|someone)|consult|ask your (?:doctor|pharmacist|gp|nurse|care team)|dangerous|"
    r"danger|risks?|risky|warning signs?|get help|reach out|helpline|hotline|crisis|988|samaritans|"
    r"lifeline|support line|you are not alone|you'?re not alone|recovery|prevention|"
    r"emergency|call 911|call 999|call 112|in crisis|safety plan|support group|"
    r"if you(?:'re| are) struggling|if you(?:'re| are) having thoughts|"
    r"(?:do not|don'?t|never) (?:take|exceed|use|give) (?:more than|the (?:stated|recommended|maximum))|"
    r"(?:stated|recommended|maximum) (?:daily )?dose|out of (?:the )?reach of children|can damage your)\b"
)


def hate_help_framed(masked: str) -> bool:
    """Copy that teaches about hate (history, propaganda, reporting it), quoting what it condemns."""
    return _HATE_HELP.search(masked) is not None


def help_framed(text: str) -> bool:
    """Whether text warns against self-harm or points to help (the `_HELP_FRAME` words)."""
    return _HELP_FRAME.search(text) is not None


def _self_harm(text: str, literals: set[str] | None = None) -> Iterator[tuple[str, int, str]]:
    help_frame = _HELP_FRAME.search(text) is not None
    sentences = _SENTENCES.split(text)  # once, not once per pattern
    for regex, label in _SELF_ACT_RES:
        if not _may_match(regex, literals):
            continue
        for sentence in sentences:
            match = regex.search(sentence)
            if not match:
                continue
            if label == "encouraging suicide":
                if not help_frame or re.search(r"\b(?:would|will) (?:\w+\s+)?miss you\b", sentence) is None:
                    yield "self_harm", 6, f"structure: {label}"
                    return
                continue
            if help_frame:
                continue
            # Everyday acts are harmful as advice or encouragement (imperative, "the fastest way", a promise).
            before = sentence[: match.start()]
            imperative = not before.strip() or re.search(r"(?:^|\b)(?:just|now|so|then|and|simply)\s*$", before)
            if (
                imperative
                or _ENCOURAGE.search(sentence)
                or label in ("overdose", "self-injury", "jumping", "suicide planning")
            ):
                yield "self_harm", 5, f"structure: {label}"
                return


# ----------------------------------------------------------------------------------------- violence
_ACTOR = (
    r"(?:we|i|our (?:\w+\s+)?(?:guys|boys|lads|people|team|associates|collectors|agents|friends|men|crew|"
    r"enforcers|partners|representatives)|my (?:guys|boys|lads|people|friends|crew|associates|men)|someone|"
    r"somebody|people|they)"
)
_WILL = (
    r"(?:'ll|will|shall|are going to|'re going to|re going to|am going to|'m going to|m going to|gonna|are gonna|"
    r"'re gonna|'m gonna|am gonna|can|could|might|may|would|know how to|are coming to|'re coming to|"
    r"'m coming to|are coming|'re coming|'m coming|intend to|plan to|are ready to|have ways to|have people who)"
)
_HARM = (
    r"(?:hurt|harm|break|smash|burn|torch|wreck|trash|destroy|beat|bash|cut|stab|shoot|end|bury|drown|"
    r"find|visit|come (?:for|after)|come (?:round|around|by|over) to|track down|get to|deal with|take care of|"
    r"rearrange|mess up|ruin|set fire to|key|slash|snap|hunt down|hunt|wait for|be waiting for|"
    r"run over|jump|grab|kidnap|take)"
)
# Harm forms that carry their victim: "pay your family a visit", "make you regret", "teach you a lesson".
_HARM_CONTAINED = (
    r"(?:pay (?:you|your \w+|your \w+ \w+) a (?:little |friendly |personal |late night )?visit|make (?:you|your "
    r"\w+) (?:pay|regret|suffer|disappear|bleed|sorry|hurt)|teach (?:you|your \w+) a (?:\w+ )?lesson|put "
    r"(?:you|your \w+) in (?:the |a )?(?:hospital|ground|grave|wheelchair)|show (?:you|your \w+) what happens|"
    r"come (?:to|round to|by|for) your (?:\w+ )?(?:house|home|place|shop|work|office|kids?|family|school)\b[^.]{0,40}"
    r"(?:tonight|lesson|sort|settle|collect|deal|pay|talk|chat|visit|owe))"
)
_VICTIM = (
    r"(?:you|u|ya|your (?:\w+\s+)?(?:family|wife|husband|kids|children|son|daughter|mother|mum|mom|father|"
    r"dad|parents|sister|brother|legs?|arms?|knees?|kneecaps?|face|hands?|fingers?|teeth|head|house|home|"
    r"car|shop|store|business|office|windows|place|dog|cat|pets?|property|van|truck|tyres|tires|premises|"
    r"restaurant|salon|garage|loved ones|little ones|girlfriend|boyfriend|partner)|them|him|her)"
)
_THREATS = [
    (
        rf"\b{_ACTOR}\s*{_WILL}\s+(?:\w+\s+){{0,2}}(?:{_HARM}\s+(?:(?:up|down|in|out|all|of)\s+)?{_VICTIM}\b|"
        rf"{_HARM_CONTAINED})",
        5,
        "actor + will + harm",
    ),
    (
        r"\b(?:would|'d|it'?d) be (?:a )?(?:real |terrible |awful |such a )?(?:shame|pity|tragedy) if "
        r"(?:something|anything|someone|somebody|an accident|(?:your|those|that|the) (?:\w+\s+)?\w+ "
        r"(?:got|were|was|get|caught|went up|ended up) (?:\w+\s+)?(?:broken|smashed|burned|burnt|damaged|hurt|"
        r"fire|flames|vandali[sz]ed|wrecked|trashed|stolen|torched|cracked|missing))|\bshame if (?:something|anything) "
        r"(?:were to |was to |)?happen(?:ed|s)? to (?:you|your)",
        6,
        "would be a shame if",
    ),
    (
        r"\b(?:shame|pity|tragedy) if (?:\w+\s+){0,4}(?:went up in (?:flames|smoke)|burn(?:ed|t|s)? down|caught fire|"
        r"got (?:hurt|broken|smashed|damaged|vandali[sz]ed|torched|burned|burnt)|happened to|had an accident|"
        r"were to (?:burn|break|get hurt|disappear))",
        6,
        "would be a shame if",
    ),
    (
        r"\b(?:we|i|they|our (?:\w+\s+)?(?:guys|boys|lads|people|team|collectors|agents|men|crew))\s*(?:'re|are|'m|am|"
        r"will be|'ll be|re|m)\s+coming (?:to|round to|over to|for|after)\s+(?:you\b|your (?:\w+\s+)?(?:house|"
        r"home|place|shop|work|office|kids?|family|school|door|wife|husband|children|workplace))",
        5,
        "coming for you with a demand",
    ),
    (
        r"\b(?:we|i|they|my \w+|our \w+)(?:'ll| will| are going to|'re going to| gonna) make sure (?:you|your \w+) "
        r"(?:can'?t|cannot|never|won'?t|will never|don'?t) (?:\w+ )?(?:walk|see|talk|work|stand|breathe|eat|sleep|"
        r"drive|use (?:your|those) (?:hands|legs|arms))",
        6,
        "incapacitation threat",
    ),
    (
        r"\b(?:your|ur)\b[^.]{0,50}\b(?:might|may|could|would|will)(?: not|n'?t)? (?:be|stay|remain|look|feel) "
        r"(?:so |as |very |that |too )?(?:safe|secure|healthy|pretty|intact|in one piece)\b",
        3,
        "threat idiom with a demand",
    ),
    (
        r"\b(?:accidents (?:happen|can happen|do happen)|have (?:a|an) (?:\w+\s+)?accident|(?:a|an) (?:nasty|"
        r"unfortunate|terrible|little|tragic|sudden|serious) accident|meet with (?:a|an) accident)\b",
        3,
        "accident",
    ),
    (
        r"\b(?:bullet|bat|baseball bat|knife|blade|gun|round|shell|grave|coffin|plot|crowbar|hammer|machete|"
        r"noose|rope|bomb|pipe|brick|axe|cleaver|body bag|tyre iron|tire iron|golf club|cricket bat|bullets)"
        r"\s+(?:\w+\s+){0,2}with (?:your|ur|his|her|their|you(?:r)? (?:kid'?s|wife'?s|family'?s)) "
        r"(?:\w+'?s?\s+)?name (?:written )?on it",
        6,
        "weapon with your name on it",
    ),
    (
        r"\b(?:we|i|they) know where your (?:\w+\s+)?(?:family|kids|children|wife|husband|mother|parents|"
        r"daughter|son|little ones) (?:live|work|sleep|go|park|shop|play)|\b(?:sleep with one eye open|you won'?t "
        r"see (?:it|us|them) coming|your days are numbered|you(?:'re| are) (?:a )?dead (?:man|woman|meat)|before "
        r"someone gets hurt|someone (?:is going to|will|could|might) get hurt)\b",
        5,
        "threat idiom",
    ),
    (
        r"\b(?:we know where you (?:live|work|sleep|park)|(?:we|i|they)(?:'ve| have| got|'ve got| know) your (?:home |"
        r"work )?address|(?:we|i|they|he|she|my \w+|our \w+)(?:'ve|'s| has| have| got|'s got|'ve got) (?:a |the |some |"
        r"my |his |her |our )?(?:\w+ )?(?:crowbar|baseball bat|bat|knife|"
        r"knives|gun|pistol|machete|axe|hammer|acid|petrol|blade|knuckle dusters?|brass knuckles)|"
        r"watch your back|look(?:ing)? over your shoulder|count "
        r"your days|things (?:could|will|might|can|are going to) get (?:ugly|messy|painful|physical|violent)|"
        r"you(?:'ll| will) regret (?:it|this|ignoring|not paying))\b",
        5,
        "threat idiom with a demand",
    ),
    (
        r"\b(?:your|ur)\s+(?:\w+\s+)?(?:kneecaps?|knees|legs|arms|fingers|teeth|kids|children|family|wife|"
        r"husband|face|house|home|shop|store|car|van|truck|windows|tyres|tires|restaurant|salon|office|garage)\s+"
        r"(?:will|would|might|could|may|are going to|is going to|'ll|'d)\s+(?:\w+\s+){0,5}(?:hurt|broken|smashed|"
        r"burned|burnt|torched|damaged|cut|stabbed|shot|in hospital|missing|on fire|ashes|in pieces|harmed|burn|"
        r"go up in flames|catch fire|explode|cave in|"
        r"slashed|kicked in|caved in|vandali[sz]ed|wrecked|trashed)",
        6,
        "harm to your people or property",
    ),
]
_THREAT_RES = [(re.compile(p), s, label) for p, s, label in _THREATS]
# A demand or condition that turns everyday wording ("we'll find you", "accidents happen") into a threat.
_DEMAND = re.compile(
    r"\b(?:owe|owed|owing|debt|debts|loan|arrears|overdue|outstanding|(?<!card )(?<!points )(?<!gift )balance|"
    r"what you owe|the money|pay up|"
    r"if (?:this|it|that|the \w+|you)\s+(?:isn'?t|is not|aren'?t|are not|don'?t|do not|doesn'?t|won'?t|can'?t)\s+"
    r"(?:\w+\s+)?(?:paid|pay|settled|cleared|sorted)|"
    r"pay us|settle (?:the|your|up|it)|clear (?:the|your) (?:debt|balance|account|invoice)|or (?:we|our|my|i|they)|"
    r"pay (?:\w+ )?by (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|tonight|noon)|"
    r"or else|unless|if you don'?t|if you do not|if it isn'?t|if the money|last (?:chance|warning)|"
    r"final (?:warning|notice)|or you|cops|police|tell anyone|keep talking|one more (?:review|word|complaint))\b"
)
_SOFT_HARM = frozenset(
    [
        "find",
        "visit",
        "come",
        "track",
        "get",
        "deal",
        "take",
        "wait",
        "be",
        "jump",
        "grab",
        "hunt",
        "beat",
        "cut",
        "mess",
        "ruin",
        "pay",
        "show",
    ]
)
_NEGATED_THREAT = re.compile(r"\b(?:never|not|n't|no one|nobody)\b")


def _violence(text: str, literals: set[str] | None = None) -> Iterator[tuple[str, int, str]]:
    demand = _DEMAND.search(text) is not None
    threats = [threat for threat in _THREAT_RES if _may_match(threat[0], literals)]
    for sentence in _SENTENCES.split(text) if threats else ():
        for regex, severity, label in threats:
            match = regex.search(sentence)
            if not match:
                continue
            if label == "actor + will + harm":
                if _NEGATED_THREAT.search(match.group(0)):
                    continue
                verb = re.search(rf"{_HARM}|{_HARM_CONTAINED}", match.group(0)[3:])
                soft = verb is None or verb.group(0).split()[0] in _SOFT_HARM
                if soft and not demand:
                    continue
                yield "violence", 5, f"structure: {label}"
                return
            if label in ("accident", "threat idiom with a demand", "coming for you with a demand"):
                if demand:
                    yield "violence", 5, f"structure: {label}"
                    return
                continue
            yield "violence", severity, f"structure: {label}"
            return


def prefilter_requirements() -> None:
    """Ask for the requirement of every pattern with a prefilter (for prefilter.write_store; the templates' at
    import)."""
    _static_literals()


@load_once()
def _static_literals() -> tuple[LiteralIndex, dict[str, Requirement]]:
    """The requirements of the fixed patterns run on every text (prefilter.py), and their literals: read (or
    derived) on first use, not at import."""
    patterns = [_GET_RID, *(p for p, _, _ in _SCAMS), *(p for p, _ in _SELF_ACT_RES), *(p for p, _, _ in _THREAT_RES)]
    required = {p.pattern: requirement(p.pattern) for p in patterns}
    return LiteralIndex(lit for r in required.values() for clause in r for lit in clause), required


def _may_match(pattern: re.Pattern[str], literals: set[str] | None) -> bool:
    """False when the text whose `literals` were found lacks what every match of ``pattern`` holds (None: no
    prefilter, always True)."""
    return literals is None or satisfied(_static_literals()[1][pattern.pattern], literals)


def structural_signals(masked: str, raw: str) -> list[tuple[str, int, str]]:
    """Hate, phishing, self-harm and violence signals from the structure of English text (see module doc)."""
    names = _group_names(raw)
    literals = _static_literals()[0].present(masked)  # what the fixed patterns need, looked for once
    signals: list[tuple[str, int, str]] = []
    if not _HATE_HELP.search(masked):
        slot = _slot(names)
        possible = tuple(holds(required, masked, slot) for required in _HATE_REQUIRED)
        for sentence in _SENTENCES.split(masked):
            signals += list(_hate(sentence.strip(), names, possible, literals))
            if signals:
                break
        if not signals:
            signals += list(_hate_text(masked, raw, names))
    signals += list(_phishing(masked, literals))
    signals += list(_self_harm(masked, literals))
    signals += list(_violence(masked, literals))
    return signals
