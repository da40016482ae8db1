"""The status of a DataProduct from its spec and its observed children (layer ``status``, pure).

``compute_status`` is a function of the product, the children as observed after reconcile,
the failures reconcile met and the previous status; it never reads a clock except through
``now``. A condition keeps its ``lastTransitionTime`` while its status does not change, and
pipeline run times are never forgotten when the Jobs that showed them are cleaned up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from dataproduct_operator.api.conditions import (
    ACCESS_READY,
    INPUTS_READY,
    MONITORING_READY,
    PIPELINES_READY,
    READY,
    STORAGE_READY,
    Condition,
    Reason,
)
from dataproduct_operator.api.dataproduct import (
    DataProduct,
    DataProductStatus,
    LastRun,
    PipelineStatus,
    PortStatus,
    ProductAccessStatus,
    RunChecks,
    RunStatus,
    Toggle,
)
from dataproduct_operator.api.naming import (
    claim_name,
    connection_config_map_name,
    cronjob_name,
    owner_role_name,
    prometheus_rule_name,
    reader_role_name,
)
from dataproduct_operator.api.quantity import parse_quantity
from dataproduct_operator.constants import LABEL_PIPELINE, LABEL_RUN
from dataproduct_operator.status.conditions import (
    Aspect,
    Stamp,
    build_condition,
    build_conditions,
)
from dataproduct_operator.status.health import (
    TableStats,
    data_healthy_condition,
    format_time,
    port_health,
)
from dataproduct_operator.status.runs import ObservedRun, parse_time
from dataproduct_operator.status.stores import (
    InputCheck,
    StoreResult,
    inputs_aspect,
    readers_outside_mesh_message,
    store_storage,
)

ASPECTS = (STORAGE_READY, PIPELINES_READY, ACCESS_READY, MONITORING_READY, INPUTS_READY)


@dataclass(frozen=True)
class Observed:
    """Children as they are now, keyed by (kind, name); Jobs of the product's pipelines; the
    runs of the Jobs that ended since the previous status, read from their pods (by Job name);
    the store's figures of the placed ports' tables, when read this pass (by port)."""

    children: dict[tuple[str, str], dict[str, Any]]
    jobs: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, ObservedRun] = field(default_factory=dict)
    stats: dict[str, TableStats] = field(default_factory=dict)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.children.get((kind, name))


@dataclass(frozen=True)
class Failures:
    """What reconcile could not do, per aspect (condition type) -> message: failed applies,
    and children whose name another product's object holds (``conflicts``)."""

    by_aspect: dict[str, str] = field(default_factory=dict)
    conflicts: dict[str, str] = field(default_factory=dict)


def _storage(
    product: DataProduct, observed: Observed, store: StoreResult | None
) -> tuple[bool, str, str, list[PortStatus]]:
    """StorageReady and the ports' status: the volume ports' claims, and the store ports as
    the store part of the reconcile found them (``store``)."""
    volume_ok, volume_reason, volume_message, volume_ports = _volumes(product, observed, store)
    if store is None:
        return volume_ok, volume_reason, volume_message, volume_ports
    by_name = {port.name: port for port in volume_ports}
    for port in store.choice.store_ports:
        by_name[port] = store.ports.get(port) or PortStatus(name=port, phase="Pending")
    ports = [by_name[port.name] for port in product.spec.output_ports if port.name in by_name]
    in_store = store_storage(store)
    if in_store is None:
        return volume_ok, volume_reason, volume_message, ports
    if not volume_ports:
        return (*in_store, ports)
    if not in_store[0]:
        return (*in_store, ports)
    if not volume_ok:
        return volume_ok, volume_reason, volume_message, ports
    return True, in_store[1], f"{in_store[2]}; {volume_message}", ports


def _volumes(
    product: DataProduct, observed: Observed, store: StoreResult | None
) -> tuple[bool, str, str, list[PortStatus]]:
    ports = []
    problems: list[str] = []
    notes: list[str] = []
    in_store = store.choice.store_ports if store else ()
    for port in product.spec.output_ports:
        if port.name in in_store:
            continue
        name = claim_name(product.name, port.name)
        claim = observed.get("PersistentVolumeClaim", name)
        phase = "Missing" if claim is None else claim.get("status", {}).get("phase", "Pending")
        capacity = (
            None if claim is None else claim.get("status", {}).get("capacity", {}).get("storage")
        )
        ports.append(PortStatus(name=port.name, claim_name=name, phase=phase, capacity=capacity))
        if phase != "Bound":
            problems.append(f"claim {name} is {phase}")
        requested = (claim or {}).get("spec", {}).get("resources", {}).get("requests", {})
        kept = requested.get("storage")
        if kept and parse_quantity(kept) > parse_quantity(port.volume.size):
            notes.append(
                f"claim {name} keeps {kept}: a claim never shrinks (spec asks {port.volume.size})"
            )
    if problems:
        return False, Reason.CLAIMS_NOT_BOUND, "; ".join(problems + notes), ports
    return True, Reason.CLAIMS_BOUND, "; ".join([f"{len(ports)} volume(s) bound", *notes]), ports


def _moment(now: str) -> datetime:
    moment = parse_time(now)
    if moment is None:
        raise ValueError(f"now must be an RFC 3339 time, not {now!r}")
    return moment


def job_state(job: dict[str, Any]) -> tuple[RunStatus, str | None]:
    """The run status of one Job and when it reached it."""
    for condition in job.get("status", {}).get("conditions", []):
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            when = job["status"].get("completionTime") or condition.get("lastTransitionTime")
            return RunStatus.SUCCEEDED, when
        if condition.get("type") == "Failed":
            return RunStatus.FAILED, condition.get("lastTransitionTime")
    return RunStatus.RUNNING, job.get("status", {}).get("startTime")


def _latest(times: Iterable[str | None]) -> str | None:
    present = [t for t in times if t]
    return max(present) if present else None


def _last_run_id(jobs: list[dict[str, Any]], old: PipelineStatus | None) -> str | None:
    """The run id of the newest on-demand run Job (``jobs`` oldest first), else as before."""
    for job in reversed(jobs):
        run_id = (job["metadata"].get("labels") or {}).get(LABEL_RUN)
        if run_id:
            return str(run_id)
    return old.last_run_id if old else None


def _jobs_by_pipeline(observed: Observed) -> dict[str, list[dict[str, Any]]]:
    """Each pipeline's Jobs, oldest first."""
    jobs: dict[str, list[dict[str, Any]]] = {}
    for job in sorted(observed.jobs, key=lambda j: j["metadata"].get("creationTimestamp", "")):
        pipeline = job["metadata"].get("labels", {}).get(LABEL_PIPELINE)
        if pipeline:
            jobs.setdefault(pipeline, []).append(job)
    return jobs


def _seen(run: ObservedRun, old: LastRun | None) -> bool:
    """Whether the previous status already holds ``run`` as it is now."""
    return (
        old is not None
        and old.job_name == run.job_name
        and (old.result is not RunStatus.RUNNING or not run.finished)
    )


def new_runs(product: DataProduct, observed: Observed) -> list[ObservedRun]:
    """The newest run of each pipeline, when it started or ended since the previous status."""
    before = {p.name: p.last_run for p in product.status.pipelines}
    found = []
    for pipeline, jobs in _jobs_by_pipeline(observed).items():
        run = observed.runs.get(jobs[-1]["metadata"]["name"])
        if run is not None and not _seen(run, before.get(pipeline)):
            found.append(run)
    return found


def _pod_may_have_ended(job: dict[str, Any]) -> bool:
    """Whether a running Job's pod is not ready: not started yet, or its container ended (the
    Job controller counts a pod not ready a second after its container ends, before it marks
    the Job ended once the node has stopped the pod)."""
    status = job.get("status") or {}
    return (status.get("active") or 0) >= 1 and status.get("ready") == 0


def runs_to_read(product: DataProduct, jobs: list[dict[str, Any]]) -> bool:
    """Whether a Job may have ended that the status does not show ended yet: its pods hold the
    report (a running Job's pod that is not ready may have ended: see
    :func:`_pod_may_have_ended`)."""
    before = {p.name: p.last_run for p in product.status.pipelines}
    for pipeline, own in _jobs_by_pipeline(Observed({}, jobs)).items():
        newest = own[-1]
        old = before.get(pipeline)
        if (
            old
            and old.job_name == newest["metadata"]["name"]
            and old.result is not RunStatus.RUNNING
        ):
            continue  # shown ended already
        if job_state(newest)[0] is not RunStatus.RUNNING or _pod_may_have_ended(newest):
            return True
    return False


def _time_text(moment: datetime | None) -> str | None:
    return format_time(moment) if moment else None


def last_run_of(run: ObservedRun) -> LastRun:
    """What the status shows of a run."""
    report = run.report
    checks = None
    if report is not None and (report.checks or report.checks_omitted):
        failed = report.failed_checks
        checks = RunChecks(
            passed=len(report.checks) - len(failed),
            failed=len(failed),
            failed_names=[check.name for check in failed],
            failed_errors=len(run.failed_error_checks),
        )
    message = run.failure
    if run.report_error:
        unreadable = f"the run report could not be read: {run.report_error}"
        message = f"{message}; {unreadable}" if message else unreadable
    return LastRun(
        job_name=run.job_name,
        start_time=_time_text(report.start_time if report else run.start_time),
        completion_time=_time_text(
            (report.completion_time if report else None) or run.completion_time
        )
        if run.finished
        else None,
        result=RunStatus(run.outcome.value),
        rows_written=report.rows_written if report else None,
        checks=checks,
        message=message,
    )


def _newest_state(
    job: dict[str, Any], state: tuple[RunStatus, str | None], last_run: LastRun | None
) -> tuple[RunStatus, str | None]:
    """The newest Job's run status and when it reached it: as its last run shows it once the
    run ended, whether its pod told first or the Job (one time for a run, so the status does
    not change again when the Job controller marks the Job a moment after its pod ended)."""
    if last_run is None or last_run.job_name != job["metadata"]["name"]:
        return state
    if last_run.result is RunStatus.RUNNING:
        return state
    return last_run.result, last_run.completion_time or state[1]


def _unrunnable(product: DataProduct, store: StoreResult | None) -> list[str]:
    """The sql pipelines that can never run as declared: their output port is a volume."""
    in_store = set(store.choice.store_ports) if store else set()
    return [
        f"sql pipeline {p.name} writes port {p.output}, which is a volume: a sql pipeline "
        f"writes a table; give port {p.output} a store (spec.outputPorts[].store) or register "
        "a default DataStore"
        for p in product.spec.pipelines
        if p.sql is not None and p.output is not None and p.output not in in_store
    ]


def _pipelines(
    product: DataProduct,
    observed: Observed,
    previous: DataProductStatus,
    store: StoreResult | None = None,
) -> tuple[bool, str, str, list[PipelineStatus]]:
    before = {p.name: p for p in previous.pipelines}
    by_pipeline = _jobs_by_pipeline(observed)
    statuses = []
    problems = []
    for pipeline in product.spec.pipelines:
        jobs = by_pipeline.get(pipeline.name, [])
        states = [job_state(job) for job in jobs]
        old = before.get(pipeline.name)
        last_run = old.last_run if old else None
        if jobs:
            run = observed.runs.get(jobs[-1]["metadata"]["name"])
            if run is not None and not _seen(run, last_run):
                last_run = last_run_of(run)
            states[-1] = _newest_state(jobs[-1], states[-1], last_run)
        scheduled = pipeline.schedule is not None
        cronjob = (
            observed.get("CronJob", cronjob_name(product.name, pipeline.name))
            if scheduled
            else None
        )
        cron_status = (cronjob or {}).get("status", {})
        last_state = (
            states[-1][0] if states else (old.last_run_status if old else RunStatus.NEVER_RUN)
        )
        status = PipelineStatus(
            name=pipeline.name,
            kind="CronJob" if scheduled else "Job",
            object_name=cronjob_name(product.name, pipeline.name)
            if scheduled
            else (
                jobs[-1]["metadata"]["name"]
                if jobs
                else (old.object_name if old and old.kind == "Job" else None)
            ),
            last_schedule_time=_latest(
                [
                    cron_status.get("lastScheduleTime"),
                    *(j.get("status", {}).get("startTime") for j in jobs),
                    old.last_schedule_time if old else None,
                ]
            ),
            last_successful_time=_latest(
                [
                    cron_status.get("lastSuccessfulTime"),
                    *(when for s, when in states if s is RunStatus.SUCCEEDED),
                    old.last_successful_time if old else None,
                ]
            ),
            last_failure_time=_latest(
                [
                    *(when for s, when in states if s is RunStatus.FAILED),
                    old.last_failure_time if old else None,
                ]
            ),
            last_run_status=last_state,
            last_run_id=_last_run_id(jobs, old),
            last_run=last_run,
        )
        statuses.append(status)
        # A failed run is the data's trouble, not the pipeline's placement: DataHealthy
        # reports it (RunsFailing / ChecksFailing), so Ready keeps meaning provisioned.
        if scheduled and cronjob is None:
            problems.append(f"CronJob {cronjob_name(product.name, pipeline.name)} is missing")
    unrunnable = _unrunnable(product, store)
    if unrunnable:
        return False, Reason.OUTPUT_NOT_A_TABLE, "; ".join(unrunnable + problems), statuses
    if problems:
        return False, Reason.CRONJOB_MISSING, "; ".join(problems), statuses
    if not product.spec.pipelines:
        return True, Reason.NO_PIPELINES, "no pipelines declared", statuses
    return True, Reason.PIPELINES_SCHEDULED, f"{len(statuses)} pipeline(s) in place", statuses


def _health(
    product: DataProduct,
    observed: Observed,
    ports: list[PortStatus],
    pipelines: list[PipelineStatus],
    now: datetime,
) -> tuple[list[PortStatus], Condition]:
    """The ports with their health, and DataHealthy."""
    before = {port.name: port.health for port in product.status.output_ports}
    runs = new_runs(product, observed)
    spec_ports = {port.name: port for port in product.spec.output_ports}
    healthy = {}
    for port in ports:
        if port.name in spec_ports:
            healthy[port.name] = port_health(
                product,
                spec_ports[port.name],
                previous=before.get(port.name),
                new_runs=runs,
                pipelines=pipelines,
                stats=observed.stats.get(port.name),
                now=now,
            )
    with_health = [port.model_copy(update={"health": healthy.get(port.name)}) for port in ports]
    return with_health, data_healthy_condition(product, healthy, pipelines, now)


def _access(
    product: DataProduct,
    observed: Observed,
    store: StoreResult | None,
    access: ProductAccessStatus | None,
) -> tuple[bool, str, str]:
    readers = access.readers if access is not None else product.spec.access.readers
    expected = [
        ("Role", reader_role_name(product.name)),
        ("Role", owner_role_name(product.name)),
        ("RoleBinding", owner_role_name(product.name)),
        ("ConfigMap", connection_config_map_name(product.name)),
    ]
    if readers:
        expected.append(("RoleBinding", reader_role_name(product.name)))
    missing = [f"{kind} {name}" for kind, name in expected if observed.get(kind, name) is None]
    if missing:
        return False, Reason.ACCESS_MISSING, "missing " + ", ".join(missing)
    if store is not None and store.readers_outside_mesh:
        message = readers_outside_mesh_message(store.readers_outside_mesh)
        return False, Reason.READER_OUTSIDE_MESH, message
    return (
        True,
        Reason.ACCESS_GRANTED,
        f"{len(readers)} reader(s) granted; connection details published",
    )


def _monitoring(
    product: DataProduct, observed: Observed, prometheus: bool
) -> tuple[bool, str, str]:
    if product.spec.monitoring.alerts is Toggle.DISABLED:
        return True, Reason.ALERTS_DISABLED, "alerts are disabled; metrics are still exported"
    if not prometheus:
        return (
            True,
            Reason.PROMETHEUS_OPERATOR_NOT_INSTALLED,
            "metrics are exported; alert rules need the PrometheusRule kind "
            "(monitoring.coreos.com/v1), which this cluster does not serve",
        )
    wants_rule = product.spec.pipelines or any(
        p.slo and p.slo.freshness for p in product.spec.output_ports
    )
    if wants_rule and observed.get("PrometheusRule", prometheus_rule_name(product.name)) is None:
        return False, Reason.ALERT_RULES_MISSING, f"PrometheusRule {product.name} is missing"
    return True, Reason.ALERT_RULES_IN_PLACE, "alerting on staleness and failed runs"


def compute_status(
    product: DataProduct,
    observed: Observed,
    *,
    failures: Failures,
    prometheus_available: bool,
    now: str,
    store: StoreResult | None = None,
    inputs: list[InputCheck] | None = None,
    access: ProductAccessStatus | None = None,
) -> DataProductStatus:
    """The whole status for the product's current generation. ``store``: what the store part
    of the reconcile found (None: the product has no store ports); ``inputs``: its inputs from
    other products, checked; ``access``: its effective readers, pending access requests and
    their audit trail (None: the spec's readers only, and none of that in the status)."""
    previous = {c.type: c for c in product.status.conditions}
    storage_ok, storage_reason, storage_message, ports = _storage(product, observed, store)
    pipelines_ok, pipelines_reason, pipelines_message, pipelines = _pipelines(
        product, observed, product.status, store
    )
    aspects = {
        STORAGE_READY: (storage_ok, storage_reason, storage_message),
        PIPELINES_READY: (pipelines_ok, pipelines_reason, pipelines_message),
        ACCESS_READY: _access(product, observed, store, access),
        MONITORING_READY: _monitoring(product, observed, prometheus_available),
        INPUTS_READY: inputs_aspect(inputs or []),
    }
    for aspect, message in failures.by_aspect.items():
        aspects[aspect] = (False, Reason.APPLY_FAILED, message)
    for aspect, message in failures.conflicts.items():
        failed = failures.by_aspect.get(aspect)
        aspects[aspect] = (False, Reason.NAME_CONFLICT, "; ".join(filter(None, [message, failed])))
    stamp = Stamp(product.generation, previous, now)
    conditions = build_conditions(
        {kind: Aspect(*state) for kind, state in aspects.items()},
        stamp,
        ready="all children are in place",
    )
    ports, data_healthy = _health(product, observed, ports, pipelines, _moment(now))
    conditions.append(data_healthy)
    rotation, rotated_at = (
        product.status.credentials_rotation,
        product.status.credentials_rotated_at,
    )
    if store is not None and store.rotated_at is not None:
        rotation, rotated_at = store.rotation, store.rotated_at
    return DataProductStatus(
        observed_generation=product.generation,
        conditions=conditions,
        output_ports=ports,
        pipelines=pipelines,
        credentials_rotation=rotation,
        credentials_rotated_at=rotated_at,
        access=access,
    )


class Mismatch(NamedTuple):
    """Why a product is not provisioned where it is: a reason of Ready and what to change."""

    reason: str
    message: str


def find_domain_mismatch(product: DataProduct, namespace_domain: str | None) -> Mismatch | None:
    """Why the product does not belong where it is, or None when it does: its namespace must
    be held by a DataDomain (``namespace_domain``; the operator may write only there), and
    ``spec.domain`` must name that domain."""
    where = f"namespace {product.namespace}"
    if namespace_domain is None:
        return Mismatch(
            Reason.NAMESPACE_NOT_IN_MESH,
            f"{where} belongs to no DataDomain, and the operator writes only in domains' "
            f"namespaces: create a DataDomain for namespace {product.namespace} (the domain "
            f"{product.spec.domain}, spec.namespace {product.namespace}) or move the product to "
            "its domain's namespace; nothing is created until then",
        )
    if namespace_domain != product.spec.domain:
        return Mismatch(
            Reason.DOMAIN_MISMATCH,
            f"spec.domain is {product.spec.domain}, but {where} belongs to the DataDomain "
            f"{namespace_domain}: set spec.domain to {namespace_domain} or move the product to "
            f"the namespace of {product.spec.domain}; nothing is created until then",
        )
    return None


def not_onboarded(product: DataProduct, domain: str) -> Mismatch:
    """The product's domain holds its namespace but has not bound the operator there yet."""
    return Mismatch(
        Reason.NAMESPACE_NOT_IN_MESH,
        f"namespace {product.namespace} is not onboarded yet: the DataDomain {domain} has not "
        "bound the operator there (its Ready condition says why); nothing is created until then",
    )


def compute_mismatch_status(
    product: DataProduct, mismatch: Mismatch, *, now: str
) -> DataProductStatus:
    """Not Ready, with the mismatch's reason, for the current generation; the rest as it was
    (the operator neither creates nor deletes anything for such a product)."""
    stamp = Stamp(product.generation, {c.type: c for c in product.status.conditions}, now)
    ready = build_condition(READY, Aspect(False, mismatch.reason, mismatch.message), stamp)
    others = [c for c in product.status.conditions if c.type != READY]
    return product.status.model_copy(
        update={"conditions": [ready, *others], "observed_generation": product.generation}
    )


@dataclass(frozen=True)
class RunEvent:
    """A pipeline run that ended since the previous status, to announce as an Event."""

    warning: bool
    reason: str
    message: str


def compute_run_events(previous: DataProductStatus, current: DataProductStatus) -> list[RunEvent]:
    """RunFailed for every failure time that is new in ``current``; RunSucceeded for a new
    success after a failure (a routine success is the status's to show, not an Event's: an
    Event is a write, and the Job carries the Job controller's own)."""
    before = {pipeline.name: pipeline for pipeline in previous.pipelines}
    events = []
    for pipeline in current.pipelines:
        old = before.get(pipeline.name, PipelineStatus(name=pipeline.name, kind=pipeline.kind))
        where = f"{pipeline.kind} {pipeline.object_name}" if pipeline.object_name else pipeline.kind
        if pipeline.last_failure_time and pipeline.last_failure_time != old.last_failure_time:
            message = f"Pipeline {pipeline.name} failed at {pipeline.last_failure_time} ({where})"
            events.append(RunEvent(True, Reason.RUN_FAILED, message))
        failed, succeeded = old.last_failure_time, old.last_successful_time
        recovered = failed is not None and (succeeded is None or failed > succeeded)
        if (
            recovered
            and pipeline.last_successful_time
            and pipeline.last_successful_time != old.last_successful_time
        ):
            message = (
                f"Pipeline {pipeline.name} succeeded at {pipeline.last_successful_time} ({where})"
            )
            events.append(RunEvent(False, Reason.RUN_SUCCEEDED, message))
    return events
