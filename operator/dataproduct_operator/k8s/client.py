"""The operator's asynchronous Kubernetes client (layer ``k8s``).

One aiohttp session with a bounded connection pool; JSON in and out; server-side apply under
one field manager. Object paths come from a small table of the kinds the operator manages, so no
discovery round trip is needed per call. Errors are :class:`ApiError` with the server's message.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from dataproduct_operator.constants import FIELD_MANAGER
from dataproduct_operator.k8s.kubeconfig import Connection, load_connection
from dataproduct_operator.k8s.resources import object_path
from dataproduct_operator.k8s.rest import (
    APPLY_PATCH,
    JSON,
    MERGE_PATCH,
    ApiError,
    decode_response,
    ssl_context,
)

Page = list[dict[str, Any]]  # a page of a collection's items
IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
IN_CLUSTER_CA = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")


def load_environment_connection(kubeconfig: Path | None = None) -> Connection:
    """The explicit kubeconfig, else $KUBECONFIG or ~/.kube/config, else in-cluster."""
    if kubeconfig is not None:
        return load_connection(kubeconfig)
    if os.environ.get("KUBERNETES_SERVICE_HOST") and IN_CLUSTER_TOKEN.is_file():
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        server_host = f"[{host}]" if ":" in host else host
        return Connection(
            server=f"https://{server_host}:{port}",
            ca_pem=IN_CLUSTER_CA.read_bytes(),
            token=IN_CLUSTER_TOKEN.read_text().strip(),
        )
    path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"
    return load_connection(Path(path).expanduser())


class KubeClient:
    """Async JSON requests to one API server as one identity."""

    def __init__(self, connection: Connection, *, max_connections: int = 16) -> None:
        self.connection = connection
        self._ssl: ssl.SSLContext = ssl_context(connection)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._streams: aiohttp.ClientSession | None = None
        self._headers = {"Accept": JSON}
        if connection.token:
            self._headers["Authorization"] = f"Bearer {connection.token}"

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self._max_connections)
            self._session = aiohttp.ClientSession(
                base_url=self.connection.server,
                connector=connector,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=60),
            )
        return self._session

    async def close(self) -> None:
        for session in (self._session, self._streams):
            if session is not None:
                await session.close()
        self._session = self._streams = None

    async def stream(
        self, path: str, *, params: dict[str, str], accept: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """The JSON lines of a long request (a watch), as they come.

        On connections of their own, unbounded in number and without a total timeout: a watch
        holds its connection for minutes, and must not starve the requests of the pool.
        """
        if self._streams is None or self._streams.closed:
            self._streams = aiohttp.ClientSession(
                base_url=self.connection.server,
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=0),
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            )
        headers = None if accept is None else {"Accept": accept}
        async with self._streams.get(path, params=params, headers=headers) as response:
            if response.status >= 400:
                decode_response(response.status, await response.text())
            async for line in response.content:
                if line.strip():
                    event: dict[str, Any] = json.loads(line)
                    yield event

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = JSON,
        params: dict[str, str] | None = None,
        accept: str | None = None,
    ) -> Any:
        """One request; the decoded answer or :class:`ApiError`."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if body is not None else {}
        if accept is not None:
            headers["Accept"] = accept
        async with self._client_session().request(
            method, path, data=data, headers=headers, params=params
        ) as response:
            return decode_response(response.status, await response.text())

    async def get(self, path: str, *, not_older_than: str | None = None) -> dict[str, Any] | None:
        """The object, or None when it does not exist.

        With ``not_older_than`` (a resourceVersion; "0" for any) the API server answers from its
        watch cache, at a fraction of the cost of a read from etcd, with the object as of that
        version or later.
        """
        params = None if not_older_than is None else {"resourceVersion": not_older_than}
        try:
            result: dict[str, Any] = await self.request("GET", path, params=params)
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        return result

    async def list(self, path: str, *, label_selector: str | None = None) -> list[dict[str, Any]]:
        """Every item of a collection (following continue tokens), with kind filled in."""
        return [
            item async for page in self.pages(path, label_selector=label_selector) for item in page
        ]

    async def pages(
        self, path: str, *, label_selector: str | None = None, limit: int = 500
    ) -> AsyncIterator[Page]:
        """The items of a collection ``limit`` at a time, with kind filled in."""
        params: dict[str, str] = {"limit": str(limit)}
        if label_selector:
            params["labelSelector"] = label_selector
        while True:
            page = await self.request("GET", path, params=params)
            kind = page.get("kind", "").removesuffix("List")
            items = page.get("items") or []
            for item in items:
                item.setdefault("kind", kind)
                item.setdefault("apiVersion", page.get("apiVersion"))
            yield items
            token = page.get("metadata", {}).get("continue")
            if not token:
                return
            params["continue"] = token

    async def apply(self, obj: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply under the operator's field manager."""
        params = {"fieldManager": FIELD_MANAGER, "force": "true" if force else "false"}
        result: dict[str, Any] = await self.request(
            "PATCH", object_path(obj), obj, content_type=APPLY_PATCH, params=params
        )
        return result

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "PATCH", path, body, content_type=MERGE_PATCH, params={"fieldManager": FIELD_MANAGER}
        )
        return result

    async def delete(self, path: str, *, uid: str | None = None) -> bool:
        """Delete in the background; False when it was already gone.

        With ``uid`` the server deletes only that exact object (a precondition), never a
        namesake created since.
        """
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", path, body)
        except ApiError as error:
            if error.status in (404, 409):
                return False
            raise
        return True

    async def has_kind(self, group_version: str, kind: str) -> bool:
        """Whether the API server serves a kind (discovery of one group version)."""
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        try:
            listing = await self.request("GET", prefix)
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return any(r.get("kind") == kind for r in listing.get("resources", []))


async def gather_limited(limit: int, *coroutines: Any) -> list[Any]:
    """Run coroutines with at most ``limit`` at a time; results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(coroutine: Any) -> Any:
        async with semaphore:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines))
