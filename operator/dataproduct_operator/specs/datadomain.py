"""Desired objects of a DataDomain (layer ``specs``, pure).

The domain's namespace, labelled with the domain and its Pod Security level, and in it a
ResourceQuota from ``spec.quota`` and a LimitRange that gives containers default requests (so
a quota on requests never refuses a pod that names none). The namespace has no owner: deleting
a domain never deletes a namespace that holds data. The objects in it are owned by the domain.
"""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.datadomain import KIND, DataDomain
from dataproduct_operator.api.dataproduct import GROUP, PLURAL
from dataproduct_operator.constants import LABEL_DOMAIN, LABEL_MANAGED_BY, OPERATOR_NAME
from dataproduct_operator.specs.dataproduct import stamp_hash
from dataproduct_operator.specs.ownership import controller_reference
from dataproduct_operator.specs.render import render

DOMAIN_OBJECT_NAME = "datamesh-domain"  # the quota's and the limit range's name
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


def build_domain_objects(domain: DataDomain) -> list[dict[str, Any]]:
    """Every object the domain should have right now, hash-stamped, the namespace first."""
    objects = [
        build_namespace(domain),
        build_resource_quota(domain),
        build_limit_range(domain),
    ]
    return [stamp_hash(obj) for obj in objects if obj is not None]
