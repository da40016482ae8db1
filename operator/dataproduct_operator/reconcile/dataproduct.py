"""Converge a DataProduct (layer ``reconcile``, imperative).

:func:`reconcile_data_product` takes a product as the API server stores it and returns one
:class:`~dataproduct_operator.reconcile.outcome.Outcome`. A body the models refuse gets
``InvalidSpec``; a product in a namespace no DataDomain holds, or not onboarded yet (the operator
has no write powers there until the domain binds them), gets ``NamespaceNotInMesh``, one whose
``spec.domain`` names another domain ``DomainMismatch``, and nothing else. Otherwise the children
are observed by label, the desired ones built, those whose content hash differs (or, on a drift
pass, whose fields we set were changed) server-side applied, what is ours and no longer desired
pruned, the status computed and audited against every MeshPolicy, and the Events of what changed
named. A desired child whose name an object of another product (or of no product) holds is left
alone and reported (``NameConflict``, ``ApplyFailed``), with the pipelines that would mount such
a claim (:func:`hold_taken_names`). A claim of a product with ``deletionPolicy: Retain`` is never
deleted: when its port goes away (or the product does, :func:`let_go_data_product`) it is
released: no owner, no ``managed-by`` label, labelled as retained; its volume keeps the data past
the namespace (:func:`converge_volumes`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from dataproduct_operator.api.conditions import (
    ACCESS_READY,
    INPUTS_READY,
    MONITORING_READY,
    PIPELINES_READY,
    POLICY_COMPLIANT,
    READY,
    STORAGE_READY,
    Reason,
)
from dataproduct_operator.api.dataproduct import (
    DataProduct,
    DataProductStatus,
    DeletionPolicy,
    Discoverability,
    ProductAccessStatus,
    RunStatus,
)
from dataproduct_operator.api.grants import AccessPhase
from dataproduct_operator.api.kinds import (
    DATA_ACCESS_REQUEST,
    DATA_PRODUCT,
    DATA_PRODUCT_KIND,
    DATA_STORE,
    LEGACY_FINALIZER,
)
from dataproduct_operator.api.naming import claim_name
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
    LABEL_VOLUME_NAMESPACE,
    NAMESPACE_WRITER_BINDING,
)
from dataproduct_operator.k8s.client import KubeClient, gather_limited
from dataproduct_operator.k8s.informer import ChildCache, WatchedObjects
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES, object_path
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.openlineage.client import OpenLineageClient, emit_new_runs
from dataproduct_operator.openlineage.events import input_endpoints
from dataproduct_operator.reconcile.access import AccessRegistry
from dataproduct_operator.reconcile.apply import (
    APPLY_CONCURRENCY,
    Applied,
    Key,
    Removal,
    apply_and_prune,
    is_ours,
    key_of,
    shown,
)
from dataproduct_operator.reconcile.finalizers import remove_finalizer
from dataproduct_operator.reconcile.mesh import MeshState, ProductSummary
from dataproduct_operator.reconcile.outcome import (
    NORMAL,
    WARNING,
    FollowUp,
    Note,
    ObjectRef,
    Outcome,
    Want,
    invalid_spec_outcome,
)
from dataproduct_operator.reconcile.runs import (
    health_notes,
    observe_runs,
    read_table_stats,
    stats_wanted,
)
from dataproduct_operator.reconcile.stores import (
    StoreConnections,
    StoreWork,
    converge_store_ports,
    release_store_ports,
)
from dataproduct_operator.specs.datadomain import granted_namespaces
from dataproduct_operator.specs.dataproduct import (
    ANYWHERE,
    InputWiring,
    StoreWiring,
    build_children,
    mounted_claims,
)
from dataproduct_operator.specs.ownership import refuse_adoption
from dataproduct_operator.specs.placement import PodPlacement
from dataproduct_operator.specs.volumes import VolumePlan, plan_volumes, volume_selector
from dataproduct_operator.status.access import (
    STEP_REASONS,
    compute_product_access,
    new_records,
    next_expiry_seconds,
)
from dataproduct_operator.status.dataproduct import (
    Failures,
    Mismatch,
    Observed,
    compute_mismatch_status,
    compute_run_events,
    compute_status,
    find_domain_mismatch,
    new_runs,
    not_onboarded,
)
from dataproduct_operator.status.health import next_health_check
from dataproduct_operator.status.meshpolicy import Violation, audit_product, with_compliance
from dataproduct_operator.status.placement import StoreChoice, choose_store
from dataproduct_operator.status.runs import ObservedRun, parse_time
from dataproduct_operator.status.stores import (
    CLAIM_REASONS,
    InputCheck,
    ProductKey,
    StoreResult,
    check_inputs,
    input_claims,
    upstream_key,
)
from dataproduct_operator.stores.driver import StoreError
from dataproduct_operator.stores.inputs import granted_scopes, reader_scopes, spec_reader_scopes

logger = logging.getLogger(__name__)

RUN_HISTORY = 3  # on-demand run Jobs kept per pipeline
BOUND_LATER = frozenset({"RoleBinding"})  # applied after every other child
# A domain is reconciled again this long after a product in it changed: its product counts and
# the readers' namespaces of its network policies follow, once for a burst of changes.
DOMAIN_AFTER_PRODUCTS_SECONDS = 5.0
# A product whose domain has not bound the operator in its namespace yet looks again this often
# (the domain asks for it too, once bound).
ONBOARDING_RECHECK_SECONDS = 2.0
POLICY_STATUS_AFTER_AUDIT_SECONDS = 5.0  # the violation counts follow, once for a burst
# A product granted (or no longer granted) another's port is reconciled this long after: its
# InputsReady and its pipelines' inputs follow.
CONSUMER_AFTER_SECONDS = 0.5
# A DataStore's count of ports placed follows its products this long after, once for a burst.
STORE_AFTER_PRODUCTS_SECONDS = 5.0
# A product whose file input's claim is missing looks again this often: nothing the operator
# watches tells when someone creates a claim of their own.
CLAIM_RECHECK_SECONDS = 10.0

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
PERSISTENT_VOLUME = ("v1", "PersistentVolume")

ASPECT_OF_KIND = {
    "PersistentVolumeClaim": STORAGE_READY,
    "ServiceAccount": PIPELINES_READY,
    "CronJob": PIPELINES_READY,
    "Job": PIPELINES_READY,
    "Role": ACCESS_READY,
    "RoleBinding": ACCESS_READY,
    "ConfigMap": ACCESS_READY,
    "PrometheusRule": MONITORING_READY,
}


class NameWaits:
    """Which products wait for a name another product's object holds (kind, namespace, name):
    when that object goes, the runtime reconciles them at once rather than at their next
    retry, which may be as far as the drift interval away."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str, str], set[tuple[str, str]]] = {}
        self._of_product: dict[tuple[str, str], set[tuple[str, str, str]]] = {}

    def wait(self, product: tuple[str, str], names: Iterable[tuple[str, str, str]]) -> None:
        """Record the names ``product`` (namespace, name) waits for now, instead of before."""
        for name in self._of_product.pop(product, set()):
            self._waiting[name].discard(product)
            if not self._waiting[name]:
                del self._waiting[name]
        wanted = set(names)
        if wanted:
            self._of_product[product] = wanted
        for name in wanted:
            self._waiting.setdefault(name, set()).add(product)

    def waiting_for(self, kind: str, namespace: str, name: str) -> set[tuple[str, str]]:
        return set(self._waiting.get((kind, namespace, name), set()))


@dataclass(frozen=True)
class ProductContext:
    """What a product's reconcile reads besides the product: the API, the children cache, the
    mesh, whether the cluster serves PrometheusRule, and where product health is recorded."""

    client: KubeClient
    mesh: MeshState
    prometheus_available: Callable[[], Awaitable[bool]]
    cache: ChildCache | None = None
    volumes: WatchedObjects | None = None  # the PersistentVolumes labelled for output ports
    observe_health: Callable[[DataProduct, DataProductStatus], None] | None = None
    forget_health: Callable[[str, str], None] | None = None
    name_waits: NameWaits = field(default_factory=NameWaits)
    stores: StoreConnections | None = None  # None: store ports stay unplaced (no driver)
    placement: PodPlacement = ANYWHERE  # where pipeline pods run (--pipeline-node-selector)
    # where the runs' OpenLineage events go (--openlineage-url); None: nowhere
    lineage: OpenLineageClient | None = None
    # the access requests (None: none are read; the spec's readers only)
    access: AccessRegistry | None = None


def product_path(namespace: str, name: str) -> str:
    return KNOWN_RESOURCES[DATA_PRODUCT_KIND].path(namespace, name)


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
            if is_ours(item):
                children[key_of(item)] = item
    return children, jobs


def _look_up(
    client: KubeClient, cache: ChildCache | None
) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]:
    """The object of a desired child's name, if any: from the cache when it knows the kind's
    names, else from the API server's watch cache. Either may miss an object made a moment ago,
    as any look before an apply could."""

    async def look_up(obj: dict[str, Any]) -> dict[str, Any] | None:
        kind = (obj["apiVersion"], obj["kind"])
        if cache is not None and cache.knows_names(kind):
            metadata = obj["metadata"]
            return cache.find(kind, metadata["namespace"], metadata["name"])
        return await client.get(object_path(obj), not_older_than="0")

    return look_up


@dataclass(frozen=True)
class Held:
    """Desired children left alone this pass: names others hold, and the workloads that would
    mount a claim of such a name; each as (aspect, message)."""

    conflicts: dict[Key, tuple[str, str]]  # the name is another product's
    refused: dict[Key, tuple[str, str]]  # the name is an object of no product's
    adopted: dict[Key, dict[str, Any]]  # objects of this product found by name, taken
    taken: set[Key] = field(default_factory=set)  # names other products' objects hold

    def names(self) -> set[Key]:
        return set(self.conflicts) | set(self.refused)


async def hold_taken_names(
    desired: list[dict[str, Any]],
    children: dict[Key, dict[str, Any]],
    look_up: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]],
) -> Held:
    """Look up the desired children not among the product's own, decide which may be taken
    (:func:`refuse_adoption`), and hold back the pipelines that would mount a refused claim."""
    unseen = [obj for obj in desired if key_of(obj) not in children]
    found = await gather_limited(APPLY_CONCURRENCY, *(look_up(obj) for obj in unseen))
    held = Held({}, {}, {})
    claims: dict[str, tuple[bool, str]] = {}
    for obj, other in zip(unseen, found, strict=True):
        refusal = refuse_adoption(obj, other)
        if refusal is None:
            if other is not None:
                held.adopted[key_of(obj)] = other
            continue
        aspect = ASPECT_OF_KIND[obj["kind"]]
        if refusal.name_conflict:
            held.conflicts[key_of(obj)] = (aspect, refusal.message)
            held.taken.add(key_of(obj))
        else:
            held.refused[key_of(obj)] = (aspect, f"{ObjectRef.of(obj)}: {refusal.message}")
        if obj["kind"] == "PersistentVolumeClaim":
            claims[refusal.name] = (refusal.name_conflict, refusal.message)
    for obj in desired:
        blocked = sorted(mounted_claims(obj) & set(claims))
        if not blocked or key_of(obj) in held.names():
            continue
        message = (
            f"{ObjectRef.of(obj)} is not applied while it would mount "
            f"PersistentVolumeClaim {', '.join(blocked)}, which is not this product's"
        )
        aspect = ASPECT_OF_KIND[obj["kind"]]
        conflict = any(claims[name][0] for name in blocked)
        (held.conflicts if conflict else held.refused)[key_of(obj)] = (aspect, message)
    return held


def _by_aspect(messages: Iterable[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for aspect, message in messages:
        joined[aspect] = "; ".join(filter(None, [joined.get(aspect), message]))
    return joined


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
        keep.update(key_of(job) for job in jobs[:RUN_HISTORY])
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
    patch = {
        "metadata": {
            "ownerReferences": None,
            "labels": {LABEL_MANAGED_BY: None, LABEL_RETAINED: "true"},
            "annotations": {ANNOTATION_DESIRED_HASH: None, ANNOTATION_RETAINED_FROM: product_uid},
        }
    }
    try:
        released = await client.merge_patch(object_path(claim), patch)
    except ApiError as error:
        if error.status == 404:
            return False
        raise
    if cache is not None:
        cache.put({**released, "apiVersion": "v1", "kind": "PersistentVolumeClaim"}, notify=False)
    return True


def _remover(
    client: KubeClient, product: DataProduct, cache: ChildCache | None
) -> Callable[[dict[str, Any]], Awaitable[Removal]]:
    """Delete a child of ours; a claim of a product that retains its data is released."""

    async def remove(obj: dict[str, Any]) -> Removal:
        claim = obj["kind"] == "PersistentVolumeClaim"
        if claim and product.spec.deletion_policy is DeletionPolicy.RETAIN:
            return Removal(released=await release_claim(client, obj, product.uid, cache))
        deleted = await client.delete(object_path(obj), uid=obj["metadata"].get("uid"))
        if deleted and cache is not None:
            cache.remove(obj, notify=False)
        return Removal(deleted=deleted)

    return remove


def port_claims(
    product: DataProduct, children: dict[Key, dict[str, Any]], held: Held
) -> dict[str, dict[str, Any] | None]:
    """Each output port's claim as observed (None: to be made), but for claims whose name
    another object holds: their volumes are none of this product's business."""
    claims: dict[str, dict[str, Any] | None] = {}
    for port in product.spec.output_ports:
        key = ("PersistentVolumeClaim", claim_name(product.name, port.name))
        if key not in held.names():
            claims[port.name] = children.get(key) or held.adopted.get(key)
    return claims


@dataclass
class Volumes:
    """What :func:`converge_volumes` did: the volume each port's claim names (port -> volume),
    the Events of the volumes bound again, and what failed (messages for StorageReady)."""

    names: dict[str, str] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def labelled_volumes(ctx: ProductContext, namespace: str) -> dict[str, dict[str, Any]]:
    """The PersistentVolumes labelled for claims of ``namespace``, by name: from the watch
    when there is one, else listed."""
    if ctx.volumes is not None:
        await ctx.volumes.wait_synced()
        found = ctx.volumes.items()
    else:
        found = await ctx.client.list(
            KNOWN_RESOURCES[PERSISTENT_VOLUME].path(), label_selector=volume_selector(namespace)
        )
    return {
        volume["metadata"]["name"]: volume
        for volume in found
        if (volume["metadata"].get("labels") or {}).get(LABEL_VOLUME_NAMESPACE) == namespace
    }


async def converge_volumes(
    ctx: ProductContext, product: DataProduct, claims: dict[str, dict[str, Any] | None]
) -> Volumes:
    """Send the patches :func:`~dataproduct_operator.specs.volumes.plan_volumes` asks for:
    reclaim policies that follow the ports' deletionPolicy, and released volumes bound to the
    claims about to be made. A failure is reported, never dropped: the data of that port is not
    protected from the deletion of its namespace until a later pass succeeds."""
    done = Volumes()
    try:
        volumes = await labelled_volumes(ctx, product.namespace)
    except ApiError as error:
        done.names = plan_volumes(product, claims, {}).pins  # the claims keep their volume
        if _retains(product):  # a Delete port's volume is left to its StorageClass anyway
            done.failures.append(
                f"PersistentVolumes could not be read ({error.message or error.reason}): the "
                "volumes of this product are not protected from the deletion of its namespace"
            )
        return done
    plan = plan_volumes(product, claims, volumes)
    done.names = dict(plan.pins)
    answers = await gather_limited(
        APPLY_CONCURRENCY,
        *(_patch_volume(ctx, patch.volume, patch.patch) for patch in plan.patches),
    )
    for patch, answer in zip(plan.patches, answers, strict=True):
        what = f"PersistentVolume {patch.volume} (output port {patch.port})"
        if isinstance(answer, ApiError):
            problem = answer.message or answer.reason
            done.failures.append(f"{what}: could not {patch.purpose}: {problem}")
        elif plan.rebinds.get(patch.port) == patch.volume:
            done.names[patch.port] = patch.volume
            message = f"Bound {what} to a new claim: the data it retained is back"
            done.notes.append(Note(NORMAL, Reason.RETAINED, message))
        # A reclaim policy set is seen on the volume; no Event (a write) for each one.
    return done


def _retains(product: DataProduct) -> bool:
    return product.spec.deletion_policy is DeletionPolicy.RETAIN


async def _patch_volume(
    ctx: ProductContext, name: str, patch: dict[str, Any]
) -> dict[str, Any] | ApiError:
    """The volume as patched, or the API server's refusal."""
    try:
        answer = await ctx.client.merge_patch(
            KNOWN_RESOURCES[PERSISTENT_VOLUME].path(name=name), patch
        )
    except ApiError as error:
        return error
    if ctx.volumes is not None:
        ctx.volumes.put({**answer, "apiVersion": "v1", "kind": "PersistentVolume"})
    return answer


def pending_volume_work(
    ctx: ProductContext, product: DataProduct, children: dict[Key, dict[str, Any]]
) -> bool:
    """Whether a reconcile has volumes to patch (a claim just bound, say), from what the
    watches know; False when they know nothing yet."""
    if ctx.volumes is None:
        return False
    claims = {
        port.name: children.get(("PersistentVolumeClaim", claim_name(product.name, port.name)))
        for port in product.spec.output_ports
    }
    bound = {port: claim for port, claim in claims.items() if claim is not None}
    volumes = {
        v["metadata"]["name"]: v
        for v in ctx.volumes.items()
        if (v["metadata"].get("labels") or {}).get(LABEL_VOLUME_NAMESPACE) == product.namespace
    }
    plan: VolumePlan = plan_volumes(product, bound, volumes)
    return bool(plan.patches)


@dataclass(frozen=True)
class Converged:
    """What converging the children did, and the names other products hold (aspect ->
    message): reported as NameConflict and, like the failures, retried."""

    result: Applied
    conflicts: dict[str, str]
    volume_notes: tuple[Note, ...] = ()  # what was done to PersistentVolumes
    runs: tuple[ObservedRun, ...] = ()  # the runs that started or ended since the last status

    def retried(self) -> dict[str, str]:
        """Every aspect that failed or met a name conflict, with its messages."""
        both = [*self.result.failures.items(), *self.conflicts.items()]
        return _by_aspect(both)


async def converge_children(
    ctx: ProductContext,
    product: DataProduct,
    *,
    prometheus: bool,
    drift: bool,
    now: str,
    stores: StoreWork | None = None,
    inputs: list[InputCheck] | None = None,
    access: ProductAccessStatus | None = None,
) -> tuple[DataProductStatus, Converged]:
    """Apply what differs, prune what is no longer wanted, and compute the status.
    ``stores``: what the store side did (the wiring of the pipelines); ``inputs``: the inputs
    from other products, checked; ``access``: the effective readers (None: the spec's)."""
    readers = access.readers if access is not None else None
    client, cache = ctx.client, ctx.cache
    wiring = wire_inputs(stores, inputs)
    children, jobs = await observe(
        client, product.namespace, product.name, prometheus=prometheus, cache=cache
    )
    desired = build_children(
        product,
        observed_claim_sizes=_claim_sizes(children),
        prometheus_available=prometheus,
        wiring=wiring,
        placement=ctx.placement,
        readers=readers,
    )
    wanted = {key_of(d) for d in desired} | _run_jobs_to_keep(product, children)
    held = await hold_taken_names(desired, children, _look_up(client, cache))
    ctx.name_waits.wait(
        (product.namespace, product.name),
        [(kind, product.namespace, name) for kind, name in held.taken],
    )
    volumes = await converge_volumes(ctx, product, port_claims(product, children, held))
    if volumes.names:
        desired = build_children(
            product,
            observed_claim_sizes=_claim_sizes(children),
            prometheus_available=prometheus,
            volume_names=volumes.names,
            wiring=wiring,
            placement=ctx.placement,
            readers=readers,
        )

    async def live(obj: dict[str, Any]) -> dict[str, Any] | None:
        return await client.get(object_path(obj), not_older_than="0")

    def applied_to_cache(answer: dict[str, Any]) -> None:
        if cache is not None:
            cache.put(answer, notify=False)

    result = await apply_and_prune(
        client,
        [obj for obj in desired if key_of(obj) not in held.names()],
        children,
        aspect_of_kind=ASPECT_OF_KIND,
        stale=[obj for key, obj in children.items() if key not in wanted],
        remove=_remover(client, product, cache),
        later_kinds=(BOUND_LATER,),
        live=live if drift else None,
        on_applied=applied_to_cache,
    )
    # The Jobs as they are now: listed ones minus the removed, plus the ones just created.
    listed = {key_of(job) for job in jobs}
    jobs = [job for job in jobs if key_of(job) in result.objects or key_of(job) not in children]
    jobs += [obj for key, obj in result.objects.items() if key[0] == "Job" and key not in listed]
    refused = [*held.refused.values(), *((STORAGE_READY, m) for m in volumes.failures)]
    for aspect, message in refused:
        result.failures[aspect] = "; ".join(filter(None, [result.failures.get(aspect), message]))
    conflicts = _by_aspect(held.conflicts.values())
    choice = stores.result.choice if stores and stores.result else None
    observed = await observe_pipelines(ctx, product, Observed(result.objects, jobs), choice)
    status = compute_status(
        product,
        observed,
        failures=Failures(result.failures, conflicts),
        prometheus_available=prometheus,
        now=now,
        store=stores.result if stores else None,
        inputs=inputs,
        access=access,
    )
    runs = tuple(new_runs(product, observed))
    return status, Converged(result, conflicts, tuple(volumes.notes), runs)


def _is_run_job(ref: ObjectRef) -> bool:
    """A run's Job (the only Jobs a product has): made for each run request and deleted past
    the newest few, without an Event each; the run shows in the status (``lastRun``), its
    failure in a Warning Event, and the Job carries the Job controller's own Events."""
    return ref.kind == "Job"


def wire_inputs(stores: StoreWork | None, inputs: list[InputCheck] | None) -> StoreWiring:
    """The store wiring, with the inputs (other products' tables, the claims of files) once
    every one is ready (InputsReady): a pipeline never runs with some of its inputs."""
    wiring = stores.wiring if stores else StoreWiring()
    if not all(check.ready for check in inputs or []):
        return wiring
    tables = [
        InputWiring(check.name, check.table, check.secret)
        for check in inputs or []
        if check.table is not None and check.secret is not None
    ]
    claims = frozenset(check.claim for check in inputs or [] if check.claim is not None)
    return replace(wiring, inputs=tuple(tables), claims=claims)


async def check_product_inputs(ctx: ProductContext, product: DataProduct) -> list[InputCheck]:
    """The product's inputs from other products and its files on claims, checked against those
    products and claims as the API server's watch cache has them."""
    keys = {
        upstream_key(product, ref) for source in product.spec.inputs if (ref := source.data_product)
    }
    upstreams: dict[ProductKey, DataProduct | None] = {}
    for key in sorted(keys):
        body = await ctx.client.get(product_path(*key), not_older_than="0")
        try:
            upstreams[key] = DataProduct.from_object(body) if body else None
        except ValidationError:
            upstreams[key] = None
    claims = KNOWN_RESOURCES[("v1", "PersistentVolumeClaim")]
    found = {
        claim: await ctx.client.get(claims.path(product.namespace, claim), not_older_than="0")
        for claim in input_claims(product)
    }
    return check_inputs(product, upstreams, found)


def _claims_missing(status: DataProductStatus) -> bool:
    """Whether InputsReady waits for a claim someone else creates."""
    inputs = next((c for c in status.conditions if c.type == INPUTS_READY), None)
    return inputs is not None and inputs.reason in CLAIM_REASONS


def _input_notes(product: DataProduct, status: DataProductStatus) -> list[Note]:
    """A Warning Event when a file input's claim is newly missing (or another product's)."""
    before = next((c for c in product.status.conditions if c.type == INPUTS_READY), None)
    after = next((c for c in status.conditions if c.type == INPUTS_READY), None)
    if after is None or after.reason not in CLAIM_REASONS:
        return []
    if before is not None and (before.reason, before.message) == (after.reason, after.message):
        return []
    return [Note(WARNING, after.reason, after.message, with_status=True)]


def previous_store_result(product: DataProduct, choice: StoreChoice) -> StoreResult | None:
    """What the store side last found, from the status (a refresh does not ask the store)."""
    if not choice.store_ports:
        return None
    ports = {p.name: p for p in product.status.output_ports if p.endpoint is not None}
    storage = next((c for c in product.status.conditions if c.type == STORAGE_READY), None)
    failing = (
        storage is not None
        and storage.status.value == "False"
        and storage.reason in (STORE_REASONS)
    )
    return StoreResult(
        choice,
        ports=ports,
        reason=storage.reason if failing and storage else None,
        message=storage.message if failing and storage else "",
    )


# The reasons of StorageReady the store side gives (kept by a refresh).
STORE_REASONS = frozenset(
    {
        Reason.STORE_UNAVAILABLE,
        Reason.STORE_NOT_FOUND,
        Reason.STORE_NOT_ALLOWED,
        Reason.SCHEMA_CHANGE_REFUSED,
        Reason.CREDENTIALS_UNREADABLE,
        Reason.AUTHENTICATION_FAILED,
        Reason.PRIVILEGE_MISSING,
    }
)


async def refresh_status(
    ctx: ProductContext,
    product: DataProduct,
    *,
    prometheus: bool,
    now: str,
    access: ProductAccessStatus | None = None,
) -> tuple[DataProductStatus, bool, tuple[ObservedRun, ...]]:
    """The status from the children as they are, without applying anything; whether a
    reconcile has volumes to patch (a claim of a Retain port just bound, say); and the runs that
    started or ended since the last status."""
    children, jobs = await observe(
        ctx.client, product.namespace, product.name, prometheus=prometheus, cache=ctx.cache
    )
    # A failure to apply or a name conflict stays reported until the next reconcile of this
    # generation clears it.
    current = [c for c in product.status.conditions if c.observed_generation == product.generation]
    still_failing = {c.type: c.message for c in current if c.reason == Reason.APPLY_FAILED}
    conflicts = {c.type: c.message for c in current if c.reason == Reason.NAME_CONFLICT}
    choice = choose_store(product, ctx.mesh.data_stores)
    observed = await observe_pipelines(ctx, product, Observed(children, jobs), choice)
    status = compute_status(
        product,
        observed,
        failures=Failures(still_failing, conflicts),
        prometheus_available=prometheus,
        now=now,
        store=previous_store_result(product, choice),
        inputs=await check_product_inputs(ctx, product),
        access=access,
    )
    runs = tuple(new_runs(product, observed))
    return status, pending_volume_work(ctx, product, children), runs


async def observe_pipelines(
    ctx: ProductContext, product: DataProduct, observed: Observed, choice: StoreChoice | None
) -> Observed:
    """``observed`` with the runs of its Jobs (reports read from the pods of those that just
    ended) and the figures of the store tables those runs wrote."""
    runs = await observe_runs(ctx.client, product, observed.jobs)
    with_runs = replace(observed, runs=runs)
    wanted = stats_wanted(product, new_runs(product, with_runs))
    stats = (
        await read_table_stats(ctx.stores, product, choice, wanted) if choice is not None else {}
    )
    return replace(with_runs, stats=stats)


def runs_in_progress(previous: DataProductStatus, status: DataProductStatus) -> bool:
    """Whether a run is under way that the previous status does not show ended: its status is
    best written once, when it ends (at the latest when the hold ends)."""
    before = {p.name: p.last_run for p in previous.pipelines}
    for pipeline in status.pipelines:
        run = pipeline.last_run
        if run is None or run.result is not RunStatus.RUNNING:
            continue
        old = before.get(pipeline.name)
        if old is None or old.job_name != run.job_name or old.result is RunStatus.RUNNING:
            return True
    return False


def _claims_pending(status: DataProductStatus) -> bool:
    """Every claim that is not bound is pending (none lost or missing)."""
    claims = [port for port in status.output_ports if port.claim_name]
    unbound = [port.phase for port in claims if port.phase != "Bound"]
    return bool(unbound) and all(phase == "Pending" for phase in unbound)


def _new_failures(product: DataProduct, converged: Converged) -> list[Note]:
    """An Event per failure and per name conflict that is new: not reported by the previous
    status already."""
    before = {c.type: c for c in product.status.conditions}
    notes = []
    for reason, problems in (
        (Reason.APPLY_FAILED, converged.result.failures),
        (Reason.NAME_CONFLICT, converged.conflicts),
    ):
        for aspect, message in problems.items():
            known = before.get(aspect)
            if known is None or (known.reason, known.message) != (reason, message):
                notes.append(Note(WARNING, reason, f"{aspect}: {message}"))
    return notes


def _compliance_notes(product: DataProduct, status: DataProductStatus) -> list[Note]:
    """A Warning when the product's violations change, a Normal Event when they end."""
    before = next((c for c in product.status.conditions if c.type == POLICY_COMPLIANT), None)
    after = next(c for c in status.conditions if c.type == POLICY_COMPLIANT)
    if after.status.value == "False" and (before is None or before.message != after.message):
        return [Note(WARNING, Reason.POLICY_VIOLATION, after.message, with_status=True)]
    if after.status.value == "True" and before is not None and before.status.value == "False":
        return [Note(NORMAL, Reason.COMPLIANT, after.message, with_status=True)]
    return []


def _follow_ups(
    ctx: ProductContext,
    body: dict[str, Any],
    product: DataProduct,
    status: DataProductStatus,
    violations: list[Violation] | None,
) -> list[FollowUp]:
    """The domain, when what it knows of the product changed (Ready, its readers'
    namespaces); every policy, when the products violating it changed (``violations``: the
    audit's findings, None when the product was not audited)."""
    mesh = ctx.mesh
    follow_ups = []
    known = ProductSummary(
        status.ready,
        # the readers of the spec, and of the access requests as this pass grants them
        frozenset(granted_namespaces({**body, "status": status.to_wire()})),
        hidden=product.spec.discoverability is Discoverability.HIDDEN,
    )
    domain = mesh.domain_of(product.namespace)
    if mesh.domain_products.saw(product.namespace, product.name, known) and domain is not None:
        follow_ups.append(
            FollowUp("DataDomain", "", domain, Want.RECONCILE, DOMAIN_AFTER_PRODUCTS_SECONDS)
        )
    if violations is not None:
        rules = {(violation.policy, violation.rule) for violation in violations}
        if mesh.violations.observe(product.namespace, product.name, rules):
            follow_ups += _policy_statuses(mesh)
    return follow_ups


def _policy_statuses(mesh: MeshState) -> list[FollowUp]:
    return [
        FollowUp("MeshPolicy", "", name, Want.REFRESH, POLICY_STATUS_AFTER_AUDIT_SECONDS)
        for name in sorted(mesh.compiled_policies)
    ]


async def reconcile_data_product(
    ctx: ProductContext, body: dict[str, Any], *, want: Want, now: str
) -> Outcome:
    """One pass over a product: reconcile its children (``want`` RECONCILE, and DRIFT on a drift
    pass) or only compute its status from them (REFRESH); see the module docstring."""
    try:
        product = DataProduct.from_object(body)
    except ValidationError as error:
        return invalid_spec_outcome(body, error, now=now)
    await ctx.mesh.wait_synced()
    domain = ctx.mesh.domain_of(product.namespace)
    mismatch = find_domain_mismatch(product, domain)
    if mismatch is not None:
        return _hold_off(ctx, body, product, mismatch, now=now)
    if domain is not None and not await _onboarded(ctx, product.namespace):
        held = _hold_off(ctx, body, product, not_onboarded(product, domain), now=now, event=False)
        return replace(held, look_again=Want.RECONCILE, look_again_after=ONBOARDING_RECHECK_SECONDS)
    prometheus = await ctx.prometheus_available()
    access = await _product_access(ctx, product, now)
    notes: list[Note] = []
    converged: Converged | None = None
    volume_work = False
    stores: StoreWork | None = None
    runs: tuple[ObservedRun, ...] = ()
    inputs: list[InputCheck] | None = None
    if want & Want.RECONCILE:
        drift = bool(want & Want.DRIFT)
        stores = await _converge_stores(ctx, product, access, now=now)
        inputs = await check_product_inputs(ctx, product)
        status, converged = await converge_children(
            ctx,
            product,
            prometheus=prometheus,
            drift=drift,
            now=now,
            stores=stores,
            inputs=inputs,
            access=access,
        )
    else:
        status, volume_work, runs = await refresh_status(
            ctx, product, prometheus=prometheus, now=now, access=access
        )
    violations = audit_product(product, body, ctx.mesh.audited_policies())
    status = with_compliance(product, status, violations, now=now)
    if ctx.observe_health is not None:
        ctx.observe_health(product, status)
    failures = converged.retried() if converged else {}
    store_failure = _store_failure(stores)
    if store_failure is not None:
        failures = {**failures, STORAGE_READY: store_failure}
    first_status = product.status.observed_generation != product.generation
    if stores is not None:
        notes += stores.notes
        notes += _store_failure_notes(product, stores)
    if converged is not None:
        notes += converged.result.change_notes(routine=_is_run_job)
        notes += converged.volume_notes
        notes += _new_failures(product, converged)
    if converged is not None:
        runs = converged.runs
    notes += _status_notes(product, status, runs)
    await _send_run_events(ctx, product, runs, inputs)
    look_again, recheck = _until_a_grant_ends(
        status, now, *_when_to_look_again(product, status, now=now, volume_work=volume_work)
    )
    follow_ups = _follow_ups(ctx, body, product, status, violations)
    follow_ups += _consumers_to_wire(product, status)
    follow_ups += _requests_granted(product, status)
    follow_ups += [
        FollowUp(DATA_STORE, "", store, Want.REFRESH, STORE_AFTER_PRODUCTS_SECONDS)
        for store in sorted(stores.stores_counted if stores else ())
    ]
    return Outcome(
        subject=body,
        status=status,
        # The claims just created bind in a moment and their events refresh the status then:
        # one first status write instead of "Pending" now and "Bound" right after. A run that
        # started is written when it ends: one status write per run, not one per Job update.
        hold_status=not failures
        and (
            (first_status and _claims_pending(status))
            or (not first_status and runs_in_progress(product.status, status))
        ),
        notes=tuple(notes),
        applied=tuple(converged.result.applied) if converged else (),
        pruned=tuple(converged.result.pruned) if converged else (),
        released=tuple(converged.result.released) if converged else (),
        failures=failures,
        look_again=look_again,
        look_again_after=recheck,
        follow_ups=tuple(follow_ups),
    )


def _status_notes(
    product: DataProduct, status: DataProductStatus, runs: tuple[ObservedRun, ...]
) -> list[Note]:
    """The Events the new status calls for: compliance, inputs, runs, data health, access."""
    notes = [*_compliance_notes(product, status), *_input_notes(product, status)]
    for run in compute_run_events(product.status, status):
        notes.append(Note(WARNING if run.warning else NORMAL, run.reason, run.message, True))
    notes += health_notes(product.status, status, runs)
    notes += access_notes(product, status)
    return notes


async def _product_access(
    ctx: ProductContext, product: DataProduct, now: str
) -> ProductAccessStatus | None:
    """Who reads the product (the spec's readers and the approved requests'), who asks to,
    and the audit trail; None without an access registry (the spec's readers only)."""
    if ctx.access is None:
        return None
    await ctx.access.wait_synced()  # a request not listed yet must not look withdrawn
    requests = ctx.access.requests_for(product.namespace, product.name)
    return compute_product_access(product, requests, parse_time(now) or datetime.now(UTC))


def access_notes(product: DataProduct, status: DataProductStatus) -> list[Note]:
    """An Event on the product for each new step of its access requests (the owners see who
    asks, and what became of it, in their own namespace)."""
    if status.access is None:
        return []
    notes = []
    for record in new_records(product.status.access, status.access):
        message = f"{record.phase.value}: {record.subject} ({record.request})"
        if record.by:
            message += f", by {record.by}"
        if record.note:
            message += f": {record.note}"
        kind = WARNING if record.phase is AccessPhase.PENDING else NORMAL
        notes.append(Note(kind, STEP_REASONS[record.phase], message, with_status=True))
    return notes


def _until_a_grant_ends(
    status: DataProductStatus, now: str, look_again: Want, recheck: float | None
) -> tuple[Want, float | None]:
    """A grant of an access request ends at its expiry, with no event to tell: reconcile then
    (a moment past the second it names)."""
    if status.access is None:
        return look_again, recheck
    ends = next_expiry_seconds(status.access, parse_time(now) or datetime.now(UTC))
    if ends is None:
        return look_again, recheck
    ends += GRANT_END_MARGIN_SECONDS
    return look_again | Want.RECONCILE, ends if recheck is None else min(recheck, ends)


def _requests_granted(product: DataProduct, status: DataProductStatus) -> list[FollowUp]:
    """The requests whose grant this pass put in place or ended: they move on now."""

    def granted(access: ProductAccessStatus | None) -> set[tuple[str, str]]:
        keys = [r.request.partition("/") for r in access.readers if r.request] if access else []
        return {(namespace, name) for namespace, _, name in keys}

    changed = granted(product.status.access) ^ granted(status.access)
    return [
        FollowUp(DATA_ACCESS_REQUEST, namespace, name, Want.RECONCILE)
        for namespace, name in sorted(changed)
    ]


def _when_to_look_again(
    product: DataProduct, status: DataProductStatus, *, now: str, volume_work: bool
) -> tuple[Want, float | None]:
    """What to do next without an event, and when. A refresh applies nothing: a volume to
    patch asks for a reconcile at once. Data ages: look again when a port's data would turn
    stale, with no event to tell; a missing claim of a file input, a while later (a reconcile:
    the pipelines follow the claim)."""
    if volume_work:
        return Want.RECONCILE, None
    recheck = next_health_check(product, status, parse_time(now) or datetime.now(UTC))
    if _claims_missing(status):
        return Want.RECONCILE, min(recheck or CLAIM_RECHECK_SECONDS, CLAIM_RECHECK_SECONDS)
    return (Want.REFRESH if recheck else Want.NOTHING), recheck


async def _send_run_events(
    ctx: ProductContext,
    product: DataProduct,
    runs: tuple[ObservedRun, ...],
    inputs: list[InputCheck] | None,
) -> None:
    """The runs' OpenLineage events, judged against the status as it was (queued: never
    waits); the inputs from other products named as their tables (checked again only when a
    refresh did not)."""
    if ctx.lineage is None or not runs:
        return
    checks = inputs if inputs is not None else await check_product_inputs(ctx, product)
    emit_new_runs(ctx.lineage, product, runs, upstream=input_endpoints(product, checks))


async def _converge_stores(
    ctx: ProductContext, product: DataProduct, access: ProductAccessStatus | None, *, now: str
) -> StoreWork:
    choice = choose_store(product, ctx.mesh.data_stores)
    if ctx.stores is not None:
        scopes = reader_scopes(access.readers) if access else spec_reader_scopes(product)
        work = await converge_store_ports(
            ctx.stores, ctx.mesh, product, choice, readers=scopes, now=now
        )
        placed = len(work.result.ports) if work.result else 0
        store = choice.store.name if choice.store else None
        work.stores_counted = ctx.mesh.place((product.namespace, product.name), store, placed)
        return work
    return StoreWork(
        StoreResult(
            choice,
            reason=Reason.STORE_UNAVAILABLE if choice.store_ports else None,
            message="this operator runs without store drivers",
        )
        if choice.store_ports
        else None,
        StoreWiring(store_ports=frozenset(choice.store_ports)),
    )


def _store_failure(stores: StoreWork | None) -> str | None:
    """The store side's failure to retry with backoff (a refused schema change waits for the
    spec instead: retrying changes nothing)."""
    result = stores.result if stores else None
    if result is None or result.reason in (None, Reason.SCHEMA_CHANGE_REFUSED):
        return None
    if not result.choice.ok:
        return None  # a missing or refusing store: the DataStore's events bring it back
    return result.message


def _store_failure_notes(product: DataProduct, stores: StoreWork) -> list[Note]:
    """A Warning Event when the store side's failure is new."""
    result = stores.result
    if result is None:
        return []
    reason, message = result.reason or result.choice.reason, result.message or result.choice.message
    if reason is None:
        return []
    before = next((c for c in product.status.conditions if c.type == STORAGE_READY), None)
    if before is not None and (before.reason, before.message) == (reason, message):
        return []
    return [Note(WARNING, str(reason), message, with_status=True)]


GRANT_END_MARGIN_SECONDS = 0.5


def _granted_accounts(status: DataProductStatus) -> set[tuple[str, str]]:
    return {
        (grant.namespace, grant.name)
        for port in status.output_ports
        for grant in port.grants
        if grant.namespace is not None
    }


def _consumers_to_wire(product: DataProduct, status: DataProductStatus) -> list[FollowUp]:
    """The products whose pipelines run as a ServiceAccount granted or no longer granted (a
    product's pipelines run as the ServiceAccount of its name): their InputsReady follows."""
    changed = _granted_accounts(product.status) ^ _granted_accounts(status)
    return [
        FollowUp(DATA_PRODUCT, namespace, name, Want.RECONCILE, CONSUMER_AFTER_SECONDS)
        for namespace, name in sorted(changed)
    ]


async def let_go_of_store_ports(ctx: ProductContext, last: dict[str, Any]) -> list[Note]:
    """A deleted product's schema in its store, handled by its deletionPolicy (see
    :func:`~dataproduct_operator.reconcile.stores.release_store_ports`). A store that cannot be
    reached now is tidied by its DataStore's drift pass, which finds schemas of products gone."""
    if ctx.stores is None:
        return []
    try:
        product = DataProduct.from_object(last)
    except ValidationError:
        return []
    choice = choose_store(product, ctx.mesh.data_stores)
    if choice.store is None or not choice.store_ports:
        return []
    try:
        return await release_store_ports(
            # the readers its last status granted: those of access requests too
            ctx.stores,
            ctx.mesh,
            product,
            choice.store,
            readers=granted_scopes(product),
        )
    except StoreError as error:
        logger.warning(
            "DataProduct %s/%s: its store %s is left to the DataStore's drift pass: %s",
            product.namespace,
            product.name,
            choice.store.name,
            error,
        )
        return []


async def _onboarded(ctx: ProductContext, namespace: str) -> bool:
    """Whether the operator has bound its writer role in ``namespace`` (known to the mesh once
    seen; looked up once after a restart)."""
    mesh = ctx.mesh
    if namespace in mesh.onboarded:
        return True
    path = KNOWN_RESOURCES[("rbac.authorization.k8s.io/v1", "RoleBinding")].path(
        namespace, NAMESPACE_WRITER_BINDING
    )
    if await ctx.client.get(path) is None:
        return False
    mesh.onboarded.add(namespace)
    return True


def _hold_off(
    ctx: ProductContext,
    body: dict[str, Any],
    product: DataProduct,
    mismatch: Mismatch,
    *,
    now: str,
    event: bool = True,
) -> Outcome:
    """Report the mismatch (status, and a Warning Event when it is new and ``event``); create
    nothing."""
    status = compute_mismatch_status(product, mismatch, now=now)
    if ctx.observe_health is not None:
        ctx.observe_health(product, status)
    before = next((c for c in product.status.conditions if c.type == READY), None)
    notes = []
    new = before is None or (before.reason, before.message) != mismatch
    if event and new:
        notes.append(Note(WARNING, mismatch.reason, mismatch.message, with_status=True))
    follow_ups = _follow_ups(ctx, body, product, status, None)
    return Outcome(subject=body, status=status, notes=tuple(notes), follow_ups=tuple(follow_ups))


async def release_retained_claims(
    ctx: ProductContext, namespace: str, product_name: str, *, product_uid: str | None
) -> list[ObjectRef]:
    """A product is gone: release its claims kept under ``Retain``; the claims released.

    Those are the claims of ours without an owner reference; every other child names the
    product as its owner, and the garbage collector deletes it with the product.
    """
    children, _ = await observe(
        ctx.client, namespace, product_name, prometheus=False, cache=ctx.cache
    )
    claims = [
        obj
        for (kind, _), obj in children.items()
        if kind == "PersistentVolumeClaim" and not obj["metadata"].get("ownerReferences")
    ]
    released = await gather_limited(
        APPLY_CONCURRENCY,
        *(release_claim(ctx.client, claim, product_uid, ctx.cache) for claim in claims),
    )
    return [ObjectRef.of(claim) for claim, done in zip(claims, released, strict=True) if done]


async def let_go_data_product(
    ctx: ProductContext, namespace: str, name: str, last: dict[str, Any] | None
) -> Outcome:
    """A product deleted (or, from a drift pass, children whose product is gone): release its
    claims kept under Retain, let go of a legacy finalizer, forget the product. ``last``: its
    last body seen, if any.

    Nothing is released when a new product of that name exists: it adopts the claims.
    """
    uid = ((last or {}).get("metadata") or {}).get("uid")
    current = await ctx.client.get(product_path(namespace, name))
    if current is not None:
        again = current["metadata"].get("uid") != uid  # a new product of that name
        if again or not current["metadata"].get("deletionTimestamp"):
            return Outcome()
    released = await release_retained_claims(ctx, namespace, name, product_uid=uid)
    notes = []
    if released:
        message = f"Released {shown(released)}, kept by deletionPolicy Retain"
        notes.append(Note(NORMAL, Reason.RETAINED, message))
    if last is not None:
        notes += await let_go_of_store_ports(ctx, last)
    counted = ctx.mesh.place((namespace, name), None, 0)
    if current is not None:
        # Let go of a deleted product an earlier version held (a conflict if it changed).
        await remove_finalizer(ctx.client, current, LEGACY_FINALIZER)
    if ctx.forget_health is not None:
        ctx.forget_health(namespace, name)
    ctx.name_waits.wait((namespace, name), ())
    mesh = ctx.mesh
    follow_ups = _policy_statuses(mesh) if mesh.violations.forget(namespace, name) else []
    follow_ups += [
        FollowUp(DATA_STORE, "", store, Want.REFRESH, STORE_AFTER_PRODUCTS_SECONDS)
        for store in sorted(counted)
    ]
    domain = mesh.domain_of(namespace)
    if mesh.domain_products.saw(namespace, name, None) and domain is not None:
        follow_ups.append(
            FollowUp("DataDomain", "", domain, Want.RECONCILE, DOMAIN_AFTER_PRODUCTS_SECONDS)
        )
    # The Events are posted on the object as last seen (it may be gone; then they are logged).
    subject = last if uid is not None else None
    return Outcome(subject=subject, notes=tuple(notes), follow_ups=tuple(follow_ups))
