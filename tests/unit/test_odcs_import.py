"""Output ports from ODCS contracts: the round trip of the exports, and clear errors."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from dataproduct_operator.api.dataproduct import Classification, DataProduct, Format, OutputPort
from dataproduct_operator.catalog.exports.odcs import build_odcs, build_odcs_contracts
from dataproduct_operator.catalog.imports import (
    contracts_from_yaml,
    output_port_from_odcs,
    port_manifest,
    validate_contract,
    with_port,
)
from dataproduct_operator.cli import main
from dataproduct_operator.errors import UserError
from tests.helpers import MESH_FIXTURE, example_documents, example_product

PORTS = [
    (path.name, port["name"])
    for path in sorted(MESH_FIXTURE.glob("*.yaml"))
    for document in example_documents(path.name)
    if document.get("kind") == "DataProduct"
    for port in document["spec"]["outputPorts"]
]


def _product(file_name: str = "sales-orders.yaml") -> DataProduct:
    return DataProduct.from_object(example_product(file_name))


def _contract(port: str = "orders-v1") -> dict[str, Any]:
    # Through YAML, as a contract arrives from a file.
    loaded: dict[str, Any] = yaml.safe_load(yaml.safe_dump(build_odcs(_product(), port)))
    return loaded


def _port(product: DataProduct, name: str) -> OutputPort:
    (port,) = [p for p in product.spec.output_ports if p.name == name]
    return port


@pytest.mark.parametrize(("file_name", "port_name"), PORTS)
def test_importing_an_exported_contract_gives_the_same_port(file_name: str, port_name: str) -> None:
    product = _product(file_name)
    contract = yaml.safe_load(yaml.safe_dump(build_odcs(product, port_name)))
    assert output_port_from_odcs(contract) == _port(product, port_name)


def test_every_example_port_takes_part_in_the_round_trip() -> None:
    assert len(PORTS) == 5


def test_the_round_trip_keeps_what_the_examples_do_not_show() -> None:
    document = example_product()
    port = document["spec"]["outputPorts"][0]
    port["format"] = "postgres"
    port["storage"] = {"size": "7Gi", "storageClassName": "fast", "accessMode": "ReadWriteMany"}
    port["slo"] = {"freshness": "30m", "availability": "100%"}
    port["schema"] += [
        {"name": "weird", "type": "GEOMETRY(Point)", "classification": "Public"},
        {"name": "ratio", "type": "Double", "description": "A share", "pii": True},
    ]
    product = DataProduct.from_object(document)
    contract = yaml.safe_load(yaml.safe_dump(build_odcs(product, "orders-v1")))
    assert contract["servers"][0]["type"] == "custom"
    assert output_port_from_odcs(contract) == product.spec.output_ports[0]


def test_pii_and_classification_come_back_from_tags_and_classification() -> None:
    columns = {c.name: c for c in output_port_from_odcs(_contract()).schema_}
    assert columns["email"].pii is True
    assert columns["email"].classification is Classification.RESTRICTED
    assert columns["order_id"].pii is False


def test_a_contract_of_another_tool_is_read_as_far_as_it_goes() -> None:
    contract = {
        "apiVersion": "v3.0.2",
        "kind": "DataContract",
        "id": "abc",
        "schema": [
            {
                "name": "trips",
                "properties": [
                    {"name": "id", "logicalType": "integer", "required": True},
                    {"name": "rider", "physicalType": "VARCHAR(40)", "tags": ["PII"]},
                    {"name": "fare", "logicalType": "number", "classification": "CONFIDENTIAL"},
                ],
            }
        ],
        "servers": [{"server": "s3", "type": "s3", "format": "delta"}],
        "slaProperties": [{"property": "freshness", "value": 2, "unit": "day"}],
    }
    port = output_port_from_odcs(contract)
    assert port.name == "trips"
    assert port.format is Format.OTHER
    assert [(c.name, c.type, c.pii) for c in port.schema_] == [
        ("id", "integer", False),
        ("rider", "VARCHAR(40)", True),
        ("fare", "number", False),
    ]
    assert port.schema_[2].classification is Classification.CONFIDENTIAL
    assert port.slo is not None and port.slo.freshness == "2d"


def _broken(change: Any) -> dict[str, Any]:
    contract = _contract()
    change(contract)
    return contract


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["schema"][0]["properties"][2].update(logicalType="varchar"),
            "schema[0].properties[2]: logicalType must be one of string, date",
        ),
        (
            lambda c: c["schema"][0]["properties"][1].update(required="yes"),
            "schema[0].properties[1]: required must be true or false, got 'yes'",
        ),
        (
            lambda c: c["schema"][0]["properties"][0].pop("logicalType"),
            "schema[0].properties[0]: needs a logicalType or a physicalType",
        ),
        (
            lambda c: c["schema"][0]["properties"][2].update(classification="secret"),
            "schema[0].properties[2]: classification must be one of public, internal",
        ),
        (
            lambda c: c["schema"][0].update(name="Orders V1"),
            "schema[0]: name must be a valid output port name",
        ),
        (
            lambda c: c["schema"][0]["properties"].append("order_id"),
            "schema[0].properties[4]: each entry must be a mapping, got 'order_id'",
        ),
        (
            lambda c: c["slaProperties"][0].update(unit="fortnights"),
            "slaProperties[0]: unit must be seconds, minutes, hours, days or weeks",
        ),
        (
            lambda c: c["slaProperties"][1].update(value="lots"),
            "slaProperties[1]: availability",
        ),
        (
            lambda c: c["servers"][0]["customProperties"][2].update(value="lots"),
            "servers[0].customProperties: size: Value error, size must be a quantity such as 5Gi",
        ),
        (lambda c: c.update(apiVersion="v2.2.2"), "apiVersion must be an ODCS v3 version"),
        (lambda c: c.update(kind="DataProduct"), "kind must be DataContract"),
        (lambda c: c["schema"].append(copy.deepcopy(c["schema"][0])), "exactly one object"),
        (lambda c: c.update(schema="orders"), "schema must be a list, got 'orders'"),
    ],
)
def test_a_bad_contract_is_a_user_error_naming_the_field(change: Any, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        output_port_from_odcs(_broken(change))


def test_errors_name_the_contract_by_its_id() -> None:
    contract = _broken(lambda c: c["schema"][0]["properties"][2].update(logicalType="varchar"))
    with pytest.raises(UserError, match=r"^ODCS contract sales\.orders\.orders-v1: schema\[0\]"):
        output_port_from_odcs(contract)


@pytest.mark.parametrize("contract", [None, [], "text"])
def test_something_else_than_a_contract_is_a_user_error(contract: Any) -> None:
    with pytest.raises(UserError, match="ODCS contract"):
        validate_contract(contract)


def test_a_stream_of_contracts_is_read_document_by_document() -> None:
    text = yaml.safe_dump_all(build_odcs_contracts(_product()))
    assert [c["id"] for c in contracts_from_yaml(text, "x")] == [
        "sales.orders.orders-v1",
        "sales.orders.daily-revenue",
    ]
    with pytest.raises(UserError, match="x is not valid YAML"):
        contracts_from_yaml("a: [", "x")
    with pytest.raises(UserError, match="x holds no ODCS contract"):
        contracts_from_yaml("", "x")


def test_a_port_is_added_to_a_product_or_replaces_its_namesake() -> None:
    document = example_product("crm-customers.yaml")
    port = output_port_from_odcs(_contract())
    added = with_port(document, port)
    assert [p["name"] for p in added["spec"]["outputPorts"]] == ["customers-v1", "orders-v1"]
    renamed = port.model_copy(update={"description": "New words"})
    replaced = with_port(added, renamed)
    assert [p["name"] for p in replaced["spec"]["outputPorts"]] == ["customers-v1", "orders-v1"]
    assert replaced["spec"]["outputPorts"][1]["description"] == "New words"
    assert [p["name"] for p in document["spec"]["outputPorts"]] == ["customers-v1"]


# -- the CLI ----------------------------------------------------------------------------------


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_import_round_trips_the_ports_through_files(tmp_path: Path) -> None:
    contracts = tmp_path / "contracts.yaml"
    exported = _run(
        "export", "--format", "odcs", "-o", str(contracts), str(MESH_FIXTURE / "sales-orders.yaml")
    )
    assert exported.exit_code == 0, exported.output
    result = _run("import", "odcs", str(contracts))
    assert result.exit_code == 0, result.output
    items = yaml.safe_load(result.stdout)
    assert [OutputPort.model_validate(item) for item in items] == list(_product().spec.output_ports)
    assert items == [port_manifest(port) for port in _product().spec.output_ports]


def test_cli_import_with_a_product_prints_the_product_with_the_port(tmp_path: Path) -> None:
    contract = tmp_path / "orders.odcs.yaml"
    contract.write_text(yaml.safe_dump(build_odcs(_product(), "orders-v1")))
    result = _run(
        "import", "odcs", str(contract), "--product", str(MESH_FIXTURE / "crm-customers.yaml")
    )
    assert result.exit_code == 0, result.output
    (document,) = [d for d in yaml.safe_load_all(result.stdout) if d]
    product = DataProduct.from_object(document)
    assert [p.name for p in product.spec.output_ports] == ["customers-v1", "orders-v1"]
    assert product.spec.output_ports[1] == _port(_product(), "orders-v1")


def test_cli_import_of_a_bad_contract_names_the_field(tmp_path: Path) -> None:
    contract = tmp_path / "bad.yaml"
    contract.write_text(
        yaml.safe_dump(
            _broken(lambda c: c["schema"][0]["properties"][2].update(logicalType="varchar"))
        )
    )
    result = _run("import", "odcs", str(contract))
    assert result.exit_code == 1
    assert "schema[0].properties[2]: logicalType must be one of" in result.output


def test_cli_import_into_a_file_without_one_product_says_so(tmp_path: Path) -> None:
    contract = tmp_path / "orders.odcs.yaml"
    contract.write_text(yaml.safe_dump(build_odcs(_product(), "orders-v1")))
    result = _run("import", "odcs", str(contract), "--product", str(MESH_FIXTURE / "domains.yaml"))
    assert result.exit_code == 1
    assert "must hold exactly one DataProduct; it holds 0" in result.output
