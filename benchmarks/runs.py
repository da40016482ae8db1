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
4. the runs that failed (must be 0) and the rows each published (must be the source's);
   then, one run at a time (a second run of up to five products, each requested once the one
   before showed its result), p50 and max from request to result with no other run beside it;
5. where a run's time goes, as medians of the moments each stage was first seen by watches
   on the run Jobs and their pods: the operator making the Job, the pod scheduled, its
   container running, exited, the Job marked ended, and the status showing the result.

It prints a table and a JSON line, writes ``benchmarks/results/runs-<time>.json`` and updates
its section of ``docs/benchmarks.md``. The runner's own throughput against PostgreSQL alone is
``make bench-runner`` (see docs/runner.md).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
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
from dataproduct_operator.constants import (
    ANNOTATION_RUN,
    COMPONENT_PIPELINE_RUN,
    LABEL_COMPONENT,
    LABEL_PIPELINE,
    LABEL_PRODUCT,
)
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.client import KubeClient, gather_limited
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.reconcile.dataproduct import (
    DOMAIN_AFTER_PRODUCTS_SECONDS,
    STORE_AFTER_PRODUCTS_SECONDS,
)

SOURCE_NAMESPACE = "runs-src"
NAMESPACES = 2  # the consumers' domains
READERS_PER_SOURCE = 60  # a product grants at most 64 readers
ONE_AT_A_TIME = 5  # products whose second run is requested alone
PRODUCTS = "/apis/datamesh.dev/v1alpha1/namespaces/{namespace}/dataproducts"
SETTLE_SECONDS = max(DOMAIN_AFTER_PRODUCTS_SECONDS, STORE_AFTER_PRODUCTS_SECONDS) + 1.0
RUN_SELECTOR = f"{LABEL_COMPONENT}={COMPONENT_PIPELINE_RUN}"
ALL_JOBS = f"/apis/batch/v1/jobs?labelSelector={RUN_SELECTOR}"
ALL_PODS = f"/api/v1/pods?labelSelector={LABEL_PIPELINE}"  # pipeline pods
# A run's stages, in order: each first seen by the watches (the status's from the products').
STAGES = ("job_created", "pod_scheduled", "container_running", "container_exited", "job_ended")
# From the runner's log lines' own times (``kubectl logs --timestamps``): its first line, once
# Python has started and imported the engine, and its report, its last.
LOGGED = ("runner_started", "runner_reported")
# The steps reported: name -> (from, to). The status may show the result before the Job
# controller marks the Job ended (the operator reads the ended container): both from the exit.
STEPS = {
    "job_created": ("request", "job_created"),
    "pod_scheduled": ("job_created", "pod_scheduled"),
    "container_running": ("pod_scheduled", "container_running"),
    "container_exited": ("container_running", "container_exited"),
    "runner_started": ("container_running", "runner_started"),
    "runner_reported": ("runner_started", "runner_reported"),
    "exit_seen": ("runner_reported", "container_exited"),
    "status_shown": ("container_exited", "status_shown"),
    "job_ended": ("container_exited", "job_ended"),
}


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


def run_summary(
    product: dict[str, Any],
) -> tuple[int, bool, str | None, int | None, str | None]:
    """Generation, Ready, and its build pipeline's last run: result, rows written, Job."""
    generation, ready = product_summary(product)
    for pipeline in (product.get("status") or {}).get("pipelines") or []:
        last = pipeline.get("lastRun") or {}
        if pipeline.get("name") == "build" and last:
            result, rows, job = last.get("result"), last.get("rowsWritten"), last.get("jobName")
            return generation, ready, result, rows, job
    return generation, ready, None, None, None


def phase_one_at_a_time(
    run: OperatorRun,
    client_kubeconfig: Path,
    watched: WatchedCollection,
    names: list[tuple[str, str, int]],
    results: Results,
) -> None:
    """Each product's second run requested alone, once the one before has shown its result:
    the latency of a run with no other running beside it."""
    keys = [(namespace, name) for namespace, name, _ in names[:ONE_AT_A_TIME]]
    log(f"3. {len(keys)} runs one at a time, each until its status shows the result")
    latencies = []
    for key in keys:
        before = watched.summaries({key})[key][4]
        sent = asyncio.run(_request_runs(client_kubeconfig, [(*key, 0)], run_id="again"))[key]
        deadline = sent + 300
        while True:
            summary = watched.summaries({key})[key]
            if summary[4] != before and summary[2] in ("Succeeded", "Failed"):
                latencies.append(time.monotonic() - sent)
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"The second run of {key[0]}/{key[1]} did not end in 300 s")
            time.sleep(0.02)
    latencies.sort()
    results["alone_p50_run_s"] = round(statistics.median(latencies), 2)
    results["alone_max_run_s"] = round(latencies[-1], 2)


def job_stage(job: dict[str, Any]) -> tuple[str | None, str]:
    """A run Job's product, and its furthest stage: made, or ended (Complete or Failed)."""
    product = (job["metadata"].get("labels") or {}).get(LABEL_PRODUCT)
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return product, "job_ended"
    return product, "job_created"


def pod_stage(pod: dict[str, Any]) -> tuple[str | None, str | None]:
    """A run pod's product, and its furthest stage: scheduled, container running, exited."""
    product = (pod["metadata"].get("labels") or {}).get(LABEL_PRODUCT)
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        state = container.get("state") or {}
        if "terminated" in state:
            return product, "container_exited"
        if "running" in state:
            return product, "container_running"
    return product, "pod_scheduled" if (pod.get("spec") or {}).get("nodeName") else None


def logged_times(admin: BlockingClient, pod: dict[str, Any]) -> dict[str, float]:
    """When the runner wrote its first and last line, on the monotonic clock (both from the
    same machine's wall clock); {} when the log cannot be read."""
    metadata = pod["metadata"]
    path = f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}/log"
    status, body = admin.raw("GET", path, query={"timestamps": "true"})
    lines = body.decode(errors="replace").splitlines() if status == 200 else []
    stamps = [line.split(" ", 1)[0] for line in lines if line.strip()]
    if not stamps:
        return {}
    offset = time.time() - time.monotonic()

    def monotonic(stamp: str) -> float:
        whole, _, fraction = stamp.rstrip("Z").partition(".")
        moment = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC)
        return moment.timestamp() + float(f"0.{fraction or 0}") - offset

    return dict(zip(LOGGED, (monotonic(stamps[0]), monotonic(stamps[-1])), strict=True))


class StageClock:
    """When each run's stages were first seen (monotonic), by product key."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], dict[str, float]] = {}

    def observe(self, watched: WatchedCollection, now: float) -> None:
        for (namespace, _), (product, stage) in watched.summaries().items():
            if product is None or stage is None:
                continue
            stages = self.seen.setdefault((namespace, product), {})
            # A later stage seen implies the earlier ones happened by then.
            for earlier in STAGES[: STAGES.index(stage) + 1]:
                stages.setdefault(earlier, now)

    def medians(
        self, sent: dict[tuple[str, str], float], ended: dict[tuple[str, str], float]
    ) -> dict[str, float]:
        """Median seconds of each step (``STEPS``) over the runs that saw both its ends."""
        steps: dict[str, list[float]] = {}
        for key, start in sent.items():
            times = {**self.seen.get(key, {}), "request": start}
            if key in ended:
                times["status_shown"] = ended[key]
            for name, (first, then) in STEPS.items():
                if first in times and then in times:
                    steps.setdefault(name, []).append(times[then] - times[first])
        return {name: round(statistics.median(values), 2) for name, values in steps.items()}


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
    client_kubeconfig: Path, names: list[tuple[str, str, int]], *, run_id: str = "bench"
) -> dict[tuple[str, str], float]:
    """Annotate every product at the operator's concurrency; when each request was sent."""
    sent: dict[tuple[str, str], float] = {}
    client = KubeClient(Credentials.from_kubeconfig(client_kubeconfig), max_connections=CONCURRENCY)

    async def request(namespace: str, name: str) -> None:
        patch = {"metadata": {"annotations": {ANNOTATION_RUN: f"build:{run_id}"}}}
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
    with (
        WatchedCollection(admin.credentials, ALL_JOBS, job_stage) as jobs,
        WatchedCollection(admin.credentials, ALL_PODS, pod_stage) as pods,
    ):
        _phase_runs(
            admin, run, client_kubeconfig, watched, names, stage_watches=(jobs, pods),
            source_rows=source_rows, results=results,
        )  # fmt: skip


def _wait_for_results(
    watched: WatchedCollection,
    keys: list[tuple[str, str]],
    stage_watches: tuple[WatchedCollection, ...],
    clock: StageClock,
    *,
    started: float,
) -> dict[tuple[str, str], float]:
    """When each product's status first showed its run's result; the stages seen meanwhile,
    and until the Job controller has marked every Job ended (it may do so after)."""
    seen: dict[tuple[str, str], float] = {}
    deadline = started + 1800
    last_log = 0.0
    while len(seen) < len(keys):
        now = time.monotonic()
        for stage_watch in stage_watches:
            clock.observe(stage_watch, now)
        for key, summary in watched.summaries(set(keys)).items():
            if key not in seen and summary[2] in ("Succeeded", "Failed"):
                seen[key] = now
        if now > deadline:
            raise TimeoutError(f"Only {len(seen)} of {len(keys)} runs ended after 1800 s")
        if now - last_log >= 10:
            log(f"    {len(seen)}/{len(keys)} runs ended after {now - started:.1f}s")
            last_log = now
        time.sleep(0.05)
    settle = time.monotonic() + 30
    while time.monotonic() < settle and not all(
        "job_ended" in clock.seen.get(key, {}) for key in seen
    ):
        for stage_watch in stage_watches:
            clock.observe(stage_watch, time.monotonic())
        time.sleep(0.05)
    return seen


def _phase_runs(
    admin: BlockingClient,
    run: OperatorRun,
    client_kubeconfig: Path,
    watched: WatchedCollection,
    names: list[tuple[str, str, int]],
    *,
    stage_watches: tuple[WatchedCollection, ...],
    source_rows: int,
    results: Results,
) -> None:
    n = len(names)
    # What creating the products asked for later (their domains' and store's counts, a few
    # seconds after a burst) is done before the runs are counted.
    wait_quiet(admin, run.identity, quiet=SETTLE_SECONDS)
    log(f"2. {n} runs requested at once, until every status shows its result")
    before = dispatched(admin, run.identity)
    started = time.monotonic()
    sent = asyncio.run(_request_runs(client_kubeconfig, names))
    keys = [(namespace, name) for namespace, name, _ in names]
    clock = StageClock()
    seen = _wait_for_results(watched, keys, stage_watches, clock, started=started)
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
    for pod in admin.get("/api/v1/pods", query={"labelSelector": LABEL_PIPELINE})["items"]:
        product = (pod["metadata"].get("labels") or {}).get(LABEL_PRODUCT)
        if product is not None:
            clock.seen.setdefault((pod["metadata"]["namespace"], product), {}).update(
                logged_times(admin, pod)
            )
    for stage, seconds in clock.medians(sent, seen).items():
        results[f"stage_{stage}_s"] = seconds
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
    "alone_p50_run_s", "alone_max_run_s",
    "writes_per_run", "reads_per_run", "failed_runs", "rows_per_run",
    *(f"stage_{step}_s" for step in STEPS),
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
                        phase_one_at_a_time(run, client.kubeconfig, watched, names, results)
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
    ("alone_p50_run_s", "request -> result, one run at a time (a second run each), p50 (s)", ""),
    ("alone_max_run_s", "... max (s)", ""),
    ("writes_per_run", "operator API writes per run", "≤ 2"),
    ("reads_per_run", "operator API reads per run", ""),
    ("stage_job_created_s", "of which: request -> the operator made the Job, p50 (s)", ""),
    ("stage_pod_scheduled_s", "... Job -> its pod scheduled (s)", ""),
    ("stage_container_running_s", "... scheduled -> container running (s)", ""),
    ("stage_container_exited_s", "... running -> exited: the runner's own work (s)", ""),
    ("stage_runner_started_s", "    of which: running -> the runner's first line (s)", ""),
    ("stage_runner_reported_s", "    ... first line -> its report (s)", ""),
    ("stage_exit_seen_s", "    ... report -> the node says it exited (s)", ""),
    ("stage_status_shown_s", "... exited -> the status shows the result (s)", ""),
    ("stage_job_ended_s", "(exited -> the Job controller marks the Job ended) (s)", ""),
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
