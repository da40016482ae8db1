"""Reading what pipeline runs did, and what the store holds after them (layer ``reconcile``).

A run's report is the termination message of its pod's pipeline container. The operator lists a
product's pipeline pods only when a Job ended that its status does not show ended yet, so a
product whose runs are known costs no read. The operator may read pods only in the domains'
namespaces (the writer ClusterRole bound there), never elsewhere.

After a run ends (or the first time a port is placed), the rows and size of the product's store
tables are read from the store, in one catalog query; a store that cannot answer leaves the
figures as they were (its unavailability is StorageReady's to report).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from dataproduct_operator.api.conditions import DATA_HEALTHY, Condition, Reason
from dataproduct_operator.api.dataproduct import DataProduct, DataProductStatus, Freshness
from dataproduct_operator.constants import LABEL_PIPELINE, LABEL_PRODUCT
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.reconcile.outcome import NORMAL, WARNING, Note
from dataproduct_operator.reconcile.stores import StoreConnections
from dataproduct_operator.status.dataproduct import runs_to_read
from dataproduct_operator.status.health import TableStats, writers
from dataproduct_operator.status.placement import StoreChoice
from dataproduct_operator.status.runs import ObservedRun, observe_run, pods_of
from dataproduct_operator.stores.driver import StoreError
from dataproduct_operator.stores.inputs import product_ref

log = logging.getLogger(__name__)

POD = ("v1", "Pod")


async def observe_runs(
    client: KubeClient, product: DataProduct, jobs: list[dict[str, Any]]
) -> dict[str, ObservedRun]:
    """Each Job's run (by Job name), with the reports of the runs that ended since the status
    was written (their pods listed once for the product)."""
    pods: list[dict[str, Any]] = []
    if runs_to_read(product, jobs):
        pods = await client.list(
            KNOWN_RESOURCES[POD].path(product.namespace),
            label_selector=f"{LABEL_PRODUCT}={product.name},{LABEL_PIPELINE}",
        )
    runs = {}
    for job in jobs:
        metadata = job["metadata"]
        pipeline = (metadata.get("labels") or {}).get(LABEL_PIPELINE)
        if pipeline:
            runs[metadata["name"]] = observe_run(job, pods_of(job, pods), pipeline=pipeline)
    return runs


def stats_wanted(product: DataProduct, runs: Sequence[ObservedRun]) -> list[str]:
    """The placed store ports whose figures to read: written by a run that just ended, or
    never read yet."""
    ended = {run.pipeline for run in runs if run.finished}
    wanted = []
    for port in product.status.output_ports:
        if port.endpoint is None:
            continue
        written = ended & set(writers(product, port.name))
        if written or port.health is None:
            wanted.append(port.name)
    return wanted


async def read_table_stats(
    connections: StoreConnections | None,
    product: DataProduct,
    choice: StoreChoice,
    ports: list[str],
) -> dict[str, TableStats]:
    """Rows and size of ``ports``' tables, from the product's store; {} when it cannot say."""
    if connections is None or choice.store is None or not ports:
        return {}
    try:
        driver = await connections.driver(choice.store, recent=True)
        observation = await driver.observe(product_ref(product), ports)
    except StoreError as error:
        log.info("%s/%s: table figures not read: %s", product.namespace, product.name, error)
        return {}
    return {
        table.port: TableStats(table.rows, table.size_bytes)
        for table in observation.tables
        if table.exists
    }


def _condition(status: DataProductStatus, kind: str) -> Condition | None:
    return next((c for c in status.conditions if c.type == kind), None)


def health_notes(
    previous: DataProductStatus, current: DataProductStatus, runs: Sequence[ObservedRun]
) -> list[Note]:
    """Events of the data's health: a run whose checks failed (QualityCheckFailed), a report
    that is not one (RunReportUnreadable), a port turning Stale (FreshnessSLOMissed), and
    DataHealthy True again after False (Recovered)."""
    notes = []
    for run in runs:
        if not run.finished:
            continue
        if run.report is not None and run.report.failed_checks:
            errors = run.failed_error_checks
            warned = [c.name for c in run.report.failed_checks if c.name not in errors]
            parts = []
            if errors:
                parts.append(f"Error check(s) {', '.join(errors)} failed: nothing was published")
            if warned:
                parts.append(f"Warning check(s) {', '.join(warned)} failed: published anyway")
            message = f"Pipeline {run.pipeline} (Job {run.job_name}): " + "; ".join(parts)
            notes.append(Note(WARNING, Reason.QUALITY_CHECK_FAILED, message, with_status=True))
        if run.report_error:
            message = (
                f"Pipeline {run.pipeline} (Job {run.job_name}): its termination message is not "
                f"a run report: {run.report_error}"
            )
            notes.append(Note(WARNING, Reason.RUN_REPORT_UNREADABLE, message, with_status=True))
    before = {port.name: port.health for port in previous.output_ports}
    for port in current.output_ports:
        old = before.get(port.name)
        if port.health is None or port.health.freshness is not Freshness.STALE:
            continue
        if old is None or old.freshness is not Freshness.STALE:
            message = (
                f"Output port {port.name}: the data, last updated {port.health.last_updated}, "
                "is older than its freshness SLO"
            )
            notes.append(Note(WARNING, Reason.FRESHNESS_SLO_MISSED, message, with_status=True))
    was, now = _condition(previous, DATA_HEALTHY), _condition(current, DATA_HEALTHY)
    recovered = was is not None and now is not None and was.status.value == "False"
    if recovered and now is not None and now.status.value == "True":
        notes.append(Note(NORMAL, Reason.RECOVERED, now.message, with_status=True))
    return notes
