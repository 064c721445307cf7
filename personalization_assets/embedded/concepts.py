# ruff: noqa: E501 - concept lists are data: one long string per concept reads better than wrapped fragments
"""Harm concepts in English, German, Spanish and French, matched on Snowball stems with their target and intent.

The rule lexicon of embedded/screen.py matches English word forms; this layer matches *concepts*: every word of the
text and of the concept lists is reduced to its stem in the text's language (snowballstemmer, pure Python, no
data download), so "stabbed", "stabbing" and "stabs" are one concept, as are "töten", "tötet" and "getötet". A
severity needs a concept with its context, never a bare word (except explicit sexual words):

- violence: a harm verb aimed at a target (a person, an object pronoun, a body part) near it, stronger with
  intent (future, modal, first person, a condition like "or else"); a threat formula ("I know where you live");
- hate: a group named within a few words of a dehumanizing noun, an eliminationist verb or a demeaning claim;
- self_harm: a self-directed harm act ("cut yourself", "bring dich um"), or a method with an instruction;
- sexual: explicit words; any sexual word next to a minor is flagged "minor" (the screen sets 7);
- phishing: a request verb with a credential (card number, PIN, password, one-time code, bank log-in), or a
  log-in prompt with a look-alike or raw link, or an account threat with a link.

`concept_signals(text, language)` takes normalized text (lib.safety.normalize_text, English idioms masked) and
returns (concern, severity, label) triples.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache

import snowballstemmer

from personalization_assets.embedded.language import SUPPORTED_LANGUAGES, UNDETERMINED
from personalization_assets.embedded.loading import load_once

_STEMMER_NAMES = {"en": "english", "de": "german", "es": "spanish", "fr": "french"}
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[@/:.]+")
_SENTENCES = re.compile(r"[.!?;]+(?:\s+|$)|\n+|\s+-\s+")


# A snowballstemmer stemmer keeps the word it is working on in its own fields, so two threads sharing one corrupt
# each other's word ("IndexError: string index out of range", which the fail-closed screen turns into a block).
# The safety stage screens texts concurrently: one stemmer per language per thread.
_STEMMERS = threading.local()


def _stemmer(language: str):  # noqa: ANN202 - snowballstemmer has no types
    stemmers = getattr(_STEMMERS, "by_language", None)
    if stemmers is None:
        stemmers = _STEMMERS.by_language = {}
    if language not in stemmers:
        stemmers[language] = snowballstemmer.stemmer(_STEMMER_NAMES[language])
    return stemmers[language]


@lru_cache(maxsize=200_000)
def stem(language: str, word: str) -> str:
    return _stemmer(language).stemWord(word)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("'", " ")


MIN_STEM = 4  # shorter stems collide across words ("coño" and "con", "mamada" and "mamá"): matched exactly
# Concepts whose words are matched by stem only when the stem is longer still ("cortan" is not "córtate",
# "correr" is not "correrse", "nude" is not "nudes").
STRICT_CONCEPTS = {"sexual_explicit": 6, "selfharm_act": 6}


def _key(language: str, word: str, min_stem: int = MIN_STEM) -> str:
    """What a lexicon word is matched by: its stem when that is long enough to be specific, else the word
    itself ("=word"); "=word" in the lexicon forces the exact word."""
    if word.startswith("="):
        return word
    stemmed = stem(language, word)
    return stemmed if len(stemmed) >= min_stem else "=" + word


def _phrases(language: str, spec: str, min_stem: int = MIN_STEM) -> tuple[tuple[str, ...], ...]:
    """ "a b|c" -> tuples of match keys (`_key`), one per word; "_" is a gap of up to GAP words."""
    out = []
    for phrase in spec.split("|"):
        words = [w if w == "_" else re.sub(r"[^a-z0-9=]", "", w) for w in _fold(phrase).split()]
        words = [w for w in words if w]
        if words:
            out.append(tuple(w if w == "_" else _key(language, w, min_stem) for w in words))
    return tuple(dict.fromkeys(out))


def _index(phrases: Iterable[tuple[str, ...]]) -> dict[str, list[tuple[str, ...]]]:
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for phrase in phrases:
        by_first.setdefault(phrase[0], []).append(phrase)
    return by_first


# --- Concept lists (plain words; stemmed per language at import) -------------------------------------------

_EN = {
    "harm_strong": "take _ out permanently|taken out permanently|take him out|take her out|take them out|put _ down too|finish him|finish her|finish them|finish _ off|eliminate|get rid of him|get rid of her|run _ off the road|to pieces|to a pulp|hack _ to pieces|cut _ to pieces|beat _ to death|stab _ to death|kill|murder|stab|shoot|shot|slaughter|strangle|choke|behead|decapitate|butcher|torture|"
    "lynch|rape|slit|maim|massacre|exterminate|gun down|mow down|burn alive|"
    "blow up|bomb|firebomb|assassinate|bludgeon|dismember|skin alive|suffocate|poison|shank|"
    "kneecap|set fire|set on fire|set _ on fire|torch|bleed out|pour gasoline|pour petrol|douse|"
    "light a match|burn _ alive|send _ to the hospital|put _ in the hospital|put _ in the ground",
    "arson": "burn down|burn _ down|burn to the ground|torch|firebomb|blow up|bomb|set fire to|set _ on fire|set fire|petrol bomb|molotov",
    "property": "house|home|car|shop|store|office|warehouse|business|church|mosque|synagogue|school|building|restaurant|clinic|van|truck|apartment|flat|place",
    "lethal": "kill|murder|stab|strangle|massacre|slaughter|behead|decapitate|torture|lynch|rape|assassinate|dismember|slit _ throat|exterminate|gun down|mow down|execute _ family|butcher _ family|shoot _ dead|shot dead|blow _ brains out|kills|killed|killing|murdered|murdering|stabbed|stabbing|strangled|strangling|massacred|slaughtered|tortured|raped|lynched",
    "debt": "owe|owing|debt|arrears|balance|invoice|pay up|outstanding|collect|collection|collections|overdue|payment",
    "visit": "at your address|your address|your door|your doorstep|your house|your home|visit you|pay you a visit|come round|come over|calling at|call at your|find you|your workplace|where you work",
    "harm_weak": "smashed|beaten|punched|kicked|hurting|hack|chop up|cut up|beat|beat up|hit|punch|kick|hurt|harm|attack|smash|break|slash|burn|bash|batter|"
    "hunt down|injure|wound|slap|stomp|rough up|cripple|disfigure|teach _ a lesson",
    "target": "witness|witnesses|snitch|snitches|cyclist|owner|his owner|her owner|anyone|anybody|whoever|reporter|journalist|judge|doctor|nurse|politician|mayor|senator|president|priest|imam|rabbi|guard|worker|owner|tenant|client|agent|clerk|stranger|man|woman|girl|boy|guy|kid|child|baby|you|u|ya|him|her|them|'em|em|yourself|everyone|everybody|your family|your kids|your children|"
    "your wife|your husband|your mother|your mom|your daughter|your son|your face|your head|your legs|"
    "your leg|your knees|your kneecaps|your bones|your fingers|your hands|your arms|your teeth|your skull|"
    "your neck|your throat|your ribs|your jaw|your nose|your eyes|your house|your home|your car|your shop|"
    "your store|his face|her face|their faces|his legs|her legs|people|neighbor|neighbour|boss|team|crew|"
    "manager|teacher|cop|police|officer|customer|staff|employee|cashier|driver|landlord|ex|wife|husband|"
    "girlfriend|boyfriend|family|kids|children|him and|them all|all of them|all of you|debtor|the lot of you",
    "body": "your legs|his legs|her legs|their legs|ur legs|my legs|your leg|his leg|her leg|their leg|ur leg|my leg|your knees|his knees|her knees|their knees|ur knees|my knees|your kneecaps|his kneecaps|her kneecaps|their kneecaps|ur kneecaps|my kneecaps|your bones|his bones|her bones|their bones|ur bones|my bones|your fingers|his fingers|her fingers|their fingers|ur fingers|my fingers|your teeth|his teeth|her teeth|their teeth|ur teeth|my teeth|your skull|his skull|her skull|their skull|ur skull|my skull|your neck|his neck|her neck|their neck|ur neck|my neck|your throat|his throat|her throat|their throat|ur throat|my throat|your ribs|his ribs|her ribs|their ribs|ur ribs|my ribs|your jaw|his jaw|her jaw|their jaw|ur jaw|my jaw|your spine|his spine|her spine|their spine|ur spine|my spine|your face|his face|her face|their face|ur face|my face|your nose|his nose|her nose|their nose|ur nose|my nose|your arms|his arms|her arms|their arms|ur arms|my arms|your eyes|his eyes|her eyes|their eyes|ur eyes|my eyes|your head|his head|her head|their head|ur head|my head",
    "intent": "will|'ll|ll|going to|gonna|about to|let's|lets|should|must|need to|have to|gotta|deserve|"
    "want to|wanna|i'd love to|i swear|or else|unless|if you don't|if you do not|next time|i promise|we'll|"
    "i'll|you'll|shall|is coming|are coming|coming for|time to|can't wait to|plan to|intend to",
    "threat": "pick _ teeth|picking _ teeth|teeth off the|teeth up off|not known for being gentle|won't be gentle|will not be gentle|won't be so nice|physical consequences|bodily harm|never walk again|never walk straight|walk straight again|hurt your family|harm your family|finish the job|finish what we started|broken arms|broken legs|broke _ arm|broke _ legs|break _ arms|snap _ neck|we know where|i know where|know where your|know which school|know _ school|do the same to you|you'll be next|you will be next|know where you live|know where your kids|know where you work|sleep with one eye|"
    "your days are numbered|or else|six feet under|body bag|"
    "end up in the hospital|end up in hospital|in a wheelchair|won't walk again|never walk again|"
    "you're dead|you are dead|dead man|dead meat|pay with your life|"
    "pay in blood|we have people|something bad will happen|"
    "nice family|shame if something|won't be so lucky|bullet|bullets|bleed|bleeding|blood",
    # Everyday phrases that threaten only next to a harm, intent or demand ("accidents happen" in insurance copy).
    "threat_weak": "you've been warned|last warning|final warning|you'll regret|you will regret|accidents happen|"
    "something might happen|watch your back",
    "weapon": "knife|knives|gun|guns|rifle|pistol|machete|axe|hammer|bat|crowbar|acid|blade|shotgun|"
    "bomb|explosive|grenade|petrol|gasoline|noose",
    "group": "immigrant|immigrants|migrant|migrants|refugee|refugees|foreigner|foreigners|muslim|muslims|"
    "jew|jews|jewish|christian|christians|black people|black folks|white people|asian|asians|mexican|"
    "mexicans|arab|arabs|african|africans|gay|gays|lesbian|lesbians|homosexual|homosexuals|trans|"
    "transgender|queer|queers|gypsy|gypsies|roma|disabled|cripple|cripples|women|woman|females|"
    "chinese|indian|indians|latino|latinos|hispanic|hispanics|pakistani|pakistanis|somali|somalis|syrian|"
    "syrians|haitian|haitians|catholic|catholics|hindu|hindus|sikh|sikhs|atheist|atheists|"
    "illegals|aliens|those people|their kind|these people|natives|indigenous|autistic|"
    "old people|the elderly|poor people|homeless|fat people|muslim women|jewish people|asylum seekers|"
    "asylum seeker",
    "dehumanize": "control the banks|control the media|control the world|run the banks|run the media|run the world|control everything|behind every war|vermin|rat|rats|parasite|parasites|cockroach|cockroaches|roach|roaches|animal|animals|"
    "beast|beasts|savage|savages|subhuman|subhumans|not human|less than human|plague|disease|cancer|"
    "infestation|filth|scum|trash|garbage|vermin|insect|insects|lice|leech|leeches|maggot|maggots|pig|pigs|"
    "dog|dogs|ape|apes|monkey|monkeys|swarm|invasion|germ|germs|virus|pest|pests|breed like|breeding like|"
    "sewage|waste of space|waste of oxygen|mongrel|mongrels|degenerate|degenerates|freak|freaks",
    "eliminate": "should not be allowed|shouldn't be allowed|not allowed to live|should not live|shouldn't live|drive out|driven out|drive _ out|wipe _ off|off the face of the earth|off the map|nichts zu suchen|exterminate|eradicate|deport|expel|wipe out|gas|purge|ethnic cleansing|final solution|"
    "should not exist|shouldn't exist|don't deserve to live|do not deserve to live|sterilize|round up|"
    "need to disappear|must disappear|should disappear|out of our country|out of this country|"
    "be shot|be hanged|be killed|be burned|be gassed|be deported|be locked up|be banned|no rights|"
    "don't belong|do not belong|not welcome|go back to|send them back|kick them out|throw them out|"
    "get rid of them|get them out|keep them out|not human|not people",
    "exclude": "get rid of|kick out|throw out|send back|send _ back|kick _ out|throw _ out|go back|keep out|ban|lock up|"
    "kill|die|burn|remove|not allowed|should not be allowed|shouldn't be allowed|disappear|get out|hang|shoot|"
    "shot|where they came from|go home",
    "generalize": "are|all|always|never|every|they're|those|these|nothing but|is|were|should|must|need to|"
    "have to|deserve|belong|them|they",
    "demean": "inferior|criminal|criminals|rapist|rapists|terrorist|terrorists|thief|thieves|invader|"
    "invaders|stupid|dumb|lazy|dirty|filthy|evil|worthless|useless|disgusting|sick|perverted|pervert|"
    "perverts|pedophile|pedophiles|groomer|groomers|mentally ill|a burden|burden|threat|ruin|ruining|"
    "destroy|destroying|steal|stealing|can't be trusted|cannot be trusted|never trust|not to be trusted|"
    "genetically|by nature|born criminals|primitive|backward|uncivilized|smell|stink|stinking|ugly|"
    "don't deserve|do not deserve|second class|lower|lesser",
    "selfharm_act": "kick the chair away|kick the chair|tie the rope to|rope to the beam|go on end it|end it nobody|disappear for good|press hard with the knife|every pill|take every pill|sleep forever|never wake up|slice your forearm|slice your wrist|slice your arm|cut your forearm|carve into your|carve your|your scars are beautiful|make more scars|why not do it|just do it already|better off dead so|all the pills|all your pills|all of the pills|entire bottle|whole pack|whole packet|kill yourself|kill urself|end your life|end it all|take your own life|"
    "cut yourself|cutting yourself|cut your arms|cut your thighs|slit your wrists|slit your wrist|cut your wrists|cut deeper|"
    "hang yourself|starve yourself|purge after|"
    "make yourself throw up|make yourself vomit|"
    "hurt yourself|harm yourself|burn yourself|bleed yourself|kys|unalive|off yourself|drink bleach|"
    "swallow the pills|take all the pills|take the whole bottle|whole bottle|kill myself|end my life|"
    "favor if you died|favour if you died|if you died|if you were dead|if you were gone|do everyone a favor|"
    "hurt myself|cut myself|want to die|wanna die|better off dead|better off without you|nobody would miss|"
    "no one would miss you|no one will miss you|nobody will miss you|nobody would miss you|world would be better|commit suicide|"
    "jump in front of a train|jump off a bridge|jump off the roof|jump off a building|"
    "stop eating entirely|stop eating completely|eat nothing|nothing but water",
    "selfharm_weak": "nobody survives|no one survives|survive that fall|survive the fall|fatal fall|won't survive|will not survive|deep cuts|along the vein|vertical cuts|lethal dose|fatal dose|femoral artery|carotid|jugular|skip dinner|skip breakfast|skip lunch|skip every meal|hunger is weakness|starving is|don't eat for|scars|fresh cuts|new cuts|your cuts|stop eating|skip meals|don't eat|do not eat|overdose|od on|jump off|jump from|"
    "jump in front|self harm|self-harm|self injury|suicide|suicidal|purging|starve|starving|"
    "make yourself sick|throw up after",
    "body_image": "failure|loser|weakness|weak|dress size|fit into|thin|thinner|skinny|fat|fatter|weight|pounds|kilos|lbs|calories|bones showing|thigh gap|"
    "ugly|worthless|pathetic|disgusting|hate yourself|nobody loves you|no one loves you|burden|waste",
    "method": "vodka|alcohol|booze|whiskey|lethal dose|fatal dose|femoral artery|carotid|jugular|car engine|running engine|engine running|exhaust|garage|every pill|pills in the cabinet|medicine cabinet|pills|pill|tablets|sleeping pills|painkillers|paracetamol|tylenol|acetaminophen|razor|blade|"
    "wrists|wrist|rope|noose|bridge|rooftop|train tracks|bleach|lethal dose|lethal|laxatives|"
    "carbon monoxide|exhaust",
    "instruction": "works faster|faster|works better|more effective|high enough|tall enough|stock up|buy|lower than you think|fastest way|quickest way|make more|more of them|deeper|again tonight|will fix everything|fix everything|for faster results|finally fit|so you fit|tip|tips|how to|how many|how much|best way|easiest way|quickest way|fastest way|painless|"
    "enough to|guaranteed to|tips for|step by step|you should|you need to|just do it|do it|try|go ahead|"
    "nobody cares|no one cares|deserve|worthless|you're worthless|you are worthless|why not|tonight|"
    "instead of|works best|make sure|don't tell|do not tell|hide the|hide it|under 500|under 800|"
    "thinspo|pro ana|pro-ana|pro mia|proana",
    "sexual_explicit": "dick pics|cock pics|nude pics|squirting|squirt|sext a|sext with|sexting with|sext your|jerk _ off|jerking _ off|jerks _ off|jerked _ off|jack _ off|jacking _ off|wank _ off|wanking _ off|hidden camera _ changing|hidden camera _ undressing|hidden camera _ showering|hidden camera _ naked|shag|shag her|shag him|screw her|screw him|brains out|creampie|rim you|rimming|dick pic|cock pic|and swallow|begging for it|fingered|finger her|fingering her|to bang|bang you|bang her|bang me|banged|banging her|get laid|two guys at once|take two guys|erect penis|erect|uncensored clip|uncensored video|make me hard|makes me hard|got me hard|gets me hard|so hard for|i'm hard|=nudes|make me wet|makes me wet|fuck|fucking|fucked|porn|porno|pornography|pussy|cunt|tits|titties|boobs|"
    "blowjob|blow job|handjob|hand job|cum|cumming|orgasm|masturbate|masturbation|jerk off|jack off|"
    "horny|nudes|naked pics|nude pics|nude photos|naked photos|send nudes|sex tape|sex video|have sex|"
    "sex with|suck my|suck your|lick my|ride me|spread your legs|spread her legs|"
    "wet pussy|hard cock|erection|boner|penis|vagina|clit|clitoris|genitals|anal|oral sex|"
    "threesome|orgy|gangbang|deepthroat|bdsm|bondage|erotic|xxx|milf|hookers|"
    "prostitute|strip for|undress for|naked body|nude body|his cock|my cock|your cock|her cock|"
    "suck cock|rode his|ride his|his dick|my dick|your dick|suck dick|"
    "intercourse|penetrate|penetration|grope|fondle|kinky|slut|whore|onlyfans|sexual act|sexual acts|"
    "sexual favours|sexual favors|sexual services|sexual pictures|sexual photos|sexual content|"
    "nsfw|camgirl|webcam sex|dirty pics|hot pics|sexting",
    "sexual_mild": "sex|sexy|naked|nude|lingerie|sensual|seductive|topless|undress|sexual|sexually|intimate|get naked",
    "minor": "13 and up|12 and up|14 and up|and younger|under 16|under sixteen|year olds|year-olds|yr old|yr olds|12yo|13yo|14yo|15yo|child|children|kid|kids|minor|minors|underage|under age|preteen|preteens|teen|teens|teenager|"
    "teenagers|little girl|little girls|little boy|little boys|schoolgirl|schoolgirls|schoolboy|"
    "schoolboys|young girl|young girls|young boy|young boys|twelve year old|13 year old|14 year old|"
    "15 year old|12 year old|11 year old|10 year old|16 year old|17 year old|13 yo|14 yo|15 yo|12 yo|"
    "middle school|high school girl|high schooler|toddler|loli|jailbait|under 18|not 18|barely legal",
    "cred": "6 digit code|six digit code|4 digit code|digit code we|code we just texted|code we just sent|code we sent|security answers|steam login|apple id password|send us the =codes|pay _ with gift cards|pay with gift cards|gift card codes|codes on the back|your login|login on this page|seed phrase|recovery words|12 word|code from the sms|code in the sms|code we texted|code from your phone|code from the text|card number|3 digit code|three digit code|network password|email password|mailbox password|card number|credit card number|debit card number|card details|credit card details|card info|"
    "full card|cvv|cvc|cvv2|security code|your pin|the pin|and pin|card pin|atm pin|pin code|pin number|password|passcode|login details|"
    "log in details|login credentials|credentials|username and password|one time code|one-time code|"
    "one time password|otp|verification code|sms code|authentication code|2fa code|auth code|"
    "code we just sent to your phone|code we sent to your phone|bank details|banking details|account number|"
    "routing number|sort code|iban|social security number|ssn|online banking|bank login|expiry date|"
    "expiration date|mother's maiden name|maiden name|security question|seed phrase|recovery phrase|"
    "gift card codes|gift card numbers",
    "request": "gimme|give me|give me your|hand over|drop me|dm me|dm us|tell me your|tell us your|pay _ with|pay with|need your|needs your|require your|requires your|we need|asking for your|ask for your|give us your|reply with|reply|respond with|send|send us|send me|text us|text back|email us|provide|"
    "share|give me your|tell us|tell me|call us with|read out|read us|call us and read|forward",
    "enter": "confirm|verify|validate|update|enter|type|submit|fill in|fill out|re-enter|reactivate|unlock|restore|keep it at",
    "login": "restore it at|restore your account|restore access at|verify it at|unlock it at|log in|login|sign in|signin|log on|verify your account|confirm your account|validate your "
    "account|unlock your account|reactivate your account|restore access|verify your identity|confirm your "
    "identity|update your payment|update your billing|confirm your payment|claim your refund|claim your prize",
    "urgency": "expires today|expire today|expires|will expire|expired|limited|limitation|action required|verify now|restore access|will be limited|suspended|suspend|locked|lock|closed|deactivated|disabled|frozen|unusual activity|"
    "suspicious activity|unauthorized|within 24 hours|within 48 hours|immediately|urgent|final notice|"
    "will be closed|will be deleted|permanently|avoid suspension|restricted|compromised|security alert",
    "prevention": "prevention|hotline|helpline|awareness|988|crisis line|samaritans|counseling|counselling|support group|get help|talk to someone|doctor",
    "negation": "never|we will never|we'll never|will never ask|never share|never give|don't share|"
    "do not share|don't give|do not give|not ask|won't ask|will not ask",
}

_DE = {
    "harm_strong": "beseitigen|beseitigt|aus dem weg räumen|erledigen|erledigt|töten|tötet|umbringen|bring _ um|bringe _ um|bringen _ um|bringt _ um|stech _ ab|"
    "knall _ ab|knallen _ ab|mach _ kalt|machen _ kalt|schlag _ tot|schlagen _ tot|schieß _ nieder|"
    "leg _ um|legen _ um|zünd _ an|zünden _ an|jag _ in die luft|jagen _ in die luft|ermorden|morden|erstechen|"
    "abstechen|erschießen|abknallen|knallen ab|erwürgen|schlachten|abschlachten|"
    "foltern|vergewaltigen|köpfen|hinrichten|lynchen|anzünden|zünden an|sprengen|"
    "ertränken|erhängen|aufhängen|vergasen|massakrieren|kaltmachen|kalt machen|abmurksen|totschlagen|"
    "umlegen|legen um|lege um|abstechen|stech ab|stechen ab",
    "arson": "anzünden|zünd _ an|zünden _ an|abfackeln|fackeln _ ab|niederbrennen|brennen _ nieder|in die luft jagen|jagen _ in die luft|sprengen|brand legen|feuer legen|molotow",
    "property": "haus|wohnung|auto|laden|geschäft|büro|lager|kirche|moschee|synagoge|schule|gebäude|restaurant|praxis|wagen|heim|unterkunft|flüchtlingsheim",
    "lethal": "töten|tötet|töte|getötet|umbringen|umgebracht|bring _ um|bringe _ um|bringen _ um|bringt _ um|ermorden|ermordet|erstechen|ersticht|erstochen|abstechen|absticht|abgestochen|erschießen|erschießt|erschossen|erwürgen|erwürgt|massakrieren|massakriert|abschlachten|abgeschlachtet|foltern|gefoltert|vergewaltigen|vergewaltigt|köpfen|geköpft|hinrichten|hingerichtet|lynchen|gelyncht|abknallen|abgeknallt|kaltmachen|totschlagen|totgeschlagen",
    "debt": "schulden|schuldest|rückstand|rechnung|zahlen|zahl|inkasso|offen|mahnung|betrag",
    "visit": "vor ihrer tür|vor deiner tür|bei ihnen zu hause|bei dir zu hause|besuchen sie|besuchen dich|kommen vorbei|an ihrer adresse|deine adresse|ihre adresse|arbeitsplatz",
    "harm_weak": "brechen|brechen _ die|gebrochen|zerschlagen|verprügelt|prügeln|schlagen|verprügeln|prügeln|treten|verletzen|angreifen|brechen|brech _ die|brechen _ die|mach _ fertig|"
    "machen _ fertig|schlag _ zusammen|schlagen _ zusammen|zertrümmern|zerschlagen|"
    "aufschlitzen|fertigmachen|fertig machen|zerquetschen|blutig schlagen|schießen|stechen|"
    "würgen",
    "target": "vermieter|kassierer|kassiererin|nachbar|nachbarin|zeugen|zeuge|mann|frau|kunde|dich|dir|euch|ihn|ihm|deine familie|deine kinder|deine frau|deinen mann|deine "
    "mutter|deine tochter|deinen sohn|dein gesicht|deinen kopf|deine beine|deine knochen|deine finger|"
    "deine knie|deine zähne|dein haus|dein auto|deinen laden|ihre familie|ihre kinder|ihre beine|ihr haus|"
    "alle|jeden|jeder|menschen|leute|nachbarn|chef|lehrer|polizisten|familie|kinder|schuldner",
    "body": "beine|bein|knochen|knie|finger|zähne|schädel|genick|hals|rippen|kiefer|gesicht|nase|arme|augen",
    "intent": "werde|werden|wirst|wird|will|wollen|muss|müssen|sollte|sollten|soll|gleich|bald|sonst|"
    "oder sonst|wenn du nicht|wenn sie nicht|falls du nicht|falls sie nicht|ich schwöre|nächstes mal|"
    "lass uns|lasst uns|verdient|verdienen|es wird zeit",
    "threat": "zähne aufsammeln|zähne vom boden|zähne einsammeln|nicht zimperlich|nicht so nett|nie wieder gerade gehen|nie wieder laufen|nie wieder gehen|körperliche konsequenzen|folgen für ihre gesundheit|ihre familie wird leiden|deine familie wird leiden|gebrochene beine|gebrochene knochen|wir wissen wo|ich weiß wo|wissen wo deine|weiß wo deine|wissen _ schule|weiß wo du wohnst|wissen wo du wohnst|weiß wo sie wohnen|wissen wo sie wohnen|wissen wo ihre|"
    "weiß wo deine|pass auf dich auf|letzte warnung|sonst passiert|sonst gibt es|wirst es bereuen|werden es "
    "bereuen|bist tot|sind tot|tage sind gezählt|im krankenhaus|im rollstuhl|sarg|kugel|kugeln|blut|bluten|"
    "wäre schade|unfälle passieren|es könnte etwas passieren|bezahlen mit",
    "weapon": "messer|waffe|pistole|gewehr|machete|axt|hammer|baseballschläger|säure|klinge|bombe|"
    "sprengstoff|benzin|strick",
    "group": "kanaken|kanake|kameltreiber|zigeuner|neger|bimbos|schlitzaugen|ausländer|migranten|migrant|einwanderer|flüchtlinge|flüchtling|asylanten|asylbewerber|"
    "muslime|muslim|moslems|juden|jude|christen|schwarze|neger|türken|araber|afrikaner|asiaten|polen|"
    "rumänen|zigeuner|roma|sinti|schwule|lesben|homosexuelle|transmenschen|behinderte|frauen|weiber|"
    "diese leute|solche leute|dieses volk|fremde|islamisten",
    "dehumanize": "ungeziefer|ratten|ratte|parasiten|parasit|kakerlaken|tiere|tier|bestien|untermenschen|"
    "abschaum|dreck|müll|pest|seuche|krankheit|geschwür|läuse|schmarotzer|maden|schweine|hunde|affen|"
    "plage|invasion|viecher|pack|gesindel",
    "eliminate": "nichts zu suchen|nichts verloren|kein recht hier|ausrotten|vernichten|vergasen|deportieren|säubern|ausmerzen|haben hier nichts zu suchen|"
    "gehören nicht hierher|gehören nicht zu uns|nicht willkommen|keine rechte|sollten nicht existieren|"
    "müssen verschwinden|sollen verschwinden|raus mit|ausländer raus|abschieben|alle abschieben|"
    "vermietet nicht|nicht vermieten|vermietet keine|stellt keine|nicht einstellen|übernehmen unser|übernehmen unsere",
    "exclude": "gehören raus|raus aus|abschieben|ausweisen|rauswerfen|werft raus|raus|loswerden|beseitigen|verbieten|einsperren|"
    "verschwinden|zurückschicken|töten|umbringen|erschießen|aufhängen",
    "generalize": "sind|alle|immer|nie|jeder|jede|diese|solche|nichts als|ist|waren|sollten|sollen|müssen|gehören|sie",
    "demean": "minderwertig|kriminell|kriminelle|verbrecher|vergewaltiger|terroristen|diebe|dumm|faul|"
    "dreckig|schmutzig|böse|wertlos|nutzlos|ekelhaft|krank|pervers|perverse|gefahr|bedrohung|zerstören|"
    "stehlen|klauen|nicht zu trauen|primitiv|rückständig|stinken|stinkend|weniger wert|zweiter klasse",
    "selfharm_act": "schneid dir _ pulsadern|schneide dir _ pulsadern|pulsadern auf|ritz dir _ arme|schneid dir in den arm|alle tabletten _ nehmen|alle tabletten|alle schlaftabletten|alle pillen|ganze packung|alle auf einmal|bring dich um|bringen sie sich um|töte dich|töten sie sich|umbringen|selbstmord|"
    "ritz dich|schneid dich|schneide dich|schneiden sie sich|häng dich auf|erhäng dich|"
    "hör auf zu essen|nichts mehr essen|nicht mehr essen|kotzen nach|"
    "spring von der brücke|spring vor den zug|verletz dich|verletze dich|verletzen sie sich|pulsadern|"
    "sterben wollen|will sterben|möchte sterben|dein leben beenden|ihr leben beenden|leben beenden|"
    "ohne dich besser|niemand würde dich vermissen|keiner würde dich vermissen|selbstverletzung|"
    "rasierklinge|rasierklingen|mach schluss|schluss machen mit dem leben",
    "selfharm_weak": "tödliche dosis|todliche dosis|halsschlagader|selbstmord|suizid|ritzen|hungern|erbrechen|überdosis|spring von|spring vor|"
    "springen sie|sterben|umbringen|schneiden",
    "body_image": "dünn|dünner|dick|fett|gewicht|kilo|kalorien|hässlich|wertlos|erbärmlich|last",
    "method": "wodka|alkohol|schnaps|tödliche dosis|todliche dosis|halsschlagader|tabletten|pillen|schlaftabletten|schmerzmittel|paracetamol|rasierklinge|klinge|pulsadern|"
    "strick|seil|brücke|dach|gleise|bleiche|überdosis|tödlich|abführmittel",
    "instruction": "kauf|kaufen|niedriger als du denkst|schnellste weg|wie man|wie viele|wie viel|beste weg|einfachste|schnellste|schmerzlos|genug um|tipps|"
    "anleitung|schritt für schritt|du solltest|sie sollten|mach es|tu es|einfach|versuch|niemand|"
    "heute nacht|sorge dafür|sag es niemandem|verstecke",
    "sexual_explicit": "fick _ durch|fickt|bettelt darum|besorg es ihr|ficken|fick|gefickt|porno|pornos|pornografie|schwanz|muschi|fotze|titten|möpse|"
    "blowjob|wichsen|abspritzen|sperma|orgasmus|nacktbilder|nacktfotos|nackte bilder|nacktfoto|"
    "sexvideo|sex haben|sex mit|leck mich|spreiz die beine|erektion|penis|vagina|"
    "genitalien|analsex|oralsex|orgie|erotisch|erotik|nutte|geiler|geile fotze|"
    "hure|schlampe|prostituierte|strippen|ausziehen für|nackt für|vögeln|bumsen|befummeln|sexuelle handlungen",
    "sexual_mild": "sex|sexy|nackt|nackte|nackten|dessous|sinnlich|verführerisch|sexuell|sexuelle|sexuellen",
    "minor": "schulmädchen|schulmädels|schulkinder|teenie|teenies|lolita|kinderpornos|kinderpornografie|kind|kinder|minderjährig|minderjährige|minderjährigen|jugendliche|jugendlichen|teenager|"
    "mädchen|kleine mädchen|junge|jungen|schülerin|schülerinnen|schüler|jahre alt|jährige|jährigen|"
    "kleinkind|grundschule|unter 18|unter achtzehn|grundschülerin",
    "cred": "kreditkartendaten|kartendaten|zahlungsdaten|zahlungsinformationen|kartennummer|kreditkartennummer|kreditkarte|karteninformationen|kartendaten|prüfnummer|"
    "sicherheitscode|cvv|cvc|pin|pin code|pin nummer|geheimzahl|passwort|kennwort|zugangsdaten|"
    "anmeldedaten|login daten|benutzername und passwort|einmalcode|einmalpasswort|bestätigungscode|"
    "verifizierungscode|sms code|tan|tan nummer|bankdaten|bankverbindung|kontonummer|iban|bic|"
    "onlinebanking|online banking|ablaufdatum|sozialversicherungsnummer|code den wir ihnen per sms",
    "request": "antworten|antworte|antworten sie|senden|sende|senden sie|schicken|schick|schicken sie|"
    "teilen sie|teile|mitteilen|nennen sie|übermitteln|nennen|sagen sie uns",
    "enter": "eingeben|geben sie|gib|bestätigen|bestätige|bestätigen sie|verifizieren|verifizieren sie|angeben|"
    "aktualisieren|aktualisieren sie|ausfüllen|freischalten|entsperren",
    "login": "anmelden|melden sie sich an|melde dich an|einloggen|loggen sie sich|login|log in|konto "
    "verifizieren|konto bestätigen|konto entsperren|identität bestätigen|zahlungsdaten aktualisieren",
    "urgency": "läuft ab|abgelaufen|wartet|gebühr|eingeschränkt|handlungsbedarf|gesperrt|sperren|gesperrt werden|geschlossen|deaktiviert|eingefroren|ungewöhnliche "
    "aktivität|verdächtige aktivität|innerhalb von 24 stunden|innerhalb von 48 stunden|sofort|dringend|"
    "letzte mahnung|gelöscht|dauerhaft|eingeschränkt",
    "prevention": "prävention|hilfe|beratung|telefonseelsorge|krisendienst|arzt|ärztin",
    "negation": "niemals|nie|nie nach|werden sie nie|geben sie niemals|teilen sie niemals|nicht weiter",
}

_ES = {
    "harm_strong": "quitar de en medio|quitarlo de en medio|quitarla de en medio|eliminarlo|eliminarla|acabar con el|acabar con ella|cargarse|matar|matarte|matarlos|matarlas|asesinar|apuñalar|acuchillar|dispararle|dispararte|pegar un "
    "tiro|pegarte un tiro|balear|estrangular|ahorcar|degollar|decapitar|torturar|violar|masacrar|"
    "quemar vivo|quemar viva|prender fuego|envenenar|cargarte|"
    "rajar|destripar|fusilar|linchar|exterminar",
    "arson": "quemar|quememos|quemamos|queman|incendiar|incendiemos|prender fuego|prendamos fuego|volar|volemos|molotov",
    "property": "casa|coche|tienda|negocio|oficina|almacen|iglesia|mezquita|sinagoga|escuela|edificio|restaurante|clinica|furgoneta|piso|local",
    "lethal": "matar|mato|mata|matas|matan|matare|mataremos|matara|matado|matando|matarte|matarlo|matarla|matarlos|matarlas|matalo|matala|matenlos|asesinar|asesinare|asesinado|apuñalar|apuñalare|apuñalado|acuchillar|estrangular|estrangulare|degollar|masacrar|torturar|violar|violare|decapitar|fusilar|linchar|exterminar|liquidarte|cargarte",
    "debt": "deuda|debes|debe|pagar|paga|pague|factura|atrasos|cobro|cobradores|importe",
    "visit": "en su casa|en tu casa|su puerta|tu puerta|visitarle|visitarte|te visitaremos|le visitaremos|su direccion|tu direccion|tu trabajo|su trabajo",
    "harm_weak": "partir|partire|partiran|partiremos|romper|rompere|romperan|romperemos|golpeare|golpearan|golpear|pegar|patear|herir|lastimar|hacer daño|atacar|romper|partir|aplastar|"
    "reventar|dar una paliza|paliza|partirte|romperte|quemarte",
    "target": "casero|cajero|cajera|vecino|vecina|testigo|testigos|te|ti|contigo|os|vosotros|tu familia|tus hijos|tu "
    "mujer|tu esposa|tu marido|tu madre|tu hija|tu hijo|tu cara|tu cabeza|tus piernas|tus huesos|tus "
    "dedos|tus rodillas|tus dientes|tu casa|tu coche|tu tienda|su familia|sus hijos|sus piernas|su casa|"
    "todos|todas|gente|vecino|jefe|profesor|policia|familia|hijos|deudor",
    "body": "piernas|pierna|huesos|hueso|rodillas|dedos|dientes|craneo|cuello|garganta|costillas|"
    "mandibula|cara|nariz|brazos|ojos",
    "intent": "voy a|vamos a|va a|van a|vas a|ire|iremos|hay que|tienes que|tiene que|debemos|deberian|"
    "deberia|merece|merecen|quiero|queremos|o si no|si no pagas|si no paga|si no pagan|te juro|la proxima "
    "vez|ya veras|pronto|es hora de",
    "threat": "recoger _ dientes|recogeras _ dientes|recogera _ dientes|dientes del suelo|no seremos amables|no somos amables|no volvera a caminar|no volveras a caminar|consecuencias fisicas|tu familia sufrira|su familia sufrira|piernas rotas|huesos rotos|sabemos donde|se donde|sabemos _ colegio|se donde vives|sabemos donde vives|sabemos donde vive|se donde vive|sabemos donde estudian|"
    "sabemos donde trabajas|cuidate la espalda|ultima advertencia|ultimo aviso|te vas a arrepentir|"
    "se va a arrepentir|estas muerto|esta muerto|estas muerta|tus dias estan contados|en el hospital|en "
    "silla de ruedas|bajo tierra|ataud|bala|balas|sangre|sangrar|seria una pena|los accidentes pasan|"
    "pagar con tu vida|algo malo",
    "weapon": "cuchillo|navaja|pistola|arma|rifle|machete|hacha|martillo|bate|acido|bomba|explosivo|gasolina|cuerda",
    "group": "sudacas|sudaca|moros|moro|panchitos|maricones|negratas|inmigrantes|inmigrante|migrantes|extranjeros|extranjero|refugiados|musulmanes|musulman|"
    "judios|judio|cristianos|negros|moros|gitanos|sudacas|arabes|africanos|asiaticos|chinos|mexicanos|"
    "latinos|maricones|gays|homosexuales|lesbianas|trans|transexuales|discapacitados|mujeres|esa gente|"
    "esta gente|los de fuera|ilegales|indios|indigenas|rumanos|marroquies|venezolanos|colombianos",
    "dehumanize": "alimañas|plaga|ratas|rata|parasitos|parasito|cucarachas|animales|bestias|salvajes|"
    "subhumanos|escoria|basura|mierda|enfermedad|cancer|infestacion|piojos|sanguijuelas|gusanos|cerdos|"
    "perros|monos|simios|invasion|virus|peste|chusma|lacra|gentuza",
    "eliminate": "exterminar|erradicar|gasear|no deberian existir|no pertenecen|no son bienvenidos|"
    "sin derechos|que se vayan|a su pais|fuera de aqui|fuera de nuestro pais|hay que echarlos|"
    "deportarlos|expulsarlos|echarlos a todos",
    "exclude": "deportar|expulsar|echar|echarlos|fuera|acabar con|eliminar|limpiar|prohibir|encerrar|"
    "desaparecer|devolver|devolverlos|matar|quemar|fusilar",
    "generalize": "son|todos|todas|siempre|nunca|cada|esos|esas|estos|estas|es|eran|deberian|deben|"
    "hay que|merecen|ellos|ellas",
    "demean": "inferiores|inferior|criminales|delincuentes|violadores|terroristas|ladrones|invasores|"
    "estupidos|tontos|vagos|sucios|malvados|inutiles|asquerosos|enfermos|pervertidos|pedofilos|amenaza|"
    "destruir|destruyen|roban|robar|no se puede confiar|primitivos|atrasados|apestan|huelen|de segunda",
    "selfharm_weak": "dosis letal|dosis mortal|arteria femoral|suicidio|suicida|sobredosis|vomitar|deja de comer|no comas|ayunar|=cortarse|morir|tirarte|saltar",
    "body_image": "delgada|delgado|flaca|flaco|gorda|gordo|peso|kilos|calorias|fea|feo|inutil|patetica|carga",
    "selfharm_act": "cortate las muñecas|corta tus muñecas|cortarte las muñecas|tus muñecas|tus venas|todas las pastillas|todas tus pastillas|toda la caja|todo el frasco|todos los somniferos|matate|suicidate|suicidarte|quitarte la vida|quitate la vida|acaba "
    "con tu vida|acabar con tu vida|cortate|cortarte|cortarse|cortate las venas|cortarte las venas|"
    "ahorcate|ahorcarte|vomita despues|provocarte el vomito|"
    "tirate del puente|tirate por la ventana|lanzate|hazte daño|hacerte daño|lastimate|lastimarte|autolesion|"
    "autolesiones|quiero morir|quiero morirme|mejor muerto|mejor muerta|nadie te extrañaria|nadie te "
    "echaria de menos|mundo estaria mejor sin ti|quemate",
    "method": "vodka|alcohol|dosis letal|dosis mortal|arteria femoral|pastillas|pastilla|tabletas|somniferos|analgesicos|paracetamol|=cuchilla|=cuchillas|venas|"
    "muñecas|cuerda|soga|puente|azotea|vias del tren|lejia|sobredosis|letal|laxantes",
    "instruction": "compra|comprar|menor de lo que crees|forma mas rapida|como|cuantas|cuanto|mejor manera|forma mas facil|mas rapido|mas rapida|sin dolor|"
    "suficiente para|consejos|paso a paso|deberias|tienes que|hazlo|solo hazlo|intenta|prueba|nadie|esta "
    "noche|asegurate|no se lo digas|escondelo",
    "sexual_explicit": "te la chupa|te la chupan|me la chupa|se la chupa|chupapollas|follan|follamos|te follan|te follo|cabalgan|te cabalgan|follatela|follatelo|lo esta pidiendo|te la meto|follar|follo|folla|follarte|follando|porno|pornografia|polla|verga|pija|coño|"
    "chocho|tetas|mamada|chupamela|chupame|correrse|semen|orgasmo|masturbar|masturbarse|"
    "cachonda|cachondo|fotos desnuda|fotos desnudo|fotos intimas|video "
    "sexual|tener sexo|sexo con|lameme|montame|abrete de piernas|erecion|pene|vagina|genitales|"
    "sexo anal|sexo oral|orgia|erotico|erotica|puta|"
    "putas|zorra|prostituta|prostitutas|desnudate|manosear|actos sexuales",
    "sexual_mild": "sexo|sexy|desnuda|desnudo|desnudos|desnudas|lenceria|sensual|seductora|sexual|sexuales|sexualmente",
    "minor": "niño|niños|niña|niñas|nino|ninos|nina|ninas|menor|menores|menor de edad|adolescente|"
    "adolescentes|colegiala|colegialas|colegial|chiquilla|chiquillas|"
    "criatura|chavala|chavalas|12 años|13 años|14 años|15 años|11 años|10 años|16 años|17 años",
    "cred": "datos de su tarjeta|datos de tu tarjeta|informacion de pago|datos de pago|numero de tarjeta|numero de su tarjeta|numero de tu tarjeta|tarjeta de credito|tarjeta de "
    "debito|datos de la tarjeta|datos de tarjeta|cvv|cvc|codigo de seguridad|pin|codigo pin|clave|"
    "contraseña|contrasena|credenciales|usuario y contraseña|codigo de un solo uso|codigo de verificacion|"
    "codigo sms|codigo que le enviamos por sms|codigo que te enviamos por sms|datos bancarios|numero de cuenta|iban|"
    "banca online|banca en linea|fecha de caducidad|fecha de vencimiento|seguridad social|dni",
    "request": "responda|responde|responder|envie|envia|enviar|envienos|envianos|mande|manda|mandar|"
    "proporcione|proporciona|facilite|facilita|comparta|comparte|diganos|dinos|digame",
    "enter": "introduzca|introduce|introducir|confirme|confirma|confirmar|verifique|verifica|verificar|"
    "indique|indica|actualice|actualiza|escriba|escribe|rellene|complete|desbloquear|reactivar",
    "login": "inicie sesion|inicia sesion|iniciar sesion|acceda|accede|acceder|entre en|ingrese|ingresa|"
    "login|verifique su cuenta|verifica tu cuenta|confirme su cuenta|confirma tu cuenta|desbloquee su "
    "cuenta|reactive su cuenta|verifique su identidad|actualice sus datos de pago",
    "urgency": "retenido|retenida|caduca|vence|limitada|accion requerida|suspendida|suspendido|suspender|bloqueada|bloqueado|bloquear|cerrada|desactivada|congelada|"
    "actividad inusual|actividad sospechosa|en 24 horas|en 48 horas|inmediatamente|urgente|ultimo aviso|"
    "eliminada|permanentemente|restringida|comprometida",
    "prevention": "prevencion|ayuda|linea de ayuda|consejeria|medico",
    "negation": "nunca|jamas|nunca le pediremos|nunca te pediremos|no comparta|no compartas|no facilite",
}

_FR = {
    "harm_strong": "se debarrasser de|debarrasser de|eliminer|liquider|regler son compte|tuer|tuerai|tuerons|buter|assassiner|poignarder|egorger|abattre|fusiller|"
    "tirer dessus|etrangler|decapiter|torturer|violer|massacrer|bruler vif|bruler vive|"
    "mettre le feu|empoisonner|crever|exterminer|lyncher|"
    "eventrer|etriper",
    "arson": "bruler|brulons|brulez|incendier|incendions|mettre le feu|mettons le feu|faire sauter|faisons sauter|cocktail molotov",
    "property": "maison|voiture|magasin|boutique|bureau|entrepot|eglise|mosquee|synagogue|ecole|immeuble|restaurant|cabinet|camion|appartement|local",
    "lethal": "tuer|tue|tues|tuent|tuerai|tuera|tuerons|tueront|tuez|tuons|tuant|tuee|tuees|tuer|assassiner|assassine|poignarder|poignarde|poignarderai|egorger|egorge|etrangler|etrangle|massacrer|massacre|torturer|torture|violer|viole|decapiter|fusiller|lyncher|buter|bute|buterai|abattre|abattrai",
    "debt": "dette|doit|dois|payer|paie|payez|facture|impaye|recouvrement|montant",
    "visit": "chez vous|chez toi|votre porte|ta porte|vous rendre visite|te rendre visite|votre adresse|ton adresse|ton travail|votre travail",
    "harm_weak": "casser|casserai|casseront|casserons|cassera|frapperai|frapperont|tabasserai|tabasseront|frapper|cogner|tabasser|casser|briser|ecraser|blesser|attaquer|bruler|"
    "defigurer|casser la gueule|defoncer|planter",
    "target": "proprietaire|caissier|caissiere|voisin|voisine|temoin|temoins|te|toi|vous|lui|eux|ta famille|tes enfants|ta femme|ton mari|ta mere|ta "
    "fille|ton fils|ta gueule|ta tete|ton visage|tes jambes|tes os|tes doigts|tes genoux|tes dents|ta "
    "maison|ta voiture|ton magasin|votre famille|vos enfants|vos jambes|votre maison|tout le monde|tous|"
    "gens|voisin|patron|prof|flic|policier|famille|enfants|debiteur",
    "body": "jambes|jambe|os|genoux|doigts|dents|crane|cou|gorge|cotes|machoire|visage|gueule|nez|bras|yeux",
    "intent": "vais|va|allons|allez|vont|vas|faut|il faut|doit|doivent|devrait|devraient|merite|meritent|"
    "veux|voulons|sinon|si tu ne paies pas|si vous ne payez pas|si tu paies pas|je te jure|je vous jure|la "
    "prochaine fois|bientot|tu vas voir|vous allez voir|il est temps",
    "threat": "ramasser _ dents|ramasseras _ dents|ramasserez _ dents|dents sur le trottoir|dents par terre|pas tendres|pas gentils|ne marcherez plus|ne marcheras plus|consequences physiques|votre famille en subira|ta famille en subira|jambes cassees|os casses|on sait ou|je sais ou|nous savons ou|je sais ou tu habites|on sait ou tu habites|nous savons ou vous habitez|on sait ou vous "
    "habitez|je sais ou vous habitez|on sait ou vont tes|surveille tes arrieres|dernier avertissement|"
    "tu vas le regretter|vous allez le regretter|t'es mort|tu es mort|vous etes mort|tes jours sont "
    "comptes|a l'hopital|en fauteuil roulant|six pieds sous terre|cercueil|balle|balles|sang|saigner|"
    "ce serait dommage|les accidents arrivent|payer de ta vie|quelque chose de grave",
    "weapon": "couteau|arme|pistolet|flingue|fusil|machette|hache|marteau|batte|acide|lame|bombe|"
    "explosif|essence|corde",
    "group": "bougnoules|bicots|youpins|negres|bamboulas|immigres|immigre|immigrants|migrants|etrangers|etranger|refugies|musulmans|musulman|juifs|"
    "juif|chretiens|noirs|negres|arabes|bougnoules|africains|asiatiques|chinois|roms|gitans|tziganes|"
    "homosexuels|homos|pedes|gays|lesbiennes|trans|transsexuels|handicapes|femmes|ces gens|ces gens-la|"
    "clandestins|sans papiers|maghrebins|turcs|roumains",
    "dehumanize": "vermine|rats|rat|parasites|parasite|cafards|blattes|animaux|betes|sauvages|sous-hommes|"
    "sous hommes|racaille|ordures|dechets|merde|maladie|cancer|peste|infestation|poux|sangsues|vers|porcs|"
    "chiens|singes|invasion|virus|fleau|nuisibles|crasse",
    "eliminate": "exterminer|eradiquer|gazer|ne devraient pas exister|n'ont rien a faire|pas les bienvenus|"
    "pas bienvenus|aucun droit|rentrer chez eux|retourner chez eux|dehors les|hors de france|hors de notre "
    "pays|les expulser|les deporter|les virer",
    "exclude": "expulser|deporter|virer|degager|dehors|se debarrasser|eliminer|nettoyer|interdire|enfermer|"
    "disparaitre|renvoyer|renvoyez|tuer|bruler|fusiller",
    "generalize": "sont|tous|toutes|toujours|jamais|chaque|ces|ce sont|c'est|est|etaient|devraient|doivent|"
    "faut|meritent|ils|elles|eux",
    "demean": "inferieurs|inferieur|criminels|delinquants|violeurs|terroristes|voleurs|envahisseurs|"
    "stupides|idiots|paresseux|sales|mauvais|inutiles|degoutants|malades|pervers|pedophiles|menace|"
    "detruire|detruisent|volent|voler|pas confiance|primitifs|arrieres|puent|sentent|de seconde zone",
    "selfharm_weak": "dose mortelle|dose letale|artere femorale|suicide|suicidaire|suicider|overdose|surdose|vomir|arrete de manger|ne mange plus|"
    "ne mange pas|jeuner|sauter|mourir|couper",
    "body_image": "mince|maigre|grosse|gros|poids|kilos|calories|moche|inutile|pathetique|fardeau",
    "selfharm_act": "taillade-toi|taillade toi|tes poignets|tes veines|coupe-toi les|ouvre-toi les veines|tous les somniferes|tous les cachets|tous les comprimes|toute la boite|tous tes medicaments|tue-toi|tue toi|suicide-toi|suicide toi|suicidez-vous|mettre fin "
    "a tes jours|mets fin a tes jours|mettre fin a ta vie|mets fin a ta vie|fin a vos jours|coupe-toi|"
    "coupe toi|te couper|taillade|taillader|tailladez|scarifier|scarification|pends-toi|pends toi|"
    "vomir apres|te faire vomir|se faire "
    "vomir|saute du pont|saute d'un pont|jette-toi|jette toi|fais-toi du mal|fais toi du "
    "mal|te faire du mal|automutilation|je veux mourir|veux mourir|mieux mort|mieux morte|personne ne te "
    "regretterait|personne ne va te regretter|le monde serait mieux sans toi|lame de rasoir|lames de rasoir",
    "method": "vodka|alcool|dose mortelle|dose letale|artere femorale|cachets|comprimes|pilules|somniferes|medicaments|paracetamol|doliprane|lame|rasoir|veines|"
    "poignets|corde|pont|toit|rails|voie ferree|javel|overdose|mortelle|mortel|laxatifs",
    "instruction": "achete|acheter|plus faible que tu crois|moyen le plus rapide|comment|combien|meilleur moyen|meilleure facon|le plus simple|le plus rapide|sans "
    "douleur|suffisant pour|assez pour|conseils|etape par etape|tu devrais|vous devriez|fais-le|fais le|"
    "vas-y|essaie|personne|ce soir|assure-toi|ne le dis a personne|cache",
    "sexual_explicit": "baise-la|baise la|baise-le|elle le reclame|je te la mets|te baiser|vous baiser|la baiser|baise|niquer|nique|porno|pornographie|bite|nichons|seins nus|"
    "suce-moi|suce moi|sucer ma|branler|branlette|sperme|orgasme|masturber|bandante|"
    "photos nues|photos de toi nue|nudes|video sexuelle|sextape|coucher avec|faire l'amour|"
    "ecarte les jambes|erection|penis|vagin|parties genitales|sodomie|sexe anal|sexe oral|plan a "
    "trois|partouze|orgie|erotique|pute|putes|"
    "salope|prostituee|prostituees|deshabille-toi|tripoter|peloter|actes sexuels",
    "sexual_mild": "sexe|sexy|nue|nues|lingerie|sensuel|sensuelle|seduisante|sexuel|sexuelle|sexuels|sexuelles|sexuellement",
    "minor": "enfant|enfants|mineur|mineure|mineurs|mineures|adolescente|adolescentes|adolescent|ados|ado|"
    "fillette|fillettes|petite fille|petites filles|petit garcon|petits garcons|ecoliere|ecolieres|"
    "collegienne|collegiennes|lyceenne|12 ans|13 ans|14 ans|15 ans|11 ans|10 ans|16 ans|17 ans",
    "cred": "informations de votre carte|informations de ta carte|informations de paiement|donnees de paiement|numero de carte|numero de votre carte|numero de ta carte|carte bancaire|carte de credit|"
    "donnees de carte|informations de carte|cryptogramme|cvv|cvc|code de securite|code pin|pin|code "
    "confidentiel|mot de passe|identifiants|identifiant et mot de passe|code a usage unique|code unique|"
    "code de verification|code sms|code que nous vous avons envoye par sms|code recu par sms|coordonnees bancaires|"
    "numero de compte|rib|iban|banque en ligne|date d'expiration|numero de securite sociale",
    "request": "repondez|reponds|repondre|envoyez|envoie|envoyer|envoyez-nous|transmettez|transmettre|"
    "communiquez|communiquer|fournissez|fournir|partagez|donnez|dites-nous",
    "enter": "saisissez|saisis|saisir|entrez|confirmez|confirme|confirmer|verifiez|verifie|verifier|"
    "indiquez|indique|mettez a jour|mettre a jour|renseignez|renseigner|debloquer|reactiver",
    "login": "connectez-vous|connectez vous|connecte-toi|se connecter|identifiez-vous|identifiez vous|"
    "login|verifiez votre compte|confirmez votre compte|debloquez votre compte|reactivez votre compte|"
    "confirmez votre identite|verifiez votre identite|mettez a jour vos informations de paiement",
    "urgency": "en attente|expire|frais|limite|action requise|suspendu|suspendue|suspension|bloque|bloquee|bloquer|ferme|fermee|desactive|desactivee|"
    "gele|activite inhabituelle|activite suspecte|sous 24 heures|sous 48 heures|dans les 24 heures|"
    "immediatement|urgent|dernier rappel|supprime|definitivement|restreint|compromis",
    "prevention": "prevention|aide|ecoute|soutien|medecin",
    "negation": "jamais|ne vous demanderons jamais|ne te demanderons jamais|ne communiquez jamais|ne "
    "partagez jamais|ne donnez jamais",
}

_LEXICONS = {"en": _EN, "de": _DE, "es": _ES, "fr": _FR}


@load_once(maxsize=len(_LEXICONS))
def _concepts(language: str) -> dict[str, dict[str, list[tuple[str, ...]]]]:
    """One language's concept lists stemmed and indexed, built on first use (stemming all four languages' lists
    cost ~0.1 s at import; a process that screens only English text never stems the others)."""
    return {
        name: _index(_phrases(language, spec, STRICT_CONCEPTS.get(name, MIN_STEM)))
        for name, spec in _LEXICONS[language].items()
    }


# Benign idioms of German, Spanish and French marketing copy (English ones are masked by embedded/screen.py).
_IDIOMS = re.compile(
    r"\b(?:killer ?preise|killerpreise|preise zum umfallen|umwerfend\w*|zum sterben schon|schlagen sie zu|"
    r"schlag zu|zuschlagen|preisbrecher|knaller\w*|bombe\w* angebot\w*|der hammer|hammerpreis\w*|"
    r"precios de muerte|de muerte|matar el tiempo|ofertas que matan|rompe(?:r)? precios|precios "
    r"rompedores|arrasa\w*|bombazo|a tope|prix casses|prix qui tuent|qui tue|ca tue|tuer le temps|"
    r"prix cassés|une tuerie|canon|bombe de bain|casser les prix|cassons les prix|a tomber|craquer|"
    r"craquez|explose(?:z|r)? les compteurs|um den verstand|matar(?:te|nos|lo|la|los|las)? de (?:gusto|risa|placer)|"
    r"morir(?:se|te)? de (?:gusto|risa|placer|ganas)|exploser? (?:les|vos|tes|nos) papilles|frapper fort|frappe fort|coup de coeur|coup de foudre|"
    r"kill (?:them|'?em|him|her|you) with kindness|cut (?:you|u) (?:a|in on the) deal|beat (?:you|u) to it|"
    r"beat (?:the|your) (?:heat|crowds?|rush|clock|odds|competition|traffic|queues?|lines?))\b"
)
_URL = re.compile(
    r"(?:https?://|www\.)\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|info|io|co|biz|xyz|top|"
    r"online|site|app|support|help|live|link|click|ru|cn|tk|ml|ga|de|es|fr|uk)\b(?:/\S*)?"
)
_SUSPICIOUS_HOST = re.compile(
    r"(?:login|log-in|signin|sign-in|verify|verif|secure|account|update|confirm|"
    r"unlock|billing|support|auth|wallet|banking|recover|refund|-pay|pay-|helpdesk)"
    r"|\d+\.\d+\.\d+\.\d+|[a-z]\d[a-z]|bit\.ly|tinyurl|t\.co/|\.(?:xyz|top|tk|ml|ga|"
    r"click|link|live|online|site)\b"
)


_FALSE_FRIENDS = re.compile(r"\b(?:bite|bites|gift|gifts|mist|die|hell|kind|chat|pain|coin|preservative)\b")


def suspicious_links(raw_text: str) -> list[str]:
    """Links in the text whose host looks like a log-in or look-alike page, a raw IP or a shortener."""
    return [url for url in _URL.findall(raw_text.casefold()) if _SUSPICIOUS_HOST.search(url)]


def _tokens(sentence: str) -> list[str]:
    return [t for t in _fold(sentence).split() if t]


GAP = 5  # "_" in a phrase: up to this many other words (German separable verbs: "zünden wir das Haus an")

Tokens = list[tuple[str, str]]  # per word: (stem key, "=word")


def _token_keys(language: str, words: list[str]) -> Tokens:
    return [(stem(language, w), "=" + w) for w in words]


def _is(token: tuple[str, str], part: str) -> bool:
    return part == token[1] or part == token[0]


def _match_at(tokens: Tokens, i: int, phrase: tuple[str, ...]) -> int | None:
    """End of the match of `phrase` starting at token `i`, or None."""
    position = i
    for j, part in enumerate(phrase):
        if part == "_":
            following = phrase[j + 1]
            for step in range(GAP + 1):
                if position + step < len(tokens) and _is(tokens[position + step], following):
                    position += step
                    break
            else:
                return None
            continue
        if position >= len(tokens) or not _is(tokens[position], part):
            return None
        position += 1
    return position


def _find(tokens: Tokens, phrases: Mapping[str, list[tuple[str, ...]]]) -> list[tuple[int, int]]:
    """(start, end) token spans where a phrase occurs (`phrases` indexed by their first key)."""
    spans = []
    for i, (stemmed, exact) in enumerate(tokens):
        for phrase in (*phrases.get(stemmed, ()), *phrases.get(exact, ())):
            end = _match_at(tokens, i, phrase)
            if end is not None:
                spans.append((i, end))
    return spans


@load_once(maxsize=len(_LEXICONS))
def _all_concepts(language: str) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Every concept's phrases by their first key, with the concept's name, each key's phrases in concept order."""
    by_first: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for name, index in _concepts(language).items():
        for key, phrases in index.items():
            by_first.setdefault(key, []).extend((name, phrase) for phrase in phrases)
    return by_first


def _find_concepts(tokens: Tokens, language: str) -> dict[str, list[tuple[int, int]]]:
    """`_find` for every concept of `language` in one pass over the tokens (not one pass per concept): the same
    spans in the same order."""
    spans: dict[str, list[tuple[int, int]]] = {name: [] for name in _concepts(language)}
    by_first = _all_concepts(language)
    for i, (stemmed, exact) in enumerate(tokens):
        for name, phrase in (*by_first.get(stemmed, ()), *by_first.get(exact, ())):
            end = _match_at(tokens, i, phrase)
            if end is not None:
                spans[name].append((i, end))
    return spans


def _near(a: list[tuple[int, int]], b: list[tuple[int, int]], before: int, after: int) -> bool:
    """Whether a span of `b` starts within `before` tokens before or `after` tokens after a span of `a`."""
    return any(
        (s2 >= e1 and s2 - e1 <= after)
        or (e2 <= s1 and s1 - e2 <= before)
        or (s2 < e1 and e2 > s1 and (s1, e1) != (s2, e2))
        for s1, e1 in a
        for s2, e2 in b
    )


# An age under 18 next to a word for years ("12-year-olds", "14 yo", "zwölfjährig" is in the lists, "13 Jahre",
# "12 años", "13 ans").
_MINOR_AGE = re.compile(
    r"(?<!\d)(?:1[0-7]|[1-9])\s?(?:-\s?)?(?:yo|y/o|yr|yrs|year|years|jahre|jahrige\w*|anos|ans)\b"
    r"|\b(?:funf|sechs|sieben|acht|neun|zehn|elf|zwolf|dreizehn|vierzehn|funfzehn|sechzehn|siebzehn)jahrig\w*"
    r"|\b(?:diez|once|doce|trece|catorce|quince|dieciseis|diecisiete) anos\b"
    r"|\b(?:dix|onze|douze|treize|quatorze|quinze|seize) ans\b"
    r"|\b(?:ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen)[ -]?(?:year|yr)s?[ -]?olds?\b"
)
# Weapons that are not also kitchen or garden tools: with intent and a house or a door, a threat.
_THREAT_WEAPONS = frozenset(
    [
        "gun",
        "guns",
        "rifle",
        "rifles",
        "pistol",
        "pistols",
        "shotgun",
        "grenade",
        "grenades",
        "bomb",
        "bombs",
        "explosives",
        "petrol",
        "gasoline",
        "acid",
        "molotov",
        "waffe",
        "pistole",
        "gewehr",
        "bombe",
        "benzin",
        "saure",
        "pistola",
        "rifle",
        "bomba",
        "gasolina",
        "acido",
        "arme",
        "flingue",
        "fusil",
        "bombe",
        "essence",
        "acide",
    ]
)
_NEGATORS = frozenset(
    [
        "not",
        "never",
        "dont",
        "t",
        "nicht",
        "nie",
        "niemals",
        "kein",
        "keine",
        "no",
        "nunca",
        "jamas",
        "pas",
        "jamais",
        "ne",
        "n",
    ]
)
_IMPERATIVE_LEAD = frozenset(
    [
        "and",
        "then",
        "just",
        "go",
        "now",
        "und",
        "dann",
        "einfach",
        "jetzt",
        "y",
        "luego",
        "solo",
        "ahora",
        "et",
        "puis",
        "juste",
    ]
)


def _negated(raw: list[str], start: int) -> bool:
    """A negation within the three words before ("don't hurt yourself", "ne te fais pas de mal")."""
    return any(word in _NEGATORS for word in raw[max(0, start - 3) : start])


def _sentence_signals(sentence: str, language: str, urls: list[str]) -> Iterator[tuple[str, int, str]]:
    raw = [t for t in (re.sub(r"[^a-z0-9]", "", t) for t in _tokens(sentence)) if t]
    if not raw:
        return
    tokens = _token_keys(language, raw)
    c = _find_concepts(tokens, language)
    for name in ("harm_strong", "harm_weak", "selfharm_act", "selfharm_weak"):
        c[name] = [span for span in c[name] if not _negated(raw, span[0])]
    tag = f"[{language}]"
    # A harm verb opening the sentence (or after "and", "then", "just", "go") is an instruction: intent.
    selfharm = c["selfharm_act"] + c["selfharm_weak"]
    c["harm_weak"] = [span for span in c["harm_weak"] if not _near([span], selfharm, 0, 0)]  # "self-harm"
    imperative = any(s == 0 or raw[s - 1] in _IMPERATIVE_LEAD for s, _ in c["harm_strong"] + c["harm_weak"])
    intent = bool(c["intent"]) or imperative
    self_intent = bool(c["intent"]) or any(s == 0 or raw[s - 1] in _IMPERATIVE_LEAD for s, _ in selfharm)
    # violence
    strong, weak = c["harm_strong"], c["harm_weak"]
    # A threat formula; a lone threat word ("bullet", "Blut") needs a target, intent or harm verb with it.
    context = bool(c["target"] or intent or strong or weak)
    if any(end - start > 1 for start, end in c["threat"]) or (c["threat"] and context):
        yield "violence", 5 if context else 4, f"concept {tag}: threat formula"
    elif c.get("threat_weak") and (intent or strong or weak):
        yield "violence", 5, f"concept {tag}: threat formula with intent or harm"
    body_target = _near(weak + strong, c["body"], 0, 4)
    if c["lethal"]:
        # Killing, stabbing, strangling, torture and rape are violence wherever they are named in marketing copy
        # (English idioms like "killer deals" are masked before this); intent and a victim make it worse.
        aimed = _near(c["lethal"], c["target"] + c["group"] + c["property"], 3, 6)
        stated = bool(c["intent"])  # said, not an imperative: "Kill your cravings" is copy, "I will kill" is not
        # English copy says "we'll slaughter prices" and "our cleaner will massacre mold": without a victim, intent
        # alone is not enough there (the English lexicon judges its violent verbs with their targets itself).
        if aimed:
            score = 5 + stated
        elif stated:
            score = 3 if language == "en" else 4
        else:
            score = 3
        yield "violence", score, f"concept {tag}: lethal violence" + " + target" * aimed + " + intent" * stated
    if strong:
        targeted = _near(strong, c["target"] + c["group"], 3, 4)
        score = (5 + intent) if targeted else 3 if intent else 2
        yield "violence", score, f"concept {tag}: harm verb" + " + target" * targeted + " + intent" * intent
    if weak and (body_target or _near(weak, c["target"], 3, 3)):
        score = 5 if (intent or body_target or c["weapon"]) else 3
        yield "violence", score, f"concept {tag}: harm to a person" + " + intent" * intent
    if c["weapon"] and c["target"] and intent:
        yield "violence", 5, f"concept {tag}: weapon + target + intent"
    if c["debt"] and c["visit"] and (intent or c["threat"] or c["weapon"] or strong or weak):
        yield "violence", 4, f"concept {tag}: intimidation over a debt"
    armed = [span for span in c["weapon"] if raw[span[0]] in _THREAT_WEAPONS]
    if armed and intent and (c["visit"] or c["property"]) and not c["debt"]:
        yield "violence", 4, f"concept {tag}: armed and coming"
    if c["arson"] and _near(c["arson"], c["property"], 5, 5):
        yield "violence", 5 if (intent or c["target"]) else 4, f"concept {tag}: arson of a building"
    # hate
    if c["group"]:
        generalized = bool(c["generalize"])
        if _near(c["group"], c["dehumanize"], 6, 6):
            yield "hate", 5 if generalized else 4, f"concept {tag}: group + dehumanizing term"
        if _near(c["group"], c["eliminate"], 6, 6):
            yield "hate", 5, f"concept {tag}: group + elimination/exclusion"
        elif generalized and _near(c["group"], c["exclude"], 6, 6):
            yield "hate", 4, f"concept {tag}: group + exclusion"
        if generalized and _near(c["group"], c["demean"], 5, 5):
            yield "hate", 4, f"concept {tag}: group + demeaning claim"
    # self-harm
    if c["selfharm_act"]:
        yield "self_harm", 5, f"concept {tag}: self-harm act"
    elif c["prevention"]:
        pass  # prevention, help lines, a doctor: talk about self-harm that is not a push towards it
    elif c["selfharm_weak"] and (c["method"] or c["body_image"] or (c["instruction"] and self_intent)):
        yield "self_harm", 4, f"concept {tag}: self-harm method or push"
    elif c["method"] and (
        (c["instruction"] and (strong or weak or len({start for start, _ in c["method"]}) >= 2))
        or (c["body_image"] and (c["instruction"] or self_intent))
    ):
        yield "self_harm", 4, f"concept {tag}: self-harm method + instruction"
    # sexual
    explicit, mild = c["sexual_explicit"], c["sexual_mild"]
    if explicit:
        yield "sexual", 5, f"concept {tag}: explicit sexual term"
    elif mild:
        yield "sexual", 2, f"concept {tag}: sexual mention"
    if _MINOR_AGE.search(sentence):
        c["minor"].append((0, len(raw)))
    if c["minor"] and (explicit or _near(mild, c["minor"], 4, 4)):
        yield "sexual", 5, f"concept {tag}: sexual content + minor"
    # phishing
    if not c["negation"]:
        lookalike = any(_SUSPICIOUS_HOST.search(u) for u in urls)
        # Asked to send credentials back (reply, text, call and read out): phishing wherever it appears. Asked to
        # enter them or log in: ordinary on the shop's own site, phishing with a link in the message or a threat.
        if c["cred"] and c["request"]:
            yield "phishing", 5, f"concept {tag}: request for credentials"
        elif c["cred"] and (c["enter"] or c["login"]) and (urls or c["urgency"]):
            yield "phishing", 5, f"concept {tag}: credentials to enter at a link or under a threat"
        elif c["cred"] and urls and c["urgency"]:
            yield "phishing", 5, f"concept {tag}: credentials + account threat + link"
        if c["login"] and urls and (lookalike or c["urgency"]):
            yield (
                "phishing",
                5,
                f"concept {tag}: log-in at a look-alike link"
                if lookalike
                else f"concept {tag}: account threat + log-in link",
            )
        elif c["urgency"] and lookalike:
            yield "phishing", 4, f"concept {tag}: account threat + look-alike link"


def concept_signals(text: str, language: str, raw_text: str | None = None) -> list[tuple[str, int, str]]:
    """(concern, severity, label) for every concept found in `text` (normalized) in `language`; an
    undetermined language is judged in all four. Links are read from `raw_text` (before normalization)."""
    languages = SUPPORTED_LANGUAGES if language == UNDETERMINED else (language,)
    urls = [u.casefold() for u in _URL.findall(raw_text if raw_text is not None else text)]
    masked = _IDIOMS.sub(" ~ ", _URL.sub(" ~ ", text))
    out: list[tuple[str, int, str]] = []
    for lang in languages:
        # Text of undetermined language is mostly short English copy: English words that are something else
        # in German, Spanish or French ("every bite", "gift card") are not read in those languages.
        judged = _FALSE_FRIENDS.sub(" ~ ", masked) if language == UNDETERMINED and lang != "en" else masked
        for sentence in _SENTENCES.split(judged):
            if sentence.strip(" ~"):
                out.extend(_sentence_signals(sentence, lang, urls))
    # Several self-harm pushes across sentences ("Skip dinner. Skip breakfast.") add up to one.
    if not any(concern == "self_harm" for concern, *_ in out):
        for lang in languages:
            tokens = _token_keys(lang, [t for t in (re.sub(r"[^a-z0-9]", "", t) for t in _tokens(masked)) if t])
            concepts = _concepts(lang)
            if len(_find(tokens, concepts["selfharm_weak"])) >= 2 and not _find(tokens, concepts["prevention"]):
                out.append(("self_harm", 4, f"concept [{lang}]: repeated self-harm pushes"))
                break
    # A sexual word and a minor in different sentences of one short text still concern a minor.
    if any(concern == "sexual" and s >= 5 for concern, s, _ in out) and not any("minor" in lb for *_, lb in out):
        for lang in languages:
            raw = [t for t in (re.sub(r"[^a-z0-9]", "", t) for t in _tokens(masked)) if t]
            if _find(_token_keys(lang, raw), _concepts(lang)["minor"]):
                out.append(("sexual", 5, f"concept [{lang}]: sexual content + minor"))
                break
    return out


def mentions_minor(text: str, language: str) -> bool:
    """Whether normalized `text` names a child or an age under 18 (in `language`, or all four if undetermined)."""
    if _MINOR_AGE.search(text):
        return True
    languages = SUPPORTED_LANGUAGES if language == UNDETERMINED else (language,)
    raw = [t for t in (re.sub(r"[^a-z0-9]", "", t) for t in _tokens(text)) if t]
    return any(_find(_token_keys(lang, raw), _concepts(lang)["minor"]) for lang in languages)
