"""Which language a text is written in, as far as the embedded safety screen needs to know.

A light identifier: the writing system first (letters of a non-Latin script), then stopword profiles of the four
languages the screen judges and of eleven other Latin-script languages. Function words carry the signal in short
marketing texts, and a profile needs two hits and a lead over the others, so a subject line with one borrowed
word ("Bon appétit, summer!") stays English and a bare name or city ("Zürich", "Gold") is undetermined.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "de", "es", "fr")
UNDETERMINED = "und"  # too little text to tell: judged in every supported language

_STOPWORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the and you your to of is are was were be will would with for this that it on at our we my i "
        "me he she they them his her their have has had not but or if from by an what so can all just do "
        "don't i'm it's you're get got now out up about there here who how when why been because should "
        "could than then into only over very its us am did does these those which while",
        "de": "der die das und ist nicht ich du sie wir ihr er es ein eine einen einem einer dich dir mich mir "
        "uns euch mit von zu auf fur den dem des im auch sich wenn dann aber oder wie was wer noch nur schon "
        "sind bist bin war wird werden hat haben kein keine jetzt alle dein deine deinen deiner unser unsere "
        "mal doch weil dass diese dieser dieses hier bei nach aus um",
        "es": "el la los las y que de del en un una unos unas es son por para con no te tu tus su sus lo le "
        "les mi mis yo nos nosotros vosotros ellos ellas pero si como mas muy esta este esto estos estas "
        "eres soy hay ya todo todos todas cuando donde porque al se sin sobre usted ustedes vamos voy",
        "fr": "le la les et est un une des du de je tu il elle nous vous ils elles ne pas que qui dans pour "
        "sur avec ce cette ces mon ma mes ton ta tes son sa ses notre votre vos leur au aux on se en plus "
        "mais ou si tout tous toute sont suis es etes ai as avons avez ont va vais toi moi lui",
        "it": "il lo gli la le di che e un una per non sono sei con mi ti ci vi si del della dei delle nel "
        "nella questo questa quello come ma anche tutti tutto perche io tu noi voi loro ho hai ha abbiamo "
        "essere sua suo tuo tua",
        "pt": "o os a as e que de do da dos das em um uma para com nao se na no por mais como mas ao voce "
        "voces eu ele ela nos eles elas seu sua meu minha isso esta este sao foi tem ja muito vai vou",
        "nl": "de het een en van is dat die in te niet je jij ik we wij zijn op met voor er maar om ook als "
        "bij nog wel zo aan uit wat hij zij ze mijn jouw onze heeft hebben wordt worden deze dit",
        "pl": "i w na z sie nie to jest ze do jak co ale tak ja ty on ona my wy oni jestes jestem mnie cie "
        "ciebie twoj twoja moj moja przez dla od juz tylko bardzo",
        "sv": "och att det som en ett ar jag du han hon vi ni de inte med for pa av till den har var men om "
        "sa mig dig oss er min din",
        "da": "og at det som en et er jeg du han hun vi i de ikke med for pa af til den har var men om sa mig "
        "dig os jer min din",
        "tr": "ve bir bu da de ile icin ben sen o biz siz onlar degil mi ne ama cok daha gibi var yok sana beni seni",
        "id": "dan yang di ke dari ini itu dengan untuk tidak ada saya kamu kami kita mereka akan sudah juga atau pada",
        "ro": "si este un o de la in cu pe nu ca sa se ce pentru mai sunt eu tu el ea noi voi ei",
        "cs": "a je se na v ze to jsem jsi jsme nejsem ale jak co pro s z do ty ja on ona my vy oni",
        "hu": "a az es egy hogy nem is van vagy de meg ez azt en te mi ti ok",
    }.items()
}
_SCRIPT_NAMES = {
    "CYRILLIC": "ru",
    "GREEK": "el",
    "ARABIC": "ar",
    "HEBREW": "he",
    "DEVANAGARI": "hi",
    "THAI": "th",
    "HANGUL": "ko",
    "HIRAGANA": "ja",
    "KATAKANA": "ja",
    "CJK": "zh",
    "ARMENIAN": "hy",
    "GEORGIAN": "ka",
    "BENGALI": "bn",
    "TAMIL": "ta",
    "ETHIOPIC": "am",
}
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=4096)
def _char_script(ch: str) -> str | None:
    """The language code of a letter's non-Latin script, or None."""
    name = unicodedata.name(ch, "")
    return next((code for script, code in _SCRIPT_NAMES.items() if name.startswith(script)), None)


def _script(text: str) -> str | None:
    """The language code of the dominant non-Latin script, when most letters are in one."""
    counts: dict[str, int] = {}
    letters = 0
    # Each distinct character once (a document repeats a few dozen letters thousands of times), in order of first
    # appearance, so scripts are counted, and ties broken, as letter by letter.
    for ch, times in Counter(text).items():
        if not ch.isalpha():
            continue
        letters += times
        code = _char_script(ch)
        if code is not None:
            counts[code] = counts.get(code, 0) + times
    if not letters or not counts:
        return None
    code, count = max(counts.items(), key=lambda item: item[1])
    return code if count / letters >= 0.3 else None


def language_scores(text: str) -> dict[str, int]:
    """Stopword hits per language profile."""
    # Each distinct word once, with its count: the same sums without a set lookup per word and profile.
    words = Counter(w for w in _WORD.findall(_strip_accents(text)) if len(w) > 1)
    return {
        lang: sum(count for word, count in words.items() if word in stopwords) for lang, stopwords in _STOPWORDS.items()
    }


def identify_language(text: str) -> str:
    """ "en", "de", "es", "fr", another ISO 639-1 code, or "und" (undetermined: too little evidence).

    Texts mostly in a non-Latin script get that script's language. Otherwise the stopword profile with the most
    hits wins if it has at least two and more than any other; a tie between English and another profile is
    English (marketing copy borrows words), other ties are undetermined.
    """
    script = _script(text)
    if script is not None:
        return script
    scores = language_scores(text)
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < 2:
        return UNDETERMINED
    if top == second:
        tied = {lang for lang, score in scores.items() if score == top}
        if "en" in tied:
            return "en"
        supported = tied & set(SUPPORTED_LANGUAGES)
        if len(supported) == 1:  # judge rather than refuse when a supported language is as likely
            return supported.pop()
        return UNDETERMINED
    # Another language must be clearly ahead of every supported one before the screen refuses a text.
    if best not in SUPPORTED_LANGUAGES:
        supported_best = max(SUPPORTED_LANGUAGES, key=lambda lang: scores[lang])
        if top < 3 or top <= scores[supported_best]:
            return supported_best if scores[supported_best] >= 2 else UNDETERMINED
    return best
