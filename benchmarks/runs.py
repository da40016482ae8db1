"""The runs benchmark: sql pipelines really running on the real node, read back by the operator.

``make bench-runs N=20`` (or ``python -m benchmarks.runs --n 20``). On a local control plane of
its own with the real node and its PostgreSQL, N products each with an on-demand sql pipeline
reading a seeded upstream product (``--source-rows`` rows, through the real grants) and
publishing into a table of its own, it measures:

1. runs completed per minute: every product's run requested at once (the ``datamesh.dev/run``
   annotation, at the operator's concurrency), until every status shows its run's result;
2. p50 and p95 from a product's run request to its status showing the result (the pod's own
   start on the node is part of it: pulling nothing, creating the sandbox and the container);
3. the operator's API writes per run (the API server's own count for the operator's identity:
   the Job, status writes, Events), from the request until the operator is quiet again;
4. the runs that failed (must be 0) and the rows each published (must be the source's).

It prints a table and a JSON line, writes ``benchmarks/results/runs-<time>.json`` and updates
its section of ``docs/benchmarks.md``. The runner's own throughput against PostgreSQL alone is
``make bench-runner`` (see docs/runner.md).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from benchmarks.mesh import (
    ALL_PRODUCTS,
    CONCURRENCY,
    OperatorRun,
    Results,
    _apply_all,
    _ready,
    create_domains,
    create_namespaces,
    log,
    onboard,
    product_summary,
    recorded,
    wait_all_ready,
    wait_quiet,
    wait_until,
)
from benchmarks.report import run_and_publish
from benchmarks.setup import create_identities, dispatched
from benchmarks.stores import STORE, STORES, register_store
from benchmarks.watching import WatchedCollection
from dataproduct_operator.cluster import controlplane, images
from dataproduct_operator.cluster.dev import install_crds
from dataproduct_operator.cluster.node import NodeMode
from dataproduct_operator.cluster.node_config import NODE_TYPE_LABEL, REAL_NODE_TYPE
from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.constants import ANNOTATION_RUN
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.client import KubeClient, gather_limited
from dataproduct_operator.k8s.credentials import Credentials

SOURCE_NAMESPACE = "runs-src"
NAMESPACES = 2  # the consumers' domains
READERS_PER_SOURCE = 60  # a product grants at most 64 readers
RUN_REQUEST = "build:bench"
PRODUCTS = "/apis/datamesh.dev/v1alpha1/namespaces/{namespace}/dataproducts"


def consumers(n: int) -> list[tuple[str, str, int]]:
    """(namespace, name, index) of the N products that run."""
    return [(f"runs-{k % NAMESPACES}", f"run-{k:04d}", k) for k in range(n)]


def source_name(index: int) -> str:
    return f"source-{index // READERS_PER_SOURCE:02d}"


def source_product(name: str, readers: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": name, "namespace": SOURCE_NAMESPACE},
        "spec": {
            "domain": SOURCE_NAMESPACE,
            "owner": {"team": "bench"},
            "description": "Seeded rows the benchmark's pipelines read.",
            "outputPorts": [{
                "name": "rows", "store": {"name": STORE},
                "schema": [{"name": "id", "type": "integer", "required": True, "unique": True},
                           {"name": "amount", "type": "decimal"}],
            }],
            "access": {"readers": [
                {"kind": "ServiceAccount", "name": account, "namespace": namespace}
                for namespace, account in readers
            ]},
        },
    }  # fmt: skip


def running_product(namespace: str, name: str, index: int) -> dict[str, Any]:
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "domain": namespace,
            "owner": {"team": "bench"},
            "description": "Doubles the seeded amounts, checked before publishing.",
            "inputs": [{"name": "src", "dataProduct": {
                "namespace": SOURCE_NAMESPACE, "name": source_name(index), "port": "rows"}}],
            "outputPorts": [{
                "name": "doubled", "store": {"name": STORE},
                "schema": [{"name": "id", "type": "integer", "required": True, "unique": True},
                           {"name": "amount", "type": "decimal"}],
                "slo": {"freshness": "1h"},
                "checks": [{"name": "not-negative",
                            "sql": "SELECT count(*) FROM doubled WHERE amount < 0"}],
            }],
            "pipelines": [{"name": "build", "sql": "SELECT id, amount * 2 AS amount FROM src",
                           "output": "doubled", "mode": "Replace", "sources": ["src"]}],
        },
    }  # fmt: skip


def run_summary(product: dict[str, Any]) -> tuple[int, bool, str | None, int | None]:
    """Generation, Ready, and its build pipeline's last run: result and rows written."""
    generation, ready = product_summary(product)
    for pipeline in (product.get("status") or {}).get("pipelines") or []:
        last = pipeline.get("lastRun") or {}
        if pipeline.get("name") == "build" and last:
            return generation, ready, last.get("result"), last.get("rowsWritten")
    return generation, ready, None, None


def seed(postgres: LocalPostgres, admin: BlockingClient, sources: list[str], rows: int) -> None:
    """``rows`` rows in each source's table, written as the server's superuser."""
    with psycopg.connect(**postgres.superuser_conninfo(), autocommit=True) as connection:
        for name in sources:
            product = admin.get(f"{PRODUCTS.format(namespace=SOURCE_NAMESPACE)}/{name}")
            endpoint = product["status"]["outputPorts"][0]["endpoint"]
            table = sql.Identifier(endpoint["schema"], endpoint["table"])
            connection.execute(
                sql.SQL(
                    "INSERT INTO {} (id, amount) SELECT i, mod(i, 1000) / 10.0 "
                    "FROM generate_series(1, %s) AS i"
                ).format(table),
                (rows,),
            )


async def _request_runs(
    client_kubeconfig: Path, names: list[tuple[str, str, int]]
) -> dict[tuple[str, str], float]:
    """Annotate every product at the operator's concurrency; when each request was sent."""
    sent: dict[tuple[str, str], float] = {}
    client = KubeClient(Credentials.from_kubeconfig(client_kubeconfig), max_connections=CONCURRENCY)

    async def request(namespace: str, name: str) -> None:
        patch = {"metadata": {"annotations": {ANNOTATION_RUN: RUN_REQUEST}}}
        sent[(namespace, name)] = time.monotonic()
        await client.merge_patch(f"{PRODUCTS.format(namespace=namespace)}/{name}", patch)

    try:
        await gather_limited(
            CONCURRENCY, *(request(namespace, name) for namespace, name, _ in names)
        )
    finally:
        await client.close()
    return sent


def phase_runs(
    admin: BlockingClient,
    run: OperatorRun,
    client_kubeconfig: Path,
    watched: WatchedCollection,
    names: list[tuple[str, str, int]],
    *,
    source_rows: int,
    results: Results,
) -> None:
    n = len(names)
    log(f"2. {n} runs requested at once, until every status shows its result")
    before = dispatched(admin, run.identity)
    started = time.monotonic()
    sent = asyncio.run(_request_runs(client_kubeconfig, names))
    keys = [(namespace, name) for namespace, name, _ in names]
    seen: dict[tuple[str, str], float] = {}
    deadline = started + 1800
    last_log = 0.0
    while len(seen) < n:
        now = time.monotonic()
        for key, summary in watched.summaries(set(keys)).items():
            if key not in seen and summary[2] in ("Succeeded", "Failed"):
                seen[key] = now
        if now > deadline:
            raise TimeoutError(f"Only {len(seen)} of {n} runs ended after 1800 s")
        if now - last_log >= 10:
            log(f"    {len(seen)}/{n} runs ended after {now - started:.1f}s")
            last_log = now
        time.sleep(0.05)
    elapsed = max(seen.values()) - started
    latencies = sorted(seen[key] - sent[key] for key in keys)
    summaries = watched.summaries(set(keys))
    failed = [key for key in keys if summaries[key][2] != "Succeeded"]
    rows = {summaries[key][3] for key in keys if key not in failed}
    wait_quiet(admin, run.identity)
    spent = dispatched(admin, run.identity) - before
    results["runs_per_minute"] = round(n / elapsed * 60, 1)
    results["t_runs_s"] = round(elapsed, 1)
    results["p50_run_s"] = round(statistics.median(latencies), 2)
    results["p95_run_s"] = round(latencies[min(n - 1, int(0.95 * n))], 2)
    results["max_run_s"] = round(latencies[-1], 2)
    results["writes_per_run"] = round(spent.writes / n, 2)
    results["reads_per_run"] = round(spent.reads / n, 2)
    results["failed_runs"] = len(failed)
    results["rows_per_run"] = sorted(r for r in rows if r is not None)
    if failed:
        log(f"    failed: {', '.join(f'{ns}/{name}' for ns, name in failed[:10])}")
    if rows != {source_rows}:
        log(f"    rows published: {sorted(map(str, rows))}, expected {source_rows}")


@contextmanager
def control_plane(directory: Path) -> Iterator[controlplane.ClusterInfo]:
    """With the real node: the runs really run."""
    info = controlplane.up(directory, node_mode=NodeMode.REAL)
    try:
        yield info
    finally:
        controlplane.down(directory)


KEYS = (
    "n", "source_rows", "runs_per_minute", "t_runs_s", "p50_run_s", "p95_run_s", "max_run_s",
    "writes_per_run", "reads_per_run", "failed_runs", "rows_per_run",
)  # fmt: skip


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    if not images.built("runner"):
        raise SystemExit("The runner image is missing or outdated: run `make images` first")
    results = Results()
    results["n"] = args.n
    results["source_rows"] = args.source_rows
    names = consumers(args.n)
    sources = sorted({source_name(index) for _, _, index in names})
    with tempfile.TemporaryDirectory(prefix="dpo-bench-runs-") as scratch:
        work = Path(scratch)
        with control_plane(work / "cluster") as info:
            results["kubernetes"] = info.kubernetes_version
            with BlockingClient.from_kubeconfig(info.kubeconfig) as admin:
                install_crds(admin, sys.stderr)
                operator, client = create_identities(admin, work)
                domains = [SOURCE_NAMESPACE, *sorted({ns for ns, _, _ in names})]
                create_namespaces(admin, domains)
                create_domains(admin, domains)
                register_store(admin, info.postgres)
                run = OperatorRun(
                    operator,
                    domains,
                    args.operator_log,
                    drift_interval=3600,
                    extra=(
                        f"--pipeline-node-selector={NODE_TYPE_LABEL}={REAL_NODE_TYPE}",
                        f"--pipeline-toleration={NODE_TYPE_LABEL}={REAL_NODE_TYPE}:NoSchedule",
                        f"--runner-image={images.image_spec('runner').ref}",
                    ),
                )
                watched = WatchedCollection(admin.credentials, ALL_PRODUCTS, run_summary)
                with watched:
                    run.start()
                    try:
                        onboard(admin, run, domains)
                        wait_until(
                            lambda: _ready(admin.get(f"{STORES}/{STORE}")),
                            "the DataStore Ready",
                            timeout=120,
                        )
                        log(f"1. {len(sources)} seeded sources and {args.n} products Ready")
                        started = time.monotonic()
                        readers: dict[str, list[tuple[str, str]]] = {s: [] for s in sources}
                        for namespace, name, index in names:
                            readers[source_name(index)].append((namespace, name))
                        documents = [source_product(s, readers[s]) for s in sources]
                        documents += [running_product(ns, name, i) for ns, name, i in names]
                        asyncio.run(_apply_all(client, documents))
                        keys = [(SOURCE_NAMESPACE, s) for s in sources]
                        keys += [(ns, name) for ns, name, _ in names]
                        ready_s = wait_all_ready(watched, keys, timeout=1800, started=started)
                        results["t_ready_s"] = round(ready_s, 1)
                        seed(info.postgres, admin, sources, args.source_rows)
                        phase_runs(
                            admin, run, client.kubeconfig, watched, names,
                            source_rows=args.source_rows, results=results,
                        )  # fmt: skip
                    finally:
                        run.stop()
    return recorded(results.figures, KEYS, args.command)


ROWS = (
    ("n", "products with an on-demand sql pipeline on the real node", ""),
    ("source_rows", "rows each run reads, checks and publishes", ""),
    ("t_ready_s", "products and sources created until all Ready (s)", ""),
    ("runs_per_minute", "runs completed per minute (all requested at once)", ""),
    ("t_runs_s", "from the first request until the last status shows its result (s)", ""),
    ("p50_run_s", "request -> status shows the result, p50 (s)", "≤ 6"),
    ("p95_run_s", "... p95 (s)", ""),
    ("max_run_s", "... max (s)", ""),
    ("writes_per_run", "operator API writes per run", "≤ 2"),
    ("reads_per_run", "operator API reads per run", ""),
    ("failed_runs", "runs that failed", "0"),
    ("rows_per_run", "rows each run published", ""),
)
MARKERS = (
    "<!-- runs-run:start (written by `make bench-runs`) -->",
    "<!-- runs-run:end -->",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="products that run (1 to 500)")
    parser.add_argument("--source-rows", type=int, default=1000, help="rows in each source")
    parser.add_argument("--docs", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--command", default="", help="how the run was started, for the record")
    parser.add_argument("--results-dir", type=Path, default=Path("benchmarks/results"))
    parser.add_argument(
        "--operator-log",
        type=Path,
        default=Path(tempfile.gettempdir()) / "dpo-bench-runs-operator.log",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 500:
        parser.error("--n must be between 1 and 500")
    if not 1 <= args.source_rows <= 10_000_000:
        parser.error("--source-rows must be between 1 and 10000000")
    args.command = args.command or f"python -m benchmarks.runs --n {args.n}"
    return args


def main(argv: list[str] | None = None) -> int:
    return run_and_publish(
        parse_args(argv), run_benchmark, ROWS, name="runs", markers=MARKERS,
        heading="Runs: latest run",
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
