"""The store benchmark: the operator placing ports in PostgreSQL, against the statements alone.

``make bench-stores N=50`` (or ``python -m benchmarks.stores --n 50``). On a local control plane
of its own and its PostgreSQL, for N products with 2 PostgreSQL ports (a few columns, required
and unique ones) and 3 ServiceAccount readers each (in 2 consumer domains, so reader logins are
shared between products, as in a real mesh), it measures:

1. the baseline, T_raw: the DDL and GRANT statements the operator would run for the N products,
   made by the driver's own pure planner from an empty observation (passwords as SCRAM
   verifiers), executed over one psycopg connection in a database of their own, one transaction
   per product;
2. the Kubernetes side alone, T_k8s: the products and the objects the operator makes for them
   (children, the writer's and the readers' Secrets), applied directly by one client at the
   operator's concurrency, as ``make bench`` times its baseline;
3. the operator's store path alone, T_store: the operator's own ``converge_store_ports`` (its
   pool, locks, catalog query, plans, Secrets) for N products at the operator's concurrency,
   in-process, against a database of its own, with nothing else of the operator running;
4. the operator (a separate process, as ``make bench`` runs it) creating the products until all
   are Ready, T_op; the statements it executed per product (the driver's counters, exported as
   ``dataproduct_store_statements_total``); the most connections it held, from its pool and
   from the server (``pg_stat_activity`` sampled for application_name dataproduct-operator);
5. create->Ready latency of single products, created one by one;
6. a drift pass with nothing changed: the operator restarted with a short drift interval, the
   statements of the restart's pass and of one full drift pass after it (changes must be 0).

It prints a table and a JSON line, writes ``benchmarks/results/stores-<time>.json`` and updates
its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.mesh import (
    ALL_PRODUCTS,
    CONCURRENCY,
    NAMESPACES,
    PRODUCTS,
    OperatorRun,
    Results,
    _apply_all,
    _ready,
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
    wait_all_ready,
    wait_until,
)
from benchmarks.report import run_and_publish
from benchmarks.setup import Identity, create_identities
from benchmarks.watching import WatchedCollection
from dataproduct_operator.api.dataproduct import DataProduct, PortEndpoint, ReaderKind
from dataproduct_operator.api.datastore import KIND as DATA_STORE_KIND
from dataproduct_operator.api.datastore import DataStore
from dataproduct_operator.api.naming import writer_secret_name
from dataproduct_operator.cluster.dev import (
    LOCAL_STORE,
    apply_manifests,
    build_local_store,
    install_crds,
)
from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.client import KubeClient, gather_limited
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.reconcile.mesh import MeshState
from dataproduct_operator.reconcile.stores import StoreConnections, converge_store_ports
from dataproduct_operator.specs.dataproduct import StoreWiring, build_children
from dataproduct_operator.specs.logins import Login, build_reader_secret, build_writer_secret
from dataproduct_operator.status.placement import choose_store
from dataproduct_operator.stores.driver import (
    NOTHING_CONFIRMED,
    ColumnSpec,
    LoginPassword,
    PortSpec,
    ProductRef,
    ReaderRef,
    ReaderScope,
)
from dataproduct_operator.stores.inputs import spec_reader_scopes
from dataproduct_operator.stores.postgres import naming, scram
from dataproduct_operator.stores.postgres import statements as sql
from dataproduct_operator.stores.postgres.plan import plan_ensure
from dataproduct_operator.stores.postgres.state import (
    ObservedProduct,
    ObservedRole,
    build_desired,
    reader_role,
)
from dataproduct_operator.stores.postgres.store import StatementCounter

STORES = "/apis/datamesh.dev/v1alpha1/datastores"
STORE = LOCAL_STORE
APPLICATION = "dataproduct-operator"  # the driver's application_name
RAW_DATABASE = "bench_raw"
PATH_DATABASE = "bench_store_path"  # the store path phase's (T_store)
PATH_STORE = "bench-store-path"
PATH_PREFIX = "path"  # the store path phase's namespaces
CONSUMERS = 2  # consumer domains holding the readers' ServiceAccounts
ACCOUNTS_PER_CONSUMER = 4
READERS = 3
POOL = 5  # the driver's pool (PostgresSettings.max_connections)
SAMPLE_SECONDS = 0.05
QUIET_CHANGES_SECONDS = 3.0

# The ports of every product: a few columns, required and unique ones.
PORTS = (
    PortSpec("orders-v1", (
        ColumnSpec("order_id", "string", required=True, unique=True),
        ColumnSpec("amount", "decimal", required=True),
        ColumnSpec("placed_at", "timestamp"),
        ColumnSpec("email", "string"),
    )),
    PortSpec("daily", (
        ColumnSpec("day", "date", required=True, unique=True),
        ColumnSpec("orders", "integer"),
        ColumnSpec("revenue", "number"),
    )),
)  # fmt: skip


def consumer_namespaces(prefix: str) -> list[str]:
    return [f"{prefix}-consumer-{k}" for k in range(CONSUMERS)]


def readers_of(prefix: str, index: int) -> list[tuple[str, str]]:
    """Three distinct ServiceAccounts (namespace, name) of the consumer domains; products share
    them, as consumers of a real mesh read many products."""
    accounts = [
        (namespace, f"reporting-{k}")
        for namespace in consumer_namespaces(prefix)
        for k in range(ACCOUNTS_PER_CONSUMER)
    ]
    return [accounts[(index * 3 + step) % len(accounts)] for step in range(READERS)]


def product_names(prefix: str, start: int, stop: int) -> list[tuple[str, str, int]]:
    return [(f"{prefix}-{i % NAMESPACES}", f"p-{i:05d}", i) for i in range(start, stop)]


def store_product(prefix: str, namespace: str, name: str, index: int) -> dict[str, Any]:
    """The mesh benchmark's product with its two ports in the benchmark's store, three
    ServiceAccount readers, and no pipelines or inputs (their cost is not the store's)."""
    document = bench_product(namespace, name)
    spec = document["spec"]
    del spec["pipelines"], spec["inputs"]
    spec["outputPorts"] = [
        {
            "name": port.name,
            "store": {"name": STORE},
            "schema": [
                {"name": c.name, "type": c.type, "required": c.required, "unique": c.unique}
                for c in port.columns
            ],
        }
        for port in PORTS
    ]
    spec["access"]["readers"] = [
        {"kind": "ServiceAccount", "name": account, "namespace": where}
        for where, account in readers_of(prefix, index)
    ]
    return document


# --- the baseline: the statements alone ---------------------------------------------------------


def raw_statements(
    names: list[tuple[str, str, int]], *, admin: str, server_version_num: int
) -> list[list[sql.Statement]]:
    """Per product, what the operator runs for it from an empty store: the logins of readers
    not seen before (with their verifiers, as ``ensure_reader_login`` makes them), then
    ``plan_ensure`` against an observation holding nothing but those logins."""
    made: set[str] = set()
    batches = []
    for namespace, name, index in names:
        readers = [
            ReaderRef(ReaderKind.SERVICE_ACCOUNT, account, where)
            for where, account in readers_of("raw", index)
        ]
        batch: list[sql.Statement] = []
        for reader in readers:
            role = reader_role(reader)
            if role.name not in made:
                made.add(role.name)
                verifier = scram.verifier(secrets.token_urlsafe(32))
                batch += [
                    sql.create_role(role.name, verifier=verifier),
                    sql.comment_on_role(role.name, role.marker),
                ]
        desired = build_desired(
            ProductRef(namespace, name, str(uuid.uuid4())),
            PORTS,
            [ReaderScope(reader) for reader in readers],
        )
        logins = tuple(
            ObservedRole(role.name, can_login=True, comment=role.marker)
            for _, role in desired.readers
        )
        observed = ObservedProduct(admin, server_version_num, roles=logins)
        plan = plan_ensure(
            desired,
            observed,
            writer_password=LoginPassword(secrets.token_urlsafe(32), changed=True),
            confirmed=NOTHING_CONFIRMED,
        )
        batches.append(batch + plan.statements)
    return batches


def _superuser(postgres: LocalPostgres, database: str | None = None) -> psycopg.Connection[Any]:
    return psycopg.connect(**postgres.superuser_conninfo(database), autocommit=True)


def phase_raw(postgres: LocalPostgres, n: int, results: Results) -> None:
    log(f"1. Baseline: the statements of {n} products over one connection")
    with _superuser(postgres) as superuser:
        superuser.execute(f"CREATE DATABASE {RAW_DATABASE}")
        superuser.execute(f"GRANT CREATE ON DATABASE {RAW_DATABASE} TO {postgres.username}")
    conninfo = {**postgres.admin_conninfo(), "dbname": RAW_DATABASE}
    with psycopg.connect(**conninfo, autocommit=True) as connection:
        row = connection.execute("SHOW server_version_num").fetchone()
        version = int(row[0]) if row else 0
        started = time.monotonic()
        batches = raw_statements(
            product_names("raw", 0, n), admin=postgres.username, server_version_num=version
        )
        results["t_raw_plan_s"] = time.monotonic() - started
        texts = [[statement.render() for statement in batch] for batch in batches]
        started = last = time.monotonic()
        for done, batch in enumerate(texts, 1):
            with connection.transaction():
                for text in batch:
                    connection.execute(text.encode())
            if time.monotonic() - last >= 1.0:
                log(f"    {done}/{n} products after {time.monotonic() - started:.1f}s")
                last = time.monotonic()
        results["t_raw_s"] = time.monotonic() - started
    results["raw_statements_per_product"] = sum(len(batch) for batch in batches) / n
    log(f"   {sum(map(len, batches))} statements in {results.figures['t_raw_s']:.1f}s")
    drop_database(postgres, RAW_DATABASE, "raw")


def drop_database(postgres: LocalPostgres, database: str, prefix: str) -> None:
    """A phase's database and its roles (their names hold the phase's namespaces) gone: the
    operator starts from a store as empty."""
    with _superuser(postgres) as superuser:
        superuser.execute(f"DROP DATABASE {database} WITH (FORCE)")
        roles = superuser.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (f"dm\\_%{prefix}\\_%",)
        ).fetchall()
        with superuser.transaction():
            for (role,) in roles:
                superuser.execute(psycopg.sql.SQL("DROP ROLE {}").format(
                    psycopg.sql.Identifier(role)))  # fmt: skip


# --- the Kubernetes side alone ----------------------------------------------------------------


def _endpoints(store: DataStore, namespace: str, name: str) -> dict[str, PortEndpoint]:
    postgres = store.spec.postgres
    if postgres is None:
        raise ValueError(f"DataStore {store.name} has no spec.postgres")
    where = {
        "store": store.name,
        "host": postgres.host,
        "port": postgres.port,
        "database": postgres.database,
        "schema": naming.schema_name(namespace, name),
    }
    return {
        port.name: PortEndpoint.model_validate({**where, "table": naming.table_name(port.name)})
        for port in PORTS
    }


def kubernetes_objects(store: DataStore, prefix: str, n: int) -> list[dict[str, Any]]:
    """What the operator writes in Kubernetes for the N products besides their status: the
    products, their children as the builders make them for store ports, the writer's Secrets
    and the readers' Secrets (one per ServiceAccount)."""
    objects: list[dict[str, Any]] = []
    for namespace, name, index in product_names(prefix, 0, n):
        document = store_product(prefix, namespace, name, index)
        product = DataProduct.from_object(document)
        wiring = StoreWiring(
            store_ports=frozenset(port.name for port in PORTS),
            endpoints=_endpoints(store, namespace, name),
            writer_secret=writer_secret_name(name),
        )
        objects.append(document)
        objects += build_children(product, prometheus_available=False, wiring=wiring)
        login = Login(naming.writer_role(naming.schema_name(namespace, name)), "x" * 43)
        objects.append(build_writer_secret(product, store, login))
    for namespace in consumer_namespaces(prefix):
        for k in range(ACCOUNTS_PER_CONSUMER):
            account = f"reporting-{k}"
            role = naming.service_account_role(namespace, account)
            objects.append(build_reader_secret(store, namespace, account, Login(role, "x" * 43)))
    return objects


def phase_kubernetes(
    admin: BlockingClient, client: Identity, store: DataStore, n: int, results: Results
) -> None:
    log(f"2. The Kubernetes side alone: {n} products' objects applied directly")
    prefix = "k8s"
    create_namespaces(admin, [f"{prefix}-{k}" for k in range(NAMESPACES)]
                      + consumer_namespaces(prefix))  # fmt: skip
    objects = kubernetes_objects(store, prefix, n)
    started = time.monotonic()
    # As the operator does: a binding needs its Role to exist (neither identity may `bind`).
    asyncio.run(_apply_all(client, [o for o in objects if o["kind"] != "RoleBinding"]))
    asyncio.run(_apply_all(client, [o for o in objects if o["kind"] == "RoleBinding"]))
    results["t_k8s_s"] = time.monotonic() - started
    log(f"   {len(objects)} objects in {results.figures['t_k8s_s']:.1f}s")


# --- the operator's store path alone ----------------------------------------------------------


def path_store(postgres: LocalPostgres) -> DataStore:
    """A DataStore (never applied: only this process knows it) for the local PostgreSQL's
    database of the store path phase, with the admin Secret of the operator's namespace."""
    document = local_store_document(postgres)
    document["metadata"] = {"name": PATH_STORE, "uid": str(uuid.uuid4())}
    document["spec"]["postgres"]["database"] = PATH_DATABASE
    return DataStore.from_object(document)


async def _converge_all(
    operator: Identity, store: DataStore, products: list[DataProduct]
) -> tuple[float, StatementCounter]:
    """The operator's store path for every product, 16 at once as its workers run; the time
    and the driver's counts."""
    client = KubeClient(
        Credentials.from_kubeconfig(operator.kubeconfig), max_connections=CONCURRENCY
    )
    mesh = MeshState(client)
    connections = StoreConnections(client)
    mesh.start()
    try:
        await mesh.wait_synced()

        async def converge(product: DataProduct) -> None:
            choice = choose_store(product, {store.name: store})
            work = await converge_store_ports(
                connections, mesh, product, choice, readers=spec_reader_scopes(product), now=""
            )
            result = work.result
            if result is None or result.reason or len(result.ports) != len(PORTS):
                raise RuntimeError(f"{product.namespace}/{product.name}: {result}")

        started = time.monotonic()
        await gather_limited(CONCURRENCY, *(converge(product) for product in products))
        elapsed = time.monotonic() - started
        driver = connections.known(store.name)
        if driver is None:
            raise RuntimeError("the store path made no driver")
        return elapsed, driver.counter
    finally:
        await connections.close()
        await mesh.stop()
        await client.close()


def phase_store_path(postgres: LocalPostgres, operator: Identity, n: int, results: Results) -> None:
    log(f"3. The operator's store path alone: {n} products, in-process")
    with _superuser(postgres) as superuser:
        superuser.execute(f"CREATE DATABASE {PATH_DATABASE}")
        superuser.execute(f"GRANT CREATE ON DATABASE {PATH_DATABASE} TO {postgres.username}")
    store = path_store(postgres)
    products = []
    for namespace, name, index in product_names(PATH_PREFIX, 0, n):
        document = store_product(PATH_PREFIX, namespace, name, index)
        document["metadata"]["uid"] = str(uuid.uuid4())
        document["spec"]["outputPorts"] = [
            {**port, "store": {"name": PATH_STORE}} for port in document["spec"]["outputPorts"]
        ]
        products.append(DataProduct.from_object(document))
    elapsed, counter = asyncio.run(_converge_all(operator, store, products))
    results["t_store_s"] = elapsed
    results["store_changes_per_product"] = counter.changes / n
    results["store_peak_connections"] = counter.peak_connections
    log(f"   {counter.changes} statements in {elapsed:.1f}s")
    drop_database(postgres, PATH_DATABASE, PATH_PREFIX)


# --- what the operator did -------------------------------------------------------------------


@dataclass(frozen=True)
class StoreCounts:
    reads: int = 0
    changes: int = 0
    peak_connections: int = 0
    drift_passes: int = 0

    def __sub__(self, other: StoreCounts) -> StoreCounts:
        return StoreCounts(
            self.reads - other.reads,
            self.changes - other.changes,
            self.peak_connections,
            self.drift_passes - other.drift_passes,
        )


def store_counts(run: OperatorRun) -> StoreCounts:
    """The operator's own counts for the benchmark's store, from its metrics."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(run.metrics() or ""):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "dataproduct_store_statements_total" and labels["store"] == STORE:
                found[labels["kind"]] = sample.value
            elif sample.name == "dataproduct_store_peak_connections" and labels["store"] == STORE:
                found["peak"] = sample.value
            elif (
                sample.name == "dataproduct_operator_loop_passes_total"
                and labels["loop"] == "drift-dataproducts"
            ):
                found["passes"] = sample.value
    return StoreCounts(
        int(found.get("read", 0)),
        int(found.get("change", 0)),
        int(found.get("peak", 0)),
        int(found.get("passes", 0)),
    )


class ConnectionSampler:
    """The most connections the operator held at once to its store's database, as the server
    sees them (``pg_stat_activity``), sampled from a thread of its own."""

    def __init__(self, postgres: LocalPostgres) -> None:
        self._postgres = postgres
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak = 0
        self.samples = 0

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with _superuser(self._postgres) as connection:
            while not self._stop.is_set():
                row = connection.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = %s AND datname = %s",
                    (APPLICATION, self._postgres.database),
                ).fetchone()
                self.peak = max(self.peak, int(row[0]) if row else 0)
                self.samples += 1
                self._stop.wait(SAMPLE_SECONDS)


def wait_no_changes(
    run: OperatorRun,
    *,
    quiet: float = QUIET_CHANGES_SECONDS,
    reads: bool = True,
    timeout: float = 600,
) -> StoreCounts:
    """Wait until the operator changed nothing in the store (and, with ``reads``, read nothing)
    for ``quiet`` seconds; reads go on for ever while short drift passes run."""
    last = store_counts(run)
    since = deadline = time.monotonic()
    deadline += timeout
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise TimeoutError(f"The operator still executed statements after {timeout:.0f}s")
        time.sleep(0.5)
        now = store_counts(run)
        if now.changes != last.changes or (reads and now.reads != last.reads):
            since = time.monotonic()
        last = now
    return last


def local_store_document(postgres: LocalPostgres) -> dict[str, Any]:
    """The DataStore ``local-postgres`` as the dev setup registers it."""
    (document,) = [d for d in build_local_store(postgres) if d["kind"] == DATA_STORE_KIND]
    return document


def local_store(postgres: LocalPostgres) -> DataStore:
    return DataStore.from_object(local_store_document(postgres))


def register_store(admin: BlockingClient, postgres: LocalPostgres) -> None:
    """The local PostgreSQL as the dev setup registers it: the DataStore ``local-postgres``,
    its admin (no superuser) in a Secret of the operator's namespace."""
    apply_manifests(admin, build_local_store(postgres), sys.stderr)


def create_accounts(admin: BlockingClient, prefix: str) -> None:
    for namespace in consumer_namespaces(prefix):
        for k in range(ACCOUNTS_PER_CONSUMER):
            admin.create(
                f"/api/v1/namespaces/{namespace}/serviceaccounts",
                {"metadata": {"name": f"reporting-{k}"}},
            )


def phase_operator(
    client: Identity,
    run: OperatorRun,
    *,
    products: WatchedCollection,
    n: int,
    results: Results,
) -> None:
    log(f"4. Operator: {n} products with store ports created, until all are Ready")
    names = product_names("op", 0, n)
    before = store_counts(run)
    started = time.monotonic()
    documents = [store_product("op", ns, name, i) for ns, name, i in names]
    asyncio.run(_apply_all(client, documents))
    keys = [(ns, name) for ns, name, _ in names]
    results["t_op_s"] = wait_all_ready(products, keys, timeout=3600, started=started)
    spent = wait_no_changes(run) - before
    results["changes_per_product"] = spent.changes / n
    results["reads_per_product"] = spent.reads / n
    figures = results.figures
    results["ratio"] = figures["t_op_s"] / figures["t_raw_s"]
    results["ratio_whole"] = figures["t_op_s"] / (figures["t_raw_s"] + figures["t_k8s_s"])
    results["ratio_store"] = figures["t_store_s"] / figures["t_raw_s"]


def phase_latency(
    admin: BlockingClient, client_kubeconfig: Path, count: int, results: Results
) -> None:
    log(f"5. Latency: {count} products with store ports created one by one")
    durations = []
    namespace = "op-0"
    with BlockingClient.from_kubeconfig(client_kubeconfig) as rest:
        for index in range(count):
            document = store_product("op", namespace, f"latency-{index:03d}", index)
            path = f"{PRODUCTS.format(namespace=namespace)}/{document['metadata']['name']}"
            started = time.monotonic()
            rest.create(PRODUCTS.format(namespace=namespace), document)
            while not _ready(admin.get(path)):
                if time.monotonic() - started > 120:
                    raise TimeoutError(f"{path} not Ready after 120s")
                time.sleep(0.02)
            durations.append(time.monotonic() - started)
    results["p50_ready_s"] = statistics.median(durations)
    results["max_ready_s"] = max(durations)


def phase_drift(run: OperatorRun, products: int, interval: float, results: Results) -> None:
    log(f"6. Drift: the operator restarted with --drift-interval={interval:g}, nothing changed")
    run.stop()
    run.drift_interval = interval
    run.start()
    wait_until(
        lambda: run.successful_reconciles() >= products, "every product resumed", timeout=3600
    )
    results["restart_reads_per_product"] = store_counts(run).reads / products
    resumed = wait_no_changes(run, reads=False)
    results["restart_changes"] = resumed.changes
    log(f"   every product resumed: {resumed.changes} changes; waiting for a whole drift pass")
    # One whole pass: from the end of one to the end of the next.
    first = resumed.drift_passes + 1
    wait_until(lambda: store_counts(run).drift_passes >= first, "a drift pass", timeout=3600)
    start = store_counts(run)
    wait_until(lambda: store_counts(run).drift_passes > start.drift_passes, "the next drift pass",
               timeout=3600)  # fmt: skip
    spent = store_counts(run) - start
    log(f"   a drift pass: {spent.changes} changes, {spent.reads} reads")
    results["drift_changes"] = spent.changes
    results["drift_reads_per_product"] = spent.reads / products


KEYS = (
    "n", "t_raw_s", "t_op_s", "ratio", "t_k8s_s", "ratio_whole", "t_store_s", "ratio_store",
    "store_changes_per_product", "store_peak_connections", "raw_statements_per_product",
    "changes_per_product",
    "reads_per_product", "peak_connections_pool", "peak_connections_server", "restart_changes",
    "drift_changes", "drift_reads_per_product", "p50_ready_s",
)  # fmt: skip


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    results = Results()
    results["n"] = args.n
    results["readers_per_product"] = READERS
    results["reader_logins"] = CONSUMERS * ACCOUNTS_PER_CONSUMER
    with tempfile.TemporaryDirectory(prefix="dpo-bench-stores-") as scratch:
        work = Path(scratch)
        with control_plane(work / "cluster") as info:
            results["kubernetes"] = info.kubernetes_version
            postgres = info.postgres
            phase_raw(postgres, args.n, results)
            with BlockingClient.from_kubeconfig(info.kubeconfig) as admin:
                install_crds(admin, sys.stderr)
                operator, client = create_identities(admin, work)
                phase_kubernetes(admin, client, local_store(postgres), args.n, results)
                domains = []
                for prefix in ("op", PATH_PREFIX):
                    domains += [f"{prefix}-{k}" for k in range(NAMESPACES)]
                    domains += consumer_namespaces(prefix)
                create_namespaces(admin, domains)
                create_domains(admin, domains)
                for prefix in ("op", PATH_PREFIX):
                    create_accounts(admin, prefix)
                register_store(admin, postgres)
                run = OperatorRun(operator, domains, args.operator_log, drift_interval=3600)
                watched = WatchedCollection(admin.credentials, ALL_PRODUCTS, product_summary)
                with watched, ConnectionSampler(postgres) as sampler:
                    run.start()
                    try:
                        onboard(admin, run, domains)
                        wait_until(
                            lambda: _ready(admin.get(f"{STORES}/{STORE}")),
                            "the DataStore Ready",
                            timeout=120,
                        )
                        phase_store_path(postgres, operator, args.n, results)
                        phase_operator(client, run, products=watched, n=args.n, results=results)
                        phase_latency(admin, client.kubeconfig, args.latency_count, results)
                        results["peak_connections_pool"] = store_counts(run).peak_connections
                        phase_drift(run, args.n + args.latency_count, args.drift_interval,
                                    results)  # fmt: skip
                        results["peak_connections_pool"] = max(
                            results.figures["peak_connections_pool"],
                            store_counts(run).peak_connections,
                        )
                    finally:
                        run.stop()
                    results["peak_connections_server"] = sampler.peak
                    results["connection_samples"] = sampler.samples
    results["pool_size"] = POOL
    return recorded(results.figures, KEYS, args.command)


ROWS = (
    ("n", "products (2 PostgreSQL ports, 3 ServiceAccount readers each)", ""),
    ("reader_logins", "reader logins shared by the products", ""),
    ("raw_statements_per_product", "baseline: statements per product", ""),
    ("t_raw_plan_s", "baseline: planning them, not timed in T_raw (s)", ""),
    ("t_raw_s", "baseline: executing them over one connection, T_raw (s)", ""),
    ("t_op_s", "operator: create products until all Ready, T_op (s)", ""),
    ("ratio", "T_op / T_raw", "≤ 1.5 at N = 500"),
    ("t_k8s_s", "Kubernetes side alone: the same objects applied directly, T_k8s (s)", ""),
    ("ratio_whole", "T_op / (T_raw + T_k8s)", ""),
    ("t_store_s", "operator's store path alone, in-process, T_store (s)", ""),
    ("ratio_store", "T_store / T_raw", "≤ 1.5 at N = 500"),
    ("store_changes_per_product", "store path: DDL/DCL statements per product", ""),
    ("store_peak_connections", "store path: connections at peak (its pool)", f"≤ {POOL}"),
    ("changes_per_product", "operator: DDL/DCL statements per product", ""),
    ("reads_per_product", "operator: reads (catalog queries, locks) per product", ""),
    ("peak_connections_pool", "operator: connections at peak (its pool)", f"≤ {POOL}"),
    ("peak_connections_server", "... at peak on the server (pg_stat_activity)", f"≤ {POOL}"),
    ("p50_ready_s", "single product with store ports create->Ready p50 (s)", "≤ 1"),
    ("max_ready_s", "single product create->Ready max (s)", ""),
    ("restart_changes", "restart with nothing changed: DDL/DCL statements", "0"),
    ("restart_reads_per_product", "restart: reads per product", ""),
    ("drift_changes", "drift pass with nothing changed: DDL/DCL statements", "0"),
    ("drift_reads_per_product", "drift pass: reads per product", ""),
)
MARKERS = (
    "<!-- stores-run:start (written by `make bench-stores`) -->",
    "<!-- stores-run:end -->",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_arguments(parser)
    parser.add_argument("--latency-count", type=int, default=10, help="single products timed")
    parser.add_argument(
        "--drift-interval", type=float, default=5.0, help="the operator's, for the drift phase"
    )
    parser.add_argument(
        "--operator-log",
        type=Path,
        default=Path(tempfile.gettempdir()) / "dpo-bench-stores-operator.log",
    )
    return checked_sizes(parser, argv, "benchmarks.stores")


def main(argv: list[str] | None = None) -> int:
    return run_and_publish(
        parse_args(argv), run_benchmark, ROWS, name="stores", markers=MARKERS,
        heading="Stores: latest run",
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
