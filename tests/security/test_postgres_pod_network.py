"""Opening the local PostgreSQL to the real node's pods opens it to nobody else: the server
binds 127.0.0.1 and the pods' gateway only, and a neighbour on the machine's network that
routes the pods' subnet through the machine is dropped at the gateway, while it reaches the
machine's own address."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.cluster.postgres import LocalPostgres

CONNECT_SECONDS = 3
IP = shutil.which("ip") or "/usr/sbin/ip"


def _listening_addresses(port: int) -> set[str]:
    """The IPv4 and IPv6 addresses with a socket listening on ``port`` (from /proc/net)."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            if len(address) == 8:  # little-endian IPv4
                found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
            else:
                found.add(f"ipv6:{address}")
    return found


def test_postgres_listens_on_loopback_and_the_pods_gateway_only(
    control_plane: ClusterInfo, postgres: LocalPostgres
) -> None:
    assert control_plane.real_node is not None
    assert postgres.pod_host is not None and postgres.pod_host.startswith("10.89.")
    assert _listening_addresses(postgres.port) == {"127.0.0.1", postgres.pod_host}


def _ip(*arguments: str) -> None:
    subprocess.run([IP, *arguments], check=True, capture_output=True, timeout=30)


@dataclass(frozen=True)
class Neighbour:
    """A network namespace joined to the machine by a veth pair, as a machine of its local
    network would be, with a route to the pods' subnet through the machine."""

    namespace: str
    machine_address: str  # the machine's end of the pair

    def connects(self, host: str, port: int) -> bool:
        probe = (
            "import socket, sys\n"
            "try:\n"
            f"    socket.create_connection(({host!r}, {port}), timeout={CONNECT_SECONDS}).close()\n"
            "except OSError:\n"
            "    sys.exit(1)\n"
        )
        done = subprocess.run(
            [IP, "netns", "exec", self.namespace, sys.executable, "-c", probe],
            capture_output=True,
            timeout=30,
            check=False,
        )
        return done.returncode == 0


@pytest.fixture
def neighbour(postgres: LocalPostgres) -> Iterator[Neighbour]:
    assert postgres.pod_host is not None
    tag = secrets.token_hex(3)
    namespace, outside, inside = f"dpo-t-{tag}", f"vh{tag}", f"vn{tag}"
    third = int(tag[:2], 16)
    machine, peer = f"198.18.{third}.1", f"198.18.{third}.2"
    subnet = postgres.pod_host.rsplit(".", 1)[0] + ".0/24"
    _ip("netns", "add", namespace)
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("addr", "add", f"{machine}/30", "dev", outside)
        _ip("link", "set", outside, "up")
        for arguments in (
            ("addr", "add", f"{peer}/30", "dev", inside),
            ("link", "set", inside, "up"),
            ("link", "set", "lo", "up"),
            ("route", "add", subnet, "via", machine),
        ):
            _ip("netns", "exec", namespace, "ip", *arguments)
        yield Neighbour(namespace, machine)
    finally:
        subprocess.run([IP, "link", "delete", outside], capture_output=True, check=False)
        subprocess.run([IP, "netns", "delete", namespace], capture_output=True, check=False)


def test_a_neighbour_routing_through_the_machine_cannot_reach_the_pods_gateway(
    neighbour: Neighbour, postgres: LocalPostgres
) -> None:
    assert postgres.pod_host is not None
    # A server of the machine on every address: the neighbour reaches it at the machine's
    # own address, so routing works and only the gateway's address is kept from it.
    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))  # noqa: S104 - the point: every address
        server.listen()
        port = server.getsockname()[1]
        assert neighbour.connects(neighbour.machine_address, port)
        assert not neighbour.connects(postgres.pod_host, port)
    assert not neighbour.connects(postgres.pod_host, postgres.port)
