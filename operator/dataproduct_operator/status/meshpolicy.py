"""MeshPolicy audit and status (layer ``status``, pure).

The audit: every rule of every valid policy whose ``match`` selects the product, evaluated on the
product as stored (``object``; ``oldObject`` null, as on create). A rule that is false, or that
cannot be evaluated for the product, is a violation. The product's ``PolicyCompliant`` condition
lists its violations; it does not change ``Ready`` (the product still works). The policy's own
status: ``Valid`` (every expression compiles), ``Ready`` (enforced at admission: the API server
has type-checked the admission policy without a warning, and it is bound; Audit: at once; never
while every name of the pool of admission policies is taken: ``NoAdmissionSlot``), the name of
its admission policy and the violating products.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataproduct_operator.api.cel import CelError
from dataproduct_operator.api.conditions import POLICY_COMPLIANT, READY, VALID, Reason
from dataproduct_operator.api.dataproduct import DataProduct, DataProductStatus
from dataproduct_operator.api.meshpolicy import (
    MAX_LISTED_VIOLATIONS,
    CompiledPolicy,
    Enforcement,
    MeshPolicyStatus,
)
from dataproduct_operator.status.conditions import Aspect, Stamp, build_condition

MAX_SHOWN = 5  # violations spelled out in a condition message


@dataclass(frozen=True)
class Violation:
    """One rule of one policy that a product does not satisfy."""

    policy: str
    rule: str
    message: str

    def describe(self) -> str:
        return f"{self.policy}/{self.rule}: {self.message}"


def audit_product(
    product: DataProduct, body: dict[str, Any], policies: list[CompiledPolicy]
) -> list[Violation]:
    """Every violation of the product (``body`` as the API server stores it)."""
    variables = {"object": body, "oldObject": None}
    found: list[Violation] = []
    for compiled in sorted(policies, key=lambda c: c.policy.name):
        if compiled.errors or not compiled.policy.spec.match.matches(product):
            continue
        for rule in compiled.rules:
            try:
                if rule.expression.holds(variables):
                    continue
                message = rule.message
                if rule.message_expression is not None:
                    message = rule.message_expression.text(variables)
            except CelError as error:
                message = f"cannot be evaluated for this product: {error}"
            found.append(Violation(compiled.policy.name, rule.name, message))
    return found


def with_compliance(
    product: DataProduct, status: DataProductStatus, violations: list[Violation], *, now: str
) -> DataProductStatus:
    """``status`` with the PolicyCompliant condition for ``violations`` (after the others)."""
    if violations:
        shown = "; ".join(v.describe() for v in violations[:MAX_SHOWN])
        more = f"; and {len(violations) - MAX_SHOWN} more" if len(violations) > MAX_SHOWN else ""
        aspect = Aspect(False, Reason.POLICY_VIOLATED, f"violates {shown}{more}")
    else:
        aspect = Aspect(True, Reason.COMPLIANT, "complies with every MeshPolicy that applies")
    stamp = Stamp(product.generation, {c.type: c for c in product.status.conditions}, now)
    kept = [c for c in status.conditions if c.type != POLICY_COMPLIANT]
    compliant = build_condition(POLICY_COMPLIANT, aspect, stamp)
    return status.model_copy(update={"conditions": [*kept, compliant]})


@dataclass(frozen=True)
class ObservedAdmission:
    """The admission policy as the API server has it (None: not there)."""

    policy: dict[str, Any] | None
    binding: dict[str, Any] | None


def no_slot_message(pool_size: int) -> str:
    """Why a policy to enforce at admission is not: every name of the pool is taken."""
    return (
        f"not enforced: {pool_size} MeshPolicies are enforced at admission, the chart's "
        "policies.maxEnforced: raise it or set one to Audit"
    )


def _admission(
    compiled: CompiledPolicy,
    observed: ObservedAdmission,
    failures: list[str],
    pool_full: int | None,
) -> Aspect:
    enforcement = compiled.policy.spec.enforcement
    if compiled.errors:
        return Aspect(
            False, Reason.RULES_INVALID, "not enforced: a rule does not compile (see Valid)"
        )
    if failures:
        return Aspect(False, Reason.APPLY_FAILED, "; ".join(failures))
    if enforcement is Enforcement.AUDIT:
        return Aspect(True, Reason.AUDITING, "audited by the operator; not enforced at admission")
    if pool_full is not None:
        return Aspect(False, Reason.NO_ADMISSION_SLOT, no_slot_message(pool_full))
    problem = _enforcement_problem(observed)
    if problem is not None:
        return problem
    verb = "refuses" if enforcement is Enforcement.DENY else "warns about"
    return Aspect(True, Reason.ENFORCED, f"the API server {verb} violating creates and updates")


def _enforcement_problem(observed: ObservedAdmission) -> Aspect | None:
    if observed.policy is None:
        return Aspect(
            False, Reason.ADMISSION_POLICY_MISSING, "the ValidatingAdmissionPolicy is missing"
        )
    problem = type_check(observed.policy)
    if problem is None and observed.binding is None:
        message = "the binding of the admission policy is missing"
        return Aspect(False, Reason.ADMISSION_POLICY_MISSING, message)
    return problem


def type_check(admission_policy: dict[str, Any]) -> Aspect | None:
    """What the API server's type check of the admission policy found wrong, or that it has
    not checked it yet; None when it has and found nothing. Only then is the policy bound: an
    expression that fails the check would refuse every product."""
    status = admission_policy.get("status") or {}
    if status.get("observedGeneration") != admission_policy["metadata"].get("generation"):
        return Aspect(
            False,
            Reason.TYPE_CHECK_PENDING,
            "the API server has not checked the admission policy yet",
        )
    warnings = (status.get("typeChecking") or {}).get("expressionWarnings") or []
    if warnings:
        shown = "; ".join(f"{w.get('fieldRef')}: {w.get('warning')}" for w in warnings)
        return Aspect(False, Reason.TYPE_CHECK_FAILED, " ".join(shown.split()))
    return None


def compute_policy_status(
    compiled: CompiledPolicy,
    observed: ObservedAdmission,
    violating: list[str],
    *,
    failures: list[str],
    now: str,
    admission_policy: str | None = None,
    pool_full: int | None = None,
) -> MeshPolicyStatus:
    """The policy's status; ``violating``: namespace/name of every violating product;
    ``failures``: what reconcile could not apply; ``admission_policy``: the name of the pool
    its admission objects take; ``pool_full``: the size of the pool, when every name of it is
    taken by other policies."""
    policy = compiled.policy
    stamp = Stamp(policy.generation, {c.type: c for c in policy.status.conditions}, now)
    if compiled.errors:
        shown = "; ".join(f"rule {rule}: {message}" for rule, message in compiled.errors.items())
        valid = Aspect(False, Reason.COMPILE_ERROR, shown)
    else:
        valid = Aspect(True, Reason.COMPILED, "every expression compiles")
    listed = sorted(violating)
    return MeshPolicyStatus(
        observed_generation=policy.generation,
        conditions=[
            build_condition(READY, _admission(compiled, observed, failures, pool_full), stamp),
            build_condition(VALID, valid, stamp),
        ],
        violations=len(listed),
        violating_products=listed[:MAX_LISTED_VIOLATIONS],
        admission_policy=admission_policy,
    )
