"""The DataProduct operator against the local control plane: children, status, runs, drift."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dataproduct_operator.constants import ANNOTATION_CONFIRM_DATA_DELETION
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.rest import ApiError
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
    product_path,
    wait_ready,
)


@pytest.fixture(autouse=True)
def _products_live_in_a_restricted_domain(restricted_namespace: str, domain: str) -> None:
    """Every product of these tests belongs to a DataDomain, and every pipeline pod runs where
    Pod Security "restricted" is enforced."""


def test_product_becomes_ready_with_every_child(
    operator: OperatorProcess, kube: BlockingClient, namespace: str
) -> None:
    product = create_ready(kube, example(namespace))

    assert names(kube, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims") == {
        "orders-orders-v1",
        "orders-daily-revenue",
    }
    assert names(kube, f"/apis/batch/v1/namespaces/{namespace}/cronjobs") == {"orders-ingest"}
    roles = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    assert names(kube, f"{roles}/roles") == {"orders-reader", "orders-owner"}
    assert names(kube, f"{roles}/rolebindings") == {
        "orders-reader",
        "orders-owner",
        "datamesh-domain-editors",  # the domain's, not the product's
        "datamesh-operator-namespace-writer",  # the domain's: the operator's own
    }
    assert "orders" in names(kube, f"/api/v1/namespaces/{namespace}/serviceaccounts")
    connection = kube.get(f"/api/v1/namespaces/{namespace}/configmaps/orders-connection")
    assert '"claimName": "orders-orders-v1"' in connection["data"]["output-ports.json"]

    status = product["status"]
    assert {p["name"]: p["phase"] for p in status["outputPorts"]} == {
        "orders-v1": "Bound",
        "daily-revenue": "Bound",
    }
    assert {c["type"] for c in status["conditions"]} == {
        "Ready", "StorageReady", "PipelinesReady", "AccessReady", "MonitoringReady",
        "InputsReady", "PolicyCompliant", "DataHealthy",
    }  # fmt: skip
    # Provisioned is not healthy data: no run has published anything yet.
    data_healthy = condition(product, "DataHealthy")
    assert data_healthy is not None
    assert (data_healthy["status"], data_healthy["reason"]) == ("Unknown", "NoDataYet")
    assert condition(product, "MonitoringReady")["reason"] == "PrometheusOperatorNotInstalled"  # type: ignore[index]

    cronjob = kube.get(f"/apis/batch/v1/namespaces/{namespace}/cronjobs/orders-ingest")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["serviceAccountName"] == "orders"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OUTPUT_PORT_ORDERS_V1_PATH"] == "/data/orders-v1"
    assert cronjob["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 2
    assert cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 1800


def test_on_demand_run_creates_a_job_and_records_its_status(
    operator: OperatorProcess, kube: BlockingClient, namespace: str
) -> None:
    create_ready(kube, example(namespace))
    path = product_path(namespace, "orders")
    kube.merge_patch(path, {"metadata": {"annotations": {"datamesh.dev/run": "backfill"}}})

    def recorded() -> dict[str, Any] | None:
        pipelines = kube.get(path).get("status", {}).get("pipelines", [])
        backfill = next(p for p in pipelines if p["name"] == "backfill")
        return backfill if backfill["lastRunStatus"] == "Succeeded" else None

    backfill = wait_for(recorded, description="the backfill run to be recorded")
    # The run's pod was admitted where a pod of default settings is refused.
    plain_pod = {
        "metadata": {"name": "plain"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    with pytest.raises(ApiError) as refused:
        kube.create(f"/api/v1/namespaces/{namespace}/pods", plain_pod)
    assert 'violates PodSecurity "restricted' in refused.value.message
    assert backfill["kind"] == "Job"
    assert backfill["lastSuccessfulTime"]
    job = kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{backfill['objectName']}")
    assert job["metadata"]["labels"]["datamesh.dev/pipeline"] == "backfill"

    # A routine run is the status's to show: no Event of the operator's for making its Job or
    # for its success (each would be a write per run), the Job controller's own on the Job.
    def job_events() -> list[dict[str, Any]] | None:
        events = kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
        on_job = [e for e in events if e["involvedObject"]["name"] == backfill["objectName"]]
        return on_job if any(e["reason"] == "Completed" for e in on_job) else None

    assert {e["source"].get("component") for e in wait_for(job_events)} == {"job-controller"}
    events = kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    on_product = [e for e in events if e["involvedObject"]["name"] == "orders"]
    assert not [e for e in on_product if e["reason"] == "RunSucceeded"]
    assert not [e for e in on_product if backfill["objectName"] in e["message"]]


def test_child_deleted_by_hand_comes_back(
    operator: OperatorProcess, kube: BlockingClient, namespace: str
) -> None:
    create_ready(kube, example(namespace))
    role = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/orders-reader"
    old_uid = kube.get(role)["metadata"]["uid"]
    kube.delete(role)
    wait_for(
        lambda: kube.exists(role) and kube.get(role)["metadata"]["uid"] != old_uid,
        description="the Role to be recreated",
    )


def test_added_ports_and_pipelines_get_children_and_removed_ones_are_pruned(
    operator: OperatorProcess, kube: BlockingClient, namespace: str
) -> None:
    document = example(namespace)
    document["spec"]["deletionPolicy"] = "Delete"
    create_ready(kube, document)
    claims = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"
    cronjobs = f"/apis/batch/v1/namespaces/{namespace}/cronjobs"
    bindings = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings"

    def add(spec: Any) -> None:
        spec["outputPorts"].append({"name": "returns-v1", "format": "jsonl"})
        spec["pipelines"].append(
            {"name": "compact", "image": "ghcr.io/acme/compact:1", "schedule": "0 0 1 1 *"}
        )

    generation = change_spec(kube, namespace, "orders", add)
    wait_ready(kube, namespace, "orders", generation=generation)
    assert names(kube, claims) == {"orders-orders-v1", "orders-daily-revenue", "orders-returns-v1"}
    assert names(kube, cronjobs) == {"orders-ingest", "orders-compact"}
    compact = kube.get(f"{cronjobs}/orders-compact")["spec"]["jobTemplate"]["spec"]["template"]
    mounts = {m["mountPath"] for m in compact["spec"]["containers"][0]["volumeMounts"]}
    assert "/data/returns-v1" in mounts

    def remove(spec: Any) -> None:
        spec["outputPorts"] = spec["outputPorts"][:1]
        spec["pipelines"] = [p for p in spec["pipelines"] if p["name"] == "backfill"]
        spec["access"]["readers"] = []

    # Removing the ports of a Delete product deletes their data: the change is confirmed.
    confirm = {ANNOTATION_CONFIRM_DATA_DELETION: "daily-revenue,returns-v1"}
    kube.merge_patch(product_path(namespace, "orders"), {"metadata": {"annotations": confirm}})
    generation = change_spec(kube, namespace, "orders", remove)
    wait_ready(kube, namespace, "orders", generation=generation)
    wait_for(
        lambda: names(kube, claims) == {"orders-orders-v1"},
        description="the claims of the removed ports to be deleted",
    )
    assert names(kube, cronjobs) == set()
    assert names(kube, bindings) == {"orders-owner", *DOMAIN_BINDINGS}


def _as_sql_pipeline(**fields: Any) -> Any:
    """A change making the first pipeline a sql one with ``fields``."""

    def change(spec: Any) -> None:
        spec["pipelines"][0] = {"name": spec["pipelines"][0]["name"], **fields}

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s["pipelines"][0].update(schedule="every hour"),
            "schedule must be a 5-field cron expression",
        ),
        (
            lambda s: s["outputPorts"][0].update(slo={"freshness": "soon"}),
            "freshness must be a duration",
        ),
        (
            lambda s: s["access"]["readers"].append({"kind": "ServiceAccount", "name": "x"}),
            "a ServiceAccount reader needs a namespace",
        ),
        (
            lambda s: s["inputs"][0].update(dataProduct={"name": "a", "port": "b"}),
            "an input must set exactly one of dataProduct, external or file",
        ),
        (lambda s: s["outputPorts"].append(copy.deepcopy(s["outputPorts"][0])), "Duplicate value"),
        (lambda s: s.update(outputPorts=[]), "should have at least 1 items"),
        (
            lambda s: s["pipelines"][0].update(sql="SELECT 1"),
            "a pipeline sets exactly one of image (a container of your own) or sql",
        ),
        (
            _as_sql_pipeline(sql="SELECT 1"),
            "a sql pipeline names the output port it writes in output",
        ),
        (
            _as_sql_pipeline(sql="DELETE FROM orders", output="orders-v1"),
            "sql must be one query that reads",
        ),
        (
            _as_sql_pipeline(sql="SELECT 1", output="nowhere"),
            "pipelines[].output must name one of spec.outputPorts",
        ),
        (
            _as_sql_pipeline(sql="SELECT 1", output="orders-v1", sources=["nothing"]),
            "pipelines[].sources must name inputs of spec.inputs",
        ),
        (
            lambda s: s["outputPorts"][0].update(checks=[{"name": "c", "minRows": 1, "sql": "x"}]),
            "a check sets exactly one of sql, minRows, maxNullFraction or freshness",
        ),
    ],
    ids=[
        "cron",
        "duration",
        "reader-namespace",
        "one-input-source",
        "duplicate-port",
        "no-port",
        "image-and-sql",
        "sql-without-output",
        "sql-that-writes",
        "output-not-a-port",
        "source-not-an-input",
        "check-of-two-kinds",
    ],
)
def test_invalid_spec_is_rejected_at_apply_with_a_clear_message(
    crds: None, kube: BlockingClient, namespace: str, change: Any, message: str
) -> None:
    document = example(namespace)
    change(document["spec"])
    with pytest.raises(ApiError) as rejected:
        kube.create(PRODUCTS.format(namespace=namespace), document)
    assert rejected.value.status == 422
    assert message in rejected.value.message


def test_a_sql_pipeline_with_checks_is_accepted_at_apply(
    crds: None, kube: BlockingClient, namespace: str
) -> None:
    document = example(namespace)
    port = document["spec"]["outputPorts"][0]
    port["slo"] = {"freshness": "1d", "freshnessColumn": "placed_at"}
    port["checks"] = [
        {"name": "no-negative", "sql": "SELECT count(*) FROM orders_v1 WHERE amount < 0"},
        {"name": "enough", "severity": "Warning", "minRows": 1},
        {"name": "emails", "maxNullFraction": {"column": "email", "fraction": 0.1}},
        {"name": "fresh", "freshness": {"column": "placed_at", "maxAge": "2d"}},
    ]  # fmt: skip
    document["spec"]["pipelines"].append({
        "name": "transform", "sql": "WITH o AS (SELECT * FROM orders) SELECT * FROM o",
        "output": port["name"], "mode": "Merge", "sources": [],
    })  # fmt: skip
    created = kube.create(PRODUCTS.format(namespace=namespace), document)
    (transform,) = [p for p in created["spec"]["pipelines"] if p["name"] == "transform"]
    assert transform["mode"] == "Merge" and "image" not in transform
    assert [c["name"] for c in created["spec"]["outputPorts"][0]["checks"]] == [
        "no-negative", "enough", "emails", "fresh"
    ]  # fmt: skip


def test_too_long_child_names_are_rejected(
    crds: None, kube: BlockingClient, namespace: str
) -> None:
    document = example(namespace, name="a" * 40)
    document["spec"]["pipelines"][0]["name"] = "ingest-from-the-shop"  # 40 + 1 + 20 > 52
    with pytest.raises(ApiError) as rejected:
        kube.create(PRODUCTS.format(namespace=namespace), document)
    assert (
        "the CronJob name <product>-<pipeline> must be at most 52 characters"
        in rejected.value.message
    )
