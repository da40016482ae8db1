"""The pausable proxy itself, against an echo server on loopback (no cluster)."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from tests.faults.proxy import PausableProxy, ProxyCounts

SILENCE_SECONDS = 0.5  # how long a blackholed connection is watched for a byte


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[PausableProxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with PausableProxy("127.0.0.1", server.server_address[1]) as started:
        yield started
    server.shutdown()
    server.server_close()


def connect(proxy: PausableProxy) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    connection.settimeout(5)
    return connection


def echoes(connection: socket.socket, payload: bytes) -> bool:
    connection.sendall(payload)
    received = b""
    while len(received) < len(payload):
        received += connection.recv(4096)
    return received == payload


def silent(connection: socket.socket) -> bool:
    """Nothing comes back within SILENCE_SECONDS, and the connection is not closed either."""
    connection.settimeout(SILENCE_SECONDS)
    try:
        data = connection.recv(4096)
    except TimeoutError:
        return True
    finally:
        connection.settimeout(5)
    raise AssertionError(f"expected silence, got {data!r}" if data else "the proxy closed it")


def test_bytes_pass_both_ways(proxy: PausableProxy) -> None:
    with connect(proxy) as connection:
        assert echoes(connection, b"hello" * 10000)


def test_blackholed_connections_pass_nothing_and_stay_open(proxy: PausableProxy) -> None:
    with connect(proxy) as before:
        assert echoes(before, b"ping")
        proxy.blackhole()
        before.sendall(b"lost")
        assert silent(before)
        with connect(proxy) as during:  # accepted, then held
            during.sendall(b"lost too")
            assert silent(during)
            assert proxy.counts() == ProxyCounts(accepted=2, dead=2)


def test_after_resume_new_connections_pass_and_blackholed_ones_stay_dead(
    proxy: PausableProxy,
) -> None:
    with connect(proxy) as before:
        proxy.blackhole()
        proxy.resume()
        with connect(proxy) as after:
            assert echoes(after, b"back")
        before.sendall(b"still lost")
        assert silent(before)
