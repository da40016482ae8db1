"""How values cross between PostgreSQL and DuckDB (layer ``runner``, pure).

Sources arrive through DuckDB's PostgreSQL reader (binary, for the types it takes as they are;
the others as their text forms) and are staged with the column types of the source; staged
rows leave as DuckDB's CSV for ``COPY ... FROM STDIN``, where both sides agree that an unquoted
empty field is NULL and ``""`` is the empty string. A port's logical type maps to its
PostgreSQL type in ``stores.postgres.types``; this module maps that SQL type to DuckDB's.
"""

from __future__ import annotations

from dataproduct_operator.stores.postgres import types as pg
from dataproduct_operator.stores.postgres.statements import quote_ident, quote_literal

# numeric has no bound in PostgreSQL; DuckDB's widest decimal keeps 10 digits after the point.
WIDE_DECIMAL = "DECIMAL(38, 10)"

_PORT_TYPES: dict[str, str] = {
    pg.TEXT: "VARCHAR",
    pg.BIGINT: "BIGINT",
    pg.DOUBLE: "DOUBLE",
    pg.NUMERIC: WIDE_DECIMAL,
    pg.BOOLEAN: "BOOLEAN",
    pg.DATE: "DATE",
    pg.TIMESTAMPTZ: "TIMESTAMPTZ",
    pg.TIME: "TIME",
    pg.BYTEA: "BLOB",
    pg.JSONB: "JSON",
    pg.UUID: "UUID",
}

# PostgreSQL's type OIDs (pg_type.oid, fixed for built-in types) that DuckDB's PostgreSQL reader
# takes as they are, in binary: boolean, the integers, the floats, date, time, timestamp,
# timestamptz, uuid, bytea, text, varchar.
_NATIVE_SOURCE_TYPES = frozenset({16, 20, 21, 23, 700, 701, 1082, 1083, 1114, 1184, 2950, 17, 25,
                                  1043})  # fmt: skip
NUMERIC_OID = 1700
OID_OID = 26
JSON_OIDS = frozenset({114, 3802})  # json, jsonb


def duckdb_type(sql_type: str) -> str:
    """The DuckDB type staging a port column of PostgreSQL type SQL_TYPE."""
    return _PORT_TYPES[sql_type]


def read_columns(fields: list[tuple[str, int]]) -> str:
    """The select list the server runs for a source of FIELDS (name, type OID): numerics as
    DuckDB's widest decimal (rounded on the server to its 10 digits after the point, where
    DuckDB would round them too), an oid as a bigint, and every type DuckDB's reader does not
    take as it is in its text form (read in the read session: ISO dates in UTC, exact floats)."""
    columns = []
    for name, oid in fields:
        column = quote_ident(name)
        if oid in _NATIVE_SOURCE_TYPES:
            columns.append(column)
        elif oid == NUMERIC_OID:
            columns.append(f"{_wide_numeric(column, name)} AS {column}")
        elif oid == OID_OID:
            columns.append(f"CAST({column} AS bigint) AS {column}")
        else:
            columns.append(f"CAST({column} AS text) AS {column}")
    return ", ".join(columns)


def _wide_numeric(column: str, name: str) -> str:
    """COLUMN as numeric(38, 10); NaN, an infinity or a value of 28 digits or more before the
    point (which DuckDB's decimal cannot hold: NaN compares above every number) stop the read
    with a message naming the column, not a silent NULL."""
    refusal = quote_literal(
        f"column {name}: NaN, an infinity or 28 digits or more before the point, "
        "which DuckDB's widest decimal cannot hold"
    )
    return (
        # The value in the text: a constant would be cast, and refused, when the query is planned.
        f"CASE WHEN abs({column}) >= 1e28 THEN CAST({refusal} || ': ' || {column} AS numeric) "
        f"ELSE CAST({column} AS numeric(38, 10)) END"
    )


def postgres_reader(database: str, remote: str, fields: list[tuple[str, int]]) -> str:
    """A SELECT reading REMOTE (a query with :func:`read_columns`' select list) from the attached
    DATABASE, its columns typed as the source's: JSON back from its text."""
    selected = ", ".join(
        f"CAST({quote_ident(name)} AS JSON) AS {quote_ident(name)}"
        if oid in JSON_OIDS
        else quote_ident(name)
        for name, oid in fields
    )
    return (
        f"SELECT {selected} FROM postgres_query({quote_literal(database)}, {quote_literal(remote)})"
    )


def csv_export(column: str, sql_type: str) -> str:
    """The expression writing staged COLUMN as PostgreSQL's CSV reads SQL_TYPE back."""
    if sql_type == pg.BYTEA:
        return f"'\\x' || hex({column}) AS {column}"
    return column
