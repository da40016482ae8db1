"""The operator's own permissions and the domain teams': the source of the chart's ClusterRoles.

Least privilege: every verb is named (no wildcards, no ``escalate``), and the operator's write
powers hold only where the mesh lives:

- :data:`OPERATOR_RULES`, bound cluster-wide: read and watch every kind the operator manages;
  write its own kinds' status and finalizers, Events, namespaces (get, create, patch) and the
  admission policies of MeshPolicies, by name: only the chart's pool ``datamesh-policy-000``
  and on (``policies.maxEnforced`` names); ``create`` RoleBindings and ``bind`` two ClusterRoles
  by name (``datamesh-domain-editor`` and the writer role below), so that it can bind itself
  in a namespace a DataDomain holds.
- :data:`NAMESPACE_WRITER_RULES`, the ClusterRole ``datamesh-operator-namespace-writer``, never
  bound cluster-wide: every write verb on the namespaced kinds it manages. The operator binds it
  to itself in a domain's namespace when it onboards the domain.

The chart's admission policies (:mod:`dataproduct_operator.manifests.guards`) fence the binding
in: the operator's RoleBindings are refused outside domain namespaces and in protected ones, and
it may not relabel a protected namespace or hand a namespace to another domain. No admission
policy can fence its power over admission policies (see the guards' module): RBAC does, by
resourceNames, so the guards and every admission policy outside the pool are out of its reach.

Because Kubernetes lets an identity grant only what it holds itself (in that namespace), the
two sets together include everything the per-product reader and owner Roles grant (see
:mod:`dataproduct_operator.specs.dataproduct`); a unit test checks that they do. The one
exception is the owner team of a domain, bound to the aggregated ClusterRole
``datamesh-domain-editor``: the operator may ``bind`` that one role by name and holds none of
its permissions beyond its own.

``datamesh-domain-editor`` aggregates the built-in ``view`` (read everything but Secrets) and
the ClusterRoles labelled ``datamesh.dev/aggregate-to-domain-editor``: the chart's
``datamesh-domain-editor-rules`` (manage DataProducts, Jobs and claims), and any a platform
team adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataproduct_operator.api.accessdecision import PLURAL as DECISIONS
from dataproduct_operator.api.accessrequest import PLURAL as REQUESTS
from dataproduct_operator.api.dataproduct import PLURAL
from dataproduct_operator.api.kinds import GROUP
from dataproduct_operator.constants import (
    DEFAULT_ADMISSION_SLOTS,
    DOMAIN_EDITOR_ROLE,
    LABEL_AGGREGATE_TO_DOMAIN_EDITOR,
    NAMESPACE_WRITER_ROLE,
    admission_slot_names,
)

READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete")
MANAGE = (*READ, *WRITE)


@dataclass(frozen=True)
class Rule:
    """One PolicyRule and why the operator needs it."""

    api_group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    reason: str
    resource_names: tuple[str, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "apiGroups": [self.api_group],
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }
        if self.resource_names:
            rule["resourceNames"] = list(self.resource_names)
        return rule


# The namespaced kinds the operator manages, and what for: read and watched everywhere (cluster
# rules), written only where it is bound (writer rules).
NAMESPACED_KINDS = (
    (
        "",
        ("serviceaccounts", "persistentvolumeclaims", "configmaps"),
        "the pipeline identity, the output-port claims and the connection ConfigMap",
    ),
    ("batch", ("cronjobs", "jobs"), "scheduled pipelines and on-demand runs"),
    (
        "rbac.authorization.k8s.io",
        ("roles", "rolebindings"),
        "the reader and owner Roles of each product and their bindings",
    ),
    (
        "monitoring.coreos.com",
        ("prometheusrules",),
        "freshness and failed-run alerts, when the Prometheus operator is installed",
    ),
    ("", ("resourcequotas", "limitranges"), "each domain's quota and default container requests"),
    ("networking.k8s.io", ("networkpolicies",), "each domain's ingress policies"),
)

ADMISSION_GROUP = "admissionregistration.k8s.io"
ADMISSION_RESOURCES = ("validatingadmissionpolicies", "validatingadmissionpolicybindings")


def admission_slot_rule(slots: int) -> Rule:
    """The operator's power over admission policies: the chart's pool of names only, so that
    it cannot delete or change one it did not make (the chart's guards among them). Create is
    granted by name too: the operator creates with server-side apply, whose request names the
    object; a POST to the collection names none and is refused."""
    return Rule(
        ADMISSION_GROUP,
        ADMISSION_RESOURCES,
        ("get", *WRITE),
        "enforce Deny and Warn MeshPolicies at admission, each in one name of the pool of "
        "policies.maxEnforced names",
        resource_names=admission_slot_names(slots),
    )


# Bound cluster-wide: reading everywhere, writing only what must be written cluster-wide.
_OPERATOR_RULES = (
    *(Rule(group, resources, READ, f"watch {why}") for group, resources, why in NAMESPACED_KINDS),
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
        "rbac.authorization.k8s.io",
        ("rolebindings",),
        ("create",),
        "bind itself to datamesh-operator-namespace-writer in a domain's namespace it onboards "
        "(refused by admission anywhere else)",
    ),
    Rule("", ("events",), ("create", "patch"), "Events on the DataProducts and DataDomains"),
    Rule(GROUP, ("datadomains",), (*READ, "patch"), "watch DataDomains"),
    Rule(GROUP, ("datastores",), READ, "watch DataStores: where output ports live"),
    Rule(GROUP, ("datastores/status",), ("get", "update", "patch"), "write their status"),
    Rule(GROUP, ("datadomains/status",), ("get", "update", "patch"), "write their status"),
    Rule(
        GROUP,
        (REQUESTS, DECISIONS),
        READ,
        "watch access requests and the owners' decisions in every namespace",
    ),
    Rule(
        GROUP,
        (f"{REQUESTS}/status", f"{DECISIONS}/status"),
        ("get", "update", "patch"),
        "write their status: a request's phase, decision, expiry and history",
    ),
    Rule(
        GROUP,
        ("datadomains/finalizers",),
        ("update",),
        "set owner references that block owner deletion on the domain's objects",
    ),
    # PersistentVolumes are cluster-scoped: no namespaced role can grant this.
    Rule(
        "",
        ("persistentvolumes",),
        (*READ, "patch"),
        "set the reclaim policy of Retain output ports' volumes to Retain, label them for their "
        "port, and bind a released one to the claim of that port again (never create or delete)",
    ),
    Rule(
        "",
        ("namespaces",),
        (*READ, "create", "patch"),
        "each domain's namespace, never deleted (protected namespaces and another domain's "
        "label refused by admission)",
    ),
    Rule(GROUP, ("meshpolicies",), READ, "watch MeshPolicies"),
    Rule(GROUP, ("meshpolicies/status",), ("get", "update", "patch"), "write their status"),
    Rule(
        GROUP,
        ("meshpolicies/finalizers",),
        ("update",),
        "set owner references that block owner deletion on the admission policies",
    ),
    Rule(
        ADMISSION_GROUP,
        ADMISSION_RESOURCES,
        ("list", "watch"),
        "find which names of the pool below the MeshPolicies hold (by their labels)",
    ),
    Rule(
        "rbac.authorization.k8s.io",
        ("clusterroles",),
        ("bind",),
        "bind each domain's owner team to datamesh-domain-editor, and itself to "
        "datamesh-operator-namespace-writer in the domain's namespace; no other role",
        resource_names=(DOMAIN_EDITOR_ROLE, NAMESPACE_WRITER_ROLE),
    ),
)


def operator_rules(slots: int = DEFAULT_ADMISSION_SLOTS) -> tuple[Rule, ...]:
    """The rules of the operator's ClusterRole, with a pool of ``slots`` admission-policy
    names (the chart value policies.maxEnforced)."""
    return (*_OPERATOR_RULES, admission_slot_rule(slots))


OPERATOR_RULES = operator_rules()

# The ClusterRole datamesh-operator-namespace-writer: never bound cluster-wide; the operator
# binds it to itself in each namespace a DataDomain holds.
NAMESPACE_WRITER_RULES = (
    *(Rule(group, resources, WRITE, why) for group, resources, why in NAMESPACED_KINDS),
    # Only where it is bound: a domain's namespace, never cluster-wide.
    Rule(
        "",
        ("secrets",),
        ("create", "get", "update", "patch", "delete"),
        "write the store logins' Secrets: a product's writer login (<product>-store) and the "
        "reader logins of the namespace's ServiceAccounts (dm-store-<store>-<serviceaccount>), "
        "read back to hand the same password to the store; grant each owner team get, update "
        "and patch on the Secrets its product names (the API server lets the operator grant "
        "only what it holds)",
    ),
    Rule(
        "",
        ("pods",),
        ("list",),
        "read the run reports pipeline pods leave as their termination messages (the pods of "
        "the domain's pipelines only: never a pod of another namespace)",
    ),
)


# The catalog's --auth kubernetes asks the API server about its callers (it writes nothing).
CATALOG_REVIEW_RULES = (
    Rule(
        "authentication.k8s.io",
        ("tokenreviews",),
        ("create",),
        "--auth kubernetes: ask whose a caller's bearer token is",
    ),
    Rule(
        "authorization.k8s.io",
        ("subjectaccessreviews",),
        ("create",),
        "--auth kubernetes: ask in which namespaces a caller may list data products",
    ),
)

# The standalone catalog reads, and writes nothing.
CATALOG_RULES = (
    Rule(
        GROUP,
        (PLURAL, "datadomains"),
        ("list", "watch"),
        "list and watch the products and domains it shows",
    ),
    # RBAC cannot narrow to a label: every ConfigMap is readable, the catalog selects
    # the operator's connection ConfigMaps by label and keeps nothing else.
    Rule("", ("configmaps",), ("list", "watch"), "show the products' connection ConfigMaps"),
    Rule("batch", ("jobs",), ("list", "watch"), "show the last pipeline runs"),
    *CATALOG_REVIEW_RULES,
)

# What a domain's owner team may do in its namespace beyond reading (``view``).
DOMAIN_EDITOR_RULES = (
    Rule(GROUP, (PLURAL,), MANAGE, "declare, change and retire the domain's data products"),
    Rule("batch", ("jobs",), MANAGE, "run and clean up pipeline runs"),
    Rule("", ("persistentvolumeclaims",), MANAGE, "manage the volumes of the domain's data"),
    # Only create: its answer holds what the caller sent, where an update's or a patch's holds
    # the whole Secret. Reading and changing one is the owner Role's, by name.
    Rule("", ("secrets",), ("create",), "create the Secrets of the domain's products"),
    # No update or patch: a request and a decision cannot change once made; deleting one
    # withdraws the request, or revokes what the decision approved.
    Rule(
        GROUP,
        (REQUESTS,),
        (*READ, "create", "delete"),
        "ask for access to other domains' products, and withdraw a request",
    ),
    Rule(
        GROUP,
        (DECISIONS,),
        (*READ, "create", "delete"),
        "answer requests for the domain's products, and revoke an approval",
    ),
)
# What every holder of the built-in ``view`` (and so ``edit``, ``admin``) may read.
VIEW_RULES = (
    Rule(GROUP, (PLURAL,), READ, "see the data products of a namespace"),
    Rule(GROUP, (REQUESTS, DECISIONS), READ, "see the access requests and decisions there"),
)
VIEW_AGGREGATION = "rbac.authorization.k8s.io/aggregate-to-view"


def build_cluster_role_rules(slots: int = DEFAULT_ADMISSION_SLOTS) -> list[dict[str, Any]]:
    """The PolicyRules of the operator's ClusterRole, in a stable order, with a pool of
    ``slots`` admission-policy names."""
    return [rule.to_wire() for rule in operator_rules(slots)]


def build_namespace_writer_rules() -> list[dict[str, Any]]:
    """The PolicyRules of ``datamesh-operator-namespace-writer``, in a stable order."""
    return [rule.to_wire() for rule in NAMESPACE_WRITER_RULES]


def own_namespace_rules(lease_name: str) -> tuple[Rule, ...]:
    """The rules of the operator's Role in its own namespace: its leader Lease (create
    cannot be narrowed to a name; reading and renewing can), and the DataStores' admin
    credentials (names unknown to the chart: the namespace is the fence)."""
    return (
        Rule(
            "",
            ("secrets",),
            ("get",),
            "read the admin credentials of DataStores: spec.credentialsSecretRef names a Secret "
            "in this namespace",
        ),
        Rule("coordination.k8s.io", ("leases",), ("create",), "take the Lease the first time"),
        Rule(
            "coordination.k8s.io",
            ("leases",),
            ("get", "update"),
            "renew and take over the leader Lease, and no other",
            resource_names=(lease_name,),
        ),
    )


def build_own_namespace_rules(lease_name: str) -> list[dict[str, Any]]:
    """The PolicyRules of the operator's Role in its own namespace (see
    :func:`own_namespace_rules`)."""
    return [rule.to_wire() for rule in own_namespace_rules(lease_name)]


def build_catalog_rules() -> list[dict[str, Any]]:
    """The PolicyRules of the standalone catalog's ClusterRole."""
    return [rule.to_wire() for rule in CATALOG_RULES]


def build_catalog_review_rules() -> list[dict[str, Any]]:
    """The PolicyRules the operator's identity gets when it serves the catalog with
    ``--catalog-auth kubernetes`` (a ClusterRole of their own, beside the operator's)."""
    return [rule.to_wire() for rule in CATALOG_REVIEW_RULES]


def build_domain_cluster_roles() -> list[dict[str, Any]]:
    """The aggregated ``datamesh-domain-editor``, the rules aggregated into it, and the read
    access to DataProducts aggregated into ``view``."""

    def cluster_role(name: str, labels: dict[str, str], rules: tuple[Rule, ...]) -> dict[str, Any]:
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels},
            "rules": [rule.to_wire() for rule in rules],
        }

    editor = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": DOMAIN_EDITOR_ROLE, "labels": {}},
        "aggregationRule": {
            "clusterRoleSelectors": [
                {"matchLabels": {LABEL_AGGREGATE_TO_DOMAIN_EDITOR: "true"}},
                {"matchLabels": {VIEW_AGGREGATION: "true"}},
            ]
        },
        # no rules: kube-controller-manager fills them in from the selected roles
    }
    return [
        editor,
        cluster_role(
            f"{DOMAIN_EDITOR_ROLE}-rules",
            {LABEL_AGGREGATE_TO_DOMAIN_EDITOR: "true"},
            DOMAIN_EDITOR_RULES,
        ),
        cluster_role("datamesh-view", {VIEW_AGGREGATION: "true"}, VIEW_RULES),
    ]


def allows(
    rules: list[dict[str, Any]], api_group: str, resource: str, verb: str, name: str = ""
) -> bool:
    """Whether ``rules`` allow ``verb`` on ``resource`` (on the object ``name``, if given)."""
    return any(
        api_group in rule["apiGroups"]
        and resource in rule["resources"]
        and verb in rule["verbs"]
        and (not rule.get("resourceNames") or name in rule["resourceNames"])
        for rule in rules
    )
