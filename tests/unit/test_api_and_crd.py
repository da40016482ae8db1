"""The API models and the CRD generated from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataproduct_operator.api.dataproduct import (
    DataProduct,
    DeletionPolicy,
    Lifecycle,
)
from dataproduct_operator.manifests.crd import DATA_PRODUCT, build_crd
from dataproduct_operator.manifests.generate import drifted_files
from dataproduct_operator.manifests.reference import render_reference
from tests.unit.test_input_bounds import schema_nodes

REPO = Path(__file__).resolve().parents[2]


def test_generated_files_are_up_to_date() -> None:
    assert drifted_files(REPO) == [], "run `make generate` and commit the result"


def _walk(schema: dict[str, Any]) -> list[str]:
    problems = []
    for path, node in schema_nodes(schema, ""):
        if "$ref" in node or "title" in node:
            problems.append(f"{path}: $ref or title left in")
        if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
            problems.append(f"{path}: anyOf outside int-or-string")
        if "type" not in node and not node.get("x-kubernetes-int-or-string"):
            problems.append(f"{path}: no type")
    return problems


def test_crd_schema_is_structural() -> None:
    crd = build_crd(DATA_PRODUCT)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []


def test_crd_names_short_name_category_and_printer_columns() -> None:
    crd = build_crd(DATA_PRODUCT)
    assert crd["metadata"]["name"] == "dataproducts.datamesh.dev"
    assert crd["spec"]["names"]["shortNames"] == ["dp"]
    assert crd["spec"]["names"]["categories"] == ["datamesh"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if "priority" not in c]
    assert columns == ["Domain", "Lifecycle", "Ready", "Age"]


def test_name_keyed_lists_are_list_maps_so_duplicates_are_rejected() -> None:
    spec = build_crd(DATA_PRODUCT)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = spec["properties"]["spec"]["properties"]
    for field in ("outputPorts", "pipelines", "inputs"):
        assert spec[field]["x-kubernetes-list-type"] == "map"
        assert spec[field]["x-kubernetes-list-map-keys"] == ["name"]
    schema_columns = spec["outputPorts"]["items"]["properties"]["schema"]
    assert schema_columns["x-kubernetes-list-map-keys"] == ["name"]


def test_minimal_product_gets_the_documented_defaults() -> None:
    product = DataProduct.from_object(
        {
            "metadata": {"name": "orders", "namespace": "sales", "generation": 3},
            "spec": {
                "domain": "sales",
                "owner": {"team": "sales-data"},
                "description": "Orders.",
                "outputPorts": [{"name": "orders-v1"}],
            },
        }
    )
    assert product.generation == 3
    assert product.spec.lifecycle is Lifecycle.DRAFT
    assert product.spec.deletion_policy is DeletionPolicy.RETAIN
    assert product.spec.output_ports[0].storage is None  # the default store, else a volume
    assert product.spec.output_ports[0].volume.size == "1Gi"
    assert product.spec.monitoring.alerts.value == "Enabled"


def test_api_reference_lists_every_field_and_every_validation_message() -> None:
    crd = build_crd(DATA_PRODUCT)
    reference = render_reference(crd)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    found_paths: list[str] = []
    messages: list[str] = [rule["message"] for rule in schema["x-kubernetes-validations"]]

    def walk(node: dict[str, Any], path: str) -> None:
        found_paths.append(path)
        messages.extend(rule["message"] for rule in node.get("x-kubernetes-validations", []))
        items = node.get("items", {})
        messages.extend(rule["message"] for rule in items.get("x-kubernetes-validations", []))
        children, prefix = (
            (items["properties"], f"{path}[]")
            if "properties" in items
            else (
                node.get("properties", {}),
                path,
            )
        )
        for name, child in children.items():
            walk(child, f"{prefix}.{name}")

    walk(schema["properties"]["spec"], "spec")
    walk(schema["properties"]["status"], "status")
    assert len(found_paths) > 60
    for path in found_paths:
        assert f"| `{path}` |" in reference, path
    for message in messages:
        assert message in reference, message
