"""Who may touch a product's Secrets: the domain team creates them, the owner team reads and
changes the ones its product names, by name, and the operator holds what it grants."""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.manifests.rbac import (
    allows,
    build_cluster_role_rules,
    build_domain_cluster_roles,
    build_namespace_writer_rules,
)
from dataproduct_operator.specs.dataproduct import build_access, owner_rules, referenced_secrets


def _product(**spec: Any) -> DataProduct:
    return DataProduct.from_object(
        {
            "metadata": {"name": "orders", "namespace": "sales"},
            "spec": {
                "domain": "sales",
                "owner": {"team": "sales-data"},
                "description": "Orders.",
                "outputPorts": [{"name": "orders-v1"}],
                **spec,
            },
        }
    )


def _secret_env(name: str, secret: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}}


def test_the_secrets_a_product_names_are_found_in_pipelines_and_inputs_once_each() -> None:
    product = _product(
        pipelines=[
            {"name": "a", "image": "i", "env": [_secret_env("A", "orders-db")]},
            {
                "name": "b",
                "image": "i",
                "env": [
                    _secret_env("B", "orders-db"),
                    {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
                    {"name": "D", "value": "orders-not-a-secret"},
                ],
            },
        ],
        inputs=[
            {"name": "shop", "external": {"type": "s3", "uri": "s3://x",
                                          "secretRef": {"name": "orders-s3"}}},
            {"name": "open", "external": {"type": "s3", "uri": "s3://y"}},
        ],
    )  # fmt: skip
    assert referenced_secrets(product) == ["orders-db", "orders-s3"]


def _owner_role(product: DataProduct) -> dict[str, Any]:
    (role,) = [
        o
        for o in build_access(product)
        if o["kind"] == "Role" and o["metadata"]["name"] == "orders-owner"
    ]
    return role


def test_the_owner_role_reads_and_changes_exactly_the_secrets_the_product_names() -> None:
    product = _product(
        pipelines=[{"name": "a", "image": "i", "env": [_secret_env("A", "orders-db")]}]
    )
    rules = _owner_role(product)["rules"]
    for verb in ("get", "update", "patch"):
        assert allows(rules, "", "secrets", verb, "orders-db"), verb
        assert not allows(rules, "", "secrets", verb, "orders-other"), verb
    for verb in ("list", "watch", "create", "delete"):
        assert not allows(rules, "", "secrets", verb, "orders-db"), verb
    (secret_rule,) = [rule for rule in rules if "secrets" in rule["resources"]]
    assert secret_rule["resourceNames"] == ["orders-db"]


def test_an_owner_role_without_secrets_has_no_secret_rule_at_all() -> None:
    """An empty resourceNames would not mean none: it would mean every Secret."""
    rules = _owner_role(_product())["rules"]
    assert all("secrets" not in rule["resources"] for rule in rules)


def test_the_domain_team_may_create_secrets_but_not_read_or_change_any() -> None:
    _, editor_rules, view = build_domain_cluster_roles()
    granted = editor_rules["rules"] + view["rules"]
    assert allows(granted, "", "secrets", "create")
    for verb in ("get", "list", "watch", "update", "patch", "delete"):
        assert not allows(granted, "", "secrets", verb, "orders-db"), verb


def test_the_operator_holds_what_the_owner_role_grants_on_secrets() -> None:
    """The API server lets the operator write a Role only with the Role's permissions: in a
    domain's namespace, its cluster-wide rules and those of the writer role it is bound to."""
    rules = build_cluster_role_rules() + build_namespace_writer_rules()
    for rule in owner_rules("orders", ["orders-db", "orders-s3"]):
        for resource in rule["resources"]:
            for verb in rule["verbs"]:
                for name in rule.get("resourceNames", [""]):
                    assert allows(rules, rule["apiGroups"][0], resource, verb, name), (
                        resource,
                        verb,
                    )
    assert not allows(rules, "", "secrets", "list")
    assert not allows(rules, "", "secrets", "watch")
    # In a domain's namespace it writes the store logins' Secrets (create, delete)...
    assert allows(build_namespace_writer_rules(), "", "secrets", "create")
    # ...and outside the namespaces of domains it holds nothing on Secrets.
    for verb in ("get", "create", "update", "delete"):
        assert not allows(build_cluster_role_rules(), "", "secrets", verb)
