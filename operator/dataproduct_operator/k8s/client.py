"""The operator's asynchronous Kubernetes client (layer ``k8s``).

The one implementation of requests to the API server; :mod:`.blocking` is a thin blocking
facade over it. One aiohttp session with a bounded connection pool; JSON in and out; server-side
apply under one field manager. Object paths come from a small table of the kinds the operator
manages, so no discovery round trip is needed per call. Errors are :class:`ApiError` with the
server's message. Who the requests are sent as comes from :class:`Credentials` (the
``kubernetes`` package's loader); a 401 makes it load them again, and the request is sent once
more. Extra headers (kubectl's ``--as`` and ``--as-group``: ``Impersonate-User``,
``Impersonate-Group``) go with every request when given.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp

from dataproduct_operator.constants import FIELD_MANAGER
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.k8s.resources import object_path, resource_of
from dataproduct_operator.k8s.rest import (
    APPLY_PATCH,
    JSON,
    MERGE_PATCH,
    ApiError,
    decode_response,
)

Page = list[dict[str, Any]]  # a page of a collection's items
Headers = tuple[tuple[str, str], ...]  # a name may repeat (several Impersonate-Group)
CONNECT_SECONDS = 30.0
UNAUTHORIZED = 401


class KubeClient:
    """Async JSON requests to one API server as one identity."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        max_connections: int = 16,
        timeout: float = 60.0,
        headers: Headers = (),
    ) -> None:
        self.credentials = credentials
        self._headers = (("Accept", JSON), *headers)
        self._max_connections = max_connections
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._streams: aiohttp.ClientSession | None = None

    @classmethod
    def from_environment(
        cls, kubeconfig: Path | None = None, *, context: str | None = None, **options: Any
    ) -> KubeClient:
        """A client with :meth:`Credentials.from_environment` (blocking: it may run an exec
        plugin; from a running event loop, build the credentials in a thread)."""
        return cls(Credentials.from_environment(kubeconfig, context=context), **options)

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                base_url=self.credentials.server,
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        return self._session

    async def close(self) -> None:
        for session in (self._session, self._streams):
            if session is not None:
                await session.close()
        self._session = self._streams = None

    async def _open(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        headers: dict[str, str],
        **options: Any,
    ) -> aiohttp.ClientResponse:
        """The response to one request as the current identity (``headers`` gets its
        Authorization); after a 401, to the same request once more with the credentials
        loaded again, when that gave something new to try."""
        credentials = self.credentials
        if credentials.due():
            await credentials.refresh_if_due()
        for attempt in (1, 2):
            authorization = credentials.authorization
            if authorization is not None:
                headers["Authorization"] = authorization
            response = await session.request(
                method,
                path,
                headers=headers,
                ssl=credentials.ssl_context,
                server_hostname=credentials.server_hostname,
                **options,
            )
            if response.status != UNAUTHORIZED or attempt == 2:
                return response
            if not await credentials.refresh(rejected=authorization):
                return response
            response.release()
        raise AssertionError("unreachable")

    async def _send(
        self,
        method: str,
        path: str,
        data: bytes | str | None,
        headers: dict[str, str],
        params: Mapping[str, str] | None,
        *,
        text: bool,
    ) -> tuple[int, Any]:
        """The status and the body (text, or bytes) of one request."""
        session = self._client_session()
        async with await self._open(
            session, method, path, headers, data=data, params=params
        ) as response:
            return response.status, await (response.text() if text else response.read())

    async def raw(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        *,
        content_type: str = JSON,
        params: dict[str, str] | None = None,
        accept: str | None = None,
    ) -> tuple[int, bytes]:
        """One request with a body as it is; the status and the body as they came (health
        endpoints, metrics)."""
        headers = {"Content-Type": content_type} if data is not None else {}
        if accept is not None:
            headers["Accept"] = accept
        status, body = await self._send(method, path, data, headers, params, text=False)
        return status, body

    async def stream(
        self,
        path: str,
        *,
        params: dict[str, str],
        accept: str | None = None,
        read_timeout: float | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """The JSON lines of a long request (a watch), as they come.

        On connections of their own, unbounded in number and without a total timeout: a watch
        holds its connection for minutes, and must not starve the requests of the pool. With
        ``read_timeout``, :class:`TimeoutError` when nothing at all comes for that long (a
        connection that went silent: a watch with bookmarks hears from the server every
        minute).
        """
        if self._streams is None or self._streams.closed:
            self._streams = aiohttp.ClientSession(
                base_url=self.credentials.server,
                connector=aiohttp.TCPConnector(limit=0),
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_SECONDS),
            )
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_SECONDS, sock_read=read_timeout
        )
        headers = {} if accept is None else {"Accept": accept}
        async with await self._open(
            self._streams, "GET", path, headers, params=params, timeout=timeout
        ) as response:
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
        status, text = await self._send(method, path, data, headers, params, text=True)
        return decode_response(status, text)

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

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create (POST) under the operator's field manager: for an object whose creation
        needs only ``create`` where a server-side apply would also need ``patch``."""
        metadata = obj["metadata"]
        collection = resource_of(obj["apiVersion"], obj["kind"]).path(metadata.get("namespace"))
        result: dict[str, Any] = await self.request(
            "POST", collection, obj, params={"fieldManager": FIELD_MANAGER}
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
