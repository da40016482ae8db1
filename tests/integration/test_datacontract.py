"""Interoperability with a tool this project did not write: the ODCS contract `dpo export
--format odcs --port` writes for a store port passes `datacontract test` (datacontract-cli,
from its own virtualenv, `make datacontract`) against the port's real table in the local
cluster's PostgreSQL, logged in as a reader that may only SELECT; and `dpo export` from the
cluster names a store port, and a consumer's input from it, by the table the status records.

Until the operator creates a port's table (the store driver wired into the reconcile layer),
this test plays the operator's part itself, as the ``postgres`` fixture's admin: it creates the
schema and table from the exported contract's columns (their physicalType is the SQL type the
store uses), writes rows, and makes a login with USAGE and SELECT only, as a reader's. Once the
operator does that, the test should apply the DataProduct with a reader ServiceAccount instead,
wait for the status's endpoint, export from the cluster (``--namespace/--name``) and log in with
the PG* keys of the reader's Secret ``dm-store-<store>-<serviceaccount>``; the marked lines
below are what goes.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from click.testing import CliRunner
from psycopg import sql

from dataproduct_operator.cli import main
from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.stores.postgres.naming import schema_name, table_name
from tests.clusters import login_sql, run_sql
from tests.datacontract import ENDPOINT, STORE, run_datacontract, store_port_document
from tests.helpers import example_product
from tests.products import PRODUCTS, product_path

ROWS = [
    ("o-1", 1, "ana@example.com", 1250),
    ("o-2", 2, None, 300),
    ("o-3", 1, "bo@example.com", 99),
]


def _export_contract(tmp_path: Path, endpoint: dict[str, Any]) -> Path:
    """`dpo export --format odcs --port orders-v1` of sales/orders with its port at ``endpoint``."""
    manifest = tmp_path / "orders.yaml"
    # Operator's part: the status's endpoint (the operator writes it once it placed the table).
    manifest.write_text(yaml.safe_dump(store_port_document(endpoint), sort_keys=False))
    contract = tmp_path / "orders-v1.odcs.yaml"
    result = CliRunner().invoke(
        main,
        ["export", "-f", "odcs", "--port", "orders-v1", "-o", str(contract), str(manifest)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return contract


def _create_table(admin: dict[str, Any], contract: dict[str, Any]) -> None:
    """Operator's part: the port's table from the contract's columns, as the store's admin."""
    (server,) = contract["servers"]
    (schema_object,) = contract["schema"]
    columns = [
        sql.SQL("{} {}{}{}").format(
            sql.Identifier(p["name"]),
            sql.SQL(p["physicalType"]),  # the store's own SQL type names: text, bigint, ...
            sql.SQL(" NOT NULL" if p.get("required") else ""),
            sql.SQL(" UNIQUE" if p.get("unique") else ""),
        )
        for p in schema_object["properties"]
    ]
    table = sql.Identifier(server["schema"], schema_object["physicalName"])
    run_sql(admin, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(server["schema"])))
    run_sql(admin, sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(columns)))


@pytest.fixture
def reader(postgres: LocalPostgres) -> Any:
    """Operator's part: a reader login (USAGE on the schema, SELECT on the table), dropped
    afterwards with the schema."""
    suffix = secrets.token_hex(4)
    login = {"user": f"dm_sa_dc_{suffix}", "password": secrets.token_urlsafe(24)}
    schema = schema_name(f"datacontract-{suffix}", "orders")
    admin = postgres.admin_conninfo()
    run_sql(
        admin,
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(login["user"]), sql.Literal(login["password"])
        ),
    )
    yield schema, login
    run_sql(admin, sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    run_sql(admin, sql.SQL("DROP ROLE {}").format(sql.Identifier(login["user"])))


def test_the_exported_contract_of_a_store_port_passes_datacontract_test_as_its_reader(
    postgres: LocalPostgres, reader: Any, tmp_path: Path
) -> None:
    schema, login = reader
    endpoint = {
        "store": STORE,
        "host": postgres.host,
        "port": postgres.port,
        "database": postgres.database,
        "schema": schema,
        "table": table_name("orders-v1"),
    }
    contract_file = _export_contract(tmp_path, endpoint)
    contract = yaml.safe_load(contract_file.read_text())
    admin = postgres.admin_conninfo()
    _create_table(admin, contract)
    table = sql.Identifier(schema, endpoint["table"])
    for row in ROWS:  # the writer's part: rows, so the checks look at data
        run_sql(admin, sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s)").format(table), row)
    grants = (
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
            sql.Identifier(schema), sql.Identifier(login["user"])
        ),
        sql.SQL("GRANT SELECT ON {} TO {}").format(table, sql.Identifier(login["user"])),
    )
    for grant in grants:
        run_sql(admin, grant)
    # The login reads, and only reads.
    assert login_sql(
        postgres, login["user"], login["password"], sql.SQL("SELECT count(*) FROM {}").format(table)
    ) == [(3,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        login_sql(
            postgres, login["user"], login["password"],
            sql.SQL("INSERT INTO {} VALUES ('o-4', 1, NULL, 1)").format(table),
        )  # fmt: skip

    reader_env = {
        "DATACONTRACT_POSTGRES_USERNAME": login["user"],
        "DATACONTRACT_POSTGRES_PASSWORD": login["password"],
    }
    tested = run_datacontract("test", str(contract_file), env=reader_env)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "Data contract is valid" in tested.stdout
    assert "failed" not in tested.stdout
    assert f"type=postgres, host={postgres.host}, port={postgres.port}" in tested.stdout

    # The checks bite: a column the table lacks, and a type the table does not have, fail.
    (schema_object,) = contract["schema"]
    schema_object["properties"].append({"name": "currency", "logicalType": "string"})
    schema_object["properties"][1]["physicalType"] = "text"
    broken = tmp_path / "broken.odcs.yaml"
    broken.write_text(yaml.safe_dump(contract, sort_keys=False))
    failed = run_datacontract("test", str(broken), env=reader_env)
    assert failed.returncode != 0
    assert "currency" in failed.stdout and "line" in failed.stdout


def _in_cluster(kube: BlockingClient, document: dict[str, Any], namespace: str) -> None:
    """Create the product in ``namespace`` with the status ``document`` holds, written as the
    operator writes it (the status subresource). Operator's part, until it places tables: no
    operator runs in this module, so nothing rewrites it."""
    body = {key: value for key, value in document.items() if key != "status"}
    body["metadata"] = {"name": document["metadata"]["name"], "namespace": namespace}
    body["spec"] = {**document["spec"], "domain": namespace}
    kube.create(PRODUCTS.format(namespace=namespace), body)
    if "status" in document:
        path = product_path(namespace, body["metadata"]["name"]) + "/status"
        kube.merge_patch(path, {"status": document["status"]})


def test_dpo_export_from_the_cluster_names_store_ports_and_upstreams_by_their_tables(
    kube: BlockingClient, domain: str, control_plane: ClusterInfo, tmp_path: Path
) -> None:
    namespace = domain
    _in_cluster(kube, store_port_document(), namespace)
    revenue = example_product("finance-revenue.yaml")
    revenue["spec"]["inputs"][0]["dataProduct"] = {
        "namespace": namespace, "name": "orders", "port": "orders-v1",
    }  # fmt: skip
    _in_cluster(kube, revenue, namespace)
    source = ("--kubeconfig", str(control_plane.kubeconfig), "--namespace", namespace)

    def export(*args: str) -> str:
        result = CliRunner().invoke(main, ["export", *args, *source], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return str(result.stdout)

    (contract,) = list(
        yaml.safe_load_all(export("-f", "odcs", "--port", "orders-v1", "--name", "orders"))
    )
    (server,) = contract["servers"]
    assert (server["type"], server["host"], server["schema"]) == (
        "postgres", ENDPOINT["host"], ENDPOINT["schema"],
    )  # fmt: skip
    contract_file = tmp_path / "orders-v1.odcs.yaml"
    contract_file.write_text(yaml.safe_dump(contract, sort_keys=False))
    linted = run_datacontract("lint", str(contract_file))
    assert linted.returncode == 0, linted.stdout + linted.stderr

    # The consumer's export reads its upstream from the cluster: its input is that table.
    events = yaml.safe_load(export("-f", "openlineage", "--name", "revenue"))
    inputs = {(d["namespace"], d["name"]) for e in events for d in e.get("inputs", [])}
    assert (f"postgres://{ENDPOINT['host']}:5432", "mesh.sales__orders.orders_v1") in inputs
