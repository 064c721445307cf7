"""HTTP emulators of Azure AI Search, the OpenAI Responses API and Azure AI Content Safety, for tests.

Each emulator is a real threaded HTTP(S) server on 127.0.0.1 that the official SDK clients call, so tests
cover the SDKs' serialization, auth, retry and error handling rather than mocks of our own code. Use the
pytest fixtures from ``tests.emulators.fixtures`` (registered in tests/conftest.py), e.g. ``search_emulator``
or ``openai_emulator_tls``, or run one standalone: ``python -m tests.emulators openai --port 8001 --latency
2``. See ``base.py`` for auth, TLS, fault injection and the request log.
"""

from .base import FAULT_KINDS, EmulatorHTTPError, EmulatorResponse, EmulatorServer, RecordedRequest
from .content_safety import ContentSafetyEmulator
from .credentials import COGNITIVE_SCOPE, SEARCH_SCOPE, StaticTokenCredential
from .openai_responses import OpenAIResponsesEmulator, default_responder, example_for_schema, request_text
from .search import SearchEmulator

__all__ = [
    "COGNITIVE_SCOPE",
    "FAULT_KINDS",
    "SEARCH_SCOPE",
    "ContentSafetyEmulator",
    "EmulatorHTTPError",
    "EmulatorResponse",
    "EmulatorServer",
    "OpenAIResponsesEmulator",
    "RecordedRequest",
    "SearchEmulator",
    "StaticTokenCredential",
    "default_responder",
    "example_for_schema",
    "request_text",
]
