"""The liveness endpoint (layer ``runtime``).

``GET /healthz`` answers 200 while every supervised loop is healthy (see :mod:`.loops`) and 500
otherwise, with a JSON body saying whether this process leads and how each loop is doing. A
standby (not the leader) runs no loops and answers 200: it is alive and waiting.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web

from dataproduct_operator.runtime.loops import LoopHealth

HealthReport = Callable[[], tuple[bool, list[LoopHealth]]]  # leader?, loops


def health_body(leader: bool, loops: list[LoopHealth]) -> tuple[int, str]:
    """The status and JSON body of ``/healthz``."""
    healthy = all(loop.healthy for loop in loops)
    body = {
        "leader": leader,
        "loops": {
            loop.name: {"lastPass": loop.last_pass_unix, "healthy": loop.healthy} for loop in loops
        },
    }
    return (200 if healthy else 500), json.dumps(body, sort_keys=True)


async def start_health_server(report: HealthReport, *, host: str, port: int) -> web.AppRunner:
    """Serve ``/healthz`` on ``host:port`` until the runner is cleaned up."""

    async def healthz(_: web.Request) -> web.Response:
        status, text = health_body(*report())
        return web.Response(status=status, text=text, content_type="application/json")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
