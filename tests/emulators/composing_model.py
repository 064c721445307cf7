"""A well-behaved model for the Responses API emulator: it answers a generation prompt with the embedded composer's
message for the prompt's segment profile, documents and tone, so runs against the emulator produce valid variants.

    openai_emulator.responder = composing_responder
"""

import json
import re

from personalization_assets.embedded.composer import compose_message
from personalization_assets.lib.generation import FormatRules, SegmentBrief, SourceDocument

# The prompt quotes the segment profile and the documents as ```json blocks (config/prompts/).
FENCED_JSON = re.compile(r"```json\n(.*?)\n```", re.DOTALL)
SENDER = "The Northwind Outfitters team"  # config/generation.yaml `sender`


def wants_structured_output(body: dict) -> bool:
    return ((body.get("text") or {}).get("format") or {}).get("type") == "json_schema"


def composed_answer(body: dict, *, structured: bool | None = None, sender: str = SENDER) -> str:
    """The answer to a Responses API request `body`: the message as the JSON the request's schema asks for, or
    `Subject:` + body as free text (`structured` None: as the request asks)."""
    user = next(item["content"] for item in body["input"] if item["role"] == "user")
    profile, documents = (json.loads(block) for block in FENCED_JSON.findall(user)[:2])
    tone = re.search(r"Tone: (\w+)", body["instructions"]).group(1)
    sources = [
        SourceDocument(d["document_id"], d["title"], d["snippet"], d["category"], tuple(d["keywords"]))
        for d in documents
    ]
    brief = SegmentBrief(profile["segment"], profile["name"], profile["campaign_intent"])
    message = compose_message(brief, sources, tone, FormatRules(), sender=sender)
    if wants_structured_output(body) if structured is None else structured:
        return json.dumps({"subject": message.subject, "body": message.body, "citations": list(message.citations)})
    return f"Subject: {message.subject}\n\n{message.body}"


def composing_responder(body: dict) -> str:
    return composed_answer(body)
