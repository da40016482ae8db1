"""OpenLineage run events leave the cluster: nothing secret goes with them. Source URIs with
credentials anywhere a URI can hide them, literal environment values, Secret names, a check's
SQL; the sink's URL refused with credentials in it and logged without its query; a Hidden
product's runs withheld (no events, so nothing reaches even a sink on loopback)."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.openlineage.client import OpenLineageClient, emit_run_events
from dataproduct_operator.openlineage.endpoint import OpenLineageSettingError, check_url
from dataproduct_operator.openlineage.events import EventType, build_run_event
from dataproduct_operator.openlineage.naming import external_dataset
from dataproduct_operator.runner.report import CheckResult, RunReport, RunResult
from dataproduct_operator.status.runs import ObservedRun, RunOutcome
from tests.helpers import example_product
from tests.lineage_helpers import URI_CASES

SECRET = "hunter2"
STARTED = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
ENDED = datetime(2026, 11, 30, 1, 5, tzinfo=UTC)


def _product(uri: str, *, hidden: bool = False) -> DataProduct:
    """The example sales/orders reading ``uri`` (its image pipelines are given it), a sql
    pipeline reading its upstream with a check whose SQL holds a literal, an image pipeline with
    a literal environment value and a Secret reference."""
    document = copy.deepcopy(example_product())
    spec = document["spec"]
    spec["inputs"][0]["external"]["uri"] = uri
    spec["outputPorts"][0]["checks"] = [
        {"name": "no-test-cards", "sql": "SELECT count(*) FROM orders WHERE card = 'hunter2'"}
    ]
    spec["pipelines"][0]["env"] = [
        {"name": "API_TOKEN", "value": SECRET},
        {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "orders-hunter2", "key": "pw"}}},
    ]
    spec["pipelines"].append(
        {
            "name": "enrich",
            "sql": "SELECT * FROM customers WHERE note <> 'hunter2'",
            "output": "orders-v1",
            "sources": ["customers"],
        }
    )
    if hidden:
        spec["discoverability"] = "Hidden"
    return DataProduct.from_object(document)


def _run(pipeline: str, outcome: RunOutcome) -> ObservedRun:
    report = RunReport(
        RunResult.FAILED if outcome is RunOutcome.FAILED else RunResult.SUCCEEDED,
        STARTED,
        ENDED,
        rows_read={"raw": 3, "customers": 2},
        rows_written=3,
        checks=(CheckResult("no-test-cards", "Error", passed=False, violations=1),),
        error="check(s) failed: no-test-cards",
    )
    return ObservedRun(
        namespace="sales",
        product="orders",
        pipeline=pipeline,
        job_name=f"orders-{pipeline}-1",
        job_uid=str(uuid.uuid5(uuid.NAMESPACE_URL, pipeline)),  # a run of each pipeline
        outcome=outcome,
        start_time=STARTED,
        completion_time=ENDED,
        nominal_time=None,
        report=report,
        failure="check(s) failed: no-test-cards; nothing was published",
    )


@pytest.mark.parametrize("uri", [case[0] for case in URI_CASES])
def test_run_events_carry_no_credential_literal_value_or_secret_name(uri: str) -> None:
    product = _product(uri)
    for pipeline in ("ingest", "enrich"):
        for kind in EventType:
            outcome = RunOutcome.FAILED if kind is EventType.FAIL else RunOutcome.SUCCEEDED
            event = build_run_event(
                product, _run(pipeline, outcome), kind, namespace_for_jobs="prod"
            )
            text = json.dumps(event)
            for secret in (SECRET, "hun/ter", "sslpassword", "token@", "p;w", "pa?ss", "pa#ss"):
                assert secret not in text, (pipeline, kind, secret)
            if pipeline == "ingest":  # an image pipeline is given every input: raw too
                # Named from the redacted URI, as the static export and the catalog name it.
                namespace, name = external_dataset("postgres", uri)
                assert (event["inputs"][0]["namespace"], event["inputs"][0]["name"]) == (
                    namespace,
                    name or "raw",
                )


def test_a_sink_url_with_credentials_is_refused_and_its_query_is_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(OpenLineageSettingError) as refused:
        check_url(f"https://lineage:{SECRET}@marquez.example.com")
    assert SECRET not in str(refused.value)

    async def start_and_stop() -> None:
        client = OpenLineageClient(f"http://127.0.0.1:9/api/v1/lineage?token={SECRET}")
        client.start()
        await client.stop(grace=0.1)

    with caplog.at_level(logging.DEBUG, "dataproduct_operator.openlineage.client"):
        asyncio.run(start_and_stop())
    assert "http://127.0.0.1:9/api/v1/lineage" in caplog.text
    assert SECRET not in caplog.text


def test_a_hidden_products_runs_reach_no_sink_unless_included() -> None:
    """A sink on loopback records what it is sent; a Hidden product's runs send nothing."""
    received: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(json.loads(await request.read()))
        return web.Response(status=201)

    async def scenario(include_hidden: bool) -> list[dict[str, Any]]:
        received.clear()
        app = web.Application()
        app.router.add_post("/api/v1/lineage", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        client = OpenLineageClient(url, include_hidden=include_hidden)
        client.start()
        hidden = _product("s3://bucket/raw/", hidden=True)
        public = _product("s3://bucket/raw/")
        emit_run_events(client, hidden, [], [_run("enrich", RunOutcome.SUCCEEDED)])
        emit_run_events(client, public, [], [_run("ingest", RunOutcome.SUCCEEDED)])
        expected = 4 if include_hidden else 2
        for _ in range(3000):  # 30 s at most
            if len(received) >= expected:
                break
            await asyncio.sleep(0.01)
        await client.stop()
        await runner.cleanup()
        return list(received)

    withheld = asyncio.run(scenario(include_hidden=False))
    assert [e["job"]["name"] for e in withheld] == ["sales/orders/ingest"] * 2
    assert all("enrich" not in json.dumps(e) for e in withheld)
    included = asyncio.run(scenario(include_hidden=True))
    assert sorted({e["job"]["name"] for e in included}) == [
        "sales/orders/enrich",
        "sales/orders/ingest",
    ]
