"""How values cross between PostgreSQL and DuckDB as CSV (layer ``runner``, pure).

Sources arrive as PostgreSQL's CSV (``COPY ... TO STDOUT``, ISO dates in UTC, exact floats, hex
bytea) and are read by DuckDB with the column types their type OIDs map to; staged rows leave as
DuckDB's CSV for ``COPY ... FROM STDIN``. Both sides agree that an unquoted empty field is NULL
and ``""`` is the empty string. A port's logical type maps to its PostgreSQL type in
``stores.postgres.types``; this module maps that SQL type to DuckDB's.
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

# PostgreSQL's type OIDs (pg_type.oid, fixed for built-in types) to DuckDB types; any other type
# arrives as its text form.
_SOURCE_TYPES: dict[int, str] = {
    16: "BOOLEAN",
    20: "BIGINT",
    21: "SMALLINT",
    23: "INTEGER",
    26: "BIGINT",  # oid
    700: "FLOAT",
    701: "DOUBLE",
    1700: "VARCHAR",  # read as text, then converted by _NUMERIC_FROM_TEXT
    1082: "DATE",
    1083: "TIME",
    1114: "TIMESTAMP",
    1184: "TIMESTAMPTZ",
    2950: "UUID",
    114: "JSON",
    3802: "JSON",
}
BYTEA_OID = 17
NUMERIC_OID = 1700
# PostgreSQL prints a numeric with its full scale (1/3.0 has 20 digits after the point); DuckDB
# parses digits beyond the decimal's scale ten times slower than the rest, so the trailing zeros
# go first: on the server with trim_scale (PostgreSQL 13 and later), else in DuckDB, where a
# text without a point is an integer and stays as it is.
TRIM_SCALE_SINCE = 130000
_NUMERIC_FROM_TEXT = (
    "CAST(CASE WHEN contains({0}, '.') THEN rtrim(rtrim({0}, '0'), '.') ELSE {0} END "
    f"AS {WIDE_DECIMAL})"
)
_NUMERIC_TRIMMED = f"CAST({{0}} AS {WIDE_DECIMAL})"


def duckdb_type(sql_type: str) -> str:
    """The DuckDB type staging a port column of PostgreSQL type SQL_TYPE."""
    return _PORT_TYPES[sql_type]


def copy_columns(fields: list[tuple[str, int]], server_version: int) -> str:
    """The select list of the COPY reading FIELDS (name, type OID) from a server of
    SERVER_VERSION (``server_version_num``): numerics without trailing zeros where it can."""
    trim = server_version >= TRIM_SCALE_SINCE
    return ", ".join(
        f"trim_scale({quote_ident(name)}) AS {quote_ident(name)}"
        if trim and oid == NUMERIC_OID
        else quote_ident(name)
        for name, oid in fields
    )


def csv_reader(path: str, fields: list[tuple[str, int]], server_version: int) -> str:
    """A SELECT reading PostgreSQL's CSV at PATH with FIELDS (name, type OID) as typed columns,
    as :func:`copy_columns` had a server of SERVER_VERSION write them."""
    columns = ", ".join(
        f"{quote_literal(name)}: {quote_literal(_SOURCE_TYPES.get(oid, 'VARCHAR'))}"
        for name, oid in fields
    )
    numeric = _NUMERIC_TRIMMED if server_version >= TRIM_SCALE_SINCE else _NUMERIC_FROM_TEXT
    selected = ", ".join(f"{_typed(quote_ident(name), oid, numeric)} AS {quote_ident(name)}"
                         for name, oid in fields)  # fmt: skip
    return (
        f"SELECT {selected} FROM read_csv({quote_literal(path)}, header = false, "
        f"auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
        f"allow_quoted_nulls = false, columns = {{{columns}}})"
    )


def _typed(column: str, oid: int, numeric: str) -> str:
    if oid == BYTEA_OID:
        return f"from_hex(substr({column}, 3))"  # bytea's hex form: \\x, two digits a byte
    if oid == NUMERIC_OID:
        return numeric.format(column)
    return column


def csv_export(column: str, sql_type: str) -> str:
    """The expression writing staged COLUMN as PostgreSQL's CSV reads SQL_TYPE back."""
    if sql_type == pg.BYTEA:
        return f"'\\x' || hex({column}) AS {column}"
    return column
