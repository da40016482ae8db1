"""Converge a DataProduct's children (layer ``reconcile``, imperative).

Observe the children by label, build the desired ones, server-side apply only those whose
content hash differs, prune what is ours and no longer desired, and compute the status. A claim
of a product with ``deletionPolicy: Retain`` is never deleted: when its port goes away (or the
product does) it is released: no owner, no ``managed-by`` label, labelled as retained.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from dataproduct_operator.api.dataproduct import DataProduct, DataProductStatus, DeletionPolicy
from dataproduct_operator.constants import (
    ANNOTATION_DESIRED_HASH,
    ANNOTATION_RETAINED_FROM,
    COMPONENT_PIPELINE_RUN,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_PIPELINE,
    LABEL_PORT,
    LABEL_PRODUCT,
    LABEL_RETAINED,
    LEGACY_FINALIZER,
    OPERATOR_NAME,
)
from dataproduct_operator.k8s.client import KubeClient, gather_limited
from dataproduct_operator.k8s.informer import ChildCache
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES, object_path
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.finalizers import remove_finalizer
from dataproduct_operator.specs.dataproduct import build_children, stamped_hash
from dataproduct_operator.status.dataproduct import (
    ACCESS,
    MONITORING,
    PIPELINES,
    STORAGE,
    Failures,
    Observed,
    compute_status,
)

APPLY_CONCURRENCY = 8
RUN_HISTORY = 3  # on-demand run Jobs kept per pipeline
BOUND_LATER = frozenset({"RoleBinding"})  # applied after every other child

CHILD_KINDS = (
    ("v1", "ServiceAccount"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "ConfigMap"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("batch/v1", "CronJob"),
    ("batch/v1", "Job"),
)
# Kinds whose objects of others the cache knows by name. Run Jobs are made seldom and a cluster
# has many Jobs of others: a run Job's name is asked of the API server instead.
NAMED_KINDS = tuple(kind for kind in CHILD_KINDS if kind[1] != "Job")
PROMETHEUS_RULE = ("monitoring.coreos.com/v1", "PrometheusRule")

ASPECT_OF_KIND = {
    "PersistentVolumeClaim": STORAGE,
    "ServiceAccount": PIPELINES,
    "CronJob": PIPELINES,
    "Job": PIPELINES,
    "Role": ACCESS,
    "RoleBinding": ACCESS,
    "ConfigMap": ACCESS,
    "PrometheusRule": MONITORING,
}

Key = tuple[str, str]


@dataclass
class Outcome:
    """What one reconcile did and found."""

    status: DataProductStatus
    applied: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


def _key(obj: dict[str, Any]) -> Key:
    return obj["kind"], obj["metadata"]["name"]


def _describe(obj: dict[str, Any]) -> str:
    return f"{obj['kind']} {obj['metadata']['name']}"


def _is_ours(obj: dict[str, Any]) -> bool:
    return bool(obj["metadata"].get("labels", {}).get(LABEL_MANAGED_BY) == OPERATOR_NAME)


async def observe(
    client: KubeClient,
    namespace: str,
    product_name: str,
    *,
    prometheus: bool,
    cache: ChildCache | None = None,
) -> tuple[dict[Key, dict[str, Any]], list[dict[str, Any]]]:
    """Children of the product that carry our labels, and every Job of its pipelines.

    From ``cache`` for the kinds it watches, listed from the API server otherwise.
    """
    kinds = [*CHILD_KINDS, PROMETHEUS_RULE] if prometheus else list(CHILD_KINDS)
    cached = set(cache.kinds) if cache is not None else set()
    listed = [kind for kind in kinds if kind not in cached]
    selector = f"{LABEL_PRODUCT}={product_name}"
    listings = dict(
        zip(
            listed,
            await asyncio.gather(
                *(
                    client.list(KNOWN_RESOURCES[kind].path(namespace), label_selector=selector)
                    for kind in listed
                )
            ),
            strict=True,
        )
    )
    if cache is not None:
        await cache.wait_synced()
        for item in cache.children(namespace, product_name):
            listings.setdefault((item["apiVersion"], item["kind"]), []).append(item)
    children: dict[Key, dict[str, Any]] = {}
    jobs: list[dict[str, Any]] = []
    for (api_version, kind), items in listings.items():
        for item in items:
            item["kind"], item["apiVersion"] = kind, api_version
            if kind == "Job":
                jobs.append(item)
            if _is_ours(item):
                children[_key(item)] = item
    return children, jobs


async def _look_up(
    client: KubeClient, cache: ChildCache | None, obj: dict[str, Any]
) -> dict[str, Any] | None:
    """The object of that name, if any: from the cache when it knows the kind's names, else from
    the API server's watch cache. Either may miss an object made a moment ago, as any look
    before an apply could."""
    kind = (obj["apiVersion"], obj["kind"])
    if cache is not None and cache.knows_names(kind):
        metadata = obj["metadata"]
        return cache.find(kind, metadata["namespace"], metadata["name"])
    return await client.get(object_path(obj), not_older_than="0")


def _may_adopt(found: dict[str, Any], product: DataProduct) -> bool:
    """Ours already, or a claim this product's earlier incarnation retained."""
    labels = found["metadata"].get("labels") or {}
    retained_claim = (
        found.get("kind") == "PersistentVolumeClaim"
        and labels.get(LABEL_RETAINED) == "true"
        and labels.get(LABEL_PRODUCT) == product.name
    )
    return _is_ours(found) or retained_claim


def _claim_sizes(children: dict[Key, dict[str, Any]]) -> dict[str, str]:
    sizes = {}
    for (kind, _), obj in children.items():
        if kind == "PersistentVolumeClaim":
            port = obj["metadata"].get("labels", {}).get(LABEL_PORT)
            size = obj.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")
            if port and size:
                sizes[port] = size
    return sizes


def _run_jobs_to_keep(product: DataProduct, children: dict[Key, dict[str, Any]]) -> set[Key]:
    """On-demand run Jobs stay (the newest few per pipeline) while their pipeline exists."""
    on_demand = {p.name for p in product.spec.pipelines if p.schedule is None}
    runs: dict[str, list[dict[str, Any]]] = {}
    for (kind, _), obj in children.items():
        labels = obj["metadata"].get("labels", {})
        if kind == "Job" and labels.get(LABEL_COMPONENT) == COMPONENT_PIPELINE_RUN:
            pipeline = labels.get(LABEL_PIPELINE, "")
            if pipeline in on_demand:
                runs.setdefault(pipeline, []).append(obj)
    keep: set[Key] = set()
    for jobs in runs.values():
        jobs.sort(key=lambda j: j["metadata"].get("creationTimestamp", ""), reverse=True)
        keep.update(_key(job) for job in jobs[:RUN_HISTORY])
    return keep


async def release_claim(
    client: KubeClient,
    claim: dict[str, Any],
    product_uid: str | None,
    cache: ChildCache | None = None,
) -> bool:
    """Hand a claim over to its users: no owner, not managed by us, marked as retained.

    False when the claim is gone already (deleted with its namespace, say).
    """
    try:
        released = await _release(client, claim, product_uid)
    except ApiError as error:
        if error.status == 404:
            return False
        raise
    if cache is not None:
        cache.put({**released, "apiVersion": "v1", "kind": "PersistentVolumeClaim"}, notify=False)
    return True


async def _release(
    client: KubeClient, claim: dict[str, Any], product_uid: str | None
) -> dict[str, Any]:
    return await client.merge_patch(
        object_path(claim),
        {
            "metadata": {
                "ownerReferences": None,
                "labels": {LABEL_MANAGED_BY: None, LABEL_RETAINED: "true"},
                "annotations": {
                    ANNOTATION_DESIRED_HASH: None,
                    ANNOTATION_RETAINED_FROM: product_uid,
                },
            }
        },
    )


async def _remove(
    client: KubeClient,
    product: DataProduct,
    obj: dict[str, Any],
    outcome: Outcome,
    cache: ChildCache | None,
) -> None:
    """Delete a child of ours; a retained claim is released instead."""
    if (
        obj["kind"] == "PersistentVolumeClaim"
        and product.spec.deletion_policy is DeletionPolicy.RETAIN
    ):
        if await release_claim(client, obj, product.uid, cache):
            outcome.released.append(_describe(obj))
        return
    if await client.delete(object_path(obj), uid=obj["metadata"].get("uid")):
        outcome.pruned.append(_describe(obj))
        if cache is not None:
            cache.remove(obj, notify=False)


async def reconcile_data_product(
    client: KubeClient,
    product: DataProduct,
    *,
    prometheus: bool,
    now: str,
    cache: ChildCache | None = None,
) -> Outcome:
    """Apply what differs, prune what is no longer wanted, and compute the status."""
    children, jobs = await observe(
        client, product.namespace, product.name, prometheus=prometheus, cache=cache
    )
    desired = build_children(
        product, observed_claim_sizes=_claim_sizes(children), prometheus_available=prometheus
    )
    outcome = Outcome(status=product.status)
    changed = [d for d in desired if stamped_hash(children.get(_key(d))) != stamped_hash(d)]

    def fail(obj: dict[str, Any], problem: str) -> None:
        aspect = ASPECT_OF_KIND[obj["kind"]]
        message = f"{_describe(obj)}: {problem}"
        outcome.failures[aspect] = "; ".join(filter(None, [outcome.failures.get(aspect), message]))

    # A child we have not made yet may clash with an object someone else made: never take it.
    missing = [obj for obj in changed if _key(obj) not in children]
    existing = await gather_limited(
        APPLY_CONCURRENCY, *(_look_up(client, cache, obj) for obj in missing)
    )
    for obj, found in zip(missing, existing, strict=True):
        if found is not None and not _may_adopt(found, product):
            fail(obj, f"exists and is not managed by {OPERATOR_NAME}; delete or rename it")
            changed.remove(obj)

    async def apply(obj: dict[str, Any]) -> None:
        try:
            children[_key(obj)] = applied = await client.apply(obj)
            if cache is not None:
                cache.put(applied, notify=False)
            outcome.applied.append(_describe(obj))
        except ApiError as error:
            fail(obj, error.message or error.reason)

    # Without the `bind` verb the API server lets the operator bind a Role only once the Role
    # exists (it checks that the operator holds the Role's permissions): Roles go first.
    for wave in (
        [obj for obj in changed if obj["kind"] not in BOUND_LATER],
        [obj for obj in changed if obj["kind"] in BOUND_LATER],
    ):
        await gather_limited(APPLY_CONCURRENCY, *(apply(obj) for obj in wave))

    wanted = {_key(d) for d in desired} | _run_jobs_to_keep(product, children)
    stale = [obj for key, obj in children.items() if key not in wanted]
    await gather_limited(
        APPLY_CONCURRENCY, *(_remove(client, product, obj, outcome, cache) for obj in stale)
    )
    gone = {_key(obj) for obj in stale}
    for key in gone:
        children.pop(key)
    # The Jobs as they are now: listed ones minus the pruned, plus the ones just created.
    listed = {_key(job) for job in jobs}
    jobs = [job for job in jobs if _key(job) not in gone]
    jobs += [obj for key, obj in children.items() if key[0] == "Job" and key not in listed]

    outcome.status = compute_status(
        product,
        Observed(children, jobs),
        failures=Failures(outcome.failures),
        prometheus_available=prometheus,
        now=now,
    )
    return outcome


async def refresh_status(
    client: KubeClient,
    product: DataProduct,
    *,
    prometheus: bool,
    now: str,
    cache: ChildCache | None = None,
) -> DataProductStatus:
    """The status from the children as they are, without applying anything."""
    children, jobs = await observe(
        client, product.namespace, product.name, prometheus=prometheus, cache=cache
    )
    # A failure to apply stays reported until the next reconcile of this generation clears it.
    still_failing = {
        c.type: c.message
        for c in product.status.conditions
        if c.reason == "ApplyFailed" and c.observed_generation == product.generation
    }
    return compute_status(
        product,
        Observed(children, jobs),
        failures=Failures(still_failing),
        prometheus_available=prometheus,
        now=now,
    )


async def release_retained_claims(
    client: KubeClient,
    namespace: str,
    product_name: str,
    *,
    product_uid: str | None,
    cache: ChildCache | None = None,
) -> list[str]:
    """A product is gone: release its claims kept under ``Retain``; the claims released.

    Those are the claims of ours without an owner reference; every other child names the
    product as its owner, and the garbage collector deletes it with the product.
    """
    children, _ = await observe(client, namespace, product_name, prometheus=False, cache=cache)
    claims = [
        obj
        for (kind, _), obj in children.items()
        if kind == "PersistentVolumeClaim" and not obj["metadata"].get("ownerReferences")
    ]
    released = await gather_limited(
        APPLY_CONCURRENCY,
        *(release_claim(client, claim, product_uid, cache) for claim in claims),
    )
    return [_describe(claim) for claim, done in zip(claims, released, strict=True) if done]


async def remove_legacy_finalizer(client: KubeClient, body: dict[str, Any]) -> None:
    """Let go of a deleted product that an earlier version held (a conflict if it changed)."""
    await remove_finalizer(client, body, LEGACY_FINALIZER)
