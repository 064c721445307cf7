"""An emulated managed-identity token endpoint (the App Service / Functions flavour).

azure-identity's ManagedIdentityCredential (and DefaultAzureCredential) read IDENTITY_ENDPOINT and IDENTITY_HEADER
from the environment and GET a token from that endpoint. Pointing those variables at this server lets the tests run
the real Entra ID code path of every Azure resource offline: the SDK asks for a token, gets `token`, and sends it
as `Authorization: Bearer ...` to the service emulators.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

# Environment variables of other azure-identity flows (service principal, workload identity, Cloud Shell MSI,
# Service Fabric) that would take precedence over IDENTITY_ENDPOINT or change how it is called.
COMPETING_VARIABLES = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IDENTITY_SERVER_THUMBPRINT",
)


class ManagedIdentityEndpoint:
    def __init__(self, token: str = "emulated-entra-token", secret_header: str = "emulated-identity-header"):
        self.token = token
        self.secret_header = secret_header
        self.requested_resources: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                if self.headers.get("X-IDENTITY-HEADER") != owner.secret_header:
                    self.send_response(401)
                    self.end_headers()
                    return
                query = parse_qs(urlparse(self.path).query)
                resource = (query.get("resource") or [""])[0]
                owner.requested_resources.append(resource)
                body = json.dumps(
                    {
                        "access_token": owner.token,
                        "expires_on": str(int(time.time()) + 3600),
                        "resource": resource,
                        "token_type": "Bearer",
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}/msi/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def route(self, monkeypatch) -> None:
        """Point azure-identity at this endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER), clearing the variables
        of the credentials it would otherwise try first or instead."""
        for name in COMPETING_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("IDENTITY_ENDPOINT", self.endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", self.secret_header)

    def __enter__(self) -> "ManagedIdentityEndpoint":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
