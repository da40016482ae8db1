"""OpenLineage run events of pipeline runs: valid against the vendored spec and facet schemas,
named from the real endpoints as the static export names them, facets from the run report;
which transitions call for events; Hidden products withheld; the settings `dpo run` checks."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from click.testing import CliRunner
from prometheus_client import generate_latest

from dataproduct_operator.api.dataproduct import DataProduct, PortEndpoint
from dataproduct_operator.catalog.exports.common import endpoints_of
from dataproduct_operator.catalog.exports.openlineage import build_openlineage
from dataproduct_operator.cli import main
from dataproduct_operator.cli import run as run_command
from dataproduct_operator.config import OperatorConfig
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.metrics import OperatorMetrics
from dataproduct_operator.openlineage import events
from dataproduct_operator.openlineage.client import (
    DROP_LOGS_PER_WINDOW,
    OpenLineageClient,
    emit_new_runs,
    emit_run_events,
)
from dataproduct_operator.openlineage.endpoint import (
    OpenLineageSettingError,
    check_namespace,
    check_url,
)
from dataproduct_operator.openlineage.events import (
    MAX_ERROR_MESSAGE,
    EventType,
    build_run_event,
    input_endpoints,
    run_transitions,
    transitions_since_status,
)
from dataproduct_operator.reconcile.dataproduct import ProductContext
from dataproduct_operator.runner.report import CheckResult, RunReport, RunResult
from dataproduct_operator.runtime.kinds import DataProductWorker
from dataproduct_operator.runtime.operator import OperatorRuntime
from dataproduct_operator.status.runs import ObservedRun, RunOutcome
from dataproduct_operator.status.stores import InputCheck
from tests.helpers import example_product
from tests.openlineage_schema import core, facet_schemas, run_event_errors

NAMESPACE = "cluster-eu-1"
JOB_UID = "3f2c9f1e-8a4b-4c1d-9e2f-0a1b2c3d4e5f"
STARTED = datetime(2026, 11, 30, 1, 0, 0, tzinfo=UTC)
ENDED = datetime(2026, 11, 30, 1, 0, 42, tzinfo=UTC)
SCHEDULED = datetime(2026, 11, 30, 1, 0, 0, tzinfo=UTC)
ORDERS_TABLE = {
    "store": "local-postgres",
    "host": "10.0.0.7",
    "port": 5432,
    "database": "datamesh",
    "schema": "sales_orders",
    "table": "orders_v1",
}
CUSTOMERS_TABLE = {**ORDERS_TABLE, "schema": "crm_customers", "table": "customers_v1"}
CHECKS = [
    {"name": "enough-rows", "severity": "Error", "minRows": 1},
    {"name": "no-negative-amounts", "severity": "Warning", "sql": "SELECT 0"},
    {"name": "recent", "severity": "Error", "freshness": {"column": "line", "maxAge": "2h"}},
    {"name": "few-missing-emails", "maxNullFraction": {"column": "email", "fraction": 0.1}},
]


def _product(*, hidden: bool = False) -> DataProduct:
    """The example sales/orders with a sql pipeline ``enrich`` (raw and customers into
    orders-v1, which has declared checks and a table) beside its image pipelines."""
    document = copy.deepcopy(example_product())
    spec = document["spec"]
    spec["inputs"][0]["external"]["table"] = "public.orders"  # a sql pipeline reads it
    spec["outputPorts"][0]["checks"] = CHECKS
    spec["pipelines"].append(
        {
            "name": "enrich",
            "sql": "SELECT * FROM raw JOIN customers USING (email)",
            "output": "orders-v1",
            "sources": ["raw", "customers"],
            "schedule": "0 * * * *",
        }
    )
    if hidden:
        spec["discoverability"] = "Hidden"
    document["status"] = {
        "outputPorts": [{"name": "orders-v1", "phase": "Bound", "endpoint": ORDERS_TABLE}]
    }
    document["metadata"]["uid"] = "0c5e3b0e-1111-4222-8333-444455556666"
    return DataProduct.from_object(document)


def _customers() -> DataProduct:
    """The upstream crm/customers, its port a table."""
    document = copy.deepcopy(example_product("crm-customers.yaml"))
    document["status"] = {
        "outputPorts": [{"name": "customers-v1", "phase": "Bound", "endpoint": CUSTOMERS_TABLE}]
    }
    return DataProduct.from_object(document)


def _report(*, failed: bool = False) -> RunReport:
    return RunReport(
        result=RunResult.FAILED if failed else RunResult.SUCCEEDED,
        start_time=STARTED,
        completion_time=ENDED,
        rows_read={"raw": 1200, "customers": 300},
        rows_written=0 if failed else 1180,
        checks=(
            CheckResult("required:order_id", "Error", passed=True, violations=0),
            CheckResult("unique:order_id", "Error", passed=not failed, violations=3 * failed),
            CheckResult("enough-rows", "Error", passed=True, violations=0),
            CheckResult("no-negative-amounts", "Warning", passed=False, violations=2),
            CheckResult("recent", "Error", passed=True, violations=0),
            CheckResult("few-missing-emails", "Error", passed=True, violations=5),
        ),
        error="check(s) failed: unique:order_id" if failed else None,
    )


def _run(
    outcome: RunOutcome = RunOutcome.SUCCEEDED,
    *,
    pipeline: str = "enrich",
    uid: str = JOB_UID,
    report: RunReport | None = None,
    failure: str | None = None,
    nominal: datetime | None = SCHEDULED,
) -> ObservedRun:
    running = outcome is RunOutcome.RUNNING
    return ObservedRun(
        namespace="sales",
        product="orders",
        pipeline=pipeline,
        job_name=f"orders-{pipeline}-29410000",
        job_uid=uid,
        outcome=outcome,
        start_time=STARTED,
        completion_time=None if running else ENDED,
        nominal_time=nominal,
        report=report,
        failure=failure,
    )


def _event(run: ObservedRun, kind: EventType, product: DataProduct | None = None) -> Any:
    return build_run_event(
        product or _product(),
        run,
        kind,
        namespace_for_jobs=NAMESPACE,
        upstream=endpoints_of([_customers()]),
    )


CASES = {
    "sql start": (_run(RunOutcome.RUNNING), EventType.START),
    "sql complete": (_run(report=_report()), EventType.COMPLETE),
    "sql fail": (
        _run(RunOutcome.FAILED, report=_report(failed=True), failure="check(s) failed"),
        EventType.FAIL,
    ),
    "image complete, no report, on demand": (
        _run(pipeline="backfill", nominal=None),
        EventType.COMPLETE,
    ),
    "image fail, OOMKilled": (
        _run(RunOutcome.FAILED, pipeline="ingest", failure="OOMKilled: the container used more"),
        EventType.FAIL,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_events_validate_against_the_openlineage_spec_and_their_facets(case: str) -> None:
    run, kind = CASES[case]
    event = _event(run, kind)
    assert run_event_errors(event) == []
    # The event is JSON as it is sent.
    assert json.loads(json.dumps(event)) == event


def test_schema_check_catches_a_broken_event() -> None:
    event = _event(*CASES["sql fail"])
    assert run_event_errors(event) == []
    bad_id = copy.deepcopy(event)
    bad_id["run"]["runId"] = "orders-enrich-29410000"
    assert any("runId" in error for error in run_event_errors(bad_id))
    no_language = copy.deepcopy(event)
    del no_language["run"]["facets"]["errorMessage"]["programmingLanguage"]
    assert any("errorMessage" in error for error in run_event_errors(no_language))
    unknown = copy.deepcopy(event)
    unknown["run"]["facets"]["spark"] = {"_producer": "x://y", "_schemaURL": "https://x/y.json"}
    assert any("not vendored" in error for error in run_event_errors(unknown))
    misplaced = copy.deepcopy(event)
    outputs = misplaced["outputs"][0]
    outputs["facets"]["outputStatistics"] = outputs["outputFacets"].pop("outputStatistics")
    assert any("OutputDatasetFacet belongs in" in error for error in run_event_errors(misplaced))
    renamed = copy.deepcopy(event)
    renamed["run"]["facets"]["nominal"] = renamed["run"]["facets"].pop("nominalTime")
    assert any("another key" in error for error in run_event_errors(renamed))
    bad_type = copy.deepcopy(event)
    bad_type["eventType"] = "DONE"
    assert run_event_errors(bad_type)


def test_schema_urls_are_the_vendored_schemas_ids() -> None:
    assert core()["$id"] == events.SPEC_URL
    used = {
        events.NOMINAL_TIME_FACET,
        events.ERROR_MESSAGE_FACET,
        events.OUTPUT_STATISTICS_FACET,
        events.INPUT_STATISTICS_FACET,
        events.DATA_QUALITY_FACET,
        events.JOB_TYPE_FACET,
    }
    assert {url.partition("#")[0] for url in used} == set(facet_schemas())


def test_job_is_namespace_product_pipeline_and_the_run_is_the_jobs_uid() -> None:
    event = _event(*CASES["sql complete"])
    assert event["job"]["namespace"] == NAMESPACE
    assert event["job"]["name"] == "sales/orders/enrich"
    assert event["run"]["runId"] == JOB_UID
    assert event["eventType"] == "COMPLETE"
    assert event["eventTime"] == "2026-11-30T01:00:42.000Z"
    assert event["run"]["facets"]["nominalTime"]["nominalStartTime"] == "2026-11-30T01:00:00.000Z"
    start = _event(*CASES["sql start"])
    assert start["eventTime"] == "2026-11-30T01:00:00.000Z"


def test_datasets_are_named_from_the_real_endpoints_as_the_static_export_names_them() -> None:
    event = _event(*CASES["sql complete"])
    names = [(d["namespace"], d["name"]) for d in event["inputs"]]
    assert names == [
        # the external source's table the runner reads (external.table public.orders)
        ("postgres://shop-db.sales:5432", "shop.public.orders"),
        ("postgres://10.0.0.7:5432", "datamesh.crm_customers.customers_v1"),
    ]
    assert [(d["namespace"], d["name"]) for d in event["outputs"]] == [
        ("postgres://10.0.0.7:5432", "datamesh.sales_orders.orders_v1")
    ]


def _names(event: dict[str, Any]) -> tuple[dict[str, str], list[tuple[str, str]], list[Any]]:
    job = {"namespace": event["job"]["namespace"], "name": event["job"]["name"]}
    inputs = [(d["namespace"], d["name"]) for d in event["inputs"]]
    return job, inputs, [(d["namespace"], d["name"]) for d in event["outputs"]]


@pytest.mark.parametrize("pipeline", ["enrich", "ingest", "backfill"])
def test_the_static_export_names_each_job_and_dataset_as_the_run_events_do(pipeline: str) -> None:
    # One naming, so a lineage backend joins a pipeline's runs to its static lineage: the same
    # job (namespace and name) reading and writing the same datasets, sql and image pipelines.
    product, upstream = _product(), endpoints_of([_customers()])
    run = build_run_event(
        product,
        _run(pipeline=pipeline, nominal=None),
        EventType.COMPLETE,
        namespace_for_jobs=NAMESPACE,
        upstream=upstream,
    )
    static = build_openlineage(
        product, event_time="2026-11-30T00:00:00Z", upstream=upstream, namespace_for_jobs=NAMESPACE
    )
    (job_event,) = [e for e in static if e.get("job", {}).get("name") == run["job"]["name"]]
    assert _names(job_event) == _names(run)
    assert _names(run)[0] == {"namespace": NAMESPACE, "name": f"sales/orders/{pipeline}"}
    # Every port the static export declares is a dataset a run writes, named alike.
    declared = {(e["dataset"]["namespace"], e["dataset"]["name"]) for e in static if "dataset" in e}
    written = {name for e in static if "job" in e for name in _names(e)[2]}
    assert declared == written


def test_a_volume_port_and_an_unplaced_upstream_use_the_datamesh_namespace() -> None:
    image = _event(*CASES["image complete, no report, on demand"])
    assert [(d["namespace"], d["name"]) for d in image["outputs"]] == [
        ("postgres://10.0.0.7:5432", "datamesh.sales_orders.orders_v1"),
        ("datamesh://sales", "orders.daily-revenue"),
    ]
    unplaced = build_run_event(_product(), _run(), EventType.COMPLETE, namespace_for_jobs=NAMESPACE)
    assert ("datamesh://crm", "customers.customers-v1") in [
        (d["namespace"], d["name"]) for d in unplaced["inputs"]
    ]


def test_a_sql_run_reports_rows_read_rows_written_and_every_check() -> None:
    event = _event(*CASES["sql complete"])
    rows_read = {
        d["name"]: d["inputFacets"]["inputStatistics"]["rowCount"] for d in event["inputs"]
    }
    assert rows_read == {"shop.public.orders": 1200, "datamesh.crm_customers.customers_v1": 300}
    (output,) = event["outputs"]
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 1180
    assertions = {a["name"]: a for a in output["facets"]["dataQualityAssertions"]["assertions"]}
    assert assertions["required:order_id"] == {
        "assertion": "not_null",
        "column": "order_id",
        "success": True,
        "name": "required:order_id",
        "severity": "error",
        "expected": "0",
        "actual": "0",
    }
    assert assertions["unique:order_id"]["assertion"] == "unique"
    assert assertions["enough-rows"]["assertion"] == "row_count"
    assert assertions["enough-rows"]["params"] == {"minRows": 1}
    warning = assertions["no-negative-amounts"]
    assert (warning["assertion"], warning["success"], warning["severity"]) == (
        "custom_sql",
        False,
        "warn",
    )
    assert warning["actual"] == "2"
    assert "content" not in warning  # a check's SQL may hold literal values: never sent
    assert assertions["recent"]["assertion"] == "freshness"
    assert assertions["few-missing-emails"]["column"] == "email"


def test_a_start_event_carries_no_report_and_a_fail_event_carries_the_failure() -> None:
    start = _event(*CASES["sql start"])
    assert "errorMessage" not in start["run"]["facets"]
    assert all("inputFacets" not in d for d in start["inputs"])
    assert all("outputFacets" not in d and "facets" not in d for d in start["outputs"])
    fail = _event(*CASES["sql fail"])
    message = fail["run"]["facets"]["errorMessage"]
    assert message["message"] == "check(s) failed"
    assert message["programmingLanguage"] == "SQL"
    assert fail["eventType"] == "FAIL"
    failed_checks = fail["outputs"][0]["facets"]["dataQualityAssertions"]["assertions"]
    assert {a["name"] for a in failed_checks if not a["success"]} == {
        "unique:order_id",
        "no-negative-amounts",
    }
    oom = _event(*CASES["image fail, OOMKilled"])
    assert oom["run"]["facets"]["errorMessage"]["programmingLanguage"] == "unknown"
    assert oom["run"]["facets"]["errorMessage"]["message"].startswith("OOMKilled")


def test_the_error_message_is_bounded() -> None:
    run = _run(RunOutcome.FAILED, failure="x" * 5000)
    message = _event(run, EventType.FAIL)["run"]["facets"]["errorMessage"]["message"]
    assert len(message) == MAX_ERROR_MESSAGE


def test_an_image_pipeline_reads_every_input_and_its_rows_are_not_split_among_ports() -> None:
    report = RunReport(RunResult.SUCCEEDED, STARTED, ENDED, rows_written=10)
    event = _event(_run(pipeline="ingest", report=report), EventType.COMPLETE)
    assert [d["name"] for d in event["inputs"]] == [
        "shop.public.orders",
        "datamesh.crm_customers.customers_v1",
    ]
    assert len(event["outputs"]) == 2
    assert all("outputFacets" not in d for d in event["outputs"])
    assert run_event_errors(event) == []


def test_a_run_of_an_unknown_pipeline_or_without_uid_or_time_is_refused() -> None:
    with pytest.raises(ValueError, match="no pipeline gone"):
        _event(_run(pipeline="gone"), EventType.START)
    with pytest.raises(ValueError, match="no uid"):
        _event(_run(uid=""), EventType.START)
    timeless = ObservedRun(
        "sales", "orders", "enrich", "j", JOB_UID, RunOutcome.RUNNING, None, None, None, None, None
    )
    with pytest.raises(ValueError, match="no start or completion time"):
        _event(timeless, EventType.START)


def test_each_run_gets_one_start_and_one_end_across_observations() -> None:
    running = _run(RunOutcome.RUNNING)
    done = _run(RunOutcome.SUCCEEDED)
    failed_new = _run(RunOutcome.FAILED, uid="7d7d7d7d-0000-4000-8000-000000000001")

    def kinds(before: list[ObservedRun], now: list[ObservedRun]) -> list[tuple[str, str]]:
        return [(run.job_uid[:4], kind.value) for run, kind in run_transitions(before, now)]

    assert kinds([], [running]) == [("3f2c", "START")]
    assert kinds([running], [running]) == []
    assert kinds([running], [done]) == [("3f2c", "COMPLETE")]
    assert kinds([done], [done]) == []
    assert kinds([done], [done, failed_new]) == [("7d7d", "START"), ("7d7d", "FAIL")]
    assert kinds([], [done]) == [("3f2c", "START"), ("3f2c", "COMPLETE")]


def test_hidden_products_runs_stay_in_the_cluster_unless_included() -> None:
    async def submitted(product: DataProduct, *, include_hidden: bool) -> int:
        client = OpenLineageClient(
            "http://127.0.0.1:9/", namespace=NAMESPACE, include_hidden=include_hidden
        )
        count = emit_run_events(client, product, [], [_run(RunOutcome.RUNNING)])
        assert client.queued == count
        return count

    assert asyncio.run(submitted(_product(hidden=True), include_hidden=False)) == 0
    assert asyncio.run(submitted(_product(hidden=True), include_hidden=True)) == 1
    assert asyncio.run(submitted(_product(), include_hidden=False)) == 1
    assert emit_run_events(None, _product(), [], [_run()]) == 0


def test_emit_skips_a_run_it_cannot_describe_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    client = OpenLineageClient("http://127.0.0.1:9/")
    assert emit_run_events(client, _product(), [], [_run(pipeline="gone")]) == 0
    assert "No OpenLineage event for the run orders-gone-29410000" in caplog.text


@pytest.mark.parametrize(
    ("url", "posted"),
    [
        ("http://marquez:5000", "http://marquez:5000/api/v1/lineage"),
        ("https://lineage.example.com/", "https://lineage.example.com/api/v1/lineage"),
        ("http://127.0.0.1:8080/events?team=data", "http://127.0.0.1:8080/events?team=data"),
    ],
)
def test_a_url_without_a_path_posts_to_the_lineage_endpoint(url: str, posted: str) -> None:
    assert check_url(url) == posted


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://marquez:5000", "must be http"),
        ("marquez:5000", "must be http"),
        ("http://user:secret@marquez:5000", "no user name or password"),
        ("http://marquez:99999", "port must be"),
        ("http://marquez/#x", "no #fragment"),
        ("http://m/" + "a" * 3000, "at most 2048"),
    ],
)
def test_a_url_that_is_not_plain_http_is_refused_with_what_to_change(url: str, says: str) -> None:
    with pytest.raises(OpenLineageSettingError, match=says):
        check_url(url)


def test_the_namespace_is_bounded_and_plain() -> None:
    assert check_namespace("k8s://prod-eu-1") == "k8s://prod-eu-1"
    for bad in ("", " spaced", "a b", "x" * 254, "-lead"):
        with pytest.raises(OpenLineageSettingError, match="letters, digits"):
            check_namespace(bad)


def test_dpo_run_refuses_a_url_that_is_not_http_before_starting() -> None:
    result = CliRunner().invoke(main, ["run", "--openlineage-url", "file:///etc/passwd"])
    assert result.exit_code == 2
    assert "--openlineage-url" in result.output
    assert "must be http" in result.output
    secret = CliRunner().invoke(main, ["run", "--openlineage-url", "http://u:hunter2@m:5000"])
    assert secret.exit_code == 2
    assert "hunter2" not in secret.output
    spaced = CliRunner().invoke(main, ["run", "--openlineage-namespace", "a b"])
    assert spaced.exit_code == 2
    assert "--openlineage-namespace" in spaced.output


def test_dpo_run_takes_the_openlineage_options() -> None:
    context = run_command.make_context(
        "run",
        [
            "--openlineage-url=http://marquez:5000",
            "--openlineage-namespace=prod-eu-1",
            "--openlineage-include-hidden",
        ],
    )
    assert context.params["openlineage_url"] == "http://marquez:5000"
    assert context.params["openlineage_namespace"] == "prod-eu-1"
    assert context.params["openlineage_include_hidden"] is True
    defaults = run_command.make_context("run", []).params
    assert defaults["openlineage_url"] is None
    assert defaults["openlineage_namespace"] == "dataproduct-operator"
    assert defaults["openlineage_include_hidden"] is False


def test_delivery_counts_are_exported_as_a_counter_by_result() -> None:
    metrics = OperatorMetrics()
    counts = {"sent": 3, "retried": 2, "dropped": 1}
    metrics.count_lineage_events(lambda: counts)
    text = generate_latest(metrics.registry).decode()
    for result, count in counts.items():
        assert f'dataproduct_openlineage_events_total{{result="{result}"}} {count}.0' in text


def test_the_runtime_gives_reconciles_the_client_and_exports_its_counts() -> None:
    async def wired(config: OperatorConfig) -> tuple[OperatorRuntime, ProductContext]:
        runtime = OperatorRuntime(KubeClient(cast(Credentials, None)), config)
        worker = cast(DataProductWorker, runtime.products.worker)
        return runtime, worker.context

    config = OperatorConfig(
        openlineage_url="http://127.0.0.1:9",
        openlineage_namespace="prod-eu-1",
        openlineage_include_hidden=True,
    )
    runtime, context = asyncio.run(wired(config))
    assert runtime.lineage is not None
    assert context.lineage is runtime.lineage
    assert runtime.lineage.url == "http://127.0.0.1:9/api/v1/lineage"
    assert (runtime.lineage.namespace, runtime.lineage.include_hidden) == ("prod-eu-1", True)
    text = generate_latest(runtime.metrics.registry).decode()
    assert 'dataproduct_openlineage_events_total{result="dropped"} 0.0' in text
    off, off_context = asyncio.run(wired(OperatorConfig()))
    assert off.lineage is None and off_context.lineage is None
    assert "dataproduct_openlineage_events" not in generate_latest(off.metrics.registry).decode()


def test_drops_past_ten_a_minute_are_logged_as_a_total_not_one_by_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = _event(*CASES["sql start"])
    client = OpenLineageClient("http://127.0.0.1:9", max_queue=1)  # never started: no delivery
    with caplog.at_level(logging.WARNING, "dataproduct_operator.openlineage.client"):
        for index in range(31):  # 31 runs' events: none a repeat of another
            client.submit({**event, "run": {"runId": str(uuid.UUID(int=index + 1))}})
        assert client.counts["dropped"] == 30
        one_by_one = [r.getMessage() for r in caplog.records]
        assert len(one_by_one) == DROP_LOGS_PER_WINDOW
        assert all("of job sales/orders/enrich (run 00000000-" in m for m in one_by_one)
        asyncio.run(client.stop())
    assert client.counts["dropped"] == 31
    assert caplog.records[-1].getMessage() == (
        "OpenLineage events dropped (21 more dropped before it and not logged one by one)"
    )


def _seen_as(result: str | None, job_name: str = "orders-enrich-29410000") -> DataProduct:
    """The product whose status shows the enrich pipeline's last run as ``result`` (None: the
    status has no run of it)."""
    product = _product()
    document = product.model_dump(by_alias=True, mode="json")
    pipeline: dict[str, Any] = {"name": "enrich", "kind": "CronJob"}
    if result is not None:
        pipeline["lastRun"] = {"jobName": job_name, "result": result}
    document["status"]["pipelines"] = [pipeline]
    return DataProduct.model_validate(document)


def test_the_previous_status_tells_which_runs_start_and_which_end() -> None:
    running, done = _run(RunOutcome.RUNNING), _run(RunOutcome.SUCCEEDED)
    failed = _run(RunOutcome.FAILED)

    def kinds(product: DataProduct, run: ObservedRun) -> list[str]:
        return [kind.value for _, kind in transitions_since_status(product, [run])]

    assert kinds(_seen_as(None), running) == ["START"]
    assert kinds(_seen_as(None), done) == ["START", "COMPLETE"]
    assert kinds(_seen_as("Running"), running) == []
    assert kinds(_seen_as("Running"), done) == ["COMPLETE"]
    assert kinds(_seen_as("Running"), failed) == ["FAIL"]
    assert kinds(_seen_as("Succeeded"), done) == []
    # The status shows an older run: this one is new.
    assert kinds(_seen_as("Succeeded", job_name="orders-enrich-1"), failed) == ["START", "FAIL"]


def test_emit_new_runs_submits_the_events_the_previous_status_calls_for() -> None:
    async def queued(product: DataProduct, run: ObservedRun) -> list[str]:
        client = OpenLineageClient("http://127.0.0.1:9")
        emit_new_runs(client, product, [run])
        return [event["eventType"] for event in client._queue]

    assert asyncio.run(queued(_seen_as("Running"), _run(RunOutcome.FAILED))) == ["FAIL"]
    assert asyncio.run(queued(_seen_as(None), _run(RunOutcome.RUNNING))) == ["START"]
    assert emit_new_runs(None, _seen_as(None), [_run()]) == 0


def test_an_event_of_a_run_and_type_already_taken_is_not_sent_again() -> None:
    async def queued() -> list[tuple[str, bool]]:
        client = OpenLineageClient("http://127.0.0.1:9")
        start, complete = _event(*CASES["sql start"]), _event(*CASES["sql complete"])
        taken = [client.submit(start), client.submit(start), client.submit(complete)]
        # A status written late shows the run as new again: emitting again sends nothing.
        again = emit_new_runs(client, _seen_as(None), [_run(RunOutcome.SUCCEEDED)])
        assert again == 0
        return list(zip([e["eventType"] for e in client._queue], taken, strict=False))

    assert asyncio.run(queued()) == [("START", True), ("COMPLETE", False)]


def test_an_input_from_another_product_is_named_by_the_table_its_check_found() -> None:
    customers = PortEndpoint.model_validate(CUSTOMERS_TABLE)
    checks = [
        InputCheck("customers", "InputsAvailable", "", "crm_customers.customers_v1", "s", customers)
    ]
    upstream = input_endpoints(_product(), checks)
    assert upstream("crm", "customers", "customers-v1") == customers
    assert upstream("crm", "customers", "other") is None
    event = build_run_event(
        _product(), _run(), EventType.COMPLETE, namespace_for_jobs=NAMESPACE, upstream=upstream
    )
    assert ("postgres://10.0.0.7:5432", "datamesh.crm_customers.customers_v1") in [
        (d["namespace"], d["name"]) for d in event["inputs"]
    ]
    not_ready = input_endpoints(_product(), [InputCheck("customers", "AccessNotGranted", "x")])
    assert not_ready("crm", "customers", "customers-v1") is None
