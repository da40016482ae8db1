"""Coalescing of scheduled work in the operator's shared state: no event is lost."""

from __future__ import annotations

import asyncio
from typing import cast

from dataproduct_operator.config import OperatorConfig
from dataproduct_operator.handlers.state import OperatorState
from dataproduct_operator.k8s.client import KubeClient

KEY = ("sales", "orders", "refresh")


def _state() -> OperatorState:
    # Scheduling never talks to the API server.
    return OperatorState(client=cast(KubeClient, None), config=OperatorConfig())


async def _settle() -> None:
    """Wait for every other task, including those scheduled meanwhile."""
    while others := asyncio.all_tasks() - {asyncio.current_task()}:
        await asyncio.gather(*others)


def test_events_before_a_run_starts_are_coalesced_into_one_run() -> None:
    async def scenario() -> int:
        state = _state()
        runs = 0

        async def work() -> None:
            nonlocal runs
            runs += 1

        for _ in range(5):
            state.schedule(KEY, work, delay=0.01)
        await _settle()
        return runs

    assert asyncio.run(scenario()) == 1


def test_an_event_while_a_run_is_under_way_schedules_one_more_run() -> None:
    """The run under way may have read the children before the event's change."""

    async def scenario() -> int:
        state = _state()
        started, release = asyncio.Event(), asyncio.Event()
        runs = 0

        async def work() -> None:
            nonlocal runs
            runs += 1
            started.set()
            await release.wait()

        state.schedule(KEY, work, delay=0)
        await asyncio.wait_for(started.wait(), timeout=5)
        state.schedule(KEY, work, delay=0)
        state.schedule(KEY, work, delay=0)  # coalesced with the one just scheduled
        release.set()
        await _settle()
        return runs

    assert asyncio.run(scenario()) == 2
