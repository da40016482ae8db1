"""Scenario 1: kube-apiserver paused (SIGSTOP) for 30 s and for 70 s, once during a drift pass
and once during a burst of 50 creates; after SIGCONT every product is Ready within 15 s, the
children are exactly what ``dpo render`` builds, and every drift loop is alive.

70 s is longer than the operator's request timeout (60 s): requests under way when the API
server stopped fail rather than complete late. A pause keeps the process, its sockets and its
data: the kernel still accepts connections for it, nothing answers them.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from dataproduct_operator.cluster import controlplane
from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.faults.conftest import MakeNamespaces, StartOperator
from tests.faults.mesh import (
    create_products,
    fault_product,
    is_ready,
    list_products,
    tamper,
    wait_all_ready,
    wait_converged,
    wait_drift_repairs,
)
from tests.faults.report import FaultRow
from tests.faults.runtime import wait_loops_alive, wait_working
from tests.helpers import wait_for
from tests.products import OperatorProcess, operator_metrics

PRODUCTS = 50
READY_AFTER_RESUME_SECONDS = 15.0
DRIFT_SECONDS = 5.0
ATTEMPTS = 3  # drift passes tried to catch one under way


def child_applies(process: OperatorProcess, kind: str | None = None) -> float:
    """Children the operator has applied so far (of one kind, or of any)."""
    samples = operator_metrics(process).get("dataproduct_child_applies_total", {})
    return sum(value for labels, value in samples.items() if kind in (None, dict(labels)["kind"]))


def config_map_applies(process: OperatorProcess) -> float:
    return child_applies(process, "ConfigMap")


def pause_during_drift_pass(
    *,
    control_plane: ClusterInfo,
    kube: BlockingClient,
    operator: OperatorProcess,
    namespace: str,
    names: list[str],
    seconds: float,
    fault: FaultRow,
) -> float:
    """Tamper with every product, wait until a drift pass has repaired the first of them and
    pause the API server then, with repairs still to do; the time it was resumed."""
    for _ in range(ATTEMPTS):
        tamper(kube, namespace, names)
        before = config_map_applies(operator)
        wait_for(
            lambda before=before: config_map_applies(operator) > before,
            timeout=3 * DRIFT_SECONDS,
            interval=0.005,
            description="a drift pass to start repairing",
        )
        with controlplane.paused(control_plane.directory, "kube-apiserver"):
            done = config_map_applies(operator) - before
            if done < len(names):
                fault.check(f"paused after {done:.0f} of {len(names)} drift repairs")
                time.sleep(seconds)  # the outage itself: a measured wait
                return time.time()
        # The pass ended before the pause took: try the next one.
    raise AssertionError(f"No drift pass was caught under way in {ATTEMPTS} attempts")


def pause_during_burst(
    *,
    control_plane: ClusterInfo,
    kube: BlockingClient,
    operator: OperatorProcess,
    documents: list[dict[str, Any]],
    seconds: float,
    fault: FaultRow,
) -> float:
    """Create the products and pause the API server once the operator has begun to work on
    them, before it is done; the time it was resumed."""
    create_products(kube, documents)
    wait_for(lambda: child_applies(operator), interval=0.01, description="the first apply")
    namespace = documents[0]["metadata"]["namespace"]
    ready = sum(map(is_ready, list_products(kube, [namespace]).values()))
    assert ready < len(documents), "the operator was done before the pause"
    with controlplane.paused(control_plane.directory, "kube-apiserver"):
        applied = child_applies(operator)
        time.sleep(seconds)  # the outage itself: a measured wait
    resumed = time.time()
    fault.check(
        f"paused with {applied:.0f} children applied, {ready} of {len(documents)} products "
        "Ready, right after their creates"
    )
    return resumed


@pytest.mark.timeout(420)
@pytest.mark.parametrize("seconds", [30, 70])
@pytest.mark.parametrize("moment", ["drift pass", "burst of creates"])
def test_after_the_api_server_is_paused_every_product_is_ready_within_15_s_and_drift_goes_on(
    *,
    seconds: int,
    moment: str,
    control_plane: ClusterInfo,
    kube: BlockingClient,
    make_namespaces: MakeNamespaces,
    start_operator: StartOperator,
    fault: FaultRow,
) -> None:
    fault.scenario = f"1. kube-apiserver paused {seconds} s during a {moment}"
    (namespace,) = make_namespaces()
    operator = start_operator([namespace], drift_interval=DRIFT_SECONDS)
    documents = [fault_product(namespace, f"p-{i:02d}") for i in range(PRODUCTS)]
    names = [document["metadata"]["name"] for document in documents]
    if moment == "drift pass":
        create_products(kube, documents)
        wait_converged(kube, [namespace], timeout=120)
        resumed = pause_during_drift_pass(
            control_plane=control_plane,
            kube=kube,
            operator=operator,
            namespace=namespace,
            names=names,
            seconds=seconds,
            fault=fault,
        )
    else:
        wait_working(operator)
        resumed = pause_during_burst(
            control_plane=control_plane,
            kube=kube,
            operator=operator,
            documents=documents,
            seconds=seconds,
            fault=fault,
        )

    keys = [(namespace, name) for name in names]
    ready = wait_all_ready(kube, keys, timeout=READY_AFTER_RESUME_SECONDS)
    fault.converged(time.time() - resumed)
    fault.check(f"{PRODUCTS} products Ready {ready:.1f} s after SIGCONT (limit 15 s)")
    assert operator.process.poll() is None, f"the operator exited: {operator.log.read_text()}"
    fault.check("the same operator process")
    wait_converged(kube, [namespace], timeout=60)
    fault.check("children == dpo render, no orphans, nothing Terminating")

    # The drift loop survived: changes only a drift pass repairs are repaired.
    wait_drift_repairs(kube, namespace, names, timeout=4 * DRIFT_SECONDS)
    fault.check("a drift pass repaired our tampered hashes")
    wait_loops_alive(operator, since=resumed, timeout=4 * DRIFT_SECONDS)
    fault.check("every drift loop passed again, /healthz 200")
