"""Runs read from their Jobs and pods (status/runs.py), the ports' health and DataHealthy
(status/health.py, status/dataproduct.py), their Events (reconcile/runs.py) and series
(metrics.py): a report's checks and rows reach the status, a failed Error check turns
DataHealthy False with the check named, data turns Stale as time passes with no event, and an
OOM kill or a deadline is said in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import generate_latest

from dataproduct_operator.api.conditions import DATA_HEALTHY, Condition, ConditionStatus, Reason
from dataproduct_operator.api.dataproduct import (
    ChecksState,
    DataProduct,
    Freshness,
    PortEndpoint,
    PortStatus,
    RunStatus,
)
from dataproduct_operator.catalog.lineage import Health, build_lineage
from dataproduct_operator.catalog.model import build_product_detail, summarize
from dataproduct_operator.metrics import OperatorMetrics
from dataproduct_operator.reconcile.dataproduct import runs_in_progress
from dataproduct_operator.reconcile.runs import health_notes, stats_wanted
from dataproduct_operator.runner.report import CheckResult, RunReport, RunResult
from dataproduct_operator.status.dataproduct import (
    Failures,
    Observed,
    compute_status,
    new_runs,
    runs_to_read,
)
from dataproduct_operator.status.health import TableStats, next_health_check
from dataproduct_operator.status.runs import RunOutcome, observe_run, pods_of

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def product(
    status: dict[str, Any] | None = None, hidden: bool = False, name: str = "revenue"
) -> DataProduct:
    return DataProduct.from_object({
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": name, "namespace": "finance", "uid": f"u-{len(name)}",
                     "generation": 1},
        "spec": {
            "domain": "finance",
            "owner": {"team": "finance-data"},
            "description": "Revenue per day.",
            **({"discoverability": "Hidden"} if hidden else {}),
            "inputs": [{"name": "orders", "dataProduct": {
                "namespace": "sales", "name": "orders", "port": "orders-v1"}}],
            "outputPorts": [{
                "name": "daily",
                "store": {"name": "main"},
                "schema": [{"name": "day", "type": "date", "unique": True},
                           {"name": "revenue", "type": "decimal"}],
                "slo": {"freshness": "1h"},
                "checks": [{"name": "positive",
                            "sql": "SELECT count(*) FROM daily WHERE revenue < 0"}],
            }],
            "pipelines": [{"name": "build", "sql": "SELECT day, revenue FROM orders",
                           "output": "daily", "sources": ["orders"]}],
        },
        "status": status or {},
    })  # fmt: skip


def job(name: str, *, state: str | None, created: float, reason: str | None = None) -> dict:
    conditions = []
    status: dict[str, Any] = {"startTime": at(created + 1)}
    if state == "Complete":
        conditions.append({"type": "Complete", "status": "True"})
        status["completionTime"] = at(created + 10)
    elif state == "Failed":
        conditions.append({"type": "Failed", "status": "True", "reason": reason or "",
                           "lastTransitionTime": at(created + 10)})  # fmt: skip
    status["conditions"] = conditions
    return {
        "kind": "Job",
        "metadata": {
            "name": name, "namespace": "finance", "uid": f"uid-{name}",
            "creationTimestamp": at(created),
            "labels": {"datamesh.dev/data-product": "revenue", "datamesh.dev/pipeline": "build"},
        },
        "status": status,
    }  # fmt: skip


def pod(of: dict[str, Any], terminated: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{of['metadata']['name']}-x",
            "creationTimestamp": of["metadata"]["creationTimestamp"],
            "ownerReferences": [{"kind": "Job", "uid": of["metadata"]["uid"]}],
        },
        "status": {"containerStatuses": [{"name": "pipeline",
                                          "state": {"terminated": terminated}}]},
    }  # fmt: skip


def report(*, checks: tuple[CheckResult, ...] = (), rows: int = 42, ok: bool = True) -> str:
    return RunReport(
        result=RunResult.SUCCEEDED if ok else RunResult.FAILED,
        start_time=T0 + timedelta(seconds=2),
        completion_time=T0 + timedelta(seconds=9),
        rows_read={"orders": 100},
        rows_written=rows if ok else 0,
        checks=checks,
        watermark=T0 + timedelta(seconds=5),
        error=None if ok else "check(s) failed: positive",
    ).to_json()


PLACED = {
    "outputPorts": [{
        "name": "daily", "phase": "Placed",
        "endpoint": PortEndpoint(store="main", host="h", port=5432, database="d",
                                 schema="finance_revenue", table="daily").to_wire(),
    }],
}  # fmt: skip


def status_after(
    subject: DataProduct,
    jobs: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    now: float,
    stats: dict[str, TableStats] | None = None,
):
    runs = {j["metadata"]["name"]: observe_run(j, pods_of(j, pods), pipeline="build") for j in jobs}
    observed = Observed({}, jobs, runs, stats or {})
    status = compute_status(
        subject, observed, failures=Failures(), prometheus_available=False, now=at(now)
    )
    return status, new_runs(subject, observed)


def data_healthy(status) -> Any:
    return next(c for c in status.conditions if c.type == DATA_HEALTHY)


def test_a_report_reaches_last_run_and_the_ports_health_with_the_stores_figures():
    subject = product(PLACED)
    done = job("revenue-build-1", state="Complete", created=0)
    passed = (CheckResult("positive", "Error", True, 0), CheckResult("unique", "Error", True, 0))
    message = report(checks=passed)
    status, runs = status_after(
        subject,
        [done],
        [pod(done, {"exitCode": 0, "message": message})],
        now=60,
        stats={"daily": TableStats(42, 16384)},
    )
    last = status.pipelines[0].last_run
    assert last is not None
    assert (last.result, last.rows_written, last.job_name) == (
        RunStatus.SUCCEEDED, 42, "revenue-build-1")  # fmt: skip
    assert last.checks is not None and (last.checks.passed, last.checks.failed) == (2, 0)
    health = status.output_ports[0].health
    assert health is not None
    assert (health.rows, health.size_bytes) == (42, 16384)
    assert health.last_updated == at(5)  # the report's watermark, not the Job's end
    assert (health.freshness, health.checks) == (Freshness.MET, ChecksState.PASSING)
    assert (data_healthy(status).status.value, data_healthy(status).reason) == (
        "True", Reason.DATA_HEALTHY)  # fmt: skip
    assert [run.job_name for run in runs] == ["revenue-build-1"]


def test_a_failed_error_check_keeps_the_data_and_turns_data_healthy_false_naming_it():
    earlier = product(PLACED)
    first = job("revenue-build-1", state="Complete", created=0)
    good, _ = status_after(earlier, [first], [pod(first, {"exitCode": 0, "message": report()})], 60)
    subject = product(good.to_wire())
    failing = job("revenue-build-2", state="Failed", created=100, reason="BackoffLimitExceeded")
    checks = (CheckResult("positive", "Error", False, 3), CheckResult("rows", "Warning", False, 1))
    failed_pod = pod(failing, {"exitCode": 1, "message": report(checks=checks, ok=False)})
    status, runs = status_after(subject, [first, failing], [failed_pod], now=200)
    last = status.pipelines[0].last_run
    assert last is not None and last.result is RunStatus.FAILED
    assert last.checks is not None
    assert (last.checks.failed_names, last.checks.failed_errors) == (["positive", "rows"], 1)
    assert last.message is not None and "positive" in last.message
    health = status.output_ports[0].health
    assert health is not None and health.checks is ChecksState.FAILING
    assert health.last_updated == at(5)  # the previous publish: nothing new was published
    condition = data_healthy(status)
    assert (condition.status.value, condition.reason) == ("False", Reason.CHECKS_FAILING)
    assert "port daily" in condition.message and "positive" in condition.message
    notes = health_notes(subject.status, status, runs)
    assert [note.reason for note in notes] == [Reason.QUALITY_CHECK_FAILED]
    assert "positive" in notes[0].message and "rows" in notes[0].message


def test_data_turns_stale_by_time_alone_and_says_when_to_look_again():
    subject = product(PLACED)
    done = job("revenue-build-1", state="Complete", created=0)
    fresh, _ = status_after(subject, [done], [pod(done, {"exitCode": 0, "message": report()})], 60)
    wait = next_health_check(subject, fresh, T0 + timedelta(seconds=60))
    assert wait is not None and 3540 <= wait <= 3600  # 1h after the watermark, from 60 s in
    aged = product(fresh.to_wire())
    stale, _ = status_after(aged, [done], [], now=5 + 3600 + 30)
    health = stale.output_ports[0].health
    assert health is not None and health.freshness is Freshness.STALE
    condition = data_healthy(stale)
    assert (condition.status.value, condition.reason) == ("False", Reason.STALE)
    assert "1h" in condition.message and "port daily" in condition.message
    notes = health_notes(aged.status, stale, [])
    assert [note.reason for note in notes] == [Reason.FRESHNESS_SLO_MISSED]
    assert next_health_check(aged, stale, T0 + timedelta(hours=2)) is None


def test_a_new_run_after_staleness_recovers_with_an_event():
    subject = product(PLACED)
    first = job("revenue-build-1", state="Complete", created=0)
    fresh, _ = status_after(
        subject, [first], [pod(first, {"exitCode": 0, "message": report()})], 60
    )
    stale, _ = status_after(product(fresh.to_wire()), [first], [], now=7200)
    later = product(stale.to_wire())
    second = job("revenue-build-2", state="Complete", created=7000)
    message = RunReport(RunResult.SUCCEEDED, T0 + timedelta(seconds=7001),
                        T0 + timedelta(seconds=7009), rows_written=1).to_json()  # fmt: skip
    status, runs = status_after(
        later, [first, second], [pod(second, {"exitCode": 0, "message": message})], now=7200
    )
    assert data_healthy(status).status.value == "True"
    assert status.output_ports[0].health.last_updated == at(7009)  # no watermark: publish time
    assert Reason.RECOVERED in [note.reason for note in health_notes(later.status, status, runs)]


def test_an_oom_killed_run_and_a_deadline_are_said_in_words_and_turn_runs_failing():
    subject = product(PLACED)
    killed = job("revenue-build-1", state="Failed", created=0, reason="BackoffLimitExceeded")
    status, _ = status_after(
        subject, [killed], [pod(killed, {"exitCode": 137, "reason": "OOMKilled"})], now=60
    )
    last = status.pipelines[0].last_run
    assert last is not None and last.message is not None and last.message.startswith("OOMKilled")
    condition = data_healthy(status)
    assert (condition.status.value, condition.reason) == ("False", Reason.RUNS_FAILING)
    assert "OOMKilled" in condition.message
    late = job("revenue-build-1", state="Failed", created=0, reason="DeadlineExceeded")
    run = observe_run(late, [], pipeline="build")
    assert run.outcome is RunOutcome.FAILED
    assert run.failure is not None and run.failure.startswith("DeadlineExceeded")


def test_a_termination_message_that_is_not_a_report_is_announced_and_the_result_kept():
    subject = product(PLACED)
    done = job("revenue-build-1", state="Complete", created=0)
    status, runs = status_after(
        subject, [done], [pod(done, {"exitCode": 0, "message": '{"result": "Maybe"}'})], now=60
    )
    last = status.pipelines[0].last_run
    assert last is not None and last.result is RunStatus.SUCCEEDED
    assert last.message is not None and "could not be read" in last.message
    reasons = [note.reason for note in health_notes(subject.status, status, runs)]
    assert reasons == [Reason.RUN_REPORT_UNREADABLE]
    plain = observe_run(done, [pod(done, {"exitCode": 0, "message": "done\n"})], pipeline="build")
    assert (plain.report, plain.report_error) == (None, None)  # words, not a report: no event


def test_nothing_run_yet_is_unknown_and_pods_are_read_only_for_a_run_that_just_ended():
    subject = product(PLACED)
    status, _ = status_after(subject, [], [], now=60)
    condition = data_healthy(status)
    assert (condition.status.value, condition.reason) == ("Unknown", Reason.NO_DATA_YET)
    running = job("revenue-build-1", state=None, created=0)
    assert not runs_to_read(subject, [running])
    done = job("revenue-build-1", state="Complete", created=0)
    assert runs_to_read(subject, [done])
    known, _ = status_after(subject, [done], [pod(done, {"exitCode": 0, "message": report()})], 60)
    assert not runs_to_read(product(known.to_wire()), [done])
    again, runs = status_after(product(known.to_wire()), [done], [], now=70)
    assert runs == [] and again.pipelines[0].last_run == known.pipelines[0].last_run


def test_the_store_is_asked_for_figures_only_after_a_run_or_for_a_port_never_read():
    subject = product(PLACED)
    assert stats_wanted(subject, []) == ["daily"]  # never read yet
    done = job("revenue-build-1", state="Complete", created=0)
    known, runs = status_after(
        subject, [done], [pod(done, {"exitCode": 0, "message": report()})], 60,
        stats={"daily": TableStats(42, 8192)},
    )  # fmt: skip
    assert stats_wanted(subject, runs) == ["daily"]
    assert stats_wanted(product(known.to_wire()), []) == []


def test_the_data_health_series_carry_the_ports_figures_and_hide_a_hidden_products_names():
    metrics = OperatorMetrics()
    for hidden in (False, True):
        subject = product(PLACED, hidden=hidden, name="secret-plans" if hidden else "revenue")
        done = job("revenue-build-1", state="Complete", created=0)
        checks = (CheckResult("rows", "Warning", False, 1),)
        status, _ = status_after(
            subject, [done], [pod(done, {"exitCode": 0, "message": report(checks=checks)})], 60,
            stats={"daily": TableStats(42, 8192)},
        )  # fmt: skip
        metrics.health.observe(subject, status)
    text = generate_latest(metrics.registry).decode()
    shown = 'dataproduct="revenue",namespace="finance",output_port="daily"'
    assert f"dataproduct_port_rows{{{shown}}} 42.0" in text
    assert f"dataproduct_port_size_bytes{{{shown}}} 8192.0" in text
    assert f"dataproduct_port_freshness_slo_seconds{{{shown}}} 3600.0" in text
    assert f'dataproduct_port_check_failures{{{shown},severity="Warning"}} 1.0' in text
    assert f'dataproduct_port_check_failures{{{shown},severity="Error"}} 0.0' in text
    assert f"dataproduct_port_freshness_age_seconds{{{shown}}}" in text
    assert 'dataproduct_data_healthy{dataproduct="revenue",domain="finance"' in text
    duration = 'dataproduct_pipeline_last_run_duration_seconds{dataproduct="revenue",'
    assert duration + 'namespace="finance",pipeline="build"} 7.0' in text
    hidden_port = 'dataproduct="uid-u-12",namespace="finance",output_port="port-0"'
    assert f"dataproduct_port_rows{{{hidden_port}}} 42.0" in text
    assert "secret-plans" not in text


def test_ports_of_a_product_without_a_health_yet_get_one_from_the_first_status():
    subject = product({"outputPorts": [PortStatus(name="daily", phase="Placed").to_wire()]})
    status, _ = status_after(subject, [], [], now=10)
    assert status.output_ports[0].health is not None
    assert status.output_ports[0].health.freshness is Freshness.UNKNOWN


def test_the_catalogs_badge_follows_data_healthy_and_the_port_shows_rows_size_and_checks():
    subject = product(PLACED)
    done = job("revenue-build-1", state="Complete", created=0)
    checks = (CheckResult("positive", "Error", True, 0), CheckResult("rows", "Warning", False, 1))
    fresh, _ = status_after(
        subject, [done], [pod(done, {"exitCode": 0, "message": report(checks=checks)})], 60,
        stats={"daily": TableStats(42, 8192)},
    )  # fmt: skip
    ready = Condition(type="Ready", status=ConditionStatus.TRUE, reason="Reconciled")
    wire = fresh.model_copy(update={"conditions": [ready, *fresh.conditions[1:]]}).to_wire()
    healthy = product(wire)
    assert summarize(healthy).health is Health.HEALTHY
    stale, _ = status_after(healthy, [done], [], now=5 + 7200)
    stale_wire = stale.model_copy(update={"conditions": [ready, *stale.conditions[1:]]})
    aged = product(stale_wire.to_wire())
    summary = summarize(aged)
    assert (summary.health, summary.health_reason) == (Health.UNHEALTHY, Reason.STALE)
    detail = build_product_detail(
        aged,
        graph=build_lineage([aged], listed=lambda entry: True),
        jobs=[],
        connection=None,
        export_formats=(),
        now=T0 + timedelta(seconds=5 + 7200),
    )
    port = detail.ports[0]
    assert port.health is not None
    assert (port.health.rows, port.health.size_bytes, port.health.last_updated) == (
        42, 8192, at(5))  # fmt: skip
    assert (port.health.freshness, port.health.failed_checks) == ("Stale", ["rows"])
    assert [slo.state.value for slo in port.slos] == ["stale"]
    pipeline = detail.pipelines[0]
    assert (pipeline.rows_written, pipeline.checks) == (42, "1 passed, 1 failed: rows")


def test_a_sql_pipeline_writing_a_volume_port_is_reported_as_one_that_cannot_run():
    subject = product()
    volume_port = subject.spec.output_ports[0].model_copy(update={"store": None})
    spec = subject.spec.model_copy(update={"output_ports": [volume_port]})
    on_a_volume = subject.model_copy(update={"spec": spec})
    status = compute_status(
        on_a_volume, Observed({}), failures=Failures(), prometheus_available=False, now=at(0)
    )
    pipelines = next(c for c in status.conditions if c.type == "PipelinesReady")
    assert (pipelines.status.value, pipelines.reason) == ("False", Reason.OUTPUT_NOT_A_TABLE)
    assert "give port daily a store" in pipelines.message


def test_a_run_under_way_is_held_back_until_it_ends():
    subject = product(PLACED)
    running = job("revenue-build-1", state=None, created=0)
    under_way, _ = status_after(subject, [running], [], now=5)
    assert runs_in_progress(subject.status, under_way)
    done = job("revenue-build-1", state="Complete", created=0)
    ended, _ = status_after(subject, [done], [pod(done, {"exitCode": 0, "message": report()})], 20)
    assert not runs_in_progress(subject.status, ended)
    written = product(ended.to_wire())
    again, _ = status_after(written, [done], [], now=30)
    assert not runs_in_progress(written.status, again)


def running_job(name: str, *, created: float, ready: int) -> dict[str, Any]:
    running = job(name, state=None, created=created)
    running["status"].update(active=1, ready=ready)
    return running


def test_a_run_whose_container_ended_with_code_0_is_shown_succeeded_before_its_job_is_marked():
    subject = product(PLACED)
    started = running_job("revenue-build-1", created=0, ready=1)
    assert not runs_to_read(subject, [started])  # its pod runs: nothing to read
    ended = running_job("revenue-build-1", created=0, ready=0)
    assert runs_to_read(subject, [ended])  # not ready any more: its container may have ended
    finished = {"exitCode": 0, "message": report(), "finishedAt": at(9.5)}
    early, runs = status_after(subject, [ended], [pod(ended, finished)], now=11)
    pipeline = early.pipelines[0]
    assert pipeline.last_run is not None
    assert (pipeline.last_run.result, pipeline.last_run.rows_written) == (RunStatus.SUCCEEDED, 42)
    assert (pipeline.last_run_status, pipeline.last_successful_time) == (
        RunStatus.SUCCEEDED, at(9))  # fmt: skip  # the report's end
    assert [run.outcome for run in runs] == [RunOutcome.SUCCEEDED]
    assert not runs_in_progress(subject.status, early)  # written now, not held
    # The Job controller marks the Job Complete later: nothing to read, the status unchanged.
    shown = product(early.to_wire())
    marked = job("revenue-build-1", state="Complete", created=0)
    assert not runs_to_read(shown, [marked])
    later, again = status_after(shown, [marked], [], now=13)
    assert later.pipelines == early.pipelines and again == []


def test_a_container_that_ended_with_another_code_waits_for_the_job_and_its_retries():
    subject = product(PLACED)
    ended = running_job("revenue-build-1", created=0, ready=0)
    failed = {"exitCode": 1, "message": report(ok=False), "finishedAt": at(9.5)}
    status, runs = status_after(subject, [ended], [pod(ended, failed)], now=11)
    assert status.pipelines[0].last_run is not None
    assert status.pipelines[0].last_run.result is RunStatus.RUNNING
    assert runs_in_progress(subject.status, status)  # held until the Job says
    assert [run.outcome for run in runs] == [RunOutcome.RUNNING]
