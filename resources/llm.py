"""The `llm` resource: one method, `generate(request) -> GenerationResult`, three backends.

- `EmbeddedComposerResource` (default): the deterministic offline composer (lib/composer.py).
- `AzureOpenAIResource`: Azure OpenAI through the official SDK's `AzureOpenAI` client, Responses API; Entra ID
  token (managed identity preferred) or an API key from a named environment variable.
- `OpenAICompatibleResource`: any endpoint speaking the OpenAI Responses API (Ollama, vLLM, llama.cpp server)
  through `OpenAI(base_url=...)`, with the same request code.

The backend is chosen in config/generation.yaml (`backend:`); `llm_resource_from_config` builds it. Remote
backends ask for structured output (`text.format` json_schema) when their `structured_output` flag is set, and
otherwise leave parsing of free text to the caller. Transport failures (429, 5xx, timeouts, dropped
connections) are retried with exponential backoff that honours `Retry-After`; the SDK's own retries are off so
attempts stay bounded.
"""

import json
import os
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr, field_validator, model_validator

from personalization_assets.config import StrictModel
from personalization_assets.embedded.composer import COMPOSER_MODEL, compose_message
from personalization_assets.lib.generation import (
    FormatRules,
    SegmentBrief,
    SourceDocument,
    estimate_tokens,
)
from resources.azure_auth import (
    COGNITIVE_SERVICES_SCOPE,
    AuthMode,
    read_api_key,
    require_secure_endpoint,
    token_credential,
)

BACKEND_EMBEDDED = "embedded"
BACKEND_AZURE = "azure"
BACKEND_OPENAI_COMPATIBLE = "openai_compatible"
CONFIG_FILE = "generation.yaml"


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
    extra: dict[str, Any] = field(default_factory=dict)


# --- Resources ----------------------------------------------------------------------------------------------


class LLMResource(ConfigurableResource):
    """A text-generation service. Subclasses implement `generate` for one backend."""

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
            brief.brief,
            brief.documents,
            brief.tone,
            brief.rules,
            sender=brief.sender,
            feedback=brief.feedback,
        )
        parsed = {"subject": message.subject, "body": message.body, "citations": list(message.citations)}
        text = json.dumps(parsed, ensure_ascii=False)
        prompt_text = request.instructions + "\n" + "\n".join(m.content for m in request.messages)
        return GenerationResult(
            text=text,
            parsed=parsed,
            structured=True,
            input_tokens=estimate_tokens(prompt_text),
            output_tokens=estimate_tokens(message.subject + " " + message.body),
            latency_ms=(time.perf_counter() - started) * 1000,
            model=COMPOSER_MODEL,
            backend=BACKEND_EMBEDDED,
        )


def _retry_after_seconds(error: BaseException | None) -> float | None:
    """Seconds from a `retry-after-ms` or `retry-after` header of the failed response, if any."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(float(value) / divisor, 0.0)
        except ValueError:
            continue  # an HTTP date: fall back to the exponential wait
    return None


def _is_transient(error: BaseException) -> bool:
    import openai

    if isinstance(error, openai.APIConnectionError):  # includes timeouts and dropped connections
        return True
    return isinstance(error, openai.APIStatusError) and (
        error.status_code in (408, 429) or error.status_code >= 500
    )


def _describe(error: BaseException) -> str:
    import openai

    if isinstance(error, openai.APITimeoutError):
        return "the request timed out"
    if isinstance(error, openai.APIConnectionError):
        return f"connection failed ({error.__cause__ or error})"
    if isinstance(error, openai.APIStatusError):
        # The SDK keeps the service's `error` object as `body`; its message is the useful part.
        message = error.body.get("message") if isinstance(error.body, dict) else None
        return f"HTTP {error.status_code}: {message or error.message}"
    return f"{type(error).__name__}: {error}"


class _ResponsesAPIResource(LLMResource):
    """Shared request, retry and parsing code of the OpenAI-SDK backends (Responses API)."""

    structured_output: bool = Field(
        default=True, description="Ask for JSON-schema structured output (text.format); else parse free text."
    )
    ca_bundle_path: str | None = Field(
        default=None,
        description="PEM file of extra CA certificates to trust (private endpoints, test emulators).",
    )
    timeout_seconds: float = Field(default=60.0, gt=0, description="Timeout of one HTTP request.")
    max_attempts: int = Field(default=3, ge=1, description="HTTP attempts per call (429, 5xx, timeouts).")
    retry_wait_min_seconds: float = Field(
        default=2.0, ge=0, description="First backoff wait; doubles per retry."
    )
    retry_wait_max_seconds: float = Field(default=10.0, ge=0, description="Longest exponential backoff wait.")
    retry_after_max_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Longest wait a Retry-After header may ask for (longer asks are capped).",
    )

    _client: Any = PrivateAttr(default=None)
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

    def _http_client(self) -> Any:
        if not self.ca_bundle_path:
            return None
        import openai

        if not Path(self.ca_bundle_path).is_file():
            raise LLMServiceError(
                f"{self.backend_name}: ca_bundle_path {self.ca_bundle_path!r} is not a readable file"
            )
        return openai.DefaultHttpxClient(verify=ssl.create_default_context(cafile=self.ca_bundle_path))

    def client(self) -> Any:
        """The SDK client, built once per resource instance (thread-safe; the client pools connections)."""
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client(self._http_client())
            return self._client

    def warm_up(self) -> None:
        self.client().responses  # noqa: B018 - the SDK imports the resource module on first access

    def _wait_seconds(self, state: Any) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = _retry_after_seconds(error)
        if retry_after is not None:
            return min(retry_after, self.retry_after_max_seconds)
        return min(self.retry_wait_max_seconds, self.retry_wait_min_seconds * 2 ** (state.attempt_number - 1))

    def _create(self, arguments: dict[str, Any]) -> Any:
        import openai
        from tenacity import Retrying, retry_if_exception, stop_after_attempt

        where = f"{self.backend_name} model {self._request_model()!r} at {self._endpoint_label()}"
        client = self.client()
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait_seconds,
            retry=retry_if_exception(_is_transient),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return client.responses.create(**arguments)
        except (openai.APIConnectionError, openai.APIStatusError) as error:
            if _is_transient(error):
                raise LLMServiceError(
                    f"{where}: gave up after {self.max_attempts} attempt(s): {_describe(error)}"
                ) from error
            hint = ""
            if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
                hint = " (check the credentials: auth mode and key variable or identity role assignment)"
            elif isinstance(error, openai.NotFoundError):
                hint = " (check the model/deployment name and the endpoint)"
            elif isinstance(error, openai.BadRequestError) and "text" in arguments:
                hint = (
                    " (if the endpoint lacks structured output, set "
                    f"{self.backend_name}.structured_output: false)"
                )
            raise LLMServiceError(f"{where}: request refused: {_describe(error)}{hint}") from error
        except (ValueError, TypeError) as error:  # body is not JSON / not a Responses object
            raise MalformedResponseError(
                f"{where}: unreadable response ({type(error).__name__}: {error})"
            ) from error
        raise AssertionError("unreachable: tenacity either returns or raises")

    def generate(self, request: GenerationRequest) -> GenerationResult:
        structured = self.structured_output and request.json_schema is not None
        arguments: dict[str, Any] = {
            "model": self._request_model(),
            "instructions": request.instructions,
            "input": [{"role": message.role, "content": message.content} for message in request.messages],
        }
        if request.temperature is not None:
            arguments["temperature"] = request.temperature
        if request.max_output_tokens is not None:
            arguments["max_output_tokens"] = request.max_output_tokens
        if structured:
            arguments["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": request.schema_name,
                    "schema": dict(request.json_schema or {}),
                    "strict": True,
                }
            }
        started = time.perf_counter()
        response = self._create(arguments)
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            text = response.output_text or ""
        except (TypeError, AttributeError) as error:  # e.g. a Chat Completions payload: no `output` list
            raise MalformedResponseError(
                f"{self.backend_name} at {self._endpoint_label()}: the response has no Responses API output "
                f"({type(error).__name__}: {error})"
            ) from error
        parsed = None
        if structured and text:
            try:
                loaded = json.loads(text)
                parsed = loaded if isinstance(loaded, dict) else None
            except json.JSONDecodeError:
                parsed = None  # the caller reports the answer as not valid JSON
        usage = getattr(response, "usage", None)
        prompt_text = request.instructions + "\n" + "\n".join(m.content for m in request.messages)
        return GenerationResult(
            text=text,
            parsed=parsed,
            structured=structured,
            input_tokens=int(getattr(usage, "input_tokens", None) or estimate_tokens(prompt_text)),
            output_tokens=int(getattr(usage, "output_tokens", None) or estimate_tokens(text)),
            latency_ms=latency_ms,
            model=str(getattr(response, "model", None) or self.model_name),
            backend=self.backend_name,
        )


class AzureOpenAIResource(_ResponsesAPIResource):
    """Azure OpenAI Responses API via `openai.AzureOpenAI`; Entra ID token or API key from an env variable."""

    endpoint: str = Field(
        description="https://<resource>.openai.azure.com (HTTP only for loopback emulators)."
    )
    deployment: str = Field(default="gpt-4o-mini", description="Deployment name sent as the request's model.")
    model: str = Field(
        default="gpt-4o-mini", description="Model behind the deployment (for prices and reports)."
    )
    api_version: str = Field(default="2025-04-01-preview", description="Azure OpenAI API version.")
    auth: AuthMode = Field(
        default="managed_identity", description="managed_identity | default_credential | api_key"
    )
    api_key_env: str = Field(
        default="AZURE_OPENAI_API_KEY", description="Env variable holding the key (api_key)."
    )
    managed_identity_client_id: str | None = Field(
        default=None,
        description="Client id of a user-assigned managed identity (system-assigned when unset).",
    )

    @property
    def backend_name(self) -> str:
        return BACKEND_AZURE

    @property
    def model_name(self) -> str:
        return self.model

    def _request_model(self) -> str:
        return self.deployment

    def _endpoint_label(self) -> str:
        return self.endpoint or "(no endpoint)"

    def _make_client(self, http_client: Any) -> Any:
        from openai import AzureOpenAI

        endpoint = require_secure_endpoint(self.endpoint, f"{CONFIG_FILE} azure.endpoint")
        common: dict[str, Any] = {
            "azure_endpoint": endpoint,
            "api_version": self.api_version,
            "max_retries": 0,  # retries are ours (bounded, Retry-After aware)
            "timeout": self.timeout_seconds,
        }
        if http_client is not None:
            common["http_client"] = http_client
        if self.auth == "api_key":
            key = read_api_key(self.api_key_env, f"{CONFIG_FILE} azure.api_key_env")
            return AzureOpenAI(api_key=key, **common)
        from azure.identity import get_bearer_token_provider

        credential = token_credential(self.auth, self.managed_identity_client_id)
        return AzureOpenAI(
            azure_ad_token_provider=get_bearer_token_provider(credential, COGNITIVE_SERVICES_SCOPE), **common
        )


# Local servers (Ollama, llama.cpp) ignore the key, but the SDK refuses to build a client without one.
UNUSED_API_KEY = "unused"


class OpenAICompatibleResource(_ResponsesAPIResource):
    """Any OpenAI-compatible Responses API endpoint via `openai.OpenAI(base_url=...)`."""

    base_url: str = Field(description="Base URL including the API prefix, e.g. http://127.0.0.1:11434/v1.")
    model: str = Field(description="Model name as the server knows it.")
    api_key_env: str = Field(
        default="", description="Env variable holding the key; empty for keyless servers."
    )
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

    def _make_client(self, http_client: Any) -> Any:
        from openai import OpenAI

        base_url = require_secure_endpoint(self.base_url, f"{CONFIG_FILE} openai_compatible.base_url")
        key = (
            read_api_key(self.api_key_env, f"{CONFIG_FILE} openai_compatible.api_key_env")
            if self.api_key_env
            else UNUSED_API_KEY
        )
        arguments: dict[str, Any] = {
            "base_url": base_url,
            "api_key": key,
            "max_retries": 0,
            "timeout": self.timeout_seconds,
        }
        if http_client is not None:
            arguments["http_client"] = http_client
        return OpenAI(**arguments)


# --- Configuration (the backend part of config/generation.yaml) ---------------------------------------------


class RetryConfig(StrictModel):
    attempts: int = Field(default=3, ge=1, le=10, description="HTTP attempts per model call")
    wait_min_seconds: float = Field(default=2.0, ge=0)
    wait_max_seconds: float = Field(default=10.0, ge=0)
    retry_after_max_seconds: float = Field(default=60.0, ge=0)

    @model_validator(mode="after")
    def _bounds_ordered(self) -> "RetryConfig":
        if self.wait_min_seconds > self.wait_max_seconds:
            raise ValueError("wait_min_seconds must not exceed wait_max_seconds")
        return self


class AzureOpenAIConfig(StrictModel):
    endpoint: str = Field(default="", validate_default=True, description="empty: env AZURE_OPENAI_ENDPOINT")
    deployment: str = "gpt-4o-mini"
    model: str = "gpt-4o-mini"
    api_version: str = "2025-04-01-preview"
    auth: AuthMode = "managed_identity"
    api_key_env: str = "AZURE_OPENAI_API_KEY"
    managed_identity_client_id: str | None = None
    structured_output: bool = True
    ca_bundle_path: str | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint_from_environment(cls, value: str) -> str:
        return value or os.environ.get("AZURE_OPENAI_ENDPOINT", "")


class OpenAICompatibleConfig(StrictModel):
    base_url: str = "http://127.0.0.1:11434/v1"
    model: str = "llama3.1:8b"
    api_key_env: str = ""
    structured_output: bool = False
    ca_bundle_path: str | None = None


class LLMBackendsConfig(StrictModel):
    """Backend selection and per-backend settings (extended by the generation stage's config model)."""

    backend: Literal["embedded", "azure", "openai_compatible"] = BACKEND_EMBEDDED
    timeout_seconds: float = Field(default=60.0, gt=0)
    retry: RetryConfig = RetryConfig()
    azure: AzureOpenAIConfig = Field(default_factory=AzureOpenAIConfig)  # factory: reads the env at load time
    openai_compatible: OpenAICompatibleConfig = OpenAICompatibleConfig()


def llm_resource_from_config(config: LLMBackendsConfig) -> LLMResource:
    """The resource for `config.backend`, from that backend's section and the shared retry settings."""
    if config.backend == BACKEND_EMBEDDED:
        return EmbeddedComposerResource()
    transport = {
        "timeout_seconds": config.timeout_seconds,
        "max_attempts": config.retry.attempts,
        "retry_wait_min_seconds": config.retry.wait_min_seconds,
        "retry_wait_max_seconds": config.retry.wait_max_seconds,
        "retry_after_max_seconds": config.retry.retry_after_max_seconds,
    }
    if config.backend == BACKEND_AZURE:
        return AzureOpenAIResource(**config.azure.model_dump(), **transport)
    return OpenAICompatibleResource(**config.openai_compatible.model_dump(), **transport)
