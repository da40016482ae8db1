"""The catalog at mesh scale: listing the mesh, memory, page latency, freshness, API calls.

``make bench-catalog N=1000`` (or ``python -m benchmarks.catalog --n 1000``). On a local control
plane of its own, with N products of the mesh benchmark's shape spread over 5 namespaces (each
reading about two ports of earlier products and one of 20 external sources, so the lineage graph
has about 2N edges between products; one in 25 Hidden and one in 25 Domain) and their connection
ConfigMaps, it runs ``dpo catalog`` as a ServiceAccount holding exactly the standalone catalog's
ClusterRole, and measures:

1. the time from its start until ``/healthz`` answers 200 (every product listed), its RSS;
2. the latency (p50, p95, max of sequential requests) and size of pages and API routes;
3. the requests the catalog's identity made to the API server during those page views (the API
   server's own counts, see ``benchmarks.setup``);
4. the whole mesh exported (Backstage, ODPS): how long, and a product page asked for meanwhile
   (the export renders in a worker thread; the event loop must go on);
5. freshness: a product's description patched, until the product's API answer shows it;
6. with ``--grow-to M``, its RSS growth per product from N to M;
7. hostile: the operator started as the chart runs it (the catalog in its process, sharing its
   event loop, over the same mesh), products created one by one in a domain of their own,
   create->Ready timed while the catalog is quiet, then while 50 clients send 8 KB searches
   and maximal allowed ones and 20 clients ask for whole-mesh exports without pause; the
   operator's peak RSS.

Until phase 7 no operator runs: the products have no status, so the catalog shows their health
as unknown (in phase 7 the operator marks them DomainMismatch: they have no DataDomain).
It prints tables, writes ``benchmarks/results/catalog-<time>.json`` and updates the catalog's
section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.mesh import (
    CONCURRENCY,
    NAMESPACES,
    PROGRESS_SECONDS,
    OperatorRun,
    Results,
    add_size_arguments,
    bench_product,
    checked_sizes,
    control_plane,
    create_domains,
    create_namespaces,
    log,
    onboard,
    product_summary,
    recorded,
)
from benchmarks.report import (
    CATALOG_END,
    CATALOG_ROWS,
    CATALOG_START,
    render_markdown,
    render_routes_markdown,
    render_routes_table,
    render_table,
    update_docs,
)
from benchmarks.setup import Identity, create_identities, create_identity, dispatched
from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.cluster.dev import install_crds
from dataproduct_operator.interrupts import sigterm_as_interrupt
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.client import KubeClient, gather_limited
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.manifests.rbac import build_catalog_rules
from dataproduct_operator.specs.dataproduct import build_connection_config_map

PREFIX = "cat"
CATALOG = "dataproduct-catalog"
PRODUCTS = "/apis/datamesh.dev/v1alpha1/namespaces/{namespace}/dataproducts"
UPSTREAMS = 2
UPSTREAM_PORTS = ("orders-v1", "daily")
EXTERNAL_SOURCES = 20
CYCLE = 25  # in every 25 products, one Hidden and one Domain
HIDDEN_AT, DOMAIN_AT = 7, 13
SEARCH_WORD = "email"  # a column of every product: the search finds every listed one
SYNC_TIMEOUT = 600.0
POLL_SECONDS = 0.02
FRESHNESS_POLL_SECONDS = 0.005
FRESHNESS_PAUSE_SECONDS = 0.2
SETTLE_SECONDS = 1.0


# --- the mesh ----------------------------------------------------------------------------------


def product_key(index: int) -> tuple[str, str]:
    return f"{PREFIX}-{index % NAMESPACES}", f"p-{index:05d}"


def discoverability(index: int) -> str:
    return {HIDDEN_AT: "Hidden", DOMAIN_AT: "Domain"}.get(index % CYCLE, "Public")


def catalog_product(index: int) -> dict[str, Any]:
    """The mesh benchmark's product, reading ports of earlier products chosen at random (the
    same for the same index) and one of a few external sources."""
    namespace, name = product_key(index)
    document = bench_product(namespace, name)
    spec = document["spec"]
    spec["description"] = f"Orders of {namespace}, one row per order line (product {index})."
    spec["tags"] = ["orders", f"region-{index % 7}"]
    spec["discoverability"] = discoverability(index)
    source = {"type": "postgres", "uri": f"postgresql://shop-db-{index % EXTERNAL_SOURCES}/shop"}
    spec["inputs"] = [{"name": "raw", "external": source}]
    chooser = random.Random(index)  # noqa: S311 - the same mesh on every run; no secret in it
    upstreams = chooser.sample(range(index), min(UPSTREAMS, index))
    for upstream, port in zip(sorted(upstreams), UPSTREAM_PORTS, strict=False):
        up_namespace, up_name = product_key(upstream)
        spec["inputs"].append(
            {
                "name": f"from-{up_name}",
                "dataProduct": {"namespace": up_namespace, "name": up_name, "port": port},
            }
        )
    return document


def mesh_objects(start: int, stop: int) -> list[dict[str, Any]]:
    """Products ``start`` to ``stop`` and the connection ConfigMap the operator would write for
    each (so product pages show how to connect)."""
    objects = []
    for index in range(start, stop):
        document = catalog_product(index)
        objects += [document, build_connection_config_map(DataProduct.from_object(document))]
    return objects


def listed_count(n: int) -> int:
    return sum(1 for index in range(n) if discoverability(index) == "Public")


def sample_product(n: int) -> tuple[str, str]:
    """A listed product in the middle of the mesh: upstream and downstream of others."""
    index = n // 2
    while discoverability(index) != "Public":
        index += 1
    return product_key(index)


async def _apply_all(credentials: Credentials, objects: list[dict[str, Any]], what: str) -> None:
    """Server-side apply at the operator's concurrency, with a progress line a second."""
    client = KubeClient(credentials, max_connections=CONCURRENCY)
    done, started = 0, time.monotonic()

    async def apply(obj: dict[str, Any]) -> None:
        nonlocal done
        await client.apply(obj)
        done += 1

    async def progress() -> None:
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            log(f"    {done}/{len(objects)} {what} after {time.monotonic() - started:.1f}s")

    reporter = asyncio.get_running_loop().create_task(progress())
    try:
        await gather_limited(CONCURRENCY, *(apply(obj) for obj in objects))
    finally:
        reporter.cancel()
        await asyncio.gather(reporter, return_exceptions=True)
        await client.close()


def phase_create(admin: BlockingClient, n: int, results: Results) -> None:
    log(f"1. The mesh: {n} products and their connection ConfigMaps (no operator runs)")
    create_namespaces(admin, [f"{PREFIX}-{k}" for k in range(NAMESPACES)])
    started = time.monotonic()
    objects = mesh_objects(0, n)
    asyncio.run(_apply_all(admin.credentials, objects, "objects created"))
    results["t_create_s"] = time.monotonic() - started
    results["listed"] = listed_count(n)
    log(f"   {len(objects)} objects in {results.figures['t_create_s']:.1f}s")


# --- the catalog process -----------------------------------------------------------------------


class Browser:
    """Sequential GETs over one kept-alive connection, as one user's browser would send them."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._connection: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[int, bytes, float]:
        """Status, body, and seconds from sending the request to the last byte of the answer."""
        if self._connection is None:
            self._connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=120)
        started = time.perf_counter()
        try:
            self._connection.request("GET", path)
            response = self._connection.getresponse()
            body = response.read()
        except (http.client.HTTPException, OSError):
            self.close()
            raise
        return response.status, body, time.perf_counter() - started

    def get_ok(self, path: str) -> tuple[bytes, float]:
        status, body, seconds = self.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
        return body, seconds

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class CatalogRun:
    """``dpo catalog`` as its own identity, in a process of its own."""

    identity: Identity
    log_path: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start it; the monotonic time it was started at."""
        with self.log_path.open("ab") as output:
            started = time.monotonic()
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "dataproduct_operator", "catalog",
                    f"--kubeconfig={self.identity.kubeconfig}", f"--port={self.port}",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        return started

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"The catalog exited ({self.process.returncode}); see {self.log_path}"
            )

    def memory_kib(self) -> tuple[int, int]:
        """(current RSS, peak RSS) of the catalog process, in KiB."""
        if self.process is None:
            raise RuntimeError("The catalog is not running")
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def phase_sync(admin: BlockingClient, run: CatalogRun, browser: Browser, results: Results) -> None:
    log("2. The catalog: started, until /healthz answers 200 (every product listed)")
    before = dispatched(admin, run.identity)
    started = run.start()
    listening: float | None = None
    last_report = started
    while True:
        run.check_alive()
        try:
            status, _, _ = browser.get("/healthz")
        except OSError:
            status = None
        now = time.monotonic()
        if status is not None and listening is None:
            listening = now - started
        if status == 200:
            break
        if now - last_report >= PROGRESS_SECONDS:
            state = "not listening yet" if status is None else f"{status} (listing the mesh)"
            log(f"    /healthz: {state} after {now - started:.1f}s")
            last_report = now
        if now - started > SYNC_TIMEOUT:
            raise TimeoutError(f"The catalog did not list the mesh in {SYNC_TIMEOUT:.0f}s")
        time.sleep(POLL_SECONDS)
    results["t_listening_s"] = listening
    results["t_synced_s"] = time.monotonic() - started
    # Each watch starts just after its listing: counted once they have surely started.
    time.sleep(SETTLE_SECONDS)
    rss, _ = run.memory_kib()
    results["rss_synced_mib"] = rss / 1024
    results["sync_reads"] = (dispatched(admin, run.identity) - before).reads
    log(
        f"   listening after {listening:.2f}s, mesh listed after "
        f"{results.figures['t_synced_s']:.2f}s, RSS {rss / 1024:.0f} MiB"
    )


# --- page views --------------------------------------------------------------------------------


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest rank, as the mesh benchmark reports its p95."""
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def routes(n: int) -> list[str]:
    namespace, name = sample_product(n)
    product = f"{namespace}/{name}"
    focus = urllib.parse.urlencode({"focus": f"product:{product}", "hops": 2})
    return [
        "/",
        f"/?q={SEARCH_WORD}",
        f"/?domain={namespace}&health=unknown",
        f"/dataproducts/{product}",
        "/lineage",
        f"/lineage?{focus}",
        "/api/v1/dataproducts?limit=1000",
        f"/api/v1/dataproducts/{product}",
        "/api/v1/lineage",
        f"/api/v1/dataproducts/{product}/export/odcs",
    ]


def time_route(browser: Browser, path: str, count: int) -> dict[str, Any]:
    durations, size = [], 0
    last_report = time.monotonic()
    for done in range(count):
        body, seconds = browser.get_ok(path)
        durations.append(seconds)
        size = len(body)
        if time.monotonic() - last_report >= PROGRESS_SECONDS:
            log(f"    {done + 1}/{count} requests of {path}")
            last_report = time.monotonic()
    durations.sort()
    return {
        "p50_ms": round(statistics.median(durations) * 1000, 2),
        "p95_ms": round(percentile(durations, 0.95) * 1000, 2),
        "max_ms": round(durations[-1] * 1000, 2),
        "bytes": size,
    }


def phase_mesh_export(browser: Browser, port: int, *, n: int, results: Results) -> None:
    """The whole mesh exported (the slow route: every product parsed and rendered), and a
    product page asked for meanwhile from another connection: the catalog's event loop, in
    the operator's process the operator's, must go on while an export renders."""
    namespace, name = sample_product(n)
    page = f"/api/v1/dataproducts/{namespace}/{name}"
    for format_name in ("backstage", "odps"):
        path = f"/api/v1/export/{format_name}"
        log(f"4. The whole mesh exported: {path}, with {page} asked for meanwhile")
        exported: dict[str, Any] = {}

        def export(path: str = path, exported: dict[str, Any] = exported) -> None:
            exported["body"], exported["seconds"] = Browser(port).get_ok(path)

        worker = threading.Thread(target=export)
        worker.start()
        meanwhile: list[float] = []
        while worker.is_alive():
            meanwhile.append(browser.get_ok(page)[1])
        worker.join()
        meanwhile.sort()
        results[f"export_{format_name}_s"] = exported["seconds"]
        results[f"export_{format_name}_bytes"] = len(exported["body"])
        results[f"export_{format_name}_page_p50_ms"] = (
            statistics.median(meanwhile) * 1000 if meanwhile else None
        )
        results[f"export_{format_name}_page_max_ms"] = meanwhile[-1] * 1000 if meanwhile else None
        slowest = meanwhile[-1] * 1000 if meanwhile else 0.0
        log(
            f"   {exported['seconds']:.2f}s, {len(exported['body'])} bytes; meanwhile "
            f"{len(meanwhile)} product pages, the slowest {slowest:.0f} ms"
        )


def phase_views(
    admin: BlockingClient,
    run: CatalogRun,
    browser: Browser,
    *,
    n: int,
    count: int,
    results: Results,
) -> None:
    paths = routes(n)
    log(f"3. Page views: {count} sequential requests of each of {len(paths)} routes")
    before = dispatched(admin, run.identity)
    started = time.monotonic()
    timed: dict[str, dict[str, Any]] = {}
    for path in paths:
        timed[path] = figures = time_route(browser, path, count)
        log(
            f"   {path:<72} p50 {figures['p50_ms']:8.1f} ms  p95 {figures['p95_ms']:8.1f} ms  "
            f"max {figures['max_ms']:8.1f} ms  {figures['bytes']} bytes"
        )
    results["views_s"] = time.monotonic() - started
    spent = dispatched(admin, run.identity) - before
    results["views"] = count * len(paths)
    results["view_reads"] = spent.reads
    results["view_writes"] = spent.writes
    results["routes"] = timed
    graph = json.loads(browser.get_ok("/api/v1/lineage")[0])
    results["lineage_nodes"] = len(graph["nodes"])
    results["lineage_edges"] = len(graph["edges"])
    rss, _ = run.memory_kib()
    results["rss_after_views_mib"] = rss / 1024
    log(
        f"   {spent.reads} reads and {spent.writes} writes by the catalog during "
        f"{results.figures['views']} page views"
    )


def phase_freshness(
    admin: BlockingClient, browser: Browser, *, n: int, count: int, results: Results
) -> None:
    namespace, name = sample_product(n)
    log(f"5. Freshness: the description of {namespace}/{name} patched {count} times")
    path = f"{PRODUCTS.format(namespace=namespace)}/{name}"
    api = f"/api/v1/dataproducts/{namespace}/{name}"
    delays = []
    for round_ in range(count):
        description = f"Orders, patched by the benchmark (round {round_})."
        admin.merge_patch(path, {"spec": {"description": description}})
        acknowledged = time.monotonic()  # the change is in the API server from here on
        while True:
            answer = json.loads(browser.get_ok(api)[0])
            if answer["summary"]["description"] == description:
                break
            if time.monotonic() - acknowledged > 60:
                raise TimeoutError(f"{api} did not show the new description within 60s")
            time.sleep(FRESHNESS_POLL_SECONDS)
        delays.append(time.monotonic() - acknowledged)
        log(f"    round {round_ + 1}/{count}: shown after {delays[-1] * 1000:.0f} ms")
        time.sleep(FRESHNESS_PAUSE_SECONDS)
    delays.sort()
    results["freshness_p50_s"] = statistics.median(delays)
    results["freshness_max_s"] = delays[-1]


def listed_by_catalog(browser: Browser) -> int:
    return int(json.loads(browser.get_ok("/api/v1/dataproducts?limit=1")[0])["total"])


def phase_growth(
    admin: BlockingClient,
    run: CatalogRun,
    browser: Browser,
    *,
    n: int,
    grow_to: int,
    results: Results,
) -> None:
    log(f"6. Memory growth: from {n} to {grow_to} products")
    rss_before, _ = run.memory_kib()
    asyncio.run(_apply_all(admin.credentials, mesh_objects(n, grow_to), "objects created"))
    wanted = listed_count(grow_to)
    started = last_report = time.monotonic()
    while (total := listed_by_catalog(browser)) < wanted:
        if time.monotonic() - started > SYNC_TIMEOUT:
            raise TimeoutError(f"The catalog lists {total} of {wanted} products")
        if time.monotonic() - last_report >= PROGRESS_SECONDS:
            log(f"    the catalog lists {total}/{wanted} products")
            last_report = time.monotonic()
        time.sleep(POLL_SECONDS)
    log(f"   all {wanted} listed {time.monotonic() - started:.1f}s after the last was created")
    rss_after, _ = run.memory_kib()
    results["grow_to"] = grow_to
    results["rss_at_grow_to_mib"] = rss_after / 1024
    results["rss_growth_kib_per_product"] = (rss_after - rss_before) / (grow_to - n)


# --- hostile visitors of the operator's catalog ---------------------------------------------------

HOSTILE_NAMESPACE = f"{PREFIX}-hostile"
HOSTILE_SEARCHERS = 50
HOSTILE_EXPORTERS = 20
HOSTILE_QUIET_PRODUCTS = 10
HOSTILE_PRODUCTS = 20
LONG_QUERY = "q=" + "a" * 8000  # 8 KB (aiohttp refuses request lines past 8190 bytes)
# The longest search the catalog accepts (16 words, 256 characters), each word one that every
# product's text holds: every listed product is looked at and matches.
WIDEST_QUERY = urllib.parse.urlencode({"q": " ".join(["orders"] * 16).ljust(256)})


@dataclass
class Attack:
    """Clients asking the catalog without pause, each over its own connection, until stopped;
    what it answered, counted by route and status."""

    port: int
    stop: threading.Event = field(default_factory=threading.Event)
    answers: dict[tuple[str, int], int] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _client(self, kind: str, paths: list[str]) -> None:
        browser = Browser(self.port)
        index = 0
        while not self.stop.is_set():
            path = paths[index % len(paths)]
            index += 1
            try:
                status, _, _ = browser.get(path)
            except (http.client.HTTPException, OSError):
                status = 0
            with self.lock:
                self.answers[(kind, status)] = self.answers.get((kind, status), 0) + 1
        browser.close()

    def start(self) -> None:
        searches = [f"/?{LONG_QUERY}", f"/?{WIDEST_QUERY}"]
        exports = ["/api/v1/export/backstage"]
        for kind, paths, count in (
            ("search", searches, HOSTILE_SEARCHERS),
            ("export", exports, HOSTILE_EXPORTERS),
        ):
            for _ in range(count):
                thread = threading.Thread(target=self._client, args=(kind, paths), daemon=True)
                thread.start()
                self.threads.append(thread)

    def finish(self) -> dict[tuple[str, int], int]:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)
        return dict(self.answers)


def time_ready(admin: BlockingClient, names: list[str]) -> list[float]:
    """Create->Ready of products created one by one in the hostile namespace."""
    collection = PRODUCTS.format(namespace=HOSTILE_NAMESPACE)
    durations = []
    for name in names:
        started = time.monotonic()
        admin.create(collection, bench_product(HOSTILE_NAMESPACE, name))
        while not product_summary(admin.get(f"{collection}/{name}"))[1]:
            if time.monotonic() - started > 120:
                raise TimeoutError(f"{HOSTILE_NAMESPACE}/{name} not Ready after 120s")
            time.sleep(POLL_SECONDS)
        durations.append(time.monotonic() - started)
        log(f"    {name}: Ready after {durations[-1]:.2f}s")
    return sorted(durations)


def phase_hostile(
    admin: BlockingClient, work: Path, *, namespaces: list[str], log_path: Path, results: Results
) -> None:
    log(
        f"7. Hostile: the operator serving the catalog over the mesh; products created while "
        f"{HOSTILE_SEARCHERS} clients search and {HOSTILE_EXPORTERS} export the whole mesh"
    )
    operator, _ = create_identities(admin, work)
    create_namespaces(admin, [HOSTILE_NAMESPACE])
    create_domains(admin, [HOSTILE_NAMESPACE])
    run = OperatorRun(operator, [*namespaces, HOSTILE_NAMESPACE], log_path, drift_interval=3600)
    run.start()
    try:
        onboard(admin, run, [HOSTILE_NAMESPACE])  # and the mesh's products resumed: quiet
        browser = Browser(run.catalog_port)
        while browser.get("/healthz")[0] != 200:
            time.sleep(POLL_SECONDS)
        browser.close()
        log(f"   quiet: {HOSTILE_QUIET_PRODUCTS} products created one by one")
        quiet = time_ready(admin, [f"quiet-{i:02d}" for i in range(HOSTILE_QUIET_PRODUCTS)])
        attack = Attack(run.catalog_port)
        attack.start()
        log(f"   under attack: {HOSTILE_PRODUCTS} products created one by one")
        try:
            attacked = time_ready(admin, [f"attacked-{i:02d}" for i in range(HOSTILE_PRODUCTS)])
        finally:
            answers = attack.finish()
        _, peak = run.memory_kib()
    finally:
        run.stop()
    results["hostile_ready_p50_s"] = statistics.median(quiet)
    results["hostile_attack_ready_p50_s"] = statistics.median(attacked)
    results["hostile_attack_ready_max_s"] = attacked[-1]
    results["hostile_searches"] = (
        f"{answers.get(('search', 400), 0)}, {answers.get(('search', 200), 0)}"
    )
    results["hostile_exports"] = (
        f"{answers.get(('export', 200), 0)}, {answers.get(('export', 429), 0)}"
    )
    results["hostile_answers"] = {f"{kind} {status}": n for (kind, status), n in answers.items()}
    results["hostile_peak_rss_mib"] = peak / 1024
    log(
        f"   create->Ready p50 {statistics.median(quiet):.2f}s quiet, "
        f"{statistics.median(attacked):.2f}s under attack (max {attacked[-1]:.2f}s); "
        f"answers {results.figures['hostile_answers']}; operator peak RSS {peak / 1024:.0f} MiB"
    )


# --- the run -----------------------------------------------------------------------------------


def create_catalog_identity(admin: BlockingClient, directory: Path) -> Identity:
    """A ServiceAccount with exactly the standalone catalog's rules, and its flow schemas."""
    return create_identity(admin, CATALOG, build_catalog_rules(), directory, precedence=520)


KEYS = (
    "n", "listed", "lineage_nodes", "lineage_edges", "t_synced_s", "rss_synced_mib",
    "views", "view_reads", "view_writes", "freshness_p50_s", "rss_growth_kib_per_product",
)  # fmt: skip


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    results = Results()
    results["n"] = args.n
    with tempfile.TemporaryDirectory(prefix="dpo-bench-catalog-") as scratch:
        work = Path(scratch)
        with control_plane(work / "cluster") as info:
            results["kubernetes"] = info.kubernetes_version
            with BlockingClient.from_kubeconfig(info.kubeconfig) as admin:
                install_crds(admin, sys.stderr)
                identity = create_catalog_identity(admin, work)
                phase_create(admin, args.n, results)
                run = CatalogRun(identity, args.catalog_log)
                browser = Browser(run.port)
                try:
                    phase_sync(admin, run, browser, results)
                    phase_views(admin, run, browser, n=args.n, count=args.requests, results=results)
                    phase_mesh_export(browser, run.port, n=args.n, results=results)
                    phase_freshness(
                        admin, browser, n=args.n, count=args.freshness_count, results=results
                    )
                    if args.grow_to:
                        phase_growth(
                            admin, run, browser, n=args.n, grow_to=args.grow_to, results=results
                        )
                    _, peak = run.memory_kib()
                    results["peak_rss_mib"] = peak / 1024
                finally:
                    browser.close()
                    run.stop()
                if not args.no_hostile:
                    phase_hostile(
                        admin,
                        work,
                        namespaces=[f"{PREFIX}-{k}" for k in range(NAMESPACES)],
                        log_path=args.operator_log,
                        results=results,
                    )
    return recorded(results.figures, KEYS, args.command)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_arguments(parser)
    parser.add_argument("--requests", type=int, default=50, help="requests of each route")
    parser.add_argument("--freshness-count", type=int, default=10, help="patches timed")
    parser.add_argument(
        "--catalog-log", type=Path, default=Path(tempfile.gettempdir()) / "dpo-bench-catalog.log"
    )
    parser.add_argument(
        "--operator-log",
        type=Path,
        default=Path(tempfile.gettempdir()) / "dpo-bench-catalog-operator.log",
        help="log of the operator of the hostile phase",
    )
    parser.add_argument("--no-hostile", action="store_true", help="skip the hostile phase")
    return checked_sizes(parser, argv, "benchmarks.catalog")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.catalog_log.unlink(missing_ok=True)
    args.operator_log.unlink(missing_ok=True)
    with sigterm_as_interrupt():
        figures = run_benchmark(args)
    print(
        "Until the hostile phase no operator ran: the products have no status, and the "
        "catalog shows health unknown."
    )
    print(render_table(figures, CATALOG_ROWS))
    print()
    print(render_routes_table(figures["routes"]))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"catalog-{figures['date'].replace(':', '-')}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    section = render_markdown(
        figures,
        CATALOG_ROWS,
        markers=(CATALOG_START, CATALOG_END),
        appendix=(render_routes_markdown(figures["routes"]),),
    )
    update_docs(
        args.docs, figures, section, markers=(CATALOG_START, CATALOG_END), heading="Catalog"
    )
    log(f"Wrote {path} and {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
