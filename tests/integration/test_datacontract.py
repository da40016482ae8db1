"""Interoperability with a tool this project did not write: the ODCS contract `dpo export
--format odcs --port` writes from the cluster for a store port passes `datacontract test`
(datacontract-cli, from its own virtualenv, `make datacontract`) against the table the operator
made in the local cluster's PostgreSQL, logged in with the reader login the operator handed to a
reader's ServiceAccount (its Secret ``dm-store-<store>-<serviceaccount>``), which may only
SELECT; and a consumer's lineage export names that table as its input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from click.testing import CliRunner

from dataproduct_operator.cli import main
from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.clusters import login_sql
from tests.datacontract import run_datacontract, store_port_document
from tests.helpers import example_product
from tests.products import PRODUCTS, OperatorProcess, create_ready
from tests.stores import q, wait_login

READER = "analyst"
ROWS = [
    ("o-1", 1, "ana@example.com", 1250),
    ("o-2", 2, None, 300),
    ("o-3", 1, "bo@example.com", 99),
]


def _orders(namespace: str, store_name: str) -> dict[str, Any]:
    """sales/orders with its orders-v1 port in ``store_name``, read by the ServiceAccount
    ``analyst`` of its namespace (no inputs, pipelines or volume port: only what is tested)."""
    document = store_port_document()
    del document["status"]
    spec = document["spec"]
    spec["outputPorts"] = spec["outputPorts"][:1]
    spec["outputPorts"][0]["store"] = {"name": store_name}
    spec.update(domain=namespace, inputs=[], pipelines=[])
    spec["access"] = {
        "readers": [{"kind": "ServiceAccount", "name": READER, "namespace": namespace}]
    }
    document["metadata"] = {"name": "orders", "namespace": namespace}
    return document


def _export(control_plane: ClusterInfo, namespace: str, *args: str) -> str:
    """`dpo export ARGS` of a product of ``namespace`` in the cluster, as its admin."""
    source = ["--kubeconfig", str(control_plane.kubeconfig), "--namespace", namespace]
    result = CliRunner().invoke(main, ["export", *args, *source], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return str(result.stdout)


@pytest.fixture
def orders(operator: OperatorProcess, kube: BlockingClient, store: str, domain: str) -> Any:
    """sales/orders placed by the operator in the test's domain: the object, once Ready."""
    return create_ready(kube, _orders(domain, store))


def test_the_exported_contract_of_a_store_port_passes_datacontract_test_as_its_reader(
    orders: dict[str, Any],
    kube: BlockingClient,
    postgres: LocalPostgres,
    control_plane: ClusterInfo,
    tmp_path: Path,
) -> None:
    domain, store = (
        orders["metadata"]["namespace"],
        orders["spec"]["outputPorts"][0]["store"]["name"],
    )
    (port,) = orders["status"]["outputPorts"]
    schema, table = port["endpoint"]["schema"], port["endpoint"]["table"]
    writer = wait_login(kube, domain, "orders-store")
    for row in ROWS:  # the pipelines' part: rows, so the checks look at data
        login_sql(
            postgres, *writer, q("INSERT INTO {t} VALUES (%s, %s, %s, %s)", schema, table), row
        )
    reader = wait_login(kube, domain, f"dm-store-{store}-{READER}")
    assert login_sql(postgres, *reader, q("SELECT count(*) FROM {t}", schema, table)) == [(3,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        login_sql(postgres, *reader, q("INSERT INTO {t} VALUES ('o-4', 1, NULL, 1)", schema, table))

    contract_file = tmp_path / "orders-v1.odcs.yaml"
    contract_file.write_text(
        _export(control_plane, domain, "-f", "odcs", "--port", "orders-v1", "--name", "orders")
    )
    contract = yaml.safe_load(contract_file.read_text())
    (server,) = contract["servers"]
    assert (server["type"], server["host"], server["port"], server["schema"]) == (
        "postgres", postgres.store_host, postgres.port, schema,
    )  # fmt: skip
    assert run_datacontract("lint", str(contract_file)).returncode == 0
    login = {
        "DATACONTRACT_POSTGRES_USERNAME": reader[0],
        "DATACONTRACT_POSTGRES_PASSWORD": reader[1],
    }
    tested = run_datacontract("test", str(contract_file), env=login)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "Data contract is valid" in tested.stdout
    assert "failed" not in tested.stdout
    assert f"type=postgres, host={postgres.store_host}, port={postgres.port}" in tested.stdout

    # The checks bite: a column the table lacks, and a type the table does not have, fail.
    (schema_object,) = contract["schema"]
    schema_object["properties"].append({"name": "currency", "logicalType": "string"})
    schema_object["properties"][1]["physicalType"] = "text"
    broken = tmp_path / "broken.odcs.yaml"
    broken.write_text(yaml.safe_dump(contract, sort_keys=False))
    failed = run_datacontract("test", str(broken), env=login)
    assert failed.returncode != 0
    assert "currency" in failed.stdout and "line" in failed.stdout


def test_a_consumers_lineage_export_names_its_upstreams_table_as_its_input(
    orders: dict[str, Any],
    kube: BlockingClient,
    postgres: LocalPostgres,
    control_plane: ClusterInfo,
) -> None:
    domain = orders["metadata"]["namespace"]
    endpoint = orders["status"]["outputPorts"][0]["endpoint"]
    revenue = example_product("finance-revenue.yaml")
    revenue["metadata"] = {"name": "revenue", "namespace": domain}
    revenue["spec"]["domain"] = domain
    revenue["spec"]["inputs"][0]["dataProduct"] = {
        "namespace": domain, "name": "orders", "port": "orders-v1",
    }  # fmt: skip
    kube.create(PRODUCTS.format(namespace=domain), revenue)  # read from the cluster, Ready or not

    events = yaml.safe_load(
        _export(control_plane, domain, "-f", "openlineage", "--name", "revenue")
    )
    inputs = {(d["namespace"], d["name"]) for e in events for d in e.get("inputs", [])}
    table = f"{endpoint['database']}.{endpoint['schema']}.{endpoint['table']}"
    assert (f"postgres://{postgres.store_host}:{postgres.port}", table) in inputs
    mine = yaml.safe_load(_export(control_plane, domain, "-f", "openlineage", "--name", "orders"))
    outputs = {(d["namespace"], d["name"]) for e in mine for d in e.get("outputs", [])}
    datasets = {(e["dataset"]["namespace"], e["dataset"]["name"]) for e in mine if "dataset" in e}
    assert (f"postgres://{postgres.store_host}:{postgres.port}", table) in outputs | datasets
