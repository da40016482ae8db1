"""The status of a DataDomain from its spec and what is observed (layer ``status``, pure).

Conditions ``NamespaceReady`` (the namespace exists, is Active and is part of the mesh: it
carries the domain label, which the operator sets only on a namespace it creates and a platform
admin on an existing one), ``QuotaReady`` (the quota the spec asks for is in place and counted,
or none is asked for), ``AccessReady`` (the network policies and the owner team's RoleBinding
are in place) and the summary ``Ready``; the count of
the domain's data products and how many are Ready; the quota's use as the ResourceQuota reports.
Hidden products are in no count and no message: a domain's status is read by many more than
those who may list its products.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataproduct_operator.api.conditions import (
    ACCESS_READY,
    NAMESPACE_READY,
    QUOTA_READY,
    READY,
    Reason,
)
from dataproduct_operator.api.datadomain import (
    DataDomain,
    DataDomainStatus,
    ProductCounts,
    QuotaUsage,
)
from dataproduct_operator.constants import LABEL_DOMAIN
from dataproduct_operator.status.conditions import (
    Aspect,
    Stamp,
    build_conditions,
)

PASSING_STATES = (
    Reason.QUOTA_PENDING,
    Reason.NAMESPACE_TERMINATING,
)  # over without a change of the spec


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
        return Aspect(
            False, Reason.NAMESPACE_MISSING, f"namespace {domain.namespace} does not exist"
        )
    phase = (observed.namespace.get("status") or {}).get("phase", "Active")
    if phase != "Active":
        message = f"namespace {domain.namespace} is {phase}; it is made again once it is gone"
        return Aspect(False, Reason.NAMESPACE_TERMINATING, message)
    if not handed_over(observed.namespace):
        message = not_handed_over_message(domain.namespace, domain.name)
        return Aspect(False, Reason.NAMESPACE_NOT_HANDED_OVER, message)
    return Aspect(True, Reason.NAMESPACE_ACTIVE, f"namespace {domain.namespace} is Active")


def handed_over(namespace: dict[str, Any]) -> bool:
    """Whether an existing namespace is part of the mesh: it carries the domain label (the
    operator sets it only on namespaces it creates; a platform admin sets it on others)."""
    return LABEL_DOMAIN in ((namespace.get("metadata") or {}).get("labels") or {})


def not_handed_over_message(namespace: str, domain: str) -> str:
    """Why a DataDomain touches nothing in its namespace: it exists without the domain label."""
    return (
        f"namespace {namespace} exists and is not part of the mesh: a platform admin hands it "
        f"over with kubectl label namespace {namespace} {LABEL_DOMAIN}={domain}"
    )


def _quota(wanted: bool, observed: ObservedDomain) -> Aspect:
    if not wanted:
        return Aspect(True, Reason.NO_QUOTA, "spec.quota sets no limit")
    if observed.quota is None:
        return Aspect(
            False, Reason.QUOTA_MISSING, "the ResourceQuota datamesh-domain does not exist"
        )
    hard = (observed.quota.get("spec") or {}).get("hard") or {}
    counted = (observed.quota.get("status") or {}).get("used") or {}
    if not set(hard) <= set(counted):
        # Until kube-controller-manager has counted every resource of the quota in the
        # namespace (a custom resource only once its discovery has found the CRD, within 30 s),
        # the API server refuses every object the quota covers ("status unknown for quota").
        return Aspect(
            False, Reason.QUOTA_PENDING, "the ResourceQuota datamesh-domain is not counted yet"
        )
    return Aspect(True, Reason.QUOTA_APPLIED, "the ResourceQuota datamesh-domain is in place")


def _access(wanted: set[str], observed: ObservedDomain) -> Aspect:
    missing = [f"NetworkPolicy {name}" for name in sorted(wanted - observed.network_policies)]
    if observed.editors is None:
        missing.append("the owner team's RoleBinding datamesh-domain-editors")
    if missing:
        return Aspect(False, Reason.ACCESS_MISSING, f"{', '.join(missing)} missing")
    return Aspect(
        True,
        Reason.ACCESS_APPLIED,
        "the network policies and the owner team's RoleBinding are in place",
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
        NAMESPACE_READY: _namespace(domain, observed),
        QUOTA_READY: _quota(quota_wanted, observed),
        ACCESS_READY: _access(network_policies_wanted, observed),
    }
    for kind, message in failures.items():
        aspects[kind] = Aspect(False, Reason.APPLY_FAILED, message)
    stamp = Stamp(domain.generation, {c.type: c for c in domain.status.conditions}, now)
    return DataDomainStatus(
        observed_generation=domain.generation,
        namespace=domain.namespace,
        conditions=build_conditions(aspects, stamp, ready="the domain is onboarded"),
        data_products=observed.products,
        quota=_usage(observed.quota),
    )


def namespace_holder(claims: dict[str, str]) -> str:
    """Which of the DataDomains naming one namespace holds it (``claims``: domain ->
    creationTimestamp, RFC 3339): the one created first, then the first by name."""
    return min(claims, key=lambda domain: (claims[domain], domain))


def taken_message(namespace: str, holder: str) -> str:
    """Why a DataDomain does nothing: another one holds its namespace."""
    return (
        f"namespace {namespace} is held by the DataDomain {holder}, created earlier: nothing is "
        f"done for this domain; set spec.namespace to another namespace (create a new "
        f"DataDomain, spec.namespace cannot change) or delete this one"
    )


def releases_pending_message(namespace: str, claims: int) -> str:
    """Why a deleted domain with no products left is still there: claims of its products,
    kept by deletionPolicy Retain, that the operator has yet to hand over (it needs the powers
    the domain gives it in the namespace to do so)."""
    return (
        f"deletion waits: {claims} PersistentVolumeClaims in namespace {namespace} kept by "
        "deletionPolicy Retain are still to be released by the operator"
    )


def blocked_message(namespace: str, products: list[str]) -> str:
    """Why a deleted domain is still there: the DataProducts its namespace holds, named
    (``products``: those that are not Hidden; the Hidden ones are neither named nor counted)."""
    shown = ""
    if products:
        more = f" and {len(products) - 10} more" if len(products) > 10 else ""
        shown = f" ({', '.join(products[:10])}{more})"
    return (
        f"deletion waits: namespace {namespace} still holds DataProducts{shown}; delete them "
        f"first (kubectl get dataproducts -n {namespace} lists every one)"
    )
