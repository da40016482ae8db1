"""Conditions of every kind's status (layer ``status``, pure).

A condition keeps its ``lastTransitionTime`` while its status does not change; ``Ready`` sums
up the aspects: True when every one is, otherwise the reason and message of the first that is
not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataproduct_operator.api.conditions import (
    READY,
    READY_REPEATS,
    Condition,
    ConditionStatus,
    Reason,
    not_ready_reason,
)


@dataclass(frozen=True)
class Aspect:
    """One aspect's state before it becomes a condition."""

    ok: bool | None  # None: Unknown
    reason: str
    message: str


@dataclass(frozen=True)
class Stamp:
    """What every condition of one status write shares."""

    generation: int
    previous: dict[str, Condition]
    now: str


def build_condition(kind: str, aspect: Aspect, stamp: Stamp) -> Condition:
    status = (
        ConditionStatus.UNKNOWN
        if aspect.ok is None
        else ConditionStatus.TRUE
        if aspect.ok
        else ConditionStatus.FALSE
    )
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
    """``Ready`` (``ready`` its message when True), then a condition per aspect, in order.

    Ready False takes the first aspect that is not True, or the first whose reason is one
    Ready repeats (:data:`READY_REPEATS`), which it then takes as its own reason."""
    conditions = [build_condition(kind, aspect, stamp) for kind, aspect in aspects.items()]
    not_ready = [c for c in conditions if c.status is not ConditionStatus.TRUE]
    if not_ready:
        repeated = [c for c in not_ready if c.reason in READY_REPEATS]
        first = (repeated or not_ready)[0]
        reason = first.reason if repeated else not_ready_reason(first.type)
        summary = Aspect(False, reason, f"{first.type}: {first.message}")
    else:
        summary = Aspect(True, Reason.RECONCILED, ready)
    return [build_condition(READY, summary, stamp), *conditions]


def with_ready_false(
    status: dict[str, Any], reason: str, message: str, *, generation: int, now: str
) -> dict[str, Any]:
    """A status as written (wire form, perhaps of an object the models refuse) with its Ready
    condition False for ``reason``, observed for ``generation`` (kstatus then reports the
    object as failed rather than in progress); its other conditions and fields as they were.
    """
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    before = next((c for c in conditions if c.get("type") == READY), None)
    kept = before is not None and before.get("status") == ConditionStatus.FALSE.value
    ready = Condition(
        type=READY,
        status=ConditionStatus.FALSE,
        reason=reason,
        message=message,
        last_transition_time=(before or {}).get("lastTransitionTime") if kept else now,
        observed_generation=generation,
    ).to_wire()
    others = [c for c in conditions if c.get("type") != READY]
    return {**status, "observedGeneration": generation, "conditions": [ready, *others]}
