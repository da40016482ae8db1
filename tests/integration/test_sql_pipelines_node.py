"""sql pipelines end to end on the real node: the operator (as the chart's ServiceAccount, its
pipeline pods placed on the real node) runs the runner image there; the pod reaches the local
PostgreSQL at the node's gateway, reads an upstream product's table through the grant the
operator made and an external PostgreSQL table with the login of the product's own Secret, and
publishes through the quality gate. Each run's report is read from its pod's termination
message, as the kubelet keeps it; its progress from `kubectl logs`."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from psycopg import sql

from dataproduct_operator.api.kinds import API_VERSION
from dataproduct_operator.api.naming import run_job_name
from dataproduct_operator.cluster import images
from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.cluster.node import NODE_IMAGES
from dataproduct_operator.cluster.node_config import REAL_NODE_NAME
from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.constants import ANNOTATION_RUN
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.runner.report import RunReport, RunResult
from dataproduct_operator.specs.dataproduct import parse_run_request
from tests.clusters import (
    KubectlRunner,
    delete_domain,
    login_sql,
    make_domain,
    namespace_name,
    superuser_sql,
)
from tests.helpers import wait_for
from tests.products import (
    OperatorProcess,
    change_spec,
    create_ready,
    delete_if_present,
    product_path,
)
from tests.stores import put_secret, q, secret_document, wait_login

PRODUCTS = "/apis/datamesh.dev/v1alpha1/namespaces/{namespace}/dataproducts"
TRANSFORM = (
    "SELECT s.order_id, s.amount, c.segment, s.placed_at "
    "FROM shop s JOIN customers c USING (customer_id)"
)
ORDERS = [
    ("o-1", 1, "10.50", "2026-11-29 10:00:00+00"),
    ("o-2", 2, "20.25", "2026-11-29 11:00:00+00"),
    ("o-3", 1, "3.00", "2026-11-29 12:30:00+00"),
]
CUSTOMERS = [(1, "retail"), (2, "wholesale")]
RUN_SECONDS = 120.0  # a run's pod on a machine shared with other test sessions


@dataclass
class NodeMesh:
    """Two domains: ``upstream`` with the product customers (its table filled by hand: its own
    pipeline is not the subject) and a reporting ServiceAccount; ``domain`` with the product
    orders, whose sql pipeline joins customers with the external shop table."""

    kube: BlockingClient
    postgres: LocalPostgres
    domain: str
    upstream: str
    shop_schema: str
    runs: int = 0

    @property
    def path(self) -> str:
        return product_path(self.domain, "orders")

    def shop(self, statement: str, params: tuple[Any, ...] | None = None) -> None:
        """SQL on the external shop table, as its own system would change it."""
        superuser_sql(self.postgres, statement.format(t=f"{self.shop_schema}.orders"), params)

    def table(self) -> tuple[str, str]:
        endpoint = self.kube.get(self.path)["status"]["outputPorts"][0]["endpoint"]
        return endpoint["schema"], endpoint["table"]

    def published(self) -> list[tuple[Any, ...]]:
        """The port's rows as its reader selects them, with the login of the reader's Secret
        in the reader's namespace."""
        user, password = wait_login(self.kube, self.upstream, "dm-store-t-pg-reporting")
        statement = q("SELECT order_id, amount, segment FROM {t} ORDER BY order_id", *self.table())
        return login_sql(self.postgres, user, password, statement)

    def run(self, **pipeline: Any) -> Run:
        """One on-demand run of the pipeline ``build`` (changed by ``pipeline`` first), until its
        pod ended; the run."""
        if pipeline:
            change_spec(self.kube, self.domain, "orders",
                        lambda spec: spec["pipelines"][0].update(pipeline))  # fmt: skip
        self.runs += 1
        value = f"build:{self.runs}"
        self.kube.merge_patch(self.path, {"metadata": {"annotations": {ANNOTATION_RUN: value}}})
        request = parse_run_request(value)
        assert request is not None
        job = run_job_name("orders", "build", request.run_id)
        return wait_run(self.kube, self.domain, job)

    def set_checks(self, checks: list[dict[str, Any]]) -> None:
        change_spec(self.kube, self.domain, "orders",
                    lambda spec: spec["outputPorts"][0].update(checks=checks))  # fmt: skip


@dataclass(frozen=True)
class Run:
    job: dict[str, Any]
    pod: dict[str, Any]

    @property
    def terminated(self) -> dict[str, Any]:
        state: dict[str, Any] = self.pod["status"]["containerStatuses"][0]["state"]["terminated"]
        return state

    @property
    def report(self) -> RunReport:
        """The run report the runner wrote to its termination message."""
        return RunReport.from_json(self.terminated["message"])

    @property
    def job_failed(self) -> bool:
        conditions = self.job.get("status", {}).get("conditions") or []
        return any(c["type"] == "Failed" and c["status"] == "True" for c in conditions)


def wait_run(kube: BlockingClient, namespace: str, job: str) -> Run:
    """The run's Job once it finished (Complete or Failed) and its pod."""

    def finished() -> Run | None:
        found = kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs", query={
            "fieldSelector": f"metadata.name={job}"})["items"]  # fmt: skip
        conditions = (found[0].get("status", {}).get("conditions") or []) if found else []
        if not any(c["type"] in ("Complete", "Failed") and c["status"] == "True"
                   for c in conditions):  # fmt: skip
            return None
        pods = kube.get(f"/api/v1/namespaces/{namespace}/pods",
                        query={"labelSelector": f"job-name={job}"})["items"]  # fmt: skip
        ended = [p for p in pods if p["status"].get("phase") in ("Succeeded", "Failed")]
        return Run(found[0], ended[0]) if ended else None

    return wait_for(finished, timeout=RUN_SECONDS, interval=0.5, description=f"Job {job} to end")


def _product(namespace: str, name: str, description: str, **spec: Any) -> dict[str, Any]:
    """A product of the domain owning ``namespace``."""
    owner = {"team": f"{namespace}-team"}
    spec = {"domain": namespace, "owner": owner, "description": description, **spec}
    metadata = {"name": name, "namespace": namespace}
    return {"apiVersion": API_VERSION, "kind": "DataProduct", "metadata": metadata, "spec": spec}


def _customers(upstream: str, domain: str) -> dict[str, Any]:
    return _product(
        upstream, "customers", "Customers and their segment.",
        outputPorts=[{
            "name": "customers-v1",
            "store": {"name": "t-pg"},
            "schema": [{"name": "customer_id", "type": "integer", "unique": True},
                       {"name": "segment", "type": "string"}],
        }],
        access={"readers": [{"kind": "ServiceAccount", "name": "orders", "namespace": domain}]},
    )  # fmt: skip


def _orders(domain: str, upstream: str, postgres: LocalPostgres, shop: str) -> dict[str, Any]:
    assert postgres.pod_host is not None, "the session's cluster runs the real node"
    location = f"postgresql://{postgres.pod_host}:{postgres.port}/{postgres.database}"
    return _product(
        domain, "orders", "Orders with their customer's segment.",
        inputs=[
            {"name": "customers", "dataProduct": {
                "namespace": upstream, "name": "customers", "port": "customers-v1"}},
            {"name": "shop", "external": {"type": "postgres", "uri": location,
                                          "table": f"{shop}.orders",
                                          "secretRef": {"name": "orders-shop"}}},
        ],
        outputPorts=[{
            "name": "orders-v1",
            "store": {"name": "t-pg"},
            "schema": [
                {"name": "order_id", "type": "string", "required": True, "unique": True},
                {"name": "amount", "type": "decimal"},
                {"name": "segment", "type": "string"},
                {"name": "placed_at", "type": "timestamp"},
            ],
            "slo": {"freshness": "1d", "freshnessColumn": "placed_at"},
        }],
        pipelines=[{"name": "build", "sql": TRANSFORM, "output": "orders-v1",
                    "sources": ["customers", "shop"]}],
        access={"readers": [{"kind": "ServiceAccount", "name": "reporting",
                             "namespace": upstream}]},
    )  # fmt: skip


@pytest.fixture(scope="module")
def node_mesh(
    node_operator: OperatorProcess,
    kube: BlockingClient,
    control_plane: ClusterInfo,
    store: str,
    postgres: LocalPostgres,
) -> Iterator[NodeMesh]:
    assert control_plane.real_node == REAL_NODE_NAME
    # Without it every run would wait for an image nothing can pull: say so at once.
    runner = images.image_spec("runner").ref
    assert runner in _node_images(kube), f"no {runner} on the real node: run `make images`"
    suffix = secrets.token_hex(3)
    domain, upstream = namespace_name(f"sql-node-{suffix}"), namespace_name(f"crm-{suffix}")
    shop = f"t_shop_{suffix}"
    reader, password = f"t_shop_reader_{suffix}", secrets.token_urlsafe(24)
    # The external source: a schema of its own, read by a login of its own (not the mesh's).
    superuser_sql(postgres, f"CREATE SCHEMA {shop}")
    superuser_sql(postgres, f"CREATE TABLE {shop}.orders (order_id text, customer_id int, "
                            "amount numeric, placed_at timestamptz)")  # fmt: skip
    for row in ORDERS:
        superuser_sql(postgres, f"INSERT INTO {shop}.orders VALUES (%s, %s, %s, %s)", row)  # noqa: S608
    superuser_sql(postgres, sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
        sql.Identifier(reader), sql.Literal(password)))  # fmt: skip
    superuser_sql(postgres, f"GRANT USAGE ON SCHEMA {shop} TO {reader}")
    superuser_sql(postgres, f"GRANT SELECT ON {shop}.orders TO {reader}")
    for name in (upstream, domain):
        make_domain(kube, name)
    try:
        put_secret(kube, secret_document(domain, "orders-shop",
                                         {"PGUSER": reader, "PGPASSWORD": password}))  # fmt: skip
        upstream_product = create_ready(kube, _customers(upstream, domain))
        endpoint = upstream_product["status"]["outputPorts"][0]["endpoint"]
        for row in CUSTOMERS:
            superuser_sql(postgres, q("INSERT INTO {t} VALUES (%s, %s)", endpoint["schema"],
                                      endpoint["table"]), row)  # fmt: skip
        create_ready(kube, _orders(domain, upstream, postgres, shop))
        yield NodeMesh(kube, postgres, domain, upstream, shop)
    finally:
        for name in (domain, upstream):
            delete_if_present(kube, PRODUCTS.format(namespace=name) + "/" + (
                "orders" if name == domain else "customers"))  # fmt: skip
            delete_domain(kube, name)
            delete_if_present(kube, f"/api/v1/namespaces/{name}")
        superuser_sql(postgres, f"DROP SCHEMA {shop} CASCADE")
        superuser_sql(postgres, f"DROP ROLE {reader}")


def _node_images(kube: BlockingClient) -> set[str]:
    node = kube.get(f"/api/v1/nodes/{REAL_NODE_NAME}")
    return {name for image in node["status"].get("images", []) for name in image["names"]}


def _replace(mesh: NodeMesh) -> Run:
    """A Replace run with no declared checks, which must succeed: the known starting rows."""
    mesh.set_checks([])
    done = mesh.run(mode="Replace")
    assert done.report.result is RunResult.SUCCEEDED, done.report.error
    return done


def test_the_real_node_holds_the_images_its_pods_run_planted_from_the_seed(
    node_mesh: NodeMesh, kube: BlockingClient
) -> None:
    wanted = {images.image_spec(name).ref for name in NODE_IMAGES}
    assert wanted <= _node_images(kube)


def test_a_run_joins_an_upstream_product_and_an_external_table_and_a_reader_selects_it(
    node_mesh: NodeMesh, kubectl: KubectlRunner
) -> None:
    done = _replace(node_mesh)
    assert done.pod["spec"]["nodeName"] == REAL_NODE_NAME
    assert done.pod["status"]["phase"] == "Succeeded"
    report = done.report
    assert report.rows_read == {"customers": 2, "shop": 3}
    assert report.rows_written == 3
    assert node_mesh.published() == [
        ("o-1", Decimal("10.5000000000"), "retail"),
        ("o-2", Decimal("20.2500000000"), "wholesale"),
        ("o-3", Decimal("3.0000000000"), "retail"),
    ]
    # kubectl logs: the runner's progress, line by line, and the report last.
    log = kubectl("logs", "-n", node_mesh.domain, done.pod["metadata"]["name"]).stdout
    lines = log.splitlines()
    assert any(line.startswith("source customers: 2 rows (") for line in lines), log
    assert any(line.startswith("source shop: 3 rows (") for line in lines), log
    assert "check unique:order_id: passed, 0 violations" in lines
    assert lines[-1].startswith("report {")
    # No login reached the log or the report: the Secrets are the pod's environment only.
    secret = node_mesh.kube.get(f"/api/v1/namespaces/{node_mesh.domain}/secrets/orders-shop")
    password = base64.b64decode(secret["data"]["PGPASSWORD"]).decode()
    assert password not in log and password not in done.terminated["message"]

    # Replace: a row gone at the source is gone from the port.
    node_mesh.shop("DELETE FROM {t} WHERE order_id = 'o-3'")
    try:
        again = node_mesh.run()
        assert again.report.rows_written == 2
        assert [row[0] for row in node_mesh.published()] == ["o-1", "o-2"]
    finally:
        node_mesh.shop("INSERT INTO {t} VALUES ('o-3', 1, 3, '2026-11-29 12:30:00+00')")


def test_append_adds_rows_and_merge_updates_them_on_the_unique_column(
    node_mesh: NodeMesh,
) -> None:
    _replace(node_mesh)
    node_mesh.shop("INSERT INTO {t} VALUES ('o-4', 2, 4, '2026-11-29 13:00:00+00')")
    try:
        appended = node_mesh.run(mode="Append", sql=TRANSFORM + " WHERE s.order_id = 'o-4'")
        assert appended.report.result is RunResult.SUCCEEDED, appended.report.error
        assert appended.report.rows_written == 1
        assert [row[0] for row in node_mesh.published()] == ["o-1", "o-2", "o-3", "o-4"]

        node_mesh.shop("UPDATE {t} SET amount = 99 WHERE order_id = 'o-2'")
        merged = node_mesh.run(mode="Merge", sql=TRANSFORM + " WHERE s.order_id IN ('o-2', 'o-4')")
        assert merged.report.result is RunResult.SUCCEEDED, merged.report.error
        assert merged.report.rows_written == 2
        rows = {row[0]: row[1] for row in node_mesh.published()}
        assert rows == {"o-1": Decimal("10.5"), "o-2": Decimal(99), "o-3": Decimal(3),
                        "o-4": Decimal(4)}  # fmt: skip
    finally:
        node_mesh.shop("DELETE FROM {t} WHERE order_id = 'o-4'")
        node_mesh.shop("UPDATE {t} SET amount = 20.25 WHERE order_id = 'o-2'")
        change_spec(node_mesh.kube, node_mesh.domain, "orders",
                    lambda spec: spec["pipelines"][0].update(sql=TRANSFORM))  # fmt: skip


def test_a_failing_error_check_keeps_the_old_rows_and_fails_the_job_naming_the_check(
    node_mesh: NodeMesh,
) -> None:
    _replace(node_mesh)
    before = node_mesh.published()
    node_mesh.set_checks([{"name": "no-negative", "severity": "Error",
                           "sql": "SELECT count(*) FROM orders_v1 WHERE amount < 0"}])  # fmt: skip
    node_mesh.shop("UPDATE {t} SET amount = -5 WHERE order_id = 'o-3'")
    try:
        failed = node_mesh.run()
    finally:
        node_mesh.shop("UPDATE {t} SET amount = 3 WHERE order_id = 'o-3'")
    assert failed.job_failed
    assert failed.pod["status"]["phase"] == "Failed"
    assert failed.terminated["exitCode"] == 1
    report = failed.report  # read from the pod's termination message
    assert report.result is RunResult.FAILED
    assert report.error == "checks failed: no-negative"
    assert report.rows_written == 0
    assert [(c.name, c.passed, c.violations) for c in report.failed_checks] == [
        ("no-negative", False, 1)
    ]
    assert node_mesh.published() == before


def test_a_failing_warning_check_publishes_and_is_reported(node_mesh: NodeMesh) -> None:
    _replace(node_mesh)
    node_mesh.set_checks([{"name": "enough", "severity": "Warning", "minRows": 10}])
    node_mesh.shop("UPDATE {t} SET amount = 30 WHERE order_id = 'o-3'")
    try:
        warned = node_mesh.run()
    finally:
        node_mesh.shop("UPDATE {t} SET amount = 3 WHERE order_id = 'o-3'")
    assert not warned.job_failed
    assert warned.terminated["exitCode"] == 0
    report = warned.report
    assert report.result is RunResult.SUCCEEDED and report.error is None
    verdicts = {c.name: (c.severity, c.passed, c.violations) for c in report.checks}
    assert verdicts["enough"] == ("Warning", False, 7)
    assert {row[0]: row[1] for row in node_mesh.published()}["o-3"] == Decimal(30)
