"""Converge a MeshPolicy's admission objects (layer ``reconcile``, imperative).

Observe the ValidatingAdmissionPolicy and its binding (by name); server-side apply the desired
ones whose content hash differs, delete ours when the policy is Audit only or does not compile.
The binding waits until the API server has type-checked the admission policy without a warning
(and goes while it has not): an expression that fails there would refuse every product.
compute the status from what the API server reports of the admission policy (its type check)
and from the products the audit found in violation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataproduct_operator.api.meshpolicy import CompiledPolicy, MeshPolicyStatus
from dataproduct_operator.constants import LABEL_MANAGED_BY, OPERATOR_NAME
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.specs.dataproduct import stamped_hash
from dataproduct_operator.specs.meshpolicy import admission_policy_name, build_admission_objects
from dataproduct_operator.status.meshpolicy import (
    ObservedAdmission,
    compute_policy_status,
    type_check,
)

ADMISSION = "admissionregistration.k8s.io/v1"
KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")


@dataclass
class PolicyOutcome:
    """What one reconcile of a policy did and found."""

    status: MeshPolicyStatus
    applied: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def reconcile_mesh_policy(
    client: KubeClient, compiled: CompiledPolicy, *, violating: list[str], now: str
) -> PolicyOutcome:
    name = admission_policy_name(compiled.policy)
    found: dict[str, dict[str, Any] | None] = {
        kind: await client.get(KNOWN_RESOURCES[(ADMISSION, kind)].path(name=name)) for kind in KINDS
    }
    desired = {obj["kind"]: obj for obj in build_admission_objects(compiled.policy)}
    outcome = PolicyOutcome(status=compiled.policy.status)
    for kind in KINDS:
        current, wanted = found[kind], desired.get(kind)
        checked = found[KINDS[0]]
        if kind == KINDS[1] and (checked is None or type_check(checked) is not None):
            wanted = None  # bound only once the API server has checked the expressions
        path = KNOWN_RESOURCES[(ADMISSION, kind)].path(name=name)
        try:
            if wanted is not None and stamped_hash(current) != stamped_hash(wanted):
                found[kind] = await client.apply(wanted)
                outcome.applied.append(f"{kind} {name}")
            elif wanted is None and current is not None and _ours(current):
                await client.delete(path)
                found[kind] = None
                outcome.pruned.append(f"{kind} {name}")
        except ApiError as error:
            outcome.failures.append(f"{kind} {name}: {error.message or error.reason}")
    outcome.status = compute_policy_status(
        compiled,
        ObservedAdmission(found[KINDS[0]], found[KINDS[1]]),
        violating,
        failures=outcome.failures,
        now=now,
    )
    return outcome


def _ours(obj: dict[str, Any]) -> bool:
    return (obj["metadata"].get("labels") or {}).get(LABEL_MANAGED_BY) == OPERATOR_NAME
