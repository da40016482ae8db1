"""What the client itself costs per request: the operator's hot path, without an API server.

``python -m benchmarks.client [--count N]`` serves a fixed answer (a DataProduct of the
benchmark's shape) over TLS from a separate process on loopback, and sends N GETs and N
server-side applies through :class:`KubeClient` at the operator's concurrency (16). It prints
the requests per second and the client process's CPU time per request: the part of every
request the operator pays for in its own process (TLS, HTTP, JSON, credentials).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from benchmarks.mesh import CONCURRENCY, bench_product
from dataproduct_operator.cluster import pki
from dataproduct_operator.k8s.client import KubeClient, gather_limited
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.k8s.kubeconfig import Connection

PATH = "/apis/datamesh.dev/v1alpha1/namespaces/bench/dataproducts/p-0"
ROUNDS = 3


def serve(port: int, directory: Path) -> None:
    """Answer every request with the same product, as the API server would a GET."""
    product = bench_product("bench", "p-0")
    product["metadata"].update({"uid": "u", "resourceVersion": "1", "generation": 1})
    body = json.dumps(product).encode()

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "server.crt", directory / "server.key")
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, print=None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def measure(client: KubeClient, count: int) -> dict[str, tuple[float, float]]:
    """Requests per second and client CPU microseconds per request, best of a few rounds."""
    product = bench_product("bench", "p-0")

    def get() -> Awaitable[Any]:
        return client.get(PATH)

    def apply() -> Awaitable[Any]:
        return client.apply(product)

    kinds: dict[str, Callable[[], Awaitable[Any]]] = {"GET": get, "server-side apply": apply}
    results = {}
    await gather_limited(CONCURRENCY, *(client.get(PATH) for _ in range(200)))  # warm up
    for label, send in kinds.items():
        best = (0.0, float("inf"))
        for _ in range(ROUNDS):
            cpu, wall = time.process_time(), time.monotonic()
            await gather_limited(CONCURRENCY, *(send() for _ in range(count)))
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            best = max(best[0], count / wall), min(best[1], cpu / count * 1e6)
        results[label] = best
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="requests of each kind a round")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--certificates", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.certificates)
        return 0
    with tempfile.TemporaryDirectory(prefix="dpo-client-bench-") as scratch:
        directory = Path(scratch)
        authority = pki.CertificateAuthority()
        pki.write_pair(directory, "server", authority.issue_server("bench", (), ("127.0.0.1",)))
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.client",
                "--serve",
                str(port),
                "--certificates",
                str(directory),
            ],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        try:
            token = "t"  # noqa: S105 - the stub server takes any
            connection = Connection(f"https://127.0.0.1:{port}", authority.cert_pem, token=token)
            credentials = Credentials.from_connection(connection)

            async def run() -> dict[str, tuple[float, float]]:
                client = KubeClient(credentials, max_connections=CONCURRENCY)
                try:
                    deadline = time.monotonic() + 30
                    while True:
                        try:
                            await client.get(PATH)
                            break
                        except OSError:
                            if time.monotonic() > deadline:
                                raise
                            await asyncio.sleep(0.1)
                    return await measure(client, args.count)
                finally:
                    await client.close()

            results = asyncio.run(run())
        finally:
            server.terminate()
            server.wait()
    print(f"{'request':<20} {'per s':>8} {'client CPU µs':>14}")
    for label, (rate, cpu) in results.items():
        print(f"{label:<20} {rate:>8.0f} {cpu:>14.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
