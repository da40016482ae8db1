"""Delivers OpenLineage events to an HTTP endpoint without ever holding up a reconcile
(layer ``openlineage``: the only code that talks to the lineage backend).

:meth:`OpenLineageClient.submit` puts an event in a bounded queue and returns at once; one
background task POSTs the events in order (a run's START before its COMPLETE), retrying a failed
attempt (connection refused or reset, time-out, HTTP 408, 429 or 5xx) after growing delays. When
the queue is full the oldest event gives way to the new one; an event the sink refuses (another
4xx, or a redirect, never followed) or that still fails after every retry is dropped too. Every
drop is counted (``dataproduct_openlineage_events{result="dropped"}``) and logged with why (one
by one up to ten a minute; past that, as a total with the next warning, so a backend away for
long does not flood the log); sent and retried attempts are counted beside it. A backend that
is away costs the operator a full queue's memory at most, never a reconcile's time.

The URL is checked by :func:`~dataproduct_operator.openlineage.endpoint.check_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.catalog.exports.common import EndpointLookup, no_endpoints
from dataproduct_operator.openlineage.endpoint import DEFAULT_NAMESPACE, check_url, shown_url
from dataproduct_operator.openlineage.events import (
    DEFAULT_PRODUCER,
    EventType,
    build_run_event,
    run_transitions,
    transitions_since_status,
    withheld,
)
from dataproduct_operator.status.runs import ObservedRun

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_QUEUE = 1000
STOP_GRACE_SECONDS = 5.0  # what stopping waits for the queue to drain, at most
# The (runId, eventType) pairs remembered so as not to send an event twice: many more than the
# runs that can start or end while one product's status is held.
REMEMBERED_EVENTS = 10000
# Drops logged one by one in a window; the rest are told as a total with the next warning.
DROP_LOGS_PER_WINDOW = 10
DROP_LOG_WINDOW_SECONDS = 60.0
# Answers after which the same request may succeed: the sink was busy, slow or down.
RETRIED_STATUSES = frozenset({408, 429})
_SHOWN_BODY = 200  # of a refusing answer, for the log

SENT, RETRIED, DROPPED = "sent", "retried", "dropped"
RESULTS = (SENT, RETRIED, DROPPED)


@dataclass(frozen=True)
class RetrySchedule:
    """How often and after how long a failed delivery is tried again: ``first_seconds``, then
    twice as long each time up to ``max_seconds``, ``retries`` times at most."""

    retries: int = 6
    first_seconds: float = 1.0
    max_seconds: float = 30.0

    def delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1 for the first)."""
        return float(min(self.max_seconds, self.first_seconds * 2 ** min(retry - 1, 32)))


class _RefusedError(Exception):
    """The sink refused the event for good (a 4xx other than 408 and 429)."""


class OpenLineageClient:
    """Sends run events to one OpenLineage endpoint; see the module docstring.

    ``namespace`` is the OpenLineage namespace of the operator's jobs; ``include_hidden`` lets
    the runs of Hidden products be reported too (by default they never leave the cluster).
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_queue: int = DEFAULT_MAX_QUEUE,
        retry: RetrySchedule | None = None,
        include_hidden: bool = False,
        producer: str = DEFAULT_PRODUCER,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.url = check_url(url)
        self.namespace = namespace
        self.include_hidden = include_hidden
        self.producer = producer
        self.clock = clock
        self.timeout = timeout
        self.retry = retry or RetrySchedule()
        self.max_queue = max_queue
        self.counts = dict.fromkeys(RESULTS, 0)
        self._queue: deque[dict[str, Any]] = deque()
        self._taken: OrderedDict[tuple[str, str], None] = OrderedDict()  # (runId, eventType)
        self._waiting = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: dict[str, Any] | None = None  # out of the queue, being delivered
        self._closing = False
        self._window_began = -DROP_LOG_WINDOW_SECONDS
        self._logged_in_window = 0
        self._unlogged = 0

    # -- in ------------------------------------------------------------------------------------

    def submit(self, event: dict[str, Any]) -> bool:
        """Queue ``event`` for delivery and return at once; when the queue is full, the oldest
        queued event is dropped (counted and logged). An event of a run and type this client
        took before is not sent again (a status written late makes a run look new on each pass
        until then); False for such a repeat."""
        key = (str((event.get("run") or {}).get("runId")), str(event.get("eventType")))
        if key in self._taken:
            return False
        self._taken[key] = None
        if len(self._taken) > REMEMBERED_EVENTS:
            self._taken.popitem(last=False)
        if self._closing:
            self._drop(event, "the operator is stopping")
            return True
        if len(self._queue) >= self.max_queue:
            self._drop(self._queue.popleft(), f"the queue of {self.max_queue} events is full")
        self._queue.append(event)
        self._waiting.set()
        return True

    @property
    def queued(self) -> int:
        return len(self._queue)

    def delivery_counts(self) -> dict[str, int]:
        """Events by result (sent, retried, dropped) so far, for the metrics."""
        return dict(self.counts)

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering (on the running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._deliver_all())
            logger.info("Sending OpenLineage run events to %s", shown_url(self.url))

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Deliver what is queued within ``grace`` seconds (no retry waits past it), then stop;
        what is left is dropped, counted and logged."""
        self._closing = True
        self._waiting.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self._in_flight is not None:
            self._drop(self._in_flight, "the operator stopped before the sink took it")
            self._in_flight = None
        while self._queue:
            self._drop(self._queue.popleft(), "the operator stopped before it was sent")
        if self._unlogged:
            logger.warning("OpenLineage events dropped%s", self._untold())

    # -- delivery ------------------------------------------------------------------------------

    async def _deliver_all(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._waiting.clear()
                    await self._waiting.wait()
                    continue
                self._in_flight = event = self._queue.popleft()
                try:
                    await self._deliver(session, event)
                except Exception as error:  # a bug must not stop delivery for good
                    logger.exception("OpenLineage delivery failed unexpectedly")
                    self._drop(event, f"unexpected {error.__class__.__name__}")
                self._in_flight = None

    async def _deliver(self, session: aiohttp.ClientSession, event: dict[str, Any]) -> None:
        body = json.dumps(event, separators=(",", ":")).encode()
        why, attempts = "", 0
        for attempt in range(self.retry.retries + 1):
            if attempt:
                if self._closing:  # no waiting for a backend that is away while stopping
                    break
                self.counts[RETRIED] += 1
                await asyncio.sleep(self.retry.delay(attempt))
            attempts += 1
            try:
                await self._post(session, body)
            except _RefusedError as refused:
                self._drop(event, str(refused))
                return
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                why = _reason(error)
                logger.debug("OpenLineage event not delivered (attempt %d): %s", attempts, why)
                continue
            self.counts[SENT] += 1
            return
        self._drop(event, f"{why} ({attempts} attempts)")

    async def _post(self, session: aiohttp.ClientSession, body: bytes) -> None:
        headers = {"Content-Type": "application/json"}
        # A redirect is not followed: the events go to the URL given and nowhere else.
        async with session.post(
            self.url, data=body, headers=headers, allow_redirects=False
        ) as response:
            if response.status < 300:
                return
            # Some of the answer, on one line: read no more of it than is shown.
            shown = (await response.content.read(_SHOWN_BODY)).decode(errors="replace")
            text = " ".join(shown.split())
            if response.status in RETRIED_STATUSES or response.status >= 500:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message=text
                )
            raise _RefusedError(f"the sink answered HTTP {response.status}: {text}")

    def _drop(self, event: dict[str, Any], why: str) -> None:
        """Count the drop; log it, unless this window's share of warnings is spent (a
        backend away for long would otherwise flood the log): those are told in a total."""
        self.counts[DROPPED] += 1
        now = time.monotonic()
        if now - self._window_began >= DROP_LOG_WINDOW_SECONDS:
            self._window_began, self._logged_in_window = now, 0
        if self._logged_in_window >= DROP_LOGS_PER_WINDOW:
            self._unlogged += 1
            return
        self._logged_in_window += 1
        job = event.get("job") or {}
        logger.warning(
            "OpenLineage event %s of job %s (run %s) dropped: %s%s",
            event.get("eventType"),
            job.get("name"),
            (event.get("run") or {}).get("runId"),
            why,
            self._untold(),
        )

    def _untold(self) -> str:
        """The drops not logged one by one since the last warning, in words ('' if none)."""
        untold, self._unlogged = self._unlogged, 0
        if not untold:
            return ""
        return f" ({untold} more dropped before it and not logged one by one)"


def _reason(error: BaseException) -> str:
    if isinstance(error, aiohttp.ClientResponseError):
        return f"the sink answered HTTP {error.status}"
    if isinstance(error, TimeoutError):
        return "the sink did not answer in time"
    return f"cannot reach the sink: {error.__class__.__name__}"


def emit_run_events(
    client: OpenLineageClient | None,
    product: DataProduct,
    previous_runs: Iterable[ObservedRun],
    current_runs: Iterable[ObservedRun],
    *,
    upstream: EndpointLookup = no_endpoints,
) -> int:
    """Submit the events of the runs of ``product`` that started or ended between two
    observations (see :func:`~dataproduct_operator.openlineage.events.run_transitions`);
    returns how many were submitted. Nothing without a client, or for a Hidden product unless
    the client includes them. Never blocks."""
    return _submit(client, product, lambda: run_transitions(previous_runs, current_runs), upstream)


def emit_new_runs(
    client: OpenLineageClient | None,
    product: DataProduct,
    runs: Iterable[ObservedRun],
    *,
    upstream: EndpointLookup = no_endpoints,
) -> int:
    """As :func:`emit_run_events`, the previous observation being what ``product``'s status
    shows of each pipeline's last run (see
    :func:`~dataproduct_operator.openlineage.events.transitions_since_status`): ``product`` as
    read before this pass wrote its status."""
    return _submit(client, product, lambda: transitions_since_status(product, runs), upstream)


def _submit(
    client: OpenLineageClient | None,
    product: DataProduct,
    transitions: Callable[[], list[tuple[ObservedRun, EventType]]],
    upstream: EndpointLookup,
) -> int:
    if client is None or withheld(product, include_hidden=client.include_hidden):
        return 0
    submitted = 0
    for run, event_type in transitions():
        try:
            event = build_run_event(
                product,
                run,
                event_type,
                producer=client.producer,
                namespace_for_jobs=client.namespace,
                upstream=upstream,
                event_time=None if (run.start_time or run.completion_time) else client.clock(),
            )
        except ValueError as error:  # a run of a pipeline since removed from the spec, say
            logger.warning(
                "No OpenLineage event for the run %s of DataProduct %s/%s: %s",
                run.job_name,
                product.namespace,
                product.name,
                error,
            )
            continue
        submitted += client.submit(event)
    return submitted
