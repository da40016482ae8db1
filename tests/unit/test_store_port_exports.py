"""The exports of a store port: its real endpoint in ODCS ``servers[]``, ODPS and OpenLineage;
one contract alone with ``--port`` (``dpo export`` and the catalog's API), which datacontract-cli
(a tool this project did not write) lints as valid; lineage edges still meet their upstream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from open_data_contract_standard.model import OpenDataContractStandard

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.catalog.exports import EXPORT_FORMATS
from dataproduct_operator.catalog.exports.common import endpoints_of
from dataproduct_operator.catalog.exports.odcs import build_odcs
from dataproduct_operator.catalog.exports.odps import build_odps
from dataproduct_operator.catalog.exports.openlineage import build_openlineage
from dataproduct_operator.catalog.imports import output_port_from_odcs
from dataproduct_operator.cli import main
from dataproduct_operator.errors import UserError
from tests.datacontract import (
    ENDPOINT,
    STORE,
    run_datacontract,
    store_port_document,
    store_port_product,
)
from tests.helpers import MESH_FIXTURE, example_product
from tests.unit.test_catalog_exports import (
    EVENT_TIME,
    _errors,
    _odcs_validator,
    _odps_validator,
    _openlineage_validator,
)


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _manifest(tmp_path: Path, *documents: dict[str, Any]) -> Path:
    path = tmp_path / "products.yaml"
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


# -- ODCS --------------------------------------------------------------------------------------


def test_a_store_port_contract_names_its_table_in_a_postgres_server() -> None:
    contract = build_odcs(store_port_product(), "orders-v1")
    (server,) = contract["servers"]
    assert server["type"] == "postgres"
    assert (server["host"], server["port"], server["database"], server["schema"]) == (
        ENDPOINT["host"],
        ENDPOINT["port"],
        ENDPOINT["database"],
        ENDPOINT["schema"],
    )
    assert {"property": "dataStore", "value": STORE} in server["customProperties"]
    assert f"Secret dm-store-{STORE}-<serviceaccount>" in server["description"]
    (schema_object,) = contract["schema"]
    assert (schema_object["physicalName"], schema_object["physicalType"]) == ("orders_v1", "table")
    loaded = yaml.safe_load(yaml.safe_dump(contract))
    OpenDataContractStandard.model_validate(loaded)
    assert _errors(_odcs_validator(), loaded) == []


def test_a_volume_port_of_the_same_product_keeps_its_local_server() -> None:
    (server,) = build_odcs(store_port_product(), "daily-revenue")["servers"]
    assert server["type"] == "local"
    assert server["server"] == "orders-daily-revenue"


def test_a_store_port_not_placed_yet_names_its_store_without_an_endpoint() -> None:
    document = store_port_document()
    del document["status"]
    contract = build_odcs(DataProduct.from_object(document), "orders-v1")
    (server,) = contract["servers"]
    assert (server["type"], server["server"]) == ("custom", STORE)
    assert "host" not in server
    assert _errors(_odcs_validator(), yaml.safe_load(yaml.safe_dump(contract))) == []


def test_a_store_port_contracts_physical_types_are_the_tables_sql_types() -> None:
    document = store_port_document()
    columns = document["spec"]["outputPorts"][0]["schema"]
    columns[1]["type"] = "long"
    columns.append({"name": "at", "type": "timestamp"})
    columns.append({"name": "payload", "type": "json"})
    contract = build_odcs(DataProduct.from_object(document), "orders-v1")
    types = {p["name"]: p.get("physicalType") for p in contract["schema"][0]["properties"]}
    assert types == {
        "order_id": "text",
        "line": "bigint",
        "email": "text",
        "amount_cents": "bigint",
        "at": "timestamp with time zone",
        "payload": "jsonb",
    }
    # datacontract test checks a physicalType against the table's own type: "long" would
    # fail it, so our word for the type is a custom property.
    line = contract["schema"][0]["properties"][1]
    assert line["logicalType"] == "integer"
    assert line["customProperties"] == [{"property": "columnType", "value": "long"}]


def test_a_store_port_contract_imports_back_as_the_same_port_in_the_same_store() -> None:
    document = store_port_document()
    columns = document["spec"]["outputPorts"][0]["schema"]
    columns[1]["type"] = "long"
    columns += [{"name": "at", "type": "timestamp"}, {"name": "payload", "type": "json"}]
    product = DataProduct.from_object(document)
    port = output_port_from_odcs(build_odcs(product, "orders-v1"))
    assert port == product.spec.output_ports[0]
    assert port.store is not None and port.store.name == STORE


def test_no_export_of_a_store_port_holds_a_password_or_a_role() -> None:
    product = store_port_product()
    texts = [e.render(product, None, EVENT_TIME) for e in EXPORT_FORMATS.values()]
    for text in texts:
        assert "dm_sa_finance__revenue" not in text  # the grants' roles stay in status
        assert "PGPASSWORD=" not in text and "password:" not in text.lower()


# -- --port ------------------------------------------------------------------------------------


def test_dpo_export_odcs_with_port_writes_one_contract_as_one_yaml_document(
    tmp_path: Path,
) -> None:
    result = _run(
        "export",
        "-f",
        "odcs",
        "--port",
        "orders-v1",
        str(_manifest(tmp_path, store_port_document())),
    )
    assert result.exit_code == 0, result.output
    (contract,) = list(yaml.safe_load_all(result.stdout))
    assert contract["id"] == "sales.orders.orders-v1"
    assert contract == yaml.safe_load(result.stdout)  # a single-document reader takes it too
    assert contract["servers"][0]["type"] == "postgres"


def test_dpo_export_without_port_keeps_the_stream_and_its_help_says_when_to_use_port() -> None:
    result = _run("export", "-f", "odcs", str(MESH_FIXTURE / "sales-orders.yaml"))
    assert len([c for c in yaml.safe_load_all(result.stdout) if c]) == 2
    help_text = " ".join(_run("export", "--help").output.split())
    assert "--port" in help_text
    assert "datacontract-cli reads one contract per file, so for it give --port" in help_text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "odcs", "--port", "orders-v9"], "has no output port orders-v9; its ports: "),
        (["-f", "odps", "--port", "orders-v1"], "The odps export has no document per output port"),
    ],
)
def test_dpo_export_port_errors_name_what_to_change(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        main, ["export", *args, str(_manifest(tmp_path, store_port_document()))]
    )
    assert result.exit_code == 1
    assert message in str(result.exception) + result.output


def test_dpo_export_port_needs_exactly_one_product(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, store_port_document(), example_product("crm-customers.yaml"))
    result = _run("export", "-f", "odcs", "--port", "orders-v1", str(manifest))
    assert result.exit_code == 2
    assert (
        "--port needs exactly one DataProduct; MANIFEST holds 2 (sales/orders, crm/customers)"
        in (" ".join(result.output.split()))
    )


def test_the_odcs_format_renders_a_port_alone_and_the_others_refuse() -> None:
    product = store_port_product()
    text = EXPORT_FORMATS["odcs"].render_port(product, "orders-v1")
    assert yaml.safe_load(text) == build_odcs(product, "orders-v1")
    with pytest.raises(UserError, match="exported in odcs"):
        EXPORT_FORMATS["openlineage"].render_port(product, "orders-v1")


# -- datacontract-cli ----------------------------------------------------------------------------


def test_datacontract_lint_passes_the_contract_of_a_store_port(tmp_path: Path) -> None:
    contract = tmp_path / "orders-v1.odcs.yaml"
    result = _run(
        "export", "-f", "odcs", "--port", "orders-v1", "-o", str(contract),
        str(_manifest(tmp_path, store_port_document())),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    linted = run_datacontract("lint", str(contract))
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "Data contract is valid" in linted.stdout


def test_datacontract_lint_refuses_the_stream_of_several_contracts(tmp_path: Path) -> None:
    """Why --port exists: the check above would pass anything if lint accepted this too."""
    stream = tmp_path / "orders.odcs.yaml"
    result = _run(
        "export", "-f", "odcs", "-o", str(stream), str(_manifest(tmp_path, store_port_document()))
    )
    assert result.exit_code == 0, result.output
    linted = run_datacontract("lint", str(stream))
    assert linted.returncode != 0
    assert "expected a single document in the stream" in linted.stdout


# -- ODPS --------------------------------------------------------------------------------------


def test_odps_gives_a_store_port_its_type_endpoint_and_how_readers_log_in() -> None:
    document = build_odps(store_port_product())
    ports = {p["name"]: p for p in document["outputPorts"]}
    assert ports["orders-v1"]["type"] == "postgres"
    assert ports["daily-revenue"]["type"] == "csv"
    custom = {e["property"]: e["value"] for e in document["customProperties"]}
    assert custom["outputPortEndpoints"] == [{"port": "orders-v1", **ENDPOINT}]
    usage = document["description"]["usage"]
    assert "orders-v1 in sales__orders.orders_v1 (DataStore local-postgres, PostgreSQL " in usage
    assert f"Secret dm-store-{STORE}-<serviceaccount>" in usage
    assert "PersistentVolumeClaims orders-daily-revenue" in usage
    assert _errors(_odps_validator(), yaml.safe_load(yaml.safe_dump(document))) == []


# -- OpenLineage -------------------------------------------------------------------------------


def _revenue_reading_orders() -> DataProduct:
    document = example_product("finance-revenue.yaml")
    document["spec"]["inputs"][0]["dataProduct"]["port"] = "orders-v1"
    return DataProduct.from_object(document)


def test_openlineage_names_a_store_port_by_its_postgres_table() -> None:
    events = build_openlineage(store_port_product(), event_time=EVENT_TIME)
    datasets = [(e["dataset"]["namespace"], e["dataset"]["name"]) for e in events if "dataset" in e]
    assert datasets == [
        ("postgres://postgres.datamesh-system.svc:5432", "mesh.sales__orders.orders_v1"),
        ("datamesh://sales", "orders.daily-revenue"),
    ]
    for event in events:
        assert _errors(_openlineage_validator({"$ref": event["schemaURL"]}), event) == []


def test_a_consumers_input_names_the_dataset_its_upstream_exports() -> None:
    orders, revenue = store_port_product(), _revenue_reading_orders()
    (orders_v1,) = [
        e["dataset"]
        for e in build_openlineage(orders, event_time=EVENT_TIME)
        if "dataset" in e and e["dataset"]["name"].endswith("orders_v1")
    ]
    events = build_openlineage(revenue, event_time=EVENT_TIME, upstream=endpoints_of([orders]))
    inputs = events[0]["inputs"]
    assert {"namespace": orders_v1["namespace"], "name": orders_v1["name"]} in inputs


def test_dpo_export_of_a_manifest_connects_lineage_between_its_products(tmp_path: Path) -> None:
    revenue = example_product("finance-revenue.yaml")
    revenue["spec"]["inputs"][0]["dataProduct"]["port"] = "orders-v1"
    manifest = _manifest(tmp_path, store_port_document(), revenue)
    events = json.loads(_run("export", "-f", "openlineage", str(manifest)).stdout)
    outputs = {(d["namespace"], d["name"]) for e in events for d in e.get("outputs", [])}
    inputs = {(d["namespace"], d["name"]) for e in events for d in e.get("inputs", [])}
    table = ("postgres://postgres.datamesh-system.svc:5432", "mesh.sales__orders.orders_v1")
    assert table in outputs and table in inputs
