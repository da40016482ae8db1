"""Quantities out of range are refused by the API server at `kubectl apply`, with a message.

Values such as ``1e9999999`` match the quantity pattern, so only the CRDs' CEL rules stand
between them and the operator's arithmetic.
"""

from __future__ import annotations

from typing import Any

import pytest

from dataproduct_operator.api.datadomain import QUOTA_MEMORY, QUOTA_STORAGE
from dataproduct_operator.api.dataproduct import PIPELINE_RESOURCES, STORAGE_SIZE
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.clusters import DOMAINS, KubectlRunner, apply_as_user
from tests.products import example

CPU = PIPELINE_RESOURCES.named[0]


_apply = apply_as_user


def _product(namespace: str, size: str) -> dict[str, Any]:
    product = example(namespace)
    product["spec"]["outputPorts"][0]["storage"] = {"size": size}
    return product


@pytest.mark.parametrize("size", ["1e9999999", "2Pi"])
def test_a_product_whose_size_is_out_of_range_is_refused_with_the_message(
    kubectl: KubectlRunner, crds: None, namespace: str, size: str
) -> None:
    accepted, printed = _apply(kubectl, _product(namespace, size))
    assert not accepted, printed
    assert (
        f'The DataProduct "orders" is invalid: spec.outputPorts[0].storage.size: '
        f'Invalid value: "{size}": {STORAGE_SIZE.message}'
    ) in printed, printed


def test_a_product_whose_size_is_in_range_is_accepted(
    kube: BlockingClient, kubectl: KubectlRunner, crds: None, namespace: str
) -> None:
    accepted, printed = _apply(kubectl, _product(namespace, "5Gi"))
    assert accepted, printed
    stored = kube.get(f"/apis/datamesh.dev/v1alpha1/namespaces/{namespace}/dataproducts/orders")
    assert stored["spec"]["outputPorts"][0]["storage"]["size"] == "5Gi"


def test_pipeline_resources_out_of_range_are_refused_with_the_message(
    kubectl: KubectlRunner, crds: None, namespace: str
) -> None:
    product = example(namespace)
    product["spec"]["pipelines"][0]["resources"] = {"requests": {"cpu": "1e9999999"}}
    accepted, printed = _apply(kubectl, product)
    assert not accepted, printed
    assert f"spec.pipelines[0].resources.requests: Invalid value: {CPU.message}" in printed, printed


def _domain(name: str, **quota: Any) -> dict[str, Any]:
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataDomain",
        "metadata": {"name": name},
        "spec": {"owners": {"team": "sales-data"}, "quota": quota},
    }


@pytest.mark.parametrize(
    ("quota", "field", "message"),
    [
        ({"storage": "1e9999999"}, "storage", QUOTA_STORAGE.message),
        ({"storage": "2Ei"}, "storage", QUOTA_STORAGE.message),
        ({"memory": "2Pi"}, "memory", QUOTA_MEMORY.message),
    ],
)
def test_a_domain_whose_quota_is_out_of_range_is_refused_with_the_message(
    kubectl: KubectlRunner, domain_name: str, quota: dict[str, str], field: str, message: str
) -> None:
    accepted, printed = _apply(kubectl, _domain(domain_name, **quota))
    assert not accepted, printed
    assert (
        f'The DataDomain "{domain_name}" is invalid: spec.quota.{field}: '
        f'Invalid value: "{quota[field]}": {message}'
    ) in printed, printed


def test_a_domain_whose_quota_is_in_range_is_accepted(
    kube: BlockingClient, kubectl: KubectlRunner, domain_name: str
) -> None:
    accepted, printed = _apply(kubectl, _domain(domain_name, cpu=8, memory="16Gi", storage="5Gi"))
    assert accepted, printed
    stored = kube.get(f"{DOMAINS}/{domain_name}")
    assert stored["spec"]["quota"] == {"cpu": 8, "memory": "16Gi", "storage": "5Gi"}
