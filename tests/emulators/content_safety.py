"""Azure AI Content Safety REST emulator for azure-ai-contentsafety 1.0.0 (api-version 2023-10-01).

Routes (under ``/contentsafety``, auth header ``Ocp-Apim-Subscription-Key`` or a bearer token):

* ``POST /text:analyze`` -> ``{"blocklistsMatch": [...], "categoriesAnalysis": [{"category", "severity"}]}``
  for the requested ``categories`` (default Hate, SelfHarm, Sexual, Violence). Severities come from
  ``emu.scorer(text) -> {category: 0..7}``; the default scorer takes, per category, the highest severity of
  the words/phrases of ``emu.trigger_words`` ({phrase: (category, severity)}, matched case-insensitively on
  word boundaries) found in the text. ``outputType: EightSeverityLevels`` reports 0-7; the default
  ``FourSeverityLevels`` rounds down to 0/2/4/6. ``blocklistNames`` are matched the same way; with
  ``haltOnBlocklistHit`` a hit skips category analysis (empty ``categoriesAnalysis``), as the service does.
  Text over 10,000 characters -> 400 ``InvalidRequestBody``; unknown blocklist -> 404.
* Blocklists (BlocklistClient): ``PATCH /text/blocklists/{name}`` (201 new / 200 updated), ``GET`` one / list,
  ``DELETE``, ``POST /text/blocklists/{name}:addOrUpdateBlocklistItems``, ``:removeBlocklistItems``,
  ``GET /text/blocklists/{name}/blocklistItems[/{id}]``. Seed directly with ``emu.add_blocklist(name,
  [...])``.

The ``wrong_schema`` fault answers a well-formed result that omits the Violence category, so callers can prove
they fail closed when a category is missing; ``empty`` answers no categories at all.

Authorization as the service does it: a wrong key gets 401 (base emulator); with ``emu.bearer_role = None`` a
valid Entra ID token is authenticated but the identity has no role on the resource, so every data call gets 403
``PermissionDenied`` naming the data action "Cognitive Services User" grants.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

from .base import EmulatorHTTPError, EmulatorResponse, EmulatorServer, RecordedRequest

CATEGORIES = ("Hate", "SelfHarm", "Sexual", "Violence")
MAX_TEXT_LENGTH = 10_000
DEFAULT_TRIGGER_WORDS: dict[str, tuple[str, int]] = {
    "idiots": ("Hate", 3),
    "hate": ("Hate", 4),
    "hurt myself": ("SelfHarm", 6),
    "explicit": ("Sexual", 4),
    "fight": ("Violence", 2),
    "attack": ("Violence", 4),
    "kill": ("Violence", 6),
}
Scorer = Callable[[str], dict[str, int]]

_BLOCKLIST_PATH = re.compile(r"^/contentsafety/text/blocklists/(?P<name>[^/:]+)(?P<rest>.*)$")


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", re.IGNORECASE)


def _invalid(message: str) -> EmulatorHTTPError:
    return EmulatorHTTPError(400, "InvalidRequestBody", message)


class ContentSafetyEmulator(EmulatorServer):
    """Text moderation + blocklists (see module docstring)."""

    service_name = "content-safety"
    key_header = "Ocp-Apim-Subscription-Key"

    def __init__(
        self,
        *,
        trigger_words: dict[str, tuple[str, int]] | None = None,
        scorer: Scorer | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.trigger_words = dict(DEFAULT_TRIGGER_WORDS if trigger_words is None else trigger_words)
        self.scorer: Scorer = scorer or self.trigger_word_scorer
        self._state_lock = threading.RLock()
        self._blocklists: dict[str, dict[str, Any]] = {}  # name -> {"description", "items": {id: item}}
        # The role a bearer token's identity holds on the resource; None answers 403 to every data call.
        self.bearer_role: str | None = "Cognitive Services User"

    def trigger_word_scorer(self, text: str) -> dict[str, int]:
        severities = dict.fromkeys(CATEGORIES, 0)
        for phrase, (category, severity) in self.trigger_words.items():
            if category not in severities:
                raise ValueError(f"trigger word {phrase!r} has unknown category {category!r}; use {CATEGORIES}")
            if _phrase_pattern(phrase).search(text):
                severities[category] = max(severities[category], int(severity))
        return severities

    # ---- seeding / inspection ----
    def add_blocklist(self, name: str, items: list[str], description: str = "") -> None:
        with self._state_lock:
            blocklist = self._blocklists.setdefault(name, {"description": description, "items": {}})
            for text in items:
                self._upsert_item(blocklist, {"text": text})

    def blocklist_texts(self, name: str) -> list[str]:
        with self._state_lock:
            return [item["text"] for item in self._get_blocklist(name)["items"].values()]

    def reset_state(self) -> None:
        with self._state_lock:
            self._blocklists.clear()

    # ---- fault bodies ----
    def empty_body(self, request: RecordedRequest) -> Any:
        return {"blocklistsMatch": [], "categoriesAnalysis": []}

    def wrong_schema_body(self, request: RecordedRequest) -> Any:
        return {
            "blocklistsMatch": [],
            "categoriesAnalysis": [{"category": c, "severity": 0} for c in CATEGORIES if c != "Violence"],
        }

    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        return {"error": {"code": code, "message": message, "details": []}}

    def _error_response(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        if status == 401:  # what the service answers to a wrong key or a token for another resource
            code, message = (
                "401",
                (
                    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                    "valid key for an active subscription and use a correct regional API endpoint for your resource."
                ),
            )
        return super()._error_response(status, code, message, headers)

    # ---- routing ----
    def handle(self, request: RecordedRequest) -> EmulatorResponse:
        method, path = request.method, request.path.rstrip("/")
        if request.auth_scheme == "bearer" and self.bearer_role is None:
            action = "text:analyze" if path.endswith("text:analyze") else "text/blocklists"
            raise EmulatorHTTPError(
                403,
                "PermissionDenied",
                "The principal `00000000-0000-0000-0000-000000000000` lacks the required data action "
                f"`Microsoft.CognitiveServices/accounts/ContentSafety/{action}/action` to perform "
                f"`{method} /contentsafety/{action}` operation.",
            )
        if path == "/contentsafety/text:analyze" and method == "POST":
            return EmulatorResponse(200, self._analyze(request.json))
        if path == "/contentsafety/text/blocklists" and method == "GET":
            with self._state_lock:
                return EmulatorResponse(200, {"value": [self._blocklist_json(n) for n in self._blocklists]})
        match = _BLOCKLIST_PATH.match(path)
        if match:
            return self._blocklist_route(method, match.group("name"), match.group("rest"), request.json)
        raise EmulatorHTTPError(404, "NotFound", f"No content safety route for {method} {path}.")

    def _analyze(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise _invalid("The request body must be a JSON object with a 'text' string.")
        text = body["text"]
        if len(text) > MAX_TEXT_LENGTH:
            raise _invalid(f"The text is too long: {len(text)} characters; the maximum is {MAX_TEXT_LENGTH}.")
        output_type = body.get("outputType") or "FourSeverityLevels"
        if output_type not in ("FourSeverityLevels", "EightSeverityLevels"):
            raise _invalid(f"Unsupported outputType '{output_type}'.")
        categories = body.get("categories") or list(CATEGORIES)
        unknown = [c for c in categories if c not in CATEGORIES]
        if unknown:
            raise _invalid(f"Unknown categories {unknown}; supported: {list(CATEGORIES)}.")

        matches = []
        with self._state_lock:
            for name in body.get("blocklistNames") or []:
                for item in self._get_blocklist(name)["items"].values():
                    if _phrase_pattern(item["text"]).search(text):
                        matches.append(
                            {
                                "blocklistName": name,
                                "blocklistItemId": item["blocklistItemId"],
                                "blocklistItemText": item["text"],
                            }
                        )
        if matches and body.get("haltOnBlocklistHit"):
            return {"blocklistsMatch": matches, "categoriesAnalysis": []}

        scores = self.scorer(text)
        analysis = []
        for category in categories:
            severity = max(0, min(7, int(scores.get(category, 0))))
            if output_type == "FourSeverityLevels":
                severity -= severity % 2  # 0-1 -> 0, 2-3 -> 2, 4-5 -> 4, 6-7 -> 6
            analysis.append({"category": category, "severity": severity})
        return {"blocklistsMatch": matches, "categoriesAnalysis": analysis}

    # ---- blocklists ----
    def _get_blocklist(self, name: str) -> dict[str, Any]:
        if name not in self._blocklists:
            raise EmulatorHTTPError(404, "NotFound", f"Blocklist '{name}' was not found.")
        return self._blocklists[name]

    def _blocklist_json(self, name: str) -> dict[str, Any]:
        return {"blocklistName": name, "description": self._blocklists[name]["description"]}

    @staticmethod
    def _upsert_item(blocklist: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        text = item.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 128:
            raise _invalid("Each blocklist item needs a non-empty 'text' of at most 128 characters.")
        existing = next((i for i in blocklist["items"].values() if i["text"] == text), None)
        stored = existing or {"blocklistItemId": str(uuid.uuid4()), "text": text, "description": ""}
        if "description" in item:
            stored["description"] = item["description"] or ""
        blocklist["items"][stored["blocklistItemId"]] = stored
        return dict(stored)

    def _blocklist_route(self, method: str, name: str, rest: str, body: Any) -> EmulatorResponse:
        with self._state_lock:
            if rest == "" and method == "PATCH":
                created = name not in self._blocklists
                blocklist = self._blocklists.setdefault(name, {"description": "", "items": {}})
                if isinstance(body, dict) and "description" in body:
                    blocklist["description"] = body["description"] or ""
                return EmulatorResponse(201 if created else 200, self._blocklist_json(name))
            if rest == "" and method == "GET":
                self._get_blocklist(name)
                return EmulatorResponse(200, self._blocklist_json(name))
            if rest == "" and method == "DELETE":
                self._blocklists.pop(name, None)
                return EmulatorResponse(204, None)
            blocklist = self._get_blocklist(name)
            if rest == ":addOrUpdateBlocklistItems" and method == "POST":
                items = (body or {}).get("blocklistItems") if isinstance(body, dict) else None
                if not isinstance(items, list) or not items:
                    raise _invalid("'blocklistItems' must be a non-empty array.")
                return EmulatorResponse(200, {"blocklistItems": [self._upsert_item(blocklist, i) for i in items]})
            if rest == ":removeBlocklistItems" and method == "POST":
                for item_id in (body or {}).get("blocklistItemIds") or []:
                    blocklist["items"].pop(item_id, None)
                return EmulatorResponse(204, None)
            if rest == "/blocklistItems" and method == "GET":
                return EmulatorResponse(200, {"value": [dict(i) for i in blocklist["items"].values()]})
            if rest.startswith("/blocklistItems/") and method == "GET":
                item = blocklist["items"].get(rest.removeprefix("/blocklistItems/"))
                if item is None:
                    raise EmulatorHTTPError(404, "NotFound", f"Blocklist item not found in '{name}'.")
                return EmulatorResponse(200, dict(item))
        raise EmulatorHTTPError(404, "NotFound", f"No blocklist route for {method} {name}{rest}.")
