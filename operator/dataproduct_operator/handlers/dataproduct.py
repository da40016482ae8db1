"""kopf glue for DataProduct (layer ``handlers``, thin).

Level-based on kopf's event handlers only: an event of a product calls the one reconcile when
it brings something not reconciled yet (a new product, every product when the operator starts,
a new generation of the spec, a new run request), and one periodic drift check reconciles every
product. No finalizer holds a product: the garbage collector deletes its children, and its
retained claims are released when it is gone. kopf's create/update/delete handlers are not
used: they would write a diff-base annotation on every change, a write per product that
level-based handling does not need. Events of the children (Jobs, CronJobs, claims) refresh the
status of their product at once. Every DataDomain and MeshPolicy is watched too: a product is
provisioned only in its domain's namespace (DomainMismatch otherwise), and every reconcile and
refresh audits it against the policies; a new domain reconciles the products of its namespace,
a changed policy re-audits every product. Handlers return nothing: a return value would land in
the status.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

import kopf

from dataproduct_operator.api.dataproduct import (
    GROUP,
    PLURAL,
    VERSION,
    DataProduct,
    DataProductStatus,
)
from dataproduct_operator.constants import (
    ANNOTATION_RUN,
    KOPF_PREFIX,
    LABEL_MANAGED_BY,
    LABEL_PRODUCT,
    LEGACY_FINALIZER,
    OPERATOR_NAME,
)
from dataproduct_operator.handlers.datadomain import index_domain, refresh_domain_soon
from dataproduct_operator.handlers.meshpolicy import (
    POLICY_KIND,
    audited_policies,
    compile_change,
    converge_policy_soon,
    refresh_policy_statuses_soon,
)
from dataproduct_operator.handlers.state import OperatorState
from dataproduct_operator.handlers.status_writes import now_rfc3339, status_patch
from dataproduct_operator.k8s.client import CONNECT_SECONDS, gather_limited
from dataproduct_operator.k8s.events import NORMAL, WARNING, post_event
from dataproduct_operator.k8s.informer import (
    READ_TIMEOUT_SECONDS,
    WATCH_SECONDS,
    ChildCache,
    WatchedObjects,
)
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.datadomain import ProductSummary
from dataproduct_operator.reconcile.dataproduct import (
    CHILD_KINDS,
    NAMED_KINDS,
    Outcome,
    reconcile_data_product,
    refresh_status,
    release_retained_claims,
    remove_legacy_finalizer,
)
from dataproduct_operator.specs.datadomain import granted_namespaces
from dataproduct_operator.status.dataproduct import (
    DOMAIN_MISMATCH,
    compute_mismatch_status,
    compute_run_events,
    find_domain_mismatch,
)
from dataproduct_operator.status.meshpolicy import POLICY_COMPLIANT, audit_product, with_compliance

REFRESH_DELAY_SECONDS = 0.3
DOMAIN_KIND = (f"{GROUP}/{VERSION}", "DataDomain")
BACKOFF_SECONDS = 5.0  # before retrying a handler that failed unexpectedly
DEFERRED_STATUS_SECONDS = 2.0  # first wait for new claims to bind before the status write
MAX_STATUS_WAIT_SECONDS = 30.0  # the status is written then at the latest, bound or not
DRIFT_CONCURRENCY = 4  # products checked at once by the periodic drift check
DRIFT_PAGE = 100  # products listed at a time by the drift check

logger = logging.getLogger(__name__)


def _summary(items: list[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _product_path(namespace: str, name: str) -> str:
    return KNOWN_RESOURCES[(f"{GROUP}/{VERSION}", "DataProduct")].path(namespace, name)


async def _announce(
    state: OperatorState, body: dict[str, Any], kind: str, reason: str, message: str
) -> None:
    """An Event on the product and the same line in the operator's log."""
    metadata = body["metadata"]
    level = logging.WARNING if kind == WARNING else logging.INFO
    logger.log(level, "%s/%s: %s", metadata.get("namespace"), metadata.get("name"), message)
    await post_event(state.client, body, kind, reason, message)


async def _report(state: OperatorState, body: dict[str, Any], outcome: Outcome) -> None:
    """One Event per kind of change, one per failure."""
    if outcome.applied:
        await _announce(state, body, NORMAL, "Applied", f"Applied {_summary(outcome.applied)}")
    if outcome.pruned:
        await _announce(state, body, NORMAL, "Pruned", f"Deleted {_summary(outcome.pruned)}")
    if outcome.released:
        message = f"Released {_summary(outcome.released)}, kept by deletionPolicy Retain"
        await _announce(state, body, NORMAL, "Retained", message)
    metadata = body["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    retry, new_failures = state.record_failures(namespace, name, outcome.failures)
    for aspect, message in new_failures.items():
        await _announce(state, body, WARNING, "ApplyFailed", f"{aspect}: {message}")
    if retry is not None:
        state.schedule(
            (namespace, name, "retry"),
            functools.partial(_converge_latest, state, namespace, name, True),
            delay=retry,
        )


async def converge(
    state: OperatorState, body: dict[str, Any], *, apply: bool, waited: float | None = None
) -> None:
    """Reconcile (``apply``) or only refresh the status of one product; write what changed.

    ``waited``: seconds the first status write has already waited for new claims to bind.
    A product that is not where its domain is gets DomainMismatch instead, and nothing else.
    """
    product = DataProduct.from_object(body)
    mismatch = await _domain_mismatch(state, product)
    if mismatch is not None:
        await _hold_off(state, body, product, mismatch)
        return
    prometheus = await state.prometheus_available()
    outcome = None
    if apply:
        outcome = await _apply_children(state, product, prometheus=prometheus)
        status = outcome.status
        if _binding_new_claims(outcome):
            waited = 0.0
    else:
        status = await refresh_status(
            state.client, product, prometheus=prometheus, now=now_rfc3339(), cache=state.children
        )
    status = await _audited(state, body, product, status)
    state.metrics.health.observe(product, status)
    written = await _write_status(state, body, product, status, refresh=not apply, waited=waited)
    if written:
        await _announce_compliance(state, body, product, status)
    for run in compute_run_events(product.status, status):
        await _announce(state, body, WARNING if run.warning else NORMAL, run.reason, run.message)
    if outcome is not None:
        await _report(state, body, outcome)
    _tell_domain(state, body, status)


def _tell_domain(state: OperatorState, body: dict[str, Any], status: DataProductStatus) -> None:
    """Reconcile the product's domain soon if what it knows of the product changed (whether
    it is Ready, its readers' namespaces)."""
    summary = ProductSummary(status.ready, frozenset(granted_namespaces(body)))
    metadata = body["metadata"]
    if state.domain_products.saw(metadata["namespace"], metadata["name"], summary):
        refresh_domain_soon(state, metadata["namespace"])


async def _audited(
    state: OperatorState, body: dict[str, Any], product: DataProduct, status: DataProductStatus
) -> DataProductStatus:
    """``status`` with the product's PolicyCompliant condition from the MeshPolicies' audit."""
    if state.policies is None:
        raise ApiError(503, "NotStarted", "The MeshPolicies are not watched yet")
    await state.policies.wait_synced()
    violations = audit_product(product, body, audited_policies(state))
    rules = {(violation.policy, violation.rule) for violation in violations}
    if state.metrics.policy_violations.observe(product.namespace, product.name, rules):
        refresh_policy_statuses_soon(state)
    return with_compliance(product, status, violations, now=now_rfc3339())


async def _announce_compliance(
    state: OperatorState, body: dict[str, Any], product: DataProduct, status: DataProductStatus
) -> None:
    """A Warning Event when the product's violations change, a Normal one when they end."""
    before = next((c for c in product.status.conditions if c.type == POLICY_COMPLIANT), None)
    after = next(c for c in status.conditions if c.type == POLICY_COMPLIANT)
    if after.status.value == "False" and (before is None or before.message != after.message):
        await _announce(state, body, WARNING, "PolicyViolation", after.message)
    elif after.status.value == "True" and before is not None and before.status.value == "False":
        await _announce(state, body, NORMAL, "PolicyCompliant", after.message)


async def _domain_mismatch(state: OperatorState, product: DataProduct) -> str | None:
    """Why the product is not in its domain's namespace, or None (see the status layer)."""
    if state.domains is None:
        raise ApiError(503, "NotStarted", "The DataDomains are not watched yet")
    await state.domains.wait_synced()
    return find_domain_mismatch(product, state.domain_of_namespace.get(product.namespace))


async def _hold_off(
    state: OperatorState, body: dict[str, Any], product: DataProduct, message: str
) -> None:
    """Report the mismatch (status, and a Warning Event when it is new); create nothing."""
    status = compute_mismatch_status(product, message, now=now_rfc3339())
    state.metrics.health.observe(product, status)
    await _write_status(state, body, product, status, refresh=False, waited=None)
    _tell_domain(state, body, status)
    before = next((c for c in product.status.conditions if c.type == "Ready"), None)
    if before is None or (before.reason, before.message) != (DOMAIN_MISMATCH, message):
        await _announce(state, body, WARNING, DOMAIN_MISMATCH, message)


async def _apply_children(
    state: OperatorState, product: DataProduct, *, prometheus: bool
) -> Outcome:
    """Converge the children; counted in the metrics."""
    started = time.monotonic()
    try:
        outcome = await reconcile_data_product(
            state.client, product, prometheus=prometheus, now=now_rfc3339(), cache=state.children
        )
    except ApiError:
        state.metrics.reconciles.labels("error").inc()
        raise
    finally:
        state.metrics.reconcile_seconds.observe(time.monotonic() - started)
    state.metrics.reconciles.labels("success").inc()
    for item in outcome.applied:
        state.metrics.applies.labels(item.split(" ", 1)[0]).inc()
    return outcome


async def _write_status(
    state: OperatorState,
    body: dict[str, Any],
    product: DataProduct,
    status: DataProductStatus,
    *,
    refresh: bool,
    waited: float | None,
) -> bool:
    """Write what changed in the status, unless the first status waits for claims to bind;
    whether it wrote."""
    first_status = (body.get("status") or {}).get("observedGeneration") != product.generation
    pending = _claims_pending(status)
    if refresh and waited is None and first_status and pending:
        return False  # one claim bound of several: the deferred first status write is on its way
    if waited is not None and waited < MAX_STATUS_WAIT_SECONDS and pending:
        # The claims just created bind in a moment, and their events refresh the status then:
        # one status write instead of "Pending" now and "Bound" right after. The status is
        # written after MAX_STATUS_WAIT_SECONDS at the latest, bound or not.
        delay = max(DEFERRED_STATUS_SECONDS, waited)
        state.schedule(
            (product.namespace, product.name, "status"),
            functools.partial(
                _converge_latest,
                state,
                product.namespace,
                product.name,
                False,
                waited=waited + delay,
            ),
            delay=delay,
        )
        return False
    state.cancel((product.namespace, product.name, "status"))  # no deferred write needed now
    changes = status_patch(dict(body.get("status") or {}), status.to_wire())
    if changes:
        path = _product_path(product.namespace, product.name)
        written = await state.client.merge_patch(f"{path}/status", {"status": changes})
        state.saw_version(product.namespace, product.name, written["metadata"]["resourceVersion"])
    return bool(changes)


def wants_reconcile(state: OperatorState, body: dict[str, Any], event_type: str | None) -> bool:
    """Whether an event of a product asks for a reconcile.

    Yes on first sight (a new product, or every product when the operator starts), for a
    generation of the spec or a run request not reconciled yet; no for the rest, such as the
    events of our own status writes. What was reconciled is remembered in memory, since an
    event may carry a body from before the status write of that reconcile.
    """
    metadata = body["metadata"]
    if event_type == "DELETED" or metadata.get("deletionTimestamp"):
        return False
    if event_type in (None, "ADDED"):
        return True
    generation = metadata.get("generation")
    run = (metadata.get("annotations") or {}).get(ANNOTATION_RUN)
    handled = state.handled(metadata["namespace"], metadata["name"])
    observed = (body.get("status") or {}).get("observedGeneration")
    if handled is None:
        return observed != generation or run is not None
    return handled != (generation, run)


def _claims_pending(status: DataProductStatus) -> bool:
    """Every claim that is not bound is pending (none lost or missing)."""
    unbound = [port.phase for port in status.output_ports if port.phase != "Bound"]
    return bool(unbound) and all(phase == "Pending" for phase in unbound)


def _binding_new_claims(outcome: Outcome) -> bool:
    created_claims = any(item.startswith("PersistentVolumeClaim ") for item in outcome.applied)
    storage = next((c for c in outcome.status.conditions if c.type == "StorageReady"), None)
    return (
        created_claims
        and not outcome.failures
        and storage is not None
        and storage.reason == "ClaimsNotBound"
    )


async def _let_go(state: OperatorState, body: dict[str, Any]) -> None:
    """A product deleted (or, from the drift check, children whose product is gone): release
    its claims kept under Retain, let go of a legacy finalizer, forget the product.

    Nothing is released when a new product of that name exists: it adopts the claims.
    """
    metadata = body["metadata"]
    namespace, name, uid = metadata["namespace"], metadata["name"], metadata.get("uid")
    async with state.lock(namespace, name):
        current = await state.client.get(_product_path(namespace, name))
        if current is not None:
            again = current["metadata"].get("uid") != uid  # a new product of that name
            if again or not current["metadata"].get("deletionTimestamp"):
                return
        released = await release_retained_claims(
            state.client, namespace, name, product_uid=uid, cache=state.children
        )
        if released and uid is not None:
            message = f"Released {_summary(released)}, kept by deletionPolicy Retain"
            await _announce(state, body, NORMAL, "Retained", message)
        elif released:
            logger.info("%s/%s: Released %s, kept by its deletion", namespace, name, released)
        if current is not None:
            await remove_legacy_finalizer(state.client, current)
    state.metrics.health.forget(namespace, name)
    if state.metrics.policy_violations.forget(namespace, name):
        refresh_policy_statuses_soon(state)
    state.forget(namespace, name)
    if state.domain_products.saw(namespace, name, None):
        refresh_domain_soon(state, namespace)


def _let_go_later(body: dict[str, Any]) -> Callable[[OperatorState, str, str], Awaitable[None]]:
    """The retry of :func:`_let_go` for a product whose last body is all there is."""

    async def again(state: OperatorState, namespace: str, name: str) -> None:
        await _handle_or_retry(state, body, _let_go, _let_go_later(body))

    return again


async def _handle_or_retry(
    state: OperatorState,
    body: dict[str, Any],
    handle: Callable[[OperatorState, dict[str, Any]], Awaitable[None]],
    retry: Callable[[OperatorState, str, str], Awaitable[None]],
) -> None:
    """Handle the product; when the API server fails us, ``retry`` later with a growing delay."""
    metadata = body["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    try:
        await handle(state, body)
    except ApiError as error:
        delay, _ = state.record_failures(namespace, name, {"Handling": str(error)})
        logger.warning("%s/%s: Handling failed, again in %ss: %s", namespace, name, delay, error)
        state.schedule(
            (namespace, name, "retry"),
            functools.partial(retry, state, namespace, name),
            delay=delay or BACKOFF_SECONDS,
        )


async def _reconcile_latest(state: OperatorState, namespace: str, name: str) -> None:
    """Retry a reconcile that failed, whatever generation the product is at now."""
    await _converge_latest(state, namespace, name, True, any_generation=True)


async def _reconcile(state: OperatorState, body: dict[str, Any]) -> None:
    """Reconcile, the product's lock held by the caller."""
    metadata = body["metadata"]
    await converge(state, body, apply=True)
    run = (metadata.get("annotations") or {}).get(ANNOTATION_RUN)
    state.remember_handled(metadata["namespace"], metadata["name"], metadata.get("generation"), run)


async def _reconcile_locked(state: OperatorState, body: dict[str, Any]) -> None:
    metadata = body["metadata"]
    async with state.lock(metadata["namespace"], metadata["name"]):
        await _handle_or_retry(state, body, _reconcile, _reconcile_latest)


async def _reconcile_pending(state: OperatorState, namespace: str, name: str) -> None:
    """Reconcile with the latest body submitted (see :meth:`OperatorState.submit`)."""
    async with state.lock(namespace, name):
        body = state.take_pending(namespace, name)
        if body is not None:
            await _handle_or_retry(state, body, _reconcile, _reconcile_latest)


async def _converge_latest(
    state: OperatorState,
    namespace: str,
    name: str,
    apply: bool,
    *,
    any_generation: bool = False,
    waited: float | None = None,
) -> None:
    """Re-read the product; reconcile it (``apply``) or refresh its status from the children.

    Used when a child changed (a child of ours deleted: reconcile) and to retry failures. A
    product whose new generation is not reconciled yet is left to the event that brings it,
    unless ``any_generation`` (a retry of that very reconcile).
    """
    async with state.lock(namespace, name, slot=apply):
        # From the API server's watch cache, as new as the last version seen or written.
        latest = state.latest_version(namespace, name)
        body = await state.client.get(_product_path(namespace, name), not_older_than=latest)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        generation = body["metadata"].get("generation")
        handled = state.handled(namespace, name)
        current = (body.get("status") or {}).get("observedGeneration") == generation or (
            handled is not None and handled[0] == generation
        )
        if not (current or any_generation):
            return
        await converge(state, body, apply=apply, waited=waited)


async def dispatch(
    state: OperatorState, body: dict[str, Any], event_type: str | None, *, wait: bool = False
) -> None:
    """What an event (None: first sight or a drift check) of a product calls for, if anything.

    A reconcile is submitted to run soon, unless ``wait`` (the drift check, which paces
    itself): an event handler of kopf then holds neither a slot nor the event's body.
    """
    metadata = body["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    if event_type != "DELETED":
        state.saw_version(namespace, name, metadata.get("resourceVersion"))
    held = LEGACY_FINALIZER in (metadata.get("finalizers") or [])
    if event_type == "DELETED" or (metadata.get("deletionTimestamp") and held):
        await _handle_or_retry(state, body, _let_go, _let_go_later(body))
    elif wants_reconcile(state, body, event_type):
        if wait:
            await _reconcile_locked(state, body)
        else:
            pending = functools.partial(_reconcile_pending, state, namespace, name)
            state.submit(namespace, name, body, pending)


async def drift_checks(state: OperatorState) -> None:
    """Every drift interval, reconcile every product (children changed behind our back).

    A page of products at a time: memory stays bounded however many products there are.
    """
    interval = state.config.drift_interval_seconds
    resource = KNOWN_RESOURCES[(f"{GROUP}/{VERSION}", "DataProduct")]
    paths = [resource.path(ns) for ns in state.config.namespaces] or [resource.path()]
    while True:
        await asyncio.sleep(interval)
        present: set[tuple[str, str]] = set()
        for path in paths:
            async for page in state.client.pages(path, limit=DRIFT_PAGE):
                present.update((p["metadata"]["namespace"], p["metadata"]["name"]) for p in page)
                await gather_limited(
                    DRIFT_CONCURRENCY, *(dispatch(state, body, None, wait=True) for body in page)
                )
        await release_orphans(state, present)


async def release_orphans(state: OperatorState, present: set[tuple[str, str]]) -> None:
    """Children whose product is gone (deleted while the operator was not running): their
    claims kept under Retain are released; the garbage collector deletes the rest."""
    if state.children is None:
        return
    for namespace, name in sorted(state.children.products(managed_by=OPERATOR_NAME) - present):
        body = {"metadata": {"namespace": namespace, "name": name}}
        await _handle_or_retry(state, body, _let_go, _let_go_later(body))


def register(registry: kopf.OperatorRegistry, state: OperatorState) -> None:
    """Register every DataProduct handler on ``registry``."""
    resource = (GROUP, VERSION, PLURAL)

    @kopf.on.event(*resource, id="reconcile", registry=registry)
    async def on_product_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        await dispatch(state, dict(body), type)

    @kopf.on.startup(id="start-watching-children", registry=registry)
    async def start_watching(**_: Any) -> None:
        state.children = ChildCache(
            state.client,
            list(CHILD_KINDS),
            state.config.namespaces,
            on_change=functools.partial(_on_child_change, state),
            name_kinds=NAMED_KINDS,
        )
        state.children.start()
        state.domains = WatchedObjects(
            state.client, DOMAIN_KIND, on_change=functools.partial(_on_domain_change, state)
        )
        state.domains.start()
        state.policies = WatchedObjects(
            state.client, POLICY_KIND, on_change=functools.partial(_on_policy_change, state)
        )
        state.policies.start()
        state.start_background(drift_checks(state))

    @kopf.on.cleanup(id="stop-watching-children", registry=registry)
    async def stop_watching(**_: Any) -> None:
        if state.children is not None:
            await state.children.stop()
        if state.domains is not None:
            await state.domains.stop()
        if state.policies is not None:
            await state.policies.stop()


def _on_policy_change(state: OperatorState, event: str, policy: dict[str, Any]) -> None:
    """A MeshPolicy changed: reconcile it; when its rules changed, audit every product again."""
    changed = compile_change(state, event, policy)
    if event != "DELETED":
        converge_policy_soon(state, policy["metadata"]["name"])
    if changed and event != "LISTED":  # at start every product is reconciled (and audited)
        state.schedule(
            ("", "policies", "audit"),
            functools.partial(_audit_every_product, state),
            delay=REFRESH_DELAY_SECONDS,
        )


async def _audit_every_product(state: OperatorState) -> None:
    """Refresh the status of every product, which audits it against the current policies."""
    resource = KNOWN_RESOURCES[(f"{GROUP}/{VERSION}", "DataProduct")]
    paths = [resource.path(ns) for ns in state.config.namespaces] or [resource.path()]
    for path in paths:
        async for page in state.client.pages(path, limit=DRIFT_PAGE):
            await gather_limited(
                DRIFT_CONCURRENCY,
                *(
                    _converge_latest(
                        state, body["metadata"]["namespace"], body["metadata"]["name"], False
                    )
                    for body in page
                ),
            )
    refresh_policy_statuses_soon(state)


def _on_domain_change(state: OperatorState, event: str, domain: dict[str, Any]) -> None:
    """A DataDomain changed: when the domain of a namespace changed with it, reconcile every
    product there (a DomainMismatch may be over, or begin)."""
    moved = index_domain(state, event, domain)
    if event == "LISTED":
        return  # the initial listing: every product is reconciled at start anyway
    watched = state.config.namespaces
    for namespace in sorted(moved):
        if not watched or namespace in watched:
            state.schedule(
                (namespace, "", "domain-changed"),
                functools.partial(_reconcile_namespace, state, namespace),
                delay=REFRESH_DELAY_SECONDS,
            )


async def _reconcile_namespace(state: OperatorState, namespace: str) -> None:
    resource = KNOWN_RESOURCES[(f"{GROUP}/{VERSION}", "DataProduct")]
    for body in await state.client.list(resource.path(namespace)):
        await dispatch(state, body, None)


def _on_child_change(state: OperatorState, event: str, child: dict[str, Any]) -> None:
    """A child changed: refresh its product's status; a child of ours deleted: reconcile."""
    if event == "LISTED":
        return  # the initial listing: every product is reconciled at start anyway
    metadata = child["metadata"]
    namespace, name = metadata.get("namespace"), (metadata.get("labels") or {}).get(LABEL_PRODUCT)
    if not (namespace and name):
        return
    ours = (metadata.get("labels") or {}).get(LABEL_MANAGED_BY) == OPERATOR_NAME
    apply = event == "DELETED" and ours
    state.schedule(
        (namespace, name, "apply" if apply else "refresh"),
        functools.partial(_converge_latest, state, namespace, name, apply),
        delay=REFRESH_DELAY_SECONDS,
    )


class _NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """Nothing here diffs bodies (no create/update handlers): skip kopf's deep copy of the body
    of every event, a tenth of the operator's time under load."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})


def configure(settings: kopf.OperatorSettings, state: OperatorState) -> None:
    """kopf settings: its annotation prefix, no diff bases, quiet events, no peering."""
    # A prefix of its own: kopf ignores every annotation under its storage prefix, and the
    # datamesh.dev/run annotation must reach the update handler.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = _NoDiffBase(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    # kopf's own "Handler succeeded" events would be one write per handler run.
    settings.posting.level = logging.WARNING
    settings.peering.standalone = True
    settings.scanning.disabled = True
    # kopf's watches as the operator's own (k8s.informer): ended by the server after a few
    # minutes and resumed; given up and resumed when silent (not even a bookmark) for longer
    # than the read timeout; a connection not made in 30 s is tried again.
    settings.watching.server_timeout = WATCH_SECONDS
    settings.watching.client_timeout = WATCH_SECONDS + 60
    settings.watching.connect_timeout = CONNECT_SECONDS
    settings.watching.inactivity_timeout = READ_TIMEOUT_SECONDS
    settings.batching.worker_limit = state.config.workers
