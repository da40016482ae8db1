"""What one pipeline run did, from its Job and its pods (layer ``status``, pure).

A run is a Job: on demand (``datamesh.dev/run``) or made by a pipeline's CronJob. Its outcome
comes from the Job's conditions, or, sooner, from its pod: a run's Job has one completion, so
its pipeline container ending with code 0 is the run succeeded (the Job controller marks the Job
Complete a second or two later, once the node has stopped the pod). What it did comes from the
run report its container left as its termination message (the built-in runner always writes one,
an image pipeline may). Why a run failed is said in words, in this order: the failed Error
checks of its report, the error of its report, the container killed for memory (OOMKilled), the
Job's deadline, the container's exit code. A termination message that is not a run report is
kept as ``report_error``: the run's result still counts, and the operator announces the
unreadable report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from dataproduct_operator.api.run_terms import Severity
from dataproduct_operator.constants import LABEL_PRODUCT, PIPELINE_CONTAINER
from dataproduct_operator.runner.report import ReportError, RunReport

# The annotation a CronJob sets on each Job it makes: when that run was scheduled.
SCHEDULED_AT_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
# How much of a container's own message (not a report) a failure reason quotes.
MAX_QUOTED = 200


class RunOutcome(StrEnum):
    """The values of :class:`~dataproduct_operator.api.dataproduct.RunStatus` a Job can have."""

    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class ObservedRun:
    """One run of a pipeline as its Job and its newest pod show it."""

    namespace: str
    product: str
    pipeline: str
    job_name: str
    job_uid: str  # a UUID: the run's identity outside the cluster (OpenLineage's runId)
    outcome: RunOutcome
    start_time: datetime | None
    completion_time: datetime | None
    nominal_time: datetime | None  # when a CronJob scheduled the run; None on demand
    report: RunReport | None
    failure: str | None  # why it failed, in words; None unless it failed
    report_error: str | None = None  # the termination message was not a run report

    @property
    def finished(self) -> bool:
        return self.outcome is not RunOutcome.RUNNING

    @property
    def failed_error_checks(self) -> tuple[str, ...]:
        """The Error-level checks that failed: the run published nothing."""
        if self.report is None:
            return ()
        return tuple(
            check.name
            for check in self.report.failed_checks
            if check.severity == Severity.ERROR.value
        )


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time of the API server, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _job_outcome(job: dict[str, Any]) -> tuple[RunOutcome, str | None, str | None]:
    """Outcome, completion time and, for a failed Job, the reason its condition gives."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            when = status.get("completionTime") or condition.get("lastTransitionTime")
            return RunOutcome.SUCCEEDED, when, None
        if condition.get("type") == "Failed":
            return RunOutcome.FAILED, condition.get("lastTransitionTime"), condition.get("reason")
    return RunOutcome.RUNNING, None, None


def _terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The terminated state of the pipeline container of ``pod``, if it ended."""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        if container.get("name") == PIPELINE_CONTAINER:
            state = container.get("state") or {}
            return state.get("terminated") or (container.get("lastState") or {}).get("terminated")
    return None


def _newest_ended(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The terminated state of the newest pod whose container ended (a Job with retries has
    several pods; the last attempt says how the run ended)."""
    ended = [
        (pod["metadata"].get("creationTimestamp") or "", state)
        for pod in pods
        if (state := _terminated(pod)) is not None
    ]
    return max(ended, key=lambda item: item[0])[1] if ended else None


def _succeeded(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The terminated state of the newest pod's pipeline container when it ended with code 0:
    the run succeeded, whether or not the Job controller has marked the Job yet."""
    newest = max(pods, key=lambda pod: pod["metadata"].get("creationTimestamp") or "", default=None)
    terminated = _terminated(newest) if newest is not None else None
    return terminated if terminated is not None and terminated.get("exitCode") == 0 else None


def _read_report(message: str | None) -> tuple[RunReport | None, str | None]:
    if not message or not message.strip():
        return None, None
    if not message.lstrip().startswith("{"):
        return None, None  # a container's own words (an image pipeline without a report)
    try:
        return RunReport.from_json(message), None
    except ReportError as error:
        return None, str(error)


def _failure(
    job_reason: str | None, terminated: dict[str, Any] | None, report: RunReport | None
) -> str:
    if report is not None:
        errors = [c.name for c in report.failed_checks if c.severity == Severity.ERROR.value]
        if errors:
            return "check(s) failed: " + ", ".join(errors) + "; nothing was published"
        if report.error:
            return report.error
    terminated = terminated or {}
    exit_code = terminated.get("exitCode")
    if terminated.get("reason") == "OOMKilled":
        failure = "OOMKilled: the container used more memory than its limit"
    elif job_reason == "DeadlineExceeded":
        failure = "DeadlineExceeded: the run took longer than its timeoutSeconds"
    elif exit_code not in (None, 0):
        words = (terminated.get("message") or "").strip()
        quoted = f": {words[:MAX_QUOTED]}" if words and not words.startswith("{") else ""
        failure = f"the container exited with code {exit_code}{quoted}"
    else:
        failure = f"{job_reason}: the Job failed" if job_reason else "the Job failed"
    return failure


def observe_run(job: dict[str, Any], pods: list[dict[str, Any]], *, pipeline: str) -> ObservedRun:
    """The run of ``job`` from the Job and its pods (``pods``: those of this Job)."""
    metadata = job.get("metadata") or {}
    outcome, completed, job_reason = _job_outcome(job)
    terminated = _newest_ended(pods) if outcome is not RunOutcome.RUNNING else _succeeded(pods)
    if outcome is RunOutcome.RUNNING and terminated is not None:
        outcome, completed = RunOutcome.SUCCEEDED, terminated.get("finishedAt")
    report, report_error = _read_report((terminated or {}).get("message"))
    failure = _failure(job_reason, terminated, report) if outcome is RunOutcome.FAILED else None
    annotations = metadata.get("annotations") or {}
    return ObservedRun(
        namespace=str(metadata.get("namespace") or ""),
        product=str((metadata.get("labels") or {}).get(LABEL_PRODUCT) or ""),
        pipeline=pipeline,
        job_name=str(metadata.get("name") or ""),
        job_uid=str(metadata.get("uid") or ""),
        outcome=outcome,
        start_time=parse_time((job.get("status") or {}).get("startTime")),
        completion_time=parse_time(completed),
        nominal_time=parse_time(annotations.get(SCHEDULED_AT_ANNOTATION)),
        report=report,
        failure=failure,
        report_error=report_error,
    )


def pods_of(job: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods the Job made (its controller uid), among the product's pipeline pods."""
    uid = (job.get("metadata") or {}).get("uid")
    return [
        pod
        for pod in pods
        if any(
            ref.get("uid") == uid and ref.get("kind") == "Job"
            for ref in (pod.get("metadata") or {}).get("ownerReferences") or []
        )
    ]
