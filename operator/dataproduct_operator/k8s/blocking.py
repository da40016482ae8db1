"""Blocking calls to the API server, for code that is naturally sequential (layer ``k8s``).

Bootstrapping the local control plane, ``dpo dev``, ``dpo export``, the test fixtures and the
benchmarks' setup. A thin facade over the one client, :class:`KubeClient`: it owns a private
event loop in a background thread and runs the client's coroutines there, so a blocking call
works from any thread, even one whose own event loop is running. Errors are the client's
(:class:`ApiError` with the server's message); a connection failure is an :class:`OSError`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from dataproduct_operator.k8s.client import Headers, KubeClient
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.k8s.kubeconfig import Connection
from dataproduct_operator.k8s.rest import APPLY_PATCH, JSON, MERGE_PATCH, ApiError

T = TypeVar("T")


class BlockingClient:
    """Blocking JSON requests against one API server as one identity."""

    def __init__(
        self, credentials: Credentials, *, timeout: float = 30.0, headers: Headers = ()
    ) -> None:
        self.credentials = credentials
        self._client = KubeClient(credentials, max_connections=8, timeout=timeout, headers=headers)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="kube-blocking", daemon=True)
        self._thread.start()

    @classmethod
    def from_kubeconfig(
        cls, path: Path, *, context: str | None = None, timeout: float = 30.0
    ) -> BlockingClient:
        return cls(Credentials.from_kubeconfig(path, context=context), timeout=timeout)

    @classmethod
    def from_connection(cls, connection: Connection, *, timeout: float = 30.0) -> BlockingClient:
        return cls(Credentials.from_connection(connection), timeout=timeout)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._client.close())
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if not self._thread.is_alive():
            coroutine.close()
            raise RuntimeError("The client is closed")
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()
        except aiohttp.ClientError as error:
            if isinstance(error, OSError):
                raise
            # e.g. the server closed the connection: callers see the connection failure they
            # know, not the transport library's type.
            raise ConnectionError(f"{type(error).__name__}: {error}") from error

    def raw(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str = JSON,
        query: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; return the status and body as they came."""
        return self._run(
            self._client.raw(method, path, body, content_type=content_type, params=query)
        )

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
        return self._run(
            self._client.request(method, path, body, content_type=content_type, params=query)
        )

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
