"""The example mesh in examples/: valid, chained across domains, and loadable by `dpo dev`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dataproduct_operator.api.datadomain import DataDomain
from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.cluster.dev import load_manifests
from dataproduct_operator.errors import UserError
from dataproduct_operator.specs.stream import render_file
from dataproduct_operator.status.dataproduct import find_domain_mismatch
from tests.helpers import EXAMPLES, example_documents

FILES = sorted(path.name for path in EXAMPLES.glob("*.yaml"))
DOMAINS = {
    DataDomain.from_object(document).namespace: document["metadata"]["name"]
    for document in example_documents("domains.yaml", EXAMPLES)
}
PRODUCT_FILES = [name for name in FILES if name != "domains.yaml"]
PRODUCTS = {
    (p.namespace, p.name): p
    for p in (
        DataProduct.from_object(document)
        for name in FILES
        for document in example_documents(name, EXAMPLES)
        if document["kind"] == "DataProduct"
    )
}


def test_the_examples_are_a_mesh_of_three_domains_or_more_and_four_products_or_more() -> None:
    assert len(PRODUCTS) >= 4
    assert len({p.spec.domain for p in PRODUCTS.values()}) >= 3


def test_product_inputs_name_ports_of_example_products_in_other_domains() -> None:
    chained = 0
    for product in PRODUCTS.values():
        for source in (i.data_product for i in product.spec.inputs if i.data_product):
            upstream = PRODUCTS[(source.namespace, source.name)]
            assert source.port in [port.name for port in upstream.spec.output_ports]
            assert upstream.spec.domain != product.spec.domain
            chained += 1
    assert chained >= 3


def test_every_consuming_product_is_a_reader_of_what_it_consumes() -> None:
    for product in PRODUCTS.values():
        for source in (i.data_product for i in product.spec.inputs if i.data_product):
            readers = PRODUCTS[(source.namespace, source.name)].spec.access.readers
            assert any(
                r.kind == "ServiceAccount"
                and (r.namespace, r.name) == (product.namespace, product.name)
                for r in readers
            ), f"{product.namespace}/{product.name} cannot read {source.namespace}/{source.name}"


def test_every_example_product_lives_in_the_namespace_of_its_example_domain() -> None:
    assert {product.spec.domain for product in PRODUCTS.values()} == set(DOMAINS.values())
    for (namespace, name), product in PRODUCTS.items():
        assert find_domain_mismatch(product, DOMAINS.get(namespace)) is None, name


@pytest.mark.parametrize("file_name", PRODUCT_FILES)
def test_each_example_renders_into_a_domains_namespace(file_name: str) -> None:
    rendered = list(yaml.safe_load_all(render_file(EXAMPLES / file_name, default_namespace="x")))
    assert rendered
    assert {child["metadata"]["namespace"] for child in rendered} <= set(DOMAINS)


def test_dev_loads_the_domains_before_the_products_that_live_in_them() -> None:
    objects = load_manifests(EXAMPLES)
    kinds = [obj["kind"] for obj in objects]
    assert kinds.count("DataProduct") == len(PRODUCTS)
    assert kinds.count("DataDomain") == len(DOMAINS)
    assert kinds.index("DataProduct") > max(i for i, k in enumerate(kinds) if k == "DataDomain")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: Deployment\napiVersion: apps/v1\nmetadata: {name: x}\n", "Deployment of apps/v1"),
        ("kind: Namespace\napiVersion: v1\nmetadata: {}\n", "not a Kubernetes object"),
        ("kind: [\n", "is not valid YAML"),
        ("", "holds no manifests"),
    ],
)
def test_dev_refuses_manifests_it_cannot_apply_and_names_them(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "bad.yaml").write_text(content)
    with pytest.raises(UserError, match=message):
        load_manifests(tmp_path)
