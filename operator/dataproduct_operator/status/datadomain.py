"""The status of a DataDomain from its spec and what is observed (layer ``status``, pure).

Conditions ``NamespaceReady`` (the namespace exists and is Active), ``QuotaReady`` (the quota
the spec asks for is in place and counted, or none is asked for), ``AccessReady`` (the network
policies and the owner team's RoleBinding are in place) and the summary ``Ready``; the count of
the domain's data products and how many are Ready; the quota's use as the ResourceQuota reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataproduct_operator.api.datadomain import (
    DataDomain,
    DataDomainStatus,
    ProductCounts,
    QuotaUsage,
)
from dataproduct_operator.status.conditions import (
    READY,
    Aspect,
    Stamp,
    build_condition,
    build_conditions,
)

NAMESPACE = "NamespaceReady"
QUOTA = "QuotaReady"
QUOTA_PENDING = "QuotaPending"
NAMESPACE_TERMINATING = "NamespaceTerminating"
PASSING_STATES = (QUOTA_PENDING, NAMESPACE_TERMINATING)  # over without a change of the spec
ACCESS = "AccessReady"


@dataclass(frozen=True)
class ObservedDomain:
    """What reconcile found of the domain's objects and products."""

    namespace: dict[str, Any] | None
    quota: dict[str, Any] | None
    network_policies: set[str]
    editors: dict[str, Any] | None = None  # the owner team's RoleBinding
    products: ProductCounts = field(default_factory=ProductCounts)


def _namespace(domain: DataDomain, observed: ObservedDomain) -> Aspect:
    if observed.namespace is None:
        return Aspect(False, "NamespaceMissing", f"namespace {domain.namespace} does not exist")
    phase = (observed.namespace.get("status") or {}).get("phase", "Active")
    if phase != "Active":
        message = f"namespace {domain.namespace} is {phase}; it is made again once it is gone"
        return Aspect(False, NAMESPACE_TERMINATING, message)
    return Aspect(True, "NamespaceActive", f"namespace {domain.namespace} is Active")


def _quota(wanted: bool, observed: ObservedDomain) -> Aspect:
    if not wanted:
        return Aspect(True, "NoQuota", "spec.quota sets no limit")
    if observed.quota is None:
        return Aspect(False, "QuotaMissing", "the ResourceQuota datamesh-domain does not exist")
    hard = (observed.quota.get("spec") or {}).get("hard") or {}
    counted = (observed.quota.get("status") or {}).get("used") or {}
    if not set(hard) <= set(counted):
        # Until kube-controller-manager has counted every resource of the quota in the
        # namespace (a custom resource only once its discovery has found the CRD, within 30 s),
        # the API server refuses every object the quota covers ("status unknown for quota").
        return Aspect(False, QUOTA_PENDING, "the ResourceQuota datamesh-domain is not counted yet")
    return Aspect(True, "QuotaApplied", "the ResourceQuota datamesh-domain is in place")


def _access(wanted: set[str], observed: ObservedDomain) -> Aspect:
    missing = [f"NetworkPolicy {name}" for name in sorted(wanted - observed.network_policies)]
    if observed.editors is None:
        missing.append("the owner team's RoleBinding datamesh-domain-editors")
    if missing:
        return Aspect(False, "AccessMissing", f"{', '.join(missing)} missing")
    return Aspect(
        True, "AccessApplied", "the network policies and the owner team's RoleBinding are in place"
    )


def product_ready(product: dict[str, Any]) -> bool:
    """Whether a product (as the API server stores it) is Ready."""
    conditions = (product.get("status") or {}).get("conditions") or []
    return any(c.get("type") == READY and c.get("status") == "True" for c in conditions)


def _usage(quota: dict[str, Any] | None) -> list[QuotaUsage]:
    status = (quota or {}).get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    return [
        QuotaUsage(resource=resource, hard=str(hard[resource]), used=str(used.get(resource, "0")))
        for resource in sorted(hard)
    ]


def compute_domain_status(
    domain: DataDomain,
    observed: ObservedDomain,
    *,
    quota_wanted: bool,
    network_policies_wanted: set[str],
    failures: dict[str, str],
    now: str,
) -> DataDomainStatus:
    """The whole status for the domain's current generation; ``failures``: what reconcile
    could not apply, per condition type."""
    aspects = {
        NAMESPACE: _namespace(domain, observed),
        QUOTA: _quota(quota_wanted, observed),
        ACCESS: _access(network_policies_wanted, observed),
    }
    for kind, message in failures.items():
        aspects[kind] = Aspect(False, "ApplyFailed", message)
    stamp = Stamp(domain.generation, {c.type: c for c in domain.status.conditions}, now)
    return DataDomainStatus(
        observed_generation=domain.generation,
        namespace=domain.namespace,
        conditions=build_conditions(aspects, stamp, ready="the domain is onboarded"),
        data_products=observed.products,
        quota=_usage(observed.quota),
    )


def compute_blocked_status(
    domain: DataDomain, products: list[str], *, now: str
) -> DataDomainStatus:
    """The status of a deleted domain whose namespace still holds ``products``: not Ready,
    reason DeletionBlocked, the products named; the other conditions as they were."""
    stamp = Stamp(domain.generation, {c.type: c for c in domain.status.conditions}, now)
    shown = ", ".join(products[:10]) + (
        f" and {len(products) - 10} more" if len(products) > 10 else ""
    )
    message = (
        f"deletion waits: namespace {domain.namespace} holds {len(products)} DataProducts "
        f"({shown}); delete them first"
    )
    ready = build_condition(READY, Aspect(False, "DeletionBlocked", message), stamp)
    others = [c for c in domain.status.conditions if c.type != READY]
    return domain.status.model_copy(update={"conditions": [ready, *others]})
