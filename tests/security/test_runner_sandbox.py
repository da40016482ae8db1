"""The SQL runner's DuckDB runs the pipeline's own SQL closed to the outside: no file beyond the
run's directory (so not the process environment, which holds the logins), no network, no
extension installed or loaded, no configuration change; and what it refuses reports no
password."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.runner.engine import run
from dataproduct_operator.runner.report import RunResult
from dataproduct_operator.runner.spec import RunSpec


@pytest.fixture
def environ(postgres: LocalPostgres) -> dict[str, str]:
    """A login that connects (the runner opens its writer's transaction first); the runs here
    fail before anything is written."""
    return {
        "PGHOST": postgres.host,
        "PGPORT": str(postgres.port),
        "PGDATABASE": postgres.database,
        "PGUSER": postgres.username,
        "PGPASSWORD": postgres.password,
        "PGSSLMODE": "disable",
    }


def _spec(transform: str, checks: list[dict[str, str]] | None = None) -> RunSpec:
    return RunSpec.from_json(json.dumps(_document(transform, checks)))


def _document(transform: str, checks: list[dict[str, str]] | None = None) -> dict[str, object]:
    return {
        "product": {"namespace": "sales", "name": "orders"},
        "pipeline": "build",
        "sql": transform,
        "mode": "Append",
        "output": {
            "port": "lines",
            "table": {"schema": "sales__orders", "name": "lines"},
            "columns": [{"name": "line", "type": "string"}],
        },
        "checks": checks or [],
    }


@pytest.mark.parametrize(
    "transform",
    [
        "SELECT content AS line FROM read_text('/proc/self/environ')",
        "SELECT column0 AS line FROM read_csv('/etc/passwd')",
        "SELECT column0 AS line FROM read_csv('https://example.org/lines.csv')",
    ],
)
def test_the_pipeline_sql_cannot_read_files_or_the_network(
    transform: str, environ: dict[str, str]
) -> None:
    out = io.StringIO()
    report = run(_spec(transform), environ, out)
    assert report.result is RunResult.FAILED
    assert report.error is not None
    assert report.error.startswith("the pipeline's SQL failed: Permission Error")
    assert report.rows_written == 0
    assert environ["PGPASSWORD"] not in report.to_json()
    assert environ["PGPASSWORD"] not in out.getvalue()


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("INSTALL httpfs", "Permission Error"),
        ("LOAD httpfs", "Permission Error"),
        ("ATTACH '/tmp/other.duckdb'", "Permission Error"),
        ("SET enable_external_access = true", "Cannot change configuration option"),
        ("SET allowed_directories = ['/']", "Cannot change configuration option"),
        ("COPY (SELECT 1) TO '{target}'", "Permission Error"),
    ],
)
def test_a_check_cannot_install_attach_reconfigure_or_write_outside_the_run(
    statement: str, refusal: str, tmp_path: Path, environ: dict[str, str]
) -> None:
    target = tmp_path / "leak.csv"
    checks = [{"name": "leak", "severity": "Warning", "sql": statement.format(target=target)}]
    report = run(_spec("SELECT 'x' AS line", checks), environ, io.StringIO())
    assert report.result is RunResult.FAILED
    assert report.error is not None
    assert report.error.startswith("check leak: its SQL failed: ")
    assert refusal in report.error
    assert not target.exists()


@pytest.mark.parametrize(
    ("transform", "refusal"),
    [
        # The source's database is attached for its read only: gone when the SQL runs.
        ("SELECT * FROM postgres_query('dpo_source', 'SELECT usename FROM pg_user') AS t(line)",
         'Failed to find attached database "dpo_source"'),
        ("SELECT line FROM dpo_source.pg_catalog.pg_user", "dpo_source"),
        # ...and the pipeline's SQL cannot attach one itself, with any login.
        ("SELECT 1 AS line FROM (ATTACH 'host={host} port={port} dbname=postgres' AS mine "
         "(TYPE postgres))", "Parser Error"),
    ],
)  # fmt: skip
def test_the_pipeline_sql_cannot_reach_the_database_a_source_was_read_from(
    transform: str, refusal: str, environ: dict[str, str]
) -> None:
    spec = _document("SELECT line FROM src")
    spec["sql"] = transform.format(host=environ["PGHOST"], port=environ["PGPORT"])
    spec["sources"] = [{"name": "src", "kind": "postgres", "envPrefix": "SRC_",
                        "query": "SELECT 'a line' AS line"}]  # fmt: skip
    login = {f"SRC_{key}": value for key, value in environ.items()}
    out = io.StringIO()
    report = run(RunSpec.from_json(json.dumps(spec)), {**environ, **login}, out)
    assert report.result is RunResult.FAILED
    assert report.rows_read == {"src": 1}  # the source was read, then closed off
    assert report.error is not None and refusal in report.error, report.error
    assert environ["PGPASSWORD"] not in report.to_json() + out.getvalue()


def test_a_statement_of_the_pipeline_cannot_attach_a_postgres_database(
    environ: dict[str, str],
) -> None:
    statement = (
        f"ATTACH 'host={environ['PGHOST']} port={environ['PGPORT']} dbname=postgres' AS mine "
        "(TYPE postgres)"
    )
    checks = [{"name": "attach", "severity": "Warning", "sql": statement}]
    spec = _document("SELECT line FROM src", checks)
    spec["sources"] = [{"name": "src", "kind": "postgres", "envPrefix": "SRC_",
                        "query": "SELECT 'a line' AS line"}]  # fmt: skip
    login = {f"SRC_{key}": value for key, value in environ.items()}
    report = run(RunSpec.from_json(json.dumps(spec)), {**environ, **login}, io.StringIO())
    assert report.result is RunResult.FAILED
    assert report.error is not None
    assert report.error.startswith("check attach: its SQL failed: ")
    assert "Permission Error" in report.error
