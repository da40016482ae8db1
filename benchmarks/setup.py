"""Identities, flow schemas and counters for the mesh benchmark.

Two ServiceAccounts act in the benchmark: ``dataproduct-operator`` (the operator, with exactly
the chart's ClusterRole) and ``bench-client`` (the baseline client and the "user" that creates
and changes products). Each has FlowSchemas of its own for writes and for reads, so the API
server's ``apiserver_flowcontrol_dispatched_requests_total`` counts every request of each
identity separately: the counts come from the server, not from the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from dataproduct_operator.constants import NAMESPACE_WRITER_ROLE
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.kubeconfig import Connection, write_kubeconfig
from dataproduct_operator.manifests.rbac import (
    build_cluster_role_rules,
    build_namespace_writer_rules,
    build_own_namespace_rules,
)

SYSTEM_NAMESPACE = "dataproduct-system"
OPERATOR = "dataproduct-operator"
CLIENT = "bench-client"
WRITE_VERBS = ["create", "update", "patch", "delete", "deletecollection"]
READ_VERBS = ["get", "list", "watch"]
PRIORITY_LEVEL = "workload-low"  # where ServiceAccounts land by default
FLOW_SCHEMAS = "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas"
TOKEN_SECONDS = 6 * 3600


@dataclass(frozen=True)
class Identity:
    name: str
    kubeconfig: Path

    @property
    def writes_schema(self) -> str:
        return f"bench-{self.name}-writes"

    @property
    def reads_schema(self) -> str:
        return f"bench-{self.name}-reads"

    @property
    def lease_schema(self) -> str:
        """The leader Lease's reads and renewals, counted apart from the work on products."""
        return f"bench-{self.name}-lease"

    @property
    def reviews_schema(self) -> str:
        """Its SelfSubjectReviews and SelfSubjectAccessReviews, counted apart: created, but
        they change nothing (who it is, once per process, and whether a binding of its own is
        in effect)."""
        return f"bench-{self.name}-reviews"


def build_flow_schema(
    name: str,
    account: tuple[str, str],
    precedence: int,
    verbs: list[str],
    *,
    resources: tuple[str, ...] = ("*",),
    priority_level: str = PRIORITY_LEVEL,
) -> dict[str, Any]:
    """A FlowSchema of its own for the requests of one ServiceAccount (namespace, name), on
    ``resources`` (e.g. ``datadomains/status``) of any group, served at ``priority_level``."""
    rule: dict[str, Any] = {
        "subjects": [
            {
                "kind": "ServiceAccount",
                "serviceAccount": {"name": account[1], "namespace": account[0]},
            }
        ],
        "resourceRules": [
            {
                "verbs": verbs,
                "apiGroups": ["*"],
                "resources": list(resources),
                "clusterScope": True,
                "namespaces": ["*"],
            }
        ],
    }
    if verbs is READ_VERBS:
        rule["nonResourceRules"] = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": name},
        "spec": {
            "matchingPrecedence": precedence,
            "priorityLevelConfiguration": {"name": priority_level},
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [rule],
        },
    }


def create_identity(
    admin: BlockingClient, name: str, rules: list[dict[str, Any]], directory: Path, precedence: int
) -> Identity:
    """A ServiceAccount bound to ``rules``, its flow schemas, and a kubeconfig acting as it."""
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    admin.create_if_missing("/api/v1/namespaces", {"metadata": {"name": SYSTEM_NAMESPACE}})
    accounts = f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/serviceaccounts"
    admin.create_if_missing(accounts, {"metadata": {"name": name}})
    admin.create_if_missing(f"{rbac}/clusterroles", {"metadata": {"name": name}, "rules": rules})
    admin.create_if_missing(
        f"{rbac}/clusterrolebindings",
        {
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": SYSTEM_NAMESPACE}],
        },
    )
    identity = Identity(name, directory / f"{name}.kubeconfig")
    for schema, offset, verbs in (
        (identity.writes_schema, 0, WRITE_VERBS),
        (identity.reads_schema, 1, READ_VERBS),
    ):
        body = build_flow_schema(schema, (SYSTEM_NAMESPACE, name), precedence + offset, verbs)
        admin.create_if_missing(FLOW_SCHEMAS, body)
    token = admin.create(
        f"{accounts}/{name}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
         "spec": {"expirationSeconds": TOKEN_SECONDS}},
    )["status"]["token"]  # fmt: skip
    connection = Connection(admin.credentials.server, admin.credentials.ca_pem, token=token)
    write_kubeconfig(identity.kubeconfig, connection, user=name)
    return identity


def allow_leader_lease(admin: BlockingClient, identity: Identity) -> None:
    """The operator's Role on its leader Lease, as the chart makes it, and FlowSchemas that
    count the Lease's requests and the operator's reviews of itself apart (matched before the
    identity's others)."""
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{SYSTEM_NAMESPACE}"
    name = f"{identity.name}-leader-election"
    admin.create_if_missing(
        f"{rbac}/roles", {"metadata": {"name": name}, "rules": build_own_namespace_rules(OPERATOR)}
    )
    admin.create_if_missing(
        f"{rbac}/rolebindings",
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [
                {"kind": "ServiceAccount", "name": identity.name, "namespace": SYSTEM_NAMESPACE}
            ],
        },
    )
    schema = build_flow_schema(
        identity.lease_schema,
        (SYSTEM_NAMESPACE, identity.name),
        precedence=490,
        verbs=[*WRITE_VERBS, *READ_VERBS],
        resources=("leases",),
    )
    admin.create_if_missing(FLOW_SCHEMAS, schema)
    reviews = build_flow_schema(
        identity.reviews_schema,
        (SYSTEM_NAMESPACE, identity.name),
        precedence=490,
        verbs=WRITE_VERBS,
        resources=("selfsubjectreviews", "selfsubjectaccessreviews"),
    )
    admin.create_if_missing(FLOW_SCHEMAS, reviews)


def create_identities(admin: BlockingClient, directory: Path) -> tuple[Identity, Identity]:
    """The operator (the chart's rules) and the benchmark client (those, the writes the
    operator holds in a domain's namespace, everywhere, and creating products)."""
    operator_rules = build_cluster_role_rules()
    client_rules = [
        *operator_rules,
        *build_namespace_writer_rules(),  # the baseline writes children as the operator would
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create"]},
        {"apiGroups": ["datamesh.dev"], "resources": ["dataproducts"], "verbs": ["create"]},
    ]
    operator = create_identity(admin, OPERATOR, operator_rules, directory, precedence=500)
    # As the chart: the writes the operator binds to itself in each domain's namespace.
    admin.create_if_missing(
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        {"metadata": {"name": NAMESPACE_WRITER_ROLE}, "rules": build_namespace_writer_rules()},
    )
    allow_leader_lease(admin, operator)
    client = create_identity(admin, CLIENT, client_rules, directory, precedence=510)
    return operator, client


@dataclass(frozen=True)
class Requests:
    """Requests the API server dispatched for one identity, by kind of request."""

    writes: int
    reads: int

    def __sub__(self, other: Requests) -> Requests:
        return Requests(self.writes - other.writes, self.reads - other.reads)


def dispatched_requests(admin: BlockingClient, schemas: list[str]) -> dict[str, int]:
    """The API server's own count of the requests each named FlowSchema has let through."""
    return flow_schema_counts(admin, "apiserver_flowcontrol_dispatched_requests_total", schemas)


def rejected_requests(admin: BlockingClient, schemas: list[str]) -> dict[str, int]:
    """The API server's own count of the requests each named FlowSchema has refused (429)."""
    return flow_schema_counts(admin, "apiserver_flowcontrol_rejected_requests_total", schemas)


def flow_schema_counts(admin: BlockingClient, metric: str, schemas: list[str]) -> dict[str, int]:
    """A counter of the API server's flow control, summed per named FlowSchema."""
    status, body = admin.raw("GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"GET /metrics answered {status}")
    counts = dict.fromkeys(schemas, 0.0)
    lines = [line for line in body.decode().splitlines() if line.startswith(f"{metric}{{")]
    text = f"# TYPE {metric} counter\n" + "\n".join(lines)
    for family in text_string_to_metric_families(text + "\n"):
        for sample in family.samples:
            schema = sample.labels.get("flow_schema", "")
            if schema in counts and sample.name.endswith("_total"):
                counts[schema] += sample.value
    return {schema: int(value) for schema, value in counts.items()}


def dispatched(admin: BlockingClient, identity: Identity) -> Requests:
    """The API server's own count of the identity's requests so far."""
    counts = dispatched_requests(admin, [identity.writes_schema, identity.reads_schema])
    return Requests(counts[identity.writes_schema], counts[identity.reads_schema])
