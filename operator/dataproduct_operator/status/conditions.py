"""Conditions of every kind's status (layer ``status``, pure).

A condition keeps its ``lastTransitionTime`` while its status does not change; ``Ready`` sums
up the aspects: True when every one is, otherwise the reason and message of the first that is
not.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataproduct_operator.api.conditions import Condition, ConditionStatus

READY = "Ready"


@dataclass(frozen=True)
class Aspect:
    """One aspect's state before it becomes a condition."""

    ok: bool
    reason: str
    message: str


@dataclass(frozen=True)
class Stamp:
    """What every condition of one status write shares."""

    generation: int
    previous: dict[str, Condition]
    now: str


def build_condition(kind: str, aspect: Aspect, stamp: Stamp) -> Condition:
    status = ConditionStatus.TRUE if aspect.ok else ConditionStatus.FALSE
    before = stamp.previous.get(kind)
    kept = before is not None and before.status is status
    return Condition(
        type=kind,
        status=status,
        reason=aspect.reason,
        message=aspect.message,
        last_transition_time=before.last_transition_time if before and kept else stamp.now,
        observed_generation=stamp.generation,
    )


def build_conditions(aspects: dict[str, Aspect], stamp: Stamp, *, ready: str) -> list[Condition]:
    """``Ready`` (``ready`` its message when True), then a condition per aspect, in order."""
    conditions = [build_condition(kind, aspect, stamp) for kind, aspect in aspects.items()]
    not_ready = [c for c in conditions if c.status is not ConditionStatus.TRUE]
    if not_ready:
        first = not_ready[0]
        summary = Aspect(
            False, first.type.removesuffix("Ready") + "NotReady", f"{first.type}: {first.message}"
        )
    else:
        summary = Aspect(True, "Reconciled", ready)
    return [build_condition(READY, summary, stamp), *conditions]
