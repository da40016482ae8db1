"""One kind's controller: events in, passes run, outcomes acted on (layer ``runtime``).

A :class:`Controller` is the same for DataProduct, DataDomain and MeshPolicy; what differs is
its :class:`KindWorker` (which events call for a pass, how a pass is made). Watch events are
triaged into asks on a :class:`~.queue.WorkQueue`; workers (only while this process leads) take
keys one pass at a time and act on the pass's
:class:`~dataproduct_operator.reconcile.outcome.Outcome`:

- the status is merge-patched with what changed, unless the pass holds it back (a first status
  whose claims are about to bind); a held status is written at the latest ``max_hold`` seconds
  after the first hold;
- Events are posted (those that report a status only when that status was written);
- follow-ups are passed on to the controllers of their kinds; failures are retried with a
  capped exponential backoff; ``look_again`` asks come back after their delay.

Every exception of a pass is caught here: classified, logged once with the object named,
counted in ``dataproduct_operator_errors_total{kind,reason}`` and retried with backoff; quiet
classes (the API server away or throttling) are only retried, the others are also surfaced on
the object as Ready False with the message and one Warning Event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.events import post_event
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.outcome import (
    WARNING,
    FollowUp,
    Note,
    Outcome,
    Want,
    failure_outcome,
)
from dataproduct_operator.runtime.backoff import Backoff, BackoffPolicy
from dataproduct_operator.runtime.clock import Clock, rfc3339
from dataproduct_operator.runtime.errors import Classified, ErrorClass, classify
from dataproduct_operator.runtime.queue import FAST, MAIN, WorkQueue

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # namespace ("" for cluster-scoped kinds), name
HOLD_RECHECK_SECONDS = 2.0  # a held status is looked at again after this, then less often


class KindWorker(Protocol):
    """What a controller needs of its kind."""

    kind: str

    def triage(self, event: str | None, body: dict[str, Any]) -> Want:
        """What a watch event calls for (``Want.NOTHING``: nothing)."""
        ...

    async def work(self, key: Key, want: Want, body: dict[str, Any] | None) -> Outcome:
        """One pass; ``body``: the latest body an event brought, if any."""
        ...

    async def fetch(self, key: Key) -> dict[str, Any] | None:
        """The object as it is now (None: gone)."""
        ...

    def status_path(self, key: Key) -> str: ...


@dataclass(frozen=True)
class RetryPolicies:
    quiet: BackoffPolicy  # the API server away, throttling, conflicts
    surfaced: BackoffPolicy  # errors about the object, failed applies


@dataclass(frozen=True)
class Counters:
    """Where a controller counts what it does (the operator's metrics, or nothing)."""

    error: Callable[[str, str], None] = lambda kind, reason: None  # kind, reason
    applied: Callable[[str], None] = lambda kind: None  # kind of the object applied
    passed: Callable[[str, Want, float, bool], None] = lambda kind, want, seconds, ok: None


def describe(key: Key) -> str:
    return f"{key[0]}/{key[1]}" if key[0] else key[1]


class Controller:
    """See the module docstring."""

    def __init__(
        self,
        worker: KindWorker,
        client: KubeClient,
        clock: Clock,
        *,
        leading: asyncio.Event,
        retry: RetryPolicies,
        main_workers: int,
        fast_workers: int,
        max_hold: float,
        follow: Callable[[FollowUp], None],
        counters: Counters | None = None,
    ) -> None:
        self.worker = worker
        self.kind = worker.kind
        self.queue: WorkQueue[Key] = WorkQueue(clock)
        self._client = client
        self._clock = clock
        self._leading = leading
        self._retry = retry
        self._workers = {MAIN: main_workers, FAST: fast_workers}
        self._max_hold = max_hold
        self._follow = follow
        self._counters = counters or Counters()
        self._bodies: dict[Key, dict[str, Any]] = {}  # latest body an event brought, not taken
        self._versions: dict[Key, int] = {}
        self._held_since: dict[Key, float] = {}
        self._backoff: Backoff[Key] = Backoff()
        self._tasks: list[asyncio.Task[None]] = []

    # -- events in -------------------------------------------------------------------------

    def observe(self, event: str | None, body: dict[str, Any]) -> None:
        """A watch event (None: the object as first listed): ask for what it calls for."""
        key = key_of(body)
        if event == "DELETED":
            self._versions.pop(key, None)
            self._held_since.pop(key, None)
            self._backoff.forget(key)
        else:
            self.saw_version(key, body["metadata"].get("resourceVersion"))
        want = self.worker.triage(event, body)
        if want:
            self.submit(key, want, body)

    def submit(
        self, key: Key, want: Want, body: dict[str, Any] | None = None, *, after: float = 0.0
    ) -> None:
        """Ask for a pass over ``key``, with ``body`` (the newest known) if given."""
        if body is not None:
            # Only the latest body of a waiting object is kept, without the managedFields the
            # operator never reads: memory does not grow with a backlog's event bodies.
            metadata = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
            self._bodies[key] = {**body, "metadata": metadata}
        self.queue.add(key, want, after=after)

    async def submit_and_wait(self, bodies: Iterable[dict[str, Any]], want: Want) -> None:
        """Ask for a pass over each object and return once each has had one (drift passes)."""
        waits = []
        for body in bodies:
            key = key_of(body)
            metadata = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
            self._bodies[key] = {**body, "metadata": metadata}
            waits.append(self.queue.add_and_wait(key, want))
        await asyncio.gather(*waits)

    def saw_version(self, key: Key, resource_version: str | None) -> None:
        """A version of the object seen in an event or in the answer to a write of ours."""
        try:
            version = int(resource_version or "")
        except ValueError:
            return
        if version > self._versions.get(key, 0):
            self._versions[key] = version

    def latest_version(self, key: Key) -> str | None:
        """The newest version seen, so a read can ask for nothing older."""
        version = self._versions.get(key)
        return None if version is None else str(version)

    # -- workers ---------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.queue.run_timers(), name=f"{self.kind}-timers"))
        for lane, count in self._workers.items():
            for number in range(count):
                name = f"{self.kind}-{lane}-{number}"
                self._tasks.append(loop.create_task(self._work(lane), name=name))

    async def stop(self) -> None:
        self.queue.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _work(self, lane: str) -> None:
        while True:
            await self._leading.wait()
            key, want = await self.queue.get(lane)
            if not self._leading.is_set():
                self.queue.done(key)
                self.queue.add(key, want)  # kept for when this process leads again
                continue
            try:
                await self.run_pass(key, want)
            finally:
                self.queue.done(key)

    async def run_pass(self, key: Key, want: Want) -> None:
        """One pass over ``key`` and acting on its outcome; never raises (but cancellation)."""
        body = self._bodies.pop(key, None)
        if body is not None and _version(body) < self._versions.get(key, 0):
            # Stashed while a pass was under way, before that pass wrote the status: reading
            # the object again keeps the next pass from acting on what it has replaced.
            body = None
        started = self._clock.monotonic()
        try:
            outcome = await self.worker.work(key, want, body)
            await self._act(key, outcome)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._counters.passed(self.kind, want, self._clock.monotonic() - started, False)
            await self._failed(key, want, body, error)
            return
        self._counters.passed(self.kind, want, self._clock.monotonic() - started, True)
        if outcome.failures:
            delay = self._backoff.next_delay(key, self._retry.surfaced)
            self.queue.add(key, Want.RECONCILE, after=delay)
        else:
            self._backoff.forget(key)
        if outcome.look_again:
            self.queue.add(key, outcome.look_again, after=outcome.look_again_after or 0.0)

    async def _act(self, key: Key, outcome: Outcome) -> None:
        written = False
        subject, status = outcome.subject, outcome.status_wire()
        if subject is not None and status is not None:
            held_for = self._held_for(key) if outcome.hold_status else None
            if held_for is not None and held_for < self._max_hold:
                # Events (a claim bound) ask for the next pass; this is the safety net, less
                # often the longer it waits, and at the latest when the hold ends.
                again = min(max(HOLD_RECHECK_SECONDS, held_for), self._max_hold - held_for)
                self.queue.add(key, Want.REFRESH, after=again)
            else:
                self._held_since.pop(key, None)
                written = await self._write_status(key, subject, status)
        for note in outcome.notes:
            if not note.with_status or written:
                await self._announce(key, subject, note)
        for ref in outcome.applied:
            self._counters.applied(ref.kind)
        for follow_up in outcome.follow_ups:
            self._follow(follow_up)

    def _held_for(self, key: Key) -> float:
        """Seconds the object's status has been held back (0 at the first hold)."""
        now = self._clock.monotonic()
        return now - self._held_since.setdefault(key, now)

    async def _write_status(
        self, key: Key, subject: dict[str, Any], status: dict[str, Any]
    ) -> bool:
        """Merge-patch what changed into the status subresource; whether anything did."""
        changes = status_patch(dict(subject.get("status") or {}), status)
        if not changes:
            return False
        try:
            written = await self._client.merge_patch(
                f"{self.worker.status_path(key)}/status", {"status": changes}
            )
        except ApiError as error:
            if error.status == 404:
                return False  # gone meanwhile: nothing to report on
            raise
        self.saw_version(key, written["metadata"].get("resourceVersion"))
        return True

    async def _announce(self, key: Key, subject: dict[str, Any] | None, note: Note) -> None:
        """The Event on the object and the same line in the log."""
        level = logging.WARNING if note.type == WARNING else logging.INFO
        logger.log(level, "%s %s: %s", self.kind, describe(key), note.message)
        if subject is not None:
            await post_event(self._client, subject, note.type, note.reason, note.message)

    async def _failed(
        self, key: Key, want: Want, body: dict[str, Any] | None, error: Exception
    ) -> None:
        classified = classify(error)
        self._counters.error(self.kind, classified.error_class.value)
        policy = self._retry.quiet if classified.quiet else self._retry.surfaced
        delay = self._backoff.next_delay(key, policy, at_least=classified.retry_after)
        logger.log(
            logging.WARNING if classified.quiet else logging.ERROR,
            "%s %s: %s, again in %.1fs: %s",
            self.kind,
            describe(key),
            classified.error_class.value,
            delay,
            classified.message,
            exc_info=error if classified.error_class is ErrorClass.UNEXPECTED else None,
        )
        if body is not None:
            self._bodies.setdefault(key, body)  # for the retry, unless a newer one came
        self.queue.add(key, want, after=delay)
        if not classified.quiet and not want & Want.LET_GO:
            await self._surface(key, classified)

    async def _surface(self, key: Key, classified: Classified) -> None:
        """Ready False with the error on the object, and one Warning Event when it is new."""
        try:
            body = await self.worker.fetch(key)
            if body is None:
                return
            now = rfc3339(self._clock.time())
            outcome = failure_outcome(
                body, classified.surfaced_reason, classified.message, now=now, retry=False
            )
            await self._act(key, outcome)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the retry already scheduled tries again
            logger.warning(
                "%s %s: could not report the failure on the object: %s",
                self.kind,
                describe(key),
                classify(error).message,
            )


def _version(body: dict[str, Any]) -> int:
    try:
        return int(body["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


def key_of(body: dict[str, Any]) -> Key:
    metadata = body["metadata"]
    return metadata.get("namespace") or "", metadata["name"]


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch turning ``old`` status into ``new`` (keys gone become null); {} if equal."""
    patch: dict[str, Any] = {key: value for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old if key not in new})
    return patch
