"""The local cluster's Prometheus (what ``make dev`` starts): it scrapes the operator, loads the
alert rules of every product, follows their changes, and fires their alerts (who may reach it:
tests/security/test_local_prometheus_access.py). The Argo CD health checks the chart ships
judge the same live objects."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from dataproduct_operator.cluster import controlplane, prometheus
from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.cluster.process import ComponentProcess, stop_process
from dataproduct_operator.constants import ANNOTATION_RUN
from dataproduct_operator.errors import UserError
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.specs.alerts import CHECKS_FAILING, PIPELINE_FAILED, STALE
from tests.argocd import health
from tests.helpers import wait_for
from tests.meshpolicies import POLICIES, MakePolicy
from tests.products import (
    OperatorProcess,
    change_spec,
    condition,
    create_ready,
    example,
    free_port,
    product_path,
)

DOMAINS = "/apis/datamesh.dev/v1alpha1/datadomains"


@pytest.fixture
def local_prometheus(
    control_plane: ClusterInfo, kube: BlockingClient, operator: OperatorProcess, domain: str
) -> Iterator[tuple[ComponentProcess, int]]:
    """The local Prometheus of the session's cluster, scraping this module's operator."""
    port = free_port()
    started = time.monotonic()
    process = prometheus.start(
        control_plane.directory,
        port=port,
        metrics_port=operator.metrics_port,
        products=[],  # each test's products come through sync_rules, as dpo dev's do
    )
    print(f"prometheus ready after {time.monotonic() - started:.2f}s")  # noqa: T201 - measured
    yield process, port
    stop_process(process)


def api(port: int, path: str, **query: str) -> Any:
    url = f"http://127.0.0.1:{port}/api/v1/{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own server
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def rule_groups(port: int) -> dict[str, list[str]]:
    return {
        group["name"]: [rule["name"] for rule in group["rules"]]
        for group in api(port, "rules")["groups"]
    }


def test_local_prometheus_scrapes_the_operator_and_evaluates_every_products_rules(
    local_prometheus: tuple[ComponentProcess, int],
    kube: BlockingClient,
    namespace: str,
    control_plane: ClusterInfo,
) -> None:
    process, port = local_prometheus
    group = f"dataproduct-{namespace}-orders"
    create_ready(kube, example(namespace))
    layout = prometheus.PrometheusLayout.of(control_plane.directory)
    assert prometheus.sync_rules(kube, layout, process)  # the product is new: rules reloaded

    def target_up() -> bool:
        targets = api(port, "targets")["activeTargets"]
        return [(t["labels"]["job"], t["health"]) for t in targets] == [(prometheus.JOB, "up")]

    wait_for(target_up, timeout=60, description="the operator's metrics target up")
    rules = wait_for(lambda: rule_groups(port).get(group), timeout=30, description="rules")
    assert rules == [STALE, STALE, CHECKS_FAILING, PIPELINE_FAILED]  # two ports with an SLO

    def ready_series() -> list[Any]:
        query = f'dataproduct_ready{{namespace="{namespace}",dataproduct="orders"}}'
        return [r["value"][1] for r in api(port, "query", query=query)["result"]]

    # The scrape after the operator saw the product Ready (an earlier one may hold its 0).
    wait_for(lambda: ready_series() == ["1"], timeout=60, description="dataproduct_ready 1")

    # A change of the product reaches the rules: alerts disabled, its group goes.
    change_spec(
        kube, namespace, "orders", lambda spec: spec.update(monitoring={"alerts": "Disabled"})
    )
    wait_for(
        lambda: prometheus.sync_rules(kube, layout, process) or group not in rule_groups(port),
        timeout=30,
        description="the rules without the product's group",
    )
    wait_for(lambda: group not in rule_groups(port), timeout=30, description="group gone")
    assert not prometheus.sync_rules(kube, layout, process)  # unchanged: no reload


def firing(port: int, namespace: str) -> list[dict[str, str]]:
    """The labels of the alerts firing for the products of ``namespace``."""
    alerts = api(port, "alerts")["alerts"]
    return [
        a["labels"]
        for a in alerts
        if a["state"] == "firing" and a["labels"].get("namespace") == namespace
    ]


def test_a_failed_run_fires_its_alert_and_degrades_the_product_in_argocd(
    local_prometheus: tuple[ComponentProcess, int],
    kube: BlockingClient,
    namespace: str,
    control_plane: ClusterInfo,
) -> None:
    process, port = local_prometheus
    document = example(namespace)
    for pipeline in document["spec"]["pipelines"]:
        if pipeline["name"] == "ingest":
            pipeline["schedule"] = "0 0 1 1 *"  # no scheduled run during the test
        else:  # kwok fails the pod of an on-demand backfill
            pipeline["env"] = [{"name": "KWOK_SIMULATE_FAILURE", "value": "true"}]
            pipeline["retries"] = 0
    create_ready(kube, document)
    prometheus.sync_rules(kube, prometheus.PrometheusLayout.of(control_plane.directory), process)
    group = f"dataproduct-{namespace}-orders"
    wait_for(lambda: group in rule_groups(port), timeout=30, description="the product's rules")
    assert firing(port, namespace) == []

    kube.merge_patch(
        product_path(namespace, "orders"),
        {"metadata": {"annotations": {ANNOTATION_RUN: "backfill"}}},
    )
    alerts = wait_for(
        lambda: firing(port, namespace), timeout=120, description="the alert of the failed run"
    )
    assert alerts == [
        {
            "alertname": PIPELINE_FAILED,
            "namespace": namespace,
            "dataproduct": "orders",
            "pipeline": "backfill",
            "domain": namespace,
            "severity": "warning",
            "instance": alerts[0]["instance"],
            "job": prometheus.JOB,
        }
    ]
    # Still provisioned (Ready): Argo CD shows it Degraded through DataHealthy, naming the run
    product = kube.get(product_path(namespace, "orders"))
    assert condition(product, "Ready")["status"] == "True"  # type: ignore[index]
    backfill = next(p for p in product["status"]["pipelines"] if p["name"] == "backfill")
    why = backfill["lastRun"]["message"]
    assert health(product) == (
        "Degraded",
        f"DataHealthy RunsFailing: pipeline backfill: the last run failed: {why}",
    )


def test_argocd_health_checks_judge_the_live_objects(
    operator: OperatorProcess,
    kube: BlockingClient,
    domain: str,
    namespace: str,
    make_policy: MakePolicy,
) -> None:
    suffix = namespace[-6:]
    rule = {"name": "owned", "expression": "has(object.spec.owner)", "message": "an owner"}
    broken = {"name": "broken", "expression": "object.spec.lifecycle ==", "message": "never"}
    make_policy(f"health-ok-{suffix}", [rule], "Audit")
    make_policy(f"health-bad-{suffix}", [broken], "Deny")

    def policy_health(name: str) -> tuple[str, str] | None:
        policy = kube.get(f"{POLICIES}/{name}")
        current = (policy.get("status") or {}).get("observedGeneration") == policy["metadata"][
            "generation"
        ]
        return health(policy) if current and condition(policy, "Ready") else None

    ok = wait_for(lambda: policy_health(f"health-ok-{suffix}"), description="policy judged")
    assert ok[0] == "Healthy", ok
    bad = wait_for(lambda: policy_health(f"health-bad-{suffix}"), description="policy judged")
    assert bad[0] == "Degraded" and bad[1].startswith("Invalid: "), bad
    wait_for(
        lambda: health(kube.get(f"{DOMAINS}/{domain}"))[0] == "Healthy",
        timeout=60,
        description="the DataDomain Healthy",
    )
    product = create_ready(kube, example(namespace))
    assert health(product) == (
        "Healthy", "Ready; NoDataYet: no run has published or checked data yet")  # fmt: skip

    def moved_to_a_missing_store(spec: dict[str, Any]) -> None:
        spec["outputPorts"][0].pop("storage", None)
        spec["outputPorts"][0]["store"] = {"name": "no-such-store"}

    generation = change_spec(kube, namespace, "orders", moved_to_a_missing_store)

    def judged() -> tuple[str, str] | None:
        obj = kube.get(product_path(namespace, "orders"))
        current = obj.get("status", {}).get("observedGeneration") == generation
        return health(obj) if current else None

    status, message = wait_for(judged, timeout=60, description="the product's new status")
    assert status == "Degraded" and message.startswith("StoreNotFound: "), message


def test_a_taken_port_is_refused_saying_which_option_to_change(
    control_plane: ClusterInfo,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=f"port {port} is taken: choose another with "):
            prometheus.start(control_plane.directory, port=port, metrics_port=1, products=[])
    assert prometheus.NAME not in {
        c.name for c in controlplane.running_components(control_plane.directory)
    }
