"""The PostgreSQL store driver against the local cluster's real PostgreSQL, as its admin (no
superuser: CREATEROLE and CREATE on the database), with logins tried as pipelines and readers
connect, and the superuser only to sabotage and inspect (stores/postgres/store.py).

Each test places its own product (its own namespace name), so tests share the server but no
schema or role.
"""

# ruff: noqa: S608 (statements name the test's own tables; the driver under test never formats)
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import psycopg
import pytest

from dataproduct_operator.api.dataproduct import DeletionPolicy, ReaderKind
from dataproduct_operator.cluster import controlplane
from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.cluster.postgres import LocalPostgres, accepting
from dataproduct_operator.stores.driver import (
    AuthenticationFailedError,
    ColumnSpec,
    ConfirmedDeletions,
    LoginPassword,
    OwnershipConflictError,
    PortSpec,
    ProductRef,
    ReaderRef,
    ReaderScope,
    StoreUnavailableError,
)
from dataproduct_operator.stores.postgres import naming
from dataproduct_operator.stores.postgres.settings import PostgresSettings
from dataproduct_operator.stores.postgres.store import PostgresStore
from tests.clusters import login_sql, superuser_sql
from tests.helpers import wait_for

T = TypeVar("T")
PORT = PortSpec("orders-v1", (
    ColumnSpec("order_id", "string", required=True, unique=True),
    ColumnSpec("amount", "decimal"),
    ColumnSpec("quantity", "integer"),
))  # fmt: skip
WRITER_PASSWORD = "writer-password-1"
READER_PASSWORD = "reader-password-1"
DENIED = "permission denied"


def settings(postgres: LocalPostgres, **changes: Any) -> PostgresSettings:
    base = PostgresSettings(
        store="local-postgres",
        host=postgres.host,
        port=postgres.port,
        database=postgres.database,
        user=postgres.username,
        password=postgres.password,
        connect_timeout_seconds=2,
    )
    return replace(base, **changes)


def with_store(
    postgres: LocalPostgres, work: Callable[[PostgresStore], Awaitable[T]], **changes: Any
) -> T:
    """``work(store)`` in its own event loop, the store's pool closed afterwards."""

    async def run() -> T:
        store = PostgresStore(settings(postgres, **changes))
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


class Product:
    """One test's product: its names, and how its logins connect."""

    def __init__(self, postgres: LocalPostgres, namespace: str, name: str = "orders") -> None:
        self.postgres = postgres
        self.ref = ProductRef(namespace, name, f"uid-{namespace}")
        self.schema = naming.schema_name(namespace, name)
        self.table = f"{self.schema}.{naming.table_name(PORT.name)}"
        self.writer = naming.writer_role(self.schema)
        self.reader = ReaderRef(ReaderKind.SERVICE_ACCOUNT, "reporting", f"{namespace}-consumer")
        self.scope = ReaderScope(self.reader)  # every port
        self.reader_login = naming.service_account_role(f"{namespace}-consumer", "reporting")

    async def ensure(
        self,
        store: PostgresStore,
        ports: tuple[PortSpec, ...] = (PORT,),
        readers: tuple[ReaderScope, ...] | None = None,
        **kwargs: Any,
    ) -> Any:
        readers = (self.scope,) if readers is None else readers
        if any(scope.reader == self.reader for scope in readers):
            await store.ensure_reader_login(self.reader, LoginPassword(READER_PASSWORD))
        kwargs.setdefault("writer_password", LoginPassword(WRITER_PASSWORD))
        return await store.ensure_ports(self.ref, ports, readers, **kwargs)

    def placed_with_one_row(self) -> Product:
        """Ensured, with the row ('o-1', 9.5, 2) written by the writer login."""
        with_store(self.postgres, self.ensure)
        self.as_writer(f"INSERT INTO {self.table} VALUES ('o-1', 9.5, 2)")
        return self

    def as_writer(self, statement: str, password: str = WRITER_PASSWORD) -> list[tuple[Any, ...]]:
        return login_sql(self.postgres, self.writer, password, statement)

    def as_reader(self, statement: str, password: str = READER_PASSWORD) -> list[tuple[Any, ...]]:
        return login_sql(self.postgres, self.reader_login, password, statement)

    def roles(self) -> list[str]:
        rows = superuser_sql(
            self.postgres,
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s ORDER BY rolname",
            (f"dm_%{self.ref.namespace.replace('-', '_')}%",),
        )
        return [row[0] for row in rows]


def test_ports_are_created_with_their_columns_and_constraints_and_the_writer_inserts(
    postgres: LocalPostgres,
) -> None:
    product = Product(postgres, "t-store-create")
    result = with_store(postgres, product.ensure)
    (placement,) = result.ports
    assert placement.endpoint is not None
    assert (placement.endpoint.schema, placement.endpoint.table) == (product.schema, "orders_v1")
    assert result.changes > 0 and result.refused == ()
    columns = superuser_sql(postgres, (
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = %s ORDER BY ordinal_position"), (product.schema,))  # fmt: skip
    assert columns == [("order_id", "text", "NO"), ("amount", "numeric", "YES"),
                       ("quantity", "bigint", "YES")]  # fmt: skip
    # The writer logs in with the password whose SCRAM verifier the driver computed.
    product.as_writer(f"INSERT INTO {product.table} VALUES ('o-1', 9.5, 2)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        product.as_writer(f"INSERT INTO {product.table} VALUES ('o-1', 1, 1)")
    with pytest.raises(psycopg.errors.NotNullViolation):
        product.as_writer(f"INSERT INTO {product.table} (amount) VALUES (1)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=DENIED):
        product.as_writer(f"CREATE TABLE {product.schema}.staging (a int)")
    observed = with_store(postgres, lambda store: store.observe(product.ref, [PORT.name]))
    assert observed.exists and observed.tables[0].rows == 1
    assert (observed.tables[0].size_bytes or 0) > 0
    managed = with_store(postgres, lambda store: store.list_managed_schemas())
    mine = [m for m in managed if m.schema == product.schema]
    assert [(m.namespace, m.product, m.uid) for m in mine] == [
        ("t-store-create", "orders", "uid-t-store-create")
    ]


def test_a_reader_selects_and_cannot_insert_update_delete_or_create(
    postgres: LocalPostgres,
) -> None:
    product = Product(postgres, "t-store-reader").placed_with_one_row()
    assert product.as_reader(f"SELECT order_id FROM {product.table}") == [("o-1",)]
    for statement in (
        f"INSERT INTO {product.table} VALUES ('o-2', 1, 1)",
        f"UPDATE {product.table} SET amount = 0",
        f"DELETE FROM {product.table}",
        f"TRUNCATE {product.table}",
        f"CREATE TABLE {product.schema}.mine (a int)",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=DENIED):
            product.as_reader(statement)


def test_a_reader_removed_from_the_spec_is_denied_at_once_and_its_login_dropped(
    postgres: LocalPostgres,
) -> None:
    product = Product(postgres, "t-store-revoke")
    with_store(postgres, product.ensure)
    assert product.as_reader(f"SELECT count(*) FROM {product.table}") == [(0,)]

    async def remove_reader(store: PostgresStore) -> bool:
        await product.ensure(store, readers=())
        return await store.drop_reader_if_unused(product.reader)

    assert with_store(postgres, remove_reader)
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        product.as_reader("SELECT 1")
    # grant() and revoke() do the same for one reader without the rest of the state.
    with_store(postgres, product.ensure)

    async def revoke(store: PostgresStore) -> int:
        return await store.revoke(product.ref, [PORT.name], [product.scope])

    assert with_store(postgres, revoke) == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=DENIED):
        product.as_reader(f"SELECT count(*) FROM {product.table}")
    grants = with_store(postgres, lambda s: s.grant(product.ref, [PORT.name], [product.scope]))
    assert [g.role for g in grants] == [naming.read_role(product.schema, "orders_v1")]
    assert product.as_reader(f"SELECT count(*) FROM {product.table}") == [(0,)]


def test_a_reader_scoped_to_one_port_reads_it_is_denied_the_other_until_its_scope_widens(
    postgres: LocalPostgres,
) -> None:
    product = Product(postgres, "t-store-scoped")
    refunds = PortSpec("refunds", (ColumnSpec("refund_id", "string"),))
    refunds_table = f"{product.schema}.refunds"
    ports = (PORT, refunds)

    def ensure(scope: ReaderScope) -> Any:
        return with_store(postgres, lambda store: product.ensure(store, ports, (scope,)))

    def granted(result: Any) -> dict[str, list[ReaderRef]]:
        return {p.port: [grant.reader for grant in p.grants] for p in result.ports}

    orders_only = ensure(ReaderScope(product.reader, frozenset({PORT.name})))
    assert granted(orders_only) == {PORT.name: [product.reader], "refunds": []}
    product.as_writer(f"INSERT INTO {product.table} VALUES ('o-1', 9.5, 2)")
    product.as_writer(f"INSERT INTO {refunds_table} VALUES ('r-1')")
    assert product.as_reader(f"SELECT order_id FROM {product.table}") == [("o-1",)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=DENIED):
        product.as_reader(f"SELECT refund_id FROM {refunds_table}")

    widened = ensure(product.scope)
    assert widened.changes == 1  # the refunds port's read role granted, nothing else
    assert granted(widened) == {PORT.name: [product.reader], "refunds": [product.reader]}
    assert product.as_reader(f"SELECT refund_id FROM {refunds_table}") == [("r-1",)]
    assert product.as_reader(f"SELECT order_id FROM {product.table}") == [("o-1",)]

    narrowed = ensure(ReaderScope(product.reader, frozenset({"refunds"})))
    assert narrowed.changes == 1  # the orders port's membership revoked, nothing else
    assert granted(narrowed) == {PORT.name: [], "refunds": [product.reader]}
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=DENIED):
        product.as_reader(f"SELECT order_id FROM {product.table}")
    assert product.as_reader(f"SELECT refund_id FROM {refunds_table}") == [("r-1",)]


def test_hand_made_grants_are_revoked_by_the_next_ensure(postgres: LocalPostgres) -> None:
    product = Product(postgres, "t-store-drift")
    with_store(postgres, product.ensure)
    superuser_sql(postgres, "CREATE ROLE t_store_drift_intruder LOGIN PASSWORD 'intruder'")
    intruder = "t_store_drift_intruder"
    read_role = naming.read_role(product.schema, "orders_v1")
    for statement in (
        f"GRANT SELECT ON {product.table} TO {intruder}",
        f"GRANT SELECT (order_id) ON {product.table} TO {intruder}",
        f"GRANT USAGE, CREATE ON SCHEMA {product.schema} TO {intruder}",
        f"GRANT INSERT ON {product.table} TO {product.reader_login}",
        f"GRANT {read_role} TO {intruder}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {naming.owner_role(product.schema)} "
        f"IN SCHEMA {product.schema} GRANT SELECT ON TABLES TO {intruder}",
    ):
        superuser_sql(postgres, statement)
    assert login_sql(postgres, intruder, "intruder", f"SELECT count(*) FROM {product.table}")

    result = with_store(postgres, product.ensure)
    assert result.changes == 6
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=DENIED):
        login_sql(postgres, intruder, "intruder", f"SELECT count(*) FROM {product.table}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=DENIED):
        product.as_reader(f"INSERT INTO {product.table} VALUES ('x', 1, 1)")
    again = with_store(postgres, product.ensure)
    assert again.changes == 0
    superuser_sql(postgres, f"DROP ROLE {intruder}")


def test_columns_added_removed_and_retyped_as_postgresql_can(postgres: LocalPostgres) -> None:
    product = Product(postgres, "t-store-columns").placed_with_one_row()
    changed = PortSpec(PORT.name, (
        ColumnSpec("order_id", "integer", required=True, unique=True),  # text → bigint: refused
        ColumnSpec("quantity", "decimal"),  # bigint → numeric: applied
        ColumnSpec("note", "string"),  # added
        ColumnSpec("region", "string", required=True),  # added, NOT NULL refused by the row
    ))  # amount: removed, kept  # fmt: skip
    result = with_store(postgres, lambda store: product.ensure(store, ports=(changed,)))
    assert [(k.port, k.column, k.sql_type) for k in result.kept_columns] == [
        ("orders-v1", "amount", "numeric")
    ]
    refused = {r.column: r.message for r in result.refused}
    assert set(refused) == {"order_id", "region"}
    assert "text to bigint" in refused["order_id"]
    assert "region" in refused["region"] and "null" in refused["region"].lower()
    types = dict(superuser_sql(postgres, (
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s"),
        (product.schema,)))  # fmt: skip
    assert types == {"order_id": "text", "amount": "numeric", "quantity": "numeric",
                     "note": "text", "region": "text"}  # fmt: skip
    assert product.as_reader(f"SELECT amount, quantity FROM {product.table}") == [(9.5, 2)]
    # Filled by hand, the column gets its NOT NULL at the next ensure.
    product.as_writer(f"UPDATE {product.table} SET region = 'eu'")
    result = with_store(postgres, lambda store: product.ensure(store, ports=(changed,)))
    assert [r.column for r in result.refused] == ["order_id"]
    # Dropped only once confirmed.
    confirmed = ConfirmedDeletions.parse("orders-v1.amount")
    result = with_store(
        postgres, lambda store: product.ensure(store, ports=(changed,), confirmed=confirmed)
    )
    assert result.kept_columns == ()
    columns = superuser_sql(postgres, (
        "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_schema = %s "
        "ORDER BY column_name"), (product.schema,))  # fmt: skip
    assert columns == [("note", "YES"), ("order_id", "NO"), ("quantity", "YES"),
                       ("region", "NO")]  # fmt: skip


def test_retain_deletion_keeps_rows_disables_logins_and_a_new_product_adopts_them(
    postgres: LocalPostgres,
) -> None:
    product = Product(postgres, "t-store-retain").placed_with_one_row()
    deleted = with_store(postgres, lambda store: store.delete(product.ref))
    assert deleted.policy == DeletionPolicy.RETAIN and not deleted.schema_dropped
    assert deleted.logins_disabled == (product.writer,)
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        product.as_writer("SELECT 1")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=DENIED):
        product.as_reader(f"SELECT * FROM {product.table}")
    acl = superuser_sql(postgres, "SELECT relacl::text FROM pg_class WHERE oid = %s::regclass",
                        (product.table,))  # fmt: skip
    assert product.writer not in acl[0][0] and "_read" not in acl[0][0]

    again = replace(product.ref, uid="uid-recreated")
    adopted = with_store(postgres, lambda store: store.ensure_ports(
        again, (PORT,), (product.scope,),
        writer_password=LoginPassword("writer-password-2", changed=True)))  # fmt: skip
    assert adopted.adopted
    assert product.as_writer(f"SELECT order_id FROM {product.table}",
                             "writer-password-2") == [("o-1",)]  # fmt: skip
    assert product.as_reader(f"SELECT order_id FROM {product.table}") == [("o-1",)]


def test_delete_deletion_drops_the_schema_and_the_product_roles(postgres: LocalPostgres) -> None:
    product = Product(postgres, "t-store-delete")
    with_store(postgres, product.ensure)
    assert len(product.roles()) == 4  # owner, writer, read role, the reader's login
    ref = replace(product.ref, deletion_policy=DeletionPolicy.DELETE)
    deleted = with_store(postgres, lambda store: store.delete(ref))
    assert deleted.schema_dropped
    assert superuser_sql(postgres, "SELECT 1 FROM pg_namespace WHERE nspname = %s",
                         (product.schema,)) == []  # fmt: skip
    assert product.roles() == [product.reader_login]  # a reader's login is not the product's
    assert with_store(postgres, lambda store: store.drop_reader_if_unused(product.reader))
    assert product.roles() == []


def test_a_changed_password_works_and_the_old_one_stops_working(
    postgres: LocalPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dataproduct_operator.stores")
    product = Product(postgres, "t-store-rotate")
    with_store(postgres, product.ensure)

    async def rotate(store: PostgresStore) -> Any:
        await store.ensure_reader_login(product.reader, LoginPassword("reader-2", changed=True))
        rotated = LoginPassword("writer-2", changed=True)
        return await store.ensure_ports(
            product.ref, (PORT,), (product.scope,), writer_password=rotated
        )

    with_store(postgres, rotate)
    for connect, old, new in ((product.as_writer, WRITER_PASSWORD, "writer-2"),
                              (product.as_reader, READER_PASSWORD, "reader-2")):  # fmt: skip
        assert connect("SELECT 1", new) == [(1,)]
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            connect("SELECT 1", old)
    # The server holds verifiers, never the passwords.
    stored = superuser_sql(postgres, "SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                           (product.writer,))  # fmt: skip
    assert stored[0][0].startswith("SCRAM-SHA-256$4096:")
    # The statements are logged at debug level, but neither passwords nor verifiers.
    assert "ALTER ROLE" in caplog.text or "CREATE ROLE" in caplog.text
    for secret in ("SCRAM-SHA-256", WRITER_PASSWORD, "writer-2", "reader-2", postgres.password):
        assert secret not in caplog.text


def test_an_idle_ensure_executes_reads_only(postgres: LocalPostgres) -> None:
    product = Product(postgres, "t-store-idle")

    async def twice(store: PostgresStore) -> tuple[int, int, int]:
        await product.ensure(store)
        changes, reads = store.counter.changes, store.counter.reads
        same = LoginPassword(WRITER_PASSWORD)
        result = await store.ensure_ports(
            product.ref, (PORT,), (product.scope,), writer_password=same
        )
        return result.changes, store.counter.changes - changes, store.counter.reads - reads

    assert with_store(postgres, twice) == (0, 0, 2)  # the advisory lock and one catalog query


def test_concurrent_ensures_of_one_product_and_one_reader_make_each_object_once(
    postgres: LocalPostgres,
) -> None:
    product = Product(postgres, "t-store-race")

    async def race(store: PostgresStore) -> None:
        others = [PostgresStore(settings(postgres)) for _ in range(3)]
        try:
            await asyncio.gather(*(product.ensure(each) for each in [store, *others]))
        finally:
            await asyncio.gather(*(other.close() for other in others))

    with_store(postgres, race)
    assert len(product.roles()) == 4
    assert product.as_reader(f"SELECT count(*) FROM {product.table}") == [(0,)]
    assert with_store(postgres, product.ensure).changes == 0


def test_a_schema_not_made_for_the_product_is_a_conflict_and_left_alone(
    postgres: LocalPostgres,
) -> None:
    product = Product(postgres, "t-store-conflict")
    superuser_sql(postgres, f"CREATE SCHEMA {product.schema}")
    superuser_sql(postgres, f"CREATE TABLE {product.schema}.precious (a int)")
    with pytest.raises(OwnershipConflictError, match="not made by the operator"):
        with_store(postgres, product.ensure)
    ref = replace(product.ref, deletion_policy=DeletionPolicy.DELETE)
    assert not with_store(postgres, lambda store: store.delete(ref)).schema_dropped
    assert superuser_sql(postgres, f"SELECT count(*) FROM {product.schema}.precious") == [(0,)]
    superuser_sql(postgres, f"DROP SCHEMA {product.schema} CASCADE")


def test_verify_names_a_wrong_password_and_a_missing_privilege(postgres: LocalPostgres) -> None:
    good = with_store(postgres, lambda store: store.verify())
    assert good.ready and good.server_version and good.server_version[:2].isdigit()
    wrong = with_store(postgres, lambda store: store.verify(), password="not-the-password")
    assert wrong.reason == "AuthenticationFailed"
    assert "password authentication failed" in wrong.message
    assert "not-the-password" not in wrong.message
    superuser_sql(postgres, "CREATE ROLE t_store_weak LOGIN PASSWORD 'weak'")
    try:
        weak = with_store(postgres, lambda store: store.verify(), user="t_store_weak",
                          password="weak")  # fmt: skip
        assert weak.reason == "PrivilegeMissing"
        assert weak.missing_privileges == ("CREATEROLE", f"CREATE on database {postgres.database}")
        assert "ALTER ROLE t_store_weak CREATEROLE" in weak.message
        with pytest.raises(AuthenticationFailedError):
            with_store(postgres, lambda store: store.observe(product_ref(), []),
                       password="not-the-password")  # fmt: skip
    finally:
        superuser_sql(postgres, "DROP ROLE t_store_weak")


def product_ref() -> ProductRef:
    return ProductRef("t-store-verify", "orders", "uid")


def test_a_stopped_server_is_unavailable_and_once_started_works_without_duplicates(
    postgres: LocalPostgres, control_plane: ClusterInfo
) -> None:
    product = Product(postgres, "t-store-restart")

    async def across_restart(store: PostgresStore) -> None:
        await product.ensure(store)
        with controlplane.stopped(control_plane.directory, "postgres"):
            with pytest.raises(StoreUnavailableError) as unavailable:
                await product.ensure(store)
            assert "connect" in str(unavailable.value).lower()
            assert postgres.password not in str(unavailable.value)
            verification = await store.verify()
            assert verification.reason == "StoreUnavailable" and not verification.ready
        wait_for(lambda: accepting(postgres), description="PostgreSQL to accept connections")
        deadline = asyncio.get_running_loop().time() + 60
        while True:  # the pool reconnects with backoff; poll, no sleep beyond its own
            try:
                result = await product.ensure(store)
                break
            except StoreUnavailableError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
        assert result.changes == 0

    with_store(postgres, across_restart)
    assert len(product.roles()) == 4
    assert product.as_reader(f"SELECT count(*) FROM {product.table}") == [(0,)]


def test_a_burst_of_products_queues_for_the_pool_and_never_exceeds_it(
    postgres: LocalPostgres,
) -> None:
    products = [Product(postgres, f"t-store-burst-{i}") for i in range(12)]
    count = "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't_store_burst%'"

    async def burst(store: PostgresStore) -> tuple[int, list[tuple[Any, ...]]]:
        password = LoginPassword(WRITER_PASSWORD, changed=True)
        await asyncio.gather(*(
            store.ensure_ports(p.ref, (PORT,), (), writer_password=password) for p in products
        ))  # fmt: skip
        placed = superuser_sql(postgres, count)
        await asyncio.gather(*(store.delete(replace(p.ref, deletion_policy=DeletionPolicy.DELETE))
                               for p in products))  # fmt: skip
        return store.counter.peak_connections, placed

    assert with_store(postgres, burst, max_connections=2) == (2, [(12,)])
    assert superuser_sql(postgres, count) == [(0,)]


def test_hostile_column_names_become_exactly_those_columns(postgres: LocalPostgres) -> None:
    product = Product(postgres, "t-store-hostile")
    names = ['x"; DROP SCHEMA public CASCADE; --', "it's", "Ölçü {}", "%(schema)s"]
    port = PortSpec(PORT.name, tuple(ColumnSpec(name, "string", unique=True) for name in names))
    result = with_store(postgres, lambda store: product.ensure(store, ports=(port,)))
    assert result.refused == ()
    columns = superuser_sql(postgres, (
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
        "ORDER BY ordinal_position"), (product.schema,))  # fmt: skip
    assert [row[0] for row in columns] == names
    assert superuser_sql(postgres, "SELECT 1 FROM pg_namespace WHERE nspname = 'public'")
    assert with_store(postgres, lambda store: product.ensure(store, ports=(port,))).changes == 0
