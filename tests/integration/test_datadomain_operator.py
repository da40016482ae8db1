"""Onboarding a domain: the operator makes its namespace, quota, limits, network policies and
the owner team's RoleBinding.

The operator runs as the chart's identity. DataDomains are cluster-scoped, so every test here
deletes its domain and the namespace made for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.rest import ApiError
from tests.clusters import KubectlRunner, hand_over
from tests.helpers import wait_for
from tests.products import (
    PRODUCTS,
    OperatorProcess,
    condition,
    delete_if_present,
    example,
    wait_ready,
)

DOMAINS = "/apis/datamesh.dev/v1alpha1/datadomains"
NAME = "t-onboarding"


@pytest.fixture
def onboarded(
    kube: BlockingClient, operator_kubeconfig: Path, tmp_path: Path
) -> Iterator[tuple[OperatorProcess, dict[str, Any]]]:
    """An operator, and a DataDomain with a quota of one data product, Ready."""
    operator = OperatorProcess(operator_kubeconfig, tmp_path / "operator.log")
    domain = {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataDomain",
        "metadata": {"name": NAME},
        "spec": {
            "owners": {"team": "sales-data"},
            "quota": {"storage": "50Gi", "maxDataProducts": 1},
            "costCenter": "CC-7",
        },
    }
    try:
        kube.create(DOMAINS, domain)

        def ready() -> dict[str, Any] | None:
            found = kube.get(f"{DOMAINS}/{NAME}")
            ok = (condition(found, "Ready") or {}).get("status") == "True"
            return found if ok else None

        yield operator, wait_for(ready, description="the DataDomain to be Ready")
    finally:
        # The domain goes only while an operator lets it: its products first, then the domain.
        products = PRODUCTS.format(namespace=NAME)
        for path in [f"{products}/{p['metadata']['name']}" for p in kube.get(products)["items"]]:
            kube.delete(path)
        delete_if_present(kube, f"{DOMAINS}/{NAME}")
        wait_for(lambda: gone(kube, f"{DOMAINS}/{NAME}"), description="the DataDomain to go")
        operator.stop()
        delete_if_present(kube, f"/api/v1/namespaces/{NAME}")


def gone(kube: BlockingClient, path: str) -> bool:
    try:
        kube.get(path)
    except ApiError as error:
        if error.status == 404:
            return True
        raise
    return False


def test_onboarding_makes_the_namespace_quota_limits_and_policies(
    kube: BlockingClient, onboarded: tuple[OperatorProcess, dict[str, Any]]
) -> None:
    _, domain = onboarded
    namespace = kube.get(f"/api/v1/namespaces/{NAME}")
    labels = namespace["metadata"]["labels"]
    assert labels["datamesh.dev/domain"] == NAME
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace["metadata"]["annotations"]["datamesh.dev/cost-center"] == "CC-7"
    quota = kube.get(f"/api/v1/namespaces/{NAME}/resourcequotas/datamesh-domain")
    assert quota["spec"]["hard"] == {
        "requests.storage": "50Gi",
        "count/dataproducts.datamesh.dev": "1",
    }
    assert kube.get(f"/api/v1/namespaces/{NAME}/limitranges/datamesh-domain")
    policies = kube.get(f"/apis/networking.k8s.io/v1/namespaces/{NAME}/networkpolicies")
    assert {p["metadata"]["name"] for p in policies["items"]} == {
        "datamesh-deny-ingress",
        "datamesh-allow-readers",
    }
    assert domain["status"]["namespace"] == NAME
    assert {c["type"]: c["status"] for c in domain["status"]["conditions"]} == {
        "Ready": "True",
        "NamespaceReady": "True",
        "QuotaReady": "True",
        "AccessReady": "True",
    }


def test_max_data_products_stops_the_next_product(
    kube: BlockingClient, onboarded: tuple[OperatorProcess, dict[str, Any]]
) -> None:
    products = PRODUCTS.format(namespace=NAME)
    first = example(NAME, "orders")
    first["spec"]["domain"] = NAME
    kube.create(products, first)
    second = example(NAME, "invoices")
    second["spec"]["domain"] = NAME
    with pytest.raises(ApiError) as refused:
        kube.create(products, second)
    assert refused.value.status == 403
    assert "exceeded quota" in refused.value.message
    assert "count/dataproducts.datamesh.dev" in refused.value.message

    # The domain follows its products within seconds, well before the 30 s drift check.
    policy = f"/apis/networking.k8s.io/v1/namespaces/{NAME}/networkpolicies/datamesh-allow-readers"

    def readers_let_in() -> list[str] | None:
        (rule,) = kube.get(policy)["spec"]["ingress"]
        (expression,) = rule["from"][0]["namespaceSelector"]["matchExpressions"]
        return expression["values"] if len(expression["values"]) > 1 else None

    assert wait_for(readers_let_in, timeout=15, description="the readers' namespaces") == [
        "finance", "marketing", NAME,
    ]  # fmt: skip

    def products_counted() -> dict[str, Any] | None:
        counts = (kube.get(f"{DOMAINS}/{NAME}").get("status") or {}).get("dataProducts") or {}
        return counts if counts.get("total") else None

    counted = wait_for(products_counted, timeout=15, description="the domain to count it")
    assert counted["total"] == 1


def test_a_domain_that_holds_products_is_deleted_only_once_they_are_gone(
    kube: BlockingClient, onboarded: tuple[OperatorProcess, dict[str, Any]]
) -> None:
    products = PRODUCTS.format(namespace=NAME)
    product = example(NAME, "orders")
    product["spec"]["domain"] = NAME
    kube.create(products, product)
    kube.delete(f"{DOMAINS}/{NAME}")

    def blocked() -> dict[str, Any] | None:
        found = condition(kube.get(f"{DOMAINS}/{NAME}"), "Ready") or {}
        return found if found.get("reason") == "DeletionBlocked" else None

    refused = wait_for(blocked, description="the deletion to be refused while a product is left")
    assert "orders" in refused["message"] and "delete them first" in refused["message"]

    def blocked_event() -> bool:  # posted once the status is written: a moment after it
        events = kube.get("/api/v1/namespaces/default/events")["items"]
        return any(
            e["reason"] == "DeletionBlocked" and e["involvedObject"]["name"] == NAME for e in events
        )

    wait_for(blocked_event, timeout=10, description="the DeletionBlocked Event")
    kube.delete(f"{products}/orders")
    wait_for(lambda: gone(kube, f"{DOMAINS}/{NAME}"), description="the domain to go")
    namespace = kube.get(f"/api/v1/namespaces/{NAME}")
    assert namespace["status"]["phase"] == "Active", "the namespace is never deleted"


def test_a_deleted_domain_waits_until_the_claims_kept_by_retain_are_released(
    kube: BlockingClient, onboarded: tuple[OperatorProcess, dict[str, Any]]
) -> None:
    # A claim the operator still manages without an owner: one it keeps under Retain and has
    # yet to release (as when its product went while the operator was throttled). Its
    # binding in the namespace goes with the domain, so the domain waits for the release.
    claims = f"/api/v1/namespaces/{NAME}/persistentvolumeclaims"
    kube.create(
        claims,
        {
            "metadata": {
                "name": "gone-orders-v1",
                "labels": {
                    "app.kubernetes.io/managed-by": "dataproduct-operator",
                    "datamesh.dev/data-product": "gone",
                },
            },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    kube.delete(f"{DOMAINS}/{NAME}")

    def blocked() -> dict[str, Any] | None:
        found = condition(kube.get(f"{DOMAINS}/{NAME}"), "Ready") or {}
        return found if found.get("reason") == "DeletionBlocked" else None

    refused = wait_for(blocked, description="the deletion to wait for the release")
    assert refused["message"] == (
        f"deletion waits: 1 PersistentVolumeClaims in namespace {NAME} kept by deletionPolicy "
        "Retain are still to be released by the operator"
    )
    # Released (as the operator does: no longer managed by it): the domain goes.
    kube.merge_patch(
        f"{claims}/gone-orders-v1",
        {"metadata": {"labels": {"app.kubernetes.io/managed-by": None}}},
    )
    wait_for(lambda: gone(kube, f"{DOMAINS}/{NAME}"), description="the domain to go")


def test_the_owner_team_manages_products_in_its_domain_and_nowhere_else(
    kube: BlockingClient,
    kubectl: KubectlRunner,
    namespace: str,
    onboarded: tuple[OperatorProcess, dict[str, Any]],
) -> None:
    team = ("--as=dana", "--as-group=sales-data")  # a member of the domain's owner team

    def may(verb: str, resource: str, where: str) -> bool:
        result = kubectl("auth", "can-i", verb, resource, "-n", where, *team, check=False)
        return result.stdout.strip() == "yes"

    # kube-controller-manager aggregates the editor role's rules shortly after the chart install.
    wait_for(lambda: may("create", "dataproducts.datamesh.dev", NAME), description="aggregation")
    binding = kube.get(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NAME}/rolebindings/datamesh-domain-editors"
    )
    assert binding["roleRef"]["name"] == "datamesh-domain-editor"
    product = example(NAME, "orders")
    product["spec"]["domain"] = NAME
    created = kubectl("create", "-f", "-", *team, stdin=json.dumps(product))
    assert "created" in created.stdout
    for verb, resource in (("delete", "jobs.batch"), ("create", "persistentvolumeclaims"),
                           ("list", "pods"), ("get", "configmaps")):  # fmt: skip
        assert may(verb, resource, NAME), (verb, resource)
    assert not may("get", "secrets", NAME)
    assert not may("create", "rolebindings.rbac.authorization.k8s.io", NAME)
    elsewhere = example(namespace, "orders")
    refused = kubectl("create", "-f", "-", *team, stdin=json.dumps(elsewhere), check=False)
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr
    assert not may("list", "pods", namespace)


def test_a_product_outside_a_domain_is_not_in_the_mesh_and_gets_nothing_until_onboarded(
    kube: BlockingClient,
    namespace: str,
    onboarded: tuple[OperatorProcess, dict[str, Any]],
) -> None:
    products = PRODUCTS.format(namespace=namespace)
    kube.create(products, example(namespace))  # spec.domain names the namespace, no domain yet

    def refused_with(reason: str, path: str) -> dict[str, Any] | None:
        found = condition(kube.get(path), "Ready") or {}
        return found if found.get("reason") == reason else None

    def mismatch(path: str) -> dict[str, Any] | None:
        return refused_with("DomainMismatch", path)

    refused = wait_for(
        lambda: refused_with("NamespaceNotInMesh", f"{products}/orders"),
        description="NamespaceNotInMesh",
    )
    assert f"namespace {namespace} belongs to no DataDomain" in refused["message"]
    assert f"create a DataDomain for namespace {namespace}" in refused["message"]
    selector = {"labelSelector": "datamesh.dev/data-product=orders"}
    for kind in ("serviceaccounts", "persistentvolumeclaims", "configmaps"):
        assert kube.get(f"/api/v1/namespaces/{namespace}/{kind}", query=selector)["items"] == []
    events = kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    assert any(e["reason"] == "NamespaceNotInMesh" for e in events)

    other = f"/apis/datamesh.dev/v1alpha1/namespaces/{NAME}/dataproducts"
    elsewhere = example(NAME, "stray")
    elsewhere["spec"]["domain"] = "finance"  # in the domain t-onboarding's namespace
    kube.create(other, elsewhere)
    stray = wait_for(lambda: mismatch(f"{other}/stray"), description="a foreign spec.domain")
    expected = f"spec.domain is finance, but namespace {NAME} belongs to the DataDomain {NAME}"
    assert expected in stray["message"]
    kube.delete(f"{other}/stray")

    domain = {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataDomain",
        "metadata": {"name": namespace},
        "spec": {"owners": {"team": "late-data"}},
    }
    hand_over(kube, namespace)  # an existing namespace: a platform admin hands it over
    kube.create(DOMAINS, domain)
    try:
        wait_ready(kube, namespace, "orders")  # onboarding the domain lets the product in
    finally:
        kube.delete(f"{products}/orders")
        delete_if_present(kube, f"{DOMAINS}/{namespace}")  # let go once the product is gone
        wait_for(lambda: gone(kube, f"{DOMAINS}/{namespace}"), description="the domain to go")
