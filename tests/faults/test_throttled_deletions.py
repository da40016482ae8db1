"""Scenario 4: 1000 products (and their DataDomains) deleted while API Priority and Fairness
throttles the operator: a FlowSchema sends every resource request of the chart's
ServiceAccount to a priority level of one concurrency share with a queue of one, so most of
its requests get 429. 120 s after the throttle is lifted nothing is left Terminating, every
claim kept under ``Retain`` is released and no child is left without its product.

The products' claims are of a StorageClass that binds on first use: they stay Pending, so no
volume is provisioned for them (the deletions are the point, not 1000 volumes), and the
products have every child but are not Ready.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from benchmarks.setup import FLOW_SCHEMAS, build_flow_schema, rejected_requests
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.clusters import DOMAINS, OPERATOR_NAMESPACE, RELEASE
from tests.faults.conftest import MakeNamespaces, StartOperator
from tests.faults.mesh import create_products, delete_products, fault_product, wait_converged
from tests.faults.report import FaultRow
from tests.products import delete_if_present

PRODUCTS = 1000
NAMESPACES = 4
THROTTLE_SECONDS = 30.0
AFTER_THROTTLE_SECONDS = 120.0
DRIFT_SECONDS = 30.0
THROTTLE = "faults-throttle"
STORAGE_CLASS = "faults-bound-on-first-use"
PRIORITY_LEVELS = "/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations"


@pytest.fixture
def storage_class(kube: BlockingClient) -> str:
    kube.create_if_missing(
        "/apis/storage.k8s.io/v1/storageclasses",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS},
            "provisioner": "kubernetes.io/host-path",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
        },
    )
    return STORAGE_CLASS


@pytest.fixture
def throttle(kube: BlockingClient, operator_release: str) -> Iterator[None]:
    """The operator throttled until the end of the block (the fixture's teardown lifts it
    too, if the test failed first)."""
    yield
    lift_throttle(kube)


def start_throttle(kube: BlockingClient) -> None:
    kube.create(
        PRIORITY_LEVELS,
        {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "PriorityLevelConfiguration",
            "metadata": {"name": THROTTLE},
            "spec": {
                "type": "Limited",
                "limited": {
                    "nominalConcurrencyShares": 1,
                    "lendablePercent": 0,
                    "borrowingLimitPercent": 0,
                    "limitResponse": {
                        "type": "Queue",
                        "queuing": {"queues": 1, "handSize": 1, "queueLengthLimit": 1},
                    },
                },
            },
        },
    )
    # Matched before every other FlowSchema of the operator's (theirs start at 380).
    schema = build_flow_schema(
        THROTTLE, (OPERATOR_NAMESPACE, RELEASE), precedence=100, verbs=["*"],
        priority_level=THROTTLE,
    )  # fmt: skip
    kube.create(FLOW_SCHEMAS, schema)


def lift_throttle(kube: BlockingClient) -> None:
    delete_if_present(kube, f"{FLOW_SCHEMAS}/{THROTTLE}")
    delete_if_present(kube, f"{PRIORITY_LEVELS}/{THROTTLE}")


@pytest.mark.timeout(1200)
@pytest.mark.usefixtures("throttle")
def test_products_deleted_while_the_operator_is_throttled_leave_nothing_behind(
    *,
    kube: BlockingClient,
    make_namespaces: MakeNamespaces,
    start_operator: StartOperator,
    storage_class: str,
    fault: FaultRow,
) -> None:
    fault.scenario = f"4. {PRODUCTS} deletions while throttled (429)"
    namespaces = make_namespaces(NAMESPACES)
    start_operator(namespaces, drift_interval=DRIFT_SECONDS)
    names = [(namespaces[i % NAMESPACES], f"p-{i:04d}") for i in range(PRODUCTS)]
    started = time.monotonic()
    create_products(
        kube,
        [
            fault_product(ns, name, pipeline=False, reader=False, storage_class=storage_class)
            for ns, name in names
        ],
    )
    state, _ = wait_converged(kube, namespaces, timeout=600, interval=2.0, ready=False)
    fault.check(
        f"{PRODUCTS} products made and converged in {time.monotonic() - started:.0f} s, "
        f"{len(state.labelled)} children"
    )

    start_throttle(kube)
    throttled = time.monotonic()
    delete_products(kube, names)
    for namespace in namespaces:
        kube.delete(f"{DOMAINS}/{namespace}")
    fault.check(f"{PRODUCTS} products and their {NAMESPACES} domains deleted under the throttle")
    time.sleep(max(0.0, THROTTLE_SECONDS - (time.monotonic() - throttled)))  # measured
    rejected = rejected_requests(kube, [THROTTLE])[THROTTLE]
    lift_throttle(kube)
    lifted = time.monotonic()
    assert rejected > 0, "the operator was never refused: the throttle did not apply"
    fault.check(f"{rejected} requests of the operator refused with 429 in {THROTTLE_SECONDS:.0f} s")

    state, took = wait_converged(
        kube, namespaces, domains=namespaces, timeout=AFTER_THROTTLE_SECONDS, interval=2.0,
    )  # fmt: skip
    fault.converged(time.monotonic() - lifted)
    released = len(state.released_claims())
    assert not state.products
    assert released == PRODUCTS, f"{released} claims released of {PRODUCTS}"
    fault.check(
        f"no product, domain or child left, nothing Terminating, {released} claims released "
        f"{took:.0f} s after the throttle was lifted (limit {AFTER_THROTTLE_SECONDS:.0f} s)"
    )
