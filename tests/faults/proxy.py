"""A pausable TCP proxy on loopback, to blackhole the operator's connections to the API server.

It forwards bytes both ways between each accepted connection and the upstream address. While
blackholed, every connection open then and every one accepted meanwhile passes no byte in
either direction and is never closed by the proxy: a dead network path, as when a NAT or a load
balancer forgets a connection. Resuming lets new connections through again; the blackholed ones
stay dead until their client gives up on them, so only a client with a read timeout recovers
a watch that was open then. TLS passes through untouched (the server's certificate names
127.0.0.1).

The proxy runs its own asyncio loop in a thread, so tests drive it with plain calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 65536


@dataclass
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    dead: bool = False
    halt: asyncio.Event = field(default_factory=asyncio.Event)  # dead, or the proxy stops


@dataclass(frozen=True)
class ProxyCounts:
    """Connections the proxy accepted, and how many of them it holds dead."""

    accepted: int
    dead: int


class PausableProxy:
    """Forward 127.0.0.1:<port> to ``upstream``; blackhole and resume on demand."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: list[_Connection] = []
        self._handlers: set[asyncio.Task[Any]] = set()
        self._blackholed = False
        self._accepted = 0
        self.port = 0

    # --- driven from the test's thread ---------------------------------------------------------

    def start(self) -> PausableProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        """Close every connection, dead or alive, and the listening socket."""
        if not self._thread.is_alive():
            return
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def blackhole(self) -> None:
        """From now on no byte passes, on the connections open now or on new ones."""
        self._call(self._blackhole())

    def resume(self) -> None:
        """New connections are forwarded again; the blackholed ones stay dead."""
        self._call(self._resume())

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def counts(self) -> ProxyCounts:
        return self._call(self._counts())

    def __enter__(self) -> PausableProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    # --- in the proxy's loop ---------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _counts(self) -> ProxyCounts:
        dead = sum(1 for c in self._connections if c.dead)
        return ProxyCounts(self._accepted, dead)

    async def _blackhole(self) -> None:
        self._blackholed = True
        for connection in self._connections:
            connection.dead = True
            connection.halt.set()

    async def _resume(self) -> None:
        self._blackholed = False

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in self._connections:
            connection.halt.set()
            for writer in (connection.client, connection.upstream):
                if writer is not None:
                    writer.close()
        self._connections.clear()
        # Every connection's handler ends here, not when the closed loop is collected.
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._accepted += 1
        connection = _Connection(writer)
        self._connections.append(connection)
        if self._blackholed:
            connection.dead = True
            return  # held open, never read from nor written to
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)
        try:
            upstream_reader, connection.upstream = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            self._connections.remove(connection)
            return
        await asyncio.gather(
            self._pump(reader, connection.upstream, connection),
            self._pump(upstream_reader, writer, connection),
        )

    async def _pump(
        self, source: asyncio.StreamReader, target: asyncio.StreamWriter, connection: _Connection
    ) -> None:
        """Copy bytes until either side closes; once the connection is dead, stop copying and
        leave the client's socket open (the upstream one is closed: nothing reaches it)."""
        halted = asyncio.ensure_future(connection.halt.wait())
        try:
            while True:
                read = asyncio.ensure_future(source.read(CHUNK))
                await asyncio.wait({read, halted}, return_when=asyncio.FIRST_COMPLETED)
                if halted.done():
                    read.cancel()
                    await asyncio.gather(read, return_exceptions=True)
                    if connection.upstream is not None:
                        connection.upstream.close()
                    return
                data = read.result()
                if not data:
                    break
                target.write(data)
                await target.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            halted.cancel()
        if not connection.dead:
            # One side closed: close the other, as the path between them would.
            for writer in (connection.client, connection.upstream):
                if writer is not None:
                    with contextlib.suppress(Exception):
                        writer.close()
            if connection in self._connections:
                self._connections.remove(connection)
