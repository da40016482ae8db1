"""kopf glue for DataProduct (layer ``handlers``, thin).

Create, update, resume and a periodic drift check all call one reconcile; deletion runs the
clean-up behind a finalizer; events of the children (Jobs, CronJobs, claims) refresh the status
of their product without waiting for the timer. Handlers return nothing: a return value would
land in the status.
"""

from __future__ import annotations

import datetime
import functools
import logging
import time
from typing import Any

import kopf

from dataproduct_operator.api.dataproduct import GROUP, PLURAL, VERSION, DataProduct
from dataproduct_operator.constants import (
    FINALIZER,
    KOPF_PREFIX,
    LABEL_MANAGED_BY,
    LABEL_PRODUCT,
    OPERATOR_NAME,
)
from dataproduct_operator.handlers.state import OperatorState
from dataproduct_operator.k8s.events import NORMAL, WARNING, post_event
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.dataproduct import (
    Outcome,
    clean_up_data_product,
    reconcile_data_product,
    refresh_status,
)
from dataproduct_operator.status.dataproduct import compute_run_events

WATCHED_CHILDREN = (
    ("batch", "v1", "jobs"),
    ("batch", "v1", "cronjobs"),
    ("", "v1", "persistentvolumeclaims"),
)
REFRESH_DELAY_SECONDS = 0.3
BACKOFF_SECONDS = 5.0  # before retrying a handler that failed unexpectedly

logger = logging.getLogger(__name__)


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch turning ``old`` status into ``new`` (keys gone become null); {} if equal."""
    patch: dict[str, Any] = {key: value for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old if key not in new})
    return patch


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


async def converge(state: OperatorState, body: dict[str, Any], *, apply: bool) -> None:
    """Reconcile (``apply``) or only refresh the status of one product; write what changed."""
    product = DataProduct.from_object(body)
    path = _product_path(product.namespace, product.name)
    started = time.monotonic()
    prometheus = await state.prometheus_available()
    if apply:
        try:
            outcome = await reconcile_data_product(
                state.client, product, prometheus=prometheus, now=now_rfc3339()
            )
        except ApiError as error:
            state.metrics.reconciles.labels("error").inc()
            raise kopf.TemporaryError(
                f"Reconcile of {product.namespace}/{product.name} failed: {error}", delay=5
            ) from error
        finally:
            state.metrics.reconcile_seconds.observe(time.monotonic() - started)
        state.metrics.reconciles.labels("success").inc()
        for item in outcome.applied:
            state.metrics.applies.labels(item.split(" ", 1)[0]).inc()
        status = outcome.status
    else:
        status = await refresh_status(
            state.client, product, prometheus=prometheus, now=now_rfc3339()
        )
    state.metrics.health.observe(product, status)
    changes = status_patch(dict(body.get("status") or {}), status.to_wire())
    if changes:
        await state.client.merge_patch(f"{path}/status", {"status": changes})
    for run in compute_run_events(product.status, status):
        await _announce(state, body, WARNING if run.warning else NORMAL, run.reason, run.message)
    if apply:
        await _report(state, body, outcome)


async def _reconcile(state: OperatorState, body: kopf.Body) -> None:
    async with state.lock(body.metadata.namespace or "", body.metadata.name or ""):
        await converge(state, dict(body), apply=True)


async def _converge_latest(state: OperatorState, namespace: str, name: str, apply: bool) -> None:
    """Re-read the product; reconcile it (``apply``) or refresh its status from the children.

    Used when a child changed (a child of ours deleted: reconcile) and to retry failures.
    """
    async with state.lock(namespace, name):
        body = await state.client.get(_product_path(namespace, name))
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        generation = body["metadata"].get("generation")
        if (body.get("status") or {}).get("observedGeneration") != generation:
            return  # kopf runs the reconcile of a new generation and writes the status
        await converge(state, body, apply=apply)


def register(registry: kopf.OperatorRegistry, state: OperatorState) -> None:
    """Register every DataProduct handler on ``registry``."""
    resource = (GROUP, VERSION, PLURAL)

    @kopf.on.resume(*resource, backoff=BACKOFF_SECONDS, id="reconcile-on-resume", registry=registry)
    async def on_resume(body: kopf.Body, **_: Any) -> None:
        await _reconcile(state, body)

    @kopf.on.create(*resource, backoff=BACKOFF_SECONDS, id="reconcile-on-create", registry=registry)
    async def on_create(body: kopf.Body, **_: Any) -> None:
        await _reconcile(state, body)

    @kopf.on.update(*resource, backoff=BACKOFF_SECONDS, id="reconcile-on-update", registry=registry)
    async def on_update(body: kopf.Body, **_: Any) -> None:
        await _reconcile(state, body)

    @kopf.timer(
        *resource,
        id="drift-check",
        interval=state.config.drift_interval_seconds,
        initial_delay=state.config.drift_interval_seconds,
        idle=state.config.drift_interval_seconds / 2,
        registry=registry,
    )
    async def drift_check(body: kopf.Body, **_: Any) -> None:
        await _reconcile(state, body)

    @kopf.on.delete(*resource, backoff=BACKOFF_SECONDS, id="clean-up", registry=registry)
    async def on_delete(body: kopf.Body, **_: Any) -> None:
        product = DataProduct.from_object(dict(body))
        async with state.lock(product.namespace, product.name):
            outcome = await clean_up_data_product(
                state.client, product, prometheus=await state.prometheus_available()
            )
        state.metrics.health.forget(product.namespace, product.name)
        await _report(state, dict(body), outcome)

    for group, version, plural in WATCHED_CHILDREN:

        @kopf.on.event(
            group,
            version,
            plural,
            labels={LABEL_PRODUCT: kopf.PRESENT},
            id=f"follow-{plural}",
            registry=registry,
        )
        async def on_child_event(body: kopf.Body, type: str | None, **_: Any) -> None:
            namespace = body.metadata.namespace
            name = body.metadata.labels.get(LABEL_PRODUCT)
            if not (namespace and name):
                return
            ours = body.metadata.labels.get(LABEL_MANAGED_BY) == OPERATOR_NAME
            apply = type == "DELETED" and ours
            state.schedule(
                (namespace, name, "apply" if apply else "refresh"),
                functools.partial(_converge_latest, state, namespace, name, apply),
                delay=REFRESH_DELAY_SECONDS,
            )


def configure(settings: kopf.OperatorSettings, state: OperatorState) -> None:
    """kopf settings: our finalizer and annotation prefix, quiet events, no peering."""
    settings.persistence.finalizer = FINALIZER
    # A prefix of its own: kopf ignores every annotation under its storage prefix, and the
    # datamesh.dev/run annotation must reach the update handler.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    # kopf's own "Handler succeeded" events would be one write per handler run.
    settings.posting.level = logging.WARNING
    settings.peering.standalone = True
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.batching.worker_limit = state.config.workers
