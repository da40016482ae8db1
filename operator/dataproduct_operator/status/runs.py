"""What one pipeline run did, as the operator observed it (layer ``status``, pure).

A run is a Job: on demand (``datamesh.dev/run``) or made by a pipeline's CronJob. Its outcome
comes from the Job's conditions; what it did comes from the run report its container left as
its termination message (the built-in runner always writes one, an image pipeline may).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dataproduct_operator.runner.report import RunReport


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
    report: RunReport | None  # from the pod's termination message
    failure: str | None  # why it failed, in words; None unless it failed
