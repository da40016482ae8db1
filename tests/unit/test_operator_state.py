"""The operator's shared state: coalesced scheduling (no event lost), retries of failures, what
the domains know of their products."""

from __future__ import annotations

import asyncio
import time
from typing import cast

import pytest

from dataproduct_operator.config import OperatorConfig
from dataproduct_operator.handlers.state import DomainProducts, OperatorState
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.events import post_event
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.datadomain import ProductSummary

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


def test_reads_ask_for_the_newest_version_seen_and_a_deleted_product_is_forgotten() -> None:
    state = _state()
    assert state.latest_version("sales", "orders") is None
    state.saw_version("sales", "orders", "120")
    state.saw_version("sales", "orders", "95")  # an event delivered after our own write
    state.saw_version("sales", "orders", "not-a-number")
    assert state.latest_version("sales", "orders") == "120"
    state.forget("sales", "orders")
    assert state.latest_version("sales", "orders") is None


def test_failing_products_are_retried_with_growing_delays_capped_by_the_drift_check() -> None:
    state = OperatorState(
        client=cast(KubeClient, None), config=OperatorConfig(drift_interval_seconds=30.0)
    )
    failures = {"StorageReady": "PersistentVolumeClaim orders-orders-v1: exists"}
    delays = [state.record_failures("sales", "orders", failures)[0] for _ in range(5)]
    assert delays == [5.0, 10.0, 20.0, 30.0, 30.0]
    assert state.record_failures("sales", "orders", {}) == (None, {})
    assert state.record_failures("sales", "orders", failures)[0] == 5.0


def test_a_failure_is_announced_when_it_appears_or_changes_not_on_every_retry() -> None:
    state = _state()
    first = {"AccessReady": "ConfigMap orders-connection: exists"}
    assert state.record_failures("sales", "orders", first)[1] == first
    assert state.record_failures("sales", "orders", first)[1] == {}
    changed = {**first, "StorageReady": "PersistentVolumeClaim orders-orders-v1: forbidden"}
    assert state.record_failures("sales", "orders", changed)[1] == {
        "StorageReady": "PersistentVolumeClaim orders-orders-v1: forbidden"
    }
    assert state.record_failures("sales", "other", first)[1] == first


def test_an_event_the_api_server_refuses_is_logged_and_does_not_fail_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Refusing:
        async def request(self, method: str, path: str, body: object = None) -> object:
            raise ApiError(403, "Forbidden", "namespace sales is being terminated", {})

    involved = {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": "orders", "namespace": "sales", "uid": "u-1"},
    }
    asyncio.run(post_event(cast(KubeClient, Refusing()), involved, "Normal", "Pruned", "Deleted"))
    assert "Could not post the Pruned Event on sales/orders" in caplog.text
    assert "being terminated" in caplog.text


def test_a_cancelled_run_does_not_run_and_a_new_one_can_be_scheduled() -> None:
    async def scenario() -> list[str]:
        state = _state()
        runs: list[str] = []

        async def work(name: str) -> None:
            runs.append(name)

        state.schedule(KEY, lambda: work("cancelled"), delay=0.05)
        state.cancel(KEY)
        state.schedule(KEY, lambda: work("next"), delay=0.05)
        others = asyncio.all_tasks() - {asyncio.current_task()}
        await asyncio.gather(*others, return_exceptions=True)  # the cancelled one included
        return runs

    assert asyncio.run(scenario()) == ["next"]


def test_bodies_submitted_before_a_run_starts_are_handled_once_with_the_newest() -> None:
    async def scenario() -> list[tuple[str, bool]]:
        state = _state()
        handled: list[tuple[str, bool]] = []

        async def run() -> None:
            body = state.take_pending("sales", "orders")
            if body is not None:
                kept_fields = "managedFields" in body["metadata"]
                handled.append((body["metadata"]["resourceVersion"], kept_fields))

        for version in ("1", "2", "3"):
            metadata = {"resourceVersion": version, "managedFields": [{"manager": "kubectl"}]}
            state.submit("sales", "orders", {"metadata": metadata}, run)
        await _settle()
        # A body submitted once the run has taken its own gets a run of its own.
        state.submit("sales", "orders", {"metadata": {"resourceVersion": "4"}}, run)
        await _settle()
        return handled

    assert asyncio.run(scenario()) == [("3", False), ("4", False)]


def test_a_domain_knows_its_products_from_a_survey_and_then_from_their_reconciles() -> None:
    known = DomainProducts()
    ready = ProductSummary(True, frozenset({"finance"}))
    assert not known.saw("sales", "orders", ready), "unknown until a survey seeds the namespace"
    assert known.of("sales") is None
    started = time.monotonic()
    known.saw("crm", "x", ready)
    known.seed("sales", {"orders": ProductSummary(False, frozenset())}, started)
    assert known.saw("sales", "orders", ready)  # became Ready: the domain must hear of it
    assert not known.saw("sales", "orders", ready)  # nothing new
    assert known.saw("sales", "refunds", ProductSummary(False, frozenset()))
    assert known.of("sales") == {"orders": ready, "refunds": ProductSummary(False, frozenset())}
    # A survey that began before those reconciles keeps them; one it missed stays.
    known.seed("sales", {"orders": ProductSummary(False, frozenset())}, started)
    assert known.of("sales") == {"orders": ready, "refunds": ProductSummary(False, frozenset())}
    # A later survey is the truth for what did not change since it began.
    known.seed("sales", {"orders": ready}, time.monotonic())
    assert known.of("sales") == {"orders": ready}
    assert known.saw("sales", "orders", None) and known.of("sales") == {}
