"""The PostgreSQL store: the only module that talks to PostgreSQL (layer ``stores``, I/O).

One :class:`PostgresStore` per DataStore holds a small psycopg_pool pool (min 0, max 5 by
default; connect, statement and lock timeouts set per connection by libpq options). Each call is
one transaction: an advisory lock on the product's schema name (two reconciles of one product
queue instead of racing), one catalog query (:mod:`.observe`), the plan (:mod:`.plan`), its
statements. A converged product therefore costs three reads and no DDL. Data-dependent statements
run in savepoints: one refused by the rows (SET NOT NULL over nulls, UNIQUE over duplicates, a
cast that fails) is reported and the rest commits. A transaction that races another over a shared
role (duplicate_object, unique_violation, "tuple concurrently updated") is tried again from the
observation. Connection failures become :class:`StoreUnavailableError` or
:class:`AuthenticationFailedError` with the server's message, never with a password in it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import errors, sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from dataproduct_operator.api.dataproduct import DeletionPolicy, ReaderKind
from dataproduct_operator.stores import driver
from dataproduct_operator.stores.driver import (
    NOTHING_CONFIRMED,
    ConfirmedDeletions,
    DeleteResult,
    Endpoint,
    EnsureResult,
    Grant,
    LoginPassword,
    LoginResult,
    ManagedSchema,
    PortPlacement,
    PortSpec,
    ProductObservation,
    ProductRef,
    ReaderRef,
    ReaderScope,
    RefusedChange,
    StoreVerification,
    TableObservation,
)
from dataproduct_operator.stores.postgres import markers, observe, scram
from dataproduct_operator.stores.postgres import statements as statements_module
from dataproduct_operator.stores.postgres.plan import (
    Plan,
    missing_logins,
    plan_delete,
    plan_ensure,
    plan_memberships,
    plan_retain,
)
from dataproduct_operator.stores.postgres.settings import PostgresSettings
from dataproduct_operator.stores.postgres.state import (
    DesiredProduct,
    ObservedProduct,
    build_desired,
    reader_role,
)
from dataproduct_operator.stores.postgres.statements import Effect, Statement

log = logging.getLogger(__name__)
T = TypeVar("T")

RACE_ATTEMPTS = 3
# A table without statistics yet (reltuples = -1) is counted exactly when smaller than this.
EXACT_COUNT_MAX_BYTES = 8 * 1024 * 1024
_RACES = (errors.DuplicateObject, errors.UniqueViolation, errors.SerializationFailure,
          errors.DeadlockDetected)  # fmt: skip


@dataclass
class StatementCounter:
    """What the store executed since it was made: ``reads`` (catalog queries, locks),
    ``changes`` (DDL and DCL), ``transactions``, and the most connections open at once."""

    reads: int = 0
    changes: int = 0
    transactions: int = 0
    connections_in_use: int = 0
    peak_connections: int = 0


def _safe_message(error: BaseException, password: str) -> str:
    message = str(error).strip() or type(error).__name__
    return message.replace(password, "<password>") if password else message


def _is_authentication_failure(error: psycopg.Error) -> bool:
    if error.sqlstate in {"28P01", "28000"}:
        return True
    text = str(error)
    return "password authentication failed" in text or "no pg_hba.conf entry" in text


def _is_race(error: psycopg.Error) -> bool:
    return isinstance(error, _RACES) or "tuple concurrently updated" in str(error)


class PostgresStore:
    """The driver of one PostgreSQL database (see :class:`driver.CredentialedStore`)."""

    def __init__(self, settings: PostgresSettings) -> None:
        self.settings = settings
        self.counter = StatementCounter()
        self._pool = AsyncConnectionPool(
            # Autocommit: reads need no transaction; changes open theirs explicitly.
            kwargs={**settings.connection_kwargs(), "autocommit": True},
            min_size=0,
            max_size=settings.max_connections,
            open=False,
            # A connection the server closed (a restart) is replaced before use, not failed on.
            check=AsyncConnectionPool.check_connection,
            name=f"datastore-{settings.store}",
        )
        self._opened = False

    async def close(self) -> None:
        if not self._opened:
            return
        self._opened = False
        try:
            await self._pool.close()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this task is cancelled: so be it
            # Else the pool's own worker tasks, which close() cancels, were gathered with the
            # cancellation they ended with: the pool is closed.

    # --- connections and errors ---------------------------------------------------------------

    def _error(self, error: BaseException) -> driver.StoreError:
        message = _safe_message(error, self.settings.password)
        if isinstance(error, psycopg.Error) and _is_authentication_failure(error):
            return driver.AuthenticationFailedError(message)
        if isinstance(error, errors.InsufficientPrivilege):
            return driver.PrivilegeMissingError(message)
        if isinstance(error, psycopg.OperationalError):
            return driver.StoreUnavailableError(message)
        return driver.StoreError(message)  # a statement the server refused: its message

    async def _probe(self) -> driver.StoreError | None:
        """Why the pool gets no connection: one direct attempt; its error, or None."""
        try:
            connection = await psycopg.AsyncConnection.connect(**self.settings.connection_kwargs())
        except psycopg.Error as error:
            return self._error(error)
        await connection.close()
        return None

    async def _acquire(self) -> psycopg.AsyncConnection[Any]:
        """A connection from the pool. A burst waits its turn up to the acquire timeout; a
        store that is down is told apart within the connect timeout: when this store holds no
        connection and the pool still gives none, one direct attempt says why (and never adds
        to a busy pool: it runs only when none of the pool's connections is in use)."""
        if not self._opened:
            await self._pool.open(wait=False)
            self._opened = True
        loop = asyncio.get_running_loop()
        settings = self.settings
        deadline = loop.time() + settings.acquire_timeout_seconds
        while True:
            wait = min(settings.connect_timeout_seconds + 1.0, deadline - loop.time())
            try:
                return await self._pool.getconn(timeout=max(wait, 0.1))
            except PoolTimeout:
                if self.counter.connections_in_use == 0:
                    failure = await self._probe()
                    if failure is not None:
                        raise failure from None
                if loop.time() >= deadline:
                    raise driver.StoreUnavailableError(
                        f"no connection of {settings.max_connections} free within "
                        f"{settings.acquire_timeout_seconds} s"
                    ) from None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        connection = await self._acquire()
        counter = self.counter
        counter.connections_in_use += 1
        counter.peak_connections = max(counter.peak_connections, counter.connections_in_use)
        try:
            yield connection
        except psycopg.Error as error:
            # Races are tried again by _transaction; every other error becomes a typed one.
            if _is_race(error):
                raise
            raise self._error(error) from None
        finally:
            counter.connections_in_use -= 1
            await self._pool.putconn(connection)

    async def _read(
        self, connection: psycopg.AsyncConnection[Any], query: str, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        self.counter.reads += 1
        cursor = await connection.execute(query, params)
        return await cursor.fetchall()

    async def _lock(self, connection: psycopg.AsyncConnection[Any], key: str) -> None:
        await self._read(
            connection, "SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0))", {"key": key}
        )

    async def _observe(
        self,
        connection: psycopg.AsyncConnection[Any],
        desired: DesiredProduct,
        *,
        sizes: bool = False,
    ) -> ObservedProduct:
        roles = [desired.owner.name, desired.writer.name]
        roles += [table.read_role for table in desired.tables]
        roles += [role.name for _, role in desired.readers]
        rows = await self._read(connection, observe.PRODUCT_QUERY, {
            "schema": desired.schema, "roles": roles, "sizes": sizes,
            "needle": markers.schema_needle(desired.schema)})  # fmt: skip
        document = rows[0][0]
        return observe.parse_product(
            document if isinstance(document, dict) else json.loads(document)
        )

    async def _execute(
        self, connection: psycopg.AsyncConnection[Any], statement: Statement
    ) -> None:
        self.counter.changes += 1
        # str() of a statement carrying a password verifier is a placeholder, never the verifier.
        log.debug("PostgreSQL store %s: %s", self.settings.store, statement)
        await connection.execute(_compose(statement))

    async def _apply(
        self, connection: psycopg.AsyncConnection[Any], plan: Plan
    ) -> list[RefusedChange]:
        """Run the plan's statements; data-dependent ones in savepoints, their refusals returned.

        The statements before the first data-dependent one cannot fail on the rows: they go in
        one pipeline (one round trip instead of one each; the first error still aborts the
        transaction and is raised as before)."""
        refused: list[RefusedChange] = []
        statements = plan.statements
        leading = next(
            (i for i, s in enumerate(statements) if s.effect is Effect.DATA_DEPENDENT),
            len(statements),
        )
        if leading:
            async with connection.pipeline():
                for statement in statements[:leading]:
                    await self._execute(connection, statement)
        for statement in statements[leading:]:
            if statement.effect is not Effect.DATA_DEPENDENT:
                await self._execute(connection, statement)
                continue
            try:
                async with connection.transaction():
                    await self._execute(connection, statement)
            except (psycopg.DataError, psycopg.IntegrityError) as error:
                port, _, column = statement.subject.partition(".")
                refused.append(RefusedChange(port, column or None, (
                    f"PostgreSQL refused the change of {statement.subject} over the rows the "
                    f"table holds: {error.diag.message_primary or error}; fix the rows or the "
                    "spec")))  # fmt: skip
        return refused

    async def _transaction(
        self, key: str, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
    ) -> T:
        """``work(connection)`` in one transaction under the product's advisory lock; tried again
        when it raced another transaction over a shared object."""
        for attempt in range(1, RACE_ATTEMPTS + 1):
            try:
                async with self._connection() as connection, connection.transaction():
                    self.counter.transactions += 1
                    await self._lock(connection, key)
                    return await work(connection)
            except psycopg.Error as error:
                if not _is_race(error):
                    raise
                if attempt == RACE_ATTEMPTS:
                    raise driver.StoreUnavailableError(
                        _safe_message(error, self.settings.password)
                    ) from None
                log.info("PostgreSQL store %s: raced another change, trying again",
                         self.settings.store)  # fmt: skip
        raise AssertionError("unreachable")  # pragma: no cover

    # --- the driver ---------------------------------------------------------------------------

    def _endpoint(self, schema: str, table: str) -> Endpoint:
        s = self.settings
        return Endpoint(s.store, s.host, s.port, s.database, schema, table)

    async def ensure_ports(
        self,
        product: ProductRef,
        ports: Sequence[PortSpec],
        readers: Sequence[ReaderScope],
        *,
        writer_password: LoginPassword,
        confirmed: ConfirmedDeletions = NOTHING_CONFIRMED,
    ) -> EnsureResult:
        """The product's full state; each reader granted the ports its scope covers (and
        revoked on the others), each placement listing the readers of its port."""
        desired = build_desired(product, ports, readers)

        async def work(connection: psycopg.AsyncConnection[Any]) -> EnsureResult:
            observed = await self._observe(connection, desired)
            plan = plan_ensure(
                desired, observed, writer_password=writer_password, confirmed=confirmed
            )
            refused = plan.refused + await self._apply(connection, plan)
            placements = tuple(
                PortPlacement(
                    port=table.port,
                    endpoint=self._endpoint(desired.schema, table.name),
                    read_role=table.read_role,
                    grants=tuple(Grant(reader, table.read_role) for reader, _ in table.readers),
                )
                for table in desired.tables
                if table.name in plan.placed
            )
            return EnsureResult(
                ports=placements,
                schema=desired.schema,
                kept_columns=tuple(plan.kept_columns),
                kept_tables=tuple(plan.kept_tables),
                refused=tuple(refused),
                adopted=plan.adopted,
                changes=len(plan.statements),
                logins_missing=missing_logins(desired, observed),
            )

        return await self._transaction(desired.schema, work)

    async def _memberships(
        self, product: ProductRef, ports: Sequence[str], readers: Sequence[ReaderScope], grant: bool
    ) -> tuple[Plan, tuple[Grant, ...]]:
        desired = build_desired(product, [PortSpec(port) for port in ports], readers)

        async def work(connection: psycopg.AsyncConnection[Any]) -> tuple[Plan, tuple[Grant, ...]]:
            plan, grants = plan_memberships(desired, await self._observe(connection, desired),
                                            grant=grant)  # fmt: skip
            await self._apply(connection, plan)
            return plan, grants

        return await self._transaction(desired.schema, work)

    async def grant(
        self, product: ProductRef, ports: Sequence[str], readers: Sequence[ReaderScope]
    ) -> tuple[Grant, ...]:
        """Make ``readers`` members of the read roles of the ``ports`` their scopes cover (those
        that exist)."""
        _, grants = await self._memberships(product, ports, readers, grant=True)
        return grants

    async def revoke(
        self, product: ProductRef, ports: Sequence[str], readers: Sequence[ReaderScope]
    ) -> int:
        """Take ``readers`` out of the read roles of the ``ports`` their scopes cover; the number
        of grants revoked."""
        plan, _ = await self._memberships(product, ports, readers, grant=False)
        return len(plan.statements)

    async def observe(self, product: ProductRef, ports: Sequence[str]) -> ProductObservation:
        desired = build_desired(product, [PortSpec(port) for port in ports], [])
        async with self._connection() as connection:
            observed = await self._observe(connection, desired, sizes=True)
            tables = []
            for table in desired.tables:
                found = observed.table(table.name)
                rows = found.rows_estimate if found else None
                if found and (rows is None or rows < 0):
                    rows = await self._count(
                        connection, desired.schema, table.name, found.size_bytes
                    )
                tables.append(TableObservation(
                    table.port, table.name, found is not None, rows,
                    found.size_bytes if found else None))  # fmt: skip
        return ProductObservation(
            exists=observed.schema is not None,
            schema=desired.schema if observed.schema is not None else None,
            tables=tuple(tables),
            server_version=observed.server_version,
        )

    async def _count(
        self, connection: psycopg.AsyncConnection[Any], schema: str, table: str, size: int | None
    ) -> int | None:
        """An exact count where the planner has no estimate yet and the table is small."""
        if size is None or size > EXACT_COUNT_MAX_BYTES:
            return None
        self.counter.reads += 1
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        cursor = await connection.execute(query)
        row = await cursor.fetchone()
        return int(row[0]) if row else None

    async def delete(self, product: ProductRef) -> DeleteResult:
        """Retain: every grant revoked, logins disabled, schema and rows kept. Delete: the schema
        dropped with its tables, and the product's roles. Objects marked for another product are
        left alone."""
        desired = build_desired(product, [], [])

        async def work(connection: psycopg.AsyncConnection[Any]) -> DeleteResult:
            observed = await self._observe(connection, desired)
            if product.deletion_policy == DeletionPolicy.DELETE:
                plan = plan_delete(desired, observed)
            else:
                plan = plan_retain(desired, observed)
            await self._apply(connection, plan)
            return DeleteResult(
                policy=product.deletion_policy,
                schema_dropped=plan.schema_dropped,
                logins_disabled=tuple(plan.logins_disabled),
                changes=len(plan.statements),
            )

        return await self._transaction(desired.schema, work)

    async def ensure_reader_login(self, reader: ReaderRef, password: LoginPassword) -> LoginResult:
        """The login of a reader ServiceAccount: made with the password's verifier when missing,
        enabled, and given the password again when it changed."""
        if reader.kind != ReaderKind.SERVICE_ACCOUNT:
            raise ValueError("only ServiceAccount readers have logins")
        role = reader_role(reader)

        async def work(connection: psycopg.AsyncConnection[Any]) -> LoginResult:
            rows = await self._read(connection, observe.READER_QUERY, {"role": role.name})
            if not rows:
                verifier = scram.verifier(password.password)
                await self._execute(connection, statements_module.create_role(
                    role.name, verifier=verifier))  # fmt: skip
                await self._execute(
                    connection, statements_module.comment_on_role(role.name, role.marker)
                )
                return LoginResult(role.name, created=True, password_set=True)
            _, can_login, comment, _ = rows[0]
            if markers.decode(comment) is None:
                raise driver.OwnershipConflictError(
                    f"role {role.name} exists and was not made by the operator"
                )
            if password.changed or not can_login:
                await self._execute(connection, statements_module.alter_role_login(
                    role.name, verifier=scram.verifier(password.password)))  # fmt: skip
                return LoginResult(role.name, password_set=True)
            return LoginResult(role.name)

        return await self._transaction(role.name, work)

    async def drop_reader_if_unused(self, reader: ReaderRef) -> bool:
        """Drop a reader's role (a ServiceAccount's login, a Group's or User's role the operator
        made) when it is a member of no role; True when dropped or already gone."""
        role = reader_role(reader)

        async def work(connection: psycopg.AsyncConnection[Any]) -> bool:
            rows = await self._read(connection, observe.READER_QUERY, {"role": role.name})
            if not rows:
                return True
            _, _, comment, memberships = rows[0]
            if markers.decode(comment) is None or memberships:
                return False
            try:
                async with connection.transaction():
                    await self._execute(connection, statements_module.drop_role(role.name))
            except errors.DependentObjectsStillExist:
                return False  # granted something by hand elsewhere: kept
            return True

        return await self._transaction(role.name, work)

    async def list_managed_schemas(self) -> tuple[ManagedSchema, ...]:
        async with self._connection() as connection:
            rows = await self._read(connection, observe.MANAGED_SCHEMAS_QUERY,
                                    {"needle": observe.managed_schemas_needle()})  # fmt: skip
        found = (observe.parse_managed_schema(name, comment) for name, comment in rows)
        return tuple(schema for schema in found if schema is not None)

    async def verify(self) -> StoreVerification:
        """Connected, the server's version, CREATEROLE and CREATE on the database."""
        try:
            async with self._connection() as connection:
                rows = await self._read(connection, observe.VERIFY_QUERY, {})
        except driver.StoreError as error:
            return StoreVerification(error.reason, str(error))
        _, version, superuser, create_role, create_on_database = rows[0]
        missing = tuple(
            name
            for name, held in (
                ("CREATEROLE", create_role or superuser),
                (f"CREATE on database {self.settings.database}", create_on_database),
            )
            if not held
        )
        if missing:
            return StoreVerification(
                driver.REASON_PRIVILEGE_MISSING,
                f"role {self.settings.user} lacks "
                + " and ".join(missing)
                + f"; grant it (ALTER ROLE {self.settings.user} CREATEROLE; GRANT CREATE ON "
                f"DATABASE {self.settings.database} TO {self.settings.user})",
                server_version=version,
                missing_privileges=missing,
            )
        return StoreVerification(
            driver.REASON_CONNECTED,
            f"connected as {self.settings.user} to PostgreSQL {version}",
            server_version=version,
        )


def _compose(statement: Statement) -> sql.Composed:
    """psycopg's composition of a statement: psycopg quotes every name and literal."""
    parts: list[sql.Composable] = []
    for part in statement.parts:
        if isinstance(part, statements_module.Ident):
            parts.append(sql.Identifier(*part.parts))
        elif isinstance(part, statements_module.Literal):
            parts.append(sql.Literal(part.value))
        else:
            parts.append(sql.SQL(part.text))
    return sql.SQL(statement.template).format(*parts)


if TYPE_CHECKING:
    _conforms: type[driver.CredentialedStore] = PostgresStore
