"""Supervised drift loops, the health endpoint's verdict, and leader election on a Lease, on a
fake clock and a fake API server."""

from __future__ import annotations

import asyncio
import json
from typing import cast

from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.runtime.clock import FakeClock, settle
from dataproduct_operator.runtime.health import health_body
from dataproduct_operator.runtime.leader import LeaderElector, LeaseSettings
from dataproduct_operator.runtime.loops import Loops
from tests.unit.runtime_fakes import FakeApi

LEASE = "/apis/coordination.k8s.io/v1/namespaces/dataproduct-system/leases/dataproduct-operator"


def test_a_pass_that_raises_is_counted_and_the_loop_goes_on() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        errors: list[str] = []
        loops = Loops(clock, on_error=errors.append)
        outcomes = iter([ValueError("boom"), None, ConnectionResetError(104, "reset"), None])

        async def drift_pass() -> None:
            failure = next(outcomes)
            if failure is not None:
                raise failure

        loops.add("drift-dataproducts", 10.0, drift_pass)
        loops.start()
        await clock.advance(40)
        loop = loops.get("drift-dataproducts")
        assert (loop.passes, loop.failures) == (2, 2)
        assert errors == ["Unexpected", "Transient"]
        assert all(health.healthy for health in loops.health())
        await loops.stop()

    asyncio.run(scenario())


def test_a_loop_that_completes_no_pass_in_three_intervals_is_unhealthy() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        loops = Loops(clock)
        stuck = asyncio.Event()

        async def quick() -> None:
            pass

        async def hangs() -> None:
            await stuck.wait()  # a request that never returns

        loops.add("drift-dataproducts", 10.0, quick)
        loops.add("drift-datadomains", 10.0, hangs)
        loops.start()
        await clock.advance(29)
        assert all(health.healthy for health in loops.health())
        await clock.advance(2)
        verdict = {health.name: health.healthy for health in loops.health()}
        assert verdict == {"drift-dataproducts": True, "drift-datadomains": False}
        status, body = health_body(True, loops.health())
        assert status == 500
        assert json.loads(body)["loops"]["drift-datadomains"]["healthy"] is False
        stuck.set()
        await clock.advance(10)
        assert health_body(True, loops.health())[0] == 200
        await loops.stop()

    asyncio.run(scenario())


def test_a_loop_whose_task_ended_is_started_again() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        loops = Loops(clock)
        passes: list[int] = []

        async def drift_pass() -> None:
            passes.append(1)

        loops.add("drift-meshpolicies", 5.0, drift_pass)
        loops.start()
        await clock.advance(5)
        loop = loops.get("drift-meshpolicies")
        assert loop.task is not None
        loop.task.cancel()  # as if something ended it
        await settle()
        # The supervisor sees a cancelled task as stopped on purpose; a task that raised (a
        # BaseException past the pass's handler) is restarted.
        loop.task = asyncio.get_running_loop().create_task(_raises())
        await clock.advance(2)
        assert loop.restarts == 1
        await clock.advance(5)
        assert len(passes) == 2
        await loops.stop()

    asyncio.run(scenario())


async def _raises() -> None:
    raise SystemError("a loop task died")


def test_a_standby_is_healthy_and_says_it_does_not_lead() -> None:
    status, body = health_body(False, [])
    assert (status, json.loads(body)) == (200, {"leader": False, "loops": {}})


def elector(api: FakeApi, clock: FakeClock, changes: list[bool], name: str) -> LeaderElector:
    settings = LeaseSettings(namespace="dataproduct-system", identity=name)
    return LeaderElector(cast(KubeClient, api), settings, clock, changes.append)


def test_one_candidate_leads_and_the_other_takes_over_once_the_lease_expires() -> None:
    async def scenario() -> None:
        clock, api = FakeClock(), FakeApi()
        first_changes: list[bool] = []
        second_changes: list[bool] = []
        first = elector(api, clock, first_changes, "first")
        second = elector(api, clock, second_changes, "second")
        first_task = asyncio.get_running_loop().create_task(first.run())
        await settle()
        second_task = asyncio.get_running_loop().create_task(second.run())
        await clock.advance(30)
        assert (first.leading, second.leading) == (True, False)
        assert api.objects[LEASE]["spec"]["holderIdentity"] == "first"
        first_task.cancel()  # killed: it renews no more
        await settle()
        killed_at = clock.monotonic()
        while not second.leading:
            await clock.advance(0.5)
        took = clock.monotonic() - killed_at
        assert 10 <= took <= 12.5, f"lease 10 s, retry every 2 s: took over after {took}s"
        assert api.objects[LEASE]["spec"]["leaseTransitions"] == 1
        second_task.cancel()
        await settle()

    asyncio.run(scenario())


def test_a_leader_that_cannot_renew_stands_down_and_leads_again_when_the_api_is_back() -> None:
    async def scenario() -> None:
        clock, api = FakeClock(), FakeApi()
        changes: list[bool] = []
        only = elector(api, clock, changes, "only")
        task = asyncio.get_running_loop().create_task(only.run())
        await clock.advance(4)
        assert only.leading
        api.down = True  # the API server paused
        await clock.advance(7)
        assert only.leading, "within the renew deadline"
        await clock.advance(2)
        assert not only.leading, "stood down before anyone could take over"
        api.down = False
        await clock.advance(3)
        assert only.leading and changes == [True, False, True]
        task.cancel()
        await settle()

    asyncio.run(scenario())


def test_a_leader_gives_the_lease_up_on_shutdown_so_a_standby_takes_over_at_once() -> None:
    async def scenario() -> None:
        clock, api = FakeClock(), FakeApi()
        first = elector(api, clock, [], "first")
        second = elector(api, clock, [], "second")
        first_task = asyncio.get_running_loop().create_task(first.run())
        await settle()
        second_task = asyncio.get_running_loop().create_task(second.run())
        await clock.advance(6)
        first_task.cancel()
        await settle()
        await first.release()
        await clock.advance(2.5)
        assert second.leading
        second_task.cancel()
        await settle()

    asyncio.run(scenario())


def test_a_restarted_leader_with_its_identity_takes_its_lease_back_at_once() -> None:
    async def scenario() -> None:
        clock, api = FakeClock(), FakeApi()
        before = elector(api, clock, [], "operator-7d9f-abcde")
        task = asyncio.get_running_loop().create_task(before.run())
        await clock.advance(4)
        task.cancel()  # SIGKILL: the Lease stays held, for 10 s
        await settle()
        again = elector(api, clock, [], "operator-7d9f-abcde")  # same pod, new container
        stranger = elector(api, clock, [], "operator-7d9f-zzzzz")
        tasks = [asyncio.get_running_loop().create_task(e.run()) for e in (again, stranger)]
        await clock.advance(0.5)
        assert again.leading and not stranger.leading
        for task in tasks:
            task.cancel()
        await settle()

    asyncio.run(scenario())
