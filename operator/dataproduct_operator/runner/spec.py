"""The run spec of the built-in SQL runner, parsed and checked (layer ``runner``, pure).

The operator builds it and puts it in the pod's ``DPO_RUN_SPEC`` environment variable as JSON;
a pod's environment can be edited by hand, so every field is checked here again and a bad one is
refused with a message naming the field and what to change (`dpo pipeline run` exits 2 then).
The spec carries no credential: logins come from the environment (libpq's ``PG*`` variables, each
source's under its ``envPrefix``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from dataproduct_operator.api.naming import RUN_SPEC_VARIABLE
from dataproduct_operator.api.run_terms import FileFormat, RunMode, Severity
from dataproduct_operator.stores.postgres.types import UnknownTypeError, sql_type

RUN_SPEC_ENV = RUN_SPEC_VARIABLE
REPORT_PATH_ENV = "DPO_REPORT_PATH"
DEFAULT_REPORT_PATH = "/dev/termination-log"

MAX_SPEC_BYTES = 256 * 1024
MAX_SQL_CHARS = 64 * 1024
MAX_SOURCES = 32
MAX_COLUMNS = 512
MAX_CHECKS = 64
MAX_NAME_CHARS = 128
MAX_LOCATION_CHARS = 2048

# A source is a table of the transform named by its input name: a DNS label or an SQL-like
# name, so it reads naturally unquoted in most SQL (a name with "-" needs double quotes).
_SOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")
_CHECK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$")
_ENV_PREFIX = re.compile(r"^[A-Z][A-Z0-9_]{0,62}_$")


E = TypeVar("E", bound=StrEnum)


class RunSpecError(ValueError):
    """A run spec that cannot run; the message names the field and what to change."""


# The API's vocabulary of runs: one definition (api/dataproduct.py).
Mode = RunMode


class SourceKind(StrEnum):
    PRODUCT = "product"  # an upstream product's table, read through its grant
    POSTGRES = "postgres"  # an external PostgreSQL, read with the query given
    FILE = "file"  # CSV, JSON lines or Parquet, from a mounted volume or an http(s) URL


@dataclass(frozen=True)
class TableRef:
    schema: str
    name: str


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # the logical type (stores.postgres.types); checked to be known
    required: bool = False
    unique: bool = False

    @property
    def sql_type(self) -> str:
        return sql_type(self.type)


@dataclass(frozen=True)
class Output:
    port: str
    table: TableRef
    columns: tuple[Column, ...]
    freshness_column: str | None = None

    @property
    def unique_columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.unique)


@dataclass(frozen=True)
class Source:
    name: str
    kind: SourceKind
    table: TableRef | None = None  # product
    query: str | None = None  # postgres
    env_prefix: str | None = None  # product, postgres: where its login is in the environment
    format: FileFormat | None = None  # file
    location: str | None = None  # file: an absolute path or an http(s) URL

    @property
    def is_remote_file(self) -> bool:
        return self.location is not None and self.location.startswith(("http://", "https://"))


@dataclass(frozen=True)
class NullFraction:
    column: str
    fraction: float


@dataclass(frozen=True)
class Freshness:
    column: str
    max_age_seconds: int


@dataclass(frozen=True)
class Check:
    """One declared check: exactly one of ``sql``, ``min_rows``, ``max_null_fraction`` and
    ``freshness`` is set."""

    name: str
    severity: Severity
    sql: str | None = None
    min_rows: int | None = None
    max_null_fraction: NullFraction | None = None
    freshness: Freshness | None = None


@dataclass(frozen=True)
class ProductRef:
    namespace: str
    name: str


@dataclass(frozen=True)
class RunSpec:
    product: ProductRef
    pipeline: str
    sql: str
    mode: RunMode
    output: Output
    sources: tuple[Source, ...]
    checks: tuple[Check, ...]

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        """The spec in TEXT; :class:`RunSpecError` naming the field when it is not one."""
        if len(text.encode()) > MAX_SPEC_BYTES:
            raise RunSpecError(f"{RUN_SPEC_ENV} is larger than {MAX_SPEC_BYTES} bytes")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise RunSpecError(
                f"{RUN_SPEC_ENV} is not JSON: {error.msg} (line {error.lineno})"
            ) from None
        return _parse(_Fields(document, "spec"))


class _Fields:
    """One JSON object being read, ``where`` naming it in messages (``sources[1].table``)."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise RunSpecError(f"{where} must be an object")
        self.value: dict[str, Any] = value
        self.where = where

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where != "spec" else key

    def has(self, key: str) -> bool:
        return self.value.get(key) is not None

    def text(self, key: str, *, limit: int = MAX_NAME_CHARS, pattern: re.Pattern[str] | None = None,
             optional: bool = False) -> str:  # fmt: skip
        value = self.value.get(key)
        if value is None and optional:
            return ""
        if not isinstance(value, str) or not value.strip():
            raise RunSpecError(f"{self.at(key)} must be a non-empty string")
        if len(value) > limit:
            raise RunSpecError(f"{self.at(key)} is longer than {limit} characters")
        if "\x00" in value:
            raise RunSpecError(f"{self.at(key)} must not contain a NUL character")
        if pattern is not None and not pattern.match(value):
            raise RunSpecError(f"{self.at(key)} {value!r} must match {pattern.pattern}")
        return value

    def choice(self, key: str, enum: type[E]) -> E:
        value = self.value.get(key)
        try:
            return enum(str(value))
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            raise RunSpecError(f"{self.at(key)} is {value!r}; use one of: {allowed}") from None

    def boolean(self, key: str) -> bool:
        value = self.value.get(key, False)
        if not isinstance(value, bool):
            raise RunSpecError(f"{self.at(key)} must be true or false")
        return value

    def integer(self, key: str, *, minimum: int, maximum: int) -> int:
        value = self.value.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
            raise RunSpecError(f"{self.at(key)} must be an integer from {minimum} to {maximum}")
        return value

    def objects(self, key: str, limit: int, *, optional: bool = False) -> list[_Fields]:
        value = self.value.get(key)
        if value is None and optional:
            return []
        if not isinstance(value, list) or (not value and not optional):
            raise RunSpecError(f"{self.at(key)} must be a non-empty list")
        if len(value) > limit:
            raise RunSpecError(f"{self.at(key)} has more than {limit} items")
        return [_Fields(item, f"{self.at(key)}[{index}]") for index, item in enumerate(value)]

    def object(self, key: str) -> _Fields:
        return _Fields(self.value.get(key), self.at(key))


def _table(fields: _Fields) -> TableRef:
    return TableRef(fields.text("schema", limit=63), fields.text("name", limit=63))


def _column(fields: _Fields) -> Column:
    column = Column(
        name=fields.text("name"),
        type=fields.text("type", limit=64),
        required=fields.boolean("required"),
        unique=fields.boolean("unique"),
    )
    try:
        column.sql_type  # noqa: B018 (checked here, so the run cannot fail on it later)
    except UnknownTypeError as error:
        raise RunSpecError(f"{fields.at('type')}: {error}") from None
    return column


def _output(fields: _Fields) -> Output:
    columns = tuple(_column(item) for item in fields.objects("columns", MAX_COLUMNS))
    names = [column.name for column in columns]
    _no_duplicates(names, fields.at("columns"))
    freshness = fields.text("freshnessColumn", optional=True) or None
    if freshness is not None and freshness not in names:
        raise RunSpecError(
            f"{fields.at('freshnessColumn')} {freshness!r} is not a column of the port"
        )
    return Output(fields.text("port", limit=63), _table(fields.object("table")), columns, freshness)


def _location(fields: _Fields) -> str:
    location = fields.text("location", limit=MAX_LOCATION_CHARS)
    if location.startswith(("http://", "https://")):
        parts = urlsplit(location)
        if not parts.hostname:
            raise RunSpecError(f"{fields.at('location')} is a URL without a host")
        if parts.username or parts.password:
            raise RunSpecError(
                f"{fields.at('location')} must not carry a user or password; "
                "give credentials through the product's Secrets"
            )
    elif not location.startswith("/"):
        raise RunSpecError(
            f"{fields.at('location')} must be an absolute path (a mounted volume) or an http(s) URL"
        )
    return location


def _source(fields: _Fields) -> Source:
    name = fields.text("name", pattern=_SOURCE_NAME)
    kind = fields.choice("kind", SourceKind)
    if kind is SourceKind.FILE:
        return Source(name, kind, format=fields.choice("format", FileFormat),
                      location=_location(fields))  # fmt: skip
    prefix = fields.text("envPrefix", limit=64, pattern=_ENV_PREFIX)
    if kind is SourceKind.PRODUCT:
        return Source(name, kind, table=_table(fields.object("table")), env_prefix=prefix)
    return Source(name, kind, query=fields.text("query", limit=MAX_SQL_CHARS), env_prefix=prefix)


_CHECK_KINDS = ("sql", "minRows", "maxNullFraction", "freshness")


def _check(fields: _Fields, columns: set[str]) -> Check:
    name = fields.text("name", pattern=_CHECK_NAME)
    severity = fields.choice("severity", Severity)
    kinds = [kind for kind in _CHECK_KINDS if fields.has(kind)]
    if len(kinds) != 1:
        raise RunSpecError(f"{fields.where} must set exactly one of: {', '.join(_CHECK_KINDS)}")
    (kind,) = kinds
    if kind == "sql":
        return Check(name, severity, sql=fields.text("sql", limit=MAX_SQL_CHARS))
    if kind == "minRows":
        return Check(name, severity, min_rows=fields.integer("minRows", minimum=0, maximum=2**62))
    inner = fields.object(kind)
    column = inner.text("column")
    if column not in columns:
        raise RunSpecError(f"{inner.at('column')} {column!r} is not a column of the port")
    if kind == "maxNullFraction":
        fraction = inner.value.get("fraction")
        if (
            not isinstance(fraction, int | float)
            or isinstance(fraction, bool)
            or not (0 <= fraction <= 1)
        ):
            raise RunSpecError(f"{inner.at('fraction')} must be a number from 0 to 1")
        return Check(name, severity, max_null_fraction=NullFraction(column, float(fraction)))
    age = inner.integer("maxAgeSeconds", minimum=1, maximum=10 * 366 * 86400)
    return Check(name, severity, freshness=Freshness(column, age))


def _no_duplicates(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:  # DuckDB's names are case-insensitive
            raise RunSpecError(f"{where} names {name!r} twice")
        seen.add(name.lower())


def _parse(fields: _Fields) -> RunSpec:
    product = fields.object("product")
    output = _output(fields.object("output"))
    sources = tuple(_source(item) for item in fields.objects("sources", MAX_SOURCES, optional=True))
    _no_duplicates([source.name for source in sources], fields.at("sources"))
    if output.table.name.lower() in {source.name.lower() for source in sources}:
        raise RunSpecError(
            f"output.table.name {output.table.name!r} is also a source's name; the checks read "
            "the staged rows under the output table's name, so rename the source"
        )
    columns = {column.name for column in output.columns}
    checks = tuple(
        _check(item, columns) for item in fields.objects("checks", MAX_CHECKS, optional=True)
    )
    _no_duplicates([check.name for check in checks], fields.at("checks"))
    mode = fields.choice("mode", RunMode)
    if mode is RunMode.MERGE and not output.unique_columns:
        raise RunSpecError(
            f"mode Merge needs a unique column in port {output.port!r} to merge on; mark one "
            "column unique: true, or use Replace or Append"
        )
    return RunSpec(
        product=ProductRef(product.text("namespace", limit=63), product.text("name", limit=63)),
        pipeline=fields.text("pipeline", limit=63),
        sql=fields.text("sql", limit=MAX_SQL_CHARS),
        mode=mode,
        output=output,
        sources=sources,
        checks=checks,
    )
