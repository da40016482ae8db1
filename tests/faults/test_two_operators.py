"""Scenario 7: two operators at once, as two replicas of the chart run: every change is written
once (the writes to converge stay within what one operator needs), nothing is written while
idle, no child or status flaps between them; one of them leads, and when the leader is killed
the other takes over within 15 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from dataproduct_operator.k8s.blocking import BlockingClient
from tests.clusters import OPERATOR_NAMESPACE, wait_quiet_writes
from tests.faults.conftest import MakeNamespaces, StartOperator
from tests.faults.mesh import (
    MeshState,
    create_products,
    fault_product,
    observe_mesh,
    rendered_children,
    wait_all_ready,
    wait_converged,
)
from tests.faults.report import FaultRow
from tests.faults.runtime import LEASE_NAME, is_leader
from tests.helpers import wait_for
from tests.products import operator_metrics

PRODUCTS = 20
DRIFT_SECONDS = 3.0
IDLE_SECONDS = 4 * DRIFT_SECONDS  # drift passes of both operators within the idle window
FAILOVER_SECONDS = 15.0
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{OPERATOR_NAMESPACE}/leases"


def versions(state: MeshState) -> dict[str, str]:
    """resourceVersion of every product and every object of theirs."""
    found = {}
    for obj in [*state.products.values(), *state.labelled]:
        metadata = obj["metadata"]
        found[f"{obj['kind']} {metadata['name']}"] = metadata["resourceVersion"]
    return found


@pytest.mark.timeout(300)
def test_two_operators_at_once_write_each_change_once_and_nothing_while_idle(
    *,
    kube: BlockingClient,
    make_namespaces: MakeNamespaces,
    start_operator: StartOperator,
    operator_writes: Callable[[], int],
    fault: FaultRow,
) -> None:
    fault.scenario = "7. two operators at once"
    (namespace,) = make_namespaces()
    operators = [start_operator([namespace], drift_interval=DRIFT_SECONDS) for _ in range(2)]
    for operator in operators:
        wait_for(lambda o=operator: operator_metrics(o), description="both operators to start")
    before = wait_quiet_writes(operator_writes)
    documents: list[dict[str, Any]] = [
        fault_product(namespace, f"p-{i:02d}") for i in range(PRODUCTS)
    ]
    create_products(kube, documents)
    _, took = wait_converged(kube, [namespace], timeout=120)
    fault.converged(took)
    written = wait_quiet_writes(operator_writes) - before
    children = sum(map(len, rendered_children(documents[0]).values()))
    # What one operator writes: each child, the status, one Event, the reclaim policy of the
    # Retain port's volume; and one to spare.
    bound = PRODUCTS * (children + 4)
    fault.check(f"{written} writes to converge {PRODUCTS} products (one operator: <= {bound})")

    settled = versions(observe_mesh(kube, [namespace]))
    idle_from = operator_writes()
    time.sleep(IDLE_SECONDS)  # the idle window itself: a measured wait
    idle = operator_writes() - idle_from
    changed = sorted(
        key
        for key, version in versions(observe_mesh(kube, [namespace])).items()
        if settled.get(key) != version
    )
    fault.check(f"{idle} writes and {len(changed)} objects changed in {IDLE_SECONDS:.0f} s idle")
    assert written <= bound, f"{written} writes for {PRODUCTS} products (at most {bound})"
    assert idle == 0, f"{idle} writes while idle"
    assert not changed, f"changed while idle: {changed[:10]}"
    assert all(o.process.poll() is None for o in operators), "an operator exited"

    leaders = [operator for operator in operators if is_leader(operator)]
    assert len(leaders) == 1, f"{len(leaders)} leaders"
    holder = kube.get(f"{LEASES}/{LEASE_NAME}")["spec"].get("holderIdentity")
    assert holder, "the Lease names no holder"
    fault.check(f"one leader, Lease held by {holder}")

    (leader,) = leaders
    (standby,) = [operator for operator in operators if operator is not leader]
    leader.kill()
    killed = time.monotonic()
    create_products(kube, [fault_product(namespace, "after-failover")])
    wait_for(
        lambda: is_leader(standby), timeout=FAILOVER_SECONDS, description="the standby to lead"
    )
    took_over = time.monotonic() - killed
    wait_all_ready(kube, [(namespace, "after-failover")], timeout=FAILOVER_SECONDS)
    fault.check(
        f"leader SIGKILLed: the other leads after {took_over:.1f} s (limit 15 s), "
        f"a new product Ready {time.monotonic() - killed:.1f} s after the kill"
    )
