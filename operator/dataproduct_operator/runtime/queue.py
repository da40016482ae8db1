"""A work queue of object keys with coalescing, delays and two lanes (layer ``runtime``).

The semantics of client-go's workqueue, which controllers rely on:

- a key is queued at most once: asks for it merge (their :class:`Want` flags are or-ed) until a
  worker takes it, so a burst of events for one object costs one pass;
- a key is never passed to two workers at once; asks that come while it is being worked on wait
  and queue it again when that pass is done (the pass may have read the state before them);
- :meth:`add` with ``after`` delays the ask; of several delayed asks for a key the earliest
  holds, and an ask that comes sooner does not cancel it (a retry stays scheduled);
- :meth:`add_and_wait` returns once a pass that started after the ask has ended.

Two lanes: a key whose merged ask is a status refresh only goes to the fast lane, whose workers
are not held up by a backlog of reconciles (a product whose claims are bound is reported Ready
at once, not after a thousand reconciles); anything else to the main lane. The number of workers
of each lane bounds how much work runs at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from dataproduct_operator.reconcile.outcome import Want
from dataproduct_operator.runtime.clock import Clock

K = TypeVar("K", bound=Hashable)
FAST, MAIN = "fast", "main"


def lane_of(want: Want) -> str:
    return FAST if want == Want.REFRESH else MAIN


@dataclass
class _Lane(Generic[K]):
    keys: deque[K] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class WorkQueue(Generic[K]):
    """See the module docstring."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._wants: dict[K, Want] = {}  # asked, not started (ready, or waiting for its pass)
        self._lane: dict[K, str] = {}  # the lane a ready key is queued in
        self._lanes: dict[str, _Lane[K]] = {FAST: _Lane(), MAIN: _Lane()}
        self._active: set[K] = set()
        self._delayed: dict[K, tuple[float, Want]] = {}
        self._timers: list[tuple[float, int, K]] = []
        self._order = itertools.count()
        self._timer_changed = asyncio.Event()
        self._waiting: dict[K, list[asyncio.Future[None]]] = {}  # for the next pass to end
        self._running: dict[K, list[asyncio.Future[None]]] = {}  # for the current pass to end
        self._closed = False

    def __len__(self) -> int:
        """Keys asked for and not started, delayed ones included."""
        return len(self._wants.keys() | self._delayed.keys())

    def pending(self, key: K) -> Want:
        """What is asked of ``key`` and not started yet, delayed asks included."""
        return self._wants.get(key, Want.NOTHING) | self._delayed.get(key, (0.0, Want.NOTHING))[1]

    def add(self, key: K, want: Want, *, after: float = 0.0) -> None:
        if self._closed or not want:
            return
        if after > 0:
            due = self._clock.monotonic() + after
            known = self._delayed.get(key)
            if known is None or due < known[0]:
                merged = want | (known[1] if known else Want.NOTHING)
                self._delayed[key] = (due, merged)
                heapq.heappush(self._timers, (due, next(self._order), key))
                self._timer_changed.set()
            else:
                self._delayed[key] = (known[0], known[1] | want)
            return
        self._wants[key] = self._wants.get(key, Want.NOTHING) | want
        self._make_ready(key)

    async def add_and_wait(self, key: K, want: Want) -> None:
        """Ask now and return once a pass that started after this ask has ended."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        self.add(key, want)
        if self._closed:
            future.cancel()
        await future

    def _make_ready(self, key: K) -> None:
        if key in self._active:
            return  # queued again when its pass is done
        lane = lane_of(self._wants[key])
        if self._lane.get(key) == lane:
            return
        self._lane[key] = lane  # an entry left in the other lane is skipped
        self._lanes[lane].keys.append(key)
        self._lanes[lane].ready.set()

    async def get(self, lane: str) -> tuple[K, Want]:
        """The next key of ``lane`` and what is asked of it; the caller must call :meth:`done`."""
        queued = self._lanes[lane]
        while True:
            while queued.keys:
                key = queued.keys.popleft()
                if self._lane.get(key) != lane:
                    continue  # moved to the other lane
                del self._lane[key]
                want = self._wants.pop(key)
                self._active.add(key)
                self._running[key] = self._waiting.pop(key, [])
                return key, want
            queued.ready.clear()
            await queued.ready.wait()

    def done(self, key: K) -> None:
        self._active.discard(key)
        for future in self._running.pop(key, []):
            if not future.done():
                future.set_result(None)
        if key in self._wants:
            self._make_ready(key)

    async def run_timers(self) -> None:
        """Move delayed asks to the lanes when they are due; runs until cancelled."""
        while True:
            now = self._clock.monotonic()
            while self._timers and self._timers[0][0] <= now:
                due, _, key = heapq.heappop(self._timers)
                delayed = self._delayed.get(key)
                if delayed is not None and delayed[0] == due:
                    del self._delayed[key]
                    self.add(key, delayed[1])
            self._timer_changed.clear()
            wait = self._timers[0][0] - now if self._timers else None
            changed = asyncio.ensure_future(self._timer_changed.wait())
            waiters: set[asyncio.Future[Any]] = {changed}
            if wait is not None:
                waiters.add(asyncio.ensure_future(self._clock.sleep(wait)))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    def close(self) -> None:
        """Refuse new asks; wake whoever waits for a pass."""
        self._closed = True
        for futures in (*self._waiting.values(), *self._running.values()):
            for future in futures:
                future.cancel()
