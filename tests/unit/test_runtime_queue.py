"""The runtime's work queue, backoff and error classes, on a fake clock."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from dataproduct_operator.k8s.informer import CacheNotSyncedError
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.outcome import Want
from dataproduct_operator.runtime.backoff import Backoff, BackoffPolicy
from dataproduct_operator.runtime.clock import FakeClock, settle
from dataproduct_operator.runtime.errors import ErrorClass, classify
from dataproduct_operator.runtime.queue import FAST, MAIN, WorkQueue

KEY = ("sales", "orders")


async def take(queue: WorkQueue[tuple[str, str]], lane: str) -> tuple[tuple[str, str], Want]:
    return await asyncio.wait_for(queue.get(lane), timeout=1)


def test_asks_before_a_pass_starts_merge_into_one_pass() -> None:
    async def scenario() -> None:
        queue: WorkQueue[tuple[str, str]] = WorkQueue(FakeClock())
        queue.add(KEY, Want.REFRESH)
        queue.add(KEY, Want.RECONCILE)
        queue.add(KEY, Want.REFRESH)
        assert len(queue) == 1
        key, want = await take(queue, MAIN)
        assert (key, want) == (KEY, Want.REFRESH | Want.RECONCILE)
        queue.done(key)
        assert len(queue) == 0

    asyncio.run(scenario())


def test_an_ask_during_a_pass_runs_one_more_pass_after_it_never_two_at_once() -> None:
    async def scenario() -> None:
        queue: WorkQueue[tuple[str, str]] = WorkQueue(FakeClock())
        queue.add(KEY, Want.RECONCILE)
        key, _ = await take(queue, MAIN)
        queue.add(KEY, Want.RECONCILE)  # the pass under way may have read the state before
        queue.add(KEY, Want.REFRESH)
        with pytest.raises(TimeoutError):  # not handed out while the first pass runs
            await asyncio.wait_for(queue.get(MAIN), timeout=0.05)
        queue.done(key)
        again, want = await take(queue, MAIN)
        assert (again, want) == (KEY, Want.RECONCILE | Want.REFRESH)

    asyncio.run(scenario())


def test_a_status_refresh_takes_the_fast_lane_and_a_reconcile_moves_it_to_the_main_lane() -> None:
    async def scenario() -> None:
        queue: WorkQueue[tuple[str, str]] = WorkQueue(FakeClock())
        for index in range(3):
            queue.add(("sales", f"busy-{index}"), Want.RECONCILE)
        queue.add(KEY, Want.REFRESH)
        assert await take(queue, FAST) == (KEY, Want.REFRESH)  # not behind the reconciles
        queue.done(KEY)
        queue.add(("crm", "customers"), Want.REFRESH)
        queue.add(("crm", "customers"), Want.RECONCILE)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(queue.get(FAST), timeout=0.05)
        names = [(await take(queue, MAIN))[0][1] for _ in range(4)]
        assert names == ["busy-0", "busy-1", "busy-2", "customers"]

    asyncio.run(scenario())


def test_delayed_asks_come_when_due_and_the_earliest_of_several_holds() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        queue: WorkQueue[tuple[str, str]] = WorkQueue(clock)
        timers = asyncio.get_running_loop().create_task(queue.run_timers())
        queue.add(KEY, Want.REFRESH, after=10)
        queue.add(KEY, Want.RECONCILE, after=3)  # sooner: it holds, with both asks
        queue.add(KEY, Want.REFRESH, after=20)  # later: merged into the due one
        await clock.advance(2.9)
        assert queue.pending(KEY) == Want.REFRESH | Want.RECONCILE
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(queue.get(MAIN), timeout=0.05)
        await clock.advance(0.2)
        assert await take(queue, MAIN) == (KEY, Want.REFRESH | Want.RECONCILE)
        timers.cancel()

    asyncio.run(scenario())


def test_an_immediate_ask_does_not_cancel_a_delayed_retry() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        queue: WorkQueue[tuple[str, str]] = WorkQueue(clock)
        timers = asyncio.get_running_loop().create_task(queue.run_timers())
        queue.add(KEY, Want.RECONCILE, after=5)
        queue.add(KEY, Want.REFRESH)
        assert await take(queue, FAST) == (KEY, Want.REFRESH)
        queue.done(KEY)
        await clock.advance(5)
        assert await take(queue, MAIN) == (KEY, Want.RECONCILE)
        timers.cancel()

    asyncio.run(scenario())


def test_add_and_wait_returns_once_a_pass_that_started_after_the_ask_has_ended() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[tuple[str, str]] = WorkQueue(FakeClock())
        seen: list[str] = []
        queue.add(KEY, Want.RECONCILE)
        key, _ = await take(queue, MAIN)  # a pass under way before the ask

        async def waiter() -> None:
            await queue.add_and_wait(KEY, Want.RECONCILE)
            seen.append("returned")

        task = asyncio.get_running_loop().create_task(waiter())
        await settle()
        queue.done(key)  # the pass under way ends: not the one waited for
        await settle()
        seen.append("first pass done")
        key, _ = await take(queue, MAIN)
        queue.done(key)
        await asyncio.wait_for(task, timeout=1)
        return seen

    assert asyncio.run(scenario()) == ["first pass done", "returned"]


def test_backoff_doubles_from_its_base_up_to_its_cap_and_forgets_on_success() -> None:
    backoff: Backoff[str] = Backoff()
    policy = BackoffPolicy(base=0.5, cap=10.0)
    delays = [backoff.next_delay("orders", policy) for _ in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.next_delay("orders", policy, at_least=30.0) == 30.0  # Retry-After
    backoff.forget("orders")
    assert backoff.next_delay("orders", policy) == 0.5
    assert BackoffPolicy(base=5.0, cap=300.0).delay(200) == 300.0  # no overflow


@pytest.mark.parametrize(
    ("error", "expected", "quiet"),
    [
        (ConnectionRefusedError(111, "Connection refused"), ErrorClass.TRANSIENT, True),
        (ConnectionResetError(104, "Connection reset by peer"), ErrorClass.TRANSIENT, True),
        (TimeoutError(), ErrorClass.TRANSIENT, True),
        (aiohttp.ServerDisconnectedError(), ErrorClass.TRANSIENT, True),
        (ApiError(503, "ServiceUnavailable", "etcd is down"), ErrorClass.TRANSIENT, True),
        (ApiError(500, "InternalError", "oops"), ErrorClass.TRANSIENT, True),
        (CacheNotSyncedError(503, "CacheNotSynced", "not listed"), ErrorClass.TRANSIENT, True),
        (ApiError(429, "TooManyRequests", "slow down"), ErrorClass.THROTTLED, True),
        (ApiError(401, "Unauthorized", "expired"), ErrorClass.UNAUTHORIZED, True),
        (ApiError(409, "Conflict", "modified"), ErrorClass.CONFLICT, True),
        (ApiError(403, "Forbidden", "cannot create jobs"), ErrorClass.FORBIDDEN, False),
        (ApiError(422, "Invalid", "spec.x: Invalid value"), ErrorClass.REJECTED, False),
        (ArithmeticError("decimal overflow"), ErrorClass.UNEXPECTED, False),
        (KeyError("spec"), ErrorClass.UNEXPECTED, False),
    ],
)
def test_every_error_is_classified_and_only_the_objects_own_are_surfaced(
    error: Exception, expected: ErrorClass, quiet: bool
) -> None:
    classified = classify(error)
    assert classified.error_class is expected
    assert classified.quiet is quiet
    assert classified.message


def test_throttling_honours_the_servers_retry_after() -> None:
    error = ApiError(429, "TooManyRequests", "slow", {"details": {"retryAfterSeconds": 7}})
    assert classify(error).retry_after == 7.0
    assert classify(ApiError(429, "TooManyRequests", "slow", {})).retry_after == 1.0
