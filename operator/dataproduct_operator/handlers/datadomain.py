"""kopf glue for DataDomain (layer ``handlers``, thin).

A domain's event reconciles it when it brings a generation not reconciled yet (or on first
sight, which includes every domain when the operator starts); the drift check reconciles every
domain, which also brings its product counts and the readers' namespaces of its network
policies up to date. DataDomains are cluster-scoped: every operator process serves them,
whatever namespaces it watches for products.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

import kopf

from dataproduct_operator.api.datadomain import PLURAL, DataDomain, DataDomainStatus, namespace_of
from dataproduct_operator.api.dataproduct import GROUP, VERSION
from dataproduct_operator.handlers.state import OperatorState
from dataproduct_operator.handlers.status_writes import now_rfc3339, write_status
from dataproduct_operator.k8s.events import NORMAL, WARNING, post_event
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.datadomain import (
    DOMAIN_FINALIZER,
    hold_domain,
    products_of,
    reconcile_data_domain,
    release_domain,
)
from dataproduct_operator.status.datadomain import PASSING_STATES, compute_blocked_status

logger = logging.getLogger(__name__)
RESOURCE = KNOWN_RESOURCES[(f"{GROUP}/{VERSION}", "DataDomain")]
DELETION_RECHECK_SECONDS = 5.0  # a deleted domain that holds products looks again this often
# A domain is reconciled again this long after a product in it changed: its product counts and
# the readers' namespaces of its network policies follow, once for a burst of changes.
REFRESH_AFTER_PRODUCTS_SECONDS = 5.0
# States that pass by themselves: a quota not counted yet, a namespace still being deleted
# (made again once it is gone). The domain looks again this often until they are over.
RECHECK_SECONDS = 1.0


def index_domain(state: OperatorState, event: str, obj: dict[str, Any]) -> set[str]:
    """Keep ``state.domain_of_namespace`` current with a watch event of a DataDomain; the
    namespaces whose domain changed."""
    name = obj["metadata"]["name"]
    before = {ns for ns, domain in state.domain_of_namespace.items() if domain == name}
    after = set() if event == "DELETED" else {namespace_of(obj)}
    for namespace in before - after:
        del state.domain_of_namespace[namespace]
    for namespace in after:
        state.domain_of_namespace[namespace] = name
    return before ^ after


def refresh_domain_soon(state: OperatorState, namespace: str) -> None:
    """A product in ``namespace`` changed: reconcile its domain shortly (once for many)."""
    name = state.domain_of_namespace.get(namespace)
    if name is not None:
        _reconcile_later(state, name, REFRESH_AFTER_PRODUCTS_SECONDS)


def _reconcile_later(state: OperatorState, name: str, delay: float) -> None:
    state.schedule(
        ("", f"domain/{name}", "refresh"),
        functools.partial(_refresh_domain, state, name),
        delay=delay,
    )


async def _refresh_domain(state: OperatorState, name: str) -> None:
    body = state.domains.get(name) if state.domains is not None else None
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    try:
        await converge_domain(state, body)
    except ApiError as error:
        logger.warning("DataDomain %s: reconcile failed: %s", name, error)


async def _write_status(
    state: OperatorState, body: dict[str, Any], status: DataDomainStatus
) -> bool:
    """Write what changed in the domain's status; whether anything did."""
    path = RESOURCE.path(name=body["metadata"]["name"])
    return await write_status(state.client, path, body, status.to_wire())


async def converge_domain(
    state: OperatorState, body: dict[str, Any], *, survey: bool = False
) -> None:
    """Reconcile one domain, write what changed in its status, say what was done.

    Its products as the operator knows them from their reconciles; read from the API server
    when ``survey`` (the drift check), when not known yet, or when this operator does not
    watch the domain's namespace.
    """
    domain = DataDomain.from_object(body)
    watched = not state.config.namespaces or domain.namespace in state.config.namespaces
    async with state.lock("", f"domain/{domain.name}"):
        await hold_domain(state.client, body)
        if state.domains is not None:
            await state.domains.wait_synced()  # every domain's namespace known
        namespace_of = {name: ns for ns, name in state.domain_of_namespace.items()}
        known = state.domain_products.of(domain.namespace) if watched and not survey else None
        started = time.monotonic()
        outcome = await reconcile_data_domain(
            state.client, domain, namespace_of=namespace_of, products=known, now=now_rfc3339()
        )
        if outcome.surveyed is not None and watched:
            state.domain_products.seed(domain.namespace, outcome.surveyed, started)
        await _write_status(state, body, outcome.status)
    if any(c.reason in PASSING_STATES for c in outcome.status.conditions):
        _reconcile_later(state, domain.name, RECHECK_SECONDS)
    for verb, reason, items in (
        ("Applied", "Applied", outcome.applied),
        ("Deleted", "Pruned", outcome.pruned),
    ):
        if items:
            message = f"{verb} {', '.join(items)}"
            logger.info("DataDomain %s: %s", domain.name, message)
            await post_event(state.client, body, NORMAL, reason, message)
    for aspect, message in outcome.failures.items():
        logger.warning("DataDomain %s: %s: %s", domain.name, aspect, message)
        await post_event(state.client, body, WARNING, "ApplyFailed", f"{aspect}: {message}")


async def let_go_when_empty(state: OperatorState, body: dict[str, Any]) -> None:
    """A deleted domain goes once its namespace holds no DataProduct; until then it says so
    (Ready False, DeletionBlocked, an Event when the list changes) and looks again."""
    domain = DataDomain.from_object(body)
    async with state.lock("", f"domain/{domain.name}"):
        products = await products_of(state.client, domain)
        if not products:
            await release_domain(state.client, body)
            logger.info("DataDomain %s: Deleted; namespace %s kept", domain.name, domain.namespace)
            return
        status = compute_blocked_status(domain, products, now=now_rfc3339())
        if await _write_status(state, body, status):
            message = status.conditions[0].message
            logger.warning("DataDomain %s: %s", domain.name, message)
            await post_event(state.client, body, WARNING, "DeletionBlocked", message)
    state.schedule(
        ("", f"domain/{domain.name}", "deletion"),
        functools.partial(_look_again, state, domain.name),
        delay=DELETION_RECHECK_SECONDS,
    )


async def _look_again(state: OperatorState, name: str) -> None:
    body = await state.client.get(RESOURCE.path(name=name))
    if body is not None and body["metadata"].get("deletionTimestamp"):
        await let_go_when_empty(state, body)


async def domain_drift_checks(state: OperatorState) -> None:
    """Every drift interval, reconcile every domain."""
    while True:
        await asyncio.sleep(state.config.drift_interval_seconds)
        for body in await state.client.list(RESOURCE.path()):
            if body["metadata"].get("deletionTimestamp"):
                continue  # looked at by let_go_when_empty
            try:
                await converge_domain(state, body, survey=True)
            except ApiError as error:
                logger.warning(
                    "DataDomain %s: reconcile failed: %s", body["metadata"]["name"], error
                )


def register(registry: kopf.OperatorRegistry, state: OperatorState) -> None:
    """Register every DataDomain handler on ``registry``."""
    handled: dict[str, int] = {}

    @kopf.on.event(GROUP, VERSION, PLURAL, id="reconcile-domain", registry=registry)
    async def on_domain_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        metadata = body["metadata"]
        name, generation = metadata["name"], int(metadata.get("generation") or 0)
        if type == "DELETED":
            handled.pop(name, None)
            return
        if metadata.get("deletionTimestamp"):
            if DOMAIN_FINALIZER in (metadata.get("finalizers") or []):
                await let_go_when_empty(state, dict(body))
            return
        if type not in (None, "ADDED") and handled.get(name) == generation:
            return  # the echo of our own status write, or nothing new
        try:
            await converge_domain(state, dict(body))
        except ApiError as error:
            # kopf retries the event handler; the drift check catches what it does not.
            raise kopf.TemporaryError(f"Reconcile failed: {error}", delay=5) from error
        handled[name] = generation

    @kopf.on.startup(id="start-domain-drift-checks", registry=registry)
    async def start(**_: Any) -> None:
        state.start_background(domain_drift_checks(state))
