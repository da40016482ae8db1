"""The operator's Prometheus metrics (prometheus_client), exported by ``dpo run``.

Reconcile totals and durations; errors by kind and class; whether this process leads; when each
drift loop last completed a pass; and per product: readiness, the last successful and the last
failed pipeline run, and data staleness (seconds since the last successful run), computed at
scrape time so it grows between reconciles as real staleness does; per MeshPolicy rule, how many
products violate it; per DataStore, the statements its driver executed (reads, changes) and the
most connections its pool held at once; the OpenLineage run events sent, retried and dropped. A
Hidden product is never named: its series carry its uid and its pipelines are one series
(:mod:`~dataproduct_operator.api.metric_labels`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from dataproduct_operator.api.conditions import DATA_HEALTHY as DATA_HEALTHY_CONDITION
from dataproduct_operator.api.conditions import ConditionStatus
from dataproduct_operator.api.dataproduct import DataProduct, DataProductStatus, RunStatus
from dataproduct_operator.api.grants import AccessPhase
from dataproduct_operator.api.metric_labels import (
    ACCESS_GRANTS_ACTIVE,
    ACCESS_REQUESTS,
    DATA_HEALTHY,
    HIDDEN_PIPELINE,
    PIPELINE_RUN_DURATION,
    PORT_CHECK_FAILURES,
    PORT_FRESHNESS_AGE,
    PORT_FRESHNESS_SLO,
    PORT_ROWS,
    PORT_SIZE_BYTES,
    metric_labels,
    port_label,
)
from dataproduct_operator.api.quantity import duration_seconds
from dataproduct_operator.api.run_terms import Severity
from dataproduct_operator.status.health import writers

ProductKey = tuple[str, str]


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True, slots=True)
class _Port:
    """A port's data health series."""

    label: str  # output_port
    rows: int | None
    size_bytes: int | None
    last_updated: float | None
    slo_seconds: int | None
    checks: tuple[int, int] | None  # failed Error and Warning checks of its last run


@dataclass(frozen=True, slots=True)
class _Health:
    """What the gauges need of a product's status (kept for every product: kept small)."""

    labels: tuple[str, str]  # namespace, dataproduct: what the series carry
    domain: str
    ready: bool
    pipelines: tuple[tuple[str, float | None, bool], ...]  # name, last success, last failed
    data_healthy: bool | None = None  # None: Unknown
    ports: tuple[_Port, ...] = ()
    durations: tuple[tuple[str, float], ...] = ()  # pipeline, its last run's seconds


def _port_series(product: DataProduct, status: DataProductStatus) -> tuple[_Port, ...]:
    slos = {
        p.name: duration_seconds(p.slo.freshness)
        for p in product.spec.output_ports
        if p.slo and p.slo.freshness
    }
    runs = {p.name: p.last_run for p in status.pipelines}
    ports = []
    for port in status.output_ports:
        health = port.health
        if health is None:
            continue
        checked = [
            run.checks
            for name in writers(product, port.name)
            if (run := runs.get(name)) is not None and run.checks is not None
        ]
        errors = sum(c.failed_errors for c in checked)
        warnings = sum(c.failed - c.failed_errors for c in checked)
        ports.append(
            _Port(
                port_label(product, port.name),
                health.rows,
                health.size_bytes,
                _timestamp(health.last_updated),
                slos.get(port.name),
                (errors, warnings) if checked else None,
            )
        )
    return tuple(ports)


def _durations(status: DataProductStatus, hidden: bool) -> tuple[tuple[str, float], ...]:
    durations = []
    for pipeline in status.pipelines:
        run = pipeline.last_run
        start = _timestamp(run.start_time) if run else None
        end = _timestamp(run.completion_time) if run else None
        if start is not None and end is not None:
            durations.append((HIDDEN_PIPELINE if hidden else pipeline.name, max(0.0, end - start)))
    if hidden and durations:
        return ((HIDDEN_PIPELINE, max(seconds for _, seconds in durations)),)
    return tuple(durations)


class PolicyViolations(Collector):
    """How many products violate each rule of each MeshPolicy, from their last audits
    (``counts``: products per (policy, rule), asked at scrape time)."""

    def __init__(self, counts: Callable[[], dict[tuple[str, str], int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        violations = GaugeMetricFamily(
            "dataproduct_policy_violations",
            "Data products that violate the rule of the MeshPolicy, from the operator's audit",
            labels=["policy", "rule"],
        )
        for (policy, violated), count in sorted(self._counts().items()):
            violations.add_metric([policy, violated], float(count))
        yield violations


class LoopHeartbeats(Collector):
    """When each supervised loop last completed a pass, and how many it completed
    (``passes``: loop -> (unix time or None, count), asked at scrape time)."""

    def __init__(self, passes: Callable[[], dict[str, tuple[float | None, int]]]) -> None:
        self._passes = passes

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        heartbeat = GaugeMetricFamily(
            "dataproduct_operator_loop_last_pass_timestamp_seconds",
            "Unix time the loop last completed a pass (absent until its first)",
            labels=["loop"],
        )
        count = CounterMetricFamily(
            "dataproduct_operator_loop_passes", "Passes the loop completed", labels=["loop"]
        )
        for loop, (when, passes) in sorted(self._passes().items()):
            if when is not None:
                heartbeat.add_metric([loop], when)
            count.add_metric([loop], passes)
        yield heartbeat
        yield count


class StoreCounts(Protocol):
    """What one store's driver executed so far (its ``StatementCounter``, read at scrape time)."""

    reads: int
    changes: int
    transactions: int
    peak_connections: int


class StoreStatements(Collector):
    """The statements each DataStore's driver executed, by kind (``read``: catalog queries and
    locks; ``change``: DDL and DCL), its transactions, and the most connections its pool held at
    once (``counts``: store -> counts, asked at scrape time). A driver made anew (the store's
    spec or Secret changed) starts again from zero, as a restarted process does."""

    def __init__(self, counts: Callable[[], Mapping[str, StoreCounts]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        statements = CounterMetricFamily(
            "dataproduct_store_statements",
            "Statements the operator executed in the DataStore, by kind (read, change)",
            labels=["store", "kind"],
        )
        transactions = CounterMetricFamily(
            "dataproduct_store_transactions",
            "Transactions the operator ran in the DataStore",
            labels=["store"],
        )
        peak = GaugeMetricFamily(
            "dataproduct_store_peak_connections",
            "The most connections to the DataStore the operator's pool held at once",
            labels=["store"],
        )
        for store, counts in sorted(self._counts().items()):
            statements.add_metric([store, "read"], counts.reads)
            statements.add_metric([store, "change"], counts.changes)
            transactions.add_metric([store], counts.transactions)
            peak.add_metric([store], counts.peak_connections)
        yield from (statements, transactions, peak)


class LineageDeliveries(Collector):
    """OpenLineage events by what became of them: sent, retried (an attempt repeated) or
    dropped (the queue full, the sink refusing, every retry failed); ``counts`` is asked at
    scrape time."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        events = CounterMetricFamily(
            "dataproduct_openlineage_events",
            "OpenLineage run events by result (sent, retried, dropped)",
            labels=["result"],
        )
        for result, count in sorted(self._counts().items()):
            events.add_metric([result], count)
        yield events


class AccessRequests(Collector):
    """Access requests by phase, and the grants they hold now; ``phases`` (every request's
    phase) is asked at scrape time."""

    def __init__(self, phases: Callable[[], list[AccessPhase]]) -> None:
        self._phases = phases

    def collect(self) -> Iterator[GaugeMetricFamily]:
        phases = self._phases()
        requests = GaugeMetricFamily(
            ACCESS_REQUESTS, "DataAccessRequests by phase", labels=["phase"]
        )
        for phase in AccessPhase:  # every phase, 0 too: alerts and dashboards see the series
            requests.add_metric([phase.value], sum(1 for p in phases if p is phase))
        yield requests
        grants = GaugeMetricFamily(
            ACCESS_GRANTS_ACTIVE, "Access requests whose subject holds the grant now"
        )
        grants.add_metric([], sum(1 for p in phases if p.granted))
        yield grants


class ProductHealth(Collector):
    """Per-product gauges from the last status the operator computed."""

    def __init__(self) -> None:
        self._products: dict[ProductKey, _Health] = {}

    def observe(self, product: DataProduct, status: DataProductStatus) -> None:
        ready = status.ready
        pipelines = tuple(
            (
                p.name,
                _timestamp(p.last_successful_time),
                p.last_run_status is RunStatus.FAILED,
            )
            for p in status.pipelines
        )
        labels = metric_labels(product)
        if labels.hidden and pipelines:
            # One series for all its pipelines: their names could say what it is.
            successes = [when for _, when, _ in pipelines if when is not None]
            pipelines = (
                (
                    HIDDEN_PIPELINE,
                    max(successes) if successes else None,
                    any(failed for _, _, failed in pipelines),
                ),
            )
        healthy = next((c for c in status.conditions if c.type == DATA_HEALTHY_CONDITION), None)
        self._products[(product.namespace, product.name)] = _Health(
            (labels.namespace, labels.dataproduct),
            product.spec.domain,
            ready,
            pipelines,
            data_healthy=None
            if healthy is None or healthy.status is ConditionStatus.UNKNOWN
            else healthy.status is ConditionStatus.TRUE,
            ports=_port_series(product, status),
            durations=_durations(status, labels.hidden),
        )

    def forget(self, namespace: str, name: str) -> None:
        self._products.pop((namespace, name), None)

    def count(self) -> int:
        return len(self._products)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.time()
        ready = GaugeMetricFamily(
            "dataproduct_ready",
            "1 when the data product's Ready condition is True",
            labels=["namespace", "dataproduct", "domain"],
        )
        success = GaugeMetricFamily(
            "dataproduct_pipeline_last_success_timestamp_seconds",
            "Unix time of the pipeline's last successful run",
            labels=["namespace", "dataproduct", "pipeline"],
        )
        failed = GaugeMetricFamily(
            "dataproduct_pipeline_last_run_failed",
            "1 when the pipeline's last run failed",
            labels=["namespace", "dataproduct", "pipeline"],
        )
        staleness = GaugeMetricFamily(
            "dataproduct_staleness_seconds",
            "Seconds since any pipeline of the data product last succeeded",
            labels=["namespace", "dataproduct"],
        )
        data = _DataSeries()
        for health in sorted(self._products.values(), key=lambda h: h.labels):
            namespace, name = health.labels
            data.add(health, now)
            ready.add_metric([namespace, name, health.domain], 1.0 if health.ready else 0.0)
            latest: float | None = None
            for pipeline, when, is_failed in health.pipelines:
                if when is not None:
                    success.add_metric([namespace, name, pipeline], when)
                    latest = max(latest or when, when)
                failed.add_metric([namespace, name, pipeline], 1.0 if is_failed else 0.0)
            if latest is not None:
                staleness.add_metric([namespace, name], max(0.0, now - latest))
        yield from (ready, success, failed, staleness)
        yield from data.families()


class _DataSeries:
    """The data health families, filled product by product at scrape time."""

    def __init__(self) -> None:
        port = ["namespace", "dataproduct", "output_port"]
        pipeline = ["namespace", "dataproduct", "pipeline"]
        self.rows = GaugeMetricFamily(PORT_ROWS, "Rows in the port's table", labels=port)
        self.size = GaugeMetricFamily(
            PORT_SIZE_BYTES, "Size of the port's table with its indexes", labels=port
        )
        self.age = GaugeMetricFamily(
            PORT_FRESHNESS_AGE,
            "Seconds since the port's data was last updated (its last run's watermark)",
            labels=port,
        )
        self.slo = GaugeMetricFamily(
            PORT_FRESHNESS_SLO, "The port's freshness SLO in seconds", labels=port
        )
        self.checks = GaugeMetricFamily(
            PORT_CHECK_FAILURES,
            "Checks that failed in the last run that checked the port, by severity",
            labels=[*port, "severity"],
        )
        self.duration = GaugeMetricFamily(
            PIPELINE_RUN_DURATION, "Seconds the pipeline's last run took", labels=pipeline
        )
        self.healthy = GaugeMetricFamily(
            DATA_HEALTHY,
            "1 when the data product's DataHealthy condition is True, 0 when False",
            labels=["namespace", "dataproduct", "domain"],
        )

    def add(self, health: _Health, now: float) -> None:
        namespace, name = health.labels
        if health.data_healthy is not None:
            self.healthy.add_metric([namespace, name, health.domain], float(health.data_healthy))
        for pipeline, seconds in health.durations:
            self.duration.add_metric([namespace, name, pipeline], seconds)
        for port in health.ports:
            labels = [namespace, name, port.label]
            if port.rows is not None:
                self.rows.add_metric(labels, float(port.rows))
            if port.size_bytes is not None:
                self.size.add_metric(labels, float(port.size_bytes))
            if port.last_updated is not None:
                self.age.add_metric(labels, max(0.0, now - port.last_updated))
            if port.slo_seconds is not None:
                self.slo.add_metric(labels, float(port.slo_seconds))
            if port.checks is not None:
                self.checks.add_metric([*labels, Severity.ERROR.value], float(port.checks[0]))
                self.checks.add_metric([*labels, Severity.WARNING.value], float(port.checks[1]))

    def families(self) -> tuple[GaugeMetricFamily, ...]:
        return (self.rows, self.size, self.age, self.slo, self.checks, self.duration, self.healthy)


class OperatorMetrics:
    """Every metric of one operator process, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "dataproduct_reconcile",
            "Reconciles of data products by result (success, error)",
            ["result"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "dataproduct_reconcile_duration_seconds",
            "Time to reconcile one data product",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.applies = Counter(
            "dataproduct_child_applies",
            "Children applied (server-side apply) by kind",
            ["kind"],
            registry=self.registry,
        )
        self.errors = Counter(
            "dataproduct_operator_errors",
            "Errors met by kind of object (or Watch, DriftLoop) and class (Transient, "
            "Throttled, Conflict, Forbidden, Rejected, InvalidSpec, Unexpected, ...); every "
            "one is retried or surfaced on its object",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "dataproduct_operator_leader",
            "1 while this process holds the leader lease (and reconciles), else 0",
            registry=self.registry,
        )
        self.health = ProductHealth()
        self.registry.register(self.health)

    def count_policy_violations(self, counts: Callable[[], dict[tuple[str, str], int]]) -> None:
        self.registry.register(PolicyViolations(counts))

    def count_store_statements(self, counts: Callable[[], Mapping[str, StoreCounts]]) -> None:
        self.registry.register(StoreStatements(counts))

    def count_access(self, phases: Callable[[], list[AccessPhase]]) -> None:
        self.registry.register(AccessRequests(phases))

    def count_lineage_events(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self.registry.register(LineageDeliveries(counts))

    def count_loop_passes(self, passes: Callable[[], dict[str, tuple[float | None, int]]]) -> None:
        self.registry.register(LoopHeartbeats(passes))
