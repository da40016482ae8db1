"""The ``DataDomain`` kind, ``datamesh.dev/v1alpha1`` (layer ``api``, pure).

A domain of the mesh, cluster-scoped: the namespace its data products live in, with its quota,
its Pod Security level, who owns it and which other domains may read from it. Like
``DataProduct``, these models are the single source of the CRD schema.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from dataproduct_operator.api.base import (
    AGE_COLUMN,
    DNS_LABEL,
    READY_COLUMN,
    ApiModel,
    ClusterObject,
    InRange,
    IntOrString,
    cel,
    dns_label,
    validations,
)
from dataproduct_operator.api.conditions import Condition
from dataproduct_operator.api.dataproduct import Owner
from dataproduct_operator.api.quantity import QuantityRange

KIND = "DataDomain"
PLURAL = "datadomains"
SINGULAR = "datadomain"
SHORT_NAMES = ("ddom",)


# Bounds of the quota, checked by the CRD (CEL) and the models alike: a namespace spans many
# nodes, but no domain needs more than this; leaving a resource out sets no limit.
QUOTA_CPU = QuantityRange("cpu", "8 or 8000m", "100000")
QUOTA_MEMORY = QuantityRange("memory", "32Gi", "1Pi")
QUOTA_STORAGE = QuantityRange("storage", "1Ti", "1Ei")


class PodSecurityLevel(StrEnum):
    RESTRICTED = "restricted"
    BASELINE = "baseline"


class Quota(ApiModel):
    """Limits on what the domain's namespace may hold; each one left out is no limit."""

    cpu: Annotated[IntOrString, InRange(QUOTA_CPU)] | None = Field(
        default=None,
        description=f"CPU all pods may request together, e.g. 8 or 8000m; {QUOTA_CPU.bounds}.",
    )
    memory: Annotated[str, InRange(QUOTA_MEMORY)] | None = Field(
        default=None,
        description=f"Memory all pods may request, e.g. 32Gi; {QUOTA_MEMORY.bounds}.",
    )
    storage: Annotated[str, InRange(QUOTA_STORAGE)] | None = Field(
        default=None,
        description=f"Storage all claims may request, e.g. 1Ti; {QUOTA_STORAGE.bounds}.",
    )
    max_data_products: int | None = Field(
        default=None, ge=0, le=10000, description="How many DataProducts the domain may have."
    )


class DataDomainSpec(ApiModel):
    """The desired state of a domain."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.__namespace__) == has(oldSelf.__namespace__) && "
                "(!has(self.__namespace__) || self.__namespace__ == oldSelf.__namespace__)",
                "spec.namespace cannot be changed: it holds the domain's data; create another "
                "DataDomain for another namespace",
            )
        )
    }

    display_name: str | None = Field(
        default=None, max_length=128, description="Human-friendly name, e.g. Sales."
    )
    description: str | None = Field(
        default=None, max_length=4096, description="What the domain is responsible for."
    )
    owners: Owner = Field(description="The team that owns the domain, and its contacts.")
    namespace: str | None = dns_label(
        "The namespace of the domain's data products; the domain's name when left out. "
        "It cannot be changed.",
        optional=True,
    )
    quota: Quota | None = Field(default=None, description="Limits for the domain's namespace.")
    cost_center: str | None = Field(
        default=None, max_length=64, description="Where the domain's costs are booked."
    )
    pod_security: PodSecurityLevel = Field(
        default=PodSecurityLevel.RESTRICTED,
        description="The Pod Security Standard enforced in the namespace.",
    )
    allowed_consumers: list[str] = Field(
        default_factory=list,
        max_length=256,
        description="Namespaces or domains allowed to read the domain's products; empty: any "
        "reader a product lists.",
        json_schema_extra={
            "x-kubernetes-list-type": "set",
            "items": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63},
        },
    )


class ProductCounts(ApiModel):
    """The domain's data products."""

    total: int = Field(
        default=0,
        description="How many DataProducts the namespace holds, Hidden ones not counted.",
    )
    ready: int = Field(default=0, description="How many of them are Ready.")


class QuotaUsage(ApiModel):
    """What the namespace uses of one resource of its quota."""

    resource: str = Field(description="The ResourceQuota resource, e.g. requests.storage.")
    hard: str = Field(description="The limit.")
    used: str = Field(description="The use.")


class DataDomainStatus(ApiModel):
    """The observed state of a domain, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation last reconciled."
    )
    namespace: str | None = Field(default=None, description="The domain's namespace.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, NamespaceReady, QuotaReady, AccessReady."
    )
    data_products: ProductCounts = Field(
        default_factory=ProductCounts, description="The domain's data products."
    )
    quota: list[QuotaUsage] = Field(default_factory=list, description="Use of the quota.")


# Namespaces of the cluster itself: a domain there would hand its owner team the editor role
# (and the operator its writes) where the cluster's own workloads live.
RESERVED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "default")
_DOMAIN_NAMESPACE = "(has(self.spec.__namespace__) ? self.spec.__namespace__ : self.metadata.name)"

# The domain's name is its namespace's unless spec.namespace says otherwise.
ROOT_VALIDATIONS = (
    cel(
        f"has(self.spec.__namespace__) || (size(self.metadata.name) <= 63 && "
        f"self.metadata.name.matches('{DNS_LABEL}'))",
        "the DataDomain name must be a DNS label (at most 63 lower case letters, digits and "
        "'-') to name its namespace; otherwise set spec.namespace",
    ),
    cel(
        f"!({_DOMAIN_NAMESPACE} in {list(RESERVED_NAMESPACES)})",
        f"a DataDomain may not use the namespace {', '.join(RESERVED_NAMESPACES)}: they belong "
        "to the cluster itself; name the domain after a namespace of its own or set "
        "spec.namespace",
    ),
)

PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Namespace", "type": "string", "jsonPath": ".status.namespace"},
    {"name": "Owner", "type": "string", "jsonPath": ".spec.owners.team"},
    {"name": "Products", "type": "integer", "jsonPath": ".status.dataProducts.total"},
    READY_COLUMN,
    AGE_COLUMN,
)


def namespace_of(obj: dict[str, Any]) -> str:
    """The namespace of a DataDomain object as read from the API server (no parsing)."""
    return str((obj.get("spec") or {}).get("namespace") or obj["metadata"]["name"])


class DataDomain(ClusterObject):
    """A whole DataDomain object as the operator reads it."""

    spec: DataDomainSpec
    status: DataDomainStatus = Field(default_factory=DataDomainStatus)

    @property
    def namespace(self) -> str:
        """The namespace of the domain's data products."""
        return self.spec.namespace or self.name
