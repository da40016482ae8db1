"""How trustworthy a product's data is: each port's health and ``DataHealthy`` (layer
``status``, pure).

A port is written by the sql pipelines whose ``output`` it is and by every image pipeline (an
image pipeline may write any port it mounts or is granted). Its data's age (``lastUpdated``) is
the watermark of the newest successful run that wrote it: the newest ``slo.freshnessColumn``
value the run published, else the time it published; a run without a report (an image pipeline
that writes none) counts by its completion time. Its checks are those of the newest run that
reported any: Failing when an Error check failed (nothing was published then), Passing
otherwise; a Warning check never fails them. Freshness is Met or Stale against
``slo.freshness`` at ``now``, so the same status turns Stale as time passes:
:func:`next_health_check` says when to look again.

``DataHealthy`` is kept apart from ``Ready`` (provisioned). False, by the first that applies:
``ChecksFailing``, ``RunsFailing`` (a run failed for another reason: OOMKilled, deadline, error),
``Stale``; the message names every port and pipeline concerned and the SLO. Unknown
(``NoDataYet``) until a run or an SLO gives something to judge; True (``Healthy``) otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dataproduct_operator.api.conditions import DATA_HEALTHY, Condition, Reason
from dataproduct_operator.api.dataproduct import (
    ChecksState,
    DataProduct,
    DataProductStatus,
    Freshness,
    OutputPort,
    PipelineStatus,
    PortHealth,
    RunStatus,
)
from dataproduct_operator.api.quantity import duration_seconds
from dataproduct_operator.status.conditions import Aspect, Stamp, build_condition
from dataproduct_operator.status.runs import ObservedRun, RunOutcome

# Look again at most this long after a status with a freshness SLO, whatever its age says: a
# bound on how long a missed wake-up could hide staleness.
MAX_HEALTH_RECHECK_SECONDS = 3600.0


@dataclass(frozen=True)
class TableStats:
    """What the store says of a port's table."""

    rows: int | None
    size_bytes: int | None


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def writers(product: DataProduct, port: str) -> list[str]:
    """The pipelines that write ``port``: sql pipelines naming it, and every image pipeline."""
    return [p.name for p in product.spec.pipelines if p.sql is None or p.output == port]


def _written_by(product: DataProduct, pipeline: str) -> list[str]:
    """The ports ``pipeline`` writes."""
    return [
        port.name for port in product.spec.output_ports if pipeline in writers(product, port.name)
    ]


def _watermark(run: ObservedRun) -> datetime | None:
    if run.report is not None:
        return run.report.watermark or run.report.completion_time
    return run.completion_time


def _freshness(port: OutputPort, last_updated: datetime | None, now: datetime) -> Freshness:
    if port.slo is None or port.slo.freshness is None or last_updated is None:
        return Freshness.UNKNOWN
    limit = duration_seconds(port.slo.freshness)
    return Freshness.STALE if (now - last_updated).total_seconds() > limit else Freshness.MET


def port_health(
    product: DataProduct,
    port: OutputPort,
    *,
    previous: PortHealth | None,
    new_runs: Sequence[ObservedRun],
    pipelines: Sequence[PipelineStatus],
    stats: TableStats | None,
    now: datetime,
) -> PortHealth:
    """The health of ``port`` after the runs that ended since the previous status
    (``new_runs``), with the store's figures (``stats``; None: as before)."""
    wrote = set(writers(product, port.name))
    runs = [run for run in new_runs if run.pipeline in wrote and run.finished]
    previous = previous or PortHealth()
    published = [
        when for run in runs if run.outcome is RunOutcome.SUCCEEDED and (when := _watermark(run))
    ]
    last_updated = max(published) if published else _time(previous.last_updated)
    if last_updated is None:  # runs seen only through a CronJob's status, before any report
        known = [_time(p.last_successful_time) for p in pipelines if p.name in wrote]
        last_updated = max((t for t in known if t), default=None)
    checked = [run for run in runs if run.report is not None and run.report.checks]
    checks = previous.checks
    if checked:
        newest = max(checked, key=lambda run: run.completion_time or now)
        checks = ChecksState.FAILING if newest.failed_error_checks else ChecksState.PASSING
    return PortHealth(
        rows=stats.rows if stats else previous.rows,
        size_bytes=stats.size_bytes if stats else previous.size_bytes,
        last_updated=format_time(last_updated) if last_updated else None,
        freshness=_freshness(port, last_updated, now),
        checks=checks,
    )


def _age(seconds: float) -> str:
    """``2h5m``, ``3d4h``, ``12m``, ``40s``."""
    seconds = int(seconds)
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else f"{seconds}s"


def data_healthy_aspect(
    product: DataProduct,
    healths: dict[str, PortHealth],
    pipelines: Sequence[PipelineStatus],
    now: datetime,
) -> Aspect:
    """``DataHealthy``'s status, reason and message."""
    checks, runs, stale = [], [], []
    by_name = {p.name: p for p in pipelines}
    for port in product.spec.output_ports:
        health = healths.get(port.name)
        if health is None:
            continue
        if health.checks is ChecksState.FAILING:
            failed = sorted(
                {
                    name
                    for pipeline in writers(product, port.name)
                    if (last := by_name.get(pipeline)) and last.last_run and last.last_run.checks
                    for name in last.last_run.checks.failed_names
                }
            )
            named = f" ({', '.join(failed)})" if failed else ""
            checks.append(f"port {port.name}: checks failing{named}; the previous data is kept")
        if health.freshness is Freshness.STALE and port.slo and port.slo.freshness:
            updated = _time(health.last_updated)
            age = _age((now - updated).total_seconds()) if updated else "unknown"
            stale.append(
                f"port {port.name}: last updated {health.last_updated} ({age} ago), older than "
                f"its freshness SLO of {port.slo.freshness}"
            )
    failing_ports = {name for name, h in healths.items() if h.checks is ChecksState.FAILING}
    for pipeline in pipelines:
        run = pipeline.last_run
        # A status written before runs were read holds only lastRunStatus: a failure there
        # still counts, so no failed run goes unreported once PipelinesReady ignores runs.
        result = run.result if run is not None else pipeline.last_run_status
        if result is not RunStatus.FAILED:
            continue
        if failing_ports & set(_written_by(product, pipeline.name)):
            continue  # its checks failed: counted with the ports' checks
        why = (run.message if run is not None else None) or "the Job failed"
        runs.append(f"pipeline {pipeline.name}: the last run failed: {why}")
    problems = checks + runs + stale
    if problems:
        reason = Reason.CHECKS_FAILING if checks else Reason.RUNS_FAILING if runs else Reason.STALE
        return Aspect(False, reason, "; ".join(problems))
    judged = [h for h in healths.values() if h.freshness is not Freshness.UNKNOWN or h.last_updated]
    ran = any(p.last_run is not None for p in pipelines)
    if not judged and not ran:
        if not product.spec.pipelines and not any(
            p.slo and p.slo.freshness for p in product.spec.output_ports
        ):
            return Aspect(True, Reason.DATA_HEALTHY, "no pipelines and no freshness SLO to check")
        return Aspect(None, Reason.NO_DATA_YET, "no run has published or checked data yet")
    fresh = sum(1 for h in healths.values() if h.freshness is Freshness.MET)
    passing = sum(1 for h in healths.values() if h.checks is ChecksState.PASSING)
    return Aspect(
        True,
        Reason.DATA_HEALTHY,
        f"{fresh} port(s) within their freshness SLO, {passing} passing their checks; "
        "the last runs succeeded",
    )


def data_healthy_condition(
    product: DataProduct,
    healths: dict[str, PortHealth],
    pipelines: Sequence[PipelineStatus],
    now: datetime,
) -> Condition:
    stamp = Stamp(
        product.generation, {c.type: c for c in product.status.conditions}, format_time(now)
    )
    return build_condition(
        DATA_HEALTHY, data_healthy_aspect(product, healths, pipelines, now), stamp
    )


def next_health_check(
    product: DataProduct, status: DataProductStatus, now: datetime
) -> float | None:
    """Seconds until the first port within its freshness SLO turns Stale (and a little more),
    at most :data:`MAX_HEALTH_RECHECK_SECONDS`; None when no port can turn Stale by time."""
    slos = {
        p.name: duration_seconds(p.slo.freshness)
        for p in product.spec.output_ports
        if p.slo and p.slo.freshness
    }
    waits = []
    for port in status.output_ports:
        updated = _time(port.health.last_updated) if port.health else None
        if port.name not in slos or updated is None or port.health is None:
            continue
        if port.health.freshness is Freshness.MET:
            stale_at = updated + timedelta(seconds=slos[port.name])
            waits.append(max(1.0, (stale_at - now).total_seconds() + 1.0))
    if not waits:
        return None
    return min(*waits, MAX_HEALTH_RECHECK_SECONDS)
