"""The local cluster's Prometheus (``dpo dev``) is reachable from this machine only, and nobody
who reaches it can stop it, reload it or delete its data: it listens on 127.0.0.1 alone, with
its lifecycle and admin APIs off (its rules are reloaded by a signal from the user who started
it)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataproduct_operator.cluster import prometheus
from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.cluster.process import stop_process
from tests.products import free_port


@pytest.fixture
def local_prometheus_port(control_plane: ClusterInfo) -> Iterator[int]:
    port = free_port()
    process = prometheus.start(
        control_plane.directory, port=port, metrics_port=free_port(), products=[]
    )
    yield port
    stop_process(process)


def listening_addresses(port: int) -> list[str]:
    """The local addresses listening on ``port``, as the kernel lists them (hex)."""
    rows = [
        line.split()
        for name in ("/proc/net/tcp", "/proc/net/tcp6")
        for line in Path(name).read_text().splitlines()[1:]
    ]
    listening = [row[1] for row in rows if row[3] == "0A"]  # state LISTEN
    return [address for address in listening if int(address.rsplit(":", 1)[1], 16) == port]


def post(url: str) -> int:
    request = urllib.request.Request(url, method="POST")  # noqa: S310 - our own server
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_local_prometheus_listens_on_loopback_only(local_prometheus_port: int) -> None:
    port = local_prometheus_port
    assert listening_addresses(port) == [f"0100007F:{port:04X}"]  # 127.0.0.1, nothing else


def test_nobody_can_stop_reload_or_delete_from_the_local_prometheus(
    local_prometheus_port: int,
) -> None:
    base = prometheus.url(local_prometheus_port)
    assert post(f"{base}/-/quit") == 403
    assert post(f"{base}/-/reload") == 403
    assert post(f"{base}/api/v1/admin/tsdb/delete_series?match[]=up") >= 400
    assert post(f"{base}/api/v1/admin/tsdb/snapshot") >= 400
    with urllib.request.urlopen(f"{base}/-/ready", timeout=5) as response:  # noqa: S310
        assert response.status == 200  # still serving
