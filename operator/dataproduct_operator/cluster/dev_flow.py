"""``make dev`` shows data flowing (layer ``cluster``): the examples' sources, runs and health.

The examples read external PostgreSQL databases a real team would have (``crm-db.crm``,
``shop-db.sales``, ``ledger-db.finance``). In ``dpo dev`` those databases are made in the local
PostgreSQL and filled with a small generated data set (customers, orders, ledger postings: the
same rows at every start), read by one read-only login whose password goes into the Secrets the
examples' ``secretRef`` name, in the domains' namespaces. The examples' external inputs are
applied pointing at the local server as pods reach it (host and port of the uri rewritten; the
database, table and Secret kept), then each example pipeline runs once on demand (the
``datamesh.dev/run`` annotation) on the real node, upstream products first, and the mesh is
printed with its rows and data health. The ledger holds a refund the shop never recorded: the
finance example's check ``reconciled-with-sales`` fails on it, on purpose, to show the gate.

The data set and the rewrites are pure functions; :func:`seed_sources` and
:func:`run_example_pipelines` do the I/O.
"""

from __future__ import annotations

import base64
import copy
import random
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

import psycopg
from psycopg import sql

from dataproduct_operator.api.conditions import DATA_HEALTHY, Reason
from dataproduct_operator.api.dataproduct import RunStatus
from dataproduct_operator.api.naming import run_job_name
from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.constants import ANNOTATION_RUN
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.resources import object_path
from dataproduct_operator.specs.dataproduct import parse_run_request

# The read-only login every seeded source is read with (its password new at every seeding).
SOURCES_READER = "dev_sources_reader"
RUN_SECONDS = 180.0  # one run: the pod's start (about 3 s), the runner, the status written
HEALTH_SECONDS = 60.0
POLL_SECONDS = 0.5
POSTGRES_URI = re.compile(r"^postgresql://[^/]+/(?P<database>[^/?]+)$")
# The seeded data's calendar: fixed, so every start shows the same rows and the same failure.
FIRST_DAY = date(2026, 11, 1)
DAYS = 28
CUSTOMERS = 200
ORDERS = 600
COUNTRIES = ("DE", "FR", "ES", "PT", "NL", "BR", "US")
SEGMENTS = ("consumer", "business", None)
COST_CENTRES = ("CC-1100", "CC-1101")  # the web shop's and the call centre's revenue
# The refund the ledger holds and the shop does not: the finance example's gate fails on it.
UNRECORDED_REFUND_CENTS = -12_500
UNRECORDED_REFUND_DAY = FIRST_DAY + timedelta(days=20)


@dataclass(frozen=True)
class SeededTable:
    """One table of an external source: its database, name, columns (DDL) and rows."""

    database: str
    table: str
    columns: tuple[tuple[str, str], ...]
    rows: tuple[tuple[Any, ...], ...]


def build_dataset(seed: int = 17) -> list[SeededTable]:
    """The examples' external sources (pure, the same for the same seed): the CRM's customers
    (the call centre's copy of some of them newer), the shop's orders, the ledger's postings
    (every day's orders split by cost centre, plus one unrecorded refund)."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not a secret
    start = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC)
    customers: list[tuple[Any, ...]] = []
    for number in range(1, CUSTOMERS + 1):
        created = start - timedelta(days=rng.randint(30, 900))
        row = (
            f"C{number:05d}",
            f"Customer{number:05d}@Example.com",
            rng.choice(COUNTRIES).lower(),
            rng.choice(SEGMENTS),
            created,
            created,
            "web",
        )
        customers.append(row)
        if number % 5 == 0:  # also known to the call centre, which updated it later
            customers.append((*row[:3], "business", created, start, "call-centre"))
    orders: list[tuple[Any, ...]] = []
    for number in range(1, ORDERS + 1):
        placed = start + timedelta(minutes=rng.randint(0, DAYS * 24 * 60 - 1))
        customer = f"C{rng.randint(1, CUSTOMERS):05d}"
        orders.append((f"O{number:06d}", 1, customer, rng.randint(500, 25_000), placed))
    postings: dict[tuple[date, str], int] = {}
    for order_id, _, _, amount, placed in orders:
        centre = COST_CENTRES[int(order_id[1:]) % len(COST_CENTRES)]
        key = (placed.date(), centre)
        postings[key] = postings.get(key, 0) + amount
    ledger = [(day, centre, amount, "sale") for (day, centre), amount in sorted(postings.items())]
    ledger.append((UNRECORDED_REFUND_DAY, COST_CENTRES[0], UNRECORDED_REFUND_CENTS, "refund"))
    return [
        SeededTable(
            "crm",
            "customers",
            (
                ("customer_id", "text NOT NULL"),
                ("email", "text"),
                ("country", "text NOT NULL"),
                ("segment", "text"),
                ("created_at", "timestamptz NOT NULL"),
                ("updated_at", "timestamptz NOT NULL"),
                ("channel", "text NOT NULL"),
            ),
            tuple(customers),
        ),
        SeededTable(
            "shop",
            "orders",
            (
                ("order_id", "text PRIMARY KEY"),
                ("line", "integer NOT NULL"),
                ("customer_id", "text NOT NULL"),
                ("amount_cents", "bigint NOT NULL"),
                ("placed_at", "timestamptz NOT NULL"),
            ),
            tuple(orders),
        ),
        SeededTable(
            "gl",
            "revenue_postings",
            (
                ("posted_on", "date NOT NULL"),
                ("cost_centre", "text NOT NULL"),
                ("amount_cents", "bigint NOT NULL"),
                ("kind", "text NOT NULL"),
            ),
            tuple(ledger),
        ),
    ]


def _seeded_databases(dataset: Iterable[SeededTable]) -> set[str]:
    return {table.database for table in dataset}


def _seeded_inputs(
    products: Iterable[dict[str, Any]], databases: set[str]
) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    """(product, external source) for each postgres input read from a seeded database."""
    for product in products:
        if product.get("kind") != "DataProduct":
            continue
        for source in (i.get("external") for i in product["spec"].get("inputs", [])):
            if not source or source.get("type") != "postgres" or not source.get("table"):
                continue
            found = POSTGRES_URI.match(source.get("uri", ""))
            if found and found["database"] in databases:
                yield product, source


def point_sources_at(
    manifests: Sequence[dict[str, Any]], dataset: Sequence[SeededTable], host: str, port: int
) -> list[dict[str, Any]]:
    """The manifests with every external postgres input of a seeded database at ``host:port``
    (pure: copies; the database, the table and the Secret stay as the example says)."""
    copied = [copy.deepcopy(m) for m in manifests]
    for _, source in _seeded_inputs(copied, _seeded_databases(dataset)):
        database = POSTGRES_URI.match(source["uri"])["database"]  # type: ignore[index]
        source["uri"] = f"postgresql://{host}:{port}/{database}"
    return copied


def build_source_secrets(
    manifests: Sequence[dict[str, Any]], dataset: Sequence[SeededTable], password: str
) -> list[dict[str, Any]]:
    """The Secrets the seeded inputs' ``secretRef`` name, in their products' namespaces, with
    the read-only login (pure)."""

    def encoded(value: str) -> str:
        return base64.b64encode(value.encode()).decode()

    wanted = {
        (product["metadata"]["namespace"], source["secretRef"]["name"])
        for product, source in _seeded_inputs(manifests, _seeded_databases(dataset))
        if source.get("secretRef")
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "data": {"PGUSER": encoded(SOURCES_READER), "PGPASSWORD": encoded(password)},
        }
        for namespace, name in sorted(wanted)
    ]


def seed_sources(postgres: LocalPostgres, dataset: Sequence[SeededTable]) -> str:
    """Make each database and table of ``dataset`` in the local PostgreSQL (again: the same
    rows), readable by :data:`SOURCES_READER` only; its new password."""
    password = secrets.token_urlsafe(24)
    reader = sql.Identifier(SOURCES_READER)
    with psycopg.connect(**postgres.superuser_conninfo("postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (SOURCES_READER,)
        ).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                reader, sql.Literal(password)
            )
        )
        known = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for database in sorted(_seeded_databases(dataset) - known):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    for database in sorted(_seeded_databases(dataset)):
        with psycopg.connect(**postgres.superuser_conninfo(database)) as conn:
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(database)))  # fmt: skip
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(database), reader))  # fmt: skip
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(reader))
            for table in (t for t in dataset if t.database == database):
                name = sql.Identifier(table.table)
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(name))
                columns = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(kind))
                    for column, kind in table.columns
                )
                conn.execute(sql.SQL("CREATE TABLE {} ({})").format(name, columns))
                with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(name)) as copy_in:
                    for row in table.rows:
                        copy_in.write_row(row)
                conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(name, reader))
    return password


# --- runs -----------------------------------------------------------------------------------


def dependency_order(products: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The products, each after the products it reads (pure; a cycle, which the API refuses
    anyway, keeps the rest in file order)."""
    key = {_key(p): p for p in products}
    done: list[dict[str, Any]] = []
    visiting: set[tuple[str, str]] = set()

    def visit(product: dict[str, Any]) -> None:
        if product in done or _key(product) in visiting:
            return
        visiting.add(_key(product))
        for upstream in (i.get("dataProduct") for i in product["spec"].get("inputs", [])):
            if upstream and (upstream["namespace"], upstream["name"]) in key:
                visit(key[(upstream["namespace"], upstream["name"])])
        done.append(product)

    for product in products:
        visit(product)
    return done


def _key(product: dict[str, Any]) -> tuple[str, str]:
    return product["metadata"]["namespace"], product["metadata"]["name"]


def _shown(product: dict[str, Any]) -> str:
    return "/".join(_key(product))


def _last_run(product: dict[str, Any], pipeline: str, job: str) -> dict[str, Any] | None:
    """The ended run of Job ``job`` as the status reports it, else None."""
    for status in (product.get("status") or {}).get("pipelines") or []:
        run = status.get("lastRun") or {}
        ended = run.get("result") in (RunStatus.SUCCEEDED, RunStatus.FAILED)
        if status.get("name") == pipeline and run.get("jobName") == job and ended:
            return dict(run)
    return None


def describe_run(run: dict[str, Any]) -> str:
    """A run's result in a few words: rows written, or why it failed (pure)."""
    if run["result"] == RunStatus.SUCCEEDED:
        return f"Succeeded, {run.get('rowsWritten', 0)} rows written"
    return f"Failed: {run.get('message') or 'no reason reported'}"


def run_example_pipelines(
    client: BlockingClient,
    products: Sequence[dict[str, Any]],
    *,
    out: TextIO,
    check_alive: Callable[[], None],
    timeout: float = RUN_SECONDS,
) -> None:
    """Run each pipeline of ``products`` once on demand, upstream products first, waiting for
    each run's result in ``status.pipelines[].lastRun``; a run that fails is printed and the
    next ones still run (a downstream product then reads what its upstream kept)."""
    token = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    for product in dependency_order(products):
        for pipeline in (p["name"] for p in product["spec"].get("pipelines", [])):
            value = f"{pipeline}:dev-{token}"
            run_id = parse_run_request(value).run_id  # type: ignore[union-attr] # never blank
            job = run_job_name(product["metadata"]["name"], pipeline, run_id)
            path = object_path(product)
            started = time.monotonic()
            client.merge_patch(path, {"metadata": {"annotations": {ANNOTATION_RUN: value}}})
            print(f"  {_shown(product)} {pipeline}: running (Job {job})", file=out, flush=True)
            while (run := _last_run(client.get(path), pipeline, job)) is None:
                check_alive()
                if time.monotonic() - started > timeout:
                    print(
                        f"  {_shown(product)} {pipeline}: no result after {timeout:.0f}s "
                        f"(kubectl -n {product['metadata']['namespace']} describe job {job})",
                        file=out,
                        flush=True,
                    )
                    break
                time.sleep(POLL_SECONDS)
            else:
                print(
                    f"  {_shown(product)} {pipeline}: {describe_run(run)} "
                    f"({time.monotonic() - started:.1f}s)",
                    file=out,
                    flush=True,
                )


# --- the mesh's health ----------------------------------------------------------------------


def _data_healthy(product: dict[str, Any]) -> dict[str, Any] | None:
    conditions = (product.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == DATA_HEALTHY), None)


def describe_health(product: dict[str, Any]) -> list[str]:
    """A product's lines in the summary (pure): each port's rows, DataHealthy and its reason,
    and the failed checks that stopped a publish."""
    status = product.get("status") or {}
    ports = ", ".join(
        f"{port['name']} {(port.get('health') or {}).get('rows', '?')} rows"
        for port in status.get("outputPorts") or []
    )
    condition = _data_healthy(product) or {"status": "Unknown", "reason": "no status yet"}
    line = f"  {_shown(product)}: {ports}; DataHealthy={condition['status']} {condition['reason']}"
    lines = [line]
    failed = [
        name
        for pipeline in status.get("pipelines") or []
        for name in ((pipeline.get("lastRun") or {}).get("checks") or {}).get("failedNames", [])
    ]
    if failed:
        lines.append(f"    failing checks (previous data kept): {', '.join(failed)}")
    return lines


def print_mesh_health(
    client: BlockingClient,
    products: Sequence[dict[str, Any]],
    *,
    out: TextIO,
    check_alive: Callable[[], None],
    timeout: float = HEALTH_SECONDS,
) -> list[dict[str, Any]]:
    """Print each product's rows and health once every DataHealthy has left NoDataYet (or at
    the timeout); the products as read."""
    deadline = time.monotonic() + timeout
    while True:
        check_alive()
        current = [client.get(object_path(p)) for p in dependency_order(products)]
        waiting = [
            p
            for p in current
            if (_data_healthy(p) or {}).get("reason", Reason.NO_DATA_YET) == Reason.NO_DATA_YET
        ]
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    print("The mesh's data (rows per port, DataHealthy):", file=out, flush=True)
    for product in current:
        print("\n".join(describe_health(product)), file=out, flush=True)
    return current
