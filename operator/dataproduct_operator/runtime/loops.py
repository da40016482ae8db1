"""Supervised periodic loops with heartbeats (layer ``runtime``).

A drift loop runs a pass every ``interval`` seconds. A pass that raises is logged once, counted
(``dataproduct_operator_errors_total{kind="DriftLoop"}``) and the loop goes on; a loop whose task
ended anyway (it should never) is started again. Each loop records when it last completed a pass
(the heartbeat metric); :meth:`Loops.health` reports a loop unhealthy when it has not completed a
pass within ``3 * interval`` (counted from its start before the first), so ``/healthz`` fails
and the kubelet restarts an operator that is stuck.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dataproduct_operator.runtime.clock import Clock
from dataproduct_operator.runtime.errors import classify

logger = logging.getLogger(__name__)

STALE_AFTER_INTERVALS = 3
SUPERVISE_SECONDS = 1.0  # how often dead loop tasks are looked for


@dataclass
class Loop:
    """One periodic loop and what is known of its passes."""

    name: str
    interval: float
    run_pass: Callable[[], Awaitable[None]]
    started: float | None = None  # monotonic
    last_pass: float | None = None  # monotonic
    last_pass_unix: float | None = None
    passes: int = 0
    failures: int = 0
    restarts: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class LoopHealth:
    name: str
    healthy: bool
    last_pass_unix: float | None


class Loops:
    """Every supervised loop of the process; see the module docstring."""

    def __init__(self, clock: Clock, on_error: Callable[[str], None] | None = None) -> None:
        self._clock = clock
        self._loops: dict[str, Loop] = {}
        self._on_error = on_error  # called with the error class of a failed pass
        self._supervisor: asyncio.Task[None] | None = None

    def add(self, name: str, interval: float, run_pass: Callable[[], Awaitable[None]]) -> None:
        self._loops[name] = Loop(name, interval, run_pass)

    def start(self) -> None:
        for loop in self._loops.values():
            self._spawn(loop)
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self) -> None:
        tasks = [loop.task for loop in self._loops.values() if loop.task is not None]
        if self._supervisor is not None:
            tasks.append(self._supervisor)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, loop: Loop) -> None:
        if loop.started is None:
            loop.started = self._clock.monotonic()
        loop.task = asyncio.get_running_loop().create_task(self._run(loop), name=loop.name)

    async def _run(self, loop: Loop) -> None:
        while True:
            await self._clock.sleep(loop.interval)
            try:
                await loop.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                classified = classify(error)
                loop.failures += 1
                if self._on_error is not None:
                    self._on_error(classified.error_class.value)
                logger.warning(
                    "Drift loop %s: the pass failed (%s), next in %ss: %s",
                    loop.name,
                    classified.error_class.value,
                    loop.interval,
                    classified.message,
                    exc_info=not classified.quiet,
                )
                continue
            loop.passes += 1
            loop.last_pass = self._clock.monotonic()
            loop.last_pass_unix = self._clock.time()

    async def _supervise(self) -> None:
        while True:
            await self._clock.sleep(SUPERVISE_SECONDS)
            for loop in self._loops.values():
                if loop.task is not None and loop.task.done() and not loop.task.cancelled():
                    error = loop.task.exception()
                    logger.error("Drift loop %s ended (%r); starting it again", loop.name, error)
                    loop.restarts += 1
                    self._spawn(loop)

    def health(self) -> list[LoopHealth]:
        now = self._clock.monotonic()
        found = []
        for loop in self._loops.values():
            since = loop.last_pass if loop.last_pass is not None else loop.started
            alive = loop.task is not None and not loop.task.done()
            fresh = since is not None and now - since <= STALE_AFTER_INTERVALS * loop.interval
            found.append(LoopHealth(loop.name, alive and fresh, loop.last_pass_unix))
        return found

    def last_passes(self) -> dict[str, tuple[float | None, int]]:
        """loop name -> unix time of its last completed pass (None before the first), and
        how many it completed."""
        return {loop.name: (loop.last_pass_unix, loop.passes) for loop in self._loops.values()}

    def get(self, name: str) -> Loop:
        return self._loops[name]
