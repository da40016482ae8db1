"""The SQL runner's throughput: a transform of ROWS rows through `dpo pipeline run`'s engine
against the same INSERT ... SELECT run directly in PostgreSQL.

``make bench-runner ROWS=1000000`` (or ``python -m benchmarks.runner --rows 1000000``). On a local
control plane of its own (only its PostgreSQL is used), it seeds ``orders`` (ROWS rows) and
``customers`` (1000 rows), then times, REPEAT times each and alternating:

Before each timed run the output table is vacuumed and a checkpoint written (not timed), so each
starts alike on a machine whose other work makes single runs vary.

- T_direct: as the output's writer, in one transaction, ``DELETE`` then ``INSERT INTO the output
  SELECT ... FROM orders JOIN customers`` (the transform as PostgreSQL runs it itself, the
  output's UNIQUE index maintained);
- T_runner: the runner's engine in this process (Replace) with the same transform: both sources
  read through COPY with their own login, staged in DuckDB, the contract checks (required,
  unique) and one SQL check, run while the rows load with COPY in one transaction, committed
  once they pass.

It prints a table and a JSON line (medians, rows/s, T_runner / T_direct, and the median of each
of the runner's steps from its progress lines: read, stage, gate, publish), writes
``benchmarks/results/runner-<time>.json`` and updates its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.mesh import REPO, control_plane, log, recorded
from benchmarks.report import render_markdown, render_table, update_docs
from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.runner.engine import conninfo, run
from dataproduct_operator.runner.report import RunResult
from dataproduct_operator.runner.spec import RunSpec

COLUMNS: list[dict[str, Any]] = [
    {"name": "order_id", "type": "string", "required": True, "unique": True},
    {"name": "amount", "type": "decimal"},
    {"name": "segment", "type": "string"},
    {"name": "placed_at", "type": "timestamp"},
]
TRANSFORM = (
    "SELECT o.order_id, o.amount, c.segment, o.placed_at "
    "FROM orders o JOIN customers c USING (customer_id)"
)
DIRECT = (
    "INSERT INTO bench_out.orders_v1 (order_id, amount, segment, placed_at) "
    "SELECT o.order_id, o.amount, c.segment, o.placed_at "
    "FROM bench_src.orders o JOIN bench_src.customers c USING (customer_id)"
)
SEED = [
    "CREATE SCHEMA bench_src",
    "CREATE SCHEMA bench_out",
    "CREATE TABLE bench_src.customers (customer_id bigint PRIMARY KEY, segment text)",
    "INSERT INTO bench_src.customers SELECT i, 'segment-' || mod(i, 7) "
    "FROM generate_series(0, 999) i",
    "CREATE TABLE bench_src.orders (order_id text, customer_id bigint, amount numeric, "
    "placed_at timestamptz)",
    "INSERT INTO bench_src.orders SELECT 'order-' || i, mod(i, 1000), mod(i, 10000) / 100.0, "
    "timestamptz '2026-01-01' + i * interval '1 second' FROM generate_series(1, %(rows)s) i",
    "ANALYZE bench_src.orders",
    "CREATE TABLE bench_out.orders_v1 (order_id text NOT NULL UNIQUE, amount numeric, "
    "segment text, placed_at timestamptz)",
]
LOGINS = ("bench_writer", "bench_source")


def _superuser(postgres: LocalPostgres) -> psycopg.Connection[Any]:
    return psycopg.connect(**postgres.superuser_conninfo(), autocommit=True)


def seed(postgres: LocalPostgres, rows: int) -> dict[str, str]:
    """The tables, a writer and a source login; the pod's environment for the runner."""
    passwords = {login: secrets.token_urlsafe(18) for login in LOGINS}
    with _superuser(postgres) as conn:
        for statement in SEED:
            conn.execute(statement, {"rows": rows} if "%(rows)s" in statement else None)
        for login, password in passwords.items():
            conn.execute(f"CREATE ROLE {login} LOGIN PASSWORD '{password}'")
        conn.execute("GRANT USAGE ON SCHEMA bench_src, bench_out TO bench_writer, bench_source")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA bench_src TO bench_source")
        # The direct statement reads the sources as the writer: the same work in one session.
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA bench_src TO bench_writer")
        conn.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON bench_out.orders_v1 TO bench_writer")
    environ: dict[str, str] = {}
    for prefix, login in (("", "bench_writer"), ("SOURCE_", "bench_source")):
        environ |= {
            f"{prefix}PGHOST": postgres.host,
            f"{prefix}PGPORT": str(postgres.port),
            f"{prefix}PGDATABASE": postgres.database,
            f"{prefix}PGUSER": login,
            f"{prefix}PGPASSWORD": passwords[login],
            f"{prefix}PGSSLMODE": "disable",
        }
    return environ


def orders_spec(schema: str, table: str, **fields: Any) -> dict[str, Any]:
    """The run spec document, as the operator writes it, of the orders transform: TRANSFORM
    published to port ``orders-v1`` (COLUMNS) at SCHEMA.TABLE, Replace, no sources and no
    checks until FIELDS (top-level fields: sources, checks, sql, ...) say otherwise. The
    benchmark and the runner's tests share it."""
    document: dict[str, Any] = {
        "product": {"namespace": "sales", "name": "orders"},
        "pipeline": "build",
        "sql": TRANSFORM,
        "mode": "Replace",
        "output": {
            "port": "orders-v1",
            "table": {"schema": schema, "name": table},
            "columns": COLUMNS,
            "freshnessColumn": "placed_at",
        },
        "sources": [],
        "checks": [],
    }
    return {**document, **fields}


def spec() -> RunSpec:
    source = {"kind": "postgres", "envPrefix": "SOURCE_"}
    sources = [
        {**source, "name": "orders", "query": "SELECT * FROM bench_src.orders"},
        {**source, "name": "customers", "query": "SELECT * FROM bench_src.customers"},
    ]
    checks = [{"name": "no-negative", "severity": "Error",
               "sql": "SELECT count(*) FROM orders_v1 WHERE amount < 0"}]  # fmt: skip
    return RunSpec.from_json(
        json.dumps(orders_spec("bench_out", "orders_v1", sources=sources, checks=checks))
    )


def settle(postgres: LocalPostgres) -> None:
    """The same start for each timed run: the previous run's dead rows vacuumed, the dirty
    pages written (not timed)."""
    with _superuser(postgres) as conn:
        conn.execute("VACUUM bench_out.orders_v1")
        conn.execute("CHECKPOINT")


def time_direct(environ: dict[str, str]) -> float:
    began = time.monotonic()
    with psycopg.connect(**conninfo(environ)) as conn:  # one transaction, as the runner's publish
        conn.execute("DELETE FROM bench_out.orders_v1")
        conn.execute(DIRECT)
    return time.monotonic() - began


def time_runner(environ: dict[str, str], rows: int) -> tuple[float, str]:
    out = io.StringIO()
    began = time.monotonic()
    report = run(spec(), environ, out)
    elapsed = time.monotonic() - began
    if report.result is not RunResult.SUCCEEDED or report.rows_written != rows:
        raise RuntimeError(f"the runner did not publish {rows} rows: {report.to_json()}")
    return elapsed, out.getvalue()


# The runner's progress lines that time a step: the step's figure key and the line's pattern
# (the sources' times are added up).
PHASES = (
    ("read_s", re.compile(r"^source \S+: \d+ rows \(([0-9.]+) s\)$", re.M)),
    ("stage_s", re.compile(r"^staged \d+ rows .*\(([0-9.]+) s\)$", re.M)),
    ("gate_s", re.compile(r"^gate: .*\(([0-9.]+) s\)$", re.M)),
    ("publish_s", re.compile(r"^published \d+ rows .*, ([0-9.]+) s\)$", re.M)),
)


def phases(output: str) -> dict[str, float]:
    """The runner's time for each step, from its progress lines in OUTPUT."""
    return {key: sum(float(found) for found in pattern.findall(output)) for key, pattern in PHASES}


ROWS = (
    ("rows", "rows transformed (orders JOIN customers)", ""),
    ("repeat", "runs of each, alternating", ""),
    ("t_direct_s", "INSERT ... SELECT in PostgreSQL, T_direct median (s)", ""),
    ("t_runner_s", "the runner (read, stage, check, publish), T_runner median (s)", ""),
    ("ratio", "T_runner / T_direct (medians)", "≤ 1.5"),
    ("ratio_pairs", "median of T_runner / T_direct over the runs (each pair back to back)", ""),
    ("direct_rows_per_s", "direct: rows/s", ""),
    ("runner_rows_per_s", "runner: rows/s", ""),
    ("read_s", "runner step: sources read by DuckDB's PostgreSQL reader, median (s)", ""),
    ("stage_s", "runner step: transform staged with the port's types, median (s)", ""),
    ("gate_s", "runner step: quality gate (beside the publish), median (s)", ""),
    ("publish_s", "runner step: COPY load, committed after the gate, median (s)", ""),
)
KEYS = tuple(key for key, _, _ in ROWS)
MARKERS = (
    "<!-- runner-run:start (written by `make bench-runner`) -->",
    "<!-- runner-run:end -->",
)


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    found: dict[str, Any] = {"rows": args.rows, "repeat": args.repeat}
    direct: list[float] = []
    runner: list[float] = []
    steps: list[dict[str, float]] = []
    scratch = tempfile.TemporaryDirectory(prefix="dpo-bench-runner-")
    with scratch, control_plane(Path(scratch.name) / "cluster") as info:
        found["kubernetes"] = info.kubernetes_version
        log(f"Seeding {args.rows} rows")
        environ = seed(info.postgres, args.rows)
        for attempt in range(args.repeat):
            settle(info.postgres)
            direct.append(time_direct(environ))
            settle(info.postgres)
            elapsed, output = time_runner(environ, args.rows)
            runner.append(elapsed)
            steps.append(phases(output))
            log(f"run {attempt + 1}: direct {direct[-1]:.2f} s, runner {elapsed:.2f} s")
        log("the runner's output of the last run:\n" + output.rstrip())
    found["t_direct_s"] = round(statistics.median(direct), 3)
    found["t_runner_s"] = round(statistics.median(runner), 3)
    found["ratio"] = round(found["t_runner_s"] / found["t_direct_s"], 2)
    found["ratio_pairs"] = round(
        statistics.median(r / d for r, d in zip(runner, direct, strict=True)), 2
    )
    found["direct_rows_per_s"] = round(args.rows / found["t_direct_s"])
    found["runner_rows_per_s"] = round(args.rows / found["t_runner_s"])
    for key, _ in PHASES:
        found[key] = round(statistics.median(step[key] for step in steps), 2)
    found["direct_all_s"] = [round(value, 3) for value in direct]
    found["runner_all_s"] = [round(value, 3) for value in runner]
    return recorded(found, KEYS, args.command)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows (default 1000000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument("--results-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--command", default=None, help="the command line to record")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be at least 1")
    args.command = args.command or f"python -m benchmarks.runner --rows {args.rows}"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = run_benchmark(args)
    print(render_table(figures, ROWS))
    print(json.dumps(figures))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"runner-{figures['date'].replace(':', '-')}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    section = render_markdown(figures, ROWS, markers=MARKERS)
    update_docs(args.docs, figures, section, markers=MARKERS, heading="Runner: latest run")
    log(f"Wrote {path} and {args.docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
