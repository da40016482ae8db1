"""Quantities: parsed as the API server reads them, bounded alike in the CRDs and the models."""

from __future__ import annotations

import itertools
import re
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from dataproduct_operator.api.base import MAX_QUANTITY_LENGTH, QUANTITY
from dataproduct_operator.api.datadomain import QUOTA_CPU, QUOTA_MEMORY, QUOTA_STORAGE, DataDomain
from dataproduct_operator.api.dataproduct import PIPELINE_RESOURCES, STORAGE_SIZE, DataProduct
from dataproduct_operator.api.quantity import (
    MAX_QUANTITY,
    QuantityRange,
    larger_quantity,
    parse_quantity,
)
from dataproduct_operator.manifests.crd import KINDS, build_crd

RANGES = (STORAGE_SIZE, QUOTA_CPU, QUOTA_MEMORY, QUOTA_STORAGE, *PIPELINE_RESOURCES.named)
RANGES += (PIPELINE_RESOURCES.other,)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5Gi", 5 * 2**30),
        ("1.5Gi", 3 * 2**29),
        ("+1Ki", 1024),
        ("500m", Decimal("0.5")),
        ("100n", Decimal("1e-7")),
        ("1e3", 1000),
        ("2E", 2 * 10**18),
        (2, 2),
        ("0", 0),
        (".5", Decimal("0.5")),
        ("5.", 5),
        ("1Pi", 2**50),
        ("9223372036854775807", 2**63 - 1),
        ("1.5n", Decimal("2e-9")),  # finer than a nano unit: rounded up, as the API server does
        ("1e-9999999", Decimal("1e-9")),
    ],
)
def test_quantities_are_read_as_the_api_server_reads_them(text: str | int, value: Any) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1e9999999", "larger than any Kubernetes quantity"),
        ("1e999", "larger than any Kubernetes quantity"),
        ("1e" + "9" * 5000, "larger than any Kubernetes quantity"),
        ("9" * 5000, "larger than any Kubernetes quantity"),
        ("9223372036854775808", "larger than any Kubernetes quantity"),
        ("8Ei", "larger than any Kubernetes quantity"),
        ("-1Gi", "is negative"),
        ("-0.5", "is negative"),
        ("abc", "is not a Kubernetes quantity"),
        ("", "is not a Kubernetes quantity"),
        ("Gi", "is not a Kubernetes quantity"),
        ("1.2.3", "is not a Kubernetes quantity"),
        ("5ki", "is not a Kubernetes quantity"),
        ("5GB", "is not a Kubernetes quantity"),
        (" 5Gi", "is not a Kubernetes quantity"),
        ("1e", "is not a Kubernetes quantity"),
        ("1e1.5", "is not a Kubernetes quantity"),
        ("NaN", "is not a Kubernetes quantity"),
        ("Infinity", "is not a Kubernetes quantity"),
    ],
)
def test_anything_else_is_a_value_error_that_says_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        parse_quantity(text)
    assert len(str(refused.value)) < 200  # a long value is cut short in the message


def test_no_string_makes_the_parser_raise_anything_but_a_value_error() -> None:
    signs = ("", "+", "-")
    numbers = ("0", "1", "007", "1.", ".5", "1.5", "9" * 30, "0." + "0" * 30 + "1", ".", "")
    tails = (
        *("", "e", "E", "e0", "e-3", "e+3", "e19", "e-19", "e40", "e-41", "e999", "e-999"),
        *("e9999999", "e-9999999", "e" + "9" * 30, "e-" + "9" * 30, "e1.5"),
        *("n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"),
        *("ki", "mi", "i", "K", "B", "Gi ", "Gib", "eGi"),
    )
    for sign, number, tail in itertools.product(signs, numbers, tails):
        text = sign + number + tail
        try:
            value = parse_quantity(text)
        except ValueError:
            continue
        assert Decimal(0) <= value <= MAX_QUANTITY, text


def test_a_claim_keeps_the_larger_of_two_sizes_as_written() -> None:
    assert larger_quantity("5Gi", "6000Mi") == "6000Mi"
    assert larger_quantity("5Gi", "5G") == "5Gi"
    assert larger_quantity("5Gi", None) == "5Gi"


@pytest.mark.parametrize("bounds", RANGES, ids=lambda bounds: bounds.name)
def test_each_range_takes_its_maximum_and_refuses_anything_above_or_malformed(
    bounds: QuantityRange,
) -> None:
    assert bounds.check(bounds.maximum) == parse_quantity(bounds.maximum)
    above = f"{parse_quantity(bounds.maximum) + Decimal('1e-9')}"
    for value in (above, "1e9999999", "1e999", "-1", "lots"):
        with pytest.raises(ValueError, match=re.escape(bounds.message)):
            bounds.check(value)
    if bounds.positive:
        with pytest.raises(ValueError, match="more than 0"):
            bounds.check("0")
    else:
        assert bounds.check("0") == 0


# CRD nodes ---------------------------------------------------------------------------------


def _is_quantity(node: dict[str, Any]) -> bool:
    """How the API models write a quantity: the quantity pattern, or int-or-string."""
    return node.get("pattern") == QUANTITY or bool(node.get("x-kubernetes-int-or-string"))


def _quantity_nodes(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any], Any]]:
    """(path, node, the map holding it or None) of every quantity in a schema."""
    found: list[tuple[str, dict[str, Any], Any]] = []
    if _is_quantity(node):
        found.append((path, node, None))
    for name, child in node.get("properties", {}).items():
        found += _quantity_nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += _quantity_nodes(node["items"], f"{path}[]")
    values = node.get("additionalProperties")
    if isinstance(values, dict):
        found += [
            (sub_path, sub, node if sub is values else holder)
            for sub_path, sub, holder in _quantity_nodes(values, f"{path}[*]")
        ]
    return found


def _spec_quantities() -> list[tuple[str, dict[str, Any], Any]]:
    found = []
    for definition in KINDS:
        crd = build_crd(definition)
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        found += _quantity_nodes(schema["properties"]["spec"], f"{definition.kind}.spec")
    return found


def test_the_crds_have_the_quantities_the_models_declare() -> None:
    paths = {path for path, _, _ in _spec_quantities()}
    assert paths == {
        "DataProduct.spec.outputPorts[].storage.size",
        "DataProduct.spec.pipelines[].resources.requests[*]",
        "DataProduct.spec.pipelines[].resources.limits[*]",
        "DataDomain.spec.quota.cpu",
        "DataDomain.spec.quota.memory",
        "DataDomain.spec.quota.storage",
    }


def _bounded(rules: list[dict[str, str]], value: str) -> list[dict[str, str]]:
    """The rules that parse ``value`` as a quantity and bound it from above."""
    return [
        rule
        for rule in rules
        if f"isQuantity({value})" in rule["rule"]
        and re.search(
            rf"quantity\({re.escape(value)}\)\.compareTo\(quantity\('[^']+'\)\) <= 0", rule["rule"]
        )
        and "must be a quantity such as" in rule["message"]
    ]


def test_every_quantity_in_every_crd_is_parsed_and_bounded_by_a_cel_rule() -> None:
    quantities = _spec_quantities()
    assert quantities
    for path, node, holder in quantities:
        # The API server prices a CEL rule by the longest string and the largest map it may
        # see: without these bounds it refuses the CRD.
        assert node.get("maxLength") == MAX_QUANTITY_LENGTH, path
        if holder is None:
            value = "string(self)" if node.get("x-kubernetes-int-or-string") else "self"
            assert _bounded(node.get("x-kubernetes-validations", []), value), path
        else:  # a map's values: rules on the map walk every key
            assert holder.get("maxProperties"), path
            rules = _bounded(holder.get("x-kubernetes-validations", []), "string(self[k])")
            assert len(rules) == len(PIPELINE_RESOURCES.named) + 1, path
            assert all(rule["rule"].startswith("self.all(k, ") for rule in rules), path


def test_the_crd_rules_and_the_models_say_the_same_thing() -> None:
    messages = {
        rule["message"]
        for _, node, holder in _spec_quantities()
        for rule in (holder or node).get("x-kubernetes-validations", [])
    }
    assert messages == {bounds.message for bounds in RANGES}


# Models ------------------------------------------------------------------------------------


def _product(size: str = "5Gi", resources: dict[str, Any] | None = None) -> dict[str, Any]:
    pipeline = {"name": "ingest", "image": "ghcr.io/acme/ingest:1", "resources": resources or {}}
    return {
        "metadata": {"name": "orders", "namespace": "sales"},
        "spec": {
            "domain": "sales",
            "owner": {"team": "sales-data"},
            "description": "Orders.",
            "outputPorts": [{"name": "orders-v1", "storage": {"size": size}}],
            "pipelines": [pipeline],
        },
    }


def _domain(**quota: Any) -> dict[str, Any]:
    return {"metadata": {"name": "sales"}, "spec": {"owners": {"team": "s"}, "quota": quota}}


def _refusal(error: pytest.ExceptionInfo[ValidationError]) -> tuple[str, str]:
    (detail,) = error.value.errors()
    return ".".join(str(part) for part in detail["loc"]), detail["msg"]


@pytest.mark.parametrize("size", ["1e9999999", "1e999", "2Pi", "-1Gi", "0", "lots"])
def test_a_product_with_a_size_out_of_range_is_refused_naming_the_field(size: str) -> None:
    with pytest.raises(ValidationError) as refused:
        DataProduct.from_object(_product(size))
    field, message = _refusal(refused)
    assert field == "spec.outputPorts.0.storage.size"
    assert "size must be a quantity such as 5Gi, more than 0 and at most 1Pi" in message
    assert repr(size) in message


def test_a_product_with_sizes_and_resources_in_range_is_taken_as_written() -> None:
    resources = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": 2}}
    product = DataProduct.from_object(_product("1Pi", resources))
    assert product.spec.output_ports[0].storage.size == "1Pi"
    assert product.spec.pipelines[0].resources is not None
    assert product.spec.pipelines[0].resources.limits == {"cpu": 2}


@pytest.mark.parametrize(
    ("resources", "field", "message"),
    [
        ({"requests": {"cpu": 2000}}, "requests", "cpu must be a quantity such as 500m or 2"),
        ({"limits": {"cpu": "1e9999999"}}, "limits", "cpu must be a quantity"),
        ({"limits": {"memory": "65Ti"}}, "limits", "memory must be a quantity"),
        ({"requests": {"memory": "-1Gi"}}, "requests", "memory must be a quantity"),
        (
            {"limits": {"nvidia.com/gpu": "2Pi"}},
            "limits",
            "nvidia.com/gpu: any other resource must be a quantity such as 1 or 10Gi",
        ),
    ],
)
def test_pipeline_resources_out_of_range_are_refused_naming_the_resource(
    resources: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        DataProduct.from_object(_product(resources=resources))
    where, said = _refusal(refused)
    assert where == f"spec.pipelines.0.resources.{field}"
    assert message in said


@pytest.mark.parametrize(
    ("quota", "message"),
    [
        ({"storage": "1e9999999"}, "storage must be a quantity such as 1Ti, from 0 to 1Ei"),
        ({"storage": "2Ei"}, "storage must be a quantity such as 1Ti, from 0 to 1Ei"),
        ({"memory": "2Pi"}, "memory must be a quantity such as 32Gi, from 0 to 1Pi"),
        ({"cpu": 100001}, "cpu must be a quantity such as 8 or 8000m, from 0 to 100000"),
        ({"cpu": "-1"}, "cpu must be a quantity"),
    ],
)
def test_a_domain_quota_out_of_range_is_refused_naming_the_field(
    quota: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        DataDomain.from_object(_domain(**quota))
    field, said = _refusal(refused)
    assert field == f"spec.quota.{next(iter(quota))}"
    assert message in said


def test_a_domain_quota_in_range_is_taken_as_written() -> None:
    domain = DataDomain.from_object(_domain(cpu=8, memory="1Pi", storage="1Ei"))
    assert domain.spec.quota is not None
    assert (domain.spec.quota.cpu, domain.spec.quota.storage) == (8, "1Ei")
