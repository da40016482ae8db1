"""Runs that really run on the real node, read back by the operator (reconcile/runs.py,
status/health.py): an image pipeline's run report reaches ``lastRun`` and the port's health
with the store's figures; a failed Error check turns DataHealthy False with the check named; an
OOM-killed or timed-out run is said as such; and data turns Stale with no run happening, with
the Events of each. The operator runs its pipelines on the real node (its placement flags)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from dataproduct_operator.cluster import images
from dataproduct_operator.constants import ANNOTATION_RUN
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.helpers import wait_for
from tests.products import OperatorProcess, condition, get_if_present, product_path, wait_ready
from tests.stores import STORE


@pytest.fixture
def real_node_operator(store: str, node_operator: OperatorProcess) -> OperatorProcess:
    """The operator placing every pipeline pod on the real node, with the module's store."""
    return node_operator


def reporting(report: dict[str, Any], exit_code: int = 0) -> list[str]:
    """A toolbox command that leaves ``report`` (its times filled in at run time) as the run
    report and exits with ``exit_code``."""
    text = json.dumps(report).replace("NOW", "'\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"'")
    script = f"echo 'publishing'; printf '%s' '{text}' > /dev/termination-log; exit {exit_code}"
    return ["sh", "-c", script]


REPORT = {
    "result": "Succeeded", "startTime": "NOW", "completionTime": "NOW", "rowsRead": {"raw": 9},
    "rowsWritten": 7, "watermark": "NOW", "error": None,
    "checks": [{"name": "positive", "severity": "Error", "passed": True, "violations": 0},
               {"name": "enough", "severity": "Warning", "passed": False, "violations": 1}],
}  # fmt: skip
FAILED_CHECK = {
    **REPORT, "result": "Failed", "rowsWritten": 0, "error": "check(s) failed: positive",
    "checks": [{"name": "positive", "severity": "Error", "passed": False, "violations": 3}],
}  # fmt: skip


def product(namespace: str, name: str, command: list[str], **pipeline: Any) -> dict[str, Any]:
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "domain": namespace,
            "owner": {"team": f"{namespace}-team"},
            "description": "Rows a pipeline on the real node reports on.",
            "outputPorts": [{
                "name": "daily", "store": {"name": STORE},
                "schema": [{"name": "day", "type": "date", "unique": True}],
                "slo": {"freshness": "45s"},
            }],
            "pipelines": [{"name": "build", "image": images.image_spec("toolbox").ref,
                           "command": command, **pipeline}],
        },
    }  # fmt: skip


def run(kube: BlockingClient, namespace: str, name: str, request: str) -> None:
    kube.merge_patch(
        product_path(namespace, name), {"metadata": {"annotations": {ANNOTATION_RUN: request}}}
    )


def last_run(kube: BlockingClient, namespace: str, name: str, job_part: str) -> dict[str, Any]:
    """The product once its lastRun is a finished run of a Job named with ``job_part``."""

    def finished() -> dict[str, Any] | None:
        found = get_if_present(kube, product_path(namespace, name))
        for pipeline in ((found or {}).get("status") or {}).get("pipelines") or []:
            last = pipeline.get("lastRun") or {}
            if job_part in (last.get("jobName") or "") and last.get("result") != "Running":
                return found
        return None

    return wait_for(finished, timeout=120, description=f"the run {job_part} of {name} to end")


def events(kube: BlockingClient, namespace: str, name: str) -> dict[str, list[str]]:
    listed = kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    found: dict[str, list[str]] = {}
    for event in listed:
        if event.get("involvedObject", {}).get("name") == name:
            found.setdefault(event.get("reason", ""), []).append(event.get("message", ""))
    return found


def test_a_report_reaches_the_status_and_the_data_turns_stale_with_no_run(
    kube: BlockingClient, domain: str, real_node_operator: OperatorProcess
) -> None:
    kube.create(
        f"/apis/datamesh.dev/v1alpha1/namespaces/{domain}/dataproducts",
        product(domain, "daily", reporting(REPORT)),
    )
    wait_ready(kube, domain, "daily", timeout=90)
    run(kube, domain, "daily", "build:first")
    found = last_run(kube, domain, "daily", "daily-build")
    last = found["status"]["pipelines"][0]["lastRun"]
    assert (last["result"], last["rowsWritten"]) == ("Succeeded", 7)
    assert last["checks"] == {
        "passed": 1, "failed": 1, "failedNames": ["enough"], "failedErrors": 0}  # fmt: skip
    health = found["status"]["outputPorts"][0]["health"]
    # From the store: the table is empty; its unique index has its first page
    assert health["rows"] == 0 and health["sizeBytes"] > 0
    published = datetime.fromisoformat(last["completionTime"].replace("Z", "+00:00"))
    updated = datetime.fromisoformat(health["lastUpdated"].replace("Z", "+00:00"))
    assert abs((updated - published).total_seconds()) <= 2  # the report's watermark
    assert (health["freshness"], health["checks"]) == ("Met", "Passing")
    assert (condition(found, "DataHealthy") or {}).get("status") == "True"
    assert "enough" in " ".join(events(kube, domain, "daily").get("QualityCheckFailed", []))

    def stale() -> dict[str, Any] | None:
        now = get_if_present(kube, product_path(domain, "daily")) or {}
        return now if (condition(now, "DataHealthy") or {}).get("reason") == "Stale" else None

    aged = wait_for(stale, timeout=90, description="the data to turn stale with no run")
    message = (condition(aged, "DataHealthy") or {}).get("message", "")
    assert "port daily" in message and "45s" in message
    assert aged["status"]["outputPorts"][0]["health"]["freshness"] == "Stale"
    assert events(kube, domain, "daily").get("FreshnessSLOMissed")


def test_a_failed_error_check_an_oom_kill_and_a_deadline_are_reported_as_such(
    kube: BlockingClient, domain: str, real_node_operator: OperatorProcess
) -> None:
    products = f"/apis/datamesh.dev/v1alpha1/namespaces/{domain}/dataproducts"
    kube.create(products, product(domain, "gate", reporting(FAILED_CHECK, exit_code=1)))
    hog = ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo ${#x}"]
    kube.create(products, product(domain, "hog", hog, resources={"limits": {"memory": "32Mi"}}))
    kube.create(products, product(domain, "slow", ["sleep", "60"], timeoutSeconds=3))
    for name in ("gate", "hog", "slow"):
        wait_ready(kube, domain, name, timeout=90)
        run(kube, domain, name, "build:once")

    gate = last_run(kube, domain, "gate", "gate-build")
    last = gate["status"]["pipelines"][0]["lastRun"]
    assert last["result"] == "Failed" and "positive" in last["message"]
    healthy = condition(gate, "DataHealthy") or {}
    assert (healthy.get("status"), healthy.get("reason")) == ("False", "ChecksFailing")
    assert "positive" in healthy["message"]
    assert gate["status"]["outputPorts"][0]["health"]["checks"] == "Failing"
    assert "positive" in " ".join(events(kube, domain, "gate").get("QualityCheckFailed", []))

    hog_run = last_run(kube, domain, "hog", "hog-build")["status"]["pipelines"][0]["lastRun"]
    assert hog_run["result"] == "Failed" and hog_run["message"].startswith("OOMKilled")
    slow = last_run(kube, domain, "slow", "slow-build")
    slow_run = slow["status"]["pipelines"][0]["lastRun"]
    assert slow_run["result"] == "Failed" and slow_run["message"].startswith("DeadlineExceeded")
    healthy = condition(slow, "DataHealthy") or {}
    assert (healthy.get("status"), healthy.get("reason")) == ("False", "RunsFailing")
