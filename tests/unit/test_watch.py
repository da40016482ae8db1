"""The list-then-watch loop of the operator's caches, against a scripted API server: a watch
that fails or goes silent resumes from the last version seen; only 410 Gone lists again; every
failure is logged once and counted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import aiohttp
import pytest

from dataproduct_operator.k8s import informer
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.informer import list_then_watch
from dataproduct_operator.k8s.rest import ApiError

KIND = ("v1", "PersistentVolumeClaim")
PATH = "/api/v1/namespaces/sales/persistentvolumeclaims"
Step = dict[str, Any] | BaseException  # an event the watch sends, or how it breaks


def event(kind: str, version: str, name: str = "orders-orders-v1") -> dict[str, Any]:
    metadata = {"name": name, "namespace": "sales", "resourceVersion": version}
    return {"type": kind, "object": {"metadata": metadata}}


def expired() -> dict[str, Any]:
    status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    return {"type": "ERROR", "object": status}


class Server:
    """Answers each list with the next listing version, and each watch with the next script
    (then stays silent); records what it was asked."""

    def __init__(self, *watches: list[Step]) -> None:
        self.watches = list(watches)
        self.lists: list[str] = []  # the version of each listing it sent
        self.watched_from: list[str] = []
        self.read_timeouts: list[float | None] = []
        self.idle = asyncio.Event()  # every script played

    async def request(self, method: str, path: str, **kwargs: Any) -> object:
        version = str(10 * (len(self.lists) + 1))
        self.lists.append(version)
        return {"metadata": {"resourceVersion": version}, "items": []}

    async def stream(
        self, path: str, *, params: dict[str, str], accept: str | None, read_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        self.watched_from.append(params["resourceVersion"])
        self.read_timeouts.append(read_timeout)
        if not self.watches:
            self.idle.set()
            await asyncio.Event().wait()
        for step in self.watches.pop(0):
            if isinstance(step, BaseException):
                raise step
            yield step


def run(
    server: Server,
    on_error: Callable[[str], None] | None = None,
    consume: Callable[[dict[str, Any]], None] = lambda obj: None,
    **options: Any,
) -> tuple[list[tuple[str, str]], list[str]]:
    """Run the loop until the server has played every script; the events passed on and the
    reasons of the failures counted (unless ``on_error`` is given). ``consume`` sees each
    object before it is recorded, and may fail on it."""
    events: list[tuple[str, str]] = []
    reasons: list[str] = []

    def record(kind: str, obj: dict[str, Any]) -> None:
        consume(obj)
        events.append((kind, obj["metadata"]["resourceVersion"]))

    async def scenario() -> None:
        task = asyncio.get_running_loop().create_task(
            list_then_watch(
                cast(KubeClient, server),
                KIND,
                PATH,
                selector=None,
                accept=(None, None),
                on_listed=lambda items: None,
                on_event=record,
                synced=asyncio.Event(),
                on_error=reasons.append if on_error is None else on_error,
                **options,
            )
        )
        try:
            await asyncio.wait_for(server.idle.wait(), 5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    return events, reasons


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informer, "RETRY_SECONDS", 0.001)
    monkeypatch.setattr(informer, "MAX_RETRY_SECONDS", 0.004)


def test_a_silent_watch_is_resumed_from_the_last_version_seen_without_listing_again() -> None:
    server = Server(
        [event("ADDED", "11"), event("BOOKMARK", "12"), aiohttp.SocketTimeoutError("no data")],
        [event("MODIFIED", "13")],
    )
    events, reasons = run(server, read_timeout=90)
    assert server.lists == ["10"]
    assert server.watched_from == ["10", "12", "13"]  # after the bookmark; then the server's end
    assert events == [("ADDED", "11"), ("MODIFIED", "13")]
    assert reasons == ["ReadTimeout"]
    assert server.read_timeouts == [90, 90, 90]


def test_watches_have_a_read_timeout_of_70_seconds_by_default() -> None:
    server = Server()
    run(server)
    assert server.read_timeouts == [70]


def test_a_lost_connection_is_resumed_and_counted() -> None:
    server = Server(
        [event("ADDED", "11"), aiohttp.ServerDisconnectedError()],
        [ConnectionResetError("reset by peer")],
        [event("DELETED", "12")],
    )
    events, reasons = run(server)
    assert server.lists == ["10"]
    assert server.watched_from == ["10", "11", "11", "12"]
    assert events == [("ADDED", "11"), ("DELETED", "12")]
    assert reasons == ["ConnectionError", "ConnectionError"]


def test_an_expired_version_lists_again_and_is_not_counted_as_an_error() -> None:
    server = Server([event("ADDED", "11"), expired()], [event("ADDED", "21")])
    events, reasons = run(server)
    assert server.lists == ["10", "20"]
    assert server.watched_from == ["10", "20", "21"]
    assert events == [("ADDED", "11"), ("ADDED", "21")]
    assert reasons == []


def test_a_410_answer_to_the_watch_request_lists_again() -> None:
    server = Server([ApiError(410, "Expired", "too old")], [event("ADDED", "21")])
    events, reasons = run(server)
    assert server.lists == ["10", "20"]
    assert events == [("ADDED", "21")]
    assert reasons == []


def test_other_errors_resume_from_the_last_version_with_the_servers_reason() -> None:
    status = {"kind": "Status", "code": 500, "reason": "InternalError", "message": "etcd down"}
    server = Server(
        [event("ADDED", "11"), {"type": "ERROR", "object": status}],
        [ApiError(429, "TooManyRequests", "slow down")],
        [ApiError(503, "", "unavailable")],
    )
    _, reasons = run(server)
    assert server.lists == ["10"]
    assert server.watched_from == ["10", "11", "11", "11"]
    assert reasons == ["InternalError", "TooManyRequests", "HTTP503"]


def test_each_failure_is_logged_once_naming_what_was_watched(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Server([event("ADDED", "11"), aiohttp.SocketTimeoutError("no data")], [])
    with caplog.at_level(logging.INFO, logger=informer.__name__):
        run(server)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(
        f"Watch of PersistentVolumeClaim at {PATH} failed (ReadTimeout: no data); "
        "resuming from resourceVersion 11 in "
    )


def test_a_failing_list_is_listed_again_and_counted() -> None:
    class Flaky(Server):
        async def request(self, method: str, path: str, **kwargs: Any) -> object:
            if not self.lists:
                self.lists.append("failed")
                raise ApiError(403, "Forbidden", "cannot list")
            return await super().request(method, path, **kwargs)

    server = Flaky()
    _, reasons = run(server)
    assert server.lists == ["failed", "20"]
    assert server.watched_from == ["20"]
    assert reasons == ["Forbidden"]


def test_a_broken_counter_does_not_stop_the_watch() -> None:
    def broken(reason: str) -> None:
        raise RuntimeError(reason)

    server = Server([aiohttp.SocketTimeoutError()], [event("ADDED", "11")])
    events, _ = run(server, on_error=broken)
    assert events == [("ADDED", "11")]


def test_a_consumer_that_fails_on_one_event_is_counted_and_later_events_still_come(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Server([event("ADDED", "11", "poison"), event("ADDED", "12"), event("DELETED", "13")])

    def consume(obj: dict[str, Any]) -> None:
        if obj["metadata"]["name"] == "poison":
            raise ValueError("a body this consumer cannot read")

    events, reasons = run(server, consume=consume)
    assert events == [("ADDED", "12"), ("DELETED", "13")]
    assert reasons == ["ConsumerError"]
    assert server.watched_from == ["10", "13"], "went on past the event, never back to it"
    assert "Handling the ADDED event of PersistentVolumeClaim" in caplog.text
    assert "poison" in caplog.text
