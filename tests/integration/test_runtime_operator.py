"""The runtime against the local control plane: health and heartbeats, drift passes that undo
hand edits of the fields the operator sets, one run per run request, and two operators of
which one leads and the other takes over when it dies.

Operators run as the chart's ServiceAccount, with leader election on the release's Lease.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dataproduct_operator.constants import ANNOTATION_RUN
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.rest import ApiError
from tests.clusters import OPERATOR_NAMESPACE, RELEASE
from tests.helpers import wait_for
from tests.products import (
    PRODUCTS,
    OperatorProcess,
    change_spec,
    create_ready,
    example,
    names,
    operator_metrics,
    product_path,
    wait_ready,
)

LEASE = f"/apis/coordination.k8s.io/v1/namespaces/{OPERATOR_NAMESPACE}/leases/{RELEASE}"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
FAILOVER_SECONDS = 15.0

StartOperator = Callable[..., OperatorProcess]


@pytest.fixture(autouse=True)
def _products_live_in_a_restricted_domain(restricted_namespace: str, domain: str) -> None:
    """Every product of these tests belongs to a DataDomain, in a namespace that enforces Pod
    Security "restricted"."""


@pytest.fixture
def start_operator(
    operator_kubeconfig: Path, kube: BlockingClient, namespace: str, tmp_path: Path
) -> Iterator[StartOperator]:
    """``start_operator(drift_interval=..., health=...)``: ``dpo run`` on this test's namespace
    (and the cluster-scoped kinds); every one started is stopped at the end, after the test's
    products are deleted."""
    started: list[OperatorProcess] = []

    def start(*, drift_interval: float = 300.0, health: bool = False) -> OperatorProcess:
        process = OperatorProcess(
            operator_kubeconfig,
            tmp_path / f"operator-{len(started)}.log",
            drift_interval=drift_interval,
            extra=("--namespace", namespace),
            liveness=health,
        )
        started.append(process)
        return process

    yield start
    products = PRODUCTS.format(namespace=namespace)
    try:
        for item in kube.get(products)["items"]:
            kube.delete(f"{products}/{item['metadata']['name']}")
        if any(p.process.poll() is None for p in started):
            wait_for(lambda: not kube.get(products)["items"], description="products to go")
    finally:
        for process in started:
            if process.process.poll() is None:
                process.stop()


def healthz(process: OperatorProcess) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{process.liveness_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def metric(process: OperatorProcess, name: str) -> dict[str, float]:
    """The samples of one metric, by their labels joined as ``k=v,...``."""
    samples = operator_metrics(process).get(name, {})
    return {",".join(f"{k}={v}" for k, v in labels): value for labels, value in samples.items()}


def test_healthz_and_metrics_show_the_leader_and_a_heartbeat_of_every_drift_loop(
    start_operator: StartOperator,
) -> None:
    operator = start_operator(drift_interval=2.0, health=True)

    def every_loop_passed() -> dict[str, Any] | None:
        status, body = healthz(operator)
        passed = all(loop["lastPass"] for loop in body["loops"].values())
        return body if status == 200 and len(body["loops"]) == 5 and passed else None

    body = wait_for(every_loop_passed, timeout=30, description="a pass of every drift loop")
    assert body["leader"] is True
    assert set(body["loops"]) == {
        "drift-dataproducts",
        "drift-datadomains",
        "drift-meshpolicies",
        "drift-datastores",
        "drift-dataaccessrequests",
    }
    heartbeats = metric(operator, "dataproduct_operator_loop_last_pass_timestamp_seconds")
    assert set(heartbeats) == {f"loop={loop}" for loop in body["loops"]}
    assert all(abs(time.time() - when) < 30 for when in heartbeats.values())
    assert metric(operator, "dataproduct_operator_leader") == {"": 1.0}


def test_fields_changed_by_hand_are_restored_at_the_next_drift_pass(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    start_operator(drift_interval=3.0)
    create_ready(kube, example(namespace))
    binding = f"{RBAC}/namespaces/{namespace}/rolebindings/orders-reader"
    subjects = kube.get(binding)["subjects"]
    intruder = {"kind": "Group", "name": "system:authenticated", "apiGroup": ""}
    kube.merge_patch(binding, {"subjects": [*subjects, intruder]})
    namespace_path = f"/api/v1/namespaces/{namespace}"
    kube.merge_patch(
        namespace_path,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}},
    )
    policy = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"
    allow = f"{policy}/datamesh-allow-readers"
    kube.merge_patch(allow, {"spec": {"ingress": [{}]}})  # from anywhere

    wait_for(
        lambda: kube.get(binding)["subjects"] == subjects,
        timeout=20,
        description="the reader binding's subjects restored",
    )
    wait_for(
        lambda: (
            kube.get(namespace_path)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
            == "restricted"
        ),
        timeout=20,
        description="the namespace's Pod Security label restored",
    )
    wait_for(
        lambda: kube.get(allow)["spec"]["ingress"] != [{}],
        timeout=20,
        description="the readers' network policy restored",
    )
    events = kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    restored = [e["message"] for e in events if e["message"].startswith("Restored ")]
    assert any("RoleBinding orders-reader (subjects)" in message for message in restored)


def test_a_run_request_starts_one_run_even_when_its_job_is_deleted(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    operator = start_operator(drift_interval=2.0)
    create_ready(kube, example(namespace))
    path = product_path(namespace, "orders")
    jobs = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    kube.merge_patch(path, {"metadata": {"annotations": {ANNOTATION_RUN: "backfill:first"}}})
    (job,) = wait_for(lambda: names(kube, jobs), description="the run's Job")
    run_id = kube.get(f"{jobs}/{job}")["metadata"]["labels"]["datamesh.dev/run"]

    def recorded() -> bool:
        pipelines = kube.get(path).get("status", {}).get("pipelines", [])
        return any(p.get("lastRunId") == run_id for p in pipelines)

    wait_for(recorded, description="the run recorded in the status")
    kube.delete(f"{jobs}/{job}", {"propagationPolicy": "Background"})
    wait_for(lambda: job not in names(kube, jobs), description="the Job to go")
    # A change of the spec and two drift passes later, the run has not started again.
    generation = change_spec(kube, namespace, "orders", lambda s: s.update(version="1.2.1"))
    wait_ready(kube, namespace, "orders", generation=generation)
    passes = drift_passes(operator)
    wait_for(lambda: drift_passes(operator) >= passes + 2, description="two drift passes")
    assert job not in names(kube, jobs)
    kube.merge_patch(path, {"metadata": {"annotations": {ANNOTATION_RUN: "backfill:second"}}})
    wait_for(lambda: names(kube, jobs) - {job}, description="the second run's Job")


def drift_passes(process: OperatorProcess) -> float:
    """Completed passes of the products' drift loop."""
    return metric(process, "dataproduct_operator_loop_passes_total")["loop=drift-dataproducts"]


MANAGED_KINDS = (
    "/api/v1/namespaces/{}/serviceaccounts",
    "/api/v1/namespaces/{}/persistentvolumeclaims",
    "/api/v1/namespaces/{}/configmaps",
    "/api/v1/namespaces/{}/limitranges",
    "/api/v1/namespaces/{}/resourcequotas",
    RBAC + "/namespaces/{}/roles",
    RBAC + "/namespaces/{}/rolebindings",
    "/apis/batch/v1/namespaces/{}/cronjobs",
    "/apis/networking.k8s.io/v1/namespaces/{}/networkpolicies",
)


def our_writes(kube: BlockingClient, namespace: str, product: str) -> dict[str, Any]:
    """Each child of a product, by kind and name: its generation and when the operator last
    applied it (its managedFields entry). Others' writes (the CronJob controller's status at
    the top of the hour) change neither."""
    selector = {"labelSelector": f"datamesh.dev/data-product={product}"}
    found: dict[str, Any] = {}
    for path in MANAGED_KINDS:
        for item in kube.get(path.format(namespace), query=selector)["items"]:
            metadata = item["metadata"]
            applied = [
                entry.get("time")
                for entry in metadata.get("managedFields") or []
                if entry.get("manager") == "dataproduct-operator"
            ]
            found[f"{path}/{metadata['name']}"] = (metadata.get("generation"), applied)
    return found


def successful_reconciles(process: OperatorProcess) -> float:
    return metric(process, "dataproduct_reconcile_total").get("result=success", 0.0)


def managed_objects(kube: BlockingClient, namespace: str) -> int:
    """Objects in the namespace the operator made (its label), of every kind it makes."""
    selector = {"labelSelector": "app.kubernetes.io/managed-by=dataproduct-operator"}
    return sum(
        len(kube.get(path.format(namespace), query=selector)["items"]) for path in MANAGED_KINDS
    )


def lease_holder(kube: BlockingClient) -> str | None:
    try:
        return str(kube.get(LEASE)["spec"].get("holderIdentity") or "") or None
    except ApiError as error:
        if error.status == 404:
            return None
        raise


def leading(process: OperatorProcess) -> bool:
    return metric(process, "dataproduct_operator_leader").get("") == 1.0


def test_of_two_operators_one_leads_and_the_other_takes_over_within_15s_of_a_sigkill(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    first = start_operator()
    wait_for(lambda: leading(first), description="the first operator to lead")
    second = start_operator()
    wait_for(
        lambda: metric(second, "dataproduct_operator_leader") == {"": 0.0}, description="a standby"
    )
    create_ready(kube, example(namespace, "orders"))
    applied = [
        sum(metric(process, "dataproduct_child_applies_total").values())
        for process in (first, second)
    ]
    assert applied[1] == 0, "the standby applied nothing"
    made = managed_objects(kube, namespace) + 1  # and the domain's namespace
    assert 0 < applied[0] <= made, f"{applied[0]} applies of {made} objects: flapping"

    written = our_writes(kube, namespace, "orders")
    first.kill()
    killed = time.monotonic()
    kube.create(PRODUCTS.format(namespace=namespace), example(namespace, "refunds"))
    wait_ready(kube, namespace, "refunds", timeout=FAILOVER_SECONDS + 5)
    took = time.monotonic() - killed
    assert leading(second)
    assert took <= FAILOVER_SECONDS, f"a product created at the kill was Ready after {took:.1f}s"
    assert lease_holder(kube) is not None
    # The new leader reconciled the product made before the kill without writing to it.
    wait_for(lambda: successful_reconciles(second) >= 2, description="both reconciled")
    assert our_writes(kube, namespace, "orders") == written
