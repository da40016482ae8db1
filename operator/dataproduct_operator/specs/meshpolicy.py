"""Desired objects of a MeshPolicy (layer ``specs``, pure).

A policy enforced at admission (Deny, Warn) becomes a ValidatingAdmissionPolicy on creates and
updates of DataProducts, one validation per rule, and its binding with the validation action;
``match`` becomes match conditions. Updates that leave the spec as it was (the operator's
finalizer and annotations, a run request) and products being deleted are not checked: a product
made before the policy can always be run and deleted. An Audit policy, or one whose rules do not
compile, has no admission objects: a broken expression must never block every product.

The admission objects take a name of a fixed pool (:func:`choose_admission_slot`), the only
names the chart's ClusterRole lets the operator write; they carry the policy's name in a label,
and every refusal message names the policy and the rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dataproduct_operator.api.dataproduct import PLURAL
from dataproduct_operator.api.kinds import GROUP, VERSION
from dataproduct_operator.api.meshpolicy import (
    KIND,
    CompiledPolicy,
    Enforcement,
    MeshPolicy,
    PolicyRule,
    compile_policy,
)
from dataproduct_operator.constants import LABEL_MANAGED_BY, OPERATOR_NAME
from dataproduct_operator.specs.hashing import stamp_hash
from dataproduct_operator.specs.ownership import controller_reference
from dataproduct_operator.specs.render import render

LABEL_POLICY = f"{GROUP}/mesh-policy"
ACTIONS = {Enforcement.DENY: ["Deny"], Enforcement.WARN: ["Warn"]}


def enforced_at_admission(compiled: CompiledPolicy) -> bool:
    """Whether the policy has admission objects (Deny or Warn, and every rule compiles)."""
    return compiled.policy.spec.enforcement in ACTIONS and not compiled.errors


def choose_admission_slot(
    pool: Sequence[str], holders: Mapping[str, str | None], policy: str
) -> str | None:
    """The name of the pool whose admission objects enforce ``policy``: the first one it holds
    already, else the first free one; None when every name is held. ``holders``: each name
    taken, by the MeshPolicy whose label its objects carry (None: an object the operator did
    not make, never taken over)."""
    held = [slot for slot in pool if slot in holders and holders[slot] == policy]
    if held:
        return held[0]
    return next((slot for slot in pool if slot not in holders), None)


def _quoted(values: list[str]) -> str:
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


def match_conditions(policy: MeshPolicy) -> list[dict[str, str]]:
    match = policy.spec.match
    conditions = [
        {"name": "spec-changed", "expression": (
            "request.operation == 'CREATE' || object.spec != oldObject.spec")},
        {"name": "not-deleted", "expression": "!has(object.metadata.deletionTimestamp)"},
    ]  # fmt: skip
    for field, values in (
        ("domain", match.domains),
        ("lifecycle", [str(value) for value in match.lifecycles]),
        ("classification", [str(value) for value in match.classifications]),
    ):
        if values:
            conditions.append(
                {
                    "name": f"{field}-matches",
                    "expression": f"has(object.spec.{field}) && "
                    f"object.spec.{field} in {_quoted(sorted(values))}",
                }
            )
    return conditions


def _validation(policy: MeshPolicy, rule: PolicyRule) -> dict[str, str]:
    where = f" (MeshPolicy {policy.name}, rule {rule.name})"
    validation = {"expression": rule.expression, "reason": "Invalid"}
    # Always a message: the admission policy's own name (a name of the pool) says nothing.
    shown = rule.message or "failed expression: " + " ".join(rule.expression.split())
    validation["message"] = shown + where
    if rule.message_expression:
        validation["messageExpression"] = f"({rule.message_expression}) + '{where}'"
    return validation


def build_admission_objects(policy: MeshPolicy, name: str) -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its binding, both named ``name`` (a name of the pool),
    hash-stamped; none for an Audit policy or one that does not compile."""
    actions = ACTIONS.get(policy.spec.enforcement)
    if actions is None or compile_policy(policy).errors:
        return []
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {LABEL_MANAGED_BY: OPERATOR_NAME, LABEL_POLICY: policy.name},
    }
    if policy.uid:
        metadata["ownerReferences"] = [controller_reference(KIND, policy.name, policy.uid)]
    objects = [
        render(
            "validatingadmissionpolicy.yaml.j2",
            metadata=metadata,
            group=GROUP,
            version=VERSION,
            plural=PLURAL,
            match_conditions=match_conditions(policy),
            validations=[_validation(policy, rule) for rule in policy.spec.rules],
        ),
        render(
            "validatingadmissionpolicybinding.yaml.j2",
            metadata=metadata,
            policy_name=name,
            actions=actions,
        ),
    ]
    return [stamp_hash(obj) for obj in objects]
