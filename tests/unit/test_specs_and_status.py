"""Pure builders and status: what the operator would create and report, without a cluster."""

from __future__ import annotations

from typing import Any

import yaml

from dataproduct_operator.api.dataproduct import (
    DataProduct,
    DataProductStatus,
    PipelineStatus,
    RunStatus,
)
from dataproduct_operator.constants import ANNOTATION_DESIRED_HASH, LABEL_PIPELINE, LABEL_PRODUCT
from dataproduct_operator.specs.dataproduct import build_children, parse_run_request
from dataproduct_operator.specs.stream import render_file
from dataproduct_operator.status.dataproduct import (
    Failures,
    Mismatch,
    Observed,
    compute_mismatch_status,
    compute_run_events,
    compute_status,
    find_domain_mismatch,
    not_onboarded,
)
from dataproduct_operator.status.runs import observe_run
from tests.helpers import MESH_FIXTURE, example_product

EXAMPLE = MESH_FIXTURE / "sales-orders.yaml"


def product(**changes: Any) -> DataProduct:
    document = example_product()
    document["metadata"].update(uid="u-1", generation=2)
    document["spec"].update(changes)
    return DataProduct.from_object(document)


def by_kind(children: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [c for c in children if c["kind"] == kind]


def test_every_child_is_labelled_and_hash_stamped() -> None:
    for child in build_children(product()):
        labels = child["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "dataproduct-operator"
        assert labels["datamesh.dev/data-product"] == "orders"
        assert labels["datamesh.dev/domain"] == "sales"
        assert ANNOTATION_DESIRED_HASH in child["metadata"]["annotations"]


def test_retained_claims_have_no_owner_and_deleted_ones_do() -> None:
    retained = by_kind(build_children(product()), "PersistentVolumeClaim")
    assert all("ownerReferences" not in c["metadata"] for c in retained)
    deleted = by_kind(build_children(product(deletionPolicy="Delete")), "PersistentVolumeClaim")
    assert all(c["metadata"]["ownerReferences"][0]["uid"] == "u-1" for c in deleted)


def test_a_claim_never_shrinks_but_grows() -> None:
    document = example_product()
    document["spec"]["outputPorts"][0]["storage"] = {"size": "5Gi"}
    on_a_volume = DataProduct.from_object(document)

    def size(observed: str) -> str:
        claims = by_kind(
            build_children(on_a_volume, observed_claim_sizes={"orders-v1": observed}),
            "PersistentVolumeClaim",
        )
        return str(claims[0]["spec"]["resources"]["requests"]["storage"])

    assert size("10Gi") == "10Gi"  # spec says 5Gi: keep the larger existing claim
    assert size("1Gi") == "5Gi"


def test_pipeline_pods_meet_the_restricted_profile() -> None:
    cronjob = by_kind(build_children(product()), "CronJob")[0]
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts == {"/tmp", "/data/orders-v1", "/data/daily-revenue"}  # noqa: S108


def test_run_annotation_names_a_pipeline_and_a_new_value_makes_a_new_run() -> None:
    first, second = parse_run_request("backfill"), parse_run_request("backfill:2")
    assert first is not None and second is not None
    assert (first.pipeline, second.pipeline) == ("backfill", "backfill")
    assert first.run_id != second.run_id
    assert parse_run_request("") is None


def test_a_run_of_a_scheduled_pipeline_is_ignored() -> None:
    document = example_product()
    document["metadata"]["annotations"] = {"datamesh.dev/run": "ingest"}
    assert by_kind(build_children(DataProduct.from_object(document)), "Job") == []
    document["metadata"]["annotations"] = {"datamesh.dev/run": "backfill"}
    assert len(by_kind(build_children(DataProduct.from_object(document)), "Job")) == 1


def test_without_prometheus_no_rule_is_built() -> None:
    assert by_kind(build_children(product(), prometheus_available=False), "PrometheusRule") == []
    assert len(by_kind(build_children(product()), "PrometheusRule")) == 1


def test_render_prints_a_yaml_stream_of_every_child() -> None:
    documents = list(yaml.safe_load_all(render_file(EXAMPLE, default_namespace="default")))
    assert [d["kind"] for d in documents].count("PersistentVolumeClaim") == 2
    assert all(d["metadata"]["namespace"] == "sales" for d in documents)


def _observed(children: list[dict[str, Any]], claim_phase: str) -> Observed:
    for child in children:
        if child["kind"] == "PersistentVolumeClaim":
            child["status"] = {"phase": claim_phase}
    return Observed({(c["kind"], c["metadata"]["name"]): c for c in children})


def status_of(subject: DataProduct, phase: str, now: str, failures: Failures | None = None) -> Any:
    observed = _observed(build_children(subject), phase)
    return compute_status(
        subject, observed, failures=failures or Failures(), prometheus_available=True, now=now
    )


def test_status_is_ready_when_every_child_is_in_place() -> None:
    subject = product()
    status = status_of(subject, "Bound", "2026-01-01T00:00:01Z")
    conditions = {c.type: c for c in status.conditions}
    assert conditions["Ready"].status.value == "True"
    assert conditions["Ready"].observed_generation == 2
    assert status.observed_generation == 2


def test_status_names_the_unbound_claim_and_keeps_transition_times() -> None:
    subject = product()
    pending = status_of(subject, "Pending", "2026-01-01T00:00:01Z")
    ready = {c.type: c for c in pending.conditions}["Ready"]
    assert (ready.status.value, ready.reason) == ("False", "StorageNotReady")
    assert "claim orders-orders-v1 is Pending" in ready.message
    later = "2026-01-01T00:00:02Z"
    again = status_of(subject.model_copy(update={"status": pending}), "Pending", later)
    ready_again = {c.type: c for c in again.conditions}["Ready"]
    assert ready_again.last_transition_time == "2026-01-01T00:00:01Z"


def test_a_product_outside_its_domains_namespace_is_a_domain_mismatch() -> None:
    subject = product()  # spec.domain sales, namespace sales
    assert find_domain_mismatch(subject, "sales") is None
    nowhere = find_domain_mismatch(subject, None)
    assert nowhere is not None and nowhere.reason == "NamespaceNotInMesh"
    assert "namespace sales belongs to no DataDomain" in nowhere.message
    assert "create a DataDomain for namespace sales" in nowhere.message
    elsewhere = find_domain_mismatch(subject, "finance")
    assert elsewhere is not None and elsewhere.reason == "DomainMismatch"
    assert (
        "spec.domain is sales, but namespace sales belongs to the DataDomain finance"
        in elsewhere.message
    )


def test_a_product_of_a_domain_not_onboarded_yet_waits_for_it() -> None:
    waiting = not_onboarded(product(), "sales")
    assert waiting.reason == "NamespaceNotInMesh"
    assert "the DataDomain sales has not bound the operator there" in waiting.message


def test_a_domain_mismatch_makes_the_product_not_ready_and_keeps_the_rest() -> None:
    ready = product()
    ready = ready.model_copy(update={"status": status_of(ready, "Bound", "2026-01-01T00:00:01Z")})
    mismatch = Mismatch("DomainMismatch", "spec.domain is sales, but ...")
    status = compute_mismatch_status(ready, mismatch, now="2026-01-01T00:00:02Z")
    conditions = {c.type: c for c in status.conditions}
    assert (conditions["Ready"].status.value, conditions["Ready"].reason) == (
        "False",
        "DomainMismatch",
    )
    assert conditions["Ready"].last_transition_time == "2026-01-01T00:00:02Z"
    assert (
        conditions["StorageReady"] == {c.type: c for c in ready.status.conditions}["StorageReady"]
    )
    assert status.observed_generation == 2 and status.output_ports == ready.status.output_ports


def test_apply_failure_is_reported_on_its_aspect() -> None:
    subject = product()
    failures = Failures(
        {"StorageReady": "PersistentVolumeClaim orders-orders-v1: field is immutable"}
    )
    status = status_of(subject, "Bound", "2026-01-01T00:00:01Z", failures)
    storage = {c.type: c for c in status.conditions}["StorageReady"]
    assert (storage.status.value, storage.reason) == ("False", "ApplyFailed")
    assert "immutable" in storage.message


def test_a_run_that_ended_since_the_last_status_is_announced_once() -> None:
    def status(**backfill: str) -> DataProductStatus:
        pipeline = PipelineStatus(name="backfill", kind="Job", object_name="orders-backfill-1")
        return DataProductStatus(pipelines=[pipeline.model_copy(update=backfill)])

    failed = status(last_failure_time="2026-11-25T10:00:00Z")
    events = compute_run_events(status(), failed)
    assert [(e.warning, e.reason) for e in events] == [(True, "RunFailed")]
    assert events[0].message == (
        "Pipeline backfill failed at 2026-11-25T10:00:00Z (Job orders-backfill-1)"
    )
    assert compute_run_events(failed, failed) == []
    succeeded = status(
        last_failure_time="2026-11-25T10:00:00Z", last_successful_time="2026-11-25T11:00:00Z"
    )
    assert [e.reason for e in compute_run_events(failed, succeeded)] == ["RunSucceeded"]
    assert compute_run_events(status(), status()) == []
    # A routine success (none failed before it, or the last run succeeded) has no Event.
    assert compute_run_events(status(), status(last_successful_time="2026-11-25T09:00:00Z")) == []
    again = status(
        last_failure_time="2026-11-25T10:00:00Z", last_successful_time="2026-11-25T12:00:00Z"
    )
    assert compute_run_events(succeeded, again) == []


OOM_KILLED = "OOMKilled: the container used more memory than its limit"


def failed_run_status(subject: DataProduct, now: str = "2026-01-01T00:10:00Z") -> Any:
    """The status the operator computes once the on-demand pipeline ``backfill`` of a product
    whose children are all in place ended with its container OOM-killed."""
    job = {
        "kind": "Job",
        "metadata": {
            "name": "orders-backfill-1",
            "namespace": "sales",
            "uid": "uid-backfill-1",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {LABEL_PRODUCT: "orders", LABEL_PIPELINE: "backfill"},
        },
        "status": {
            "startTime": "2026-01-01T00:00:01Z",
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "lastTransitionTime": "2026-01-01T00:05:00Z",
                }
            ],
        },
    }
    pod = {
        "metadata": {
            "name": "orders-backfill-1-x",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "ownerReferences": [{"kind": "Job", "uid": "uid-backfill-1"}],
        },
        "status": {
            "containerStatuses": [
                {
                    "name": "pipeline",
                    "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
                }
            ]
        },
    }
    children = _observed(build_children(subject), "Bound").children
    runs = {"orders-backfill-1": observe_run(job, [pod], pipeline="backfill")}
    observed = Observed(children, [job], runs)
    return compute_status(
        subject, observed, failures=Failures(), prometheus_available=True, now=now
    )


def test_a_failed_run_keeps_the_product_ready_and_turns_data_healthy_false_naming_why() -> None:
    status = failed_run_status(product())
    conditions = {c.type: c for c in status.conditions}
    as_said = {kind: (c.status.value, c.reason, c.message) for kind, c in conditions.items()}
    assert as_said["Ready"] == ("True", "Reconciled", "all children are in place")
    assert as_said["PipelinesReady"] == ("True", "PipelinesScheduled", "2 pipeline(s) in place")
    assert as_said["DataHealthy"] == (
        "False",
        "RunsFailing",
        f"pipeline backfill: the last run failed: {OOM_KILLED}",
    )
    backfill = next(p for p in status.pipelines if p.name == "backfill")
    assert backfill.last_run_status is RunStatus.FAILED
    assert backfill.last_run is not None and backfill.last_run.message == OOM_KILLED
    assert backfill.last_failure_time == "2026-01-01T00:05:00Z"


def test_a_failed_run_known_only_by_its_last_run_status_still_turns_data_healthy_false() -> None:
    # A status written before the operator read run reports: no lastRun, lastRunStatus Failed
    failed = PipelineStatus(
        name="backfill", kind="Job", object_name="orders-backfill-1",
        last_run_status=RunStatus.FAILED, last_failure_time="2026-01-01T00:05:00Z",
    )  # fmt: skip
    subject = product()
    subject = subject.model_copy(update={"status": DataProductStatus(pipelines=[failed])})
    status = status_of(subject, "Bound", "2026-01-01T00:10:00Z")
    conditions = {c.type: (c.status.value, c.reason, c.message) for c in status.conditions}
    assert conditions["Ready"][:2] == ("True", "Reconciled")
    assert conditions["PipelinesReady"][:2] == ("True", "PipelinesScheduled")
    assert conditions["DataHealthy"] == (
        "False",
        "RunsFailing",
        "pipeline backfill: the last run failed: the Job failed",
    )
