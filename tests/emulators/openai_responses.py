"""OpenAI Responses API emulator for the openai SDK (3.57): ``OpenAI(base_url=...)`` and ``AzureOpenAI(...)``.

Routes (``POST``), as the services serve them: ``/v1/responses`` (OpenAI-compatible servers,
``OpenAI(base_url=emu.endpoint + "/v1")``); Azure's v1 route ``/openai/v1/responses``
(``OpenAI(base_url=emu.endpoint + "/openai/v1/")``); Azure's legacy dated route ``/openai/responses`` and
``/openai/deployments/<name>/responses``, which need ``?api-version=`` (``AzureOpenAI(azure_endpoint=...,
api_version=...)``; missing: 404, not in ``api_versions``: 400). Any other path is 404 (e.g. the
``/openai/v1/openai/responses`` of an endpoint that already ended in /openai/v1). Auth: ``api-key`` header
(Azure key), ``Authorization: Bearer <api_key>`` (OpenAI-compatible) or ``Authorization: Bearer <token>``
(Entra ID); otherwise 401.

Answers that are not a message, as the services send them: a responder returns ``Refusal("...")`` (a
``refusal`` content part, status completed) or ``Incomplete("max_output_tokens" | "content_filter", text)``
(status ``incomplete`` with ``incomplete_details``), or raises ``PromptFiltered("jailbreak" | "indirect_attack" |
"hate" ...)`` for Azure's content-filter 400 on the prompt (code ``content_filter``, innererror
``ResponsibleAIPolicyViolation`` with ``content_filter_result``). ``reasoning_models={"o4-mini"}`` makes
requests for those models with ``temperature`` or ``top_p`` fail with 400, as reasoning deployments do.

The answer text comes from ``emu.responder(request_json) -> str`` (replace it per test). The default responder
returns JSON satisfying ``text.format.schema`` when the request asks for ``json_schema`` structured output
(strings, integers, lists with one item, first enum value), else a short deterministic free-text answer
quoting the start of the last user message. ``supports_structured_output=False`` makes json_schema requests
fail with 400, like a deployment without that feature. ``models={"gpt-x"}`` restricts accepted
model/deployment names (404 otherwise). Usage counts tokens as ceil(words * 1.3). Prompts are in
``emu.requests[i].json``.

    def test_prompt(openai_emulator):
        openai_emulator.responder = lambda body: "Hello!"
        client = OpenAI(base_url=openai_emulator.endpoint + "/v1", api_key=openai_emulator.api_key)
        assert client.responses.create(model="gpt-4.1-mini", input="hi").output_text == "Hello!"
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import EmulatorHTTPError, EmulatorResponse, EmulatorServer, RecordedRequest


@dataclass(frozen=True)
class Refusal:
    """The model declines: one ``refusal`` content part instead of ``output_text``."""

    refusal: str = "I'm sorry, but I can't help with that request."


@dataclass(frozen=True)
class Incomplete:
    """Status ``incomplete``: ``incomplete_details.reason`` and the text written before the stop (may be empty)."""

    reason: str = "max_output_tokens"
    text: str = ""


class PromptFiltered(Exception):
    """Raised by a responder: Azure's content filter refuses the prompt (HTTP 400, code content_filter)."""

    def __init__(self, *categories: str):
        super().__init__(", ".join(categories))
        self.categories = categories or ("indirect_attack",)


Answer = str | Refusal | Incomplete
Responder = Callable[[dict[str, Any]], Answer]
SEVERITY_CATEGORIES = ("hate", "self_harm", "sexual", "violence")
DETECTION_CATEGORIES = ("jailbreak", "indirect_attack")
CONTENT_FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please "
    "modify your prompt and retry. To learn more about our content filtering policies please read our "
    "documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)


def content_filter_error(categories: tuple[str, ...]) -> dict[str, Any]:
    """Azure OpenAI's 400 body for a prompt refused by the content filter (the triggered categories filtered)."""
    result: dict[str, Any] = {
        name: {"filtered": name in categories, "severity": "high" if name in categories else "safe"}
        for name in SEVERITY_CATEGORIES
    }
    for name in DETECTION_CATEGORIES:
        if name == "jailbreak" or name in categories:
            result[name] = {"filtered": name in categories, "detected": name in categories}
    return {
        "error": {
            "message": CONTENT_FILTER_MESSAGE,
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": result},
        }
    }


TOKENS_PER_WORD = 1.3
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
}


def count_tokens(text: str) -> int:
    """Rough token estimate used for ``usage``: ceil(words * 1.3)."""
    return math.ceil(len(text.split()) * TOKENS_PER_WORD)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict) and "text" in part)
    return ""


def request_text(body: dict[str, Any]) -> str:
    """All prompt text of a Responses request: instructions plus every input message, in order."""
    parts = [body["instructions"]] if isinstance(body.get("instructions"), str) else []
    items = body.get("input")
    if isinstance(items, str):
        parts.append(items)
    elif isinstance(items, list):
        parts.extend(_content_text(item.get("content")) for item in items if isinstance(item, dict))
    return "\n".join(p for p in parts if p)


def last_user_text(body: dict[str, Any]) -> str:
    items = body.get("input")
    if isinstance(items, str):
        return items
    user_items = [i for i in items or [] if isinstance(i, dict) and i.get("role", "user") == "user"]
    return _content_text(user_items[-1].get("content")) if user_items else ""


def json_schema_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """The ``text.format`` object when the request asks for json_schema structured output."""
    text_format = (body.get("text") or {}).get("format") or {}
    return text_format if text_format.get("type") == "json_schema" else None


def example_for_schema(schema: dict[str, Any], root: dict[str, Any] | None = None, name: str = "value") -> Any:
    """A simple instance satisfying ``schema`` (objects get every property, as strict mode requires)."""
    root = root if root is not None else schema
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return example_for_schema(target, root, name)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator):
            options = [o for o in schema[combinator] if o.get("type") != "null"] or schema[combinator]
            return example_for_schema(options[0], root, name)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {key: example_for_schema(sub, root, key) for key, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        count = min(max(int(schema.get("minItems", 1)), 1), int(schema.get("maxItems", 10**6)))
        return [example_for_schema(schema.get("items") or {}, root, name) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1))
    if kind == "number":
        return float(schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = f"sample {name}"
    return text.ljust(int(schema.get("minLength", 0)), "x")[: int(schema.get("maxLength", 10**6))]


def default_responder(body: dict[str, Any]) -> str:
    text_format = json_schema_format(body)
    if text_format is not None:
        return json.dumps(example_for_schema(text_format.get("schema") or {}))
    if ((body.get("text") or {}).get("format") or {}).get("type") == "json_object":
        return json.dumps({"answer": "sample answer"})
    words = last_user_text(body).split()
    quoted = " ".join(words[:12]) + (" ..." if len(words) > 12 else "")
    return f"Emulated answer to: {quoted}"


# /v1/responses (OpenAI-compatible), /openai/v1/responses (Azure v1), /openai[/deployments/<name>]/responses.
ROUTES = re.compile(r"/v1/responses|/openai/v1/responses|/openai(/deployments/[^/]+)?/responses")


class OpenAIResponsesEmulator(EmulatorServer):
    """Responses API endpoint (see module docstring)."""

    service_name = "openai"
    key_header = "api-key"
    bearer_accepts_api_key = True

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        supports_structured_output: bool = True,
        models: set[str] | None = None,
        reasoning_models: set[str] = frozenset(),  # type: ignore[assignment]
        api_versions: set[str] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.responder: Responder = responder or default_responder
        self.supports_structured_output = supports_structured_output
        self.models = models
        self.reasoning_models = set(reasoning_models)
        self.api_versions = api_versions  # dated versions the legacy route accepts (None: any)

    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        return {
            "error": {
                "message": message,
                "type": _ERROR_TYPES.get(status, "api_error"),
                "param": None,
                "code": "invalid_api_key" if status == 401 else code,
            }
        }

    def empty_body(self, request: RecordedRequest) -> Any:
        return self._response_json(request.json or {}, None)

    def wrong_schema_body(self, request: RecordedRequest) -> Any:
        # A Chat Completions payload where a Responses object was expected (wrong API surface behind a proxy).
        return {
            "id": "chatcmpl-emulator",
            "object": "chat.completion",
            "model": "emulator",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "wrong shape"}}],
        }

    def _check_route(self, request: RecordedRequest) -> None:
        path = request.path.rstrip("/")
        if request.method != "POST" or not ROUTES.fullmatch(path):
            raise EmulatorHTTPError(404, "404", "Resource not found")
        if path.startswith("/openai/") and not path.startswith("/openai/v1/"):  # the legacy, dated route
            version = request.query.get("api-version")
            if not version:
                raise EmulatorHTTPError(404, "404", "Resource not found")
            if self.api_versions is not None and version not in self.api_versions:
                raise EmulatorHTTPError(400, "BadRequest", "API version not supported")

    def handle(self, request: RecordedRequest) -> EmulatorResponse:
        self._check_route(request)
        body = request.json
        if not isinstance(body, dict):
            raise EmulatorHTTPError(400, "invalid_json", "The request body must be a JSON object.")
        for required in ("model", "input"):
            if not body.get(required):
                raise EmulatorHTTPError(400, "missing_required_parameter", f"Missing required parameter: '{required}'.")
        if self.models is not None and body["model"] not in self.models:
            raise EmulatorHTTPError(
                404, "DeploymentNotFound", f"The API deployment for model '{body['model']}' does not exist."
            )
        if body.get("stream"):
            raise EmulatorHTTPError(400, "unsupported_parameter", "Streaming is not supported by the emulator.")
        if json_schema_format(body) is not None and not self.supports_structured_output:
            raise EmulatorHTTPError(
                400,
                "unsupported_parameter",
                "Invalid parameter: 'text.format' of type 'json_schema' is not supported with this model.",
            )
        if body["model"] in self.reasoning_models:
            for parameter in ("temperature", "top_p"):
                if parameter in body:
                    raise EmulatorHTTPError(
                        400,
                        "unsupported_parameter",
                        f"Unsupported parameter: '{parameter}' is not supported with this model.",
                    )
        try:
            answer = self.responder(body)
        except PromptFiltered as filtered:
            return EmulatorResponse(400, content_filter_error(filtered.categories))
        return EmulatorResponse(200, self._response_json(body, answer))

    def _response_json(self, body: dict[str, Any], answer: Answer | None) -> dict[str, Any]:
        now = int(time.time())
        status, incomplete, text = "completed", None, ""
        if isinstance(answer, Refusal):
            content = [{"type": "refusal", "refusal": answer.refusal}]
        elif isinstance(answer, Incomplete):
            status, incomplete, text = "incomplete", {"reason": answer.reason}, answer.text
            content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text else []
        else:
            text = answer or ""
            content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        output: list[dict[str, Any]] = []
        if body.get("reasoning"):
            output.append({"type": "reasoning", "id": f"rs_{uuid.uuid4().hex}", "summary": []})
        if answer is not None and content:
            output.append(
                {
                    "type": "message",
                    "id": f"msg_{uuid.uuid4().hex}",
                    "status": status,
                    "role": "assistant",
                    "content": content,
                }
            )
        input_tokens = count_tokens(request_text(body))
        output_tokens = count_tokens(text)
        if incomplete is not None and incomplete["reason"] == "max_output_tokens":
            output_tokens = int(body.get("max_output_tokens") or output_tokens)  # the budget was spent
        return {
            "id": f"resp_{uuid.uuid4().hex}",
            "object": "response",
            "created_at": now,
            "completed_at": now if status == "completed" else None,
            "status": status,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body.get("model", "emulator"),
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
            "store": bool(body.get("store", True)),
            "temperature": None if body.get("reasoning") else body.get("temperature", 1.0),
            "top_p": None if body.get("reasoning") else body.get("top_p", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "truncation": "disabled",
            "metadata": body.get("metadata") or {},
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            },
        }
