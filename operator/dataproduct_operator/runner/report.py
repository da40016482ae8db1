"""The run report: what a run did, as the compact JSON the operator reads back from the
container's termination message (layer ``runner``, pure).

The kubelet keeps at most 4096 bytes of a termination message and cuts the rest, which would
leave invalid JSON; :meth:`RunReport.to_json` therefore always returns at most
:data:`MAX_REPORT_BYTES`, trimming long names and the error first, then leaving out passed checks,
then failed ones (``checksOmitted`` counts what was left out; ``failedChecks`` in the error
still names them as far as it fits). Image pipelines may write the same JSON themselves, so
:meth:`RunReport.from_json` reads it defensively: a report it cannot read is a
:class:`ReportError`, never a crash of the operator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

MAX_REPORT_BYTES = 4096
# What a trimmed report keeps of a name and of the error.
_SHORT_NAME = 40
_SHORT_ERROR = 300


class ReportError(ValueError):
    """A termination message that is not a run report; the message says what is wrong."""


class RunResult(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class CheckResult:
    name: str
    severity: str  # Error | Warning
    passed: bool
    violations: int


@dataclass(frozen=True)
class RunReport:
    result: RunResult
    start_time: datetime
    completion_time: datetime
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_written: int = 0
    checks: tuple[CheckResult, ...] = ()
    watermark: datetime | None = None
    error: str | None = None
    checks_omitted: int = 0  # left out of ``checks`` to stay within the size bound

    @property
    def duration_seconds(self) -> float:
        return round((self.completion_time - self.start_time).total_seconds(), 3)

    @property
    def failed_checks(self) -> tuple[CheckResult, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "result": self.result.value,
            "startTime": _timestamp(self.start_time),
            "completionTime": _timestamp(self.completion_time),
            "durationSeconds": self.duration_seconds,
            "rowsRead": dict(self.rows_read),
            "rowsWritten": self.rows_written,
            "checks": [
                {
                    "name": c.name,
                    "severity": c.severity,
                    "passed": c.passed,
                    "violations": c.violations,
                }
                for c in self.checks
            ],
            "watermark": _timestamp(self.watermark) if self.watermark else None,
            "error": self.error,
        }
        if self.checks_omitted:
            document["checksOmitted"] = self.checks_omitted
        return document

    def to_json(self) -> str:
        """Compact JSON of at most :data:`MAX_REPORT_BYTES` bytes (UTF-8)."""
        for candidate in _trimmed(self):
            text = json.dumps(candidate.to_document(), separators=(",", ":"), ensure_ascii=True)
            if len(text) <= MAX_REPORT_BYTES:
                return text
        raise AssertionError("the last trimming step always fits")  # pragma: no cover

    @classmethod
    def from_json(cls, text: str) -> RunReport:
        """The report in a termination message; :class:`ReportError` when it is not one."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise ReportError(f"the run report is not JSON: {error.msg}") from None
        if not isinstance(document, dict):
            raise ReportError("the run report must be a JSON object")
        try:
            result = RunResult(str(document.get("result")))
        except ValueError:
            raise ReportError("the run report's result must be Succeeded or Failed") from None
        rows_read = document.get("rowsRead") or {}
        checks = document.get("checks") or []
        if not isinstance(rows_read, dict) or not isinstance(checks, list):
            raise ReportError("the run report's rowsRead must be an object and checks a list")
        try:
            return cls(
                result=result,
                start_time=_parse_time(document, "startTime"),
                completion_time=_parse_time(document, "completionTime"),
                rows_read={str(name): _count(rows, "rowsRead") for name, rows in rows_read.items()},
                rows_written=_count(document.get("rowsWritten", 0), "rowsWritten"),
                checks=tuple(_check(item) for item in checks),
                watermark=_parse_time(document, "watermark") if document.get("watermark") else None,
                error=str(document["error"]) if document.get("error") is not None else None,
                checks_omitted=_count(document.get("checksOmitted", 0), "checksOmitted"),
            )
        except (TypeError, KeyError, AttributeError) as error:
            raise ReportError(f"the run report is malformed: {error}") from None


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_time(document: dict[str, Any], key: str) -> datetime:
    value = document.get(key)
    if not isinstance(value, str):
        raise ReportError(f"the run report's {key} must be an RFC 3339 time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(
            f"the run report's {key} {value[:40]!r} is not an RFC 3339 time"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _count(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ReportError(f"the run report's {key} must hold counts (integers >= 0)")
    return value


def _check(item: Any) -> CheckResult:
    if not isinstance(item, dict):
        raise ReportError("each of the run report's checks must be an object")
    return CheckResult(
        name=str(item["name"]),
        severity=str(item.get("severity", "Error")),
        passed=bool(item["passed"]),
        violations=_count(item.get("violations", 0), "checks[].violations"),
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _trimmed(report: RunReport) -> list[RunReport]:
    """Ever smaller versions of REPORT; the last one always fits the bound."""
    short = replace(
        report,
        error=_shorten(report.error, _SHORT_ERROR) if report.error else None,
        checks=tuple(replace(c, name=_shorten(c.name, _SHORT_NAME)) for c in report.checks),
        rows_read={_shorten(name, _SHORT_NAME): rows for name, rows in report.rows_read.items()},
    )
    candidates = [report, short]
    # Passed checks go first, then failed ones from the end: the first failures stay named.
    failed = short.failed_checks
    for kept in _halvings(len(failed)):
        candidates.append(
            replace(short, checks=failed[:kept], checks_omitted=len(short.checks) - kept)
        )
    # Sources are at most 32 names of at most 40 characters: even all of them fit, but a
    # report read from an image pipeline could hold more; keep their total only then.
    candidates.append(
        replace(
            short,
            checks=(),
            checks_omitted=len(short.checks),
            rows_read={"total": sum(short.rows_read.values())} if short.rows_read else {},
        )
    )
    return candidates


def _halvings(count: int) -> list[int]:
    """COUNT, then ever smaller counts down to 0."""
    counts = [count]
    while counts[-1] > 0:
        counts.append(counts[-1] // 2 if counts[-1] > 8 else counts[-1] - 1)
    return counts
