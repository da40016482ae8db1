"""Template rendering: values never pass through the YAML parser, and the objects are exactly
what parsing the values as JSON-in-YAML gave."""

from __future__ import annotations

import json
from typing import Any

import jinja2
import pytest
import yaml

from benchmarks.mesh import bench_product
from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.specs import render as rendering
from dataproduct_operator.specs.dataproduct import build_children
from tests.helpers import MESH_FIXTURE

TRICKY = ["yes", "123", "{a: 1}", "- item", "null", "a: b", "*alias", "\u2063dpo-value-0", "é ✓"]


def _by_parsing_values(template: str, **context: Any) -> dict[str, Any]:
    """The objects as rendering gave them when values went through the YAML parser."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(rendering.TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - YAML
        keep_trailing_newline=True,
    )
    environment.filters["json"] = json.dumps
    text = environment.get_template(template).render(**context)
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def _products() -> list[DataProduct]:
    found = []
    for path in sorted(MESH_FIXTURE.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == "DataProduct":
                document["metadata"]["uid"] = "u-1"
                found.append(DataProduct.from_object(document))
    tricky = bench_product("sales", "tricky")
    tricky["metadata"]["uid"] = "u-2"
    tricky["spec"]["pipelines"][0]["args"] = TRICKY
    tricky["spec"]["pipelines"][0]["env"] = [{"name": "X", "value": value} for value in TRICKY]
    found.append(DataProduct.from_object(tricky))
    return found


@pytest.mark.parametrize("product", _products(), ids=lambda p: f"{p.namespace}/{p.name}")
def test_children_are_what_parsing_the_values_gave(
    product: DataProduct, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = build_children(product)
    monkeypatch.setattr(rendering, "render", _by_parsing_values)
    monkeypatch.setattr("dataproduct_operator.specs.dataproduct.render", _by_parsing_values)
    assert rendered == build_children(product)


def test_user_input_that_looks_like_yaml_or_a_placeholder_stays_a_string() -> None:
    product = _products()[-1]
    (cronjob,) = [c for c in build_children(product) if c["kind"] == "CronJob"]
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == TRICKY
    assert [e["value"] for e in container["env"] if e["name"] == "X"] == TRICKY


def test_a_value_used_twice_is_two_objects() -> None:
    labels = {"a": "b"}
    document = rendering.render("serviceaccount.yaml.j2", metadata={"name": "x", "labels": labels})
    again = rendering.render("serviceaccount.yaml.j2", metadata={"name": "x", "labels": labels})
    document["metadata"]["labels"]["a"] = "changed"
    assert again["metadata"]["labels"] == {"a": "b"} and labels == {"a": "b"}
