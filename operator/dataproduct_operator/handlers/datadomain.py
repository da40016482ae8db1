"""kopf glue for DataDomain (layer ``handlers``, thin).

A domain's event reconciles it when it brings a generation not reconciled yet (or on first
sight, which includes every domain when the operator starts); the drift check reconciles every
domain, which also brings its product counts and the readers' namespaces of its network
policies up to date. DataDomains are cluster-scoped: every operator process serves them,
whatever namespaces it watches for products.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from dataproduct_operator.api.datadomain import PLURAL, DataDomain
from dataproduct_operator.api.dataproduct import GROUP, VERSION
from dataproduct_operator.handlers.dataproduct import now_rfc3339, status_patch
from dataproduct_operator.handlers.state import OperatorState
from dataproduct_operator.k8s.events import NORMAL, WARNING, post_event
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.datadomain import reconcile_data_domain

logger = logging.getLogger(__name__)
RESOURCE = KNOWN_RESOURCES[(f"{GROUP}/{VERSION}", "DataDomain")]


async def converge_domain(state: OperatorState, body: dict[str, Any]) -> None:
    """Reconcile one domain, write what changed in its status, say what was done."""
    domain = DataDomain.from_object(body)
    async with state.lock("", f"domain/{domain.name}"):
        outcome = await reconcile_data_domain(state.client, domain, now=now_rfc3339())
        changes = status_patch(dict(body.get("status") or {}), outcome.status.to_wire())
        if changes:
            path = RESOURCE.path(name=domain.name)
            await state.client.merge_patch(f"{path}/status", {"status": changes})
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


async def domain_drift_checks(state: OperatorState) -> None:
    """Every drift interval, reconcile every domain."""
    while True:
        await asyncio.sleep(state.config.drift_interval_seconds)
        for body in await state.client.list(RESOURCE.path()):
            try:
                await converge_domain(state, body)
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
