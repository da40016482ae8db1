"""A small synchronous JSON client for the Kubernetes API (layer ``k8s``).

Used where a blocking call is the natural fit: bootstrapping the local control plane and the
test fixtures. It keeps one HTTPS connection alive and reconnects once if the server closed it.
Not thread-safe: use one client per thread.
"""

from __future__ import annotations

import http.client
import json
import ssl
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from dataproduct_operator.k8s.kubeconfig import Connection, load_connection

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class ApiError(Exception):
    """The API server answered with an error status; ``message`` is its own explanation."""

    def __init__(self, status: int, reason: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body


def decode_response(status: int, text: str) -> Any:
    """The decoded JSON answer, or :class:`ApiError` carrying the server's own message."""
    try:
        decoded: Any = json.loads(text) if text else None
    except ValueError:
        decoded = text  # e.g. "404 page not found" from the router
    if status >= 400:
        if isinstance(decoded, dict):
            reason, message = str(decoded.get("reason", "")), str(decoded.get("message", ""))
            raise ApiError(status, reason, message, decoded)
        raise ApiError(status, "", str(decoded), decoded)
    return decoded


def ssl_context(connection: Connection) -> ssl.SSLContext:
    """A TLS context that trusts the cluster CA and presents the client certificate, if any."""
    context = ssl.create_default_context(cadata=connection.ca_pem.decode())
    if connection.client_cert_pem is not None and connection.client_key_pem is not None:
        # The ssl module loads client credentials from files only.
        with tempfile.TemporaryDirectory(prefix="dpo-tls-") as directory:
            cert, key = Path(directory) / "tls.crt", Path(directory) / "tls.key"
            cert.write_bytes(connection.client_cert_pem)
            key.touch(mode=0o600)
            key.write_bytes(connection.client_key_pem)
            context.load_cert_chain(cert, key)
    return context


class RestClient:
    """Blocking JSON requests against one API server as one identity."""

    def __init__(self, connection: Connection, *, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(connection.server)
        if parsed.scheme != "https" or parsed.hostname is None:
            raise ValueError(f"Only https API servers are supported, got {connection.server}")
        self.connection = connection
        self._host = parsed.hostname
        self._port = parsed.port or 443
        self._timeout = timeout
        self._context = ssl_context(connection)
        self._http: http.client.HTTPSConnection | None = None

    @classmethod
    def from_kubeconfig(cls, path: Path, *, timeout: float = 30.0) -> RestClient:
        return cls(load_connection(path), timeout=timeout)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _connect(self) -> http.client.HTTPSConnection:
        if self._http is None:
            self._http = http.client.HTTPSConnection(
                self._host, self._port, context=self._context, timeout=self._timeout
            )
        return self._http

    def raw(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str = JSON,
        query: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; return the status and body. Retries once on a dropped connection."""
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        headers = {"Accept": JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        if self.connection.token:
            headers["Authorization"] = f"Bearer {self.connection.token}"
        for attempt in (1, 2):
            http_connection = self._connect()
            try:
                http_connection.request(method, path, body=body, headers=headers)
                response = http_connection.getresponse()
                return response.status, response.read()
            except (
                http.client.RemoteDisconnected,
                BrokenPipeError,
                ConnectionResetError,
                ssl.SSLEOFError,  # the server closed an idle kept-alive connection
            ):
                self.close()
                if attempt == 2:
                    raise
            except OSError:
                self.close()
                raise
        raise AssertionError("unreachable")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = JSON,
        query: dict[str, str] | None = None,
    ) -> Any:
        """Send a JSON request; return the decoded answer or raise :class:`ApiError`."""
        payload = None if body is None else json.dumps(body).encode()
        status, data = self.raw(method, path, payload, content_type=content_type, query=query)
        return decode_response(status, data.decode(errors="replace"))

    def get(self, path: str, *, query: dict[str, str] | None = None) -> Any:
        return self.request("GET", path, query=query)

    def create(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def create_if_missing(self, path: str, body: Any) -> None:
        """Create the object; one that exists already is left as it is."""
        try:
            self.create(path, body)
        except ApiError as error:
            if error.status != 409:
                raise

    def replace(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def merge_patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body, content_type=MERGE_PATCH)

    def apply(self, path: str, body: Any, *, field_manager: str, force: bool = True) -> Any:
        """Server-side apply (JSON is valid YAML, so the body is sent as JSON)."""
        query = {"fieldManager": field_manager, "force": "true" if force else "false"}
        return self.request("PATCH", path, body, content_type=APPLY_PATCH, query=query)

    def delete(self, path: str, body: Any = None) -> Any:
        return self.request("DELETE", path, body)

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return True
