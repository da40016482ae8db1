"""Converge a MeshPolicy's admission objects (layer ``reconcile``, imperative).

:func:`reconcile_mesh_policy` observes the ValidatingAdmissionPolicy and its binding (by name),
applies the desired ones whose content hash differs or whose fields we set were changed by hand,
deletes ours when the policy is Audit only or does not compile, and computes the status from
what the API server reports of the admission policy (its type check) and from the products the
audit found in violation. The binding waits until the API server has type-checked the admission
policy without a warning (and goes while it has not): an expression that fails there would
refuse every product.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from dataproduct_operator.api.conditions import READY, VALID, Reason
from dataproduct_operator.api.meshpolicy import MeshPolicy, compile_policy
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES, object_path
from dataproduct_operator.reconcile.apply import Removal, apply_and_prune, is_ours
from dataproduct_operator.reconcile.mesh import MeshState
from dataproduct_operator.reconcile.outcome import (
    WARNING,
    Note,
    Outcome,
    Want,
    invalid_spec_outcome,
)
from dataproduct_operator.specs.meshpolicy import admission_policy_name, build_admission_objects
from dataproduct_operator.status.meshpolicy import (
    ObservedAdmission,
    compute_policy_status,
    type_check,
)

ADMISSION = "admissionregistration.k8s.io/v1"
POLICY, BINDING = "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"
TYPE_CHECK_RECHECK_SECONDS = 2.0  # until the API server has checked the admission policy


@dataclass(frozen=True)
class PolicyContext:
    """What a policy's reconcile reads besides the policy."""

    client: KubeClient
    mesh: MeshState


async def reconcile_mesh_policy(
    ctx: PolicyContext, body: dict[str, Any], *, want: Want, now: str
) -> Outcome:
    """One pass over a policy (every pass reads its admission objects whole)."""
    del want  # every pass is a full one: two objects, read by name
    if body["metadata"].get("deletionTimestamp"):
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
    client = ctx.client
    target = admission_policy_name(compiled.policy)
    found: dict[tuple[str, str], dict[str, Any] | None] = {
        (kind, target): await client.get(KNOWN_RESOURCES[(ADMISSION, kind)].path(name=target))
        for kind in (POLICY, BINDING)
    }
    desired = build_admission_objects(compiled.policy)
    checked = found[(POLICY, target)]
    if checked is None or type_check(checked) is not None:
        # Bound only once the API server has checked the expressions.
        desired = [obj for obj in desired if obj["kind"] != BINDING]
    wanted = {obj["kind"] for obj in desired}
    stale = [obj for (kind, _), obj in found.items() if obj and kind not in wanted and is_ours(obj)]

    async def live(obj: dict[str, Any]) -> dict[str, Any] | None:
        return found.get((obj["kind"], obj["metadata"]["name"]))  # read whole just now

    async def remove(obj: dict[str, Any]) -> Removal:
        return Removal(deleted=await client.delete(object_path(obj)))

    aspect_of_kind = {POLICY: READY, BINDING: READY}
    result = await apply_and_prune(
        client,
        desired,
        found,
        aspect_of_kind=aspect_of_kind,
        stale=stale,
        remove=remove,
        later_kinds=(frozenset({BINDING}),),
        live=live,
    )
    failures = list(result.failures.values())
    status = compute_policy_status(
        compiled,
        ObservedAdmission(
            result.objects.get((POLICY, target)), result.objects.get((BINDING, target))
        ),
        ctx.mesh.violations.violating(name),
        failures=failures,
        now=now,
    )
    notes = []
    valid = next(c for c in status.conditions if c.type == VALID)
    before = next((c for c in policy.status.conditions if c.type == VALID), None)
    if valid.status.value == "False" and (before is None or before.message != valid.message):
        notes.append(Note(WARNING, Reason.INVALID_EXPRESSION, valid.message, with_status=True))
    pending = status.conditions[0].reason == Reason.TYPE_CHECK_PENDING
    after = TYPE_CHECK_RECHECK_SECONDS if pending else None
    return result.outcome(body, status, notes, look_again_after=after)
