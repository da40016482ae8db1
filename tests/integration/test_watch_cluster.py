"""The operator's watches against the local API server, through a TCP proxy on loopback that
can blackhole its connections (bytes dropped both ways, sockets left open, as when a network
path dies silently): a silent watch is given up after its read timeout and resumed from the
last resourceVersion, on a new connection, without listing again."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from pathlib import Path
from typing import Any

from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.k8s.informer import list_then_watch
from dataproduct_operator.k8s.kubeconfig import Connection
from tests.helpers import wait_for


class BlackholeProxy:
    """Forwards loopback TCP connections to the API server; :meth:`blackhole` silences the
    connections open at that moment (new ones work)."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._silenced: set[asyncio.StreamWriter] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def blackhole(self) -> None:
        self._silenced |= self._writers

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self._target_port
        )
        self._writers |= {writer, upstream_writer}
        try:
            await asyncio.gather(
                self._pump(reader, upstream_writer, writer),
                self._pump(upstream_reader, writer, writer),
            )
        finally:
            for end in (writer, upstream_writer):
                end.close()
                with contextlib.suppress(OSError):
                    await end.wait_closed()
                self._writers.discard(end)
            self._tasks.discard(task)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, client: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                if client in self._silenced:
                    continue  # dropped: neither side learns anything
                sink.write(data)
                await sink.drain()
        sink.close()


def test_a_blackholed_watch_resumes_from_its_last_version_after_the_read_timeout(
    kube: BlockingClient, control_plane: ClusterInfo, namespace: str
) -> None:
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
    # kube-controller-manager publishes its CA into every new namespace a moment after it is
    # made: waited for, so that the one listing is the only way that ConfigMap is seen.
    wait_for(
        lambda: kube.exists(f"{configmaps}/kube-root-ca.crt"),
        description="the namespace's kube-root-ca.crt",
    )
    kube.create(configmaps, {"metadata": {"name": "before"}})
    listings: list[set[str]] = []
    events: list[tuple[str, str]] = []
    reasons: list[str] = []

    async def scenario() -> None:
        target = urllib.parse.urlsplit(control_plane.server).port
        assert target is not None
        proxy = BlackholeProxy(target)
        port = await proxy.start()
        admin = kube.credentials.identity()  # the admin's client certificate, via the proxy
        assert admin.cert_file and admin.key_file
        connection = Connection(
            f"https://127.0.0.1:{port}",
            kube.credentials.ca_pem,
            Path(admin.cert_file).read_bytes(),
            Path(admin.key_file).read_bytes(),
        )
        client = KubeClient(Credentials.from_connection(connection), max_connections=2)
        synced = asyncio.Event()

        def on_event(kind: str, obj: dict[str, Any]) -> None:
            events.append((kind, obj["metadata"]["name"]))

        watch = asyncio.get_running_loop().create_task(
            list_then_watch(
                client,
                ("v1", "ConfigMap"),
                configmaps,
                selector=None,
                accept=(None, None),
                on_listed=lambda items: listings.append({i["metadata"]["name"] for i in items}),
                on_event=on_event,
                synced=synced,
                on_error=reasons.append,
                read_timeout=2.0,
            )
        )
        try:
            await asyncio.wait_for(synced.wait(), 30)
            await asyncio.to_thread(kube.create, configmaps, {"metadata": {"name": "seen"}})
            await _until(lambda: ("ADDED", "seen") in events)
            proxy.blackhole()
            await asyncio.to_thread(kube.create, configmaps, {"metadata": {"name": "meanwhile"}})
            await _until(lambda: ("ADDED", "meanwhile") in events, timeout=30)
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            await client.close()
            await proxy.close()

    asyncio.run(scenario())
    assert listings == [{"before", "kube-root-ca.crt"}]  # listed once: resumed, not relisted
    assert reasons == ["ReadTimeout"]
    assert events == [("ADDED", "seen"), ("ADDED", "meanwhile")]


async def _until(condition: Any, *, timeout: float = 10.0) -> None:
    """Poll ``condition`` on the event loop until true, or fail at the timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"Timed out after {timeout}s")
        await asyncio.sleep(0.05)
