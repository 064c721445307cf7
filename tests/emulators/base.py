"""Threaded HTTP(S) server core shared by the Azure service emulators.

An emulator is a real HTTP server on 127.0.0.1 (free port) that the official SDK clients talk to over the
network, so tests exercise the SDKs' own serialization, auth policies, retry policies and error mapping.

    with SearchEmulator(api_key="k") as emu:          # or the `search_emulator` pytest fixture
        client = SearchClient(emu.endpoint, "idx", AzureKeyCredential(emu.api_key))
        emu.inject("429", times=2, retry_after=0.1)   # next two matching requests answer 429
        ...
        assert emu.request_count(path_contains="search.post.search") == 3

Auth: a request passes if it carries the configured key in the service's key header (``api-key`` or
``Ocp-Apim-Subscription-Key``) or ``Authorization: Bearer <token>``; otherwise 401 in the service's error
shape. Setting both ``api_key`` and ``token`` to None disables auth. ``tls=True`` serves HTTPS with a
certificate issued by a test CA (trustme); pass ``ca_bundle_path`` to the client (azure-core
``connection_verify=path``, openai ``http_client=httpx2.Client(verify=emu.ssl_context())``). azure-core only
sends bearer tokens over https.

Faults (see ``FAULT_KINDS``) are consumed in injection order by authenticated requests whose path contains
``path_contains`` (all paths when None) and whose raw body contains ``body_contains`` (any body when None);
``times=None`` keeps a fault forever. ``latency_seconds`` delays
every answer (benchmarks: "LLM answering after a fixed 2 s").
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socket
import ssl
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

log = logging.getLogger(__name__)

FAULT_KINDS = ("429", "500", "503", "timeout", "truncated", "malformed", "wrong_schema", "empty", "slow")
DEFAULT_API_KEY = "emulator-test-key"
# Same token the emulated managed-identity endpoint (tests/emulators/identity.py) issues, so
# ManagedIdentityCredential -> emulator works with defaults.
DEFAULT_TOKEN = "emulated-entra-token"
HOST = "127.0.0.1"


@dataclass
class RecordedRequest:
    """One request as the emulator received it (headers keyed in lower case)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    fault: str | None = None
    status: int | None = None

    @property
    def auth_scheme(self) -> str | None:
        """Which credential kind was sent: 'bearer', the key header name, or None."""
        if self.headers.get("authorization", "").lower().startswith("bearer "):
            return "bearer"
        for header in ("api-key", "ocp-apim-subscription-key"):
            if header in self.headers:
                return header
        return None


@dataclass
class EmulatorResponse:
    """What a route answers: JSON-serialisable body (or raw bytes/str), status and extra headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    def encoded_body(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


class EmulatorHTTPError(Exception):
    """Raised by routes to answer with the service's error JSON."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass
class Fault:
    kind: str
    times: int | None
    retry_after: float
    seconds: float
    path_contains: str | None
    full_length: bool
    body_contains: str | None = None

    def matches(self, path: str, body: bytes = b"") -> bool:
        return (self.path_contains is None or self.path_contains in path) and (
            self.body_contains is None or self.body_contains.encode() in body
        )


_tls_lock = threading.Lock()
_tls_material: tuple[Any, Path] | None = None  # (trustme.LeafCert, CA bundle path), shared per process


def _tls_files() -> tuple[Any, Path]:
    """One test CA + server cert (127.0.0.1, localhost) per process: key generation is the slow part."""
    global _tls_material
    with _tls_lock:
        if _tls_material is None:
            import trustme

            ca = trustme.CA()
            leaf = ca.issue_cert("127.0.0.1", "localhost")
            bundle = Path(tempfile.mkdtemp(prefix="emulator-ca-")) / "ca.pem"
            ca.cert_pem.write_to_path(str(bundle))
            _tls_material = (leaf, bundle)
        return _tls_material


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # the clients call with bounded concurrency; don't refuse bursts

    allow_reuse_address = True  # standalone use on a fixed port can restart immediately

    def __init__(self, emulator: EmulatorServer, ssl_context: ssl.SSLContext | None, port: int = 0):
        self.emulator = emulator
        self.ssl_context = ssl_context
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__((HOST, port), _Handler)

    def finish_request(self, request, client_address):
        # TLS handshake in the worker thread, so a slow or failing handshake never blocks accept().
        try:
            if self.ssl_context is not None:
                request = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        with self.connections_lock:
            self.open_connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self.connections_lock:
                self.open_connections.discard(request)

    def handle_error(self, request, client_address):
        # Clients dropping connections (timeouts, truncation tests) are expected; keep test output clean.
        log.debug("connection error from %s:\n%s", client_address, traceback.format_exc())

    def drop_open_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.open_connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect
    # Headers and body go out in two writes; with Nagle's algorithm the body waits for the client's delayed
    # ACK of the headers (~40 ms per answer on Linux keep-alive connections).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        self.server.emulator._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class EmulatorServer:
    """Base emulator: lifecycle, auth, fault injection, request log. Subclasses implement ``handle``."""

    service_name = "emulator"
    key_header = "api-key"
    bearer_accepts_api_key = False  # OpenAI-compatible endpoints take the key as a bearer token

    def __init__(
        self,
        *,
        api_key: str | None = DEFAULT_API_KEY,
        token: str | None = DEFAULT_TOKEN,
        tls: bool = False,
        latency_seconds: float = 0.0,
        port: int = 0,
    ):
        self.api_key = api_key
        self.token = token
        self.tls = tls
        self.latency_seconds = latency_seconds
        self._requested_port = port
        self._faults: list[Fault] = []
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        # Requests waiting out `latency_seconds` at the same time, now and at most: shows concurrency without a clock.
        self._in_flight = 0
        self.max_in_flight = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.ca_bundle_path: str | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> EmulatorServer:
        if self._server is not None:
            return self
        ssl_context = None
        if self.tls:
            leaf, bundle = _tls_files()
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            leaf.configure_cert(ssl_context)
            self.ca_bundle_path = str(bundle)
        self._stopping.clear()
        self._server = _Server(self, ssl_context, self._requested_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"{self.service_name}-emulator",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in latency/timeout/slow faults
        self._server.shutdown()
        self._server.drop_open_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.service_name} emulator is not running: call start() first")
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://{HOST}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        """Client-side context trusting the emulator CA (for httpx2 ``verify=``)."""
        if self.ca_bundle_path is None:
            raise RuntimeError(f"{self.service_name} emulator was started without tls=True")
        return ssl.create_default_context(cafile=self.ca_bundle_path)

    # ---- test controls ---------------------------------------------------------------------------------
    def inject(
        self,
        kind: str,
        *,
        times: int | None = 1,
        retry_after: float = 1.0,
        seconds: float = 2.0,
        path_contains: str | None = None,
        full_length: bool = True,
        body_contains: str | None = None,
    ) -> None:
        """Queue a fault for the next ``times`` matching requests (None = forever).

        ``retry_after``: Retry-After seconds for "429". ``seconds``: hold time for "timeout" (then the
        connection is dropped) and delay for "slow". ``full_length`` for "truncated": announce the full
        Content-Length and drop the connection mid-body (True), or send a short but complete HTTP body
        (False). ``body_contains``: only requests whose raw body contains this text (one screened text, say).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 or None (forever), got {times}")
        with self._lock:
            self._faults.append(Fault(kind, times, retry_after, seconds, path_contains, full_length, body_contains))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget faults, the request log and stored service state; keep credentials and latency."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()
        self.reset_state()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def request_count(self, *, path_contains: str | None = None, method: str | None = None) -> int:
        return len(self.requests_matching(path_contains=path_contains, method=method))

    def requests_matching(
        self, *, path_contains: str | None = None, method: str | None = None
    ) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if (path_contains is None or path_contains in r.path) and (method is None or r.method == method)
        ]

    # ---- subclass hooks --------------------------------------------------------------------------------
    def handle(self, request: RecordedRequest) -> EmulatorResponse:
        raise NotImplementedError

    def reset_state(self) -> None:
        """Drop stored service state (indexes, blocklists, ...)."""

    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        return {"error": {"code": code, "message": message}}

    def empty_body(self, request: RecordedRequest) -> Any:
        return {}

    def wrong_schema_body(self, request: RecordedRequest) -> Any:
        return {"unexpected": "shape", "items": "not-a-list"}

    # ---- request handling ------------------------------------------------------------------------------
    def _authenticated(self, request: RecordedRequest) -> bool:
        if self.api_key is None and self.token is None:
            return True
        sent_key = request.headers.get(self.key_header.lower())
        if self.api_key is not None and sent_key is not None and hmac.compare_digest(sent_key, self.api_key):
            return True
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            bearer = authorization[7:].strip()
            accepted = [self.token] + ([self.api_key] if self.bearer_accepts_api_key else [])
            return any(value is not None and hmac.compare_digest(bearer, value) for value in accepted)
        return False

    def _next_fault(self, path: str, body: bytes = b"") -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if not fault.matches(path, body):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        del self._faults[index]
                return fault
        return None

    def _error_response(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        return EmulatorResponse(status, self.error_body(status, code, message), dict(headers or {}))

    def _serve(self, handler: _Handler) -> None:
        body = handler.read_body()
        url = urlsplit(handler.path)
        try:
            parsed_json = json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            parsed_json = None
        request = RecordedRequest(
            method=handler.command,
            path=unquote(url.path),
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            json=parsed_json,
        )
        with self._lock:
            self._requests.append(request)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.latency_seconds > 0 and self._stopping.wait(self.latency_seconds):
                return self._drop(handler)
        finally:
            with self._lock:
                self._in_flight -= 1

        if not self._authenticated(request):
            response = self._error_response(
                401, "Unauthorized", f"Access denied: missing or invalid credentials for {self.service_name}."
            )
            return self._send(handler, request, response)

        fault = self._next_fault(request.path, body)
        request.fault = fault.kind if fault else None
        if fault is None or fault.kind == "slow":
            if fault is not None and self._stopping.wait(fault.seconds):
                return self._drop(handler)
            return self._send(handler, request, self._routed(request))
        if fault.kind == "429":
            retry_headers = {
                "Retry-After": f"{fault.retry_after:g}",
                "retry-after-ms": str(int(fault.retry_after * 1000)),
            }
            return self._send(
                handler,
                request,
                self._error_response(
                    429, "TooManyRequests", "Rate limit exceeded (emulated). Retry later.", retry_headers
                ),
            )
        if fault.kind in ("500", "503"):
            status = int(fault.kind)
            code = "InternalServerError" if status == 500 else "ServiceUnavailable"
            return self._send(handler, request, self._error_response(status, code, f"Emulated {status} fault."))
        if fault.kind == "timeout":
            self._stopping.wait(fault.seconds)
            return self._drop(handler)
        if fault.kind == "truncated":
            return self._send_truncated(handler, request, self._routed(request), fault.full_length)
        if fault.kind == "malformed":
            return self._send(handler, request, EmulatorResponse(200, "<html><body>upstream proxy error</body>"))
        if fault.kind == "wrong_schema":
            return self._send(handler, request, EmulatorResponse(200, self.wrong_schema_body(request)))
        if fault.kind == "empty":
            return self._send(handler, request, EmulatorResponse(200, self.empty_body(request)))
        raise AssertionError(f"unhandled fault kind {fault.kind}")

    def _routed(self, request: RecordedRequest) -> EmulatorResponse:
        try:
            return self.handle(request)
        except EmulatorHTTPError as exc:
            return self._error_response(exc.status, exc.code, exc.message, exc.headers)
        except Exception as exc:  # an emulator bug must surface loudly, not as a silent hang
            traceback.print_exc()
            return self._error_response(500, "EmulatorBug", f"{type(exc).__name__}: {exc}")

    def _headers(self, handler: _Handler, response: EmulatorResponse, length: int) -> None:
        handler.send_response(response.status)
        if response.status != 204:
            handler.send_header("Content-Type", response.content_type)
        handler.send_header("Content-Length", str(length))
        handler.send_header("x-ms-request-id", f"emulator-{time.monotonic_ns()}")
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.end_headers()

    def _send(self, handler: _Handler, request: RecordedRequest, response: EmulatorResponse) -> None:
        request.status = response.status
        payload = response.encoded_body()
        self._headers(handler, response, len(payload))
        if handler.command != "HEAD":
            handler.wfile.write(payload)

    def _send_truncated(
        self, handler: _Handler, request: RecordedRequest, response: EmulatorResponse, full_length: bool
    ) -> None:
        request.status = response.status
        payload = response.encoded_body()
        cut = payload[: max(1, len(payload) // 2)]
        self._headers(handler, response, len(payload) if full_length else len(cut))
        handler.wfile.write(cut)
        if full_length:
            self._drop(handler)

    def _drop(self, handler: _Handler) -> None:
        """Close the connection without (the rest of) an answer."""
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.wfile.flush()
            handler.connection.shutdown(socket.SHUT_RDWR)
