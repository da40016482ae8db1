"""A product's desired and observed state in a PostgreSQL database (layer ``stores``, pure).

:func:`build_desired` turns the driver's inputs into names, SQL types and markers (refusing what
cannot be built: unknown types, column names past 63 bytes, a column twice);
:class:`ObservedProduct` is what the catalog holds, parsed by :mod:`.observe`. :mod:`.plan`
diffs the two.

What a product owns: a schema owned by an owner role (NOLOGIN) the admin is a member of; a writer
login with USAGE on the schema and SELECT, INSERT, UPDATE, DELETE, TRUNCATE on each port's table
(and, by default privileges, on tables the owner role creates later); per port a table and a read
role (NOLOGIN) with USAGE on the schema and SELECT on that table, whose members are the roles of
the readers whose scope covers that port (a reader of the spec: every port; an access request:
the ports it names). Readers get no default privileges: a table created later belongs to no port
yet, and one port's readers must not read another port's table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dataproduct_operator.api.dataproduct import ReaderKind
from dataproduct_operator.stores.driver import (
    PortSpec,
    ProductRef,
    ReaderRef,
    ReaderScope,
    RefusedChange,
    merge_scopes,
)
from dataproduct_operator.stores.postgres import markers, naming
from dataproduct_operator.stores.postgres.types import UnknownTypeError, sql_type

WRITER_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"})
READER_PRIVILEGES = frozenset({"SELECT"})
SCHEMA_PRIVILEGES = frozenset({"USAGE"})
TABLES = "r"  # pg_default_acl.defaclobjtype of tables


@dataclass(frozen=True)
class DesiredColumn:
    name: str
    sql_type: str
    not_null: bool
    unique: bool


@dataclass(frozen=True)
class DesiredRole:
    name: str
    marker: str
    login: bool = False
    # Group and User roles may be made by a DBA beforehand: used as they are, never required to
    # carry the marker, never altered.
    shared: bool = False


@dataclass(frozen=True)
class DesiredTable:
    port: str
    name: str
    read_role: str
    columns: tuple[DesiredColumn, ...]
    # A column of the spec could not be built: the table is neither created nor changed.
    columns_refused: bool = False
    # The readers whose scope covers this port: the members of its read role.
    readers: tuple[tuple[ReaderRef, DesiredRole], ...] = ()

    @property
    def reader_roles(self) -> frozenset[str]:
        return frozenset(role.name for _, role in self.readers)

    def column(self, name: str) -> DesiredColumn | None:
        return next((column for column in self.columns if column.name == name), None)


@dataclass(frozen=True)
class DesiredProduct:
    product: ProductRef
    schema: str
    schema_marker: str
    owner: DesiredRole
    writer: DesiredRole
    tables: tuple[DesiredTable, ...]
    # Every reader granted at least one of the ports, once (its role is made, its login checked).
    readers: tuple[tuple[ReaderRef, DesiredRole], ...]
    refused: tuple[RefusedChange, ...] = ()

    def table(self, name: str) -> DesiredTable | None:
        return next((table for table in self.tables if table.name == name), None)


def reader_role(reader: ReaderRef) -> DesiredRole:
    if reader.kind == ReaderKind.SERVICE_ACCOUNT:
        namespace = reader.namespace or ""
        return DesiredRole(
            naming.service_account_role(namespace, reader.name),
            markers.reader_marker(markers.SERVICE_ACCOUNT, reader.name, namespace),
            login=True,
        )
    if reader.kind == ReaderKind.GROUP:
        return DesiredRole(
            naming.group_role(reader.name),
            markers.reader_marker(markers.GROUP, reader.name),
            shared=True,
        )
    return DesiredRole(
        naming.user_role(reader.name), markers.reader_marker(markers.USER, reader.name), shared=True
    )


def _columns(port: PortSpec) -> tuple[tuple[DesiredColumn, ...], list[RefusedChange]]:
    columns: list[DesiredColumn] = []
    refused: list[RefusedChange] = []
    seen: set[str] = set()
    for column in port.columns:
        if len(column.name.encode()) > naming.MAX_IDENTIFIER_BYTES or "\x00" in column.name:
            refused.append(RefusedChange(port.name, column.name, (
                f"column name {column.name!r} is longer than PostgreSQL's "
                f"{naming.MAX_IDENTIFIER_BYTES} bytes; shorten it")))  # fmt: skip
            continue
        if column.name in seen:
            message = f"column {column.name!r} appears twice; remove one"
            refused.append(RefusedChange(port.name, column.name, message))
            continue
        seen.add(column.name)
        try:
            columns.append(
                DesiredColumn(column.name, sql_type(column.type), column.required, column.unique)
            )
        except UnknownTypeError as refusal:
            refused.append(RefusedChange(port.name, column.name, str(refusal)))
    return tuple(columns), refused


def build_desired(
    product: ProductRef, ports: Sequence[PortSpec], readers: Sequence[ReaderScope]
) -> DesiredProduct:
    """The product's desired state; each port's read role has as members the readers whose
    scope covers the port (a reader twice: the union of its scopes)."""
    schema = naming.schema_name(product.namespace, product.name)
    scopes = [
        (scope, reader_role(scope.reader))
        for scope in merge_scopes(readers)
        if scope.covers_any(port.name for port in ports)
    ]
    tables: list[DesiredTable] = []
    refused: list[RefusedChange] = []
    for port in ports:
        columns, port_refused = _columns(port)
        table = naming.table_name(port.name)
        tables.append(
            DesiredTable(
                port.name,
                table,
                naming.read_role(schema, table),
                columns,
                columns_refused=bool(port_refused),
                readers=tuple((s.reader, role) for s, role in scopes if s.covers(port.name)),
            )
        )
        refused += port_refused
    return DesiredProduct(
        product=product,
        schema=schema,
        schema_marker=markers.schema_marker(
            product.namespace, product.name, product.uid, product.deletion_policy.value
        ),
        owner=DesiredRole(
            naming.owner_role(schema), markers.product_role_marker(markers.OWNER, schema)
        ),
        writer=DesiredRole(
            naming.writer_role(schema),
            markers.product_role_marker(markers.WRITER, schema),
            login=True,
        ),
        tables=tuple(tables),
        readers=tuple((scope.reader, role) for scope, role in scopes),
        refused=tuple(refused),
    )


def read_role_marker(schema: str, table: DesiredTable) -> str:
    return markers.product_role_marker(markers.READ, schema, table.port)


# --- observed ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AclEntry:
    grantee: str  # a role name, or PUBLIC
    privilege: str
    grantable: bool = False


@dataclass(frozen=True)
class ObservedColumn:
    name: str
    sql_type: str
    not_null: bool
    acl: tuple[AclEntry, ...] = ()  # column privileges: the operator grants none


@dataclass(frozen=True)
class ObservedUnique:
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class ObservedTable:
    name: str
    owner: str
    acl: tuple[AclEntry, ...] = ()
    columns: tuple[ObservedColumn, ...] = ()
    uniques: tuple[ObservedUnique, ...] = ()
    rows_estimate: int | None = None
    size_bytes: int | None = None

    def column(self, name: str) -> ObservedColumn | None:
        return next((column for column in self.columns if column.name == name), None)

    def unique_constraints_of(self, column: str) -> tuple[str, ...]:
        return tuple(u.name for u in self.uniques if u.columns == (column,))


@dataclass(frozen=True)
class ObservedDefaultAcl:
    role: str
    objtype: str
    acl: tuple[AclEntry, ...] = ()


@dataclass(frozen=True)
class ObservedRole:
    name: str
    can_login: bool = False
    create_role: bool = False
    create_db: bool = False
    comment: str | None = None
    members: frozenset[str] = frozenset()
    usable: bool = False  # the admin holds its privileges (a member with INHERIT)


@dataclass(frozen=True)
class ObservedSchema:
    name: str
    owner: str
    comment: str | None = None
    acl: tuple[AclEntry, ...] = ()


@dataclass(frozen=True)
class ObservedProduct:
    current_user: str
    server_version_num: int
    server_version: str = ""
    schema: ObservedSchema | None = None
    tables: tuple[ObservedTable, ...] = ()
    default_acls: tuple[ObservedDefaultAcl, ...] = ()
    roles: tuple[ObservedRole, ...] = ()

    def role(self, name: str) -> ObservedRole | None:
        return next((role for role in self.roles if role.name == name), None)

    def table(self, name: str) -> ObservedTable | None:
        return next((table for table in self.tables if table.name == name), None)
