"""Glue for MeshPolicy (layer ``handlers``, thin).

Every MeshPolicy is watched and kept compiled in memory (``state.policies``), for the audit of
each product's reconcile. A policy is reconciled (its admission objects, its status) when it is
first seen or its spec changes, again while the API server has not type-checked its admission
policy yet, shortly after the audit changed the products that violate it, and at every drift
check. A change of a policy's spec re-audits every product (see the DataProduct handlers).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import kopf

from dataproduct_operator.api.dataproduct import GROUP, VERSION
from dataproduct_operator.api.meshpolicy import CompiledPolicy, MeshPolicy, compile_policy
from dataproduct_operator.handlers.state import OperatorState
from dataproduct_operator.handlers.status_writes import now_rfc3339, write_status
from dataproduct_operator.k8s.events import NORMAL, WARNING, post_event
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.meshpolicy import reconcile_mesh_policy
from dataproduct_operator.status.meshpolicy import VALID

logger = logging.getLogger(__name__)
POLICY_KIND = (f"{GROUP}/{VERSION}", "MeshPolicy")
RESOURCE = KNOWN_RESOURCES[POLICY_KIND]
SOON_SECONDS = 0.3
TYPE_CHECK_RECHECK_SECONDS = 2.0  # until the API server has checked the admission policy
STATUS_AFTER_AUDIT_SECONDS = 5.0  # the violation counts follow the audit, once for a burst


def compile_change(state: OperatorState, event: str, obj: dict[str, Any]) -> bool:
    """Keep ``state.compiled_policies`` current with a watch event of a MeshPolicy; whether the
    rules that products are audited with changed."""
    name = obj["metadata"]["name"]
    if event == "DELETED":
        return state.compiled_policies.pop(name, None) is not None
    known = state.compiled_policies.get(name)
    generation = obj["metadata"].get("generation", 1)
    uid = obj["metadata"].get("uid", "")
    if known is not None and (known.policy.generation, known.policy.uid) == (generation, uid):
        return False  # a status write: nothing to audit anew
    state.compiled_policies[name] = compile_policy(MeshPolicy.from_object(obj))
    return True


def audited_policies(state: OperatorState) -> list[CompiledPolicy]:
    return list(state.compiled_policies.values())


def converge_policy_soon(state: OperatorState, name: str, delay: float = SOON_SECONDS) -> None:
    state.schedule(
        ("", f"policy/{name}", "converge"),
        functools.partial(_converge_named, state, name),
        delay=delay,
    )


def refresh_policy_statuses_soon(state: OperatorState) -> None:
    """The audit changed which products violate what: bring every policy's count up to date."""
    state.schedule(
        ("", "policies", "statuses"),
        functools.partial(_converge_all, state),
        delay=STATUS_AFTER_AUDIT_SECONDS,
    )


async def _converge_all(state: OperatorState) -> None:
    for name in sorted(state.compiled_policies):
        await _converge_named(state, name)


async def _converge_named(state: OperatorState, name: str) -> None:
    body = state.policies.get(name) if state.policies is not None else None
    compiled = state.compiled_policies.get(name)
    if body is None or compiled is None:
        return
    try:
        await converge_policy(state, body, compiled)
    except ApiError as error:
        logger.warning("MeshPolicy %s: reconcile failed, again in 5s: %s", name, error)
        converge_policy_soon(state, name, delay=5.0)


async def converge_policy(
    state: OperatorState, body: dict[str, Any], compiled: CompiledPolicy
) -> None:
    """Reconcile one policy, write what changed in its status, say what was done."""
    policy = compiled.policy
    async with state.lock("", f"policy/{policy.name}", slot=False):
        outcome = await reconcile_mesh_policy(
            state.client,
            compiled,
            violating=state.metrics.policy_violations.violating(policy.name),
            now=now_rfc3339(),
        )
        path = RESOURCE.path(name=policy.name)
        await write_status(state.client, path, body, outcome.status.to_wire())
    for verb, reason, items in (
        ("Applied", "Applied", outcome.applied),
        ("Deleted", "Pruned", outcome.pruned),
    ):
        if items:
            await _announce(state, body, NORMAL, reason, f"{verb} {', '.join(items)}")
    for failure in outcome.failures:
        await _announce(state, body, WARNING, "ApplyFailed", failure)
    valid = next(c for c in outcome.status.conditions if c.type == VALID)
    before = next((c for c in policy.status.conditions if c.type == VALID), None)
    if valid.status.value == "False" and (before is None or before.message != valid.message):
        await _announce(state, body, WARNING, "InvalidExpression", valid.message)
    ready = outcome.status.conditions[0]
    if ready.reason == "TypeCheckPending":
        converge_policy_soon(state, policy.name, delay=TYPE_CHECK_RECHECK_SECONDS)


async def _announce(
    state: OperatorState, body: dict[str, Any], kind: str, reason: str, message: str
) -> None:
    level = logging.WARNING if kind == WARNING else logging.INFO
    logger.log(level, "MeshPolicy %s: %s", body["metadata"]["name"], message)
    await post_event(state.client, body, kind, reason, message)


async def policy_drift_checks(state: OperatorState) -> None:
    """Every drift interval, reconcile every policy (admission objects changed by hand)."""
    while True:
        await asyncio.sleep(state.config.drift_interval_seconds)
        await _converge_all(state)


def register(registry: kopf.OperatorRegistry, state: OperatorState) -> None:
    """Register the MeshPolicy background work on ``registry``."""

    @kopf.on.startup(id="start-policy-drift-checks", registry=registry)
    async def start(**_: Any) -> None:
        state.start_background(policy_drift_checks(state))
