"""Scenario 2: etcd restarted (stopped, down for a while, started again with the same command
line and data): the operator recovers in the same process, its memory stays bounded while it
lists again, and what changed afterwards converges.

etcd's history is compacted first, as the API server does every five minutes: the API
server's watches of etcd then cannot resume where they were after the restart, it lists again
and ends its clients' watches with 410 Gone, so the operator must list again too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType

import pytest

from benchmarks.setup import FLOW_SCHEMAS, build_flow_schema, dispatched_requests
from dataproduct_operator.cluster import controlplane
from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.reconcile.dataproduct import CHILD_KINDS
from tests.clusters import OPERATOR_NAMESPACE, RELEASE
from tests.faults.conftest import MakeNamespaces, StartOperator
from tests.faults.mesh import (
    create_products,
    fault_product,
    wait_converged,
    wait_drift_repairs,
)
from tests.faults.report import FaultRow
from tests.faults.runtime import rss_kib, wait_loops_alive
from tests.helpers import wait_for
from tests.products import delete_if_present

PRODUCTS = 100
ETCD_DOWN_SECONDS = 10.0
DRIFT_SECONDS = 5.0
RSS_MARGIN_MIB = 64  # growth allowed over the RSS with everything listed once
OPERATOR_LISTS = "faults-operator-lists"
CHILD_RESOURCES = tuple(KNOWN_RESOURCES[kind].plural for kind in CHILD_KINDS)


class RssSampler:
    """The peak resident memory of a process, sampled every 0.1 s in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.peak_kib = max(self.peak_kib, rss_kib(self.pid))
            except FileNotFoundError:
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def operator_lists(kube: BlockingClient, operator_release: str) -> Iterator[Callable[[], int]]:
    """``operator_lists()``: the LIST requests of the operator's ServiceAccount for the kinds of
    children so far (its watches list them again; its drift checks list only products and
    domains), counted by the API server (a FlowSchema of their own)."""
    schema = build_flow_schema(
        OPERATOR_LISTS, (OPERATOR_NAMESPACE, RELEASE), precedence=380, verbs=["list"],
        resources=CHILD_RESOURCES,
    )  # fmt: skip
    kube.create_if_missing(FLOW_SCHEMAS, schema)
    yield lambda: dispatched_requests(kube, [OPERATOR_LISTS])[OPERATOR_LISTS]
    delete_if_present(kube, f"{FLOW_SCHEMAS}/{OPERATOR_LISTS}")


def api_server_ready(kube: BlockingClient) -> bool:
    status, body = kube.raw("GET", "/readyz")
    return status == 200 and body.strip() == b"ok"


@pytest.mark.timeout(420)
def test_after_etcd_restarts_the_same_operator_process_converges_with_bounded_memory(
    *,
    control_plane: ClusterInfo,
    kube: BlockingClient,
    make_namespaces: MakeNamespaces,
    start_operator: StartOperator,
    operator_lists: Callable[[], int],
    fault: FaultRow,
) -> None:
    fault.scenario = f"2. etcd restarted (down {ETCD_DOWN_SECONDS:.0f} s)"
    (namespace,) = make_namespaces()
    operator = start_operator([namespace], drift_interval=DRIFT_SECONDS)
    documents = [fault_product(namespace, f"p-{i:03d}") for i in range(PRODUCTS)]
    create_products(kube, documents)
    wait_converged(kube, [namespace], timeout=180)
    baseline = rss_kib(operator.process.pid)
    lists_before = operator_lists()

    with RssSampler(operator.process.pid) as memory:
        # Writes of something nobody here watches, then the compaction: on a busy cluster
        # the revision moves on all the time, leaving the watches of quiet kinds behind it.
        secrets = f"/api/v1/namespaces/{namespace}/secrets"
        kube.create(secrets, {"metadata": {"name": "revision-marker"}})
        kube.delete(f"{secrets}/revision-marker")
        revision = controlplane.compact_etcd(control_plane.directory)
        with controlplane.stopped(control_plane.directory, "etcd"):
            time.sleep(ETCD_DOWN_SECONDS)  # the outage itself: a measured wait
        restarted = time.time()
        wait_for(lambda: api_server_ready(kube), timeout=60, description="/readyz after etcd")
        fault.check(
            f"etcd compacted at revision {revision} and restarted with its data, API server "
            "ready again"
        )
        # Changes after the restart: only watches that came back see them at once.
        create_products(kube, [fault_product(namespace, f"new-{i}") for i in range(5)])
        kube.delete(f"/api/v1/namespaces/{namespace}/configmaps/p-000-connection")
        wait_converged(kube, [namespace], timeout=90)
    fault.converged(time.time() - restarted)
    fault.check("5 new products Ready, a deleted child back, children == dpo render")

    assert operator.process.poll() is None, f"the operator exited: {operator.log.read_text()}"
    fault.check("the same operator process (no restart)")
    relists = operator_lists() - lists_before
    fault.check(f"{relists} lists of children after the restart")
    assert relists > 0, "the operator's watches never listed again: nothing was relisted"
    growth_mib = (memory.peak_kib - baseline) / 1024
    fault.check(
        f"RSS {baseline / 1024:.0f} MiB before, peak {memory.peak_kib / 1024:.0f} MiB while "
        f"listing again (limit +{RSS_MARGIN_MIB} MiB)"
    )
    assert growth_mib <= RSS_MARGIN_MIB, f"RSS grew by {growth_mib:.0f} MiB"

    wait_drift_repairs(kube, namespace, ["p-001"], timeout=4 * DRIFT_SECONDS)
    fault.check("a drift pass repaired a tampered hash")
    wait_loops_alive(operator, since=restarted, timeout=4 * DRIFT_SECONDS)
    fault.check("every drift loop passed again, /healthz 200")
