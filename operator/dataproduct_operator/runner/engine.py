"""The run of a SQL pipeline: sources into DuckDB, stage, quality gate, publish, report (layer
``runner``, I/O).

Everything a run touches is local to it: an in-memory DuckDB whose spill files, downloads and
pipes live in one temporary directory removed at the end. PostgreSQL is read with ``COPY (...) TO
STDOUT`` through psycopg and written with ``COPY ... FROM STDIN`` in one transaction as the
product's writer, so a reader sees either the previous rows or the new ones. Both COPYs stream
through a named pipe (a thread on one side, DuckDB on the other), so parsing and loading overlap;
whichever side fails, the other is let finish and the run fails with the first error.

DuckDB runs the pipeline's own SQL, so once the sources are read it is closed to the outside:
no file outside the run's directory, no network, no extension loaded or installed (nothing is
ever downloaded), no configuration change; the process environment, which holds the logins, is
out of its reach.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import duckdb
import psycopg
from psycopg import sql

from dataproduct_operator.api.dataproduct import RunMode, Severity
from dataproduct_operator.runner import types
from dataproduct_operator.runner.report import CheckResult, RunReport, RunResult
from dataproduct_operator.runner.spec import (
    DEFAULT_REPORT_PATH,
    REPORT_PATH_ENV,
    RUN_SPEC_ENV,
    Check,
    FileFormat,
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
# The session every PostgreSQL read uses: the text forms DuckDB reads back exactly.
_READ_SESSION = (
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3; "
    "SET IntervalStyle = 'iso_8601'; SET bytea_output = 'hex'; "
    "SET default_transaction_read_only = on"
)


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
        self.db.execute("SET TimeZone = 'UTC'")

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
            self._gate(rows)
            self._watermark()
            if cleared is not None:
                cleared.result()
            self._publish(writer, target)

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
        if source.kind is SourceKind.PRODUCT:
            table = _given(source.table)
            query: sql.Composable = sql.SQL("SELECT * FROM {}").format(
                sql.Identifier(table.schema, table.name)
            )
        else:
            query = sql.SQL(
                _given(source.query).strip().rstrip(";")
            )  # the source's own SQL, read-only
        pipe = _fifo(self.files / f"source-{len(self.progress.rows_read)}.pipe")
        with (
            psycopg.connect(
                **conninfo(self.environ, _given(source.env_prefix)), autocommit=True
            ) as conn,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="dpo-read") as background,
        ):
            conn.execute(_READ_SESSION)
            described = conn.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(query))
            fields = [(column.name, column.type_code) for column in described.description or ()]
            lowered = [name.lower() for name, _ in fields]
            if len(set(lowered)) != len(lowered):
                raise RunFailedError(f"source {source.name}: its query returns a column name twice")
            copy = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv)").format(query)
            # PostgreSQL's rows stream through a pipe while DuckDB parses them.
            produced = background.submit(_copy_out, conn, copy, pipe)
            reader = types.csv_reader(str(pipe), fields)
            try:
                self.db.execute(f"CREATE TABLE {quote_ident(source.name)} AS {reader}")
            except duckdb.Error as error:
                _drain(pipe, produced)  # the COPY's thread ends, its own error coming first
                produced.result()
                raise RunFailedError(f"source {source.name}: {_first_line(error)}") from None
            produced.result()  # an interrupted COPY fails the run, whatever DuckDB got

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
        except OSError as error:  # urllib's errors are OSErrors; the URL is not repeated
            raise RunFailedError(f"source {name}: download failed: {error}") from None
        return str(path)

    def _close_to_the_outside(self) -> None:
        """From here on DuckDB runs the pipeline's SQL: only the run's directory stays open."""
        directory = quote_literal(str(self.files) + "/")
        self.db.execute(f"SET allowed_directories = [{directory}]")
        self.db.execute("SET enable_external_access = false")
        self.db.execute("SET lock_configuration = true")

    # --- 2. stage ------------------------------------------------------------------------

    def _stage(self) -> int:
        """The transform's rows cast to the port's types, as the output table's name; its rows."""
        began = time.monotonic()
        result = quote_ident("__dpo_result")
        transform = self.spec.sql.strip().rstrip(";")
        try:
            self.db.execute(f"CREATE TABLE {result} AS (\n{transform}\n)")
        except duckdb.Error as error:
            raise RunFailedError(f"the pipeline's SQL failed: {_first_line(error)}") from None
        produced = {row[0].lower(): row[0] for row in self._all(f"DESCRIBE {result}")}
        wanted = [column.name for column in self.spec.output.columns]
        missing = [name for name in wanted if name.lower() not in produced]
        extra = sorted(set(produced) - {name.lower() for name in wanted})
        if missing or extra:
            raise RunFailedError(
                f"the pipeline's SQL must return the columns of port {self.spec.output.port}"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (
                    f"; not in the port: {', '.join(produced[name] for name in extra)}"
                    if extra
                    else ""
                )
            )
        casts = [
            (column.name, types.duckdb_type(column.sql_type)) for column in self.spec.output.columns
        ]
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
                raise RunFailedError(
                    f"column {name}: {count} values do not convert to the port's type {kind}"
                )
        self.db.execute(
            f"CREATE TABLE {quote_ident(self.staged)} AS SELECT "
            + ", ".join(f"CAST({quote_ident(n)} AS {k}) AS {quote_ident(n)}" for n, k in casts)
            + f" FROM {result}"
        )
        self.db.execute(f"DROP TABLE {result}")
        (rows,) = self._one(f"SELECT count(*) FROM {quote_ident(self.staged)}")
        _say(
            self.out,
            f"staged {rows} rows for port {self.spec.output.port} "
            f"({time.monotonic() - began:.1f} s)",
        )
        return int(rows)

    # --- 3. the quality gate -----------------------------------------------------------

    def _gate(self, rows: int) -> None:
        results = self._contract_checks() + [self._check(check, rows) for check in self.spec.checks]
        self.progress.checks = results
        for check in results:
            verdict = "passed" if check.passed else f"FAILED ({check.severity})"
            _say(self.out, f"check {check.name}: {verdict}, {check.violations} violations")
        failed = tuple(c for c in results if not c.passed and c.severity == Severity.ERROR.value)
        if failed:
            raise ChecksFailedError(failed)

    def _contract_checks(self) -> list[CheckResult]:
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
        counts = self._one(
            f"SELECT {', '.join(e for _, e in plan)} FROM {quote_ident(self.staged)}"
        )
        return [
            CheckResult(name, Severity.ERROR.value, passed=count == 0, violations=int(count))
            for (name, _), count in zip(plan, counts, strict=True)
        ]

    def _check(self, check: Check, rows: int) -> CheckResult:
        staged = quote_ident(self.staged)
        if check.min_rows is not None:
            violations = max(0, check.min_rows - rows)
        elif check.max_null_fraction is not None:
            column = quote_ident(check.max_null_fraction.column)
            (nulls,) = self._one(f"SELECT count(*) - count({column}) FROM {staged}")
            violations = int(nulls)
            if rows and nulls / rows > check.max_null_fraction.fraction:
                return CheckResult(check.name, check.severity.value, False, violations)
            return CheckResult(check.name, check.severity.value, True, violations)
        elif check.freshness is not None:
            column = quote_ident(check.freshness.column)
            (newest,) = self._one(f"SELECT max(CAST({column} AS TIMESTAMPTZ)) FROM {staged}")
            age = None if newest is None else (self.clock() - newest).total_seconds()
            violations = 0 if age is not None and age <= check.freshness.max_age_seconds else 1
        else:
            violations = self._sql_check(_given(check.sql), check.name)
        return CheckResult(check.name, check.severity.value, violations == 0, violations)

    def _sql_check(self, query: str, name: str) -> int:
        try:
            found = self.db.execute(query.strip().rstrip(";")).fetchall()
        except duckdb.Error as error:
            raise RunFailedError(f"check {name}: its SQL failed: {_first_line(error)}") from None
        if len(found) != 1 or len(found[0]) != 1 or not isinstance(found[0][0], int):
            raise RunFailedError(
                f"check {name}: its SQL must return one row of one integer "
                "(the number of violating rows)"
            )
        return max(0, int(found[0][0]))

    # --- 4. publish ----------------------------------------------------------------------

    def _watermark(self) -> None:
        column = self.spec.output.freshness_column
        if column is not None:
            (newest,) = self._one(
                f"SELECT max(CAST({quote_ident(column)} AS TIMESTAMPTZ)) "
                f"FROM {quote_ident(self.staged)}"
            )
            self.progress.watermark = newest

    def _export(self, pipe: Path) -> None:
        """The staged rows into PIPE as the CSV PostgreSQL's COPY reads. The pipe is held open
        around DuckDB's COPY: its reader opens it even if DuckDB fails first, and reaches its
        end only once DuckDB is done."""
        exports = ", ".join(
            types.csv_export(quote_ident(c.name), c.sql_type) for c in self.spec.output.columns
        )
        with pipe.open("wb"):
            self.db.execute(
                f"COPY (SELECT {exports} FROM {quote_ident(self.staged)}) "
                f"TO {quote_literal(str(pipe))} (FORMAT csv, HEADER false)"
            )

    def _publish(self, writer: psycopg.Connection[Any], target: sql.Identifier) -> None:
        began = time.monotonic()
        output = self.spec.output
        names = [column.name for column in output.columns]
        column_list = sql.SQL(", ").join(map(sql.Identifier, names))
        pipe = _fifo(self.files / "publish.pipe")
        # DuckDB writes the rows into a pipe while PostgreSQL's COPY reads them.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dpo-export") as background:
            exported = background.submit(self._export, pipe)
            try:
                if self.spec.mode is RunMode.MERGE:
                    written = self._merge(writer, target, column_list, names, pipe)
                else:
                    written = _copy_in(writer, target, column_list, pipe)
            except BaseException:
                _drain(pipe, exported)  # DuckDB finishes; PostgreSQL's error is the run's
                raise
            exported.result()  # DuckDB stopping midway: the transaction is not committed
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
        column_list: sql.Composable,
        names: list[str],
        path: Path,
    ) -> int:
        # ON CONFLICT names one arbiter: the first unique column (each is unique on its own).
        key = self.spec.output.unique_columns[0]
        incoming = sql.Identifier("dpo_incoming")
        conn.execute(
            sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {}) ON COMMIT DROP").format(incoming, target)
        )
        _copy_in(conn, incoming, column_list, path)
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
        return tuple(_given(self.db.execute(query).fetchone()))

    def _all(self, query: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.db.execute(query).fetchall()]


def _given(value: T | None) -> T:
    """VALUE, which the spec's parser guarantees for this kind of source or check."""
    if value is None:
        raise RunFailedError("the run spec lacks a field its kind needs")
    return value


def _fifo(path: Path) -> Path:
    os.mkfifo(path, 0o600)
    return path


def _copy_out(conn: psycopg.Connection[Any], copy: sql.Composed, pipe: Path) -> None:
    """COPY's rows into PIPE. The pipe is opened first, whatever happens next, so its reader
    never waits for a writer that is not coming; closing it is the reader's end of file."""
    with pipe.open("wb") as sink, conn.cursor().copy(copy) as stream:
        for block in stream:
            sink.write(block)


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


def _copy_in(
    conn: psycopg.Connection[Any], target: sql.Identifier, column_list: sql.Composable, path: Path
) -> int:
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(target, column_list)
    with conn.cursor() as cursor:
        with cursor.copy(statement) as stream, path.open("rb") as file:
            while block := file.read(_CHUNK):
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
