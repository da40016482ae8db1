"""The store driver interface the reconcile layer calls (layer ``stores``, pure).

A driver places a product's output ports in one store and keeps the store's side converged:
``ensure_ports`` (the full state: objects, columns, the ACL the driver owns, reader grants),
``grant`` / ``revoke`` (reader grants only), ``observe``, ``delete`` (per the product's
deletionPolicy). Readers come as :class:`ReaderScope` values: a reader and the ports it may
read (every port of the product, or some of them). Inputs and results are frozen dataclasses;
failures the owner or the platform team can act on are :class:`StoreError` subclasses whose
``reason`` is the condition reason to report and whose message never holds a credential.
Refused schema changes are not errors: they come back in :attr:`EnsureResult.refused` beside
everything that was applied.

:class:`StoreDriver` is what every kind of store offers (PostgreSQL, volumes); a store with
logins of its own (:class:`CredentialedStore`) also manages reader logins, lists what it manages
and verifies its admin credentials.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dataproduct_operator.api.conditions import Reason
from dataproduct_operator.api.dataproduct import DeletionPolicy, ReaderKind

# The condition reasons of the failures below (the one vocabulary: api/conditions.py).
REASON_STORE_UNAVAILABLE = Reason.STORE_UNAVAILABLE
REASON_AUTHENTICATION_FAILED = Reason.AUTHENTICATION_FAILED
REASON_PRIVILEGE_MISSING = Reason.PRIVILEGE_MISSING
REASON_SCHEMA_CHANGE_REFUSED = Reason.SCHEMA_CHANGE_REFUSED
# A schema or role with the product's name that the operator did not make for it.
REASON_OWNERSHIP_CONFLICT = Reason.NAME_CONFLICT
REASON_CONNECTED = Reason.CONNECTED


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductRef:
    namespace: str
    name: str
    uid: str
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str  # logical type, as in the port's schema[]
    required: bool = False
    unique: bool = False


@dataclass(frozen=True)
class PortSpec:
    name: str
    columns: tuple[ColumnSpec, ...] = ()


@dataclass(frozen=True)
class ReaderRef:
    kind: ReaderKind
    name: str
    namespace: str | None = None  # ServiceAccounts only


@dataclass(frozen=True)
class ReaderScope:
    """A reader and the ports it may read: ``None`` is every port of the product (a reader of
    the spec, or a request naming no port), a set names some of them (an access request for
    some ports); an empty set covers no port. A port the product does not have grants
    nothing."""

    reader: ReaderRef
    ports: frozenset[str] | None = None

    def covers(self, port: str) -> bool:
        return self.ports is None or port in self.ports

    def covers_any(self, ports: Iterable[str]) -> bool:
        return any(self.covers(port) for port in ports)


def merge_scopes(scopes: Iterable[ReaderScope]) -> tuple[ReaderScope, ...]:
    """One scope per reader, in the order readers first come: the union of its scopes (a reader
    of the spec who also asked for one port reads every port: ``None`` absorbs the rest)."""
    merged: dict[ReaderRef, frozenset[str] | None] = {}
    for scope in scopes:
        before = merged.get(scope.reader, frozenset())
        merged[scope.reader] = (
            None if before is None or scope.ports is None else before | scope.ports
        )
    return tuple(ReaderScope(reader, ports) for reader, ports in merged.items())


@dataclass(frozen=True)
class LoginPassword:
    """The password a login must have (from its Secret); ``changed``: set it even when the login
    exists (a new or rotated Secret). The password itself never leaves the driver: PostgreSQL
    receives its SCRAM verifier."""

    password: str = field(repr=False)
    changed: bool = False


@dataclass(frozen=True)
class ConfirmedDeletions:
    """What ``datamesh.dev/confirm-data-deletion`` confirms: items separated by commas, spaces
    around them ignored; ``<port>`` confirms deleting a removed port's data (its table),
    ``<port>.<column>`` dropping a column removed from the port's schema (port names have no
    dot, so the first dot splits)."""

    ports: frozenset[str] = frozenset()
    columns: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def parse(cls, annotation: str | None) -> ConfirmedDeletions:
        ports: set[str] = set()
        columns: set[tuple[str, str]] = set()
        for raw in (annotation or "").split(","):
            item = raw.strip()
            if not item:
                continue
            port, dot, column = item.partition(".")
            if dot:
                columns.add((port, column))
            else:
                ports.add(port)
        return cls(frozenset(ports), frozenset(columns))


NOTHING_CONFIRMED = ConfirmedDeletions()


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    store: str
    host: str
    port: int
    database: str
    schema: str
    table: str


@dataclass(frozen=True)
class Grant:
    """A reader granted a port, and the store role that carries the grant."""

    reader: ReaderRef
    role: str


@dataclass(frozen=True)
class PortPlacement:
    port: str
    endpoint: Endpoint | None = None  # in a store
    claim_name: str | None = None  # on a volume
    read_role: str | None = None
    grants: tuple[Grant, ...] = ()


@dataclass(frozen=True)
class KeptColumn:
    """A column removed from the spec and kept (not confirmed for deletion)."""

    port: str
    column: str
    sql_type: str


@dataclass(frozen=True)
class RefusedChange:
    """A change not applied; ``message`` says why and what to do."""

    port: str
    column: str | None
    message: str


@dataclass(frozen=True)
class EnsureResult:
    ports: tuple[PortPlacement, ...]
    schema: str | None = None
    kept_columns: tuple[KeptColumn, ...] = ()
    kept_tables: tuple[str, ...] = ()  # tables of removed ports, kept with their rows
    refused: tuple[RefusedChange, ...] = ()
    adopted: bool = False  # the schema of an earlier product of the same name was taken over
    changes: int = 0  # statements that changed the store (0 when it was converged)
    # ServiceAccount readers whose login was not there or could not log in (granted as a role
    # without login meanwhile; ensure_reader_login gives it its login)
    logins_missing: tuple[ReaderRef, ...] = ()


@dataclass(frozen=True)
class TableObservation:
    port: str
    table: str
    exists: bool
    rows: int | None = None  # an estimate (the planner's statistics) or an exact count
    size_bytes: int | None = None


@dataclass(frozen=True)
class ProductObservation:
    exists: bool
    schema: str | None
    tables: tuple[TableObservation, ...] = ()
    server_version: str | None = None


@dataclass(frozen=True)
class DeleteResult:
    policy: DeletionPolicy
    schema_dropped: bool = False
    logins_disabled: tuple[str, ...] = ()
    changes: int = 0


@dataclass(frozen=True)
class LoginResult:
    role: str
    created: bool = False
    password_set: bool = False


@dataclass(frozen=True)
class ManagedSchema:
    """A schema the driver manages, from its ownership marker."""

    schema: str
    namespace: str
    product: str
    uid: str
    deletion_policy: DeletionPolicy


@dataclass(frozen=True)
class StoreVerification:
    """The admin credentials checked: ``reason`` is Connected when all is well, else the reason
    to report with ``message`` (naming the missing privileges)."""

    reason: str  # a Reason value
    message: str = ""
    server_version: str | None = None
    missing_privileges: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return self.reason == REASON_CONNECTED


# --- errors -----------------------------------------------------------------------------------


class StoreError(Exception):
    """A failure to report with :attr:`reason` and retry with backoff."""

    reason: str = REASON_STORE_UNAVAILABLE


class StoreUnavailableError(StoreError):
    """Refused connection, timeout, server shutting down; the message is the server's."""


class AuthenticationFailedError(StoreError):
    reason = REASON_AUTHENTICATION_FAILED


class PrivilegeMissingError(StoreError):
    reason = REASON_PRIVILEGE_MISSING


class OwnershipConflictError(StoreError):
    """An object with the product's name that the operator did not make for this product."""

    reason = REASON_OWNERSHIP_CONFLICT


# --- the interface ----------------------------------------------------------------------------


class StoreDriver(Protocol):
    """What every kind of store offers."""

    async def ensure_ports(
        self,
        product: ProductRef,
        ports: Sequence[PortSpec],
        readers: Sequence[ReaderScope],
        *,
        writer_password: LoginPassword,
        confirmed: ConfirmedDeletions = NOTHING_CONFIRMED,
    ) -> EnsureResult: ...

    async def grant(
        self, product: ProductRef, ports: Sequence[str], readers: Sequence[ReaderScope]
    ) -> tuple[Grant, ...]: ...

    async def revoke(
        self, product: ProductRef, ports: Sequence[str], readers: Sequence[ReaderScope]
    ) -> int: ...

    async def observe(self, product: ProductRef, ports: Sequence[str]) -> ProductObservation: ...

    async def delete(self, product: ProductRef) -> DeleteResult: ...


class CredentialedStore(StoreDriver, Protocol):
    """A store with logins of its own (PostgreSQL)."""

    async def ensure_reader_login(
        self, reader: ReaderRef, password: LoginPassword
    ) -> LoginResult: ...

    async def drop_reader_if_unused(self, reader: ReaderRef) -> bool: ...

    async def list_managed_schemas(self) -> tuple[ManagedSchema, ...]: ...

    async def verify(self) -> StoreVerification: ...

    async def close(self) -> None: ...
