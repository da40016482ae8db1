"""Scenario 5: the operator's connections to the API server blackholed by a pausable TCP proxy
on loopback (its kubeconfig names the proxy): its watches go silent without being closed, as
when a NAT or a load balancer forgets a connection. The path works again for new connections
a few seconds later (less than any leader lease, so a leader need not step down), but the
connections open before stay dead: its caches must recover from watches that went silent.
What changed meanwhile and what changes afterwards converges, in the same process.

The drift check is rare here: only watches that come back bring the changes in time (the drift
check would also hide a stale cache of children: it reads them from that cache).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.clusters import OPERATOR_NAMESPACE, RELEASE, write_service_account_kubeconfig
from tests.faults.conftest import MakeNamespaces, StartOperator
from tests.faults.mesh import (
    connection_config_map,
    create_products,
    fault_product,
    wait_all_ready,
    wait_converged,
)
from tests.faults.proxy import PausableProxy
from tests.faults.report import FaultRow
from tests.products import change_spec

PRODUCTS = 20
BLACKHOLE_SECONDS = 5.0
# Watches held on a dead path recover only by a read timeout of the client: the bound below
# leaves room for one of up to a minute and a half.
RECOVERY_SECONDS = 120.0
READY_AFTER_SECONDS = 15.0
DRIFT_SECONDS = 3600.0


@pytest.fixture
def proxy(control_plane: ClusterInfo) -> Iterator[PausableProxy]:
    port = int(control_plane.server.rsplit(":", 1)[1])
    with PausableProxy("127.0.0.1", port) as started:
        yield started


@pytest.fixture
def kubeconfig_through_proxy(
    kube: BlockingClient, proxy: PausableProxy, tmp_path: Path, operator_release: str
) -> Path:
    """The chart's ServiceAccount, reaching the API server through the proxy."""
    return write_service_account_kubeconfig(
        kube, proxy.server, OPERATOR_NAMESPACE, RELEASE, tmp_path / "proxied", create=False
    )


@pytest.mark.timeout(420)
def test_after_its_watches_are_blackholed_the_operator_catches_up_in_the_same_process(
    *,
    kube: BlockingClient,
    proxy: PausableProxy,
    kubeconfig_through_proxy: Path,
    make_namespaces: MakeNamespaces,
    start_operator: StartOperator,
    fault: FaultRow,
) -> None:
    fault.scenario = f"5. watches blackholed {BLACKHOLE_SECONDS:.0f} s by a TCP proxy"
    (namespace,) = make_namespaces()
    operator = start_operator(
        [namespace], drift_interval=DRIFT_SECONDS, kubeconfig=kubeconfig_through_proxy
    )
    create_products(kube, [fault_product(namespace, f"p-{i:02d}") for i in range(PRODUCTS)])
    wait_converged(kube, [namespace], timeout=120)
    fault.check(f"{PRODUCTS} products converged through the proxy")

    proxy.blackhole()
    held = proxy.counts().dead
    assert held > 0, "the operator had no connection open to blackhole"
    # Meanwhile, straight to the API server: a child deleted, a spec changed, a product new.
    kube.delete(connection_config_map(namespace, "p-00"))
    generation = change_spec(
        kube,
        namespace,
        "p-01",
        lambda spec: spec["outputPorts"].append({**spec["outputPorts"][0], "name": "extra"}),
    )
    create_products(kube, [fault_product(namespace, "during")])
    time.sleep(BLACKHOLE_SECONDS)  # the outage itself: a measured wait
    proxy.resume()
    resumed = time.monotonic()
    fault.check(f"{held} connections blackholed, then kept dead after resume")

    state, _ = wait_converged(kube, [namespace], timeout=RECOVERY_SECONDS)
    fault.converged(time.monotonic() - resumed)
    assert state.products[(namespace, "p-01")]["metadata"]["generation"] == generation
    fault.check("the deleted child back, the changed spec applied, the new product Ready")

    create_products(kube, [fault_product(namespace, "after")])
    took = wait_all_ready(kube, [(namespace, "after")], timeout=READY_AFTER_SECONDS)
    fault.check(f"a product created afterwards Ready in {took:.1f} s")
    assert operator.process.poll() is None, f"the operator exited: {operator.log.read_text()}"
    fault.check("the same operator process")
