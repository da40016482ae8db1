"""Time as the runtime sees it (layer ``runtime``).

The queue, backoff, held status writes, drift loops and leader election read time only through a
:class:`Clock`, so their unit tests run on a :class:`FakeClock` that a test moves forward.
"""

from __future__ import annotations

import asyncio
import datetime
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; for delays and deadlines."""
        ...

    def time(self) -> float:
        """Unix time; for time stamps users read."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clocks and asyncio's sleep."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


def rfc3339(unix_seconds: float) -> str:
    """``2026-11-29T13:06:11Z``: the form of Kubernetes time stamps."""
    moment = datetime.datetime.fromtimestamp(unix_seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeClock:
    """A clock that moves only when a test calls :meth:`advance`; sleepers wake in order."""

    def __init__(self, start: float = 1_000.0, unix: float = 1_800_000_000.0) -> None:
        self._now = start
        self._unix_offset = unix - start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._unix_offset

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose time has come, each with the clock at
        its own wake-up time, and let the woken tasks run."""
        target = self._now + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            due, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, due)
            if not future.done():
                future.set_result(None)
            await settle()
        self._now = target
        await settle()


async def settle(rounds: int = 20) -> None:
    """Let every ready task run until nothing is left to run (a bounded number of rounds)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
