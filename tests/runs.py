"""Helpers of the SQL runner's tests: a product's schema, output table and logins placed in a
real PostgreSQL as the operator's store driver places them, and one run of the runner in-process
with the pod's environment (the run spec, the writer's login, each source's login)."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import sql

from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.runner.engine import run_from_environment
from dataproduct_operator.runner.report import RunReport
from dataproduct_operator.stores.postgres.types import sql_type
from tests.clusters import superuser_sql


@dataclass(frozen=True)
class Login:
    user: str
    password: str = field(repr=False)

    def environ(self, postgres: LocalPostgres, prefix: str = "") -> dict[str, str]:
        """libpq's variables for this login, as the pod gets them from the Secret."""
        return {
            f"{prefix}PGHOST": postgres.host,
            f"{prefix}PGPORT": str(postgres.port),
            f"{prefix}PGDATABASE": postgres.database,
            f"{prefix}PGUSER": self.user,
            f"{prefix}PGPASSWORD": self.password,
            f"{prefix}PGSSLMODE": "disable",
        }


def make_login(postgres: LocalPostgres, name: str) -> Login:
    login = Login(name, secrets.token_urlsafe(18))
    superuser_sql(
        postgres,
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(login.user), sql.Literal(login.password)
        ),
    )
    return login


@dataclass(frozen=True)
class PlacedTable:
    """An output port's table in its product's schema, the writer and a reader login."""

    schema: str
    name: str
    writer: Login
    reader: Login

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


def place_table(
    postgres: LocalPostgres, schema: str, name: str, columns: list[dict[str, Any]]
) -> PlacedTable:
    """SCHEMA.NAME with COLUMNS (port columns: name, type, required, unique) and the grants the
    store driver gives: the writer may change the rows, the reader only SELECT them."""
    superuser_sql(postgres, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    definitions = [
        sql.SQL("{} {}{}{}").format(
            sql.Identifier(column["name"]),
            sql.SQL(sql_type(column["type"])),
            sql.SQL(" NOT NULL" if column.get("required") else ""),
            sql.SQL(" UNIQUE" if column.get("unique") else ""),
        )
        for column in columns
    ]
    table = sql.Identifier(schema, name)
    superuser_sql(
        postgres, sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(definitions))
    )
    placed = PlacedTable(
        schema, name, make_login(postgres, f"{schema}_writer"), make_login(postgres, f"{schema}_rd")
    )
    for role, privileges in ((placed.writer.user, "SELECT, INSERT, UPDATE, DELETE, TRUNCATE"),
                             (placed.reader.user, "SELECT")):  # fmt: skip
        superuser_sql(
            postgres, sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(schema), sql.Identifier(role))
        )  # fmt: skip
        superuser_sql(
            postgres, sql.SQL("GRANT " + privileges + " ON {} TO {}").format(
                table, sql.Identifier(role))
        )  # fmt: skip
    return placed


def drop_placed(postgres: LocalPostgres, schema: str, roles: list[str]) -> None:
    superuser_sql(
        postgres, sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
    )
    for role in roles:
        superuser_sql(postgres, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@dataclass(frozen=True)
class Run:
    code: int
    report: RunReport
    stdout: str
    report_text: str


def run_in_process(spec: Mapping[str, Any], environ: Mapping[str, str], report_path: Path) -> Run:
    """One `dpo pipeline run` in this process; no password of ENVIRON may appear in its report
    or its output."""
    out = io.StringIO()
    full = {**environ, "DPO_RUN_SPEC": json.dumps(spec), "DPO_REPORT_PATH": str(report_path)}
    code = run_from_environment(full, out)
    text = report_path.read_text()
    passwords = [value for key, value in environ.items() if key.endswith("PGPASSWORD")]
    for password in passwords:
        assert password not in text
        assert password not in out.getvalue()
    return Run(code, RunReport.from_json(text), out.getvalue(), text)
