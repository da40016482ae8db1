"""OpenLineage run events of pipeline runs (layer ``openlineage``, pure).

:func:`build_run_event` turns one observed run (a Job of a pipeline, with the run report its
container left) into a ``RunEvent`` of the OpenLineage spec: the job is
``<Kubernetes namespace>/<product>/<pipeline>`` in the OpenLineage namespace the operator is
given (``dpo run --openlineage-namespace``), the run's id is the Job's uid, and the job and the
datasets are named by :mod:`dataproduct_operator.openlineage.naming`, which the static lineage
export (:mod:`dataproduct_operator.catalog.exports.openlineage`) names them by too: a store port
is its table (``postgres://host:port``, ``database.schema.table``), a volume port
``datamesh://<namespace>`` ``<product>.<port>``, an input its upstream's port or its external
source (a postgres table a sql pipeline reads: ``database.schema.table``). So a lineage backend
joins the run events to the static lineage and to what other tools report about the same
tables.

A sql pipeline reads the inputs named in its ``sources`` and writes its ``output``; an image
pipeline gets every input and every output port of its product (it is told them all). Facets:
``nominalTime`` (a CronJob's scheduled time), ``errorMessage`` on FAIL (the failure in words, as
``status.pipelines[].lastRun.message`` shows it: check names, the report's error, OOMKilled and
the like; the run report holds no credential and the words are bounded), and from the report:
``outputStatistics`` (rows written), ``inputStatistics`` (rows read per source) and
``dataQualityAssertions`` (each check, passed or not, with its severity and violation count).

:func:`run_transitions` decides which events the runs of two successive observations call for,
once per run and transition; :func:`transitions_since_status` does so from the runs observed now
and the product's previous status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from dataproduct_operator.api.dataproduct import (
    DataProduct,
    Discoverability,
    OutputPort,
    Pipeline,
    PortCheck,
)
from dataproduct_operator.api.run_terms import Severity
from dataproduct_operator.catalog.exports.common import (
    PROJECT_URL,
    EndpointLookup,
    no_endpoints,
    port_endpoint,
)
from dataproduct_operator.catalog.exports.openlineage import INTEGRATION, JOB_TYPE_FACET
from dataproduct_operator.openlineage.naming import (
    input_dataset,
    inputs_read,
    job_of,
    port_dataset,
    ports_written,
)
from dataproduct_operator.runner.report import CheckResult, RunReport
from dataproduct_operator.status.runs import ObservedRun, RunOutcome
from dataproduct_operator.status.stores import InputCheck

# The versions of the spec and of the facets the events follow: the $ids of the schemas the
# tests validate every event against (tests/schemas/openlineage-run/README.md says where from).
SPEC_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_EVENT_SCHEMA = f"{SPEC_URL}#/$defs/RunEvent"
_FACETS = "https://openlineage.io/spec/facets"
NOMINAL_TIME_FACET = f"{_FACETS}/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet"
ERROR_MESSAGE_FACET = f"{_FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
OUTPUT_STATISTICS_FACET = (
    f"{_FACETS}/1-0-2/OutputStatisticsOutputDatasetFacet.json"
    "#/$defs/OutputStatisticsOutputDatasetFacet"
)
INPUT_STATISTICS_FACET = (
    f"{_FACETS}/1-0-0/InputStatisticsInputDatasetFacet.json#/$defs/InputStatisticsInputDatasetFacet"
)
DATA_QUALITY_FACET = (
    f"{_FACETS}/1-1-0/DataQualityAssertionsDatasetFacet.json"
    "#/$defs/DataQualityAssertionsDatasetFacet"
)

DEFAULT_PRODUCER = PROJECT_URL
# An error message is the failure as the status words it; a sink stores it, so it stays short.
MAX_ERROR_MESSAGE = 1024
# What the errorMessage facet must name: the language of the failed program. A sql pipeline's
# transform is SQL (DuckDB's dialect); an image pipeline's program is unknown to the operator.
SQL_LANGUAGE = "SQL"
UNKNOWN_LANGUAGE = "unknown"
# The runner names the checks it derives from the port's schema <kind>:<column>.
_CONTRACT_CHECKS = {"required": "not_null", "unique": "unique"}


class EventType(StrEnum):
    """The transitions of a run the operator reports (OpenLineage's eventType)."""

    START = "START"
    COMPLETE = "COMPLETE"
    FAIL = "FAIL"


def withheld(product: DataProduct, *, include_hidden: bool) -> bool:
    """Whether ``product``'s runs stay unreported: a Hidden product is never named outside the
    cluster (a job, table or port name can say what it is) unless the operator is told to."""
    return product.spec.discoverability is Discoverability.HIDDEN and not include_hidden


def build_run_event(
    product: DataProduct,
    run: ObservedRun,
    event_type: EventType | str,
    *,
    producer: str = DEFAULT_PRODUCER,
    namespace_for_jobs: str,
    upstream: EndpointLookup = no_endpoints,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """The OpenLineage RunEvent of ``run`` of ``product`` at the transition ``event_type``.

    ``upstream`` gives the endpoints of the upstream ports the product reads, where known (as
    for the static export). ``event_time`` defaults to when the run started (START) or ended;
    a run with neither time needs it. :class:`ValueError` when the run is not one of the
    product's pipelines or has no uid.
    """
    kind = EventType(event_type)
    pipeline = _pipeline(product, run.pipeline)
    if not run.job_uid:
        raise ValueError(f"the run {run.job_name} has no uid, which OpenLineage's runId needs")
    when = event_time or _event_time(run, kind)
    if when is None:
        raise ValueError(f"the run {run.job_name} has no start or completion time: give one")
    report = run.report if kind is not EventType.START else None
    return {
        "eventType": kind.value,
        "eventTime": timestamp(when),
        "producer": producer,
        "schemaURL": RUN_EVENT_SCHEMA,
        "run": {"runId": run.job_uid, "facets": _run_facets(run, kind, pipeline, producer)},
        "job": {
            **job_of(
                product.namespace,
                product.name,
                pipeline.name,
                namespace_for_jobs=namespace_for_jobs,
            ),
            "facets": {
                "jobType": _facet(
                    producer,
                    JOB_TYPE_FACET,
                    processingType="BATCH",
                    integration=INTEGRATION,
                    jobType="JOB",
                )
            },
        },
        "inputs": _inputs(product, pipeline, report, upstream, producer),
        "outputs": _outputs(product, pipeline, report, producer),
    }


def run_transitions(
    previous_runs: Iterable[ObservedRun], current_runs: Iterable[ObservedRun]
) -> list[tuple[ObservedRun, EventType]]:
    """The events that the runs seen now call for, given the runs seen before (by Job uid).

    A new run starts (START); a run that ended since completes or fails (COMPLETE | FAIL). A
    run first seen already ended gets both, so every run a consumer hears of has a start and
    an end. A run seen again unchanged calls for nothing.
    """
    before = {run.job_uid: run for run in previous_runs}
    events: list[tuple[ObservedRun, EventType]] = []
    for run in current_runs:
        seen = before.get(run.job_uid)
        if seen is None:
            events.append((run, EventType.START))
        if run.outcome is not RunOutcome.RUNNING and (
            seen is None or seen.outcome is RunOutcome.RUNNING
        ):
            failed = run.outcome is RunOutcome.FAILED
            events.append((run, EventType.FAIL if failed else EventType.COMPLETE))
    return events


def transitions_since_status(
    product: DataProduct, runs: Iterable[ObservedRun]
) -> list[tuple[ObservedRun, EventType]]:
    """The events that ``runs`` call for, given what ``product``'s status (as it was before
    they were observed) shows of each pipeline's last run: ``status.pipelines[].lastRun``, the
    run known by its Job's name. A run the status shows running that has ended now ends; a run
    the status does not show starts (and ends too if it already has)."""
    last = {p.name: p.last_run for p in product.status.pipelines}
    previous = []
    for run in runs:
        old = last.get(run.pipeline)
        if old is None or old.job_name != run.job_name:
            continue
        try:
            previous.append(replace(run, outcome=RunOutcome(old.result.value)))
        except ValueError:  # NeverRun: the status has not seen it
            continue
    return run_transitions(previous, runs)


def input_endpoints(product: DataProduct, checks: Iterable[InputCheck]) -> EndpointLookup:
    """The endpoints of the upstream ports ``product`` reads, from the checks of its inputs
    (those ready name the upstream's table): how its events name those inputs as tables."""
    by_input = {check.name: check.endpoint for check in checks if check.endpoint is not None}
    found = {}
    for item in product.spec.inputs:
        ref, endpoint = item.data_product, by_input.get(item.name)
        if ref is not None and endpoint is not None:
            found[(ref.namespace or product.namespace, ref.name, ref.port)] = endpoint
    return lambda namespace, name, port: found.get((namespace, name, port))


def timestamp(moment: datetime) -> str:
    """An RFC 3339 UTC time, as OpenLineage's date-time fields want it."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _pipeline(product: DataProduct, name: str) -> Pipeline:
    for pipeline in product.spec.pipelines:
        if pipeline.name == name:
            return pipeline
    raise ValueError(f"DataProduct {product.namespace}/{product.name} has no pipeline {name}")


def _event_time(run: ObservedRun, kind: EventType) -> datetime | None:
    if kind is EventType.START:
        return run.start_time or run.completion_time
    return run.completion_time or run.start_time


def _facet(producer: str, schema_url: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": producer, "_schemaURL": schema_url, **fields}


def _run_facets(
    run: ObservedRun, kind: EventType, pipeline: Pipeline, producer: str
) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if run.nominal_time is not None:
        facets["nominalTime"] = _facet(
            producer, NOMINAL_TIME_FACET, nominalStartTime=timestamp(run.nominal_time)
        )
    if kind is EventType.FAIL:
        message = run.failure or (run.report.error if run.report else None) or "the run failed"
        if len(message) > MAX_ERROR_MESSAGE:
            message = message[: MAX_ERROR_MESSAGE - 1] + "…"
        language = SQL_LANGUAGE if pipeline.sql is not None else UNKNOWN_LANGUAGE
        facets["errorMessage"] = _facet(
            producer, ERROR_MESSAGE_FACET, message=message, programmingLanguage=language
        )
    return facets


def _inputs(
    product: DataProduct,
    pipeline: Pipeline,
    report: RunReport | None,
    upstream: EndpointLookup,
    producer: str,
) -> list[dict[str, Any]]:
    datasets = []
    for item in inputs_read(product, pipeline):
        dataset = input_dataset(product, item, upstream)
        rows = report.rows_read.get(item.name) if report else None
        if rows is not None:
            dataset["inputFacets"] = {
                "inputStatistics": _facet(producer, INPUT_STATISTICS_FACET, rowCount=rows)
            }
        datasets.append(dataset)
    return datasets


def _outputs(
    product: DataProduct, pipeline: Pipeline, report: RunReport | None, producer: str
) -> list[dict[str, Any]]:
    ports = ports_written(product, pipeline)
    datasets = []
    for port in ports:
        endpoint = port_endpoint(product, port.name)
        dataset: dict[str, Any] = {
            **port_dataset(product.namespace, product.name, port.name, endpoint)
        }
        # An image pipeline's report counts the rows of all its ports: attributed only to one.
        if report is not None and len(ports) == 1:
            dataset["outputFacets"] = {
                "outputStatistics": _facet(
                    producer, OUTPUT_STATISTICS_FACET, rowCount=report.rows_written
                )
            }
        checks = _checks_of(port, report, only_port=len(ports) == 1)
        if checks:
            dataset["facets"] = {
                "dataQualityAssertions": _facet(
                    producer,
                    DATA_QUALITY_FACET,
                    assertions=[_assertion(port, check) for check in checks],
                )
            }
        datasets.append(dataset)
    return datasets


def _checks_of(port: OutputPort, report: RunReport | None, *, only_port: bool) -> list[CheckResult]:
    """The report's checks of ``port``: all of them when the run writes that port alone, else
    those the port declares or derives from its columns."""
    if report is None:
        return []
    if only_port:
        return list(report.checks)
    declared = {check.name for check in port.checks}
    columns = {column.name for column in port.schema_}
    return [
        check
        for check in report.checks
        if check.name in declared or _contract_check(check.name)[1] in columns
    ]


def _contract_check(name: str) -> tuple[str | None, str | None]:
    """(assertion, column) of a check the runner derives from the schema (``required:id``)."""
    kind, separator, column = name.partition(":")
    if separator and kind in _CONTRACT_CHECKS:
        return _CONTRACT_CHECKS[kind], column
    return None, None


def _assertion(port: OutputPort, check: CheckResult) -> dict[str, Any]:
    assertion: dict[str, Any] = {
        "assertion": "custom",
        "success": check.passed,
        "name": check.name,
        "severity": "error" if check.severity == Severity.ERROR.value else "warn",
        "actual": str(check.violations),
    }
    contract, column = _contract_check(check.name)
    declared = next((c for c in port.checks if c.name == check.name), None)
    if contract is not None and column is not None:
        assertion.update(assertion=contract, column=column, expected="0")
    elif declared is not None:
        assertion.update(_declared(declared))
    return assertion


def _declared(check: PortCheck) -> dict[str, Any]:
    """How OpenLineage classifies a check the port declares; ``actual`` counts violations."""
    if check.min_rows is not None:
        return {"assertion": "row_count", "expected": "0", "params": {"minRows": check.min_rows}}
    if check.max_null_fraction is not None:
        return {
            "assertion": "null_fraction",
            "column": check.max_null_fraction.column,
            "params": {"maxNullFraction": check.max_null_fraction.fraction},
        }
    if check.freshness is not None:
        return {
            "assertion": "freshness",
            "column": check.freshness.column,
            "expected": "0",
            "params": {"maxAge": check.freshness.max_age},
        }
    return {"assertion": "custom_sql", "expected": "0"}
