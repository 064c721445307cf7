"""Minors in the embedded screen (issue 18, round 4): any sexual content or grooming that involves a minor is
sexual severity 7, whatever the other layers and the model say.

Concepts, not phrases. A text concerns a minor when it carries a *minor cue*:

- strong: an age under 18 in digits or words ("14-year-old", "fourteen", "you're only 13", "turned 12", "her 13th
  birthday", "girls 12-15", "under-13s"), a school grade or year ("8th grade", "year 9", "7. Klasse"), a school
  stage ("middle school", "junior high", "high school sophomore"), a word for a child (child, kid, preteen, tween,
  teen, toddler, schoolgirl, little girl, young boy, camper, "barely legal", jailbait; DE/ES/FR forms);
- weak: a pupil's world (school, uniform, braces, pigtails, puberty, camp, practice,
  after school, youth or junior team, babysitting), "your son / daughter", or a secret kept from "your parents"
  (whoever must hide things from their parents is, in this register, a child).

and *sexual or grooming intent*, in four families:

- body: sexualized talk (sexy, hot, "what a body", "mature for her age", "age is just a number", "how much you've
  developed", underwear / bikini / gym shorts pictures, naughty, undress, touch, "get my hands on", kiss, "please a
  grown man", "grown-up games", "good girl");
- secrecy and isolation: "our little secret", "don't tell your mum", "keep it between us", "delete the chat",
  "nobody will believe you", "when your parents are out", "no parents / guardians on set", "come alone", "just
  the two of us", "get them alone";
- pictures: "send me a pic / something", on cam, video chat, a private photo shoot, posing, model scouting;
- meeting: a date, dating, a meet-up, "pick you up", a motel, overnight stays, companionship, "sugar daddy".

Verdict (`minor_signal`): a strong cue with any sexual signal of the other layers, or with body talk, or with
secrecy plus pictures or meeting -> 7; a weak cue needs two families, one of them body talk or secrecy; girl / boy /
princess / sweetie (adult content's words for adults too) need secrecy and one more family. Copy that
*warns* about grooming ("know the signs", "report it", "talk to your kids"), sex education, pediatric care and
ordinary child-related sales (swimwear, uniforms, camps, "kids eat free") carry a cue but no intent; the warning
and education frames (`protective_copy`) veto the rule unless someone in the text, outside quoted warnings, asks for
themself ("send me", "my place", "I'll", "our secret"); the screen then also lowers the model's sexual guess and a
sexual word next to a minor, never an explicit term of the rule lexicon. Input is the
raw text (digits must survive: the screen's normalization reads "U13" as letters). No dagster, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_NUM_WORD = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen)"
)
_AGE = rf"(?:1[0-7]|[1-9]|{_NUM_WORD})"
_ORDINAL = (
    r"(?:1[0-9]th|1st|2nd|3rd|[4-9]th|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|"
    r"twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth)"
)
_STRONG_CUE = re.compile(
    "|".join(
        [
            # an age, not a duration: "14 years old", "14yo", "fourteen-year-old" (never "five years or longer")
            rf"\b{_AGE} ?(?:yo|y/o|(?:yrs?|years?|yr) ?olds?)\b",
            rf"\b(?:aged?|ages) {_AGE}(?: ?(?:-|to|and|or) ?{_AGE})?\b",
            rf"\b(?:girls?|boys?|kids?|children|teens?|models?|students?|pupils?) (?:aged )?{_AGE}(?: ?(?:-|"
            rf"to) ?| ){_AGE}\b",
            rf"\b(?:you'?re|you are|ur|she'?s|she is|he'?s|he is|i'?m|i am|(?:she|he|you|just) turned) "
            rf"(?:only |just |barely |still )?{_AGE}\b(?! (?:minutes|mins|hours|days|weeks|months|percent|%|pm|am))",
            rf"\b{_ORDINAL} birthday\b",
            r"\bsweet sixteen\b",
            r"\b(?:under|u) ?(?:1[0-7]|[1-9])s\b|\b(?:under|u) ?(?:1[0-7]|[1-9]) (?:team|"
            r"squad|side|league|players?|girls|boys)\b",
            rf"\b{_ORDINAL}[ -]?grad(?:e|ers?)\b",
            r"\bgrade (?:1[0-2]|[1-9])\b",
            r"\byear (?:1[0-2]|[1-9]) (?:girls?|boys?|pupils?|students?|kids?|class)\b",
            r"\b(?:are|is|in|from) year (?:1[0-1]|[1-9])\b",
            r"\b(?:middle|elementary|primary|grade|junior high|secondary) school(?:ers?)?\b",
            r"\bjunior high\b",
            r"\bhigh school (?:girls?|boys?|freshm[ae]n|sophomores?|juniors?|kids?|students?|cheerleaders?)\b",
            r"\b(?:still|only) in (?:high |middle )?school\b",
            r"\b(?:child|children|kids?|kiddies|minors?|underage|under age|preteens?|pre teens?|tweens?|teens?|"
            r"teenagers?|teenage|toddlers?|schoolgirls?|schoolboys?|schoolkids?|jailbait|lolita|loli|"
            r"youngsters?|juveniles?|campers?)\b",
            r"\blittle (?:girls?|boys?|ones?)\b",
            r"\byoung (?:girls?|boys?|teens?|campers|pupils|students|children|kids)\b",
            r"\bbarely legal\b|\bnot (?:yet )?18\b|\bunder 18\b",
            r"\bpuberty\b",
            rf"\b(?:son|daughter|kid|child|boy|girl|niece|nephew|grandson|granddaughter|"
            rf"stepdaughter|stepson|sister|brother) "
            rf"(?:is|'s|was) (?:only |just |now |barely |still )?{_AGE}\b",
            r"\b(?:girls?|boys?|kids?|children) (?:at|from) (?:summer |sleepaway |scout |church |bible )?camp\b",
            rf"\b(?:pretty|cute|mature|developed|grown up|tall|hot|sexy) (?:\w+ )?for (?:a |an )?{_AGE}\b",
            r"\byoung(?:er)? looking\b|\bchild ?like\b|\blooks? (?:under ?age|so young|twelve|thirteen)\b",
        ]
    )
)
_FOREIGN_CUE = re.compile(  # German, Spanish, French (accents removed)
    "|".join(
        [
            r"\b(?:du bist|sie ist|er ist) (?:erst |noch |nur )?(?:1[0-7]|[1-9])\b",
            r"\b(?:1[0-2]|[1-9])\.? klasse\b|\b(?:kind|kinder|madchen|jungen|schuler(?:in|innen)?|minderjahrig\w*)\b",
            r"\b(?:tienes|tiene) (?:solo |apenas )?(?:1[0-7]|[1-9])\b|\b(?:nina|ninas|nino|ninos|menor(?:es)?)\b",
            r"\b(?:de|en) (?:primaria|secundaria)\b|\bcolegiala\b",
            r"\b(?:tu as|elle a|il a) (?:seulement |juste )?(?:1[0-7]|[1-9])\b|\b(?:enfants?|fillettes?|mineur\w*)\b",
            r"\bcollegien(?:ne)?s?\b",
            r"(?<!\d)(?:1[0-7]|[1-9]) ?(?:jahre?|anos|ans)\b",
        ]
    )
)
# "girls" and "boys" are also adult content's words for adults: alone they count only next to secrecy.
_PET_NAME = re.compile(r"\b(?:girls?|boys?|princess|sweetie|sweetheart|cutie|lil cutie)\b")
_WEAK_CUE = re.compile(
    r"\b(?:your (?:son|daughter)|(?:his|her) (?:son|daughter)|"
    r"school|uniforms?|braces|pigtails|camp|practice|after school|youth (?:team|club|group)|junior|"
    r"babysit(?:ter|ting)?|so young|young one|coach|tutor\w*|teacher|counsell?ors?)\b"
    r"|\b(?:your|her|his|their) (?:parents|mum|mom|mummy|mommy|dad|daddy|mother|father)\b"
)
_FOREIGN_WEAK = re.compile(
    r"\b(?:madchen|chica|chico|fille|garcon|(?:tus|tes|deine[nr]?) (?:padres|parents|eltern|mama|mutter))\b"
)

_BODY = re.compile(
    r"\b(?:sexy|horny|naughty|seductive|(?:is|are|so|looks?|looking|looked) hot|hot (?:body|girls?|boys?|teens?|pics?)|"
    r"what a body|(?:her|his|your) body|nice body|mature for (?:her|his|your) age|age is just a number|"
    r"how much (?:you'?ve|she'?s|he'?s) (?:grown|developed)|(?:so|you'?ve|she'?s) developed|"
    r"fills? out (?:that|her|his|the|your) (?:uniform|dress|top|swimsuit|bikini|jeans|shorts)|filling out nicely|"
    r"(?:in|of) (?:your|her|his) (?:underwear|bikini|swimsuit|gym shorts|panties|pyjamas|pajamas|towel)|"
    r"bikini (?:pic|pics|photo|picture)|lingerie|boudoir|undress\w*|naked|nude|nudes|get my hands on|"
    r"kiss(?:ing)? (?:and more|you)|how to kiss|please a (?:grown|older) (?:man|woman)|grown ?up games|good girl|"
    r"more than maths|(?:you'?re|she'?s|he'?s) developing|developing (?:so )?(?:fast|"
    r"nicely|early)|after (?:your|her|his) shower|in the shower|tight (?:shorts|"
    r"top|dress|jeans)|bath ?time games|whoever gets furthest|"
    r"toda una mujer|so reif|ohne kleidung|nackt\w*|si belle|desnud\w*)\b"
    r"|\btouch\w*\b.{0,60}\b(?:changing room|locker room|shower|bath|bed|alone|in private)\b"
)
_SECRECY = re.compile(
    r"\b(?:our (?:little )?secret|stays? (?:our|a) secret|keep (?:it|this|that|our \w+|them|the \w+) "
    r"(?:between us|secret|quiet|from (?:your|her|his) parents|to yourself)|between us|"
    r"(?:don'?t|do not|never|not) tell (?:your |her |his |anyone|anybody|a soul)|"
    r"(?:from|keep\w* \w+ \w+ from) (?:your|her|his) parents|delete (?:the|our|this) (?:chat|messages|texts|dms)|"
    r"nobody (?:will|needs to|has to) (?:know|believe)|no one (?:will|needs to) (?:know|believe)|"
    r"(?:your|her|his) parents (?:think|won'?t|don'?t|can'?t|are (?:out|away))|when (?:your|her|his) "
    r"(?:\w+ )?\w+(?:'s| is| are) (?:out|away|gone|not home|asleep)|when mum'?s away|when mom'?s away|"
    r"(?:no|without) (?:parents|guardians|mum|mom)|parents (?:not allowed|stay outside)|come alone|"
    r"(?:meet|see) (?:me )?alone|just (?:the )?two of us|just you(?= and me|"
    r"[.,!]|$)|get (?:them|him|her) alone|alone (?:in|with)|"
    r"door locked|discreet|discrets?|discretes?|discretos?|discretas?|diskret\w*|"
    r"no questions asked|no age verification|"
    r"unser (?:kleines )?geheimnis|sag (?:es )?(?:deinen eltern|deiner mutter|niemandem)|komm allein|"
    r"nuestro (?:pequeno )?secreto|no (?:se lo |le )?digas (?:nada )?a tus padres|ven sola?|"
    r"notre (?:petit )?secret|ne dis rien a tes parents|viens (?:me voir )?seule?)\b"
)
_PICTURES = re.compile(
    r"\b(?:send (?:me |us )?(?:a |some |your |more )?(?:pics?|pictures?|photos?|selfies?|something|snaps?|video)|"
    r"(?:a few|some|more|cute|private) (?:pics?|pictures?|photos?|selfies?)|private album|"
    r"(?:pics?|pictures?|photos?) of you|on (?:cam|webcam|camera)|webcam|video ?chat|facetime|"
    r"photo ?(?:shoot|session)|private (?:pics?|photos?|shoot|collector|session|video)|pos(?:e|ing) (?:for|in)|"
    r"model(?:ing|ling)? (?:scouting|for)|casting call|"
    r"fotos?|fotos privadas|photos? privees?)\b"
)
_MEETING = re.compile(
    r"\b(?:dates?|dating|meet (?:up|me|real|you)|meet-?ups?|come (?:over|to my|see me|round|by my|by our)|"
    r"my place|my flat|my house|pick (?:you|her|him) up|bring (?:her|him|them) (?:round|over|to me)|"
    r"add me on|other app|snapchat|"
    r"private chat|(?:dm|message|text) me|drive (?:you|her|him) to|motel|hotel room|overnight|sleepover|"
    r"companionship|sugar daddy|hook ?up|set you up|arrangement|ven a mi casa|chez moi|zu mir)\b"
)
# A secret a child must keep from the parents: grooming whatever else the text says.
_FROM_PARENTS = re.compile(
    r"\b(?:don'?t|do not|never|not|won'?t|promise not to) tell (?:your|her|his) (?:parents|mum|mom|dad|mother|father)\b"
    r"|\b(?:keep|hide)\w* (?:it|this|that|them|our \w+) (?:secret )?from (?:your|her|his) (?:parents|mum|mom|dad)\b"
    r"|\b(?:your|her|his) parents (?:don'?t|won'?t|needn'?t|mustn'?t) (?:need to )?(?:know|find out)\b"
    r"|\bsag (?:es )?(?:deinen eltern|deiner mutter|deinem vater) nichts\b|\bno (?:se lo |le )?digas a tus padres\b"
    r"|\bne (?:dis|le dis) rien a tes parents\b"
)
# ... unless the secret is a present for them ("don't tell your mum: Mother's Day cards are in aisle 4").
_PARENT_SURPRISE = re.compile(r"\b(?:surprise\w*|mother'?s day|father'?s day|mum'?s birthday|mom'?s birthday)\b")
# Meeting words that are an adult's arrangement, whoever it is with.
_ADULT_MEETING = re.compile(
    r"\b(?:companionship|sugar (?:daddy|baby)|motel|hotel room|hook ?ups?|set (?:you|him|her) up with|"
    r"overnight stays?\W+generous|generous (?:gifts|allowance)|dates? tonight|meet real)\b"
)
# Copy that protects: warns about grooming, educates, or treats.
_PROTECTIVE = re.compile(
    r"\b(?:signs? of (?:grooming|abuse)|grooming (?:signs|awareness|prevention)|that is grooming|is grooming|"
    r"report (?:it|them|concerns?|abuse|this)|safeguarding|child protection|"
    r"protect (?:your|our) (?:kids|children|child)|"
    r"talk to your (?:kids|children|child|teen)|online safety|stay safe online|"
    r"warning signs|predators? (?:use|say|ask)|"
    r"learn how to spot|tell a (?:parent|teacher|trusted adult)|sex(?:ual)? education|sex ed|sexual health|"
    r"curriculum|body safety|about consent|consent (?:education|lessons?|"
    r"talks?)|pediatric\w*|paediatric\w*|vaccin\w*|check ?up|dermatolog\w*|"
    r"orthodont\w*)\b"
)


# Warnings quote what groomers say ("'our little secret'"); the speaker of a solicitation asks for themself.
_QUOTED = re.compile(r"(?<!\w)'(?:[^']|(?<=\w)'(?=\w)){2,80}'(?!\w)|\"[^\"]{2,80}\"")
_SOLICIT = re.compile(
    r"\b(?:send me|to me|with me|meet me|for me|my place|my flat|my house|my studio|my car|i'?ll|i will|i can|i want|"
    r"i'?d love|let'?s|our (?:little )?secret|between us|my way|dm me|message me|add me)\b"
)


def protective_copy(text: str) -> bool:
    """Copy that protects children: it warns about grooming, educates about puberty and sex, or treats; and nobody
    in it (outside quoted warnings) asks anything for themself."""
    plain = _plain(text)
    if _PROTECTIVE.search(plain) is None:
        return False
    return _SOLICIT.search(_QUOTED.sub(" ", plain)) is None


@lru_cache(maxsize=16)  # one text is made plain three or four times per screening (cues, signal, protective copy)
def _plain(text: str) -> str:
    """Casefolded, accents removed, hyphens and slashes as spaces; digits kept (unlike the screen's text)."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    stripped = stripped.replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"\s+", " ", re.sub(r"(?<=\w)[-\u2010-\u2013](?=\w)", " ", stripped))


def minor_cues(text: str, language: str = "en") -> tuple[bool, bool]:
    """(strong, weak) minor cue in raw `text`; German, Spanish and French words only in text not identified as
    English (German "Kind" is English "kind")."""
    plain = _plain(text)
    foreign = language != "en"
    strong = _STRONG_CUE.search(plain) is not None or (foreign and _FOREIGN_CUE.search(plain) is not None)
    weak = _WEAK_CUE.search(plain) is not None or (foreign and _FOREIGN_WEAK.search(plain) is not None)
    return strong, weak


def minor_signal(text: str, sexual_severity: int, language: str = "en") -> str | None:
    """Why `text` is sexual content involving a minor (severity 7), or None. `sexual_severity` is the strongest
    sexual signal the other layers gave (rules, concepts, structure or the model), before any lowering."""
    plain = _plain(text)
    strong, weak = minor_cues(text, language)
    weak = strong or weak
    if not weak and _PET_NAME.search(plain) is None:
        return None
    body = _BODY.search(plain) is not None
    secrecy = _SECRECY.search(plain) is not None
    pictures = _PICTURES.search(plain) is not None
    meeting = _MEETING.search(plain) is not None
    if protective_copy(text):
        return None
    if strong and sexual_severity >= 1:
        return "minor + sexual content"
    if strong and body:
        return "minor + sexualized body talk"
    if strong and _ADULT_MEETING.search(plain):
        return "minor + an adult's date or arrangement"
    if strong and _FROM_PARENTS.search(plain) and not _PARENT_SURPRISE.search(plain):
        return "minor + a secret kept from the parents (grooming)"
    if strong and secrecy and (pictures or meeting):
        return "minor + secrecy with pictures or a meeting (grooming)"
    families = sum((body, secrecy, pictures, meeting))
    if weak and (body or secrecy) and families >= 2:
        return "minor cue + grooming intent"
    if _PET_NAME.search(plain) and secrecy and families >= 2:
        return "girl or boy + secrecy (grooming)"
    return None
