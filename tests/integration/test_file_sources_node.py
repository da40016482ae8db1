"""File inputs end to end on the real node: a product's sql pipeline joins a CSV file on a claim
of its namespace (mounted read-only into the runner's pod) with a JSON-lines file the runner
downloads from an HTTP server on the pods' gateway (where the local PostgreSQL listens too), and
a reader SELECTs the rows it published. While the claim is missing, InputsReady says so, naming
it, with a Warning Event, and no run is made; once the claim is there the run goes ahead."""

from __future__ import annotations

import functools
import json
import secrets
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dataproduct_operator.api.conditions import INPUTS_READY, Reason
from dataproduct_operator.api.kinds import API_VERSION
from dataproduct_operator.api.naming import run_job_name
from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.cluster.node_config import REAL_NODE_NAME
from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.constants import ANNOTATION_RUN
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.runner.report import RunResult
from dataproduct_operator.specs.dataproduct import parse_run_request
from tests.clusters import delete_domain, make_domain, namespace_name, superuser_sql
from tests.helpers import wait_for
from tests.integration.test_sql_pipelines_node import wait_run
from tests.lineage_sink import LineageSink
from tests.products import condition, delete_if_present, product_path
from tests.stores import q

PRODUCTS = "/apis/datamesh.dev/v1alpha1/namespaces/{namespace}/dataproducts"
CLAIM = "drop-box"
ORDERS_CSV = "order_id,customer_id,amount\no-1,1,10.50\no-2,2,20.25\no-3,1,3.00\n"
CUSTOMERS = [{"customer_id": 1, "segment": "retail"}, {"customer_id": 2, "segment": "wholesale"}]
TRANSFORM = (
    "SELECT o.order_id, o.amount, c.segment FROM orders o JOIN customers c USING (customer_id)"
)


@pytest.fixture
def served(postgres: LocalPostgres, tmp_path: Path) -> Iterator[str]:
    """An HTTP server on the pods' gateway serving customers.jsonl; its base URL."""
    assert postgres.pod_host is not None, "the session's cluster runs the real node"
    directory = tmp_path / "served"
    directory.mkdir()
    (directory / "customers.jsonl").write_text("".join(json.dumps(c) + "\n" for c in CUSTOMERS))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(directory))
    server = ThreadingHTTPServer((postgres.pod_host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{postgres.pod_host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def domain(kube: BlockingClient, control_plane: ClusterInfo) -> Iterator[str]:
    """A domain of its own, in a cluster with the real node."""
    assert control_plane.real_node == REAL_NODE_NAME
    name = namespace_name(f"files-{secrets.token_hex(2)}")
    make_domain(kube, name)
    yield name
    delete_if_present(kube, product_path(name, "orders"))
    delete_domain(kube, name)
    delete_if_present(kube, f"/api/v1/namespaces/{name}")


def _orders(namespace: str, base_url: str) -> dict[str, Any]:
    spec = {
        "domain": namespace, "owner": {"team": f"{namespace}-team"},
        "description": "Orders from the shop's file drop, with the CRM's segments.",
        "inputs": [
            {"name": "orders", "file": {"format": "csv",
                                        "volume": {"claimName": CLAIM, "path": "in/orders.csv"}}},
            {"name": "customers", "file": {"format": "jsonl",
                                           "url": f"{base_url}/customers.jsonl"}},
        ],
        "outputPorts": [{
            "name": "orders-v1", "store": {"name": "t-pg"},
            "schema": [{"name": "order_id", "type": "string", "required": True, "unique": True},
                       {"name": "amount", "type": "decimal"},
                       {"name": "segment", "type": "string"}],
        }],
        "pipelines": [{"name": "build", "sql": TRANSFORM, "output": "orders-v1",
                       "sources": ["orders", "customers"]}],
    }  # fmt: skip
    metadata = {"name": "orders", "namespace": namespace, "annotations": {ANNOTATION_RUN: "build"}}
    return {"apiVersion": API_VERSION, "kind": "DataProduct", "metadata": metadata, "spec": spec}


def _inputs_ready(kube: BlockingClient, namespace: str) -> dict[str, Any] | None:
    return condition(kube.get(product_path(namespace, "orders")), INPUTS_READY)


def _put_file_on_claim(kube: BlockingClient, namespace: str) -> None:
    """The claim, bound, with orders.csv written into its volume's directory on the node (the
    hostpath provisioner's), readable by the pipeline's user."""
    claims = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    kube.create(claims, {"metadata": {"name": CLAIM}, "spec": spec})

    def bound() -> str | None:
        claim = kube.get(f"{claims}/{CLAIM}")
        return claim["spec"].get("volumeName") if claim["status"].get("phase") == "Bound" else None

    volume = wait_for(bound, timeout=60, description=f"claim {CLAIM} to bind")
    directory = Path(kube.get(f"/api/v1/persistentvolumes/{volume}")["spec"]["hostPath"]["path"])
    (directory / "in").mkdir(parents=True)
    (directory / "in" / "orders.csv").write_text(ORDERS_CSV)
    for path in (directory, directory / "in"):
        path.chmod(0o755)  # read by the pod's non-root user
    (directory / "in" / "orders.csv").chmod(0o644)


@pytest.mark.usefixtures("node_operator", "store")
def test_a_run_joins_a_csv_on_a_claim_with_a_jsonl_from_a_url_once_the_claim_is_there(
    kube: BlockingClient, postgres: LocalPostgres, lineage_sink: LineageSink, domain: str,
    served: str,
) -> None:  # fmt: skip
    kube.create(PRODUCTS.format(namespace=domain), _orders(domain, served))

    # No claim yet: InputsReady names it, a Warning Event says so, and no run is made.
    missing = wait_for(
        lambda: (c := _inputs_ready(kube, domain)) and c["reason"] == Reason.CLAIM_NOT_FOUND and c,
        timeout=60, description="InputsReady to name the missing claim",
    )  # fmt: skip
    assert missing["status"] == "False"
    assert f"PersistentVolumeClaim {domain}/{CLAIM} does not exist" in missing["message"]

    def warned() -> list[dict[str, Any]]:
        events = kube.get(f"/api/v1/namespaces/{domain}/events")["items"]
        return [e for e in events if e["reason"] == Reason.CLAIM_NOT_FOUND]

    (event, *_) = wait_for(warned, timeout=30, description="the ClaimNotFound Event")
    assert event["type"] == "Warning" and CLAIM in event["message"]
    jobs = kube.get(f"/apis/batch/v1/namespaces/{domain}/jobs")["items"]
    assert jobs == []

    # The claim and its file: the product sees it on its own (no event tells it) and runs.
    _put_file_on_claim(kube, domain)
    request = parse_run_request("build")
    assert request is not None
    done = wait_run(kube, domain, run_job_name("orders", "build", request.run_id))
    assert done.report.result is RunResult.SUCCEEDED, done.report.error
    assert done.report.rows_read == {"orders": 3, "customers": 2}
    assert done.report.rows_written == 3
    pod = done.pod["spec"]
    (claim,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claim["persistentVolumeClaim"] == {"claimName": CLAIM, "readOnly": True}
    # The status is written once the run ends (one write per run): InputsReady with it.
    wait_for(
        lambda: (c := _inputs_ready(kube, domain)) and c["status"] == "True",
        timeout=30, description="InputsReady to be True",
    )  # fmt: skip

    endpoint = kube.get(product_path(domain, "orders"))["status"]["outputPorts"][0]["endpoint"]
    statement = q("SELECT order_id, amount, segment FROM {t} ORDER BY order_id",
                  endpoint["schema"], endpoint["table"])  # fmt: skip
    assert [tuple(row) for row in superuser_sql(postgres, statement)] == [
        ("o-1", Decimal("10.5000000000"), "retail"),
        ("o-2", Decimal("20.2500000000"), "wholesale"),
        ("o-3", Decimal("3.0000000000"), "retail"),
    ]

    # The run's OpenLineage events name both files, each after OpenLineage's naming.
    events = lineage_sink.wait_for_events(f"{domain}/orders/build",
                                          ["START", "COMPLETE"])  # fmt: skip
    assert lineage_sink.errors == []
    inputs = [(d["namespace"], d["name"]) for d in events[-1]["inputs"]]
    assert inputs == [(f"pvc://{domain}/{CLAIM}", "in/orders.csv"),
                      (served, "customers.jsonl")]  # fmt: skip
