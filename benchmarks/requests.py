"""What one request of each kind the operator makes costs the API server, in CPU time.

``python -m benchmarks.requests [--count N]`` starts a control plane of its own, sends N
requests of each kind at the operator's concurrency, and prints the CPU time kube-apiserver and
etcd spent per request (from /proc), with the requests per second reached. The kinds are the
products' own writes and reads and the creation of each child kind; the figures say which of
the operator's requests are worth saving (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.mesh import CONCURRENCY, bench_product, control_plane
from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.cluster.controlplane import running_components
from dataproduct_operator.cluster.dev import install_crds
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.client import KubeClient, gather_limited
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.k8s.resources import object_path
from dataproduct_operator.specs.dataproduct import build_children

NAMESPACE = "requests"
MEASURED = ("kube-apiserver", "etcd")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) each component has used so far."""
    used = {}
    for name, pid in pids.items():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        used[name] = (int(fields[11]) + int(fields[12])) / TICKS
    return used


class Meter:
    """Runs batches of requests and records what each cost the measured components."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.rows: list[tuple[str, int, float, dict[str, float]]] = []

    async def measure(self, label: str, requests: Sequence[Callable[[], Awaitable[Any]]]) -> None:
        before, started = cpu_seconds(self.pids), time.monotonic()
        await gather_limited(CONCURRENCY, *(request() for request in requests))
        elapsed, after = time.monotonic() - started, cpu_seconds(self.pids)
        per_request = {name: (after[name] - before[name]) / len(requests) for name in self.pids}
        self.rows.append((label, len(requests), len(requests) / elapsed, per_request))
        print(render_row(self.rows[-1]), file=sys.stderr, flush=True)


def render_row(row: tuple[str, int, float, dict[str, float]]) -> str:
    label, count, rate, per_request = row
    cost = "  ".join(f"{per_request[name] * 1000:7.2f}" for name in MEASURED)
    return f"{label:<52} {count:>6} {rate:>8.0f}  {cost}"


def header() -> str:
    names = "  ".join(f"{name + ' ms':>7}" for name in ("apiserv", "etcd"))
    return f"{'request':<52} {'count':>6} {'per s':>8}  {names}"


def _event(index: int) -> dict[str, Any]:
    return {
        "metadata": {"generateName": "p."},
        "involvedObject": {
            "apiVersion": "datamesh.dev/v1alpha1",
            "kind": "DataProduct",
            "namespace": NAMESPACE,
            "name": f"p-{index}",
        },
        "reason": "Applied",
        "message": "Applied ServiceAccount p, PersistentVolumeClaim p-orders-v1 and 7 more",
        "type": "Normal",
        "source": {"component": "dataproduct-operator"},
    }


async def measure_all(client: KubeClient, meter: Meter, count: int) -> None:
    products = [bench_product(NAMESPACE, f"p-{index}") for index in range(count)]
    paths = [object_path(product) for product in products]
    apply, get, patch = client.apply, client.get, client.merge_patch
    await meter.measure(
        "server-side apply: create a DataProduct", [partial(apply, p) for p in products]
    )
    bodies = [body for path in paths if (body := await get(path)) is not None]
    children = [
        child
        for body in bodies
        for child in build_children(DataProduct.from_object(body), prometheus_available=False)
    ]
    for kind in dict.fromkeys(child["kind"] for child in children):
        of_kind = [partial(apply, child) for child in children if child["kind"] == kind]
        await meter.measure(f"server-side apply: create a {kind}", of_kind)
    unchanged = [partial(apply, child) for child in children if child["kind"] == "CronJob"]
    await meter.measure("server-side apply: an unchanged CronJob", unchanged)
    await meter.measure("GET a DataProduct (read from etcd)", [partial(get, p) for p in paths])
    await meter.measure(
        "GET a DataProduct from the watch cache",
        [partial(get, p, not_older_than="0") for p in paths],
    )
    missing = [f"/api/v1/namespaces/{NAMESPACE}/configmaps/none-{i}" for i in range(count)]
    await meter.measure("GET a missing ConfigMap (404)", [partial(get, p) for p in missing])
    finalizer = {"metadata": {"finalizers": ["example.com/hold"]}}
    await meter.measure(
        "merge patch of a DataProduct (a finalizer)", [partial(patch, p, finalizer) for p in paths]
    )
    events = f"/api/v1/namespaces/{NAMESPACE}/events"
    await meter.measure(
        "POST an Event", [partial(client.request, "POST", events, _event(i)) for i in range(count)]
    )


def run(count: int) -> list[tuple[str, int, float, dict[str, float]]]:
    with tempfile.TemporaryDirectory(prefix="dpo-requests-") as scratch:
        directory = Path(scratch) / "cluster"
        with control_plane(directory) as info:
            pids = {c.name: c.pid for c in running_components(directory) if c.name in MEASURED}
            with BlockingClient.from_kubeconfig(info.kubeconfig) as admin:
                install_crds(admin, sys.stderr)
                admin.create("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
            meter = Meter(pids)
            print(header(), file=sys.stderr)

            async def measure() -> None:
                client = KubeClient(
                    Credentials.from_kubeconfig(info.kubeconfig), max_connections=CONCURRENCY
                )
                try:
                    await measure_all(client, meter, count)
                finally:
                    await client.close()

            asyncio.run(measure())
    return meter.rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500, help="requests of each kind")
    args = parser.parse_args(argv)
    rows = run(args.count)
    print(header())
    for row in rows:
        print(render_row(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
