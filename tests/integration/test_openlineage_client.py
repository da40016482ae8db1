"""The OpenLineage client against a real HTTP sink on loopback (an aiohttp server in the test)
that validates every event it receives against the vendored OpenLineage schema: failed
attempts retried, a full queue dropping its oldest events (counted and logged), a refusing sink,
stopping while the sink is away; ``submit`` never waits for any of it. And ``dpo run
--openlineage-url`` on the local control plane: the client started, counted and stopped."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.openlineage.client import OpenLineageClient, RetrySchedule
from dataproduct_operator.openlineage.events import EventType, build_run_event
from dataproduct_operator.runner.report import CheckResult, RunReport, RunResult
from dataproduct_operator.status.runs import ObservedRun, RunOutcome
from tests.helpers import example_product, wait_for
from tests.openlineage_schema import run_event_errors
from tests.products import OperatorProcess, free_port, operator_metrics

FAST = RetrySchedule(retries=5, first_seconds=0.02, max_seconds=0.1)
SECONDS = 30.0  # what any wait of these tests may take, at most


@dataclass
class Sink:
    """What the sink received, and how it answers: ``fail_first`` attempts with 503 (or
    ``refuse`` with 400); while ``gate`` is clear, every request waits for it."""

    fail_first: int = 0
    refuse: bool = False
    redirect: bool = False
    redirected: int = 0  # requests that followed a redirect
    attempts: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        await self.gate.wait()
        if request.content_type != "application/json":
            self.errors.append(f"content type {request.content_type}")
        event = json.loads(await request.read())
        self.errors += run_event_errors(event)
        if self.refuse:  # an answer of two lines: the log shows it on one
            return web.Response(status=400, text="event refused:\nunknown producer")
        if self.redirect:
            raise web.HTTPTemporaryRedirect("/elsewhere")
        if self.attempts <= self.fail_first:
            return web.Response(status=503, text="busy")
        self.received.append(event)
        return web.Response(status=201)


@asynccontextmanager
async def running_sink(sink: Sink, *, open_gate: bool = True) -> AsyncIterator[Sink]:
    app = web.Application()
    app.router.add_post("/api/v1/lineage", sink.handle)

    async def elsewhere(_request: web.Request) -> web.Response:
        sink.redirected += 1
        return web.Response(status=201)

    app.router.add_route("*", "/elsewhere", elsewhere)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sink.url = f"http://127.0.0.1:{port}"
    if open_gate:
        sink.gate.set()
    try:
        yield sink
    finally:
        sink.gate.set()
        await runner.cleanup()


async def until(probe: Callable[[], bool]) -> None:
    """Poll ``probe`` until it holds; fail after SECONDS."""
    deadline = time.monotonic() + SECONDS
    while not probe():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def _events(count: int) -> list[dict[str, Any]]:
    """``count`` real events of the example sales/orders' ingest pipeline, each of its own run,
    START and COMPLETE in turn (a COMPLETE with a run report)."""
    product = DataProduct.from_object(example_product())
    began = datetime.now(UTC)
    built = []
    for index in range(count):
        report = RunReport(
            RunResult.SUCCEEDED,
            start_time=began + timedelta(seconds=index),
            completion_time=began + timedelta(seconds=index + 1),
            rows_written=index,
            checks=(CheckResult("required:order_id", "Error", passed=True, violations=0),),
        )
        run = ObservedRun(
            namespace="sales",
            product="orders",
            pipeline="ingest",
            job_name=f"orders-ingest-{index}",
            job_uid=str(uuid.UUID(int=index + 1)),
            outcome=RunOutcome.SUCCEEDED,
            start_time=report.start_time,
            completion_time=report.completion_time,
            nominal_time=None,
            report=report,
            failure=None,
        )
        kind = EventType.START if index % 2 == 0 else EventType.COMPLETE
        built.append(build_run_event(product, run, kind, namespace_for_jobs="test-cluster"))
    return built


def _run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), SECONDS * 2))


def test_failed_attempts_are_retried_until_the_sink_takes_every_event_in_order() -> None:
    events = _events(4)

    async def scenario() -> None:
        async with running_sink(Sink(fail_first=3)) as sink:
            client = OpenLineageClient(sink.url, retry=FAST)
            client.start()
            for event in events:
                client.submit(event)
            await until(lambda: len(sink.received) == len(events))
            await client.stop()
            assert sink.errors == []
            assert [e["run"]["runId"] for e in sink.received] == [e["run"]["runId"] for e in events]
            assert sink.received == events
            assert client.counts == {"sent": 4, "retried": 3, "dropped": 0}
            assert sink.attempts == 7

    _run(scenario)


def test_a_full_queue_drops_its_oldest_events_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = _events(12)

    async def scenario() -> None:
        async with running_sink(Sink(), open_gate=False) as sink:
            client = OpenLineageClient(sink.url, retry=FAST, max_queue=5)
            client.start()
            client.submit(events[0])
            await until(lambda: sink.attempts == 1)  # in flight, held by the sink
            began = time.perf_counter()
            for event in events[1:]:
                client.submit(event)
            submitting = time.perf_counter() - began
            assert submitting < 0.05, f"submit waited: {submitting:.3f} s for 11 events"
            assert client.queued == 5
            assert client.counts["dropped"] == 6
            sink.gate.set()
            await until(lambda: len(sink.received) == 6)
            await client.stop()
            assert sink.errors == []
            # The one in flight, then the newest five: the oldest queued ones gave way.
            assert sink.received == [events[0], *events[7:]]
            assert client.counts == {"sent": 6, "retried": 0, "dropped": 6}

    with caplog.at_level(logging.WARNING, "dataproduct_operator.openlineage.client"):
        _run(scenario)
    drops = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drops) == 6
    assert all("the queue of 5 events is full" in message for message in drops)
    assert "of job sales/orders/ingest" in drops[0]


def _one_event_dropped(sink: Sink, caplog: pytest.LogCaptureFixture) -> dict[str, int]:
    """Send one event to ``sink`` until the client drops it; the client's counts (the sink's
    attempts are in ``sink``, the warnings in ``caplog``)."""
    (event,) = _events(1)
    counts: dict[str, int] = {}

    async def scenario() -> None:
        async with running_sink(sink):
            client = OpenLineageClient(sink.url, retry=FAST)
            client.start()
            client.submit(event)
            await until(lambda: client.counts["dropped"] == 1)
            await client.stop()
            counts.update(client.counts)

    with caplog.at_level(logging.WARNING, "dataproduct_operator.openlineage.client"):
        _run(scenario)
    assert sink.errors == []
    return counts


def test_an_event_the_sink_refuses_is_dropped_at_once_with_the_answer_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink(refuse=True)
    assert _one_event_dropped(sink, caplog) == {"sent": 0, "retried": 0, "dropped": 1}
    assert sink.attempts == 1  # a refusal is not retried
    assert "HTTP 400: event refused: unknown producer" in caplog.text


def test_a_redirect_is_not_followed_the_event_is_dropped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink(redirect=True)
    assert _one_event_dropped(sink, caplog) == {"sent": 0, "retried": 0, "dropped": 1}
    assert (sink.attempts, sink.redirected) == (1, 0)
    assert "the sink answered HTTP 307" in caplog.text


def test_a_sink_that_never_answers_well_costs_the_retries_then_a_counted_drop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink(fail_first=1000)
    counts = _one_event_dropped(sink, caplog)
    assert counts == {"sent": 0, "retried": FAST.retries, "dropped": 1}
    assert sink.attempts == FAST.retries + 1
    assert f"dropped: the sink answered HTTP 503 ({FAST.retries + 1} attempts)" in caplog.text


def test_stopping_while_the_sink_is_away_ends_within_the_grace_and_counts_what_is_left() -> None:
    *events, late = _events(4)
    slow = RetrySchedule(retries=10, first_seconds=5.0, max_seconds=5.0)

    async def scenario() -> None:
        async with running_sink(Sink()) as sink:
            url = sink.url
        # The sink is gone: connections are refused from now on.
        client = OpenLineageClient(url, retry=slow, timeout=1.0)
        client.start()
        for event in events:
            client.submit(event)
        await until(lambda: client.counts["retried"] >= 1)
        began = time.monotonic()
        await client.stop(grace=0.5)
        assert time.monotonic() - began < 2.0
        assert client.counts["dropped"] == 3
        assert client.counts["sent"] == 0
        client.submit(late)  # after stopping: dropped, counted
        assert client.counts["dropped"] == 4

    _run(scenario)


def test_dpo_run_with_an_openlineage_url_exports_its_counts_and_stops_cleanly(
    operator_kubeconfig: Path, tmp_path: Path
) -> None:
    """The real process: the flag reaches the runtime, which starts the client (logged without
    the URL's query), exports its counts, and stops it with the operator."""
    port = free_port()  # nobody listens: no run happens here, so nothing is sent
    process = OperatorProcess(
        operator_kubeconfig,
        tmp_path / "operator.log",
        extra=(
            "--openlineage-url", f"http://127.0.0.1:{port}/api/v1/lineage?token=hunter2",
            "--openlineage-namespace", "test-cluster",
        ),
    )  # fmt: skip
    try:

        def counts() -> dict[str, float] | None:
            try:
                samples = operator_metrics(process).get("dataproduct_openlineage_events_total")
            except OSError:
                return None  # not serving yet
            return {dict(labels)["result"]: value for labels, value in (samples or {}).items()}

        assert wait_for(counts, timeout=120) == {"sent": 0, "retried": 0, "dropped": 0}
    finally:
        assert process.stop() in (0, -15)
    log = (tmp_path / "operator.log").read_text()
    assert f"Sending OpenLineage run events to http://127.0.0.1:{port}/api/v1/lineage" in log
    assert "hunter2" not in log
    assert "Traceback" not in log


def test_an_event_that_cannot_be_sent_is_dropped_and_delivery_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = _events(2)
    broken = {  # not JSON: a defect, not the sink's
        **good[0],
        "run": {"runId": str(uuid.uuid4())},
        "eventTime": datetime.now(UTC),
    }

    async def scenario() -> None:
        async with running_sink(Sink()) as sink:
            client = OpenLineageClient(sink.url, retry=FAST)
            client.start()
            for event in (good[0], broken, good[1]):
                client.submit(event)
            await until(lambda: len(sink.received) == 2)
            await client.stop()
            assert sink.received == good
            assert client.counts == {"sent": 2, "retried": 0, "dropped": 1}

    with caplog.at_level(logging.WARNING, "dataproduct_operator.openlineage.client"):
        _run(scenario)
    assert "OpenLineage delivery failed unexpectedly" in caplog.text
    assert "dropped: unexpected TypeError" in caplog.text
