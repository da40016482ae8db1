"""An OpenLineage sink on loopback for the cluster tests: an aiohttp server on a thread of its
own that validates every event it receives against the vendored schema
(:mod:`tests.openlineage_schema`) and keeps them, for a ``dpo run --openlineage-url`` process."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web

from tests.helpers import wait_for
from tests.openlineage_schema import run_event_errors


class LineageSink:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url`` is where to send events."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.url = ""
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        event = json.loads(await request.read())
        with self._lock:
            self.errors += run_event_errors(event)
            self.received.append(event)
        return web.Response(status=201)

    async def _serve(self) -> str:
        app = web.Application()
        app.router.add_post("/api/v1/lineage", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def start(self) -> LineageSink:
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(30)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def events_of(self, job: str) -> list[dict[str, Any]]:
        """The events received of the job named ``job`` so far, in order."""
        with self._lock:
            return [e for e in self.received if e.get("job", {}).get("name") == job]

    def wait_for_events(self, job: str, types: list[str], timeout: float = 60) -> list[Any]:
        """The events of ``job`` once their types are ``types`` (in order)."""

        def arrived() -> list[dict[str, Any]] | None:
            found = self.events_of(job)
            return found if [e["eventType"] for e in found] == types else None

        return wait_for(arrived, timeout=timeout, description=f"the events {types} of {job}")
