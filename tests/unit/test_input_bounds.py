"""Bounded input: every list, string and map of every CRD's spec has a limit, cron schedules
are checked field by field and images against the reference grammar, alike in the CRDs and
in the models."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from dataproduct_operator.api.cron import CRON_FIELDS, RANGE_ORDER_MESSAGE, check_schedule
from dataproduct_operator.api.dataproduct import IMAGE_MESSAGE, IMAGE_REFERENCE, Pipeline
from dataproduct_operator.manifests.crd import KINDS, build_crd

# Strings whose values the schema itself bounds.
BOUNDED_FORMATS = frozenset({"date-time", "date", "int32", "int64"})


def schema_nodes(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every node of a structural schema with its path, ``node`` first."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from schema_nodes(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from schema_nodes(node[key], f"{path}[{key}]")


def unbounded(schema: dict[str, Any], path: str) -> list[str]:
    """Paths of the arrays without maxItems, strings without maxLength (but enums and
    bounded formats) and maps without maxProperties in ``schema``."""
    found = []
    for where, node in schema_nodes(schema, path):
        kind = node.get("type")
        if kind == "array" and "maxItems" not in node:
            found.append(f"{where}: array without maxItems")
        string = kind == "string" or node.get("x-kubernetes-int-or-string")
        bounded = "maxLength" in node or "enum" in node or node.get("format") in BOUNDED_FORMATS
        if string and not bounded:
            found.append(f"{where}: string without maxLength")
        if kind == "object" and "additionalProperties" in node and "maxProperties" not in node:
            found.append(f"{where}: map without maxProperties")
    return found


@pytest.mark.parametrize("definition", KINDS, ids=lambda definition: definition.kind)
def test_every_list_string_and_map_a_user_writes_is_bounded(definition: Any) -> None:
    """Status is left out: only the operator writes it, through the status subresource."""
    root = build_crd(definition)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert unbounded(root["properties"]["spec"], "spec") == []
    assert root["properties"]["metadata"]["properties"]["name"]["maxLength"] == 253


def test_the_bounds_walk_finds_what_is_unbounded() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "maxItems": 4, "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "size": {"x-kubernetes-int-or-string": True},
            "phase": {"type": "string", "enum": ["A"]},
            "at": {"type": "string", "format": "date-time"},
        },
    }
    assert unbounded(schema, "spec") == [
        "spec.tags[items]: string without maxLength",
        "spec.labels: map without maxProperties",
        "spec.labels[additionalProperties]: string without maxLength",
        "spec.size: string without maxLength",
    ]


@pytest.mark.parametrize(
    "schedule",
    [
        "0 * * * *",
        "*/30 * * * *",
        "59 23 31 12 7",
        "0 0 1 1 0",
        "0,15,30,45 8-18/2 1-15 JAN-MAR mon-fri",
        "5/15 * * dec SUN",
        "  0   3 * * *  ",
        "0\t3 * *\t*",
    ],
)
def test_schedules_in_range_are_accepted(schedule: str) -> None:
    assert check_schedule(schedule) == schedule
    pipeline = Pipeline.model_validate({"name": "p", "image": "i", "schedule": schedule})
    assert pipeline.schedule == schedule


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ("61 * * * *", "minute"),
        ("*/0 * * * *", "minute"),
        ("0 24 * * *", "hour"),
        ("0 0 0 * *", "day of month"),
        ("0 0 32 * *", "day of month"),
        ("0 0 * 13 *", "month"),
        ("0 0 * FOO *", "month"),
        ("0 0 * * 8", "day of week"),
        ("0 0 * * MON-XYZ", "day of week"),
    ],
)
def test_a_field_out_of_range_is_refused_with_a_message_naming_it(
    schedule: str, field: str
) -> None:
    (expected,) = [f.message for f in CRON_FIELDS if f.name == field]
    assert f"the {field} field" in expected
    with pytest.raises(ValueError, match=re.escape(expected)):
        check_schedule(schedule)
    with pytest.raises(ValidationError, match=re.escape(expected)):
        Pipeline.model_validate({"name": "p", "image": "i", "schedule": schedule})


def test_a_range_whose_low_end_is_above_its_high_end_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape(RANGE_ORDER_MESSAGE)):
        check_schedule("0 18-8 * * *")
    assert check_schedule("0 8-8 * * *")


def test_every_field_rule_is_one_cel_rule_of_the_crd() -> None:
    crd = build_crd(KINDS[0])
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    schedule = spec["properties"]["pipelines"]["items"]["properties"]["schedule"]
    messages = [rule["message"] for rule in schedule["x-kubernetes-validations"]]
    assert [field.message for field in CRON_FIELDS] == messages[1:6]
    assert messages[6] == RANGE_ORDER_MESSAGE


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "ghcr.io/acme/orders-ingest:1.4",
        "registry.example.com:5000/team/job",
        "localhost:5000/a/b_c__d.e-f:v1.2-rc.1",
        "ghcr.io/acme/x@sha256:" + "a" * 64,
        "ghcr.io/acme/x:1@sha256:" + "0123456789abcdef" * 4,
    ],
)
def test_image_references_are_accepted(image: str) -> None:
    assert Pipeline.model_validate({"name": "p", "image": image}).image == image
    assert re.fullmatch(IMAGE_REFERENCE[1:-1], image)


@pytest.mark.parametrize(
    "image",
    [
        "Bad Image",
        "ghcr.io/Acme/x",
        "https://ghcr.io/acme/x",
        "x:",
        "x@sha256:1234",
        "x@md5:" + "a" * 32,
        "--privileged",
        "x;curl evil",
        "ghcr.io/acme/x:" + "t" * 129,
    ],
)
def test_malformed_image_references_are_refused_with_an_example(image: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(IMAGE_MESSAGE)):
        Pipeline.model_validate({"name": "p", "image": image})
    assert "e.g. ghcr.io/acme/orders-ingest:1.4" in IMAGE_MESSAGE
