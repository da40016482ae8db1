"""The kinds the operator reads and writes, and where they live in the REST API (layer ``k8s``).

A small fixed table instead of discovery: no round trip per call, and a kind the operator does
not know is an error at once. Used by the asynchronous client and the blocking one alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataproduct_operator.api.kinds import (
    API_VERSION,
    DATA_ACCESS_DECISION,
    DATA_ACCESS_REQUEST,
    DATA_DOMAIN,
    DATA_PRODUCT,
    DATA_STORE,
    MESH_POLICY,
)


@dataclass(frozen=True)
class Resource:
    """Where objects of one kind live in the REST API."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        parts = [prefix]
        if self.namespaced and namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
        return "/".join(parts)


KNOWN_RESOURCES = {
    (r.api_version, r.kind): r
    for r in (
        Resource("v1", "ServiceAccount", "serviceaccounts"),
        Resource("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        Resource("v1", "ConfigMap", "configmaps"),
        Resource("v1", "Secret", "secrets"),
        Resource("v1", "Namespace", "namespaces", namespaced=False),
        Resource("v1", "PersistentVolume", "persistentvolumes", namespaced=False),
        Resource("v1", "Event", "events"),
        Resource("v1", "Pod", "pods"),
        Resource("coordination.k8s.io/v1", "Lease", "leases"),
        Resource("rbac.authorization.k8s.io/v1", "Role", "roles"),
        Resource("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
        Resource("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", namespaced=False),
        Resource("batch/v1", "CronJob", "cronjobs"),
        Resource("batch/v1", "Job", "jobs"),
        Resource("monitoring.coreos.com/v1", "PrometheusRule", "prometheusrules"),
        Resource("v1", "ResourceQuota", "resourcequotas"),
        Resource("v1", "LimitRange", "limitranges"),
        Resource("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        Resource(API_VERSION, DATA_PRODUCT, "dataproducts"),
        Resource(API_VERSION, DATA_DOMAIN, "datadomains", namespaced=False),
        Resource(API_VERSION, MESH_POLICY, "meshpolicies", namespaced=False),
        Resource(API_VERSION, DATA_STORE, "datastores", namespaced=False),
        Resource(API_VERSION, DATA_ACCESS_REQUEST, "dataaccessrequests"),
        Resource(API_VERSION, DATA_ACCESS_DECISION, "dataaccessdecisions"),
        Resource(
            "admissionregistration.k8s.io/v1",
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
            namespaced=False,
        ),
        Resource(
            "admissionregistration.k8s.io/v1",
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
            namespaced=False,
        ),
        Resource(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            namespaced=False,
        ),
    )
}


def resource_of(api_version: str, kind: str) -> Resource:
    try:
        return KNOWN_RESOURCES[(api_version, kind)]
    except KeyError:
        raise ValueError(f"Unknown kind {kind} of {api_version}") from None


def object_path(obj: dict[str, Any]) -> str:
    metadata = obj["metadata"]
    resource = resource_of(obj["apiVersion"], obj["kind"])
    return resource.path(metadata.get("namespace"), metadata["name"])
