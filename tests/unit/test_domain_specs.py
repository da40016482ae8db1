"""What a DataDomain's namespace, quota and limits look like, without a cluster."""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.datadomain import DataDomain
from dataproduct_operator.constants import ANNOTATION_DESIRED_HASH, LABEL_DOMAIN
from dataproduct_operator.specs.datadomain import (
    build_domain_objects,
    consumer_namespaces,
    granted_namespaces,
)
from tests.helpers import example_product


def domain(name: str = "sales", uid: str = "d-1", **spec: Any) -> DataDomain:
    return DataDomain.from_object(
        {
            "metadata": {"name": name, "uid": uid},
            "spec": {"owners": {"team": "Sales Data Team"}, **spec},
        }
    )


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def test_the_namespace_is_the_domains_name_with_pod_security_enforced() -> None:
    (namespace,) = of_kind(build_domain_objects(domain()), "Namespace")
    metadata = namespace["metadata"]
    assert metadata["name"] == "sales"
    assert metadata["labels"][LABEL_DOMAIN] == "sales"
    for mode in ("enforce", "audit", "warn"):
        assert metadata["labels"][f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert metadata["annotations"]["datamesh.dev/owner-team"] == "Sales Data Team"
    assert "ownerReferences" not in metadata, "deleting a domain never deletes its namespace"


def test_spec_namespace_pod_security_and_cost_center_are_followed() -> None:
    objects = build_domain_objects(
        domain("sales.emea", namespace="sales-emea", podSecurity="baseline", costCenter="CC-42")
    )
    (namespace,) = of_kind(objects, "Namespace")
    assert namespace["metadata"]["name"] == "sales-emea"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert namespace["metadata"]["annotations"]["datamesh.dev/cost-center"] == "CC-42"
    assert {obj["metadata"].get("namespace") for obj in objects if obj["kind"] != "Namespace"} == {
        "sales-emea"
    }


def test_the_quota_holds_exactly_the_limits_given_and_counts_data_products() -> None:
    quota = {"cpu": 8, "memory": "32Gi", "storage": "1Ti", "maxDataProducts": 20}
    (resource_quota,) = of_kind(build_domain_objects(domain(quota=quota)), "ResourceQuota")
    assert resource_quota["spec"]["hard"] == {
        "requests.cpu": "8",
        "requests.memory": "32Gi",
        "requests.storage": "1Ti",
        "count/dataproducts.datamesh.dev": "20",
    }
    (only_count,) = of_kind(
        build_domain_objects(domain(quota={"maxDataProducts": 0})), "ResourceQuota"
    )
    assert only_count["spec"]["hard"] == {"count/dataproducts.datamesh.dev": "0"}
    assert of_kind(build_domain_objects(domain()), "ResourceQuota") == []
    assert of_kind(build_domain_objects(domain(quota={})), "ResourceQuota") == []


def test_containers_get_default_requests_so_a_quota_never_refuses_them() -> None:
    (limit_range,) = of_kind(build_domain_objects(domain()), "LimitRange")
    (limits,) = limit_range["spec"]["limits"]
    assert limits["type"] == "Container"
    assert set(limits["defaultRequest"]) == {"cpu", "memory"}


def test_objects_in_the_namespace_are_owned_by_the_domain_and_all_are_stamped() -> None:
    objects = build_domain_objects(domain(quota={"cpu": "2"}))
    assert [obj["kind"] for obj in objects] == [
        "Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "NetworkPolicy", "RoleBinding",
    ]  # fmt: skip
    for obj in objects:
        assert obj["metadata"]["annotations"][ANNOTATION_DESIRED_HASH]
        assert obj["metadata"]["labels"][LABEL_DOMAIN] == "sales"
        if obj["kind"] != "Namespace":
            (owner,) = obj["metadata"]["ownerReferences"]
            assert (owner["kind"], owner["name"], owner["uid"]) == ("DataDomain", "sales", "d-1")
    unowned = build_domain_objects(domain(uid=""))  # rendering without a cluster
    assert not any(obj["metadata"].get("ownerReferences") for obj in unowned)


def reading_product(name: str, *namespaces: str) -> dict[str, Any]:
    readers = [{"kind": "ServiceAccount", "name": "app", "namespace": ns} for ns in namespaces]
    readers.append({"kind": "Group", "name": "analysts"})
    readers.append({"kind": "User", "name": "someone", "namespace": "ignored"})
    document = example_product()
    document["metadata"].update(name=name, namespace="sales")
    document["spec"]["access"] = {"readers": readers}
    return document


def granted(*products: dict[str, Any]) -> set[str]:
    return set().union(*(granted_namespaces(product) for product in products))


def policies(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj["spec"] for obj in of_kind(objects, "NetworkPolicy")}


def allowed_from(spec: dict[str, Any]) -> list[str]:
    (rule,) = spec["ingress"]
    (peer,) = rule["from"]
    (expression,) = peer["namespaceSelector"]["matchExpressions"]
    assert (expression["key"], expression["operator"]) == ("kubernetes.io/metadata.name", "In")
    return list(expression["values"])


def test_ingress_is_denied_but_from_the_namespace_and_the_readers_namespaces() -> None:
    readers = granted(
        reading_product("orders", "finance", "marketing"), reading_product("x", "crm")
    )
    assert readers == {"finance", "marketing", "crm"}
    found = policies(build_domain_objects(domain(), readers))
    assert found["datamesh-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert allowed_from(found["datamesh-allow-readers"]) == [
        "crm", "finance", "marketing", "sales",
    ]  # fmt: skip
    alone = policies(build_domain_objects(domain()))
    assert allowed_from(alone["datamesh-allow-readers"]) == ["sales"]


def test_allowed_consumers_limit_the_namespaces_that_get_in() -> None:
    readers = granted(reading_product("orders", "finance", "marketing"))
    found = policies(build_domain_objects(domain(), readers, consumer_namespaces={"finance"}))
    assert allowed_from(found["datamesh-allow-readers"]) == ["finance", "sales"]


def test_the_owner_team_is_bound_to_the_domain_editor_cluster_role_in_the_namespace() -> None:
    (binding,) = of_kind(build_domain_objects(domain(namespace="sales-prod")), "RoleBinding")
    assert binding["metadata"]["namespace"] == "sales-prod"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "datamesh-domain-editor",
    }
    assert binding["subjects"] == [
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "Sales Data Team"}
    ]


def test_a_consumer_domain_stands_for_its_namespace() -> None:
    allowing = domain(allowedConsumers=["finance", "marketing-team"])
    namespaces = consumer_namespaces(allowing, {"marketing-team": "marketing", "crm": "crm"})
    assert namespaces == {"finance", "marketing"}
    assert consumer_namespaces(domain(), {"crm": "crm"}) is None
