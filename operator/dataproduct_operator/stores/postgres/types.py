"""Logical column types to PostgreSQL types, and which type changes are applied (layer
``stores``, pure).

A port's ``schema[].type`` is a logical type; :data:`SQL_TYPES` maps it to the SQL type named as
PostgreSQL's ``format_type()`` prints it, so an observed column compares equal to the spec's with
no parsing. A changed type is applied with ``ALTER COLUMN ... TYPE ... USING`` only when every
value the column may hold converts without error and without loss (:func:`cast_for`); any other
change is refused with a message saying why and what to do. The table is conservative on purpose:
a refused change costs the owner one manual step, a wrong automatic one costs data.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT = "text"
BIGINT = "bigint"
DOUBLE = "double precision"
NUMERIC = "numeric"
BOOLEAN = "boolean"
DATE = "date"
TIMESTAMPTZ = "timestamp with time zone"
TIME = "time without time zone"
BYTEA = "bytea"
JSONB = "jsonb"
UUID = "uuid"

SQL_TYPES: dict[str, str] = {
    "string": TEXT,
    "integer": BIGINT,
    "int": BIGINT,
    "long": BIGINT,
    "number": DOUBLE,
    "double": DOUBLE,
    "float": DOUBLE,
    "decimal": NUMERIC,
    "boolean": BOOLEAN,
    "bool": BOOLEAN,
    "date": DATE,
    "timestamp": TIMESTAMPTZ,
    "time": TIME,
    "bytes": BYTEA,
    "binary": BYTEA,
    "object": JSONB,
    "json": JSONB,
    "array": JSONB,
    "uuid": UUID,
}

# (from, to) → the USING expression, "{}" standing for the column. Widening conversions only:
# every value of the old type has exactly one value of the new one. Types a column can have only
# when changed by hand (integer, smallint, real) widen too, so such a column can come back.
_WIDENING: dict[tuple[str, str], str] = {
    ("smallint", BIGINT): "{}::bigint",
    ("integer", BIGINT): "{}::bigint",
    ("smallint", NUMERIC): "{}::numeric",
    ("integer", NUMERIC): "{}::numeric",
    (BIGINT, NUMERIC): "{}::numeric",
    ("real", DOUBLE): "{}::double precision",
    # A date is a day; it becomes that day's midnight in UTC, whatever the session's TimeZone.
    (DATE, TIMESTAMPTZ): "({}::timestamp AT TIME ZONE 'UTC')",
    ("timestamp without time zone", TIMESTAMPTZ): "({} AT TIME ZONE 'UTC')",
    ("json", JSONB): "{}::jsonb",
}


class UnknownTypeError(ValueError):
    """A logical type outside :data:`SQL_TYPES`; the message lists the known ones."""


def sql_type(logical: str) -> str:
    """The SQL type of a logical type (case and surrounding spaces ignored)."""
    key = logical.strip().lower()
    if key not in SQL_TYPES:
        raise UnknownTypeError(
            f"type {logical!r} is not a known logical type; use one of: "
            + ", ".join(sorted(SQL_TYPES))
        )
    return SQL_TYPES[key]


@dataclass(frozen=True)
class Cast:
    """How a column changes type: ``using`` is None when the change is refused, and
    ``reason`` then says why and what to do."""

    using: str | None
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.using is not None


def cast_for(current: str, wanted: str) -> Cast:
    """Whether a column of type ``current`` (as ``format_type`` prints it) may become ``wanted``."""
    if wanted == TEXT:
        return Cast("{}::text")  # every type has a text form
    if (current, wanted) in _WIDENING:
        return Cast(_WIDENING[(current, wanted)])
    return Cast(
        None,
        f"PostgreSQL cannot change {current} to {wanted} for every value a column may hold "
        "(values could fail to convert or lose precision), so the operator does not apply it; "
        "add a new column with the new type and fill it, or convert the column by hand "
        "(ALTER TABLE ... ALTER COLUMN ... TYPE ... USING ...) and the operator keeps it",
    )
