"""The built-in SQL runner against the cluster's real PostgreSQL: sources read with their own
logins, the transform staged in DuckDB, the quality gate before publishing, Replace / Append /
Merge published in one transaction as the writer, and the run report; no password in any report
or output line."""

from __future__ import annotations

import csv
import functools
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from psycopg import sql

from benchmarks.runner import COLUMNS, TRANSFORM, orders_spec
from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.runner.report import RunResult
from tests.clusters import login_sql, superuser_sql
from tests.runs import Login, PlacedTable, Run, drop_placed, make_login, place_table, run_in_process

ORDERS = [
    ("o-1", 1, 10.5, "2026-11-29 10:00:00+00"),
    ("o-2", 2, 20.25, "2026-11-29 11:00:00+00"),
    ("o-3", 1, 0, "2026-11-29 12:30:00+00"),
]
CUSTOMERS = [(1, "retail"), (2, "wholesale")]


@dataclass
class Mesh:
    """An upstream product's table (crm), an external source (customers), and the product
    being built (sales), each with its own logins."""

    postgres: LocalPostgres
    prefix: str
    crm: PlacedTable
    customers: Login
    sales: PlacedTable
    tmp_path: Path
    runs: int = 0

    def environ(self) -> dict[str, str]:
        return {
            **self.sales.writer.environ(self.postgres),
            **self.crm.reader.environ(self.postgres, "INPUT_ORDERS_"),
            **self.customers.environ(self.postgres, "SOURCE_CUSTOMERS_"),
        }

    def spec(self, **changes: Any) -> dict[str, Any]:
        sources: list[dict[str, Any]] = [
            {"name": "orders", "kind": "product", "envPrefix": "INPUT_ORDERS_",
             "table": {"schema": self.crm.schema, "name": self.crm.name}},
            {"name": "customers", "kind": "postgres", "envPrefix": "SOURCE_CUSTOMERS_",
             "query": f"SELECT * FROM {self.prefix}_ext.customers"},  # noqa: S608
        ]  # fmt: skip
        return orders_spec(self.sales.schema, self.sales.name, **{"sources": sources, **changes})

    def run(self, **changes: Any) -> Run:
        self.runs += 1
        path = self.tmp_path / f"termination-log-{self.runs}"
        return run_in_process(self.spec(**changes), self.environ(), path)

    def published(self) -> list[tuple[Any, ...]]:
        """The output's rows as a reader of the port sees them."""
        query = sql.SQL("SELECT order_id, amount::float8, segment FROM {} ORDER BY order_id")
        return login_sql(
            self.postgres, self.sales.reader.user, self.sales.reader.password,
            query.format(self.sales.identifier),
        )  # fmt: skip

    def upstream(self, statement: str, params: tuple[Any, ...] | None = None) -> None:
        superuser_sql(self.postgres, statement.format(table=f"{self.crm.schema}.orders"), params)


@pytest.fixture
def mesh(postgres: LocalPostgres, tmp_path: Path) -> Iterator[Mesh]:
    prefix = f"t_run_{secrets.token_hex(3)}"
    crm = place_table(
        postgres, f"{prefix}_crm", "orders",
        [{"name": "order_id", "type": "string"}, {"name": "customer_id", "type": "integer"},
         {"name": "amount", "type": "decimal"}, {"name": "placed_at", "type": "timestamp"}],
    )  # fmt: skip
    for row in ORDERS:
        superuser_sql(postgres, f"INSERT INTO {prefix}_crm.orders VALUES (%s, %s, %s, %s)", row)  # noqa: S608
    superuser_sql(postgres, f"CREATE SCHEMA {prefix}_ext")
    superuser_sql(postgres, f"CREATE TABLE {prefix}_ext.customers (customer_id int, segment text)")
    for row in CUSTOMERS:
        superuser_sql(postgres, f"INSERT INTO {prefix}_ext.customers VALUES (%s, %s)", row)  # noqa: S608
    customers = make_login(postgres, f"{prefix}_ext_reader")
    superuser_sql(postgres, f"GRANT USAGE ON SCHEMA {prefix}_ext TO {customers.user}")
    superuser_sql(postgres, f"GRANT SELECT ON {prefix}_ext.customers TO {customers.user}")
    sales = place_table(postgres, f"{prefix}_sales", "orders_v1", COLUMNS)
    yield Mesh(postgres, prefix, crm, customers, sales, tmp_path)
    for schema, roles in (
        (sales.schema, [sales.writer.user, sales.reader.user]),
        (crm.schema, [crm.writer.user, crm.reader.user]),
        (f"{prefix}_ext", [customers.user]),
    ):
        drop_placed(postgres, schema, roles)


def test_replace_publishes_the_transform_a_reader_selects_with_counts_and_watermark(
    mesh: Mesh,
) -> None:
    first = mesh.run()
    assert first.code == 0, first.stdout
    assert first.report.result is RunResult.SUCCEEDED
    assert first.report.rows_read == {"orders": 3, "customers": 2}
    assert first.report.rows_written == 3
    assert first.report.watermark == datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
    assert mesh.published() == [("o-1", 10.5, "retail"), ("o-2", 20.25, "wholesale"),
                                ("o-3", 0.0, "retail")]  # fmt: skip
    lines = first.stdout.splitlines()
    assert any(line.startswith("source orders: 3 rows (") for line in lines)
    assert any(line.startswith("source customers: 2 rows (") for line in lines)
    assert "check unique:order_id: passed, 0 violations" in lines
    assert lines[-1] == f"report {first.report_text}"

    mesh.upstream("DELETE FROM {table} WHERE order_id = 'o-1'")
    second = mesh.run()
    assert second.code == 0, second.stdout
    assert second.report.rows_written == 2
    assert mesh.published() == [("o-2", 20.25, "wholesale"), ("o-3", 0.0, "retail")]


def test_append_adds_rows_and_merge_updates_on_the_unique_column(mesh: Mesh) -> None:
    assert mesh.run(sql=TRANSFORM + " WHERE o.order_id = 'o-1'").code == 0
    appended = mesh.run(mode="Append", sql=TRANSFORM + " WHERE o.order_id <> 'o-1'")
    assert appended.code == 0, appended.stdout
    assert appended.report.rows_written == 2
    assert [row[0] for row in mesh.published()] == ["o-1", "o-2", "o-3"]

    mesh.upstream("UPDATE {table} SET amount = 99 WHERE order_id = 'o-2'")
    mesh.upstream("INSERT INTO {table} VALUES ('o-4', 2, 4, '2026-11-29 13:00:00+00')")
    merged = mesh.run(mode="Merge", sql=TRANSFORM + " WHERE o.order_id IN ('o-2', 'o-4')")
    assert merged.code == 0, merged.stdout
    assert merged.report.rows_written == 2
    assert mesh.published() == [("o-1", 10.5, "retail"), ("o-2", 99.0, "wholesale"),
                                ("o-3", 0.0, "retail"), ("o-4", 4.0, "wholesale")]  # fmt: skip

    # A row already in the table: the staged rows are unique among themselves, the table's
    # UNIQUE refuses it, and the one transaction leaves every row as it was.
    before = mesh.published()
    again = mesh.run(mode="Append", sql=TRANSFORM + " WHERE o.order_id = 'o-1'")
    assert again.code == 1
    assert again.report.error is not None
    assert "duplicate key value violates unique constraint" in again.report.error
    assert mesh.published() == before


def test_a_failing_error_check_keeps_the_previous_rows_and_names_the_check(mesh: Mesh) -> None:
    assert mesh.run().code == 0
    before = mesh.published()
    mesh.upstream("UPDATE {table} SET amount = -5 WHERE order_id = 'o-3'")
    checks = [
        {"name": "no-negative", "severity": "Error",
         "sql": "SELECT count(*) FROM orders_v1 WHERE amount < 0"},
        {"name": "enough", "severity": "Warning", "minRows": 100},
    ]  # fmt: skip
    failed = mesh.run(checks=checks)
    assert failed.code == 1
    assert failed.report.result is RunResult.FAILED
    assert failed.report.error == "checks failed: no-negative"
    assert failed.report.rows_written == 0
    verdicts = {c.name: (c.passed, c.violations) for c in failed.report.checks}
    assert verdicts["no-negative"] == (False, 1)
    assert verdicts["enough"] == (False, 97)
    assert "check no-negative: FAILED (Error), 1 violations" in failed.stdout.splitlines()
    assert mesh.published() == before


def test_a_failing_warning_check_publishes_and_is_reported(mesh: Mesh) -> None:
    checks = [
        {"name": "enough", "severity": "Warning", "minRows": 10},
        {"name": "segments", "severity": "Warning",
         "maxNullFraction": {"column": "segment", "fraction": 0.0}},
        {"name": "fresh", "severity": "Warning",
         "freshness": {"column": "placed_at", "maxAgeSeconds": 60}},
    ]  # fmt: skip
    warned = mesh.run(checks=checks)
    assert warned.code == 0, warned.stdout
    assert warned.report.result is RunResult.SUCCEEDED
    assert warned.report.error is None
    verdicts = {c.name: (c.severity, c.passed, c.violations) for c in warned.report.checks}
    assert verdicts["enough"] == ("Warning", False, 7)
    assert verdicts["segments"] == ("Warning", True, 0)
    assert verdicts["fresh"] == ("Warning", False, 1)  # the orders are from 2026-11-29 12:30
    assert len(mesh.published()) == 3


def test_the_contract_checks_required_unique_and_types_before_publishing(mesh: Mesh) -> None:
    assert mesh.run().code == 0
    before = mesh.published()
    mesh.upstream("INSERT INTO {table} VALUES ('o-1', 2, 1, '2026-11-29 13:00:00+00')")
    mesh.upstream("INSERT INTO {table} VALUES (NULL, 2, 1, '2026-11-29 13:00:00+00')")
    broken = mesh.run()
    assert broken.code == 1
    assert broken.report.error == "checks failed: required:order_id, unique:order_id"
    verdicts = {c.name: (c.passed, c.violations) for c in broken.report.checks}
    assert verdicts == {"required:order_id": (False, 1), "unique:order_id": (False, 1)}
    assert mesh.published() == before

    not_a_number = mesh.run(sql="SELECT order_id, 'lots' AS amount, NULL AS segment, "
                                "placed_at FROM orders WHERE order_id = 'o-2'")  # fmt: skip
    assert not_a_number.code == 1
    assert not_a_number.report.error == (
        "column amount: 1 values do not convert to the port's type DECIMAL(38, 10)"
    )
    missing = mesh.run(sql="SELECT order_id, amount, placed_at, 1 AS extra FROM orders")
    assert missing.report.error == (
        "the pipeline's SQL must return the columns of port orders-v1; missing: segment; "
        "not in the port: extra"
    )
    assert mesh.published() == before


def test_a_product_source_is_read_with_its_own_login_only(mesh: Mesh) -> None:
    # The writer of the product has no grant on the upstream table: the input's login does.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        login_sql(mesh.postgres, mesh.sales.writer.user, mesh.sales.writer.password,
                  f"SELECT * FROM {mesh.crm.schema}.orders")  # noqa: S608  # fmt: skip
    environ = mesh.environ()
    environ["INPUT_ORDERS_PGUSER"] = mesh.sales.writer.user
    environ["INPUT_ORDERS_PGPASSWORD"] = mesh.sales.writer.password
    path = mesh.tmp_path / "termination-log-wrong-login"
    refused = run_in_process(mesh.spec(), environ, path)
    assert refused.code == 1
    assert refused.report.error is not None
    assert "permission denied" in refused.report.error
    assert mesh.run().code == 0


def test_csv_jsonl_and_parquet_file_sources(mesh: Mesh, tmp_path: Path) -> None:
    with (tmp_path / "orders.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["order_id", "customer_id", "amount", "placed_at"])
        writer.writerows(ORDERS)
    (tmp_path / "customers.jsonl").write_text(
        "".join(f'{{"customer_id": {c}, "segment": "{s}"}}\n' for c, s in CUSTOMERS)
    )
    with duckdb.connect() as db:
        db.read_csv(str(tmp_path / "orders.csv")).write_parquet(str(tmp_path / "orders.parquet"))
    csv_orders = {"format": "csv", "location": str(tmp_path / "orders.csv")}
    parquet_orders = {"format": "parquet", "location": str(tmp_path / "orders.parquet")}
    for orders in (csv_orders, parquet_orders):
        sources: list[dict[str, Any]] = [
            {"name": "orders", "kind": "file", **orders},
            {"name": "customers", "kind": "file", "format": "jsonl",
             "location": str(tmp_path / "customers.jsonl")},
        ]  # fmt: skip
        done = mesh.run(sources=sources)
        assert done.code == 0, done.stdout
        assert done.report.rows_read == {"orders": 3, "customers": 2}
        assert mesh.published() == [("o-1", 10.5, "retail"), ("o-2", 20.25, "wholesale"),
                                    ("o-3", 0.0, "retail")]  # fmt: skip


def test_an_error_that_quotes_a_password_reports_it_scrubbed(mesh: Mesh) -> None:
    password = mesh.sales.writer.password
    # DuckDB's message repeats the literal that fails to convert: here, the writer's password.
    failed = mesh.run(sql=f"SELECT CAST('{password}' AS INTEGER) AS order_id")
    assert failed.code == 1
    assert failed.report.error is not None
    assert failed.report.error.startswith("the pipeline's SQL failed")
    assert "***" in failed.report.error
    # run_in_process asserted that no password is in the report or the output


def test_a_source_that_fails_midway_fails_the_run_and_publishes_nothing(mesh: Mesh) -> None:
    assert mesh.run().code == 0
    before = mesh.published()
    # PostgreSQL stops the COPY after 999 rows: division by zero.
    failing = {"name": "customers", "kind": "postgres", "envPrefix": "SOURCE_CUSTOMERS_",
               "query": "SELECT i AS customer_id, (1 / (1000 - i))::text AS segment "
                        "FROM generate_series(1, 5000) AS i"}  # fmt: skip
    stopped = mesh.run(sources=[mesh.spec()["sources"][0], failing])
    assert stopped.code == 1
    assert stopped.report.error is not None
    assert "division by zero" in stopped.report.error
    # A value DuckDB cannot hold (a NaN numeric) stops its read instead.
    mesh.upstream("UPDATE {table} SET amount = 'NaN' WHERE order_id = 'o-2'")
    refused = mesh.run()
    assert refused.code == 1
    assert refused.report.error is not None
    assert refused.report.error.startswith("source orders: ")
    assert "column amount: NaN, an infinity or 28 digits" in refused.report.error
    assert mesh.published() == before


def test_an_http_file_source_is_downloaded_by_the_runner(mesh: Mesh, tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    with (served / "orders.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["order_id", "customer_id", "amount", "placed_at"])
        writer.writerows(ORDERS)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        orders = {"name": "orders", "kind": "file", "format": "csv",
                  "location": f"{base}/orders.csv"}  # fmt: skip
        done = mesh.run(sources=[orders, mesh.spec()["sources"][1]])
        assert done.code == 0, done.stdout
        assert done.report.rows_read == {"orders": 3, "customers": 2}
        assert len(mesh.published()) == 3
        missing = mesh.run(sources=[{**orders, "location": f"{base}/gone.csv"},
                                    mesh.spec()["sources"][1]])  # fmt: skip
        assert missing.code == 1
        assert missing.report.error is not None
        assert missing.report.error.startswith("source orders: download failed: HTTP Error 404")
        # The URL is named, without a query that could hold a token.
        signed = mesh.run(sources=[{**orders, "location": f"{base}/gone.csv?token=t0ps3cret"},
                                   mesh.spec()["sources"][1]])  # fmt: skip
        assert signed.report.error is not None
        assert signed.report.error.endswith(f"(GET {base}/gone.csv)")
        assert "t0ps3cret" not in signed.stdout + signed.report_text
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_check_that_changes_the_staged_rows_changes_nothing_published(mesh: Mesh) -> None:
    # The gate runs while the rows are sent; they are sent as staged, whatever a check does.
    checks = [{"name": "sneaky", "severity": "Warning",
               "sql": "DELETE FROM orders_v1 WHERE order_id = 'o-1'"}]  # fmt: skip
    done = mesh.run(checks=checks)
    assert done.code == 0, done.stdout
    verdicts = {c.name: (c.passed, c.violations) for c in done.report.checks}
    assert verdicts["sneaky"] == (False, 1)
    assert done.report.rows_written == 3
    assert [row[0] for row in mesh.published()] == ["o-1", "o-2", "o-3"]


def test_an_error_check_failing_while_many_rows_load_keeps_the_previous_rows(mesh: Mesh) -> None:
    assert mesh.run().code == 0
    before = mesh.published()
    many = ("SELECT 'g-' || range AS order_id, range % 100 - 1 AS amount, 'retail' AS segment, "
            "TIMESTAMPTZ '2026-11-29 12:00:00+00' AS placed_at FROM range(300000)")  # fmt: skip
    checks = [{"name": "no-negative", "severity": "Error",
               "sql": "SELECT count(*) FROM orders_v1 WHERE amount < 0"}]  # fmt: skip
    failed = mesh.run(sql=many, checks=checks)
    assert failed.code == 1, failed.stdout
    assert failed.report.error == "checks failed: no-negative"
    assert failed.report.rows_written == 0
    assert mesh.published() == before
