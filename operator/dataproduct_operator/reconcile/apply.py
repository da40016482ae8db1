"""Apply what differs, prune what is no longer desired: one helper for every kind (layer
``reconcile``, imperative).

The caller observes, builds the desired objects and says which observed objects are stale; this
module decides what to write:

- a desired object is applied when its hash stamp differs from the observed one's (or it is
  missing), and, on a drift pass, when a field it sets was changed by someone else
  (:func:`~dataproduct_operator.specs.drift.drifted_fields`), so a hand edit is undone;
- whether an object not observed may be taken over is the caller's to decide before (for a
  DataProduct's children: :func:`~dataproduct_operator.specs.ownership.refuse_adoption`);
- an object of a kind in ``create_kinds`` that is not observed is created (POST) rather than
  applied: creating needs only ``create``, a server-side apply that creates needs ``patch`` too
  (the operator may create RoleBindings anywhere, but patch them only where it is bound);
- objects are applied in waves (e.g. Roles before the RoleBindings that bind them), a few at a
  time; a failure is recorded against the aspect (condition type) of its kind and the rest go on;
- stale objects are removed by the caller's ``remove`` (deleted, or released when retained).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dataproduct_operator.api.base import ApiModel
from dataproduct_operator.api.conditions import Reason
from dataproduct_operator.constants import LABEL_MANAGED_BY, OPERATOR_NAME
from dataproduct_operator.k8s.client import KubeClient, gather_limited
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.outcome import NORMAL, WARNING, Note, ObjectRef, Outcome, Want
from dataproduct_operator.specs.drift import drifted_fields
from dataproduct_operator.specs.hashing import stamped_hash

APPLY_CONCURRENCY = 8
SHOWN_IN_EVENT = 12  # objects named in one Event
Key = tuple[str, str]  # kind, name
Fetch = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


def key_of(obj: dict[str, Any]) -> Key:
    return obj["kind"], obj["metadata"]["name"]


def is_ours(obj: dict[str, Any]) -> bool:
    return bool((obj["metadata"].get("labels") or {}).get(LABEL_MANAGED_BY) == OPERATOR_NAME)


@dataclass
class Applied:
    """What :func:`apply_and_prune` did; ``objects``: the observed objects, updated with the
    answers of the applies and without the removed ones."""

    objects: dict[Key, dict[str, Any]]
    applied: list[ObjectRef] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # "Kind name (field, ...)" undone drift
    pruned: list[ObjectRef] = field(default_factory=list)
    released: list[ObjectRef] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # aspect -> message

    def fail(self, aspect: str, obj: dict[str, Any], problem: str) -> None:
        message = f"{ObjectRef.of(obj)}: {problem}"
        self.failures[aspect] = "; ".join(filter(None, [self.failures.get(aspect), message]))

    def change_notes(self, routine: Callable[[ObjectRef], bool] | None = None) -> list[Note]:
        """The Events of what was done: drift undone (Warning), applied, deleted, released;
        objects ``routine`` names are made and deleted without an Event of their own."""
        announced = (lambda refs: [r for r in refs if not routine(r)]) if routine else list
        applied, pruned = announced(self.applied), announced(self.pruned)
        notes = []
        if self.restored:
            message = f"Restored {shown(self.restored)}, changed by someone else"
            notes.append(Note(WARNING, Reason.APPLIED, message))
        if applied:
            notes.append(Note(NORMAL, Reason.APPLIED, f"Applied {shown(applied)}"))
        if pruned:
            notes.append(Note(NORMAL, Reason.PRUNED, f"Deleted {shown(pruned)}"))
        if self.released:
            message = f"Released {shown(self.released)}, kept by deletionPolicy Retain"
            notes.append(Note(NORMAL, Reason.RETAINED, message))
        return notes

    def outcome(
        self,
        subject: dict[str, Any],
        status: ApiModel,
        notes: Sequence[Note] = (),
        *,
        look_again_after: float | None = None,
    ) -> Outcome:
        """The outcome of a pass that converged these objects: the status, the Events of what
        was done and failed, then ``notes``; a reconcile again after ``look_again_after``."""
        return Outcome(
            subject=subject,
            status=status,
            notes=(*self.change_notes(), *self.failure_notes(), *notes),
            applied=tuple(self.applied),
            pruned=tuple(self.pruned),
            released=tuple(self.released),
            failures=self.failures,
            look_again=Want.NOTHING if look_again_after is None else Want.RECONCILE,
            look_again_after=look_again_after,
        )

    def failure_notes(self) -> list[Note]:
        """A Warning per aspect that failed."""
        return [
            Note(WARNING, Reason.APPLY_FAILED, f"{aspect}: {message}")
            for aspect, message in self.failures.items()
        ]


def shown(items: Sequence[object], limit: int = SHOWN_IN_EVENT) -> str:
    """``A, B, C and 4 more``: what an Event names."""
    listed = ", ".join(str(item) for item in items[:limit])
    return listed + (f" and {len(items) - limit} more" if len(items) > limit else "")


@dataclass(frozen=True)
class Removal:
    """What removing a stale object did: deleted, released (kept for its users), or nothing
    (it was gone already)."""

    deleted: bool = False
    released: bool = False


async def apply_and_prune(
    client: KubeClient,
    desired: Sequence[dict[str, Any]],
    observed: Mapping[Key, dict[str, Any] | None],
    *,
    aspect_of_kind: Mapping[str, str],
    stale: Iterable[dict[str, Any]] = (),
    remove: Callable[[dict[str, Any]], Awaitable[Removal]] | None = None,
    later_kinds: Sequence[frozenset[str]] = (),
    live: Fetch | None = None,
    on_applied: Callable[[dict[str, Any]], None] | None = None,
    create_kinds: frozenset[str] = frozenset(),
    after_wave: Callable[[Applied], Awaitable[None]] | None = None,
) -> Applied:
    """Converge ``desired`` against ``observed``; see the module docstring.

    ``later_kinds``: waves of kinds applied after every other kind, in order. ``live``: on a
    drift pass, the live object of a desired one whose stamp matches, to compare the fields we
    set. ``on_applied``: told of every answer. ``create_kinds``: kinds created rather than
    applied when not observed. ``after_wave``: awaited after each wave, with what was done so
    far.
    """
    result = Applied(objects={k: v for k, v in observed.items() if v is not None})
    changed = [d for d in desired if stamped_hash(observed.get(key_of(d))) != stamped_hash(d)]
    if live is not None:
        unchanged = [d for d in desired if d not in changed and key_of(d) in result.objects]
        found = await gather_limited(APPLY_CONCURRENCY, *(live(d) for d in unchanged))
        for obj, current in zip(unchanged, found, strict=True):
            fields = [] if current is None else drifted_fields(obj, current)
            if current is None or fields:
                changed.append(obj)
                result.restored.append(f"{ObjectRef.of(obj)} ({', '.join(fields) or 'gone'})")

    async def apply(obj: dict[str, Any]) -> None:
        try:
            if obj["kind"] in create_kinds and key_of(obj) not in result.objects:
                answer = await client.create(obj)
            else:
                answer = await client.apply(obj)
        except ApiError as error:
            result.fail(aspect_of_kind[obj["kind"]], obj, error.message or error.reason)
            return
        answer.setdefault("kind", obj["kind"])
        answer.setdefault("apiVersion", obj["apiVersion"])
        result.objects[key_of(obj)] = answer
        result.applied.append(ObjectRef.of(obj))
        if on_applied is not None:
            on_applied(answer)

    later = set().union(*later_kinds) if later_kinds else set()
    waves = [[obj for obj in changed if obj["kind"] not in later]]
    waves += [[obj for obj in changed if obj["kind"] in kinds] for kinds in later_kinds]
    for wave in waves:
        await gather_limited(APPLY_CONCURRENCY, *(apply(obj) for obj in wave))
        if after_wave is not None:
            await after_wave(result)

    stale = list(stale)
    if stale and remove is not None:
        removals = await gather_limited(APPLY_CONCURRENCY, *(remove(obj) for obj in stale))
        for obj, removal in zip(stale, removals, strict=True):
            if removal.deleted:
                result.pruned.append(ObjectRef.of(obj))
            elif removal.released:
                result.released.append(ObjectRef.of(obj))
            result.objects.pop(key_of(obj), None)
    return result
