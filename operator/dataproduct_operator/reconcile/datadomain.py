"""Converge a DataDomain's namespace and the objects in it (layer ``reconcile``, imperative).

:func:`reconcile_data_domain` takes a domain as the API server stores it and returns one
:class:`~dataproduct_operator.reconcile.outcome.Outcome`. It observes the namespace, the quota,
the limit range, the owner team's RoleBinding, the network policies (by the domain label) and
the data products in the namespace; builds the desired objects; applies those whose content
hash differs, or whose fields we set were changed by hand (every pass reads them whole, so a
changed Pod Security label or NetworkPolicy is restored); deletes the quota when the spec no
longer asks for one; and computes the status. The operator labels only a namespace it creates:
one that exists already without the domain label is not part of the mesh until a platform
admin hands it over (labels it with this domain); until then the domain touches nothing in it
and says so (``NamespaceNotHandedOver``). A namespace is never deleted: it may hold data. A
deleted domain goes once its namespace holds no DataProduct; until then it says so.

The operator's write powers in the namespace come from the domain: right after the namespace,
it binds itself (its username learnt with a SelfSubjectReview) to
``datamesh-operator-namespace-writer`` there, waits until the API server's authorizer has seen
the binding, writes the rest, and asks for the products of the namespace to be reconciled.
A domain naming a namespace that an older domain holds gets ``NamespaceTaken`` and touches
nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from dataproduct_operator.api.conditions import (
    ACCESS_READY,
    NAMESPACE_READY,
    QUOTA_READY,
    Reason,
)
from dataproduct_operator.api.datadomain import DataDomain, ProductCounts, namespace_of
from dataproduct_operator.api.dataproduct import Discoverability
from dataproduct_operator.api.kinds import DATA_PRODUCT, DATA_PRODUCT_KIND, DOMAIN_FINALIZER
from dataproduct_operator.constants import (
    LABEL_DOMAIN,
    LABEL_MANAGED_BY,
    NAMESPACE_WRITER_BINDING,
    OPERATOR_NAME,
)
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.identity import Identity, wait_allowed
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES, object_path
from dataproduct_operator.reconcile.apply import Applied, Removal, apply_and_prune
from dataproduct_operator.reconcile.finalizers import add_finalizer, remove_finalizer
from dataproduct_operator.reconcile.mesh import MeshState, ProductSummary
from dataproduct_operator.reconcile.outcome import (
    NORMAL,
    WARNING,
    FollowUp,
    Note,
    Outcome,
    Want,
    failure_outcome,
    invalid_spec_outcome,
)
from dataproduct_operator.specs.datadomain import (
    ALLOW_READERS,
    DENY_INGRESS,
    DOMAIN_OBJECT_NAME,
    EDITORS,
    build_domain_objects,
    consumer_namespaces,
    granted_namespaces,
    quota_hard,
)
from dataproduct_operator.status.datadomain import (
    PASSING_STATES,
    ObservedDomain,
    blocked_message,
    compute_domain_status,
    handed_over,
    product_ready,
    releases_pending_message,
    taken_message,
)

SURVEY_PAGE = 100  # products read at a time to count them and collect their readers
DELETION_RECHECK_SECONDS = 5.0  # a deleted domain that holds products looks again this often
# States that pass by themselves: a quota not counted yet, a namespace still being deleted
# (made again once it is gone). The domain looks again this often until they are over.
RECHECK_SECONDS = 1.0
# A namespace that exists and is not handed over yet (no domain label) is looked at again this
# often: the operator does not watch namespaces; a platform admin labels it when ready.
HANDOVER_RECHECK_SECONDS = 5.0
ASPECT_OF_KIND = {
    "Namespace": NAMESPACE_READY,
    "ResourceQuota": QUOTA_READY,
    "LimitRange": QUOTA_READY,
    "NetworkPolicy": ACCESS_READY,
    "RoleBinding": ACCESS_READY,
}
# Applied in this order: the namespace; the RoleBindings (the operator's own gives it the write
# powers the last wave needs; created, as it may not patch one before it is bound); the rest.
BINDINGS = frozenset({"RoleBinding"})
LAST_WAVE = frozenset(ASPECT_OF_KIND) - {"Namespace"} - BINDINGS
WRITER_BINDING = ("RoleBinding", NAMESPACE_WRITER_BINDING)


@dataclass(frozen=True)
class DomainContext:
    """What a domain's reconcile reads besides the domain."""

    client: KubeClient
    mesh: MeshState
    identity: Identity  # who the operator is, to bind itself in the domain's namespace
    watched_namespaces: tuple[str, ...] = ()  # empty: every namespace


def _path(kind: tuple[str, str], namespace: str | None = None, name: str | None = None) -> str:
    return KNOWN_RESOURCES[kind].path(namespace, name)


async def _observe(
    client: KubeClient, domain: DataDomain, live_namespace: dict[str, Any] | None
) -> dict[tuple[str, str], Any]:
    namespace = domain.namespace
    found: dict[tuple[str, str], Any] = {("Namespace", namespace): live_namespace}
    if live_namespace is None:
        return found
    for kind in (("v1", "ResourceQuota"), ("v1", "LimitRange")):
        found[(kind[1], DOMAIN_OBJECT_NAME)] = await client.get(
            _path(kind, namespace, DOMAIN_OBJECT_NAME)
        )
    for binding in (EDITORS, NAMESPACE_WRITER_BINDING):
        found[("RoleBinding", binding)] = await client.get(
            _path(("rbac.authorization.k8s.io/v1", "RoleBinding"), namespace, binding)
        )
    policies = await client.list(
        _path(("networking.k8s.io/v1", "NetworkPolicy"), namespace),
        label_selector=f"{LABEL_DOMAIN}={domain.name}",
    )
    for policy in policies:
        found[("NetworkPolicy", policy["metadata"]["name"])] = policy
    return found


def summarize_product(product: dict[str, Any]) -> ProductSummary:
    """The summary of a product as the API server stores it (unparsed: cheap for hundreds)."""
    return ProductSummary(
        product_ready(product), frozenset(granted_namespaces(product)), hidden=is_hidden(product)
    )


def is_hidden(product: dict[str, Any]) -> bool:
    """Whether a product (as the API server stores it) is Hidden."""
    discoverability = (product.get("spec") or {}).get("discoverability")
    return bool(discoverability == Discoverability.HIDDEN.value)


def tally(products: dict[str, ProductSummary]) -> tuple[ProductCounts, set[str]]:
    """The domain's product counts (Hidden ones not counted) and its products' readers'
    namespaces (of every product: the network policies must let them in)."""
    counted = [p for p in products.values() if not p.hidden]
    counts = ProductCounts(total=len(counted), ready=sum(1 for p in counted if p.ready))
    return counts, set().union(*(p.granted for p in products.values()))


async def survey_products(client: KubeClient, namespace: str) -> dict[str, ProductSummary]:
    """Every DataProduct of the namespace, summarized, read a page at a time."""
    found: dict[str, ProductSummary] = {}
    async for page in client.pages(_path(DATA_PRODUCT_KIND, namespace), limit=SURVEY_PAGE):
        for product in page:
            found[product["metadata"]["name"]] = summarize_product(product)
    return found


async def products_of(client: KubeClient, namespace: str) -> tuple[list[str], bool]:
    """Names of the DataProducts in a namespace that are not Hidden, and whether it holds
    any at all."""
    products = await client.list(_path(DATA_PRODUCT_KIND, namespace))
    shown = sorted(obj["metadata"]["name"] for obj in products if not is_hidden(obj))
    return shown, bool(products)


async def unreleased_claims(client: KubeClient, namespace: str) -> int:
    """Claims in ``namespace`` the operator still manages without an owner: those of products
    gone that it keeps under Retain and has yet to release (a claim with an owner goes with its
    product)."""
    claims = await client.list(
        _path(("v1", "PersistentVolumeClaim"), namespace),
        label_selector=f"{LABEL_MANAGED_BY}={OPERATOR_NAME}",
    )
    return sum(1 for claim in claims if not claim["metadata"].get("ownerReferences"))


async def reconcile_data_domain(
    ctx: DomainContext, body: dict[str, Any], *, want: Want, now: str
) -> Outcome:
    """One pass over a domain; a drift pass (``want`` DRIFT) surveys its products anew."""
    if body["metadata"].get("deletionTimestamp"):
        return await _let_go_when_empty(ctx, body, now=now)
    try:
        domain = DataDomain.from_object(body)
    except ValidationError as error:
        return invalid_spec_outcome(body, error, now=now)
    client, mesh = ctx.client, ctx.mesh
    await mesh.wait_synced()  # every domain's namespace known
    holder = mesh.domain_of(domain.namespace)
    if holder is not None and holder != domain.name:
        message = taken_message(domain.namespace, holder)
        return failure_outcome(body, Reason.NAMESPACE_TAKEN, message, now=now, retry=False)
    live_namespace = await client.get(_path(("v1", "Namespace"), name=domain.namespace))
    if live_namespace is not None and not handed_over(live_namespace):
        return _not_handed_over(domain, body, live_namespace, now=now)
    await add_finalizer(client, body, DOMAIN_FINALIZER)  # held while its namespace has products
    operator = await ctx.identity.username()
    watched = not ctx.watched_namespaces or domain.namespace in ctx.watched_namespaces
    known = mesh.domain_products.of(domain.namespace)
    found = await _observe(client, domain, live_namespace)
    products = None if (want & Want.DRIFT or not watched) else known
    started = time.monotonic()
    if products is None and found[("Namespace", domain.namespace)] is not None:
        products = await survey_products(client, domain.namespace)
        if watched:
            mesh.domain_products.seed(domain.namespace, products, started)
    counts, granted = tally(products or {})
    namespaces = consumer_namespaces(domain, mesh.namespaces_of_domains())
    desired = build_domain_objects(domain, granted, namespaces, operator)
    quota_key = ("ResourceQuota", DOMAIN_OBJECT_NAME)
    quota_wanted = any(obj["kind"] == "ResourceQuota" for obj in desired)
    stale = [] if quota_wanted or found.get(quota_key) is None else [found[quota_key]]

    async def live(obj: dict[str, Any]) -> dict[str, Any] | None:
        return found.get((obj["kind"], obj["metadata"]["name"]))  # read whole just now

    async def remove(obj: dict[str, Any]) -> Removal:
        return Removal(deleted=await client.delete(object_path(obj)))

    async def wait_bound(applied: Applied) -> None:
        if any((ref.kind, ref.name) == WRITER_BINDING for ref in applied.applied):
            # RBAC takes a moment to see a new binding; the last wave needs it.
            await wait_allowed(client, domain.namespace, "", "configmaps", "create")

    result = await apply_and_prune(
        client,
        desired,
        found,
        aspect_of_kind=ASPECT_OF_KIND,
        stale=stale,
        remove=remove,
        # The namespace first: the rest lives in it.
        later_kinds=(BINDINGS, LAST_WAVE),
        live=live,
        create_kinds=BINDINGS,
        after_wave=wait_bound,
    )
    follow_ups = _onboarded(mesh, domain.namespace, result, products)
    observed = ObservedDomain(
        namespace=result.objects.get(("Namespace", domain.namespace)),
        quota=result.objects.get(quota_key),
        network_policies={name for kind, name in result.objects if kind == "NetworkPolicy"},
        editors=result.objects.get(("RoleBinding", EDITORS)),
        products=counts,
    )
    status = compute_domain_status(
        domain,
        observed,
        quota_wanted=quota_wanted,
        network_policies_wanted={DENY_INGRESS, ALLOW_READERS},
        failures=result.failures,
        now=now,
    )
    passing = any(c.reason in PASSING_STATES for c in status.conditions)
    outcome = result.outcome(body, status, look_again_after=RECHECK_SECONDS if passing else None)
    return replace(outcome, follow_ups=follow_ups)


def _not_handed_over(
    domain: DataDomain, body: dict[str, Any], live_namespace: dict[str, Any], *, now: str
) -> Outcome:
    """The outcome for a namespace that exists without the domain label: nothing touched in it
    (the operator may label only the namespaces it creates), NamespaceReady False with what a
    platform admin runs to hand it over, a Warning Event when that is new, and a look again
    (namespaces are not watched) until the label is there."""
    observed = ObservedDomain(namespace=live_namespace, quota=None, network_policies=set())
    status = compute_domain_status(
        domain,
        observed,
        quota_wanted=bool(quota_hard(domain)),
        network_policies_wanted={DENY_INGRESS, ALLOW_READERS},
        failures={},
        now=now,
    )
    # A namespace still being deleted says so instead; it is made again (labelled) once gone.
    aspect = next(c for c in status.conditions if c.type == NAMESPACE_READY)
    before = next((c for c in domain.status.conditions if c.type == NAMESPACE_READY), None)
    new = aspect.reason == Reason.NAMESPACE_NOT_HANDED_OVER and (
        before is None or (before.reason, before.message) != (aspect.reason, aspect.message)
    )
    notes = (Note(WARNING, aspect.reason, aspect.message, with_status=True),) if new else ()
    return Outcome(
        subject=body,
        status=status,
        notes=notes,
        look_again=Want.RECONCILE,
        look_again_after=HANDOVER_RECHECK_SECONDS,
    )


def _onboarded(
    mesh: MeshState,
    namespace: str,
    result: Applied,
    products: dict[str, ProductSummary] | None,
) -> tuple[FollowUp, ...]:
    """Record that the operator is bound in ``namespace``; when that is new, the products
    there (those known; the others look again by themselves) are reconciled at once."""
    if WRITER_BINDING not in result.objects:
        return ()
    if namespace in mesh.onboarded:
        return ()
    mesh.onboarded.add(namespace)
    known = mesh.domain_products.of(namespace) or products or {}
    return tuple(FollowUp(DATA_PRODUCT, namespace, name, Want.RECONCILE) for name in sorted(known))


async def _let_go_when_empty(ctx: DomainContext, body: dict[str, Any], *, now: str) -> Outcome:
    """A deleted domain goes once its namespace holds no DataProduct (its namespace and
    everything in it stay); until then it says so (Ready False, DeletionBlocked, an Event when
    the list changes) and looks again. Read unparsed: a domain the models refuse goes too."""
    if DOMAIN_FINALIZER not in (body["metadata"].get("finalizers") or []):
        return Outcome()
    namespace = namespace_of(body)
    holder = ctx.mesh.domain_of(namespace)
    if holder is not None and holder != body["metadata"]["name"]:
        # Another domain holds the namespace: its products are not this one's to wait for.
        await remove_finalizer(ctx.client, body, DOMAIN_FINALIZER)
        return Outcome()
    products, any_left = await products_of(ctx.client, namespace)
    message = blocked_message(namespace, products)
    if not any_left:
        # The products' claims kept under Retain are released by the operator after the
        # products go; the domain (and with it the operator's binding in the namespace) waits.
        unreleased = await unreleased_claims(ctx.client, namespace)
        if not unreleased:
            await remove_finalizer(ctx.client, body, DOMAIN_FINALIZER)
            deleted = f"Deleted; namespace {namespace} kept"
            return Outcome(notes=(Note(NORMAL, Reason.PRUNED, deleted),))
        message = releases_pending_message(namespace, unreleased)
    blocked = failure_outcome(body, Reason.DELETION_BLOCKED, message, now=now, retry=False)
    return replace(blocked, look_again=Want.RECONCILE, look_again_after=DELETION_RECHECK_SECONDS)
