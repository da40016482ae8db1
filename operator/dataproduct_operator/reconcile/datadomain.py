"""Converge a DataDomain's namespace and the objects in it (layer ``reconcile``, imperative).

Observe the namespace, the quota, the limit range, the owner team's RoleBinding, the network
policies (by the domain label) and the data products in the namespace; build the desired
objects; server-side apply those whose content hash differs; delete the quota when the spec no
longer asks for one; and compute the status. A namespace that exists already and is not the
operator's is taken into the domain (labelled), never deleted: it may hold data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

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
    surveyed: dict[str, ProductSummary] | None = None  # the products, when read from the server


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


class ProductSummary(NamedTuple):
    """What a domain needs to know of one of its products."""

    ready: bool
    granted: frozenset[str]  # the namespaces of its ServiceAccount readers


def summarize_product(product: dict[str, Any]) -> ProductSummary:
    """The summary of a product as the API server stores it (unparsed: cheap for hundreds)."""
    return ProductSummary(product_ready(product), frozenset(granted_namespaces(product)))


def tally(products: dict[str, ProductSummary]) -> tuple[ProductCounts, set[str]]:
    """The domain's product counts and its products' readers' namespaces."""
    counts = ProductCounts(total=len(products), ready=sum(1 for p in products.values() if p.ready))
    return counts, set().union(*(p.granted for p in products.values()))


async def survey_products(client: KubeClient, namespace: str) -> dict[str, ProductSummary]:
    """Every DataProduct of the namespace, summarized, read a page at a time."""
    found: dict[str, ProductSummary] = {}
    path = _path(("datamesh.dev/v1alpha1", "DataProduct"), namespace)
    async for page in client.pages(path, limit=SURVEY_PAGE):
        for product in page:
            found[product["metadata"]["name"]] = summarize_product(product)
    return found


async def reconcile_data_domain(
    client: KubeClient,
    domain: DataDomain,
    *,
    namespace_of: dict[str, str],
    products: dict[str, ProductSummary] | None,
    now: str,
) -> DomainOutcome:
    """Apply what differs, delete a quota no longer asked for, and compute the status;
    ``namespace_of``: every domain's namespace, by domain name; ``products``: the domain's
    products as the caller knows them, or None to survey them (``outcome.surveyed``)."""
    found = await _observe(client, domain)
    outcome = DomainOutcome(status=domain.status)
    if products is None and found[("Namespace", domain.namespace)] is not None:
        products = outcome.surveyed = await survey_products(client, domain.namespace)
    counts, granted = tally(products or {})
    desired = build_domain_objects(domain, granted, consumer_namespaces(domain, namespace_of))
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
