"""What one reconcile returns: one typed outcome (layer ``reconcile``).

Every kind's reconcile returns an :class:`Outcome`: the status to write, the Events to post, the
children applied, pruned and released (typed references), what failed (retried with backoff),
when to look again, and work it asks of other objects. The runtime acts on it; nothing of it is
parsed again. :func:`failure_outcome` is the outcome of an object that cannot be reconciled: a
body the models refuse, or an error about the object itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntFlag
from typing import Any

from pydantic import ValidationError

from dataproduct_operator.api.base import ApiModel
from dataproduct_operator.api.conditions import READY, Reason
from dataproduct_operator.status.conditions import with_ready_false

NORMAL = "Normal"
WARNING = "Warning"


class Want(IntFlag):
    """What is asked of an object's next pass; asks for one object merge until it starts."""

    NOTHING = 0
    REFRESH = 1  # compute and write the status from what is observed; apply nothing
    RECONCILE = 2  # apply what differs, prune what is no longer desired, write the status
    DRIFT = 4  # with RECONCILE: also compare the fields we set with the live objects
    LET_GO = 8  # the object is gone: release what outlives it, forget it


@dataclass(frozen=True)
class ObjectRef:
    """One object the operator applied, deleted or released."""

    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectRef:
        metadata = obj["metadata"]
        return cls(obj["kind"], metadata["name"], metadata.get("namespace"))

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Note:
    """An Event to post on the object (and the same line in the log)."""

    type: str  # NORMAL or WARNING
    reason: str
    message: str
    # Posted only when the status it reports is written: a status held back or refused would
    # otherwise announce the same thing again at the next pass.
    with_status: bool = False


@dataclass(frozen=True)
class FollowUp:
    """Work for another object, coalesced with other asks for it."""

    kind: str
    namespace: str
    name: str
    want: Want
    after: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """What one pass over one object did and found; see the module docstring."""

    subject: dict[str, Any] | None = None  # the object as read (None: it is gone)
    status: ApiModel | dict[str, Any] | None = None  # None: leave the status alone
    hold_status: bool = False  # not yet: the runtime writes it later (at the latest after a bound)
    notes: tuple[Note, ...] = ()
    applied: tuple[ObjectRef, ...] = ()
    pruned: tuple[ObjectRef, ...] = ()
    released: tuple[ObjectRef, ...] = ()
    failures: Mapping[str, str] = field(default_factory=dict)  # aspect -> message; retried
    look_again: Want = Want.NOTHING
    look_again_after: float | None = None
    follow_ups: tuple[FollowUp, ...] = ()

    def status_wire(self) -> dict[str, Any] | None:
        if self.status is None or isinstance(self.status, dict):
            return self.status
        return self.status.to_wire()


def describe_validation_error(error: ValidationError) -> str:
    """``spec.outputPorts[0].storage.size: <what is wrong>; ...`` from a refusal of the models."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        path = ""
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
        problems.append(f"{path or 'the object'}: {item['msg']}")
    return "; ".join(problems)


def failure_outcome(
    body: dict[str, Any], reason: str, message: str, *, now: str, retry: bool
) -> Outcome:
    """Ready False with ``reason`` and ``message`` for the object's current generation, the
    rest of its status as it was, and one Warning Event when that Ready is new."""
    status = dict(body.get("status") or {})
    generation = int((body.get("metadata") or {}).get("generation") or 1)
    written = with_ready_false(status, reason, message, generation=generation, now=now)
    before = next(
        (
            c
            for c in status.get("conditions") or []
            if isinstance(c, dict) and c.get("type") == READY
        ),
        None,
    )
    new = before is None or (before.get("reason"), before.get("message")) != (reason, message)
    notes = (Note(WARNING, reason, message, with_status=True),) if new else ()
    return Outcome(
        subject=body,
        status=written,
        notes=notes,
        failures={READY: message} if retry else {},
    )


def invalid_spec_outcome(body: dict[str, Any], error: ValidationError, *, now: str) -> Outcome:
    """The outcome of a body the models refuse: nothing is done until it changes."""
    message = f"the object does not match the API: {describe_validation_error(error)}"
    return failure_outcome(body, Reason.INVALID_SPEC, message, now=now, retry=False)
