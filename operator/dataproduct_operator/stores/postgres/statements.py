"""SQL statements as typed values, names and literals never formatted into the text (layer
``stores``, pure).

A :class:`Statement` is a template of this module's own constant text with ``{}`` placeholders and
the typed parts that fill them: :class:`Ident` (quoted as an identifier), :class:`Literal` (quoted
as a string) and :class:`Keyword` (SQL of this package's own vocabulary: types, privileges). The
I/O module turns the parts into psycopg's ``sql.Identifier`` / ``sql.Literal`` / ``sql.SQL``, so
psycopg quotes them; :meth:`Statement.render` quotes them the same way for tests and messages.
A name from a manifest can only ever reach PostgreSQL as an ``Ident`` or a ``Literal``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

# Privileges the catalog may show (aclexplode's privilege_type); only these become Keywords.
PRIVILEGES = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN",
     "USAGE", "CREATE", "EXECUTE", "TEMPORARY", "CONNECT", "SET", "ALTER SYSTEM"}
)  # fmt: skip
PUBLIC = "PUBLIC"


def quote_ident(name: str) -> str:
    """An identifier in double quotes, inner quotes doubled (as psycopg's ``sql.Identifier``)."""
    if not name or "\x00" in name:
        raise ValueError(f"not a valid SQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A string literal, inner quotes doubled (standard_conforming_strings is on: backslashes are
    plain characters)."""
    if "\x00" in value:
        raise ValueError("a SQL string cannot hold a NUL character")
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Ident:
    """An identifier, possibly qualified (``schema.table``)."""

    parts: tuple[str, ...]

    @classmethod
    def of(cls, *parts: str) -> Ident:
        return cls(parts)

    def render(self) -> str:
        return ".".join(quote_ident(part) for part in self.parts)


@dataclass(frozen=True)
class Literal:
    value: str = field(repr=False)

    def render(self) -> str:
        return quote_literal(self.value)


@dataclass(frozen=True)
class Keyword:
    """Trusted SQL: only this package's constants (SQL types, privileges, PUBLIC)."""

    text: str

    def render(self) -> str:
        return self.text


Part = Ident | Literal | Keyword


class Effect(Enum):
    """What a statement does, for ordering and counting."""

    CHANGE = "change"  # DDL or DCL that cannot fail on the data
    DATA_DEPENDENT = "data-dependent"  # may fail on existing rows: run in a savepoint


@dataclass(frozen=True)
class Statement:
    template: str
    parts: tuple[Part, ...] = ()
    effect: Effect = Effect.CHANGE
    # The column or table a data-dependent statement changes, "<port>.<column>", for refusals.
    subject: str = ""
    # Carries a password verifier: never rendered into a message or a log.
    sensitive: bool = False

    def render(self) -> str:
        return self.template.format(*(part.render() for part in self.parts))

    def __str__(self) -> str:
        return "<statement with a password verifier>" if self.sensitive else self.render()


def privileges(names: Iterable[str]) -> Keyword:
    chosen = sorted(set(names))
    unknown = [name for name in chosen if name not in PRIVILEGES]
    if unknown or not chosen:
        raise ValueError(f"not privileges: {unknown or chosen}")
    return Keyword(", ".join(chosen))


def grantee(role: str) -> Part:
    return Keyword(PUBLIC) if role == PUBLIC else Ident.of(role)


# --- roles ---------------------------------------------------------------------------------


def create_role(role: str, *, verifier: str | None = None) -> Statement:
    """A NOLOGIN role, or a login with the given SCRAM verifier."""
    if verifier is None:
        return Statement("CREATE ROLE {} NOLOGIN", (Ident.of(role),))
    return Statement(
        "CREATE ROLE {} LOGIN PASSWORD {}", (Ident.of(role), Literal(verifier)), sensitive=True
    )


def comment_on_role(role: str, marker: str) -> Statement:
    return Statement("COMMENT ON ROLE {} IS {}", (Ident.of(role), Literal(marker)))


def alter_role_login(role: str, *, verifier: str) -> Statement:
    return Statement(
        "ALTER ROLE {} LOGIN PASSWORD {}", (Ident.of(role), Literal(verifier)), sensitive=True
    )


def alter_role_nologin(role: str) -> Statement:
    return Statement("ALTER ROLE {} NOLOGIN", (Ident.of(role),))


def alter_role_no_powers(role: str) -> Statement:
    return Statement("ALTER ROLE {} NOCREATEROLE NOCREATEDB", (Ident.of(role),))


def grant_role(role: str, member: str) -> Statement:
    return Statement("GRANT {} TO {}", (Ident.of(role), Ident.of(member)))


def grant_role_to_current_user(role: str, *, server_version_num: int) -> Statement:
    # From PostgreSQL 16 a membership has INHERIT and SET options; the operator needs both to
    # act as the owner (create in its schema, ALTER ... OWNER TO it).
    if server_version_num >= 160000:
        return Statement("GRANT {} TO CURRENT_USER WITH INHERIT TRUE, SET TRUE", (Ident.of(role),))
    return Statement("GRANT {} TO CURRENT_USER", (Ident.of(role),))


def revoke_role(role: str, member: str) -> Statement:
    return Statement("REVOKE {} FROM {} CASCADE", (Ident.of(role), Ident.of(member)))


def drop_role(role: str) -> Statement:
    return Statement("DROP ROLE IF EXISTS {}", (Ident.of(role),))


# --- schema and tables ------------------------------------------------------------------------


def create_schema(schema: str, owner: str) -> Statement:
    return Statement("CREATE SCHEMA {} AUTHORIZATION {}", (Ident.of(schema), Ident.of(owner)))


def comment_on_schema(schema: str, marker: str) -> Statement:
    return Statement("COMMENT ON SCHEMA {} IS {}", (Ident.of(schema), Literal(marker)))


def alter_schema_owner(schema: str, owner: str) -> Statement:
    return Statement("ALTER SCHEMA {} OWNER TO {}", (Ident.of(schema), Ident.of(owner)))


def drop_schema_cascade(schema: str) -> Statement:
    return Statement("DROP SCHEMA IF EXISTS {} CASCADE", (Ident.of(schema),))


@dataclass(frozen=True)
class ColumnDefinition:
    name: str
    sql_type: str
    not_null: bool
    unique_constraint: str | None  # the constraint's name when the column is unique


def create_table(schema: str, table: str, columns: Iterable[ColumnDefinition]) -> Statement:
    pieces: list[str] = []
    parts: list[Part] = [Ident.of(schema, table)]
    for column in columns:
        pieces.append("{} {}" + (" NOT NULL" if column.not_null else ""))
        parts += [Ident.of(column.name), Keyword(column.sql_type)]
    for column in columns:
        if column.unique_constraint is not None:
            pieces.append("CONSTRAINT {} UNIQUE ({})")
            parts += [Ident.of(column.unique_constraint), Ident.of(column.name)]
    return Statement("CREATE TABLE {} (" + ", ".join(pieces) + ")", tuple(parts))


def alter_table_owner(schema: str, table: str, owner: str) -> Statement:
    return Statement("ALTER TABLE {} OWNER TO {}", (Ident.of(schema, table), Ident.of(owner)))


def drop_table(schema: str, table: str) -> Statement:
    return Statement("DROP TABLE IF EXISTS {}", (Ident.of(schema, table),))


def add_column(schema: str, table: str, column: str, sql_type: str) -> Statement:
    return Statement(
        "ALTER TABLE {} ADD COLUMN {} {}",
        (Ident.of(schema, table), Ident.of(column), Keyword(sql_type)),
    )


def drop_column(schema: str, table: str, column: str) -> Statement:
    return Statement("ALTER TABLE {} DROP COLUMN {}", (Ident.of(schema, table), Ident.of(column)))


def alter_column_type(
    schema: str, table: str, column: str, sql_type: str, using: str, *, subject: str
) -> Statement:
    """``using`` is a cast of :mod:`.types` with ``{}`` for the column."""
    using_parts = using.count("{}")
    return Statement(
        "ALTER TABLE {} ALTER COLUMN {} TYPE {} USING " + using,
        (Ident.of(schema, table), Ident.of(column), Keyword(sql_type))
        + (Ident.of(column),) * using_parts,
        effect=Effect.DATA_DEPENDENT,
        subject=subject,
    )


def set_not_null(schema: str, table: str, column: str, *, subject: str) -> Statement:
    return Statement(
        "ALTER TABLE {} ALTER COLUMN {} SET NOT NULL",
        (Ident.of(schema, table), Ident.of(column)),
        effect=Effect.DATA_DEPENDENT,
        subject=subject,
    )


def drop_not_null(schema: str, table: str, column: str) -> Statement:
    return Statement(
        "ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL", (Ident.of(schema, table), Ident.of(column))
    )


def add_unique(schema: str, table: str, column: str, constraint: str, *, subject: str) -> Statement:
    return Statement(
        "ALTER TABLE {} ADD CONSTRAINT {} UNIQUE ({})",
        (Ident.of(schema, table), Ident.of(constraint), Ident.of(column)),
        effect=Effect.DATA_DEPENDENT,
        subject=subject,
    )


def drop_constraint(schema: str, table: str, constraint: str) -> Statement:
    return Statement(
        "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
        (Ident.of(schema, table), Ident.of(constraint)),
    )


# --- privileges -------------------------------------------------------------------------------

_OBJECT_CLAUSE = {"schema": "ON SCHEMA {}", "table": "ON TABLE {}"}


def grant_on(kind: str, name: Ident, names: Iterable[str], role: str) -> Statement:
    return Statement(
        "GRANT {} " + _OBJECT_CLAUSE[kind] + " TO {}", (privileges(names), name, grantee(role))
    )


def revoke_on(kind: str, name: Ident, names: Iterable[str], role: str) -> Statement:
    # CASCADE also takes back what the grantee granted on with a grant option.
    return Statement(
        "REVOKE {} " + _OBJECT_CLAUSE[kind] + " FROM {} CASCADE",
        (privileges(names), name, grantee(role)),
    )


def revoke_on_column(table: Ident, column: str, names: Iterable[str], role: str) -> Statement:
    return Statement(
        "REVOKE {} ({}) ON TABLE {} FROM {} CASCADE",
        (privileges(names), Ident.of(column), table, grantee(role)),
    )


# pg_default_acl.defaclobjtype → the words ALTER DEFAULT PRIVILEGES uses.
DEFAULT_ACL_OBJECTS = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES"}


def alter_default_privileges(
    owner: str, schema: str, objtype: str, names: Iterable[str], role: str, *, grant: bool
) -> Statement:
    action = "GRANT {} ON " if grant else "REVOKE {} ON "
    direction = " TO {}" if grant else " FROM {} CASCADE"
    return Statement(
        "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} "
        + action
        + DEFAULT_ACL_OBJECTS[objtype]
        + direction,
        (Ident.of(owner), Ident.of(schema), privileges(names), grantee(role)),
    )
