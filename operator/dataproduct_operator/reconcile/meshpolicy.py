"""Converge a MeshPolicy's admission objects (layer ``reconcile``, imperative).

:func:`reconcile_mesh_policy` finds which name of the pool of admission-policy names the policy
holds (the operator's ClusterRole grants it these names only: see
:func:`~dataproduct_operator.specs.meshpolicy.choose_admission_slot`), applies the desired
ValidatingAdmissionPolicy and binding there when their content hash differs or the fields we set
were changed by hand, deletes the policy's when it is Audit only or does not compile, and
computes the status from what the API server reports of the admission policy (its type check)
and from the products the audit found in violation. The binding waits until the API server has
type-checked the admission policy without a warning (and goes while it has not): an expression
that fails there would refuse every product.

Names are handed out one policy at a time (a lock of the process; only the leader reconciles),
from a fresh list of the admission objects, so two policies never share one. When every name is
taken the policy is ``Ready=False, reason=NoAdmissionSlot`` and nothing is written; a name a
policy lets go (deleted, or set to Audit) brings the waiting ones back at once, and they look
again every :data:`NO_SLOT_RECHECK_SECONDS` anyway.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from dataproduct_operator.api.conditions import READY, VALID, Reason
from dataproduct_operator.api.kinds import MESH_POLICY, MESH_POLICY_KIND
from dataproduct_operator.api.meshpolicy import (
    CompiledPolicy,
    MeshPolicy,
    MeshPolicyStatus,
    compile_policy,
)
from dataproduct_operator.constants import DEFAULT_ADMISSION_SLOTS, admission_slot_names
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES, object_path
from dataproduct_operator.reconcile.apply import Removal, apply_and_prune, is_ours
from dataproduct_operator.reconcile.mesh import MeshState
from dataproduct_operator.reconcile.outcome import (
    WARNING,
    FollowUp,
    Note,
    Outcome,
    Want,
    invalid_spec_outcome,
)
from dataproduct_operator.specs.meshpolicy import (
    LABEL_POLICY,
    build_admission_objects,
    choose_admission_slot,
    enforced_at_admission,
)
from dataproduct_operator.status.meshpolicy import (
    ObservedAdmission,
    compute_policy_status,
    type_check,
)

ADMISSION = "admissionregistration.k8s.io/v1"
POLICY, BINDING = "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"
TYPE_CHECK_RECHECK_SECONDS = 2.0  # until the API server has checked the admission policy
NO_SLOT_RECHECK_SECONDS = 30.0  # a policy waiting for a name looks again, freed or not
POLICY_RESOURCE = KNOWN_RESOURCES[MESH_POLICY_KIND]
Slots = dict[str, list[dict[str, Any]]]  # a name of the pool -> the objects of that name


@dataclass(frozen=True)
class PolicyContext:
    """What a policy's reconcile reads besides the policy; ``slots``: the pool of names its
    admission objects may take (the names the chart's ClusterRole grants)."""

    client: KubeClient
    mesh: MeshState
    slots: tuple[str, ...] = admission_slot_names(DEFAULT_ADMISSION_SLOTS)
    # One policy at a time takes a name; the policies waiting for one.
    allocation: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: set[str] = field(default_factory=set)


async def reconcile_mesh_policy(
    ctx: PolicyContext, body: dict[str, Any], *, want: Want, now: str
) -> Outcome:
    """One pass over a policy (every pass reads its admission objects whole)."""
    del want  # every pass is a full one: the pool listed, a few objects
    if body["metadata"].get("deletionTimestamp"):
        ctx.waiting.discard(body["metadata"]["name"])
        return Outcome()  # its admission objects go with it (owned by it)
    try:
        policy = MeshPolicy.from_object(body)
    except ValidationError as error:
        return invalid_spec_outcome(body, error, now=now)
    name = policy.name
    compiled = ctx.mesh.compiled_policies.get(name)
    if compiled is None or (compiled.policy.generation, compiled.policy.uid) != (
        policy.generation,
        policy.uid,
    ):
        compiled = compile_policy(policy)  # the watch has not brought this generation yet
    else:
        compiled = replace(compiled, policy=policy)  # its status as it is now
    async with ctx.allocation:
        return await _converge(ctx, body, policy, compiled, now)


async def _converge(
    ctx: PolicyContext,
    body: dict[str, Any],
    policy: MeshPolicy,
    compiled: CompiledPolicy,
    now: str,
) -> Outcome:
    client, name = ctx.client, policy.name
    slots = await _observe_slots(client, ctx.slots)
    enforced = enforced_at_admission(compiled)
    target = await _take_slot(ctx, slots, name) if enforced else None
    ours = [obj for objects in slots.values() for obj in objects if _holder([obj]) == name]
    found: dict[tuple[str, str], dict[str, Any] | None] = {
        (obj["kind"], obj["metadata"]["name"]): obj for obj in ours
    }
    desired: list[dict[str, Any]] = []
    if target is not None:
        for kind in (POLICY, BINDING):
            found.setdefault((kind, target), None)
        desired = build_admission_objects(compiled.policy, target)
        checked = found[(POLICY, target)]
        if checked is None or type_check(checked) is not None:
            # Bound only once the API server has checked the expressions.
            desired = [obj for obj in desired if obj["kind"] != BINDING]
    wanted = {(obj["kind"], obj["metadata"]["name"]) for obj in desired}
    stale = [obj for key, obj in found.items() if obj and key not in wanted and is_ours(obj)]

    async def live(obj: dict[str, Any]) -> dict[str, Any] | None:
        return found.get((obj["kind"], obj["metadata"]["name"]))  # listed whole just now

    async def remove(obj: dict[str, Any]) -> Removal:
        return Removal(deleted=await client.delete(object_path(obj)))

    result = await apply_and_prune(
        client,
        desired,
        found,
        aspect_of_kind={POLICY: READY, BINDING: READY},
        stale=stale,
        remove=remove,
        later_kinds=(frozenset({BINDING}),),
        live=live,
    )
    failures = list(result.failures.values())
    admission = ObservedAdmission(None, None)
    if target is not None:
        admission = ObservedAdmission(
            result.objects.get((POLICY, target)), result.objects.get((BINDING, target))
        )
        failures += _foreign_labels(admission, name)
    pool_full = len(ctx.slots) if enforced and target is None else None
    status = compute_policy_status(
        compiled,
        admission,
        ctx.mesh.violations.violating(name),
        failures=failures,
        now=now,
        admission_policy=target,
        pool_full=pool_full,
    )
    ready = status.conditions[0]
    notes = _notes(ctx, policy, status)
    pending = ready.reason == Reason.TYPE_CHECK_PENDING
    after = TYPE_CHECK_RECHECK_SECONDS if pending else None
    if pool_full is not None:
        after = NO_SLOT_RECHECK_SECONDS
    outcome = result.outcome(body, status, notes, look_again_after=after)
    if any(ref.kind == POLICY for ref in result.pruned) and ctx.waiting:
        # A name is free: the policies waiting for one try at once.
        follow_ups = tuple(
            FollowUp(MESH_POLICY, "", waiting, Want.RECONCILE) for waiting in sorted(ctx.waiting)
        )
        outcome = replace(outcome, follow_ups=follow_ups)
    return outcome


async def _take_slot(ctx: PolicyContext, slots: Slots, name: str) -> str | None:
    """The name of the pool the policy holds or takes now; None: every one is taken."""
    holders = {slot: _holder(objects) for slot, objects in slots.items()}
    target = choose_admission_slot(ctx.slots, holders, name)
    if target is None:
        for freed in await _free_orphaned_slots(ctx.client, slots, holders):
            del holders[freed]
        target = choose_admission_slot(ctx.slots, holders, name)
    return target


def _notes(ctx: PolicyContext, policy: MeshPolicy, status: MeshPolicyStatus) -> list[Note]:
    """Events for what became wrong in this pass; whether the policy waits for a name."""
    notes = []
    valid = next(c for c in status.conditions if c.type == VALID)
    before = next((c for c in policy.status.conditions if c.type == VALID), None)
    if valid.status.value == "False" and (before is None or before.message != valid.message):
        notes.append(Note(WARNING, Reason.INVALID_EXPRESSION, valid.message, with_status=True))
    ready = status.conditions[0]
    was_ready = next((c for c in policy.status.conditions if c.type == READY), None)
    if ready.reason == Reason.NO_ADMISSION_SLOT:
        ctx.waiting.add(policy.name)
        if was_ready is None or was_ready.reason != ready.reason:
            notes.append(Note(WARNING, Reason.NO_ADMISSION_SLOT, ready.message, with_status=True))
    else:
        ctx.waiting.discard(policy.name)
    return notes


def _holder(objects: list[dict[str, Any]]) -> str | None:
    """The MeshPolicy the objects of one name carry in their label (None: not the operator's)."""
    labels = [obj["metadata"].get("labels") or {} for obj in objects if is_ours(obj)]
    return next((label.get(LABEL_POLICY) for label in labels if label.get(LABEL_POLICY)), None)


async def _observe_slots(client: KubeClient, pool: tuple[str, ...]) -> Slots:
    """The admission objects of every name of the pool that is taken (listed cluster-wide:
    RBAC lets the operator list them all, not read one by name outside the pool)."""
    names = set(pool)
    slots: Slots = {}
    for kind in (POLICY, BINDING):
        for obj in await client.list(KNOWN_RESOURCES[(ADMISSION, kind)].path()):
            if obj["metadata"]["name"] in names:
                slots.setdefault(obj["metadata"]["name"], []).append(obj)
    return slots


async def _free_orphaned_slots(
    client: KubeClient, slots: Slots, holders: dict[str, str | None]
) -> list[str]:
    """Delete the admission objects of names whose MeshPolicy is gone (the garbage collector
    would, later); the names freed."""
    freed = []
    for slot, holder in sorted(holders.items()):
        if holder is None:
            continue
        owner = await client.get(POLICY_RESOURCE.path(name=holder))
        owner_uid = owner["metadata"].get("uid") if owner else None
        objects = slots[slot]
        if any(_owner_uid(obj) in (owner_uid, None) for obj in objects):
            continue  # its policy is there (or the object names none): still held
        for obj in objects:
            await client.delete(object_path(obj), uid=obj["metadata"].get("uid"))
        freed.append(slot)
    return freed


def _owner_uid(obj: dict[str, Any]) -> str | None:
    references = obj["metadata"].get("ownerReferences") or []
    return next((ref.get("uid") for ref in references if ref.get("kind") == MESH_POLICY), None)


def _foreign_labels(admission: ObservedAdmission, name: str) -> list[str]:
    """Read back: the objects written carry this policy's label, so no other takes the name."""
    return [
        f"{obj['kind']} {obj['metadata']['name']} is labelled for MeshPolicy "
        f"{(obj['metadata'].get('labels') or {}).get(LABEL_POLICY)}, not {name}"
        for obj in (admission.policy, admission.binding)
        if obj is not None and (obj["metadata"].get("labels") or {}).get(LABEL_POLICY) != name
    ]
