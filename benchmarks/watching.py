"""What the benchmark waits for, kept current by a watch instead of polling lists.

Listing a thousand products twice a second would cost the API server more than the operator
it measures (products are large, and encoded as JSON for every list); a watch costs it one
event per change, encoded once for every watcher. One background thread runs the watch and
keeps, per object, only the few fields the benchmark asks about.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.k8s.rest import ApiError

Key = tuple[str, str]  # namespace, name
Summary = Callable[[dict[str, Any]], Any]  # an object -> what is kept of it
RELIST_SECONDS = 1.0


class WatchedCollection:
    """``summary(obj)`` of every object of a cluster-wide collection, as of the latest event."""

    def __init__(self, credentials: Credentials, path: str, summary: Summary) -> None:
        self._credentials = credentials
        self._path = path
        self._summary = summary
        self._objects: dict[Key, Any] = {}
        self._lock = threading.Lock()
        self._listed = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._task: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None

    def __enter__(self) -> WatchedCollection:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        if not self._listed.wait(timeout=60):
            self.__exit__()
            raise TimeoutError(f"Could not list {self._path}: {self.failure}")
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def summaries(self, keys: set[Key] | None = None) -> dict[Key, Any]:
        with self._lock:
            if keys is None:
                return dict(self._objects)
            return {key: value for key, value in self._objects.items() if key in keys}

    async def _run(self) -> None:
        client = KubeClient(self._credentials, max_connections=1)
        try:
            while True:
                try:
                    version = await self._list(client)
                    self._listed.set()
                    await self._watch(client, version)
                except (ApiError, OSError, TimeoutError, ValueError) as error:
                    self.failure = error
                await asyncio.sleep(RELIST_SECONDS)
        finally:
            await client.close()

    async def _list(self, client: KubeClient) -> str:
        page = await client.request("GET", self._path)
        with self._lock:
            self._objects = {_key(item): self._summary(item) for item in page.get("items", [])}
        return str(page["metadata"]["resourceVersion"])

    async def _watch(self, client: KubeClient, version: str) -> None:
        params = {"watch": "1", "resourceVersion": version, "allowWatchBookmarks": "true"}
        async for event in client.stream(self._path, params=params):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                return  # the version expired: list again
            if kind == "BOOKMARK":
                continue
            with self._lock:
                if kind == "DELETED":
                    self._objects.pop(_key(obj), None)
                else:
                    self._objects[_key(obj)] = self._summary(obj)


def _key(obj: dict[str, Any]) -> Key:
    metadata = obj["metadata"]
    return metadata.get("namespace", ""), metadata["name"]
