"""OpenAI Responses API emulator for the openai SDK (3.57): ``OpenAI(base_url=...)`` and ``AzureOpenAI(...)``.

Any ``POST`` whose path ends in ``/responses`` is answered, which covers ``OpenAI(base_url=emu.endpoint +
"/v1")`` (``/v1/responses``), ``AzureOpenAI(azure_endpoint=emu.endpoint, api_version=...)``
(``/openai/responses?api-version=``, also with ``azure_deployment``) and the Azure v1 surface
(``/openai/v1/responses``). Auth: ``api-key`` header (Azure key), ``Authorization: Bearer <api_key>``
(OpenAI-compatible) or ``Authorization: Bearer <token>`` (Entra ID).

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
import time
import uuid
from collections.abc import Callable
from typing import Any

from .base import EmulatorHTTPError, EmulatorResponse, EmulatorServer, RecordedRequest

Responder = Callable[[dict[str, Any]], str]
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
        return "\n".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict) and "text" in part
        )
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


def example_for_schema(
    schema: dict[str, Any], root: dict[str, Any] | None = None, name: str = "value"
) -> Any:
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
        return {
            key: example_for_schema(sub, root, key) for key, sub in (schema.get("properties") or {}).items()
        }
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
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.responder: Responder = responder or default_responder
        self.supports_structured_output = supports_structured_output
        self.models = models

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

    def handle(self, request: RecordedRequest) -> EmulatorResponse:
        if request.method != "POST" or not request.path.rstrip("/").endswith("/responses"):
            raise EmulatorHTTPError(404, "not_found", f"No route for {request.method} {request.path}.")
        body = request.json
        if not isinstance(body, dict):
            raise EmulatorHTTPError(400, "invalid_json", "The request body must be a JSON object.")
        for required in ("model", "input"):
            if not body.get(required):
                raise EmulatorHTTPError(
                    400, "missing_required_parameter", f"Missing required parameter: '{required}'."
                )
        if self.models is not None and body["model"] not in self.models:
            raise EmulatorHTTPError(
                404, "DeploymentNotFound", f"The API deployment for model '{body['model']}' does not exist."
            )
        if body.get("stream"):
            raise EmulatorHTTPError(
                400, "unsupported_parameter", "Streaming is not supported by the emulator."
            )
        if json_schema_format(body) is not None and not self.supports_structured_output:
            raise EmulatorHTTPError(
                400,
                "unsupported_parameter",
                "Invalid parameter: 'text.format' of type 'json_schema' is not supported with this model.",
            )
        return EmulatorResponse(200, self._response_json(body, self.responder(body)))

    def _response_json(self, body: dict[str, Any], answer: str | None) -> dict[str, Any]:
        now = int(time.time())
        output = (
            []
            if answer is None
            else [
                {
                    "type": "message",
                    "id": f"msg_{uuid.uuid4().hex}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": answer, "annotations": [], "logprobs": []}],
                }
            ]
        )
        input_tokens = count_tokens(request_text(body))
        output_tokens = count_tokens(answer or "")
        return {
            "id": f"resp_{uuid.uuid4().hex}",
            "object": "response",
            "created_at": now,
            "completed_at": now,
            "status": "completed",
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body.get("model", "emulator"),
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": body.get("temperature", 1.0),
            "top_p": body.get("top_p", 1.0),
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
