"""The mesh-scale benchmark: the operator against the API server's own limit.

``make bench N=50`` (or ``python -m benchmarks.mesh --n 50``). On a local control plane of its
own, for N products of a realistic shape spread over 5 namespaces, it measures:

1. the limit baseline: the same children plus the products, created by an async client at the
   operator's concurrency, until every claim is Bound (what Ready needs of the cluster), and
   the bound volumes of the Retain ports patched to keep their data, as the operator does;
2. the operator creating them, until every product is Ready;
3. idle writes; 4. writes and time to idle after a restart; 5. an update storm;
6. create->Ready latency of single products; 7. the operator's memory (and its growth per
   product when ``--grow-to`` adds more).

The operator runs as the chart runs it, serving the catalog from its process. Request counts
come from the API server (flow schemas per identity, see ``benchmarks.setup``).
It prints a table, writes ``benchmarks/results/<time>.json`` and updates ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.report import render_markdown, render_table, update_docs
from benchmarks.setup import SYSTEM_NAMESPACE, Identity, create_identities, dispatched
from benchmarks.watching import WatchedCollection
from dataproduct_operator.api.dataproduct import DataProduct, DeletionPolicy
from dataproduct_operator.cluster import controlplane
from dataproduct_operator.cluster.dev import install_crds
from dataproduct_operator.cluster.node import NodeMode
from dataproduct_operator.constants import LABEL_DOMAIN
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.client import KubeClient, gather_limited
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.specs.dataproduct import build_children

REPO = Path(__file__).resolve().parents[1]
NAMESPACES = 5
CONCURRENCY = 16  # the operator's connection pool (KubeClient max_connections)
PRODUCTS = "/apis/datamesh.dev/v1alpha1/namespaces/{namespace}/dataproducts"
DOMAINS = "/apis/datamesh.dev/v1alpha1/datadomains"
ALL_PRODUCTS = "/apis/datamesh.dev/v1alpha1/dataproducts"
ALL_CLAIMS = "/api/v1/persistentvolumeclaims"
POLL_SECONDS = 0.5
WATCHED_POLL_SECONDS = 0.05  # the watched state is in memory: looking is free
PROGRESS_SECONDS = 1.0
QUIET_SECONDS = 5.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_product(namespace: str, name: str) -> dict[str, Any]:
    """2 output ports, 2 pipelines (one scheduled, one on demand), 3 readers."""
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "domain": namespace,
            "owner": {
                "team": f"{namespace}-data",
                "contacts": [{"name": "Ana", "email": "ana@example.com"}],
            },
            "description": "Orders, one row per order line.",
            "version": "1.0.0",
            "lifecycle": "Production",
            "inputs": [
                {"name": "raw", "external": {"type": "postgres", "uri": "postgresql://db/x"}}
            ],
            "outputPorts": [
                {
                    "name": "orders-v1",
                    "format": "parquet",
                    "storage": {"size": "1Gi"},
                    "schema": [
                        {"name": "order_id", "type": "string", "required": True, "unique": True},
                        {"name": "email", "type": "string", "pii": True},
                    ],
                    "slo": {"freshness": "24h"},
                },
                {
                    "name": "daily",
                    "format": "csv",
                    "schema": [{"name": "day", "type": "date", "required": True}],
                },
            ],
            "pipelines": [
                # A schedule that does not come up during a run: Jobs would be noise.
                {"name": "ingest", "image": "ghcr.io/acme/ingest:1", "schedule": "0 3 1 1 *"},
                {"name": "backfill", "image": "ghcr.io/acme/ingest:1", "timeoutSeconds": 3600},
            ],
            "access": {
                "readers": [
                    {"kind": "Group", "name": "analysts"},
                    {"kind": "User", "name": "auditor@example.com"},
                    {"kind": "ServiceAccount", "name": "reporting", "namespace": "finance"},
                ]
            },
        },
    }


def product_names(prefix: str, start: int, stop: int) -> list[tuple[str, str]]:
    return [(f"{prefix}-{i % NAMESPACES}", f"p-{i:05d}") for i in range(start, stop)]


def children_per_product() -> int:
    """The objects a product needs, and the patch of each Retain port's bound volume (its
    reclaim policy, so the data outlives the namespace): the writes the work takes."""
    product = DataProduct.from_object(bench_product("x", "p-00000"))
    retained = product.spec.deletion_policy is DeletionPolicy.RETAIN
    volumes = len(product.spec.output_ports) if retained else 0
    return len(build_children(product, prometheus_available=False)) + volumes


# --- the operator process ----------------------------------------------------------------------


@dataclass
class OperatorRun:
    """``dpo run`` as the operator identity, watching the benchmark's namespaces."""

    identity: Identity
    namespaces: list[str]
    log_path: Path
    drift_interval: float
    process: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    catalog_port: int = 0
    extra: tuple[str, ...] = ()  # more options of ``dpo run``

    def start(self) -> None:
        self.metrics_port = _free_port()
        self.catalog_port = _free_port()
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "dataproduct_operator", "run",
                    f"--kubeconfig={self.identity.kubeconfig}",
                    f"--metrics-port={self.metrics_port}", "--liveness-port=0",
                    f"--drift-interval={self.drift_interval}",
                    f"--leader-election-namespace={SYSTEM_NAMESPACE}",
                    # As the chart runs it: the catalog served from the operator's process.
                    f"--catalog-port={self.catalog_port}", "--catalog-host=127.0.0.1",
                    *(f"--namespace={namespace}" for namespace in self.namespaces),
                    *self.extra,
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_until(lambda: self.metrics() is not None, "the operator's metrics", timeout=60)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def metrics(self) -> str | None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"The operator exited; see {self.log_path}")
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            return None

    def successful_reconciles(self) -> float:
        for line in (self.metrics() or "").splitlines():
            if line.startswith('dataproduct_reconcile_total{result="success"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def memory_kib(self) -> tuple[int, int]:
        """(current RSS, peak RSS) of the operator process, in KiB."""
        if self.process is None:
            raise RuntimeError("The operator is not running")
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- waiting -----------------------------------------------------------------------------------


def wait_until(check: Callable[[], object], what: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"Timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL_SECONDS)


def _ready(product: dict[str, Any]) -> bool:
    status = product.get("status") or {}
    if status.get("observedGeneration") != product["metadata"].get("generation"):
        return False
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
    )


def product_summary(product: dict[str, Any]) -> tuple[int, bool]:
    """What the benchmark asks of a product: its generation, and whether it is Ready."""
    return int(product["metadata"].get("generation") or 0), _ready(product)


def claim_bound(claim: dict[str, Any]) -> bool:
    return bool((claim.get("status") or {}).get("phase") == "Bound")


def wait_for(
    check: Callable[[], int], target: int, *, what: str, timeout: float, started: float
) -> float:
    """Seconds from ``started`` until ``check()`` reaches ``target``; progress on stderr."""
    last, last_time = -1, 0.0
    deadline = time.monotonic() + timeout
    while (done := check()) < target:
        if done != last and time.monotonic() - last_time >= PROGRESS_SECONDS:
            log(f"    {done}/{target} {what} after {time.monotonic() - started:.1f}s")
            last, last_time = done, time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"Only {done} of {target} {what} after {timeout:.0f}s")
        time.sleep(WATCHED_POLL_SECONDS)
    return time.monotonic() - started


def wait_all_ready(
    products: WatchedCollection,
    names: list[tuple[str, str]],
    *,
    timeout: float,
    started: float,
    generations: dict[tuple[str, str], int] | None = None,
) -> float:
    """Seconds from ``started`` until every named product is Ready (at ``generations``, when
    given: the events of a change may still be on their way)."""
    wanted = set(names)
    at_least = generations or {}

    def ready() -> int:
        summaries = products.summaries(wanted)
        return sum(
            1
            for key, (generation, is_ready, *_) in summaries.items()
            if is_ready and generation >= at_least.get(key, 0)
        )

    return wait_for(ready, len(wanted), what="Ready", timeout=timeout, started=started)


def wait_quiet(admin: BlockingClient, identity: Identity, *, quiet: float = QUIET_SECONDS) -> float:
    """Wait until the identity made no request for ``quiet`` seconds; when it went quiet."""
    last = dispatched(admin, identity)
    since = time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(POLL_SECONDS)
        now = dispatched(admin, identity)
        if now.writes != last.writes:
            last, since = now, time.monotonic()
    return since


# --- phases ------------------------------------------------------------------------------------


async def _apply_all(client_identity: Identity, objects: list[dict[str, Any]]) -> None:
    client = KubeClient(
        Credentials.from_kubeconfig(client_identity.kubeconfig), max_connections=CONCURRENCY
    )
    try:
        await gather_limited(CONCURRENCY, *(client.apply(obj) for obj in objects))
    finally:
        await client.close()


async def _patch_all(
    client_identity: Identity, patches: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Merge patches at the operator's concurrency; the objects as patched."""
    client = KubeClient(
        Credentials.from_kubeconfig(client_identity.kubeconfig), max_connections=CONCURRENCY
    )
    try:
        return await gather_limited(CONCURRENCY, *(client.merge_patch(p, b) for p, b in patches))
    finally:
        await client.close()


def create_namespaces(admin: BlockingClient, names: list[str]) -> None:
    for name in names:
        admin.create("/api/v1/namespaces", {"metadata": {"name": name}})


def create_domains(admin: BlockingClient, names: list[str]) -> None:
    """A DataDomain for each namespace of the operator's products (products outside a domain
    get DomainMismatch and nothing else); the operator onboards them when it starts. The
    namespaces exist (:func:`create_namespaces`): each is handed over to the mesh first, as a
    platform admin does (the operator labels only the namespaces it creates)."""
    for name in names:
        admin.merge_patch(
            f"/api/v1/namespaces/{name}", {"metadata": {"labels": {LABEL_DOMAIN: name}}}
        )
        admin.create(
            DOMAINS,
            {
                "apiVersion": "datamesh.dev/v1alpha1",
                "kind": "DataDomain",
                "metadata": {"name": name},
                "spec": {"owners": {"team": f"{name}-data"}},
            },
        )


def onboard(admin: BlockingClient, run: OperatorRun, domains: list[str]) -> None:
    """Wait until the operator has onboarded every domain and gone quiet: its writes for the
    domains are not the products' cost."""
    started = time.monotonic()

    def onboarded() -> bool:
        return all(_ready(admin.get(f"{DOMAINS}/{name}")) for name in domains)

    wait_until(onboarded, "every DataDomain Ready", timeout=120)
    wait_quiet(admin, run.identity)
    log(f"   {len(domains)} domains onboarded in {time.monotonic() - started:.1f}s")


@dataclass
class Results:
    figures: dict[str, Any] = field(default_factory=dict)

    def __setitem__(self, key: str, value: Any) -> None:
        self.figures[key] = round(value, 3) if isinstance(value, float) else value


def phase_raw(admin: BlockingClient, client: Identity, n: int, results: Results) -> None:
    log(f"1. Limit baseline: {n} products and their children created directly")
    namespaces = [f"raw-{k}" for k in range(NAMESPACES)]
    create_namespaces(admin, namespaces)
    objects: list[dict[str, Any]] = []
    for namespace, name in product_names("raw", 0, n):
        document = bench_product(namespace, name)
        objects.append(document)
        objects += build_children(DataProduct.from_object(document), prometheus_available=False)
    in_phase = set(namespaces)
    with WatchedCollection(admin.credentials, ALL_CLAIMS, claim_bound) as claims:

        def bound() -> int:
            summaries = claims.summaries().items()
            return sum(is_bound for (ns, _), is_bound in summaries if ns in in_phase)

        before = dispatched(admin, client)
        started = time.monotonic()
        # As the operator does: a binding needs its Role to exist (neither identity may `bind`).
        asyncio.run(_apply_all(client, [o for o in objects if o["kind"] != "RoleBinding"]))
        asyncio.run(_apply_all(client, [o for o in objects if o["kind"] == "RoleBinding"]))
        results["t_raw_create_s"] = time.monotonic() - started
        wait_for(bound, 2 * n, what="claims Bound", timeout=3600, started=started)
        # As the operator does for a Retain port: its bound volume kept past its claim.
        volumes = admin.get("/api/v1/persistentvolumes").get("items") or []
        retain = {"spec": {"persistentVolumeReclaimPolicy": "Retain"}}
        patches = [
            (f"/api/v1/persistentvolumes/{volume['metadata']['name']}", retain)
            for volume in volumes
            if (volume["spec"].get("claimRef") or {}).get("namespace") in in_phase
        ]
        asyncio.run(_patch_all(client, patches))
        results["t_raw_s"] = time.monotonic() - started
    results["w_raw"] = (dispatched(admin, client) - before).writes
    log(f"   {len(objects)} objects in {results.figures['t_raw_s']:.1f}s")


def phase_operator(
    admin: BlockingClient,
    client: Identity,
    run: OperatorRun,
    *,
    products: WatchedCollection,
    n: int,
    results: Results,
) -> list[tuple[str, str]]:
    log(f"2. Operator: {n} products created, until all are Ready")
    names = product_names("op", 0, n)
    before = dispatched(admin, run.identity)
    started = time.monotonic()
    asyncio.run(_apply_all(client, [bench_product(ns, name) for ns, name in names]))
    results["t_op_s"] = wait_all_ready(products, names, timeout=3600, started=started)
    wait_quiet(admin, run.identity)
    spent = dispatched(admin, run.identity) - before
    results["w_op"] = spent.writes
    results["writes_per_product"] = spent.writes / n
    results["reads_per_product"] = spent.reads / n
    results["ratio"] = results.figures["t_op_s"] / results.figures["t_raw_s"]
    return names


def phase_idle(admin: BlockingClient, run: OperatorRun, seconds: float, results: Results) -> None:
    log(f"3. Idle: {seconds:.0f}s with every product Ready")
    before = dispatched(admin, run.identity)
    time.sleep(seconds)
    results["idle_writes"] = (dispatched(admin, run.identity) - before).writes
    results["idle_seconds"] = seconds


def phase_restart(admin: BlockingClient, run: OperatorRun, n: int, results: Results) -> None:
    log("4. Restart with every product Ready")
    run.stop()
    before = dispatched(admin, run.identity)
    started = time.monotonic()
    run.start()
    wait_until(lambda: run.successful_reconciles() >= n, "every product resumed", timeout=3600)
    quiet_since = wait_quiet(admin, run.identity)
    results["restart_writes"] = (dispatched(admin, run.identity) - before).writes
    results["restart_idle_s"] = quiet_since - started


def phase_update(
    admin: BlockingClient,
    client: Identity,
    run: OperatorRun,
    *,
    products: WatchedCollection,
    names: list[tuple[str, str]],
    results: Results,
) -> None:
    log(f"5. Update storm: a new schedule for every one of {len(names)} products")
    before = dispatched(admin, run.identity)
    schedule = {"spec": {"pipelines": bench_product("x", "x")["spec"]["pipelines"]}}
    schedule["spec"]["pipelines"][0]["schedule"] = "0 4 1 1 *"
    started = time.monotonic()
    patched = asyncio.run(
        _patch_all(
            client, [(f"{PRODUCTS.format(namespace=ns)}/{name}", schedule) for ns, name in names]
        )
    )
    generations = {
        (body["metadata"]["namespace"], body["metadata"]["name"]): body["metadata"]["generation"]
        for body in patched
    }
    results["update_s"] = wait_all_ready(
        products, names, timeout=3600, started=started, generations=generations
    )
    wait_quiet(admin, run.identity)
    results["update_writes_per_product"] = (dispatched(admin, run.identity) - before).writes / len(
        names
    )


def phase_latency(admin: BlockingClient, client: Identity, count: int, results: Results) -> None:
    log(f"6. Latency: {count} products created one by one")
    durations = []
    with BlockingClient.from_kubeconfig(client.kubeconfig) as rest:
        for index in range(count):
            document = bench_product("op-0", f"latency-{index:03d}")
            path = f"{PRODUCTS.format(namespace='op-0')}/{document['metadata']['name']}"
            started = time.monotonic()
            rest.create(PRODUCTS.format(namespace="op-0"), document)
            while not _ready(admin.get(path)):
                if time.monotonic() - started > 120:
                    raise TimeoutError(f"{path} not Ready after 120s")
                time.sleep(0.02)
            durations.append(time.monotonic() - started)
    durations.sort()
    results["p50_ready_s"] = statistics.median(durations)
    results["p95_ready_s"] = durations[min(len(durations) - 1, round(0.95 * len(durations)) - 1)]


def phase_growth(
    admin: BlockingClient,
    client: Identity,
    run: OperatorRun,
    products: WatchedCollection,
    *,
    n: int,
    grow_to: int,
    results: Results,
) -> None:
    log(f"7. Memory growth: from {n} to {grow_to} products")
    rss_before, _ = run.memory_kib()
    names = product_names("op", n, grow_to)
    started = time.monotonic()
    asyncio.run(_apply_all(client, [bench_product(ns, name) for ns, name in names]))
    wait_all_ready(products, names, timeout=3600, started=started)
    wait_quiet(admin, run.identity)
    rss_after, peak = run.memory_kib()
    results["grow_to"] = grow_to
    results["rss_at_grow_to_mib"] = rss_after / 1024
    results["peak_rss_at_grow_to_mib"] = peak / 1024
    results["rss_growth_kib_per_product"] = (rss_after - rss_before) / (grow_to - n)


# --- the run -----------------------------------------------------------------------------------


def machine_facts() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def git_commit() -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        head, changes = (
            subprocess.run(
                [git, "-C", str(REPO), *command],
                capture_output=True, text=True, check=True, timeout=10,
            ).stdout.strip()
            for command in (("rev-parse", "--short", "HEAD"), ("status", "--porcelain"))
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}-dirty" if changes else head or None


def phase_operations(
    admin: BlockingClient,
    client: Identity,
    run: OperatorRun,
    *,
    products: WatchedCollection,
    args: argparse.Namespace,
    results: Results,
) -> None:
    """Phases 2 to 7, with the operator running."""
    names = phase_operator(admin, client, run, products=products, n=args.n, results=results)
    rss, peak = run.memory_kib()
    results["rss_mib"] = rss / 1024
    results["peak_rss_mib"] = peak / 1024
    phase_idle(admin, run, args.idle_seconds, results)
    phase_restart(admin, run, args.n, results)
    phase_update(admin, client, run, products=products, names=names, results=results)
    phase_latency(admin, client, args.latency_count, results)
    if args.grow_to:
        phase_growth(admin, client, run, products, n=args.n, grow_to=args.grow_to, results=results)


@contextmanager
def control_plane(directory: Path) -> Iterator[controlplane.ClusterInfo]:
    """kwok's node only: the figures stay comparable with the runs before the real node."""
    info = controlplane.up(directory, node_mode=NodeMode.KWOK)
    try:
        yield info
    finally:
        controlplane.down(directory)


KEYS = (
    "n", "t_raw_s", "t_op_s", "ratio", "children_per_product", "writes_per_product",
    "idle_writes", "restart_writes", "update_s", "p50_ready_s", "p95_ready_s", "rss_mib",
    "rss_growth_kib_per_product",
)  # fmt: skip


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    results = Results()
    results["n"] = args.n
    results["children_per_product"] = children_per_product()
    with tempfile.TemporaryDirectory(prefix="dpo-bench-") as scratch:
        work = Path(scratch)
        with control_plane(work / "cluster") as info:
            results["kubernetes"] = info.kubernetes_version
            with BlockingClient.from_kubeconfig(info.kubeconfig) as admin:
                install_crds(admin, sys.stderr)
                operator, client = create_identities(admin, work)
                phase_raw(admin, client, args.n, results)
                namespaces = [f"op-{k}" for k in range(NAMESPACES)]
                create_namespaces(admin, namespaces)
                create_domains(admin, namespaces)
                run = OperatorRun(operator, namespaces, args.operator_log, args.drift_interval)
                products = WatchedCollection(admin.credentials, ALL_PRODUCTS, product_summary)
                with products:
                    run.start()
                    try:
                        onboard(admin, run, namespaces)
                        phase_operations(
                            admin, client, run, products=products, args=args, results=results
                        )
                    finally:
                        run.stop()
    return recorded(results.figures, KEYS, args.command)


def recorded(found: dict[str, Any], keys: tuple[str, ...], command: str) -> dict[str, Any]:
    """The figures in the report's order, then what the run was: commit, time, command, machine."""
    figures = {key: found.get(key) for key in keys}
    figures.update(
        {key: value for key, value in found.items() if key not in figures},
        commit=git_commit(),
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        command=command,
        machine=machine_facts(),
    )
    return figures


def add_size_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every benchmark takes: its size, where it writes, what it records."""
    parser.add_argument("--n", type=int, default=50, help="products (default 50)")
    parser.add_argument("--grow-to", type=int, default=0, help="then grow to this many (memory)")
    parser.add_argument("--results-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument(
        "--command", default=None, help="the command line to record (default: this one)"
    )


def checked_sizes(
    parser: argparse.ArgumentParser, argv: list[str] | None, module: str
) -> argparse.Namespace:
    """Parse ``argv``; refuse sizes that measure nothing; the command line to record."""
    args = parser.parse_args(argv)
    if args.n < NAMESPACES:
        parser.error(f"--n must be at least {NAMESPACES}")
    if args.grow_to and args.grow_to <= args.n:
        parser.error("--grow-to must be larger than --n")
    args.command = args.command or f"python -m {module} " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    return args


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_arguments(parser)
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="idle phase length")
    parser.add_argument("--latency-count", type=int, default=20, help="single products timed")
    parser.add_argument("--drift-interval", type=float, default=300.0, help="operator's")
    parser.add_argument(
        "--operator-log", type=Path, default=Path(tempfile.gettempdir()) / "dpo-bench-operator.log"
    )
    return checked_sizes(parser, argv, "benchmarks.mesh")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.operator_log.unlink(missing_ok=True)
    figures = run_benchmark(args)
    print(render_table(figures))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"{figures['date'].replace(':', '-')}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    update_docs(args.docs, figures, render_markdown(figures))
    log(f"Wrote {path} and {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
