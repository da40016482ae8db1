"""One-off background jobs, coalesced by name, retried on failure (layer ``runtime``).

For work that spans many objects and is asked for by watch events of another kind: reconcile
every product of a namespace whose domain changed, audit every product after a policy changed.
A job asked for while one of that name waits to start is not asked again; a job that fails is
logged once, counted, and run again after ``retry_after`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from dataproduct_operator.runtime.clock import Clock
from dataproduct_operator.runtime.errors import ErrorClass, classify

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0


class Jobs:
    def __init__(self, clock: Clock, on_error: Callable[[str], None] | None = None) -> None:
        self._clock = clock
        self._on_error = on_error
        self._waiting: dict[str, asyncio.Task[None]] = {}
        self._running: set[asyncio.Task[None]] = set()

    def ask(self, name: str, job: Callable[[], Awaitable[None]], *, after: float) -> None:
        """Run ``job`` after ``after`` seconds, unless a job of that name waits to start."""
        if name in self._waiting:
            return
        task = asyncio.get_running_loop().create_task(self._run(name, job, after), name=name)
        self._waiting[name] = task
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, name: str, job: Callable[[], Awaitable[None]], after: float) -> None:
        try:
            await self._clock.sleep(after)
        finally:
            if self._waiting.get(name) is asyncio.current_task():
                del self._waiting[name]
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            classified = classify(error)
            if self._on_error is not None:
                self._on_error(classified.error_class.value)
            logger.warning(
                "Job %s failed (%s), again in %ss: %s",
                name,
                classified.error_class.value,
                RETRY_SECONDS,
                classified.message,
                exc_info=classified.error_class is ErrorClass.UNEXPECTED,
            )
            self.ask(name, job, after=RETRY_SECONDS)

    async def stop(self) -> None:
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._waiting.clear()
