"""The DataProduct lifecycle against the local control plane.

Deletion under both policies, what the operator must never delete, restarts that write
nothing, a kill mid-reconcile, claim resizing, a failing run and changes of readers. Every test
runs its own operator processes, scoped to the test's namespace, and stops them before it ends:
the restart test counts the API server's writes, so no operator of another test may run then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dataproduct_operator.api.kinds import LEGACY_FINALIZER
from dataproduct_operator.constants import (
    ANNOTATION_CONFIRM_DATA_DELETION,
    ANNOTATION_DESIRED_HASH,
    ANNOTATION_RETAINED_FROM,
    ANNOTATION_RUN,
    LABEL_MANAGED_BY,
    LABEL_PRODUCT,
    LABEL_RETAINED,
    OPERATOR_NAME,
)
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.specs.dataproduct import parse_run_request
from tests.clusters import wait_quiet_writes
from tests.helpers import wait_for
from tests.products import (
    DOMAIN_BINDINGS,
    PRODUCTS,
    OperatorProcess,
    change_spec,
    condition,
    create_ready,
    example,
    names,
    operator_metrics,
    product_path,
    wait_ready,
)

StartOperator = Callable[..., OperatorProcess]

# Where the objects of each kind of child live, per namespace.
CHILD_COLLECTIONS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "PersistentVolumeClaim": "/api/v1/namespaces/{ns}/persistentvolumeclaims",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "CronJob": "/apis/batch/v1/namespaces/{ns}/cronjobs",
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs",
}
# What the API server creates in every namespace by itself.
NAMESPACE_DEFAULTS = {"ServiceAccount": {"default"}, "ConfigMap": {"kube-root-ca.crt"}}


# --- helpers -----------------------------------------------------------------------------------


def document_of(namespace: str, name: str = "orders") -> dict[str, Any]:
    """The example product with a schedule that never comes up during a test.

    At the top of an hour the CronJob controller would otherwise start an ``ingest`` Job (and
    the operator would refresh the status for it): children and writes no test asked for.
    """
    document = example(namespace, name)
    ingest = next(p for p in document["spec"]["pipelines"] if p["name"] == "ingest")
    ingest["schedule"] = "0 0 1 1 *"
    return document


def apply_failures(kube: BlockingClient, namespace: str) -> list[str]:
    """Messages of the ApplyFailed Events in the namespace."""
    events = kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    return [e["message"] for e in events if e["reason"] == "ApplyFailed"]


def collection(kind: str, namespace: str) -> str:
    return CHILD_COLLECTIONS[kind].format(ns=namespace)


def items(
    kube: BlockingClient, kind: str, namespace: str, selector: str | None = None
) -> list[Any]:
    query = {"labelSelector": selector} if selector else None
    found: list[Any] = kube.get(collection(kind, namespace), query=query)["items"]
    return found


def children_of(kube: BlockingClient, namespace: str, product: str) -> dict[str, set[str]]:
    """Names of every object of each child kind that carries the product's label."""
    selector = f"{LABEL_PRODUCT}={product}"
    return {
        kind: {item["metadata"]["name"] for item in items(kube, kind, namespace, selector)}
        for kind in CHILD_COLLECTIONS
    }


def no_children() -> dict[str, set[str]]:
    return {kind: set() for kind in CHILD_COLLECTIONS}


def expected_children(product: str) -> dict[str, set[str]]:
    """The children of the example product, by kind, without a run Job."""
    return {
        "ServiceAccount": {product},
        "PersistentVolumeClaim": {f"{product}-orders-v1", f"{product}-daily-revenue"},
        "ConfigMap": {f"{product}-connection"},
        "Role": {f"{product}-reader", f"{product}-owner"},
        "RoleBinding": {f"{product}-reader", f"{product}-owner"},
        "CronJob": {f"{product}-ingest"},
        "Job": set(),
    }


def pipeline_status(
    kube: BlockingClient, namespace: str, name: str, pipeline: str
) -> dict[str, Any]:
    product = kube.get(product_path(namespace, name))
    found = [p for p in product.get("status", {}).get("pipelines", []) if p["name"] == pipeline]
    return dict(found[0]) if found else {}


def request_run(kube: BlockingClient, namespace: str, name: str, value: str) -> None:
    path = product_path(namespace, name)
    kube.merge_patch(path, {"metadata": {"annotations": {ANNOTATION_RUN: value}}})


def wait_run(
    kube: BlockingClient, namespace: str, name: str, pipeline: str, outcome: str
) -> dict[str, Any]:
    return wait_for(
        lambda: (
            status
            if (status := pipeline_status(kube, namespace, name, pipeline)).get("lastRunStatus")
            == outcome
            else None
        ),
        description=f"the last run of {name}/{pipeline} to be recorded as {outcome}",
    )


def wait_gone(kube: BlockingClient, path: str) -> None:
    wait_for(lambda: not kube.exists(path), description=f"{path} to be deleted")


def wait_domain(
    kube: BlockingClient, name: str, check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The DataDomain's status once it is Ready and ``check`` holds for it."""

    def done() -> dict[str, Any] | None:
        status: dict[str, Any] = (
            kube.get(f"/apis/datamesh.dev/v1alpha1/datadomains/{name}").get("status") or {}
        )
        ready = any(
            c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
        )
        return status if ready and check(status) else None

    return wait_for(done, description=f"DataDomain {name}")


def ready_gauges(process: OperatorProcess, namespace: str) -> dict[str, float]:
    gauges = operator_metrics(process).get("dataproduct_ready", {})
    return {
        dict(labels)["dataproduct"]: value
        for labels, value in gauges.items()
        if dict(labels)["namespace"] == namespace
    }


def successful_reconciles(process: OperatorProcess) -> float:
    totals = operator_metrics(process).get("dataproduct_reconcile_total", {})
    return totals.get((("result", "success"),), 0.0)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _products_live_in_a_restricted_domain(restricted_namespace: str, domain: str) -> None:
    """Every product of these tests belongs to a DataDomain, and every pipeline pod runs where
    Pod Security "restricted" is enforced."""


@pytest.fixture
def start_operator(
    operator_kubeconfig: Path, kube: BlockingClient, namespace: str, tmp_path: Path
) -> Iterator[StartOperator]:
    """``start_operator(drift_interval=...)``: ``dpo run`` watching this test's namespace.

    It runs as ``operator_kubeconfig``'s identity. The drift check is rare by default: a test
    must not depend on it to converge. At the end the test's products are deleted while an
    operator runs (so their retained claims are released), then every operator the test
    started is stopped.
    """
    started: list[OperatorProcess] = []

    def start(*, drift_interval: float = 300.0) -> OperatorProcess:
        log = tmp_path / f"operator-{len(started)}.log"
        process = OperatorProcess(
            operator_kubeconfig,
            log,
            drift_interval=drift_interval,
            extra=("--namespace", namespace),
        )
        started.append(process)
        return process

    yield start

    products = PRODUCTS.format(namespace=namespace)
    try:
        if kube.get(products)["items"]:
            if not any(p.process.poll() is None for p in started):
                start()
            for item in kube.get(products)["items"]:
                try:
                    kube.delete(f"{products}/{item['metadata']['name']}")
                except ApiError as error:
                    if error.status != 404:
                        raise
            wait_for(lambda: not kube.get(products)["items"], description="products to go")
    finally:
        for process in started:
            if process.process.poll() is None:
                process.stop()


# --- deletion ----------------------------------------------------------------------------------


def test_deleting_a_retained_product_keeps_its_claims_released_and_deletes_all_else(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    start_operator()
    product = create_ready(kube, document_of(namespace))  # deletionPolicy: Retain
    request_run(kube, namespace, "orders", "backfill")
    run = wait_run(kube, namespace, "orders", "backfill", "Succeeded")
    before = children_of(kube, namespace, "orders")
    assert before == {**expected_children("orders"), "Job": {run["objectName"]}}
    claims = {c["metadata"]["name"]: c for c in items(kube, "PersistentVolumeClaim", namespace)}
    assert not any(c["metadata"].get("ownerReferences") for c in claims.values())
    assert apply_failures(kube, namespace) == []

    assert not product["metadata"].get("finalizers"), "nothing holds a product"
    kube.delete(product_path(namespace, "orders"))
    wait_gone(kube, product_path(namespace, "orders"))

    # The garbage collector deletes what the product owns; the operator releases the claims.
    wait_for(
        lambda: (
            children_of(kube, namespace, "orders")
            == {**no_children(), "PersistentVolumeClaim": set(claims)}
            and all(
                c["metadata"]["labels"].get(LABEL_RETAINED) == "true"
                for c in items(kube, "PersistentVolumeClaim", namespace)
            )
        ),
        description="every child but the claims deleted, the claims released",
    )
    assert names(kube, collection("ServiceAccount", namespace)) == {"default"}
    assert names(kube, collection("ConfigMap", namespace)) == {"kube-root-ca.crt"}
    for claim in items(kube, "PersistentVolumeClaim", namespace):
        metadata = claim["metadata"]
        assert metadata["uid"] == claims[metadata["name"]]["metadata"]["uid"], "the same claim"
        assert "ownerReferences" not in metadata
        assert LABEL_MANAGED_BY not in metadata["labels"]
        assert metadata["labels"][LABEL_RETAINED] == "true"
        assert metadata["annotations"][ANNOTATION_RETAINED_FROM] == product["metadata"]["uid"]
        assert ANNOTATION_DESIRED_HASH not in metadata["annotations"]
        assert "deletionTimestamp" not in metadata
        assert claim["status"]["phase"] == "Bound"

    def retained_events() -> list[dict[str, Any]]:
        events = kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
        return [e for e in events if e["reason"] == "Retained"]

    retained = wait_for(retained_events, description="the Retained Event")
    assert len(retained) == 1
    assert retained[0]["involvedObject"]["uid"] == product["metadata"]["uid"]
    assert all(name in retained[0]["message"] for name in claims)


def test_deleting_a_product_with_delete_policy_deletes_every_child_and_its_claims(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    start_operator()
    document = document_of(namespace)
    document["spec"]["deletionPolicy"] = "Delete"
    create_ready(kube, document)
    request_run(kube, namespace, "orders", "backfill")
    run = wait_run(kube, namespace, "orders", "backfill", "Succeeded")
    assert children_of(kube, namespace, "orders") == {
        **expected_children("orders"),
        "Job": {run["objectName"]},
    }
    assert apply_failures(kube, namespace) == []

    kube.delete(product_path(namespace, "orders"))
    wait_gone(kube, product_path(namespace, "orders"))

    nothing = no_children()
    # Claims carry the pvc-protection finalizer: gone once the controller manager lets them go.
    wait_for(
        lambda: children_of(kube, namespace, "orders") == nothing,
        description="every child, claims included, to be deleted",
    )
    for kind, defaults in NAMESPACE_DEFAULTS.items():
        assert names(kube, collection(kind, namespace)) == defaults


def test_a_product_deleted_while_the_operator_is_stopped_has_its_claims_released_later(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    first = start_operator()
    create_ready(kube, document_of(namespace))  # deletionPolicy: Retain
    claims = names(kube, collection("PersistentVolumeClaim", namespace))
    assert first.stop() in (0, -15)
    kube.delete(product_path(namespace, "orders"))
    wait_gone(kube, product_path(namespace, "orders"))
    # No operator needed for what the product owns: the garbage collector deletes it.
    wait_for(
        lambda: (
            children_of(kube, namespace, "orders")
            == {**no_children(), "PersistentVolumeClaim": claims}
        ),
        description="every child but the claims deleted by the garbage collector",
    )

    start_operator(drift_interval=2.0)  # the drift check finds the claims without a product

    def released() -> bool:
        found = items(kube, "PersistentVolumeClaim", namespace)
        return {c["metadata"]["name"] for c in found} == claims and all(
            c["metadata"]["labels"].get(LABEL_RETAINED) == "true"
            and LABEL_MANAGED_BY not in c["metadata"]["labels"]
            for c in found
        )

    wait_for(released, description="the claims released by the next drift check")


def test_a_product_held_by_the_finalizer_of_earlier_versions_is_let_go_on_deletion(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    start_operator()
    document = document_of(namespace)
    document["metadata"]["finalizers"] = [LEGACY_FINALIZER]
    create_ready(kube, document)
    claims = names(kube, collection("PersistentVolumeClaim", namespace))
    kube.delete(product_path(namespace, "orders"))
    wait_gone(kube, product_path(namespace, "orders"))
    for claim in items(kube, "PersistentVolumeClaim", namespace):
        assert claim["metadata"]["labels"][LABEL_RETAINED] == "true"
    assert names(kube, collection("PersistentVolumeClaim", namespace)) == claims


def test_objects_without_the_managed_by_label_survive_prune_and_deletion(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    core = f"/api/v1/namespaces/{namespace}"
    only_product_label = {LABEL_PRODUCT: "orders"}
    claim_spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    handmade: list[tuple[str, dict[str, Any]]] = [
        (f"{core}/configmaps", {"metadata": {"name": "orders-connection-old"}, "data": {}}),
        (
            f"{core}/configmaps",
            {"metadata": {"name": "orders-notes", "labels": only_product_label}, "data": {}},
        ),
        (
            f"{core}/configmaps",
            {
                "metadata": {
                    "name": "orders-helm-values",
                    "labels": {**only_product_label, LABEL_MANAGED_BY: "Helm"},
                },
                "data": {},
            },
        ),
        (
            f"{core}/persistentvolumeclaims",
            {"metadata": {"name": "orders-daily-revenue-copy"}, "spec": claim_spec},
        ),
        (
            f"{core}/persistentvolumeclaims",
            {
                "metadata": {
                    "name": "orders-orders-v0",
                    "labels": {**only_product_label, "datamesh.dev/output-port": "orders-v0"},
                },
                "spec": claim_spec,
            },
        ),
        (
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
            {"metadata": {"name": "orders-auditor", "labels": only_product_label}, "rules": []},
        ),
    ]
    uids: dict[str, str] = {}
    for path, body in handmade:
        created = kube.create(path, body)
        uids[f"{path}/{body['metadata']['name']}"] = created["metadata"]["uid"]

    def survivors() -> dict[str, str]:
        return {path: kube.get(path)["metadata"]["uid"] for path in uids}

    start_operator()
    document = document_of(namespace)
    document["spec"]["deletionPolicy"] = "Delete"
    create_ready(kube, document)

    def drop_port_and_pipeline(spec: Any) -> None:
        spec["outputPorts"] = spec["outputPorts"][:1]
        spec["pipelines"] = [p for p in spec["pipelines"] if p["name"] != "ingest"]

    confirm = {ANNOTATION_CONFIRM_DATA_DELETION: "daily-revenue"}  # its data goes
    kube.merge_patch(product_path(namespace, "orders"), {"metadata": {"annotations": confirm}})
    generation = change_spec(kube, namespace, "orders", drop_port_and_pipeline)
    wait_ready(kube, namespace, "orders", generation=generation)
    wait_for(
        lambda: not kube.exists(f"{core}/persistentvolumeclaims/orders-daily-revenue"),
        description="the claim of the removed port to be pruned",
    )
    assert names(kube, collection("CronJob", namespace)) == set()
    assert survivors() == uids
    assert apply_failures(kube, namespace) == []

    kube.delete(product_path(namespace, "orders"))
    wait_gone(kube, product_path(namespace, "orders"))
    wait_for(
        lambda: not kube.exists(f"{core}/persistentvolumeclaims/orders-orders-v1"),
        description="the product's own claim to be deleted",
    )
    assert survivors() == uids
    for path in uids:
        assert "deletionTimestamp" not in kube.get(path)["metadata"], path


def test_deleting_the_namespace_of_a_product_finishes_without_a_failed_clean_up(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    """Events cannot be written in a terminating namespace; releasing the claims goes on
    regardless."""
    operator = start_operator()
    create_ready(kube, document_of(namespace))
    kube.delete(f"/api/v1/namespaces/{namespace}")
    wait_gone(kube, f"/api/v1/namespaces/{namespace}")
    log = operator.log.read_text()
    assert "Handling failed" not in log, log


def wait_refused(kube: BlockingClient, namespace: str, aspect: str) -> dict[str, Any]:
    """The condition of ``aspect`` of product "orders" once it reports a failure to apply."""

    def refused() -> dict[str, Any] | None:
        found = condition(kube.get(product_path(namespace, "orders")), aspect)
        return found if found and found["reason"] == "ApplyFailed" else None

    return wait_for(refused, description=f"{aspect} to report the clash")


def test_an_object_of_someone_else_made_while_the_operator_runs_is_never_taken_over(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    start_operator()
    create_ready(kube, document_of(namespace, name="invoices"))  # the operator is watching
    accounts = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    theirs = kube.create(accounts, {"metadata": {"name": "orders"}})  # the pipelines' identity
    kube.create(PRODUCTS.format(namespace=namespace), document_of(namespace))

    refused = wait_refused(kube, namespace, "PipelinesReady")
    assert "ServiceAccount orders: exists and is not managed by" in refused["message"]
    mine = kube.get(f"{accounts}/orders")
    assert mine["metadata"]["uid"] == theirs["metadata"]["uid"]
    assert LABEL_MANAGED_BY not in (mine["metadata"].get("labels") or {})


def test_an_object_of_someone_else_with_a_childs_name_is_never_taken_over(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
    theirs = kube.create(
        configmaps, {"metadata": {"name": "orders-connection"}, "data": {"owner": "finance"}}
    )
    start_operator()
    kube.create(PRODUCTS.format(namespace=namespace), document_of(namespace))

    refused = wait_refused(kube, namespace, "AccessReady")
    assert "ConfigMap orders-connection: exists and is not managed by" in refused["message"]
    assert condition(kube.get(product_path(namespace, "orders")), "Ready")["status"] == "False"
    wait_for(
        lambda: any("orders-connection: exists" in m for m in apply_failures(kube, namespace)),
        description="an ApplyFailed Event naming the ConfigMap",
    )
    mine = kube.get(f"{configmaps}/orders-connection")
    assert mine["metadata"]["uid"] == theirs["metadata"]["uid"]
    assert mine["data"] == {"owner": "finance"}
    assert LABEL_MANAGED_BY not in (mine["metadata"].get("labels") or {})
    # Every other child is in place: one clash blocks only its own object.
    assert children_of(kube, namespace, "orders")["Role"] == {"orders-reader", "orders-owner"}

    # Once the owner removes their object, the operator's retry creates its own.
    kube.delete(f"{configmaps}/orders-connection")
    wait_ready(kube, namespace, "orders", timeout=60)
    assert kube.get(f"{configmaps}/orders-connection")["metadata"]["labels"][LABEL_MANAGED_BY] == (
        "dataproduct-operator"
    )
    assert len([m for m in apply_failures(kube, namespace) if "orders-connection" in m]) == 1


# --- restarts and crashes ----------------------------------------------------------------------


def test_restarting_the_operator_with_ready_products_writes_nothing(
    start_operator: StartOperator,
    kube: BlockingClient,
    namespace: str,
    operator_writes: Callable[[], int],
) -> None:
    count = 5
    first = start_operator()
    wait_domain(kube, namespace, lambda status: True)  # onboarded
    at_start = wait_quiet_writes(operator_writes)
    for index in range(count):
        document = document_of(namespace, name=f"orders-{index}")
        kube.create(PRODUCTS.format(namespace=namespace), document)
    for index in range(count):
        wait_ready(kube, namespace, f"orders-{index}")
    wait_domain(kube, namespace, lambda status: status["dataProducts"]["ready"] == count)
    created = wait_quiet_writes(operator_writes)
    # The count sees the operator's own writes: 9 children, the status and an Event each, and
    # the reclaim policy of the volume of each of the 2 Retain ports; and once the domain's
    # network policy letting in the readers' namespaces, with its Event.
    assert created - at_start == count * 13 + 2
    assert first.stop() in (0, -15)
    before = operator_writes()

    # A short drift interval: the resume and then at least one drift check of every product.
    second = start_operator(drift_interval=3.0)
    wait_for(
        lambda: ready_gauges(second, namespace) == {f"orders-{i}": 1.0 for i in range(count)},
        description="the new operator to report every product Ready",
    )
    wait_for(
        lambda: successful_reconciles(second) >= 2 * count,
        description="the new operator to resume and drift-check every product",
    )
    after = wait_quiet_writes(operator_writes)
    log = second.log.read_text()[-3000:]
    assert after == before, f"{after - before} writes after the restart\n{log}"
    for index in range(count):
        wait_ready(kube, namespace, f"orders-{index}", timeout=1)


def test_operator_killed_mid_reconcile_converges_without_duplicate_children(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    products = [f"orders-{index}" for index in range(3)]
    first = start_operator()
    for name in products:
        document = document_of(namespace, name=name)
        document["metadata"]["annotations"] = {ANNOTATION_RUN: "backfill"}
        kube.create(PRODUCTS.format(namespace=namespace), document)
    wait_for(
        lambda: items(kube, "ServiceAccount", namespace, f"{LABEL_MANAGED_BY}={OPERATOR_NAME}"),
        interval=0.02,
        description="the operator to start applying children",
    )
    first.kill()

    def ready(name: str) -> bool:
        found = condition(kube.get(product_path(namespace, name)), "Ready")
        return bool(found and found["status"] == "True")

    assert not all(ready(name) for name in products), "killed after the work was done"
    ours = f"{LABEL_MANAGED_BY}={OPERATOR_NAME}"
    made_before = {
        (kind, item["metadata"]["name"]): item["metadata"]["uid"]
        for kind in CHILD_COLLECTIONS
        for item in items(kube, kind, namespace, ours)
    }

    start_operator()
    for name in products:
        wait_ready(kube, namespace, name)
        wait_run(kube, namespace, name, "backfill", "Succeeded")

    run_id = parse_run_request("backfill").run_id  # type: ignore[union-attr]
    for name in products:
        assert children_of(kube, namespace, name) == {
            **expected_children(name),
            "Job": {f"{name}-backfill-{run_id}"},
        }, name
        assert pipeline_status(kube, namespace, name, "backfill")["objectName"] == (
            f"{name}-backfill-{run_id}"
        )
    for kind, defaults in NAMESPACE_DEFAULTS.items():
        expected = set().union(*(expected_children(name)[kind] for name in products))
        assert names(kube, collection(kind, namespace)) == expected | defaults
    made_after = {
        (kind, item["metadata"]["name"]): item["metadata"]["uid"]
        for kind in CHILD_COLLECTIONS
        for item in items(kube, kind, namespace, ours)
    }
    # What the killed operator had made was kept, not deleted and made again.
    assert {key: made_after.get(key) for key in made_before} == made_before
    assert apply_failures(kube, namespace) == []


# --- changes of the spec -----------------------------------------------------------------------


def test_a_larger_claim_size_is_applied_and_a_smaller_one_is_not(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    start_operator()
    document = document_of(namespace)
    document["spec"]["outputPorts"][0]["storage"] = {"size": "5Gi"}
    create_ready(kube, document)
    claim_path = f"{collection('PersistentVolumeClaim', namespace)}/orders-orders-v1"

    def requested() -> str:
        size: str = kube.get(claim_path)["spec"]["resources"]["requests"]["storage"]
        return size

    assert requested() == "5Gi"
    uid = kube.get(claim_path)["metadata"]["uid"]

    def resize(size: str) -> Callable[[Any], None]:
        return lambda spec: spec["outputPorts"][0]["storage"].update(size=size)

    generation = change_spec(kube, namespace, "orders", resize("8Gi"))
    product = wait_ready(kube, namespace, "orders", generation=generation)
    assert requested() == "8Gi"
    assert condition(product, "StorageReady")["reason"] == "ClaimsBound"  # type: ignore[index]

    generation = change_spec(kube, namespace, "orders", resize("2Gi"))
    product = wait_ready(kube, namespace, "orders", generation=generation)
    assert requested() == "8Gi"
    assert kube.get(claim_path)["metadata"]["uid"] == uid
    storage = condition(product, "StorageReady")
    assert storage is not None
    assert storage["reason"] == "ClaimsBound"
    assert (
        "claim orders-orders-v1 keeps 8Gi: a claim never shrinks (spec asks 2Gi)"
        in (storage["message"])
    )
    assert apply_failures(kube, namespace) == []


def test_a_failing_on_demand_run_records_failed_and_its_time_and_keeps_the_product_ready(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    operator = start_operator()
    document = document_of(namespace)
    backfill = next(p for p in document["spec"]["pipelines"] if p["name"] == "backfill")
    backfill["env"] = [{"name": "KWOK_SIMULATE_FAILURE", "value": "true"}]
    backfill["retries"] = 0
    create_ready(kube, document)

    request_run(kube, namespace, "orders", "backfill")
    status = wait_run(kube, namespace, "orders", "backfill", "Failed")
    assert status["lastFailureTime"]
    assert "lastSuccessfulTime" not in status
    job = kube.get(f"{collection('Job', namespace)}/{status['objectName']}")
    assert job["spec"]["backoffLimit"] == 0
    failed = [c for c in job["status"]["conditions"] if c["type"] == "Failed"]
    assert failed and failed[0]["status"] == "True"
    assert failed[0]["lastTransitionTime"] == status["lastFailureTime"]

    # A failed run leaves the product provisioned (Ready, PipelinesReady); DataHealthy says
    # which pipeline failed and why, in the same status write as the run's result.
    product = kube.get(product_path(namespace, "orders"))
    pipelines = condition(product, "PipelinesReady")
    assert pipelines is not None
    assert (pipelines["status"], pipelines["reason"]) == ("True", "PipelinesScheduled")
    ready = condition(product, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("True", "Reconciled")
    why = status["lastRun"]["message"]
    assert why and status["lastRun"]["result"] == "Failed"
    data = condition(product, "DataHealthy")
    assert data is not None
    assert (data["status"], data["reason"], data["message"]) == (
        "False",
        "RunsFailing",
        f"pipeline backfill: the last run failed: {why}",
    )
    assert apply_failures(kube, namespace) == []
    wait_for(
        lambda: (
            operator_metrics(operator)["dataproduct_pipeline_last_run_failed"].get(
                (("dataproduct", "orders"), ("namespace", namespace), ("pipeline", "backfill"))
            )
            == 1.0
        ),
        description="the operator's metric of the failed run",
    )
    events = kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    run_failed = [e for e in events if e["reason"] == "RunFailed"]
    assert len(run_failed) == 1, [e["message"] for e in run_failed]
    assert run_failed[0]["type"] == "Warning"
    assert run_failed[0]["message"].startswith("Pipeline backfill failed at ")
    assert run_failed[0]["involvedObject"]["name"] == "orders"


def test_adding_and_removing_readers_changes_the_subjects_of_the_reader_binding(
    start_operator: StartOperator, kube: BlockingClient, namespace: str
) -> None:
    start_operator()
    document = document_of(namespace)
    document["spec"]["access"]["readers"] = []
    product = create_ready(kube, document)
    bindings = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings"
    assert names(kube, bindings) == {"orders-owner", *DOMAIN_BINDINGS}
    assert condition(product, "AccessReady")["status"] == "True"  # type: ignore[index]

    analysts = {"kind": "Group", "name": "finance-analysts"}
    reporting = {"kind": "ServiceAccount", "name": "reporting", "namespace": "finance"}
    rbac = {"apiGroup": "rbac.authorization.k8s.io"}

    def set_readers(readers: list[dict[str, str]]) -> None:
        generation = change_spec(
            kube, namespace, "orders", lambda spec: spec["access"].update(readers=readers)
        )
        wait_ready(kube, namespace, "orders", generation=generation)

    set_readers([analysts])
    binding = kube.get(f"{bindings}/orders-reader")
    assert binding["subjects"] == [{**analysts, **rbac}]
    assert binding["roleRef"]["name"] == "orders-reader"

    set_readers([analysts, reporting])
    assert kube.get(f"{bindings}/orders-reader")["subjects"] == [{**analysts, **rbac}, reporting]

    set_readers([reporting])
    assert kube.get(f"{bindings}/orders-reader")["subjects"] == [reporting]
    assert names(kube, bindings) == {"orders-reader", "orders-owner", *DOMAIN_BINDINGS}
    assert apply_failures(kube, namespace) == []
