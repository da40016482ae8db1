"""Converge a DataDomain's namespace and the objects in it (layer ``reconcile``, imperative).

Observe the namespace, the quota, the limit range, the owner team's RoleBinding, the network
policies (by the domain label) and the data products in the namespace; build the desired
objects; server-side apply those whose content hash differs; delete the quota when the spec no
longer asks for one; and compute the status. A namespace that exists already and is not the
operator's is taken into the domain (labelled), never deleted: it may hold data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataproduct_operator.api.datadomain import DataDomain, DataDomainStatus, ProductCounts
from dataproduct_operator.constants import LABEL_DOMAIN
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES, object_path
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.finalizers import add_finalizer, remove_finalizer
from dataproduct_operator.specs.datadomain import (
    ALLOW_READERS,
    DENY_INGRESS,
    DOMAIN_OBJECT_NAME,
    EDITORS,
    build_domain_objects,
    consumer_namespaces,
    granted_namespaces,
)
from dataproduct_operator.specs.dataproduct import stamped_hash
from dataproduct_operator.status.datadomain import (
    ACCESS,
    NAMESPACE,
    QUOTA,
    ObservedDomain,
    compute_domain_status,
    product_ready,
)

SURVEY_PAGE = 100  # products read at a time to count them and collect their readers
ASPECT_OF_KIND = {
    "Namespace": NAMESPACE,
    "ResourceQuota": QUOTA,
    "LimitRange": QUOTA,
    "NetworkPolicy": ACCESS,
    "RoleBinding": ACCESS,
}


@dataclass
class DomainOutcome:
    """What one reconcile of a domain did and found."""

    status: DataDomainStatus
    applied: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


def _path(kind: tuple[str, str], namespace: str | None = None, name: str | None = None) -> str:
    return KNOWN_RESOURCES[kind].path(namespace, name)


async def _observe(client: KubeClient, domain: DataDomain) -> dict[tuple[str, str], Any]:
    namespace = domain.namespace
    found: dict[tuple[str, str], Any] = {
        ("Namespace", namespace): await client.get(_path(("v1", "Namespace"), name=namespace))
    }
    if found[("Namespace", namespace)] is None:
        return found
    for kind in (("v1", "ResourceQuota"), ("v1", "LimitRange")):
        found[(kind[1], DOMAIN_OBJECT_NAME)] = await client.get(
            _path(kind, namespace, DOMAIN_OBJECT_NAME)
        )
    found[("RoleBinding", EDITORS)] = await client.get(
        _path(("rbac.authorization.k8s.io/v1", "RoleBinding"), namespace, EDITORS)
    )
    policies = await client.list(
        _path(("networking.k8s.io/v1", "NetworkPolicy"), namespace),
        label_selector=f"{LABEL_DOMAIN}={domain.name}",
    )
    for policy in policies:
        found[("NetworkPolicy", policy["metadata"]["name"])] = policy
    return found


async def _survey_products(client: KubeClient, namespace: str) -> tuple[ProductCounts, set[str]]:
    """How many DataProducts the namespace holds and how many are Ready, and the namespaces
    of their readers: a page at a time and unparsed, since a domain may hold hundreds."""
    total, ready, granted = 0, 0, set[str]()
    path = _path(("datamesh.dev/v1alpha1", "DataProduct"), namespace)
    async for page in client.pages(path, limit=SURVEY_PAGE):
        for product in page:
            total += 1
            ready += product_ready(product)
            granted |= granted_namespaces(product)
    return ProductCounts(total=total, ready=ready), granted


async def reconcile_data_domain(
    client: KubeClient, domain: DataDomain, *, namespace_of: dict[str, str], now: str
) -> DomainOutcome:
    """Apply what differs, delete a quota no longer asked for, and compute the status;
    ``namespace_of``: every domain's namespace, by domain name."""
    found = await _observe(client, domain)
    counts, granted = ProductCounts(), set[str]()
    if found[("Namespace", domain.namespace)] is not None:
        counts, granted = await _survey_products(client, domain.namespace)
    desired = build_domain_objects(domain, granted, consumer_namespaces(domain, namespace_of))
    outcome = DomainOutcome(status=domain.status)
    for obj in desired:  # the namespace first: the rest lives in it
        key = (obj["kind"], obj["metadata"]["name"])
        if stamped_hash(found.get(key)) == stamped_hash(obj):
            continue
        try:
            found[key] = await client.apply(obj)
            outcome.applied.append(f"{obj['kind']} {obj['metadata']['name']}")
        except ApiError as error:
            aspect = ASPECT_OF_KIND[obj["kind"]]
            message = f"{obj['kind']} {obj['metadata']['name']}: {error.message or error.reason}"
            outcome.failures[aspect] = "; ".join(
                filter(None, [outcome.failures.get(aspect), message])
            )
    wanted = {(obj["kind"], obj["metadata"]["name"]) for obj in desired}
    quota_key = ("ResourceQuota", DOMAIN_OBJECT_NAME)
    if quota_key not in wanted and found.get(quota_key) is not None:
        await client.delete(object_path(found[quota_key]))
        outcome.pruned.append(f"ResourceQuota {DOMAIN_OBJECT_NAME}")
        found[quota_key] = None
    observed = ObservedDomain(
        namespace=found.get(("Namespace", domain.namespace)),
        quota=found.get(quota_key),
        network_policies={
            name for kind, name in found if kind == "NetworkPolicy" and found[(kind, name)]
        },
        editors=found.get(("RoleBinding", EDITORS)),
        products=counts,
    )
    outcome.status = compute_domain_status(
        domain,
        observed,
        quota_wanted=quota_key in wanted,
        network_policies_wanted={DENY_INGRESS, ALLOW_READERS},
        failures=outcome.failures,
        now=now,
    )
    return outcome


DOMAIN_FINALIZER = "datamesh.dev/domain-protection"


async def hold_domain(client: KubeClient, body: dict[str, Any]) -> None:
    """Keep the domain from going while its namespace holds products."""
    await add_finalizer(client, body, DOMAIN_FINALIZER)


async def release_domain(client: KubeClient, body: dict[str, Any]) -> None:
    """Let a deleted domain go; its namespace and everything in it stay."""
    await remove_finalizer(client, body, DOMAIN_FINALIZER)


async def products_of(client: KubeClient, domain: DataDomain) -> list[str]:
    """Names of the DataProducts in the domain's namespace."""
    path = _path(("datamesh.dev/v1alpha1", "DataProduct"), domain.namespace)
    return sorted(obj["metadata"]["name"] for obj in await client.list(path))
