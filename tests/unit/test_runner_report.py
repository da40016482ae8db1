"""The run report: its JSON within the kubelet's 4096 bytes whatever the run did, read back by
the operator; no credential in the report of a run that could not connect."""

from __future__ import annotations

import io
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dataproduct_operator.runner.engine import run_from_environment, scrub
from dataproduct_operator.runner.report import (
    MAX_REPORT_BYTES,
    CheckResult,
    ReportError,
    RunReport,
    RunResult,
)

START = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
PASSWORD = "s3cret-Writer-Pa55word"


def _report(
    checks: tuple[CheckResult, ...], error: str | None = None, seconds: float = 1.9
) -> RunReport:
    return RunReport(
        result=RunResult.FAILED if error else RunResult.SUCCEEDED,
        start_time=START,
        completion_time=START + timedelta(seconds=seconds),
        rows_read={"orders": 1234, "customers": 50},
        rows_written=1200,
        checks=checks,
        watermark=START - timedelta(minutes=1),
        error=error,
    )


def test_a_report_reads_back_as_it_was_written() -> None:
    report = _report((CheckResult("unique:order_id", "Error", True, 0),
                      CheckResult("enough", "Warning", False, 3)), seconds=2)  # fmt: skip
    text = report.to_json()
    document = json.loads(text)
    assert document["result"] == "Succeeded"
    assert document["durationSeconds"] == 2.0
    assert json.loads(_report(()).to_json())["durationSeconds"] == 1.9  # times in whole seconds
    assert document["startTime"] == "2026-11-29T23:00:00Z"
    assert document["watermark"] == "2026-11-29T22:59:00Z"
    assert document["error"] is None
    assert RunReport.from_json(text) == report


def test_a_report_of_500_long_checks_stays_within_4096_bytes_and_names_failures_first() -> None:
    checks = tuple(
        CheckResult(f"check-{i:03d}-" + "x" * 200, "Error", passed=i % 3 != 0, violations=i)
        for i in range(500)
    )
    report = _report(checks, error="checks failed: " + ", ".join(c.name for c in checks))
    text = report.to_json()
    assert len(text.encode()) <= MAX_REPORT_BYTES
    back = RunReport.from_json(text)
    assert back.result is RunResult.FAILED
    assert back.rows_read == {"orders": 1234, "customers": 50}
    assert back.checks, "some failed checks are still named"
    assert all(not check.passed for check in back.checks)
    assert back.checks[0].name.startswith("check-000-")
    assert back.checks_omitted == 500 - len(back.checks)
    assert back.error is not None
    assert len(back.error) <= 300


def test_a_report_with_thousands_of_sources_still_fits_as_their_total() -> None:
    report = RunReport(
        RunResult.SUCCEEDED, START, START, rows_read={f"source-{i}" * 5: i for i in range(2000)}
    )
    back = RunReport.from_json(report.to_json())
    assert back.rows_read == {"total": sum(range(2000))}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "must be a JSON object"),
        ('{"result": "Maybe"}', "result must be Succeeded or Failed"),
        ('{"result": "Failed", "startTime": "yesterday", "completionTime": "x"}', "startTime"),
        ('{"result": "Failed", "startTime": "2026-11-29T23:00:00Z",'
         ' "completionTime": "2026-11-29T23:00:01Z", "rowsWritten": -4}', "rowsWritten"),
    ],
)  # fmt: skip
def test_a_termination_message_that_is_no_report_is_a_report_error(text: str, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        RunReport.from_json(text)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SPEC = {
    "product": {"namespace": "sales", "name": "orders"},
    "pipeline": "build",
    "sql": "SELECT 1 AS id",
    "mode": "Replace",
    "output": {
        "port": "ids",
        "table": {"schema": "sales__orders", "name": "ids"},
        "columns": [{"name": "id", "type": "integer"}],
    },
}


def test_a_run_that_cannot_connect_fails_with_no_password_in_report_or_output(
    tmp_path: Path,
) -> None:
    report_path = tmp_path / "termination-log"
    environ = {
        "DPO_RUN_SPEC": json.dumps(SPEC),
        "DPO_REPORT_PATH": str(report_path),
        "PGHOST": "127.0.0.1",
        "PGPORT": str(_closed_port()),
        "PGUSER": "dm_sales__orders_writer",
        "PGPASSWORD": PASSWORD,
        "PGDATABASE": "datamesh",
    }
    out = io.StringIO()
    assert run_from_environment(environ, out) == 1
    written = report_path.read_text()
    report = RunReport.from_json(written)
    assert report.result is RunResult.FAILED
    assert report.error is not None
    assert "connection" in report.error
    assert report.rows_written == 0
    assert PASSWORD not in written
    assert PASSWORD not in out.getvalue()
    assert out.getvalue().splitlines()[-1] == f"report {written}"


def test_a_password_quoted_by_a_library_is_scrubbed_from_the_error() -> None:
    environ = {"INPUT_ORDERS_PGPASSWORD": PASSWORD, "PGPASSWORD": "other-Pa55word"}
    assert scrub(f'FATAL: bad password "{PASSWORD}"', environ) == 'FATAL: bad password "***"'
    assert scrub("other-Pa55word and more", environ) == "*** and more"


def test_a_bad_spec_exits_2_with_a_failed_report_naming_the_field(tmp_path: Path) -> None:
    report_path = tmp_path / "termination-log"
    environ = {"DPO_RUN_SPEC": json.dumps({**SPEC, "mode": "Upsert"}),
               "DPO_REPORT_PATH": str(report_path)}  # fmt: skip
    assert run_from_environment(environ, io.StringIO()) == 2
    report = RunReport.from_json(report_path.read_text())
    assert report.result is RunResult.FAILED
    assert report.error == "bad run spec: mode is 'Upsert'; use one of: Replace, Append, Merge"
