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
from tests.helpers import REPO

N = 5


def test_benchmark_measures_and_reports_every_figure(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nHand-written text stays.\n")
    result = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.mesh", f"--n={N}", "--idle-seconds=2",
            "--latency-count=2", f"--results-dir={tmp_path / 'results'}", f"--docs={docs}",
            f"--operator-log={tmp_path / 'operator.log'}", "--command=make bench N=5",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

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
    assert text.startswith("# Benchmarks\n\nHand-written text stays.\n")
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
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nHand-written text stays.\n")
    result = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.catalog", f"--n={N}", "--requests=2",
            "--freshness-count=2", f"--grow-to={2 * N}", f"--results-dir={tmp_path / 'results'}",
            f"--docs={docs}", f"--catalog-log={tmp_path / 'catalog.log'}",
            "--command=make bench-catalog N=5",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

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
    assert text.startswith("# Benchmarks\n\nHand-written text stays.\n")
    assert "$ make bench-catalog N=5" in text
    assert "| `/lineage` |" in text
