"""The embedded message composer: a deterministic, offline writer of grounded marketing messages.

It is the default `llm` backend, so the demo works without any model. It does not invent facts: every product,
offer and policy sentence is taken from a retrieved document's snippet (approved copy), introduced by the
document's title and followed by a `[Source: Title]` citation; the surrounding sentences (greeting, why-you,
call to action, sign-off) come from the copy below, chosen by the segment's campaign intent and the tone. The
tone also decides which snippet sentences lead (urgent: offers and numbers; informational: how-it-works
details; friendly: warm, second-person lines).

Snippet sentences are quoted only when they are complete, plain sentences: fragments, Markdown or
placeholders, and anything that reads like instructions to a model ("ignore previous instructions") are
skipped, so a poisoned document cannot leak into a message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from personalization_assets.lib.generation import (
    FormatRules,
    SegmentBrief,
    SourceDocument,
    count_words,
    find_leftovers,
)

COMPOSER_MODEL = "embedded-composer-2"  # bump when the copy or the algorithm changes

INJECTION = re.compile(
    r"ignore\b.{0,30}\b(instructions?|prompts?|rules)|disregard\b.{0,30}\b(instructions?|above|previous)"
    r"|system prompt|you are now|as an ai\b|language model|new instructions|respond only|output only"
    r"|\b(assistant|chatgpt|gpt)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]?\s+(?=[\"'“‘(]?[A-Z0-9])")
_TRUNCATED = re.compile(r"(\.\.\.|…)\s*$")
_LIST_ITEM = re.compile(r"(?<=[.!?:])\s+[-*•]\s+|\s+\d+[.)]\s+(?=[A-Z])")
# A quoted line must read as a sentence, not a list item or a price tag: it has at least one function word.
_FUNCTION_WORD = re.compile(r"\b(the|a|an|to|and|is|are|was|we|you|for|with|of|in|it|our|your|this|that|on)\b")
# Targeting keywords ("lapsed customers") describe the audience to marketers; they are not said to customers.
_AUDIENCE_TERM = re.compile(r"customer|shopper|members\b|lapsed|segment|re-?engage|win-?back|audience", re.IGNORECASE)
_ANAPHORIC_START = re.compile(r"(that|this|these|those|it|they|then|also|but|and|so|plus)\b", re.IGNORECASE)
_QUOTED = re.compile(r"[\"“'‘]([^\"”'’]{3,60})[\"”'’]")

TONE_CUES = {
    "urgent": re.compile(
        r"\d|%|\$|\b(now|today|limited|only|ends?|before|early|first|valid|hours?|days?|soon|expires?|while|last)\b",
        re.IGNORECASE,
    ),
    "informational": re.compile(
        r"\b(how|step|steps|includes?|available|works?|each|every|choose|details?|policy|within|free|size|"
        r"made|rated|designed|guide|options?)\b",
        re.IGNORECASE,
    ),
    "friendly": re.compile(
        r"\b(you|your|we|love|welcome|enjoy|favou?rites?|together|happy|thanks?|cozy|little|perfect)\b",
        re.IGNORECASE,
    ),
}

GREETING = {
    "urgent": "Quick heads-up before this one slips by.",
    "informational": "Hello,",
    "friendly": "Hi there,",
}
SIGN_OFF = {"urgent": "See you soon,", "informational": "Kind regards,", "friendly": "Warmly,"}
LEAD_INS = {
    "urgent": (
        "Do not miss {title}.",
        "Also worth acting on now: {title}.",
        "One more to move on quickly: {title}.",
    ),
    "informational": (
        "Here is an overview of {title}.",
        "You may also find this useful: {title}.",
        "Finally, a short summary of {title}.",
    ),
    "friendly": (
        "We thought you would enjoy {title}.",
        "You might also like {title}.",
        "And one more we picked with you in mind: {title}.",
    ),
}
KEYWORD_LINE = {
    "urgent": "It is all about {keywords}, so have a look while it is fresh.",
    "informational": "The details cover {keywords}.",
    "friendly": "Think {keywords}, all in one place.",
}
SUBJECTS = {
    "urgent": ("Don't miss out: {hook}", "Act now: {hook}", "{hook}"),
    "informational": ("{hook}: what you need to know", "Good to know: {hook}", "{hook}"),
    "friendly": ("A little something for you: {hook}", "For you: {hook}", "{hook}"),
}


# Copy per campaign intent (segmentation's `intent`) and tone. It is the same for every business, so it claims
# only what any business with customers can say: no products, orders, stock, sizes, wishlists, returns,
# warranties or points (an airline's or a bank's customers were told about "sizing and gear"), no deadlines
# or prices. Everything specific comes from the documents. `scripts/evaluate_composer_vocabulary.py` counts
# the words of these sentences that a library never uses.
class IntentCopy(TypedDict):
    """The composer's copy for one campaign intent: a sentence per tone, plus tone-free extra sentences."""

    opening: dict[str, str]
    why: dict[str, str]
    cta: dict[str, str]
    extra: tuple[str, ...]


DETAILS_CTA = "The full details are in the pages named above."
INTENT_COPY: dict[str, IntentCopy] = {
    "vip": {
        "opening": {
            "urgent": "As one of our most valued customers, you hear about this first, before we share it widely.",
            "informational": "As one of our most valued customers, here is a summary of what is new for you.",
            "friendly": "You are one of our most valued customers, so we wanted you to hear about this first.",
        },
        "why": {
            "urgent": "Hearing first means you can decide before everyone else does.",
            "informational": "We share this first with the customers who choose us most often.",
            "friendly": "It felt right to tell you first, since you know what you like.",
        },
        "cta": {
            "urgent": "Take a look now, before everyone else does.",
            "informational": DETAILS_CTA,
            "friendly": "Take a look whenever you have a quiet moment, and tell us what you think.",
        },
        "extra": (
            "As always, you can reply to this message if anything is unclear.",
            "Our team is happy to help with any question about it, at any time.",
            "We will keep you posted about what comes next.",
        ),
    },
    "win_back": {
        "opening": {
            "urgent": "It has been a while since we last heard from you, and we would not want you to miss this.",
            "informational": "It has been a while since we last heard from you, so here is what has changed.",
            "friendly": "We have not heard from you in a while, and we wanted to say hello.",
        },
        "why": {
            "urgent": "Coming back now is the easiest way to make the most of it.",
            "informational": "We put this together for customers we have not seen for some time.",
            "friendly": "We would love to welcome you back and make it easy.",
        },
        "cta": {
            "urgent": "Take a look today and pick up where you left off.",
            "informational": DETAILS_CTA,
            "friendly": "Come back whenever suits you; we will be glad to see you.",
        },
        "extra": (
            "If something we did kept you away, reply to this message and we will do our best to make it right.",
            "Our team reads every reply and is glad to help.",
            "A lot can change in a few months, and we hope some of it is useful to you.",
        ),
    },
    "onboarding": {
        "opening": {
            "urgent": "Welcome, and make the most of your first weeks with us.",
            "informational": "Welcome; here is what new customers most often ask about.",
            "friendly": "Welcome, we are so glad you found us.",
        },
        "why": {
            "urgent": "Getting set up now makes everything after this quicker.",
            "informational": "These are the basics that make a good start simple.",
            "friendly": "We want your first weeks with us to feel easy.",
        },
        "cta": {
            "urgent": "Start now and get the most out of your first weeks.",
            "informational": "The full details are in the pages named above, to read at your own pace.",
            "friendly": "Have a look whenever you like, and say hello if you have a question.",
        },
        "extra": (
            "If anything is unclear, reply to this message and a person on our team will answer.",
            "Our team is happy to help with any question as you get started.",
            "We will send you only what is useful as you settle in.",
        ),
    },
    "loyalty": {
        "opening": {
            "urgent": "You are with us more often than almost anyone, so this is one to act on right away.",
            "informational": "Thank you for choosing us so often; here is an update for you.",
            "friendly": "Thank you for being such a regular, it genuinely makes our day.",
        },
        "why": {
            "urgent": "Regular customers like you get the most out of it when you jump in early.",
            "informational": "We share this with customers who come back to us regularly.",
            "friendly": "It is our way of saying thanks for coming back again and again.",
        },
        "cta": {
            "urgent": "Take a look now so you do not miss out.",
            "informational": DETAILS_CTA,
            "friendly": "Have a look when you are ready, and thank you again for being with us.",
        },
        "extra": (
            "Customers like you are the reason we keep improving what we do.",
            "Our team is glad to help with anything, at any time.",
            "Thank you for your loyalty; it means a great deal to us.",
        ),
    },
    "nurture": {
        "opening": {
            "urgent": "A few things are happening right now that are worth your attention.",
            "informational": "Here is a short update on what is new and useful.",
            "friendly": "We have a few things we think you will like.",
        },
        "why": {
            "urgent": "The earlier you take a look, the more you can make of it.",
            "informational": "We picked these because they are the most useful for customers like you.",
            "friendly": "We picked these with you in mind.",
        },
        "cta": {
            "urgent": "Take a look today while it is fresh.",
            "informational": DETAILS_CTA,
            "friendly": "Have a look whenever you like, we are always happy to help.",
        },
        "extra": (
            "If you have a question about any of it, reply to this message and we will answer.",
            "Our team is happy to help whenever you need us.",
            "We will keep you posted about the things that matter to you.",
        ),
    },
}
# Last in line: true of any message, used only when the documents give too little to quote.
GENERAL_EXTRA = (
    "You can reply to this email with any question, and a real person on our team will answer.",
    "If this is not for you right now, no problem; we will keep you posted about the things that are.",
    "You can choose which messages you get from us at any time.",
    "Your feedback shapes what we do next, so tell us what you would like to see more of.",
    "Whenever you are ready, everything mentioned here is just a click away.",
    "Thank you for reading, and for being part of our community.",
)
MAX_DOCUMENTS = 3
MAX_SENTENCE_WORDS = 40


@dataclass(frozen=True)
class ComposedMessage:
    subject: str
    body: str
    citations: tuple[str, ...]  # document ids cited in the body


@dataclass
class _Paragraph:
    sentences: list[str]
    document: SourceDocument | None = None
    snippet_order: dict[str, int] = field(default_factory=dict)  # quoted sentence -> position in the snippet

    def render(self) -> str:
        # Quoted sentences keep the snippet's order (a "That is..." must follow what it refers to), after the
        # lead-in and before any keyword line.
        late = len(self.snippet_order) + 1
        ordered = sorted(
            enumerate(self.sentences),
            key=lambda item: (0, item[0]) if item[0] == 0 else (1, self.snippet_order.get(item[1], late)),
        )
        text = " ".join(sentence for _, sentence in ordered)
        return f"{text} [Source: {self.document.title}]" if self.document is not None else text


def _quoted_terms(feedback: Sequence[str]) -> list[str]:
    return [match.group(1).casefold() for text in feedback for match in _QUOTED.finditer(text)]


def usable_sentences(snippet: str, banned: Sequence[str] = ()) -> list[str]:
    """Complete, plain sentences of a snippet that can be quoted as they are."""
    sentences = []
    for paragraph in re.split(r"\n\s*\n|\n(?=\s*(?:\d+[.)]|[-*•])\s)", snippet or ""):
        flat = " ".join(paragraph.split())
        pieces = [piece for part in _LIST_ITEM.split(flat) for piece in _SENTENCE_END.split(part)]
        for sentence in pieces:
            sentence = sentence.strip()
            words = len(sentence.split())
            if (
                not 5 <= words <= MAX_SENTENCE_WORDS
                or not sentence[:1].isupper()
                or sentence[-1] not in ".!?"
                or _TRUNCATED.search(sentence)
                or re.match(r"^(\d+[.)]|[-*•])\s", sentence)
                or not _FUNCTION_WORD.search(sentence)
                or find_leftovers(sentence)
                or INJECTION.search(sentence)
                or any(term in sentence.casefold() for term in banned)
            ):
                continue
            sentences.append(sentence)
    return sentences


def _rank_sentences(sentences: list[str], tone: str, keywords: Sequence[str]) -> list[str]:
    cue = TONE_CUES.get(tone, TONE_CUES["informational"])

    def score(item: tuple[int, str]) -> tuple[int, int]:
        position, sentence = item
        lowered = sentence.casefold()
        points = 2 * len(cue.findall(sentence)) + sum(1 for keyword in keywords if keyword.casefold() in lowered)
        if _ANAPHORIC_START.match(sentence):
            points -= 4  # "That is enough for..." reads oddly without the sentence before it
        return (-points, position)

    return [sentence for _, sentence in sorted(enumerate(sentences), key=score)]


def _keyword_line(document: SourceDocument, tone: str, used_text: str) -> str | None:
    fresh = [
        k
        for k in document.keywords
        if k.casefold() not in used_text.casefold() and len(k) <= 40 and not _AUDIENCE_TERM.search(k)
    ][:3]
    if len(fresh) < 2:
        return None
    listed = ", ".join(fresh[:-1]) + " and " + fresh[-1]
    return KEYWORD_LINE.get(tone, KEYWORD_LINE["informational"]).format(keywords=listed)


def _hook(document: SourceDocument) -> str:
    main = re.split(r":|\s\(", document.title, maxsplit=1)[0].strip()
    return main or document.title


def compose_subject(documents: Sequence[SourceDocument], tone: str, max_chars: int) -> str:
    """The first tone pattern that fits, around the lead document's main title."""
    hooks = [_hook(doc) for doc in documents[:1]] + [doc.title for doc in documents[:1]] + ["Picked for you"]
    for hook in hooks:
        for pattern in SUBJECTS.get(tone, SUBJECTS["informational"]):
            subject = pattern.format(hook=hook)
            if len(subject) <= max_chars:
                return subject
    cut = hooks[0][:max_chars].rsplit(" ", 1)[0]  # a single title longer than the limit: cut at a word
    return cut or hooks[0][:max_chars]


def compose_message(
    brief: SegmentBrief,
    documents: Sequence[SourceDocument],
    tone: str,
    rules: FormatRules,
    *,
    sender: str,
    feedback: Sequence[str] = (),
) -> ComposedMessage:
    """Write one message for `brief` in `tone`, grounded in up to three `documents` (ranked best first).

    `feedback` (a rewrite request, e.g. from the safety stage) changes the draft: sentences containing a
    quoted term of the feedback are left out, and the next-best snippet sentences are used instead of the
    first ones.
    """
    if not documents:
        raise ValueError(f"segment {brief.segment}: no retrieved documents to ground a {tone} message in")
    copy = INTENT_COPY.get(brief.intent, INTENT_COPY["nurture"])
    banned = _quoted_terms(feedback)
    skip = len(feedback)  # each rewrite round starts one sentence further down each document's ranking
    sources = list(documents[:MAX_DOCUMENTS])
    lead_ins = LEAD_INS.get(tone, LEAD_INS["informational"])

    ranked = {}
    for doc in sources:
        sentences = _rank_sentences(usable_sentences(doc.snippet, banned), tone, doc.keywords)
        ranked[doc.document_id] = sentences[skip:] if len(sentences) > skip else sentences

    def lead_in(position: int, doc: SourceDocument) -> str:
        return lead_ins[min(position, len(lead_ins) - 1)].format(title=f"\u201c{doc.title}\u201d")

    greeting = _Paragraph([GREETING.get(tone, "Hello,")])
    opening = _Paragraph([copy["opening"][tone]])
    doc_paragraphs = []
    for position, doc in enumerate(sources):
        order = {line: n for n, line in enumerate(usable_sentences(doc.snippet, banned))}
        doc_paragraphs.append(_Paragraph([lead_in(position, doc)], doc, order))
    why = _Paragraph([])
    closing = _Paragraph([copy["cta"][tone]])
    sign_off = _Paragraph([SIGN_OFF.get(tone, "Best regards,") + "\n" + sender])

    # Optional sentences in priority order: the lead document's best lines first, then the others, then the
    # intent copy. Each is (paragraph, sentence); a document paragraph is shown only once it has a sentence.
    optional: list[tuple[_Paragraph, str]] = []
    for depth in range(2):
        for doc, paragraph in zip(sources, doc_paragraphs, strict=True):
            if len(ranked[doc.document_id]) > depth:
                optional.append((paragraph, ranked[doc.document_id][depth]))
        if depth == 0:
            optional.append((why, copy["why"][tone]))
    for doc, paragraph in zip(sources, doc_paragraphs, strict=True):
        line = _keyword_line(doc, tone, " ".join(ranked[doc.document_id]) + doc.title)
        if line:
            optional.append((paragraph, line))
    optional.extend((why, sentence) for sentence in copy["extra"])
    optional.extend((closing, sentence) for sentence in GENERAL_EXTRA)

    layout = [greeting, opening, *doc_paragraphs, why, closing, sign_off]

    def render() -> str:
        shown = [
            p for p in layout if p.sentences and (p.document is None or len(p.sentences) > 1 or p is doc_paragraphs[0])
        ]
        return "\n\n".join(p.render() for p in shown)

    # Fill towards the middle of the allowed range, never past the maximum.
    target = rules.body_min_words + (rules.body_max_words - rules.body_min_words) * 2 // 5
    for paragraph, sentence in optional:
        if count_words(render()) >= target:
            break
        paragraph.sentences.append(sentence)
        if count_words(render()) > rules.body_max_words:
            paragraph.sentences.pop()
    # Too little material still yields a message: the format rules reject it with the word count as reason.
    body = render()
    cited = tuple(
        p.document.document_id
        for p in doc_paragraphs
        if p.document is not None and p.document.title and f"[Source: {p.document.title}]" in body
    )
    return ComposedMessage(subject=compose_subject(sources, tone, rules.subject_max_chars), body=body, citations=cited)
