"""The DataProduct operator against the local control plane: children, status, runs, drift."""

from __future__ import annotations

import copy
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.k8s.rest import ApiError, RestClient
from tests.helpers import wait_for
from tests.integration.conftest import KubectlRunner

REPO = Path(__file__).resolve().parents[2]
PRODUCTS = "/apis/datamesh.dev/v1alpha1/namespaces/{namespace}/dataproducts"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def crds(kubectl: KubectlRunner, kube: RestClient) -> None:
    kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    wait_for(
        lambda: kube.get("/apis/datamesh.dev/v1alpha1").get("resources"),
        description="the DataProduct API to be served",
    )


@pytest.fixture(scope="module")
def operator(
    control_plane: ClusterInfo, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    """``dpo run`` as a separate process for the tests of this module."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "dataproduct_operator", "run",
                "--kubeconfig", str(control_plane.kubeconfig),
                "--metrics-port", str(_free_port()),
                "--liveness-port", "0",
                "--drift-interval", "30",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.returncode not in (0, -15):
        sys.stderr.write(log.read_text())


def example(namespace: str, name: str = "orders") -> dict[str, Any]:
    document = yaml.safe_load((REPO / "examples" / "sales-orders.yaml").read_text())
    document["metadata"] = {"name": name, "namespace": namespace}
    document["spec"]["domain"] = "sales"
    return document


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for item in obj.get("status", {}).get("conditions", []):
        if item["type"] == kind:
            return dict(item)
    return None


def wait_ready(
    kube: RestClient, namespace: str, name: str, *, generation: int | None = None
) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        product: dict[str, Any] = kube.get(f"{PRODUCTS.format(namespace=namespace)}/{name}")
        status = product.get("status", {})
        wanted = generation or product["metadata"]["generation"]
        found = condition(product, "Ready")
        if found and found["status"] == "True" and status.get("observedGeneration") == wanted:
            return product
        return None

    return wait_for(ready, timeout=60, description=f"DataProduct {name} to be Ready")


def create_ready(kube: RestClient, document: dict[str, Any]) -> dict[str, Any]:
    namespace, name = document["metadata"]["namespace"], document["metadata"]["name"]
    kube.create(PRODUCTS.format(namespace=namespace), document)
    return wait_ready(kube, namespace, name)


def names(kube: RestClient, path: str) -> set[str]:
    return {item["metadata"]["name"] for item in kube.get(path)["items"]}


def test_product_becomes_ready_with_every_child(
    operator: subprocess.Popen[bytes], kube: RestClient, namespace: str
) -> None:
    product = create_ready(kube, example(namespace))

    assert names(kube, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims") == {
        "orders-orders-v1",
        "orders-daily-revenue",
    }
    assert names(kube, f"/apis/batch/v1/namespaces/{namespace}/cronjobs") == {"orders-ingest"}
    roles = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    assert names(kube, f"{roles}/roles") == {"orders-reader", "orders-owner"}
    assert names(kube, f"{roles}/rolebindings") == {"orders-reader", "orders-owner"}
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
    }  # fmt: skip
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
    operator: subprocess.Popen[bytes], kube: RestClient, namespace: str
) -> None:
    create_ready(kube, example(namespace))
    path = f"{PRODUCTS.format(namespace=namespace)}/orders"
    kube.merge_patch(path, {"metadata": {"annotations": {"datamesh.dev/run": "backfill"}}})

    def recorded() -> dict[str, Any] | None:
        pipelines = kube.get(path).get("status", {}).get("pipelines", [])
        backfill = next(p for p in pipelines if p["name"] == "backfill")
        return backfill if backfill["lastRunStatus"] == "Succeeded" else None

    backfill = wait_for(recorded, description="the backfill run to be recorded")
    assert backfill["kind"] == "Job"
    assert backfill["lastSuccessfulTime"]
    job = kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{backfill['objectName']}")
    assert job["metadata"]["labels"]["datamesh.dev/pipeline"] == "backfill"


def test_child_deleted_by_hand_comes_back(
    operator: subprocess.Popen[bytes], kube: RestClient, namespace: str
) -> None:
    create_ready(kube, example(namespace))
    role = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/orders-reader"
    old_uid = kube.get(role)["metadata"]["uid"]
    kube.delete(role)
    wait_for(
        lambda: kube.exists(role) and kube.get(role)["metadata"]["uid"] != old_uid,
        description="the Role to be recreated",
    )


def test_removing_a_port_and_pipeline_prunes_their_children(
    operator: subprocess.Popen[bytes], kube: RestClient, namespace: str
) -> None:
    document = example(namespace)
    document["spec"]["deletionPolicy"] = "Delete"
    create_ready(kube, document)
    path = f"{PRODUCTS.format(namespace=namespace)}/orders"
    changed = copy.deepcopy(kube.get(path))
    changed["spec"]["outputPorts"] = changed["spec"]["outputPorts"][:1]
    changed["spec"]["pipelines"] = [
        p for p in changed["spec"]["pipelines"] if p["name"] != "ingest"
    ]
    changed["spec"]["access"]["readers"] = []
    kube.replace(path, changed)
    wait_ready(kube, namespace, "orders", generation=changed["metadata"]["generation"] + 1)
    wait_for(
        lambda: (
            names(kube, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")
            == {"orders-orders-v1"}
        ),
        description="the claim of the removed port to be deleted",
    )
    assert names(kube, f"/apis/batch/v1/namespaces/{namespace}/cronjobs") == set()
    bindings = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings"
    assert names(kube, bindings) == {"orders-owner"}


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
            "exactly one of dataProduct or external",
        ),
        (lambda s: s["outputPorts"].append(copy.deepcopy(s["outputPorts"][0])), "Duplicate value"),
        (lambda s: s.update(outputPorts=[]), "should have at least 1 items"),
    ],
    ids=["cron", "duration", "reader-namespace", "one-input-source", "duplicate-port", "no-port"],
)
def test_invalid_spec_is_rejected_at_apply_with_a_clear_message(
    crds: None, kube: RestClient, namespace: str, change: Any, message: str
) -> None:
    document = example(namespace)
    change(document["spec"])
    with pytest.raises(ApiError) as rejected:
        kube.create(PRODUCTS.format(namespace=namespace), document)
    assert rejected.value.status == 422
    assert message in rejected.value.message


def test_too_long_child_names_are_rejected(crds: None, kube: RestClient, namespace: str) -> None:
    document = example(namespace, name="a" * 40)
    document["spec"]["pipelines"][0]["name"] = "ingest-from-the-shop"  # 40 + 1 + 20 > 52
    with pytest.raises(ApiError) as rejected:
        kube.create(PRODUCTS.format(namespace=namespace), document)
    assert (
        "the CronJob name <product>-<pipeline> must be at most 52 characters"
        in rejected.value.message
    )
