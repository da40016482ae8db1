"""The DataDomain API as the API server serves it: defaults, and refusals with their messages."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dataproduct_operator.api.datadomain import DataDomain
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.specs.datadomain import build_domain_objects
from tests.products import delete_if_present

DOMAINS = "/apis/datamesh.dev/v1alpha1/datadomains"

CreateDomain = Callable[..., dict[str, Any]]


@pytest.fixture
def create_domain(
    kube: BlockingClient, crds: None, request: pytest.FixtureRequest
) -> Iterator[CreateDomain]:
    """``create_domain(name, **spec)``; every domain made is deleted at the end."""
    made: list[str] = []
    prefix = "t" + hashlib.sha256(request.node.name.encode()).hexdigest()[:6]

    def create(name: str, **spec: Any) -> dict[str, Any]:
        full = f"{prefix}-{name}"
        body = {
            "apiVersion": "datamesh.dev/v1alpha1",
            "kind": "DataDomain",
            "metadata": {"name": full},
            "spec": {"owners": {"team": "sales-data"}, **spec},
        }
        made.append(full)
        created: dict[str, Any] = kube.create(DOMAINS, body)
        return created

    yield create
    for name in made:
        delete_if_present(kube, f"{DOMAINS}/{name}")


def test_a_domain_is_served_with_its_defaults(create_domain: CreateDomain) -> None:
    domain = create_domain("sales", quota={"cpu": 8, "storage": "1Ti", "maxDataProducts": 20})
    spec = domain["spec"]
    assert spec["podSecurity"] == "restricted"
    assert spec["quota"] == {"cpu": 8, "storage": "1Ti", "maxDataProducts": 20}
    assert "namespace" not in spec  # the domain's name, resolved by the operator


def test_a_name_that_cannot_name_a_namespace_needs_spec_namespace(
    create_domain: CreateDomain,
) -> None:
    with pytest.raises(ApiError) as refused:
        create_domain("sales.emea")
    assert refused.value.status == 422
    assert "the DataDomain name must be a DNS label" in refused.value.message
    domain = create_domain("sales.emea", namespace="sales-emea")
    assert domain["spec"]["namespace"] == "sales-emea"


def test_the_namespace_of_a_domain_cannot_be_changed(
    kube: BlockingClient, create_domain: CreateDomain
) -> None:
    domain = create_domain("finance", namespace="finance-data")
    path = f"{DOMAINS}/{domain['metadata']['name']}"
    with pytest.raises(ApiError) as refused:
        kube.merge_patch(path, {"spec": {"namespace": "finance-other"}})
    assert "spec.namespace cannot be changed" in refused.value.message
    with pytest.raises(ApiError) as removed:
        kube.merge_patch(path, {"spec": {"namespace": None}})
    assert "spec.namespace cannot be changed" in removed.value.message
    kube.merge_patch(path, {"spec": {"displayName": "Finance"}})  # the rest may change


def test_bad_quotas_and_levels_are_refused_with_the_field_named(
    create_domain: CreateDomain,
) -> None:
    for spec, field in (
        ({"quota": {"memory": "lots"}}, "spec.quota.memory"),
        ({"quota": {"maxDataProducts": -1}}, "spec.quota.maxDataProducts"),
        ({"podSecurity": "privileged"}, "spec.podSecurity"),
        ({"allowedConsumers": ["Not A Namespace"]}, "spec.allowedConsumers[0]"),
    ):
        with pytest.raises(ApiError) as refused:
            create_domain("bad", **spec)
        assert refused.value.status == 422
        assert field in refused.value.message, refused.value.message


def test_the_objects_a_domain_needs_are_accepted_by_the_api_server(
    kube: BlockingClient, crds: None
) -> None:
    name = "t-domain-objects"
    domain = DataDomain.from_object(
        {
            "metadata": {"name": name},
            "spec": {
                "owners": {"team": "sales-data"},
                "quota": {"cpu": 4, "memory": "8Gi", "storage": "100Gi", "maxDataProducts": 3},
            },
        }
    )
    namespace, *inside = build_domain_objects(domain)
    kube.create("/api/v1/namespaces", namespace)
    try:
        collections = {
            "ResourceQuota": f"/api/v1/namespaces/{name}/resourcequotas",
            "LimitRange": f"/api/v1/namespaces/{name}/limitranges",
            "NetworkPolicy": f"/apis/networking.k8s.io/v1/namespaces/{name}/networkpolicies",
            "RoleBinding": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{name}/rolebindings",
        }
        assert sorted({obj["kind"] for obj in inside}) == sorted(collections)
        for obj in inside:
            kube.create(f"{collections[obj['kind']]}?dryRun=All", obj)
        served = kube.get(f"/api/v1/namespaces/{name}")
        assert served["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    finally:
        kube.delete(f"/api/v1/namespaces/{name}")
