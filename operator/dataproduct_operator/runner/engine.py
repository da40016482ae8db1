"""The run of a SQL pipeline: sources into DuckDB, stage, quality gate, publish, report (layer
``runner``, I/O).

Everything a run touches is local to it: an in-memory DuckDB whose spill files, downloads and
pipes live in one temporary directory removed at the end. PostgreSQL is read by DuckDB's
PostgreSQL reader (binary, each source's database attached for its read only, under a read-only
session) and written with ``COPY ... FROM STDIN`` in one transaction as the product's writer, so a
reader sees either the previous rows or the new ones. The COPY streams through a named pipe
(DuckDB exporting on one side, a thread loading on the other), so exporting and loading overlap;
whichever side fails, the other is let finish and the run fails with the first error.

The quality gate runs while the staged rows are sent: the transaction is committed only once
every Error check has passed, and rolled back otherwise, so nothing is published before the gate
says so and PostgreSQL's load (the longest step) does not wait for the checks. The rows sent are
the staged ones as the gate found them: the export reads a DuckDB snapshot taken before any check
runs.

DuckDB runs the pipeline's own SQL, so once the sources are read it is closed to the outside:
no database attached (the sources' are detached), no file outside the run's directory, no
network, no extension loaded or installed (nothing is ever downloaded), no configuration change;
the process environment, which holds the logins, is out of its reach.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO, TypeVar
from urllib.parse import urlsplit

import duckdb
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from dataproduct_operator.api.run_terms import FileFormat, RunMode, Severity
from dataproduct_operator.runner import types
from dataproduct_operator.runner.report import CheckResult, RunReport, RunResult
from dataproduct_operator.runner.spec import (
    DEFAULT_REPORT_PATH,
    REPORT_PATH_ENV,
    RUN_SPEC_ENV,
    Check,
    RunSpec,
    RunSpecError,
    Source,
    SourceKind,
)
from dataproduct_operator.stores.postgres.statements import quote_ident, quote_literal

# libpq's variables: the writer's login as they are, a source's under its envPrefix.
LIBPQ_KEYS = {
    "PGHOST": "host",
    "PGPORT": "port",
    "PGDATABASE": "dbname",
    "PGUSER": "user",
    "PGPASSWORD": "password",
    "PGSSLMODE": "sslmode",
}
CONNECT_TIMEOUT_SECONDS = 30
DOWNLOAD_TIMEOUT_SECONDS = 60
MAX_DOWNLOAD_BYTES = 8 * 1024**3
_CHUNK = 1024 * 1024
_PIPE_BYTES = 1024 * 1024
# The session every PostgreSQL read uses (libpq's options: the described query's connection and
# the reader's alike): read only, and the text forms of the values sent as text, which DuckDB
# reads back exactly.
_READ_SESSION = (
    ("TimeZone", "UTC"), ("DateStyle", "ISO,YMD"), ("extra_float_digits", "3"),
    ("IntervalStyle", "iso_8601"), ("bytea_output", "hex"),
    ("default_transaction_read_only", "on"),
)  # fmt: skip
_READ_OPTIONS = " ".join(f"-c {name}={value}" for name, value in _READ_SESSION)
# The name a source's database is attached under while it is read (detached right after).
_SOURCE_DATABASE = "dpo_source"


T = TypeVar("T")


class RunFailedError(Exception):
    """The run stops: the message is the report's one-line error (never a credential)."""


class ChecksFailedError(Exception):
    """Error-level checks failed: nothing is published."""

    def __init__(self, results: tuple[CheckResult, ...]) -> None:
        super().__init__(", ".join(check.name for check in results))
        self.results = results


def run(
    spec: RunSpec,
    environ: Mapping[str, str],
    out: TextIO,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RunReport:
    """Run SPEC with the logins in ENVIRON, progress lines on OUT; the report, whatever happens
    (every failure becomes a Failed report with a one-line error, credentials scrubbed)."""
    started = clock()
    state = _Progress()
    try:
        with _workdir() as workdir:
            _Run(
                spec, environ=environ, out=out, workdir=workdir, progress=state, clock=clock
            ).execute()
        result, error = RunResult.SUCCEEDED, None
    except ChecksFailedError as failures:
        names = ", ".join(check.name for check in failures.results)
        result, error = RunResult.FAILED, f"checks failed: {names}"
    except RunFailedError as failure:
        result, error = RunResult.FAILED, str(failure)
    except (psycopg.Error, duckdb.Error, OSError) as failure:
        result, error = RunResult.FAILED, _first_line(failure)
    error = scrub(error, environ) if error else None
    if error:
        _say(out, f"run failed: {error}")
    return RunReport(
        result=result,
        start_time=started,
        completion_time=clock(),
        rows_read=state.rows_read,
        rows_written=state.rows_written if result is RunResult.SUCCEEDED else 0,
        checks=tuple(state.checks),
        watermark=state.watermark if result is RunResult.SUCCEEDED else None,
        error=error,
    )


def scrub(text: str, environ: Mapping[str, str]) -> str:
    """TEXT with every password of ENVIRON replaced, in case a library quoted one."""
    for key, value in environ.items():
        if key.endswith("PGPASSWORD") and len(value) >= 4:
            text = text.replace(value, "***")
    return text


class _Progress:
    """What the report tells, filled in as the run goes."""

    def __init__(self) -> None:
        self.rows_read: dict[str, int] = {}
        self.rows_written = 0
        self.checks: list[CheckResult] = []
        self.watermark: datetime | None = None


@contextmanager
def _workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dpo-run-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _say(out: TextIO, line: str) -> None:
    out.write(line + "\n")
    out.flush()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def shown_url(location: str) -> str:
    """A source's URL as a report may name it: scheme, host, port and path. The spec refuses a
    user or password in it; a query or fragment (a signed URL's token, say) is left out."""
    parts = urlsplit(location)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def conninfo(environ: Mapping[str, str], prefix: str = "") -> dict[str, Any]:
    """psycopg's keyword arguments from libpq's variables under PREFIX."""
    found = {
        arg: environ[prefix + key] for key, arg in LIBPQ_KEYS.items() if prefix + key in environ
    }
    if "host" not in found or "user" not in found:
        raise RunFailedError(
            f"the environment lacks {prefix}PGHOST or {prefix}PGUSER: the login "
            "of this connection is not mounted into the pod"
        )
    return {**found, "connect_timeout": CONNECT_TIMEOUT_SECONDS, "application_name": "dpo-runner"}


class _Run:
    def __init__(
        self,
        spec: RunSpec,
        *,
        environ: Mapping[str, str],
        out: TextIO,
        workdir: Path,
        progress: _Progress,
        clock: Callable[[], datetime],
    ) -> None:
        self.spec = spec
        self.environ = environ
        self.out = out
        self.workdir = workdir
        self.progress = progress
        self.clock = clock
        self.staged = spec.output.table.name
        # The one directory DuckDB may still read and write once closed: the sources' CSV,
        # downloads, the CSV to publish. Extensions live beside it, out of reach, so even an
        # INSTALL cannot write one.
        self.files = workdir / "files"
        self.files.mkdir()
        self.postgres_reader_loaded = False
        self.db = duckdb.connect(
            ":memory:",
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "home_directory": str(workdir),
                "extension_directory": str(workdir / "extensions"),
                "temp_directory": str(workdir / "spill"),
            },
        )
        # GLOBAL: the gate's and the export's cursors (own sessions) read and write UTC too.
        self.db.execute("SET GLOBAL TimeZone = 'UTC'")

    def execute(self) -> None:
        output = self.spec.output
        target = sql.Identifier(output.table.schema, output.table.name)
        # The writer's one transaction opens first: a wrong login fails before any work, and
        # Replace's DELETE runs meanwhile (readers keep seeing the old rows until the commit;
        # a failed run rolls it back).
        with (
            psycopg.connect(**conninfo(self.environ)) as writer,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="dpo-delete") as background,
        ):
            cleared = (
                background.submit(writer.execute, sql.SQL("DELETE FROM {}").format(target))
                if self.spec.mode is RunMode.REPLACE
                else None
            )
            for source in self.spec.sources:
                self._read(source)
            self._close_to_the_outside()
            rows = self._stage()
            if cleared is not None:
                cleared.result()
            self._publish(writer, target, rows)

    # --- 1. sources ----------------------------------------------------------------------

    def _read(self, source: Source) -> None:
        began = time.monotonic()
        if source.kind is SourceKind.FILE:
            self._read_file(source)
        else:
            self._read_postgres(source)
        (rows,) = self._one(f"SELECT count(*) FROM {quote_ident(source.name)}")
        self.progress.rows_read[source.name] = int(rows)
        _say(self.out, f"source {source.name}: {rows} rows ({time.monotonic() - began:.1f} s)")

    def _read_postgres(self, source: Source) -> None:
        """The source's rows into a DuckDB table of its name, read by DuckDB's PostgreSQL
        reader (binary, no relay in Python) with the source's login, under the read session;
        the source's database is attached for the read only."""
        if source.kind is SourceKind.PRODUCT:
            table = _given(source.table)
            query: sql.Composable = sql.SQL("SELECT * FROM {}").format(
                sql.Identifier(table.schema, table.name)
            )
        else:
            query = sql.SQL(
                _given(source.query).strip().rstrip(";")
            )  # the source's own SQL, read-only
        login = {**conninfo(self.environ, _given(source.env_prefix)), "options": _READ_OPTIONS}
        with psycopg.connect(**login, autocommit=True) as conn:
            described = conn.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(query))
            fields = [(column.name, column.type_code) for column in described.description or ()]
            remote = (
                sql.SQL("SELECT {} FROM ({}) AS q")
                .format(sql.SQL(types.read_columns(fields)), query)
                .as_string(conn)
            )
        lowered = [name.lower() for name, _ in fields]
        if len(set(lowered)) != len(lowered):
            raise RunFailedError(f"source {source.name}: its query returns a column name twice")
        self._load_postgres_reader()
        try:
            self.db.execute(
                f"ATTACH {quote_literal(make_conninfo(**login))} AS {_SOURCE_DATABASE} "
                "(TYPE postgres, READ_ONLY)"
            )
            reader = types.postgres_reader(_SOURCE_DATABASE, remote, fields)
            self.db.execute(f"CREATE TABLE {quote_ident(source.name)} AS {reader}")
        except duckdb.Error as error:
            raise RunFailedError(
                f"source {source.name}: {scrub(_first_line(error), self.environ)}"
            ) from None
        finally:
            self.db.execute(f"DETACH DATABASE IF EXISTS {_SOURCE_DATABASE}")

    def _load_postgres_reader(self) -> None:
        """DuckDB's PostgreSQL reader, from the extension package installed beside DuckDB (of
        its very version: nothing is downloaded)."""
        if self.postgres_reader_loaded:
            return
        path = postgres_reader_path()
        if not path.is_file():
            raise RunFailedError(
                f"DuckDB's PostgreSQL reader for DuckDB {duckdb.__version__} is not installed "
                f"({path}): install requirements/runner.lock"
            )
        self.db.execute(f"LOAD {quote_literal(str(path))}")
        self.postgres_reader_loaded = True

    def _read_file(self, source: Source) -> None:
        location, file_format = _given(source.location), _given(source.format)
        path = self._download(location, source.name) if source.is_remote_file else location
        literal = quote_literal(path)
        reader = {
            FileFormat.CSV: f"read_csv({literal}, header = true)",
            FileFormat.JSONL: f"read_json({literal}, format = 'newline_delimited')",
            FileFormat.PARQUET: f"read_parquet({literal})",
        }[file_format]
        try:
            self.db.execute(f"CREATE TABLE {quote_ident(source.name)} AS SELECT * FROM {reader}")
        except duckdb.Error as error:
            raise RunFailedError(f"source {source.name}: {_first_line(error)}") from None

    def _download(self, location: str, name: str) -> str:
        import urllib.request  # noqa: PLC0415 (only a run reading a URL pays for the import)

        path = self.files / f"download-{name}"
        written = 0
        try:
            with (
                urllib.request.urlopen(  # noqa: S310 (http(s) only: checked in the spec)
                    location, timeout=DOWNLOAD_TIMEOUT_SECONDS
                ) as response,
                path.open("wb") as file,
            ):
                while block := response.read(_CHUNK):
                    written += len(block)
                    if written > MAX_DOWNLOAD_BYTES:
                        raise RunFailedError(
                            f"source {name}: larger than {MAX_DOWNLOAD_BYTES} bytes"
                        )
                    file.write(block)
        except OSError as error:  # urllib's errors are OSErrors and do not name the URL
            raise RunFailedError(
                f"source {name}: download failed: {error} (GET {shown_url(location)})"
            ) from None
        return str(path)

    def _close_to_the_outside(self) -> None:
        """From here on DuckDB runs the pipeline's SQL: only the run's directory stays open."""
        directory = quote_literal(str(self.files) + "/")
        self.db.execute(f"SET allowed_directories = [{directory}]")
        self.db.execute("SET enable_external_access = false")
        self.db.execute("SET lock_configuration = true")

    # --- 2. stage ------------------------------------------------------------------------

    def _stage(self) -> int:
        """The transform's rows cast to the port's types, as the output table's name; its rows.

        One pass: the transform's columns come from DuckDB's binder (DESCRIBE runs nothing),
        then its rows are cast while they are stored. Only when something is wrong is the
        transform run on its own, to say what: its own error first, then the columns, then
        which column has values that do not convert and how many."""
        began = time.monotonic()
        transform = self.spec.sql.strip().rstrip(";")
        try:
            described = self._all(f"DESCRIBE (\n{transform}\n)")
        except duckdb.Error as error:
            raise RunFailedError(f"the pipeline's SQL failed: {_first_line(error)}") from None
        casts = [
            (column.name, types.duckdb_type(column.sql_type)) for column in self.spec.output.columns
        ]
        if self._columns_problem([row[0] for row in described]):
            raise self._stage_failure(transform, casts, None)
        try:
            self.db.execute(
                f"CREATE TABLE {quote_ident(self.staged)} AS SELECT "
                + ", ".join(f"CAST({quote_ident(n)} AS {k}) AS {quote_ident(n)}" for n, k in casts)
                + f" FROM (\n{transform}\n)"
            )
        except duckdb.Error as error:
            raise self._stage_failure(transform, casts, error) from None
        (rows,) = self._one(f"SELECT count(*) FROM {quote_ident(self.staged)}")
        _say(
            self.out,
            f"staged {rows} rows for port {self.spec.output.port} "
            f"({time.monotonic() - began:.1f} s)",
        )
        return int(rows)

    def _columns_problem(self, produced: list[str]) -> str | None:
        """What is wrong with the transform's columns PRODUCED, if anything."""
        by_name = {name.lower(): name for name in produced}
        wanted = [column.name for column in self.spec.output.columns]
        missing = [name for name in wanted if name.lower() not in by_name]
        extra = sorted(set(by_name) - {name.lower() for name in wanted})
        if not missing and not extra:
            return None
        return (
            f"the pipeline's SQL must return the columns of port {self.spec.output.port}"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not in the port: {', '.join(by_name[name] for name in extra)}" if extra else "")
        )

    def _stage_failure(
        self, transform: str, casts: list[tuple[str, str]], error: duckdb.Error | None
    ) -> RunFailedError:
        """Why staging failed (ERROR, if it did): the transform's own error, else its columns,
        else the first column with values that do not convert to the port's type."""
        result = quote_ident("__dpo_result")
        try:
            self.db.execute(f"CREATE TABLE {result} AS (\n{transform}\n)")
        except duckdb.Error as failure:
            return RunFailedError(f"the pipeline's SQL failed: {_first_line(failure)}")
        problem = self._columns_problem([row[0] for row in self._all(f"DESCRIBE {result}")])
        if problem:
            return RunFailedError(problem)
        failures = self._one(
            "SELECT "
            + ", ".join(
                f"count(*) FILTER (WHERE {quote_ident(name)} IS NOT NULL AND "
                f"TRY_CAST({quote_ident(name)} AS {kind}) IS NULL)"
                for name, kind in casts
            )
            + f" FROM {result}"
        )
        for (name, kind), count in zip(casts, failures, strict=True):
            if count:
                return RunFailedError(
                    f"column {name}: {count} values do not convert to the port's type {kind}"
                )
        # The transform gave other rows this time (random(), now()): its first error stands.
        detail = _first_line(error) if error is not None else "its result changed between runs"
        return RunFailedError(f"the pipeline's SQL failed: {detail}")

    # --- 3. the quality gate -----------------------------------------------------------

    def _gate(self, db: duckdb.DuckDBPyConnection, rows: int) -> None:
        """The checks, on DB (a cursor of the run's DuckDB: the gate runs beside the publish),
        then the watermark; :class:`ChecksFailedError` when an Error check failed."""
        began = time.monotonic()
        with db:
            results = self._contract_checks(db) + [
                self._check(db, check, rows) for check in self.spec.checks
            ]
            self.progress.checks = results
            for check in results:
                verdict = "passed" if check.passed else f"FAILED ({check.severity})"
                _say(self.out, f"check {check.name}: {verdict}, {check.violations} violations")
            failed = tuple(
                c for c in results if not c.passed and c.severity == Severity.ERROR.value
            )
            _say(
                self.out,
                f"gate: {len(results) - len(failed)} of {len(results)} checks pass "
                f"({time.monotonic() - began:.1f} s)",
            )
            if failed:
                raise ChecksFailedError(failed)
            self._watermark(db)

    def _contract_checks(self, db: duckdb.DuckDBPyConnection) -> list[CheckResult]:
        columns = self.spec.output.columns
        plan = [(f"required:{c.name}", f"count(*) - count({quote_ident(c.name)})")
                for c in columns if c.required]  # fmt: skip
        plan += [
            (f"unique:{c.name}",
             f"count({quote_ident(c.name)}) - count(DISTINCT {quote_ident(c.name)})")
            for c in columns if c.unique
        ]  # fmt: skip
        if not plan:
            return []
        counts = _one(db, f"SELECT {', '.join(e for _, e in plan)} FROM {quote_ident(self.staged)}")
        return [
            CheckResult(name, Severity.ERROR.value, passed=count == 0, violations=int(count))
            for (name, _), count in zip(plan, counts, strict=True)
        ]

    def _check(self, db: duckdb.DuckDBPyConnection, check: Check, rows: int) -> CheckResult:
        staged = quote_ident(self.staged)
        if check.min_rows is not None:
            violations = max(0, check.min_rows - rows)
        elif check.max_null_fraction is not None:
            column = quote_ident(check.max_null_fraction.column)
            (nulls,) = _one(db, f"SELECT count(*) - count({column}) FROM {staged}")
            violations = int(nulls)
            if rows and nulls / rows > check.max_null_fraction.fraction:
                return CheckResult(check.name, check.severity.value, False, violations)
            return CheckResult(check.name, check.severity.value, True, violations)
        elif check.freshness is not None:
            column = quote_ident(check.freshness.column)
            (newest,) = _one(db, f"SELECT max(CAST({column} AS TIMESTAMPTZ)) FROM {staged}")
            age = None if newest is None else (self.clock() - newest).total_seconds()
            violations = 0 if age is not None and age <= check.freshness.max_age_seconds else 1
        else:
            violations = _sql_check(db, _given(check.sql), check.name)
        return CheckResult(check.name, check.severity.value, violations == 0, violations)

    def _watermark(self, db: duckdb.DuckDBPyConnection) -> None:
        column = self.spec.output.freshness_column
        if column is not None:
            (newest,) = _one(
                db,
                f"SELECT max(CAST({quote_ident(column)} AS TIMESTAMPTZ)) "
                f"FROM {quote_ident(self.staged)}",
            )
            self.progress.watermark = newest

    # --- 4. publish ----------------------------------------------------------------------

    def _export(self, db: duckdb.DuckDBPyConnection, pipe: Path) -> None:
        """The staged rows into PIPE as the CSV PostgreSQL's COPY reads. The pipe is held open
        around DuckDB's COPY: its reader opens it even if DuckDB fails first, and reaches its
        end only once DuckDB is done."""
        exports = ", ".join(
            types.csv_export(quote_ident(c.name), c.sql_type) for c in self.spec.output.columns
        )
        with db, pipe.open("wb") as sink:
            _widen(sink)
            db.execute(
                f"COPY (SELECT {exports} FROM {quote_ident(self.staged)}) "
                f"TO {quote_literal(str(pipe))} (FORMAT csv, HEADER false)"
            )
            db.commit()

    def _publish(self, writer: psycopg.Connection[Any], target: sql.Identifier, rows: int) -> None:
        """The staged rows into TARGET in the writer's transaction while the gate checks them;
        committed once the gate passed (on any failure the transaction is rolled back)."""
        began = time.monotonic()
        output = self.spec.output
        names = [column.name for column in output.columns]
        column_list = sql.SQL(", ").join(map(sql.Identifier, names))
        pipe = _fifo(self.files / "publish.pipe")
        # The export's snapshot is taken before the gate starts: whatever a check's SQL does
        # to the staged rows, the rows sent are the ones staged.
        exporter = self.db.cursor()
        exporter.begin()
        _one(exporter, f"SELECT count(*) FROM {quote_ident(self.staged)}")
        checker = self.db.cursor()
        merge = self.spec.mode is RunMode.MERGE
        incoming = sql.Identifier("dpo_incoming")
        if merge:
            writer.execute(
                sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {}) ON COMMIT DROP").format(
                    incoming, target
                )
            )
        # DuckDB writes the rows into a pipe while PostgreSQL's COPY reads them, and the gate
        # checks them meanwhile.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="dpo-publish") as background:
            gate = background.submit(self._gate, checker, rows)
            exported = background.submit(self._export, exporter, pipe)
            try:
                written = _copy_in(
                    writer, incoming if merge else target, column_list, pipe, stop=gate
                )
            except BaseException:
                _drain(pipe, exported)  # DuckDB finishes
                wait([gate])
                if isinstance(gate.exception(), Exception):  # the gate's verdict comes first
                    gate.result()
                raise  # else PostgreSQL's error is the run's
            exported.result()  # DuckDB stopping midway: the transaction is not committed
            gate.result()  # an Error check failed: nothing is committed
        if merge:
            written = self._merge(writer, target, incoming, column_list, names)
        self.db.close()
        writer.commit()
        self.progress.rows_written = written
        if self.progress.watermark is None:
            self.progress.watermark = self.clock()
        _say(
            self.out,
            f"published {written} rows to port {output.port} ({self.spec.mode.value}, "
            f"{time.monotonic() - began:.1f} s)",
        )

    def _merge(
        self,
        conn: psycopg.Connection[Any],
        target: sql.Identifier,
        incoming: sql.Identifier,
        column_list: sql.Composable,
        names: list[str],
    ) -> int:
        """The rows copied into INCOMING upserted into TARGET."""
        # ON CONFLICT names one arbiter: the first unique column (each is unique on its own).
        key = self.spec.output.unique_columns[0]
        updates = [name for name in names if name != key]
        action = (
            sql.SQL("DO UPDATE SET ")
            + sql.SQL(", ").join(
                sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(n), sql.Identifier(n))
                for n in updates
            )
            if updates
            else sql.SQL("DO NOTHING")
        )
        merged = conn.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) ").format(
                target, column_list, column_list, incoming, sql.Identifier(key)
            )
            + action
        )
        return max(0, merged.rowcount)

    # --- helpers -------------------------------------------------------------------------

    def _one(self, query: str) -> tuple[Any, ...]:
        return _one(self.db, query)

    def _all(self, query: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.db.execute(query).fetchall()]


def _one(db: duckdb.DuckDBPyConnection, query: str) -> tuple[Any, ...]:
    return tuple(_given(db.execute(query).fetchone()))


def _sql_check(db: duckdb.DuckDBPyConnection, query: str, name: str) -> int:
    try:
        found = db.execute(query.strip().rstrip(";")).fetchall()
    except duckdb.Error as error:
        raise RunFailedError(f"check {name}: its SQL failed: {_first_line(error)}") from None
    if len(found) != 1 or len(found[0]) != 1 or not isinstance(found[0][0], int):
        raise RunFailedError(
            f"check {name}: its SQL must return one row of one integer "
            "(the number of violating rows)"
        )
    return max(0, int(found[0][0]))


def _given(value: T | None) -> T:
    """VALUE, which the spec's parser guarantees for this kind of source or check."""
    if value is None:
        raise RunFailedError("the run spec lacks a field its kind needs")
    return value


def postgres_reader_path() -> Path:
    """Where the extension package of DuckDB's PostgreSQL reader keeps the extension for the
    DuckDB installed."""
    import duckdb_extension_postgres_scanner  # type: ignore[import-untyped]  # noqa: PLC0415

    package = Path(duckdb_extension_postgres_scanner.__file__).parent
    return package / "extensions" / f"v{duckdb.__version__}" / "postgres_scanner.duckdb_extension"


def _fifo(path: Path) -> Path:
    os.mkfifo(path, 0o600)
    return path


def _widen(pipe: BinaryIO) -> None:
    """PIPE's buffer at 1 MiB, Linux's default bound, instead of 64 KiB: its two sides hand over
    16 times less often, which counts on a busy machine where each hand-over may wait for a
    CPU. Best effort: a host that refuses keeps the default."""
    with suppress(OSError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)


def _drain(pipe: Path, writer: Future[None]) -> None:
    """Read PIPE until its WRITER is done: a writer waiting to open it, or blocked on it with its
    reader gone, then finishes (with its error, if it had one)."""
    descriptor = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # a reader at once: opens it
    try:
        while not writer.done():
            try:
                if os.read(descriptor, _CHUNK):
                    continue
            except BlockingIOError:
                pass
            wait([writer], timeout=0.05)  # nothing to read now: the writer is not done yet
    finally:
        os.close(descriptor)


class _GateFailedError(Exception):
    """The gate failed while the rows were being sent: the COPY stops there."""


def _copy_in(
    conn: psycopg.Connection[Any],
    target: sql.Identifier,
    column_list: sql.Composable,
    path: Path,
    *,
    stop: Future[None],
) -> int:
    """The CSV in PATH into TARGET; given up (the COPY aborted) as soon as STOP failed."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(target, column_list)
    with conn.cursor() as cursor:
        with cursor.copy(statement) as stream, path.open("rb") as file:
            while block := file.read(_CHUNK):
                if stop.done() and stop.exception() is not None:
                    raise _GateFailedError
                stream.write(block)
        return max(0, cursor.rowcount)


def run_from_environment(environ: Mapping[str, str], out: TextIO) -> int:
    """`dpo pipeline run`: the spec from ``DPO_RUN_SPEC``, the report to ``DPO_REPORT_PATH``
    and as the last line on OUT; 0 when published, 1 when the run failed, 2 for a bad spec."""
    now = datetime.now(UTC)
    try:
        spec = RunSpec.from_json(environ.get(RUN_SPEC_ENV, ""))
    except RunSpecError as error:
        message = scrub(f"bad run spec: {error}", environ)
        _say(out, message)
        report = RunReport(RunResult.FAILED, now, datetime.now(UTC), error=message)
        _write_report(report, environ, out)
        return 2
    _say(
        out,
        f"run {spec.product.namespace}/{spec.product.name} pipeline {spec.pipeline}: "
        f"{len(spec.sources)} sources, port {spec.output.port} ({spec.mode.value})",
    )
    report = run(spec, environ, out)
    _write_report(report, environ, out)
    return 0 if report.result is RunResult.SUCCEEDED else 1


def _write_report(report: RunReport, environ: Mapping[str, str], out: TextIO) -> None:
    text = report.to_json()
    path = Path(environ.get(REPORT_PATH_ENV) or DEFAULT_REPORT_PATH)
    try:
        path.write_text(text)
    except OSError as error:  # outside a pod: the stdout line below still carries it
        _say(out, f"report not written to {path}: {error.strerror}")
    _say(out, f"report {text}")
