"""A kind's controller on a fake clock and a fake API: status writes (held ones too), Events,
follow-ups, and every error retried or surfaced."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.dataproduct import ProductContext, reconcile_data_product
from dataproduct_operator.reconcile.mesh import MeshState
from dataproduct_operator.reconcile.outcome import (
    NORMAL,
    WARNING,
    FollowUp,
    Note,
    Outcome,
    Want,
)
from dataproduct_operator.runtime.backoff import BackoffPolicy
from dataproduct_operator.runtime.clock import FakeClock, settle
from dataproduct_operator.runtime.controller import Controller, Counters, Key, RetryPolicies
from tests.helpers import example_product
from tests.unit.runtime_fakes import FakeApi

PATH = "/apis/datamesh.dev/v1alpha1/namespaces/sales/dataproducts/orders"
KEY = ("sales", "orders")


def product(generation: int = 1, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": "orders", "namespace": "sales", "generation": generation, "uid": "u"},
        "spec": {},
        "status": status or {},
    }


def ready(value: str, reason: str) -> dict[str, Any]:
    return {"conditions": [{"type": "Ready", "status": value, "reason": reason, "message": ""}]}


@dataclass
class Scripted:
    """A kind whose passes do what the test says: return an outcome, or raise."""

    api: FakeApi
    script: list[Callable[[dict[str, Any]], Outcome]] = field(default_factory=list)
    passes: list[Want] = field(default_factory=list)
    kind: str = "DataProduct"

    def triage(self, event: str | None, body: dict[str, Any]) -> Want:
        return Want.NOTHING if event == "DELETED" else Want.RECONCILE

    async def fetch(self, key: Key) -> dict[str, Any] | None:
        return await self.api.get(PATH)

    def status_path(self, key: Key) -> str:
        return PATH

    async def work(self, key: Key, want: Want, body: dict[str, Any] | None) -> Outcome:
        self.passes.append(want)
        current = await self.api.get(PATH)
        assert current is not None
        step = self.script.pop(0) if self.script else (lambda body: Outcome(subject=body))
        return step(current)


@dataclass
class Harness:
    clock: FakeClock
    api: FakeApi
    kind: Scripted
    controller: Controller
    follow_ups: list[FollowUp]
    errors: list[tuple[str, str]]

    async def run_for(self, seconds: float, step: float = 0.5) -> None:
        elapsed = 0.0
        while elapsed < seconds:
            await self.clock.advance(step)
            elapsed += step
        await settle()


def harness(*, leading: bool = True) -> Harness:
    clock, api = FakeClock(), FakeApi()
    api.put_object(PATH, product())
    kind = Scripted(api)
    follow_ups: list[FollowUp] = []
    errors: list[tuple[str, str]] = []
    event = asyncio.Event()
    if leading:
        event.set()
    controller = Controller(
        kind,
        cast(KubeClient, api),
        clock,
        leading=event,
        retry=RetryPolicies(quiet=BackoffPolicy(0.5, 10.0), surfaced=BackoffPolicy(5.0, 60.0)),
        main_workers=2,
        fast_workers=2,
        max_hold=30.0,
        follow=follow_ups.append,
        counters=Counters(error=lambda kind, reason: errors.append((kind, reason))),
    )
    controller.start()
    return Harness(clock, api, kind, controller, follow_ups, errors)


def status_writes(api: FakeApi) -> int:
    return sum(1 for method, path in api.calls if method == "PATCH" and path.endswith("/status"))


def test_a_pass_writes_only_what_changed_in_the_status_and_posts_its_events() -> None:
    async def scenario() -> None:
        h = harness()
        written = ready("True", "Reconciled")
        note = Note(NORMAL, "Applied", "Applied ServiceAccount orders")
        h.kind.script = [
            lambda body: Outcome(subject=body, status=written, notes=(note,)),
            lambda body: Outcome(subject=body, status=written, notes=()),
        ]
        h.controller.observe("ADDED", product())
        await h.run_for(1)
        assert h.api.objects[PATH]["status"] == written
        assert [(e["reason"], e["message"]) for e in h.api.events] == [
            ("Applied", "Applied ServiceAccount orders")
        ]
        h.controller.observe("MODIFIED", product())
        await h.run_for(1)
        assert status_writes(h.api) == 1  # the same status again: no write
        await h.controller.stop()

    asyncio.run(scenario())


def test_a_note_about_the_status_is_posted_only_when_that_status_is_written() -> None:
    async def scenario() -> None:
        h = harness()
        status = ready("False", "PolicyViolated")
        note = Note(WARNING, "PolicyViolation", "violates pii", with_status=True)
        h.kind.script = [lambda body: Outcome(subject=body, status=status, notes=(note,))] * 2
        h.controller.observe("ADDED", product())
        await h.run_for(1)
        h.controller.observe("MODIFIED", product())
        await h.run_for(1)
        assert h.api.warnings() == [("PolicyViolation", "violates pii")]
        await h.controller.stop()

    asyncio.run(scenario())


def test_a_held_status_is_written_once_released_or_after_the_longest_hold() -> None:
    async def scenario() -> None:
        h = harness()
        pending = {"observedGeneration": 1, "outputPorts": [{"name": "p", "phase": "Pending"}]}
        h.kind.script = [lambda body: Outcome(subject=body, status=pending, hold_status=True)] * 100
        h.controller.observe("ADDED", product())
        await h.run_for(29)
        assert status_writes(h.api) == 0, "held: the claims bind in a moment"
        assert 4 <= len(h.kind.passes) <= 6, "looked at again after 2, 4, 8 and 16 s"
        await h.run_for(1.5)
        assert status_writes(h.api) == 1, "written after 30 s at the latest"
        await h.controller.stop()

    asyncio.run(scenario())


def test_the_api_server_away_is_retried_quietly_with_short_capped_delays() -> None:
    async def scenario() -> None:
        h = harness()
        h.api.down = True
        h.controller.observe("ADDED", product())
        await h.run_for(60, step=0.25)
        tries = len(h.api.calls)
        assert 8 <= tries <= 14, f"0.5, 1, 2, 4, 8 then every 10 s: {tries} tries in 60 s"
        assert {reason for _, reason in h.errors} == {"Transient"}
        h.api.down = False
        h.kind.script = [lambda body: Outcome(subject=body, status=ready("True", "Reconciled"))]
        await h.run_for(11)
        assert h.api.objects[PATH]["status"]["conditions"][0]["status"] == "True"
        assert h.api.events == [], "nothing surfaced on the object"
        await h.controller.stop()

    asyncio.run(scenario())


def test_an_error_about_the_object_is_surfaced_once_and_retried_with_backoff() -> None:
    async def scenario() -> None:
        h = harness()

        def broken(body: dict[str, Any]) -> Outcome:
            raise ArithmeticError("quantity 1e9999999 is out of range")

        h.kind.script = [broken] * 4
        h.controller.observe("ADDED", product())
        await h.run_for(1)
        condition = h.api.objects[PATH]["status"]["conditions"][0]
        assert (condition["type"], condition["status"], condition["reason"]) == (
            "Ready",
            "False",
            "ReconcileFailed",
        )
        assert "out of range" in condition["message"]
        await h.run_for(40)
        assert len(h.kind.passes) == 4, "retried after 5, 10 and 20 s"
        assert len(h.api.warnings()) == 1, "one Warning Event, not one per retry"
        assert h.errors == [("DataProduct", "Unexpected")] * 4
        await h.controller.stop()

    asyncio.run(scenario())


def test_forbidden_is_surfaced_with_its_own_reason() -> None:
    async def scenario() -> None:
        h = harness()

        def forbidden(body: dict[str, Any]) -> Outcome:
            raise ApiError(403, "Forbidden", "jobs.batch is forbidden")

        h.kind.script = [forbidden]
        h.controller.observe("ADDED", product())
        await h.run_for(1)
        condition = h.api.objects[PATH]["status"]["conditions"][0]
        assert (condition["reason"], "forbidden" in condition["message"]) == ("Forbidden", True)
        await h.controller.stop()

    asyncio.run(scenario())


def test_failures_of_a_pass_are_retried_with_growing_delays_and_forgotten_on_success() -> None:
    async def scenario() -> None:
        h = harness()
        failed = {"AccessReady": "ConfigMap orders-connection: exists"}
        h.kind.script = [lambda body: Outcome(subject=body, failures=failed)] * 3
        h.controller.observe("ADDED", product())
        await h.run_for(1)
        await h.run_for(5)
        await h.run_for(10)
        assert len(h.kind.passes) == 3, "after 5 s, then 10 s"
        await h.run_for(200)
        assert len(h.kind.passes) == 4, "succeeded at the 4th: no more retries"
        await h.controller.stop()

    asyncio.run(scenario())


def test_follow_ups_and_look_again_asks_are_passed_on() -> None:
    async def scenario() -> None:
        h = harness()
        domain = FollowUp("DataDomain", "", "sales", Want.RECONCILE, 5.0)
        h.kind.script = [
            lambda body: Outcome(
                subject=body, follow_ups=(domain,), look_again=Want.REFRESH, look_again_after=2
            )
        ]
        h.controller.observe("ADDED", product())
        await h.run_for(1)
        assert h.follow_ups == [domain]
        await h.run_for(2)
        assert h.kind.passes == [Want.RECONCILE, Want.REFRESH]
        await h.controller.stop()

    asyncio.run(scenario())


def test_a_standby_works_on_nothing_until_it_leads() -> None:
    async def scenario() -> None:
        h = harness(leading=False)
        h.controller.observe("ADDED", product())
        await h.run_for(5)
        assert h.kind.passes == []
        h.controller._leading.set()
        await h.run_for(1)
        assert h.kind.passes == [Want.RECONCILE]
        await h.controller.stop()

    asyncio.run(scenario())


def test_a_body_the_models_refuse_gets_invalid_spec_naming_the_field_and_is_not_retried() -> None:
    async def scenario() -> None:
        h = harness()
        api = h.api
        mesh = MeshState(cast(KubeClient, api))
        context = ProductContext(cast(KubeClient, api), mesh, _true)
        refused = product()
        # As an older, looser CRD could have let it through.
        refused["spec"] = example_product()["spec"]
        refused["spec"]["outputPorts"][0]["storage"] = {"size": "1e9999999"}
        refused["spec"]["classification"] = "Secret"
        api.put_object(PATH, refused)

        async def work(key: Key, want: Want, body: dict[str, Any] | None) -> Outcome:
            current = await api.get(PATH)
            assert current is not None
            h.kind.passes.append(want)
            return await reconcile_data_product(
                context, current, want=want, now="2026-11-29T00:00:00Z"
            )

        h.kind.work = work  # type: ignore[method-assign]
        h.controller.observe("ADDED", refused)
        await h.run_for(60)
        status = h.api.objects[PATH]["status"]
        ready = status["conditions"][0]
        assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
        assert "spec.classification" in ready["message"]
        assert "spec.outputPorts[0].storage.size" in ready["message"]
        assert status["observedGeneration"] == 1
        assert [reason for reason, _ in h.api.warnings()] == ["InvalidSpec"]
        assert len(h.kind.passes) == 1, "nothing to retry until the object changes"
        await h.controller.stop()

    asyncio.run(scenario())


async def _true() -> bool:
    return True


def test_a_body_stashed_during_a_pass_is_not_used_once_that_pass_wrote_a_newer_status() -> None:
    async def scenario() -> None:
        h = harness()
        seen: list[dict[str, Any] | None] = []
        release = asyncio.Event()

        async def work(key: Key, want: Want, body: dict[str, Any] | None) -> Outcome:
            seen.append(body)
            current = await h.api.get(PATH)
            assert current is not None
            if len(seen) == 1:
                await release.wait()
                return Outcome(subject=current, status=ready("False", "InvalidSpec"))
            return Outcome(subject=body or current)

        h.kind.work = work  # type: ignore[method-assign]
        listed = {**product(), "metadata": {**product()["metadata"], "resourceVersion": "101"}}
        h.controller.observe("ADDED", listed)
        await h.run_for(0.5)
        h.controller.submit(KEY, Want.RECONCILE, listed)  # a drift pass's listing, now stale
        release.set()
        await h.run_for(1)
        assert len(seen) == 2
        assert seen[1] is None, "the stale body was dropped: the kind reads the object again"
        await h.controller.stop()

    asyncio.run(scenario())
