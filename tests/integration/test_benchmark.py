"""The benchmarks run end to end at a small size, so they cannot rot.

Its figures are not compared with the goals here: timings on a shared machine are unfit for
pass/fail. What is checked is that every figure is measured and reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.catalog import KEYS as CATALOG_KEYS
from benchmarks.mesh import KEYS
from benchmarks.runs import KEYS as RUNS_KEYS
from benchmarks.stores import KEYS as STORES_KEYS
from benchmarks.stores import POOL
from tests.helpers import REPO

N = 5
HAND_WRITTEN = "# Benchmarks\n\nHand-written text stays.\n"


def run_benchmark(
    module: str, tmp_path: Path, *arguments: str, timeout: int
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``python -m <module>`` at size N, writing its results and docs page under ``tmp_path``
    (the page starts with hand-written text that must stay); the run and the page."""
    docs = tmp_path / "benchmarks.md"
    docs.write_text(HAND_WRITTEN)
    result = subprocess.run(
        [sys.executable, "-m", module, f"--n={N}", *arguments,
         f"--results-dir={tmp_path / 'results'}", f"--docs={docs}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result, docs


def test_benchmark_measures_and_reports_every_figure(tmp_path: Path) -> None:
    result, docs = run_benchmark(
        "benchmarks.mesh", tmp_path, "--idle-seconds=2", "--latency-count=2",
        f"--operator-log={tmp_path / 'operator.log'}", "--command=make bench N=5", timeout=600,
    )  # fmt: skip

    (written,) = (tmp_path / "results").glob("*.json")
    figures = json.loads(written.read_text())
    assert set(KEYS) <= set(figures)
    assert figures["n"] == N
    assert figures["children_per_product"] >= 9
    for key in ("t_raw_s", "t_op_s", "ratio", "writes_per_product", "update_s", "p50_ready_s"):
        assert isinstance(figures[key], (int, float)) and figures[key] > 0, key
    assert isinstance(figures["idle_writes"], int)
    assert isinstance(figures["restart_writes"], int)
    assert figures["rss_mib"] > 10
    assert figures["rss_growth_kib_per_product"] is None  # not measured without --grow-to
    assert figures["machine"]["cpus"] >= 1
    assert figures["commit"]

    assert "T_op / T_raw" in result.stdout
    text = docs.read_text()
    assert text.startswith(HAND_WRITTEN)
    assert "$ make bench N=5" in text
    assert f"| products | {N} |" in text


def test_request_costs_are_measured_for_every_kind_of_request() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.requests", "--count=5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = result.stdout.splitlines()[1:]
    labels = [row[:52].strip() for row in rows]
    for expected in (
        "server-side apply: create a DataProduct",
        "server-side apply: create a RoleBinding",
        "GET a DataProduct from the watch cache",
        "merge patch of a DataProduct (a finalizer)",
        "POST an Event",
    ):
        assert expected in labels, result.stdout
    for row in rows:
        count, rate, apiserver, etcd = row[52:].split()
        # Five of each, per product for the children (a product has two claims, say).
        assert int(count) >= 5 and int(count) % 5 == 0 and float(rate) > 0, row
        assert float(apiserver) >= 0 and float(etcd) >= 0, row


def test_catalog_benchmark_measures_and_reports_every_figure(tmp_path: Path) -> None:
    result, docs = run_benchmark(
        "benchmarks.catalog", tmp_path, "--requests=2", "--freshness-count=2",
        f"--grow-to={2 * N}", f"--catalog-log={tmp_path / 'catalog.log'}",
        "--command=make bench-catalog N=5", timeout=300,
    )  # fmt: skip

    (written,) = (tmp_path / "results").glob("catalog-*.json")
    figures = json.loads(written.read_text())
    assert set(CATALOG_KEYS) <= set(figures)
    assert figures["n"] == N
    assert 0 < figures["listed"] <= N
    assert figures["lineage_edges"] > 0
    for key in ("t_synced_s", "rss_synced_mib", "freshness_p50_s", "rss_at_grow_to_mib"):
        assert isinstance(figures[key], (int, float)) and figures[key] > 0, key
    assert isinstance(figures["view_reads"], int)
    assert figures["views"] == 2 * len(figures["routes"])
    for path, timed in figures["routes"].items():
        assert timed["p50_ms"] > 0 and timed["bytes"] > 0, path

    assert "health unknown" in result.stdout
    text = docs.read_text()
    assert text.startswith(HAND_WRITTEN)
    assert "$ make bench-catalog N=5" in text
    assert "| `/lineage` |" in text


def test_store_benchmark_measures_and_reports_every_figure(tmp_path: Path) -> None:
    result, docs = run_benchmark(
        "benchmarks.stores", tmp_path, "--latency-count=2", "--drift-interval=1",
        f"--operator-log={tmp_path / 'operator.log'}", "--command=make bench-stores N=5",
        timeout=300,
    )  # fmt: skip

    (written,) = (tmp_path / "results").glob("stores-*.json")
    figures = json.loads(written.read_text())
    assert set(STORES_KEYS) <= set(figures)
    assert figures["n"] == N
    for key in ("t_raw_s", "t_op_s", "ratio", "p50_ready_s", "drift_reads_per_product"):
        assert isinstance(figures[key], (int, float)) and figures[key] > 0, key
    # The operator ran at least the statements of the baseline, within its pool.
    assert figures["changes_per_product"] >= figures["raw_statements_per_product"] > 0
    assert 1 <= figures["peak_connections_pool"] <= POOL
    assert 1 <= figures["peak_connections_server"] <= POOL
    # Nothing changed: a drift pass and a restart only read.
    assert figures["drift_changes"] == 0
    assert figures["restart_changes"] == 0
    assert json.loads(result.stdout.strip().splitlines()[-1])["n"] == N

    assert "T_op / T_raw" in result.stdout
    text = docs.read_text()
    assert text.startswith(HAND_WRITTEN)
    assert "$ make bench-stores N=5" in text
    assert f"| products (2 PostgreSQL ports, 3 ServiceAccount readers each) | {N} |" in text


def test_runs_benchmark_runs_every_pipeline_on_the_real_node_and_reports(tmp_path: Path) -> None:
    result, docs = run_benchmark(
        "benchmarks.runs", tmp_path, "--source-rows=100",
        f"--operator-log={tmp_path / 'operator.log'}", "--command=make bench-runs N=5",
        timeout=600,
    )  # fmt: skip

    (written,) = (tmp_path / "results").glob("runs-*.json")
    figures = json.loads(written.read_text())
    assert set(RUNS_KEYS) <= set(figures)
    assert (figures["n"], figures["failed_runs"], figures["rows_per_run"]) == (N, 0, [100])
    for key in ("runs_per_minute", "p50_run_s", "p95_run_s", "writes_per_run"):
        assert isinstance(figures[key], (int, float)) and figures[key] > 0, key
    assert figures["p50_run_s"] <= figures["p95_run_s"] <= figures["max_run_s"]
    assert 0 < figures["alone_p50_run_s"] <= figures["alone_max_run_s"]
    # The Job and the status at the end: no Event per routine run (a stray write or two of
    # follow-ups on a loaded machine may land in the window; an Event per run would be 5).
    assert figures["writes_per_run"] <= 2.5
    # Where the time went: every step measured, the runner's from its own log lines.
    steps = ("job_created", "container_running", "runner_started", "status_shown", "job_ended")
    for step in steps:
        assert figures[f"stage_{step}_s"] is not None, step
    text = docs.read_text()
    assert text.startswith(HAND_WRITTEN)
    assert "$ make bench-runs N=5" in text
    assert "runs completed per minute" in result.stdout
