"""Desired objects of a DataDomain (layer ``specs``, pure).

The domain's namespace, labelled with the domain and its Pod Security level, and in it a
ResourceQuota from ``spec.quota``, a LimitRange that gives containers default requests (so a
quota on requests never refuses a pod that names none), and NetworkPolicies: ingress denied but
from the namespace itself and from the namespaces of the ServiceAccounts its products grant
read access to; and a RoleBinding of the owner team's group to the aggregated ClusterRole
``datamesh-domain-editor`` (manage DataProducts, Jobs and claims; read the rest), and one of
the operator itself to ``datamesh-operator-namespace-writer``: its write powers there, held in
no namespace a domain does not hold. The namespace has no owner: deleting a domain never
deletes a namespace that holds data. The objects in it are owned by the domain.
"""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.datadomain import KIND, DataDomain
from dataproduct_operator.api.dataproduct import PLURAL, ReaderKind
from dataproduct_operator.api.kinds import GROUP
from dataproduct_operator.constants import (
    DOMAIN_EDITOR_ROLE,
    LABEL_DOMAIN,
    LABEL_MANAGED_BY,
    NAMESPACE_WRITER_BINDING,
    NAMESPACE_WRITER_ROLE,
    OPERATOR_NAME,
)
from dataproduct_operator.specs.hashing import stamp_hash
from dataproduct_operator.specs.ownership import controller_reference
from dataproduct_operator.specs.render import render

DOMAIN_OBJECT_NAME = "datamesh-domain"  # the quota's and the limit range's name
DENY_INGRESS = "datamesh-deny-ingress"
ALLOW_READERS = "datamesh-allow-readers"
EDITORS = "datamesh-domain-editors"  # the owner team's RoleBinding
ANNOTATION_OWNER_TEAM = f"{GROUP}/owner-team"
ANNOTATION_COST_CENTER = f"{GROUP}/cost-center"
POD_SECURITY = "pod-security.kubernetes.io"


def domain_labels(domain: DataDomain) -> dict[str, str]:
    return {LABEL_MANAGED_BY: OPERATOR_NAME, LABEL_DOMAIN: domain.name}


def owner_reference(domain: DataDomain) -> dict[str, Any]:
    return controller_reference(KIND, domain.name, domain.uid)


def _metadata(domain: DataDomain, name: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": domain.namespace,
        "labels": domain_labels(domain),
    }
    # Without a uid (rendering a file, no cluster) the operator adds the reference on apply.
    if domain.uid:
        metadata["ownerReferences"] = [owner_reference(domain)]
    return metadata


def build_namespace(domain: DataDomain) -> dict[str, Any]:
    """The domain's namespace: its domain label, and Pod Security enforced, audited, warned."""
    level = str(domain.spec.pod_security)
    labels = {
        **domain_labels(domain),
        **{f"{POD_SECURITY}/{mode}": level for mode in ("enforce", "audit", "warn")},
        **{f"{POD_SECURITY}/{mode}-version": "latest" for mode in ("enforce", "audit", "warn")},
    }
    annotations = {ANNOTATION_OWNER_TEAM: domain.spec.owners.team}
    if domain.spec.cost_center:
        annotations[ANNOTATION_COST_CENTER] = domain.spec.cost_center
    metadata = {"name": domain.namespace, "labels": labels, "annotations": annotations}
    return render("namespace.yaml.j2", metadata=metadata)


def quota_hard(domain: DataDomain) -> dict[str, str]:
    """The ResourceQuota's limits from ``spec.quota``; empty when it sets none."""
    quota = domain.spec.quota
    if quota is None:
        return {}
    hard = {
        "requests.cpu": quota.cpu,
        "requests.memory": quota.memory,
        "requests.storage": quota.storage,
        f"count/{PLURAL}.{GROUP}": quota.max_data_products,
    }
    return {resource: str(value) for resource, value in hard.items() if value is not None}


def build_resource_quota(domain: DataDomain) -> dict[str, Any] | None:
    """The domain's quota; None (must not exist) when ``spec.quota`` sets no limit."""
    hard = quota_hard(domain)
    if not hard:
        return None
    return render(
        "resourcequota.yaml.j2", metadata=_metadata(domain, DOMAIN_OBJECT_NAME), hard=hard
    )


def build_limit_range(domain: DataDomain) -> dict[str, Any]:
    return render("limitrange.yaml.j2", metadata=_metadata(domain, DOMAIN_OBJECT_NAME))


def consumer_namespaces(domain: DataDomain, namespace_of: dict[str, str]) -> set[str] | None:
    """The namespaces ``spec.allowedConsumers`` stands for (a domain's name stands for its
    namespace, ``namespace_of`` domain -> namespace); None when it is empty (no restriction)."""
    allowed = domain.spec.allowed_consumers
    if not allowed:
        return None
    return {namespace_of.get(consumer, consumer) for consumer in allowed}


def granted_namespaces(product: dict[str, Any]) -> set[str]:
    """The namespaces of the ServiceAccounts a product (as the API server stores it, unparsed:
    a domain looks at hundreds) lists as readers, in its spec or its status."""
    readers = ((product.get("spec") or {}).get("access") or {}).get("readers") or []
    # and those approved access requests grant, as the product's last status lists them
    readers += ((product.get("status") or {}).get("access") or {}).get("readers") or []
    return {
        reader["namespace"]
        for reader in readers
        if reader.get("kind") == ReaderKind.SERVICE_ACCOUNT and reader.get("namespace")
    }


def reader_namespaces(
    domain: DataDomain, granted: set[str], consumer_namespaces: set[str] | None
) -> list[str]:
    """Namespaces whose pods may reach the domain's: its own, and ``granted`` (those of the
    ServiceAccounts its products list as readers); only those in ``consumer_namespaces`` when
    that is given (the namespaces of ``spec.allowedConsumers``)."""
    if consumer_namespaces is not None:
        granted = granted & consumer_namespaces
    return sorted(granted | {domain.namespace})


def build_network_policies(domain: DataDomain, namespaces: list[str]) -> list[dict[str, Any]]:
    """Deny ingress into the domain's pods, then allow it from ``namespaces``."""
    return [
        render(
            "networkpolicy.yaml.j2", metadata=_metadata(domain, DENY_INGRESS), from_namespaces=[]
        ),
        render(
            "networkpolicy.yaml.j2",
            metadata=_metadata(domain, ALLOW_READERS),
            from_namespaces=namespaces,
        ),
    ]


def build_editor_role_binding(domain: DataDomain) -> dict[str, Any]:
    """The owner team's group bound to ``datamesh-domain-editor`` in the domain's namespace."""
    subjects = [
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": domain.spec.owners.team}
    ]
    return render(
        "rolebinding.yaml.j2",
        metadata=_metadata(domain, EDITORS),
        role_kind="ClusterRole",
        role=DOMAIN_EDITOR_ROLE,
        subjects=subjects,
    )


SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


def subject_of(username: str) -> dict[str, str]:
    """The RBAC subject of an authenticated username: a ServiceAccount's
    (``system:serviceaccount:<namespace>:<name>``) or a User."""
    if username.startswith(SERVICE_ACCOUNT_PREFIX):
        namespace, _, name = username.removeprefix(SERVICE_ACCOUNT_PREFIX).partition(":")
        if namespace and name and ":" not in name:
            return {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": username}


def build_operator_binding(domain: DataDomain, operator: str) -> dict[str, Any]:
    """The operator (its username ``operator``) bound to ``datamesh-operator-namespace-writer``
    in the domain's namespace: its write powers there and nowhere else."""
    return render(
        "rolebinding.yaml.j2",
        metadata=_metadata(domain, NAMESPACE_WRITER_BINDING),
        role_kind="ClusterRole",
        role=NAMESPACE_WRITER_ROLE,
        subjects=[subject_of(operator)],
    )


def build_domain_objects(
    domain: DataDomain,
    granted: set[str] | None = None,
    consumer_namespaces: set[str] | None = None,
    operator: str | None = None,
) -> list[dict[str, Any]]:
    """Every object the domain should have right now, hash-stamped, the namespace first.

    ``granted``: the readers' namespaces of the DataProducts in the domain's namespace (see
    :func:`granted_namespaces`); ``consumer_namespaces``: the namespaces its
    ``spec.allowedConsumers`` stand for (None: no restriction); ``operator``: the operator's
    username, bound to its writer role there (None: no such binding, e.g. rendering a file).
    """
    namespaces = reader_namespaces(domain, granted or set(), consumer_namespaces)
    objects = [
        build_namespace(domain),
        build_resource_quota(domain),
        build_limit_range(domain),
        *build_network_policies(domain, namespaces),
        build_editor_role_binding(domain),
        build_operator_binding(domain, operator) if operator is not None else None,
    ]
    return [stamp_hash(obj) for obj in objects if obj is not None]
