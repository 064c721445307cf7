"""The `llm` resource: one method, `generate(request) -> GenerationResult`, three backends.

- `EmbeddedComposerResource` (default): the deterministic offline composer (embedded/composer.py).
- `AzureOpenAIResource`: Azure OpenAI, Responses API, through the official openai SDK: the v1 route
  (`<endpoint>/openai/v1/responses`, `api_version: v1`, the default) with `openai.OpenAI`, or a dated
  `api-version` on the legacy route with `openai.AzureOpenAI`. Entra ID token (managed identity preferred) or an
  API key from a named environment variable.
- `OpenAICompatibleResource`: any endpoint speaking the OpenAI Responses API (Ollama, vLLM, llama.cpp server)
  through `OpenAI(base_url=...)`, with the same request code.

config/generation.yaml's `azure:` and `openai_compatible:` sections validate straight into these classes
(personalization_assets/config/generation.py); `backend:` picks one. Remote backends ask for structured output
(`text.format` json_schema) when `structured_output` is set, send `store: false` unless `store` is set, and
leave transport retries (429, 5xx, timeouts, dropped connections; `Retry-After` honoured) to the SDK's own
`max_retries`. Answers that are not a message are results, not errors: a refusal, an incomplete answer
(`max_output_tokens`, `content_filter`) or a prompt blocked by Azure's content filter (400 `content_filter`)
come back with `stop` set and the reason, so the caller rejects that one variant without asking again.
"""

import json
import re
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dagster import ConfigurableResource, EnvVar
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from personalization_assets.embedded.composer import COMPOSER_MODEL, compose_message
from personalization_assets.lib.generation import (
    FormatRules,
    SegmentBrief,
    SourceDocument,
    estimate_tokens,
)
from resources.azure_auth import (
    COGNITIVE_SERVICES_SCOPE,
    ENV_VAR_NAME,
    AuthMode,
    MissingCredentialError,
    require_secure_endpoint,
    token_credential,
)

BACKEND_EMBEDDED = "embedded"
BACKEND_AZURE = "azure"
BACKEND_OPENAI_COMPATIBLE = "openai_compatible"
CONFIG_FILE = "generation.yaml"
ENV_AZURE_OPENAI_ENDPOINT = "AZURE_OPENAI_ENDPOINT"

# Why an answer is not a usable message (GenerationResult.stop); "" for a completed answer.
STOP_REFUSAL = "refusal"  # the model answered with a `refusal` content part
STOP_INCOMPLETE = "incomplete"  # status "incomplete": incomplete_details.reason max_output_tokens / content_filter
STOP_CONTENT_FILTER = "content_filter"  # Azure refused the prompt (400, code content_filter)

# `v1`: the /openai/v1/ route (no dated version). Else a dated version for the legacy /openai/... route.
API_VERSION = re.compile(r"v1|\d{4}-\d{2}-\d{2}(-preview)?")
REASONING_EFFORTS = ("low", "medium", "high")


class LLMServiceError(RuntimeError):
    """The model service refused the request or kept failing after the configured retries."""


class MalformedResponseError(RuntimeError):
    """The service answered, but not with a readable Responses API object (proxy error page, wrong API)."""


# --- Request and result -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class ComposerBrief:
    """The structured facts behind a prompt, for the embedded composer (models read the rendered prompt)."""

    brief: SegmentBrief
    documents: tuple[SourceDocument, ...]
    tone: str
    rules: FormatRules
    sender: str
    feedback: tuple[str, ...] = ()


@dataclass(frozen=True)
class GenerationRequest:
    instructions: str
    messages: tuple[ChatMessage, ...]
    json_schema: Mapping[str, Any] | None = None  # used when the backend supports structured output
    schema_name: str = "message_variant"
    temperature: float | None = None
    max_output_tokens: int | None = None
    composer_brief: ComposerBrief | None = None

    def parameters(self) -> dict[str, Any]:
        """Everything besides the prompt that changes the answer (part of the response-cache key)."""
        return {
            "json_schema": self.json_schema,
            "schema_name": self.schema_name,
            "temperature": self.temperature,
            "max_output_tokens": self.max_output_tokens,
        }


@dataclass(frozen=True)
class GenerationResult:
    text: str
    parsed: dict[str, Any] | None  # the JSON object, when structured output was used and is valid JSON
    structured: bool
    input_tokens: int
    output_tokens: int
    latency_ms: float
    model: str
    backend: str
    cached: bool = False
    stop: str = ""  # STOP_REFUSAL | STOP_INCOMPLETE | STOP_CONTENT_FILTER; "" when the answer is complete
    stop_detail: str = ""  # the refusal text, the incomplete reason, the filter's categories
    extra: dict[str, Any] = field(default_factory=dict)


# --- Resources ----------------------------------------------------------------------------------------------


class LLMResource(ConfigurableResource):
    """A text-generation service. Subclasses implement `generate` for one backend."""

    # A misspelt key in generation.yaml's backend section is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")

    @property
    def backend_name(self) -> str:
        raise NotImplementedError

    @property
    def model_name(self) -> str:
        raise NotImplementedError

    @property
    def supports_structured_output(self) -> bool:
        raise NotImplementedError

    @property
    def cacheable(self) -> bool:
        """Whether answers are worth storing in the response cache (remote, paid calls are)."""
        return True

    def warm_up(self) -> None:
        """Prepare the client before concurrent calls (SDK import, credentials); a no-op by default."""

    def generate(self, request: GenerationRequest) -> GenerationResult:
        raise NotImplementedError


class EmbeddedComposerResource(LLMResource):
    """Offline, deterministic message composer; needs `request.composer_brief`. Costs nothing.

    Token counts are estimates (1.3 per word of prompt and answer), reported so runs are comparable in size.
    """

    @property
    def backend_name(self) -> str:
        return BACKEND_EMBEDDED

    @property
    def model_name(self) -> str:
        return COMPOSER_MODEL

    @property
    def supports_structured_output(self) -> bool:
        return True

    @property
    def cacheable(self) -> bool:
        return False  # local and deterministic: recomputing is as cheap as a cache lookup

    def generate(self, request: GenerationRequest) -> GenerationResult:
        brief = request.composer_brief
        if brief is None:
            raise ValueError("the embedded composer needs request.composer_brief (segment, documents, tone)")
        started = time.perf_counter()
        message = compose_message(
            brief.brief, brief.documents, brief.tone, brief.rules, sender=brief.sender, feedback=brief.feedback
        )
        parsed = {"subject": message.subject, "body": message.body, "citations": list(message.citations)}
        prompt_text = request.instructions + "\n" + "\n".join(m.content for m in request.messages)
        return GenerationResult(
            text=json.dumps(parsed, ensure_ascii=False),
            parsed=parsed,
            structured=True,
            input_tokens=estimate_tokens(prompt_text),
            output_tokens=estimate_tokens(message.subject + " " + message.body),
            latency_ms=(time.perf_counter() - started) * 1000,
            model=COMPOSER_MODEL,
            backend=BACKEND_EMBEDDED,
        )


def _is_transient(error: BaseException) -> bool:
    import openai

    if isinstance(error, openai.APIConnectionError):  # includes timeouts and dropped connections
        return True
    return isinstance(error, openai.APIStatusError) and (
        error.status_code in (408, 409, 429) or error.status_code >= 500
    )


def _error_object(error: Any) -> dict[str, Any]:
    # The SDK keeps the service's `error` object as `body`.
    return error.body if isinstance(getattr(error, "body", None), dict) else {}


def _describe(error: BaseException) -> str:
    import openai

    if isinstance(error, openai.APITimeoutError):
        return "the request timed out"
    if isinstance(error, openai.APIConnectionError):
        return f"connection failed ({error.__cause__ or error})"
    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}: {_error_object(error).get('message') or error.message}"
    return f"{type(error).__name__}: {error}"


def content_filter_reason(error: BaseException) -> str | None:
    """Azure's content-filter refusal of a prompt (400, code `content_filter`, innererror
    `ResponsibleAIPolicyViolation` with `content_filter_result`), described by its triggered categories."""
    import openai

    if not isinstance(error, openai.BadRequestError):
        return None
    body = _error_object(error)
    inner: dict[str, Any] = body["innererror"] if isinstance(body.get("innererror"), dict) else {}
    if body.get("code") != "content_filter" and inner.get("code") != "ResponsibleAIPolicyViolation":
        return None
    results = inner.get("content_filter_result") or inner.get("content_filter_results") or {}
    triggered = []
    for category, result in results.items() if isinstance(results, dict) else ():
        if isinstance(result, dict) and (result.get("filtered") or result.get("detected")):
            severity = result.get("severity")
            triggered.append(f"{category} ({severity})" if severity else f"{category} detected")
    return "categories: " + (", ".join(triggered) if triggered else "not stated")


def _refusals(output: list[Any]) -> list[str]:
    """The text of every `refusal` content part of the response's message items."""
    found = []
    for item in output:
        for part in getattr(item, "content", None) or []:
            if getattr(part, "type", None) == "refusal":
                found.append(str(getattr(part, "refusal", "") or ""))
    return found


class _ResponsesAPIResource(LLMResource):
    """Shared request and parsing code of the OpenAI-SDK backends (Responses API)."""

    structured_output: bool = Field(
        default=True, description="Ask for JSON-schema structured output (text.format); else parse free text."
    )
    ca_bundle_path: str | None = Field(
        default=None,
        description="PEM file of extra CA certificates to trust (private endpoints, test emulators).",
    )
    timeout_seconds: float = Field(default=60.0, gt=0, description="Timeout of one HTTP request.")
    max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="The SDK's retries of 408/409/429/5xx, timeouts and dropped connections (Retry-After "
        "honoured, else exponential backoff from 0.5 s to 8 s).",
    )
    store: bool = Field(default=False, description="Let the service keep requests and answers (Responses API `store`).")
    reasoning_effort: str | None = Field(
        default=None,
        description="low | medium | high for reasoning models (o-series, gpt-5): sends reasoning.effort and no "
        "temperature; null for other models.",
    )

    @field_validator("reasoning_effort")
    @classmethod
    def _known_effort(cls, value: str | None) -> str | None:
        if value is not None and value not in REASONING_EFFORTS:
            raise ValueError(f"reasoning_effort must be one of {', '.join(REASONING_EFFORTS)} or null, got {value!r}")
        return value

    _client: Any = PrivateAttr(default=None)
    _extra_headers: dict[str, Any] = PrivateAttr(default_factory=dict)  # per-request headers set with the client
    _client_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def supports_structured_output(self) -> bool:
        return self.structured_output

    # Subclass hooks.
    def _make_client(self, http_client: Any) -> Any:
        raise NotImplementedError

    def _request_model(self) -> str:
        return self.model_name

    def _endpoint_label(self) -> str:
        raise NotImplementedError

    def _credential_hint(self) -> str:
        return "check the credentials"

    def _read_key(self, env_var: str, setting: str) -> str:
        """The API key from the environment variable `env_var` (read via dagster.EnvVar; never shown)."""
        if not env_var:
            raise MissingCredentialError(f"{setting} is not set: auth is api_key but no environment variable is named")
        if not ENV_VAR_NAME.fullmatch(env_var):
            # Most likely the key itself was pasted here: never repeat it.
            raise MissingCredentialError(
                f"{setting} must name an environment variable (letters, digits, underscores), not hold the key: "
                "put the key in an environment variable and name that variable here"
            )
        value = (EnvVar(env_var).get_value() or "").strip()
        if not value:
            raise MissingCredentialError(
                f"environment variable {env_var} (named by {setting}) is not set or empty: the API key for the "
                f"selected {self.backend_name} backend is required"
            )
        return value

    def _http_client(self) -> Any:
        if not self.ca_bundle_path:
            return None
        import openai

        if not Path(self.ca_bundle_path).is_file():
            raise LLMServiceError(f"{self.backend_name}: ca_bundle_path {self.ca_bundle_path!r} is not a readable file")
        return openai.DefaultHttpxClient(verify=ssl.create_default_context(cafile=self.ca_bundle_path))

    def _client_options(self, http_client: Any) -> dict[str, Any]:
        options: dict[str, Any] = {"max_retries": self.max_retries, "timeout": self.timeout_seconds}
        if http_client is not None:
            options["http_client"] = http_client
        return options

    def client(self) -> Any:
        """The SDK client, built once per resource instance (thread-safe; the client pools connections)."""
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client(self._http_client())
            return self._client

    def warm_up(self) -> None:
        self.client().responses  # noqa: B018 - the SDK imports the resource module on first access

    def request_arguments(self, request: GenerationRequest) -> dict[str, Any]:
        """The Responses API request body for `request`."""
        arguments: dict[str, Any] = {
            "model": self._request_model(),
            "instructions": request.instructions,
            "input": [{"role": message.role, "content": message.content} for message in request.messages],
            "store": self.store,
        }
        if self.reasoning_effort is not None:  # reasoning models reject temperature and top_p
            arguments["reasoning"] = {"effort": self.reasoning_effort}
        elif request.temperature is not None:
            arguments["temperature"] = request.temperature
        if request.max_output_tokens is not None:
            arguments["max_output_tokens"] = request.max_output_tokens
        if self.structured_output and request.json_schema is not None:
            arguments["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": request.schema_name,
                    "schema": dict(request.json_schema),
                    "strict": True,
                }
            }
        return arguments

    def _refused(self, error: BaseException, arguments: dict[str, Any]) -> LLMServiceError:
        import openai

        where = f"{self.backend_name} model {self._request_model()!r} at {self._endpoint_label()}"
        if _is_transient(error):
            return LLMServiceError(f"{where}: gave up after {self.max_retries + 1} attempt(s): {_describe(error)}")
        hint = ""
        if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
            hint = f" ({self._credential_hint()})"
        elif isinstance(error, openai.NotFoundError):
            hint = " (check the model/deployment name and the endpoint)"
        elif isinstance(error, openai.BadRequestError) and "text" in arguments:
            body = _error_object(error)
            if "text" in str(body.get("param") or "") or "json_schema" in str(body.get("message") or ""):
                hint = f" (if the endpoint lacks structured output, set {self.backend_name}.structured_output: false)"
        return LLMServiceError(f"{where}: request refused: {_describe(error)}{hint}")

    def generate(self, request: GenerationRequest) -> GenerationResult:
        import openai

        arguments = self.request_arguments(request)
        structured = "text" in arguments
        prompt_text = request.instructions + "\n" + "\n".join(m.content for m in request.messages)
        client = self.client()  # configuration errors (endpoint, key) surface here, as themselves
        started = time.perf_counter()
        try:
            response = client.responses.create(**arguments, extra_headers=self._extra_headers or None)
        except (openai.APIConnectionError, openai.APIStatusError) as error:
            reason = content_filter_reason(error)
            if reason is None:
                raise self._refused(error, arguments) from error
            return GenerationResult(
                text="",
                parsed=None,
                structured=structured,
                input_tokens=0,
                output_tokens=0,
                latency_ms=(time.perf_counter() - started) * 1000,
                model=self.model_name,
                backend=self.backend_name,
                stop=STOP_CONTENT_FILTER,
                stop_detail=reason,
            )
        except (ValueError, TypeError) as error:  # body is not JSON / not a Responses object
            where = f"{self.backend_name} at {self._endpoint_label()}"
            raise MalformedResponseError(f"{where}: unreadable response ({type(error).__name__}: {error})") from error
        latency_ms = (time.perf_counter() - started) * 1000
        output = getattr(response, "output", None)
        if not isinstance(output, list):  # e.g. a Chat Completions payload: no `output` list
            raise MalformedResponseError(
                f"{self.backend_name} at {self._endpoint_label()}: the response has no Responses API output"
            )
        status = getattr(response, "status", None)
        if status == "failed":
            failure = getattr(response, "error", None)
            raise LLMServiceError(
                f"{self.backend_name} at {self._endpoint_label()}: the response failed "
                f"({getattr(failure, 'code', None)}: {getattr(failure, 'message', None)})"
            )
        text = response.output_text or ""
        stop, stop_detail = "", ""
        refusals = _refusals(output)
        if refusals:
            stop, stop_detail = STOP_REFUSAL, " ".join(refusals)
        elif status == "incomplete":
            details = getattr(response, "incomplete_details", None)
            stop, stop_detail = STOP_INCOMPLETE, str(getattr(details, "reason", None) or "not stated")
        parsed = None
        if structured and text and not stop:
            try:
                loaded = json.loads(text)
                parsed = loaded if isinstance(loaded, dict) else None
            except json.JSONDecodeError:
                parsed = None  # the caller reports the answer as not valid JSON
        usage = getattr(response, "usage", None)
        return GenerationResult(
            text=text,
            parsed=parsed,
            structured=structured,
            input_tokens=int(getattr(usage, "input_tokens", None) or estimate_tokens(prompt_text)),
            output_tokens=int(getattr(usage, "output_tokens", None) or estimate_tokens(text)),
            latency_ms=latency_ms,
            model=str(getattr(response, "model", None) or self.model_name),
            backend=self.backend_name,
            stop=stop,
            stop_detail=stop_detail,
        )


def normalize_azure_endpoint(endpoint: str) -> str:
    """`https://x.openai.azure.com`, also when given with a trailing slash or ending in /openai or /openai/v1."""
    endpoint = endpoint.strip().rstrip("/")
    for suffix in ("/openai/v1", "/openai"):
        if endpoint.lower().endswith(suffix):
            return endpoint[: -len(suffix)]
    return endpoint


class AzureOpenAIResource(_ResponsesAPIResource):
    """Azure OpenAI Responses API; Entra ID token or API key from an environment variable.

    `api_version: v1` (default) calls `<endpoint>/openai/v1/responses` with `openai.OpenAI`; a dated version
    (e.g. 2025-04-01-preview) calls the legacy `<endpoint>/openai/responses?api-version=...` with
    `openai.AzureOpenAI`. The key is sent in the `api-key` header; a token as `Authorization: Bearer`.
    """

    endpoint: str = Field(
        default="",
        validate_default=True,
        description="https://<resource>.openai.azure.com (a trailing /openai or /openai/v1 is accepted); empty: "
        "env AZURE_OPENAI_ENDPOINT. HTTP only for loopback emulators.",
    )
    deployment: str = Field(default="gpt-4o-mini", description="Deployment name sent as the request's model.")
    model: str = Field(default="gpt-4o-mini", description="Model behind the deployment (for prices and reports).")
    api_version: str = Field(
        default="v1", description="v1 (the /openai/v1/ route) or a dated version for the legacy route."
    )
    auth: AuthMode = Field(default="managed_identity", description="managed_identity | default_credential | api_key")
    api_key_env: str = Field(default="AZURE_OPENAI_API_KEY", description="Env variable holding the key (api_key).")
    managed_identity_client_id: str | None = Field(
        default=None,
        description="Client id of a user-assigned managed identity (system-assigned when unset).",
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint_from_environment(cls, value: str) -> str:
        return normalize_azure_endpoint(value or EnvVar(ENV_AZURE_OPENAI_ENDPOINT).get_value() or "")

    @field_validator("api_version")
    @classmethod
    def _known_api_version_form(cls, value: str) -> str:
        if not API_VERSION.fullmatch(value):
            raise ValueError(
                f"api_version must be v1 (the /openai/v1/ route) or a dated version like 2025-04-01-preview, "
                f"got {value!r}"
            )
        return value

    @property
    def backend_name(self) -> str:
        return BACKEND_AZURE

    @property
    def model_name(self) -> str:
        return self.model

    @property
    def route(self) -> str:
        """The Responses route this resource calls (for messages and metadata)."""
        if self.api_version == "v1":
            return f"{self.endpoint}/openai/v1/responses"
        return f"{self.endpoint}/openai/responses?api-version={self.api_version}"

    def _request_model(self) -> str:
        return self.deployment

    def _endpoint_label(self) -> str:
        return self.endpoint or "(no endpoint)"

    def _credential_hint(self) -> str:
        if self.auth == "api_key":
            return f"check the credentials: the key in {self.api_key_env} (generation.yaml azure.api_key_env)"
        return (
            f"check the credentials: the {self.auth} identity needs the 'Cognitive Services OpenAI User' role "
            "on the Azure OpenAI resource (generation.yaml azure.auth)"
        )

    def validate_endpoint(self) -> str:
        return require_secure_endpoint(self.endpoint, f"{CONFIG_FILE} azure.endpoint")

    def _make_client(self, http_client: Any) -> Any:
        import openai

        endpoint = self.validate_endpoint()
        options = self._client_options(http_client)
        if self.auth == "api_key":
            key = self._read_key(self.api_key_env, f"{CONFIG_FILE} azure.api_key_env")
            if self.api_version == "v1":
                # Azure's key header; the SDK's own `Authorization: Bearer <api_key>` is left out.
                self._extra_headers = {"api-key": key, "Authorization": openai.Omit()}
                return openai.OpenAI(base_url=f"{endpoint}/openai/v1/", api_key=key, **options)
            return openai.AzureOpenAI(azure_endpoint=endpoint, api_version=self.api_version, api_key=key, **options)
        from azure.identity import get_bearer_token_provider

        provider = get_bearer_token_provider(
            token_credential(self.auth, self.managed_identity_client_id), COGNITIVE_SERVICES_SCOPE
        )
        if self.api_version == "v1":
            return openai.OpenAI(base_url=f"{endpoint}/openai/v1/", api_key=provider, **options)
        return openai.AzureOpenAI(
            azure_endpoint=endpoint, api_version=self.api_version, azure_ad_token_provider=provider, **options
        )


# Local servers (Ollama, llama.cpp) ignore the key, but the SDK refuses to build a client without one.
UNUSED_API_KEY = "unused"


class OpenAICompatibleResource(_ResponsesAPIResource):
    """Any OpenAI-compatible Responses API endpoint via `openai.OpenAI(base_url=...)`."""

    base_url: str = Field(
        default="http://127.0.0.1:11434/v1",
        description="Base URL including the API prefix, e.g. http://127.0.0.1:11434/v1.",
    )
    model: str = Field(default="llama3.1:8b", description="Model name as the server knows it.")
    api_key_env: str = Field(default="", description="Env variable holding the key; empty for keyless servers.")
    structured_output: bool = Field(
        default=False, description="Ask for JSON-schema structured output (only if the server supports it)."
    )

    @property
    def backend_name(self) -> str:
        return BACKEND_OPENAI_COMPATIBLE

    @property
    def model_name(self) -> str:
        return self.model

    def _endpoint_label(self) -> str:
        return self.base_url or "(no base_url)"

    def _credential_hint(self) -> str:
        key = self.api_key_env or "(no key variable)"
        return f"check the credentials: the key in {key} (generation.yaml openai_compatible.api_key_env)"

    def validate_endpoint(self) -> str:
        return require_secure_endpoint(self.base_url, f"{CONFIG_FILE} openai_compatible.base_url")

    def _make_client(self, http_client: Any) -> Any:
        from openai import OpenAI

        base_url = self.validate_endpoint()
        key = (
            self._read_key(self.api_key_env, f"{CONFIG_FILE} openai_compatible.api_key_env")
            if self.api_key_env
            else UNUSED_API_KEY
        )
        return OpenAI(base_url=base_url, api_key=key, **self._client_options(http_client))
