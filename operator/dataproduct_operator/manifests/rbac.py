"""The operator's own permissions: one list of rules, the source of the chart's ClusterRole.

Least privilege: every verb is named (no wildcards, no ``escalate``, no ``bind``). Because
Kubernetes lets an identity grant only what it holds itself, the rules include everything the
per-product reader and owner Roles grant (see :mod:`dataproduct_operator.specs.dataproduct`);
a unit test checks that they do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataproduct_operator.api.dataproduct import GROUP, PLURAL

READ = ("get", "list", "watch")
MANAGE = (*READ, "create", "update", "patch", "delete")


@dataclass(frozen=True)
class Rule:
    """One PolicyRule and why the operator needs it."""

    api_group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    reason: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "apiGroups": [self.api_group],
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }


OPERATOR_RULES = (
    Rule(
        GROUP,
        (PLURAL,),
        (*READ, "update", "patch"),
        "watch DataProducts; let go of the finalizer of earlier versions",
    ),
    Rule(GROUP, (f"{PLURAL}/status",), ("get", "update", "patch"), "write the status"),
    Rule(
        GROUP,
        (f"{PLURAL}/finalizers",),
        ("update",),
        "set owner references that block owner deletion on the children",
    ),
    Rule(GROUP, (f"{PLURAL}/data",), ("get",), "grant readers the data subresource"),
    Rule(
        "",
        ("serviceaccounts", "persistentvolumeclaims", "configmaps"),
        MANAGE,
        "the pipeline identity, the output-port claims and the connection ConfigMap",
    ),
    Rule("batch", ("cronjobs", "jobs"), MANAGE, "scheduled pipelines and on-demand runs"),
    Rule(
        "rbac.authorization.k8s.io",
        ("roles", "rolebindings"),
        MANAGE,
        "the reader and owner Roles of each product and their bindings",
    ),
    Rule(
        "monitoring.coreos.com",
        ("prometheusrules",),
        MANAGE,
        "freshness and failed-run alerts, when the Prometheus operator is installed",
    ),
    Rule("", ("events",), ("create", "patch"), "Events on the DataProducts and DataDomains"),
    Rule(GROUP, ("datadomains",), (*READ, "patch"), "watch DataDomains"),
    Rule(GROUP, ("datadomains/status",), ("get", "update", "patch"), "write their status"),
    Rule(
        GROUP,
        ("datadomains/finalizers",),
        ("update",),
        "set owner references that block owner deletion on the domain's objects",
    ),
    Rule("", ("namespaces",), (*READ, "create", "patch"), "each domain's namespace, never deleted"),
    Rule(
        "",
        ("resourcequotas", "limitranges"),
        MANAGE,
        "each domain's quota and default container requests",
    ),
    Rule("networking.k8s.io", ("networkpolicies",), MANAGE, "each domain's ingress policies"),
)


def build_cluster_role_rules() -> list[dict[str, Any]]:
    """The PolicyRules of the operator's ClusterRole, in a stable order."""
    return [rule.to_wire() for rule in OPERATOR_RULES]


def allows(rules: list[dict[str, Any]], api_group: str, resource: str, verb: str) -> bool:
    """Whether ``rules`` (PolicyRules without resourceNames) allow ``verb`` on ``resource``."""
    return any(
        api_group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
        for rule in rules
    )
