"""The Argo CD health checks the chart ships (Lua, run with lupa as Argo CD's Lua 5.1 would):
Healthy when Ready (and a product's DataHealthy) are True, Degraded with the reason when Ready
is False for a reason that needs a change or the data is unhealthy, Progressing while the
operator converges. The DataProduct statuses are the ones the operator's status code computes;
the integration tier runs the same scripts on objects of a running operator."""

from __future__ import annotations

from typing import Any

import pytest

from dataproduct_operator.api.conditions import Condition, ConditionStatus
from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.manifests.argocd import TRANSIENT_REASONS, build_health_checks
from dataproduct_operator.status.dataproduct import Failures, Mismatch, compute_mismatch_status
from tests.argocd import health
from tests.unit.test_specs_and_status import OOM_KILLED, failed_run_status, product, status_of


def as_object(subject: DataProduct, status: Any, *, generation: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {
            "name": subject.name,
            "namespace": subject.namespace,
            "generation": generation,
        },
        "status": status.to_wire(),
    }


def with_data_health(obj: dict[str, Any], status: str, reason: str, message: str) -> dict[str, Any]:
    condition = Condition(
        type="DataHealthy", status=ConditionStatus(status), reason=reason, message=message
    )
    others = [c for c in obj["status"]["conditions"] if c["type"] != "DataHealthy"]
    obj["status"]["conditions"] = [*others, condition.to_wire()]
    return obj


def ready_product() -> dict[str, Any]:
    subject = product()
    return as_object(subject, status_of(subject, "Bound", "2026-01-01T00:00:01Z"))


def test_a_ready_product_with_healthy_data_is_healthy() -> None:
    obj = with_data_health(ready_product(), "True", "Healthy", "Every port is fresh")
    assert health(obj)[0] == "Healthy"


def test_a_ready_product_without_data_yet_is_healthy_and_says_so() -> None:
    # A status written before the operator knew DataHealthy
    older = ready_product()
    older["status"]["conditions"] = [
        c for c in older["status"]["conditions"] if c["type"] != "DataHealthy"
    ]
    assert health(older) == ("Healthy", "Ready; data health not known yet")
    computed = ready_product()  # no run yet: the operator's own NoDataYet
    assert health(computed) == (
        "Healthy", "Ready; NoDataYet: no run has published or checked data yet")  # fmt: skip
    obj = with_data_health(ready_product(), "Unknown", "NoDataYet", "No run has published yet")
    assert health(obj) == ("Healthy", "Ready; NoDataYet: No run has published yet")


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("Stale", "Output port orders-v1 was last updated 26h ago; its SLO is 24h"),
        ("ChecksFailing", "Output port orders-v1: check no-negative-amounts failed"),
        ("RunsFailing", "Pipeline ingest: the last run was OOMKilled"),
    ],
)
def test_unhealthy_data_degrades_a_ready_product_with_the_reason(reason: str, message: str) -> None:
    obj = with_data_health(ready_product(), "False", reason, message)
    assert health(obj) == ("Degraded", f"DataHealthy {reason}: {message}")


def test_a_failed_run_degrades_a_ready_product_through_data_healthy() -> None:
    # Ready stays True (provisioned); the failure is DataHealthy's, and Argo CD says why
    subject = product()
    obj = as_object(subject, failed_run_status(subject))
    assert health(obj) == (
        "Degraded",
        f"DataHealthy RunsFailing: pipeline backfill: the last run failed: {OOM_KILLED}",
    )


def test_a_product_without_status_or_behind_its_generation_is_progressing() -> None:
    obj = ready_product()
    status = obj.pop("status")
    assert health(obj) == ("Progressing", "Waiting for the operator's first status")
    obj["status"] = status
    obj["metadata"]["generation"] = 3
    assert health(obj) == ("Progressing", "Waiting for the operator to reconcile generation 3")


def test_an_unbound_claim_is_progressing_with_the_aspects_reason() -> None:
    subject = product()
    obj = as_object(subject, status_of(subject, "Pending", "2026-01-01T00:00:01Z"))
    status, message = health(obj)
    assert status == "Progressing"
    assert message.startswith("ClaimsNotBound: ") and "orders-orders-v1 is Pending" in message


def test_a_failed_apply_retried_with_backoff_is_progressing() -> None:
    subject = product()
    failures = Failures({"StorageReady": "PersistentVolumeClaim orders-orders-v1: conflict"})
    assert health(
        as_object(subject, status_of(subject, "Bound", "2026-01-01T00:00:01Z", failures))
    )[0] == ("Progressing")


def test_a_domain_mismatch_needs_a_change_and_is_degraded() -> None:
    subject = product()
    subject = subject.model_copy(
        update={"status": status_of(subject, "Bound", "2026-01-01T00:00:01Z")}
    )
    mismatch = Mismatch("DomainMismatch", "spec.domain is sales, but namespace sales is finance's")
    obj = as_object(subject, compute_mismatch_status(subject, mismatch, now="2026-01-01T00:00:02Z"))
    assert health(obj) == (
        "Degraded",
        "DomainMismatch: spec.domain is sales, but namespace sales is finance's",
    )


def conditions(*items: tuple[str, str, str, str]) -> list[dict[str, str]]:
    return [{"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in items]


def cluster_object(kind: str, *items: tuple[str, str, str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "sales", "generation": 1},
        "status": {"observedGeneration": 1, "conditions": conditions(*items)},
    }


@pytest.mark.parametrize(
    ("kind", "items", "expected"),
    [
        (
            "DataDomain",
            [
                ("Ready", "True", "Reconciled", "Domain sales is onboarded"),
                ("NamespaceReady", "True", "NamespaceActive", ""),
            ],
            ("Healthy", "Reconciled: Domain sales is onboarded"),
        ),
        (
            "DataDomain",
            [
                ("Ready", "False", "QuotaNotReady", "QuotaReady: quota sales is not applied yet"),
                ("QuotaReady", "False", "QuotaPending", "quota sales is not applied yet"),
            ],
            ("Progressing", "QuotaPending: quota sales is not applied yet"),
        ),
        (
            "DataDomain",
            [
                ("Ready", "False", "NamespaceTaken", "Namespace sales is held by DataDomain shop"),
                ("NamespaceReady", "False", "NamespaceTaken", "held by shop"),
            ],
            ("Degraded", "NamespaceTaken: Namespace sales is held by DataDomain shop"),
        ),
        (
            "DataDomain",
            [("Ready", "Unknown", "Reconciling", "")],
            ("Progressing", "Reconciling"),
        ),
        (
            "MeshPolicy",
            [("Ready", "True", "Reconciled", "Enforced"), ("Valid", "True", "Compiled", "")],
            ("Healthy", "Reconciled: Enforced"),
        ),
        (
            "MeshPolicy",
            [("Ready", "False", "Invalid", "rule 1: undeclared reference to 'spec.owner.tem'")],
            ("Degraded", "Invalid: rule 1: undeclared reference to 'spec.owner.tem'"),
        ),
        (
            "MeshPolicy",
            [("Ready", "False", "TypeCheckPending", "The API server has not type-checked it")],
            ("Progressing", "TypeCheckPending: The API server has not type-checked it"),
        ),
        (
            "MeshPolicy",
            [("Ready", "False", "NoAdmissionSlot", "32 policies are enforced already")],
            ("Degraded", "NoAdmissionSlot: 32 policies are enforced already"),
        ),
        ("MeshPolicy", [], ("Progressing", "Waiting for Ready")),
    ],
)
def test_domains_and_policies_follow_their_ready_condition(
    kind: str, items: list[tuple[str, str, str, str]], expected: tuple[str, str]
) -> None:
    assert health(cluster_object(kind, *items)) == expected


def test_only_a_product_is_judged_on_its_data() -> None:
    checks = {check.kind: check for check in build_health_checks()}
    assert set(checks) == {"DataProduct", "DataDomain", "MeshPolicy"}
    assert checks["DataProduct"].key == "resource.customizations.health.datamesh.dev_DataProduct"
    assert "DataHealthy" in checks["DataProduct"].script
    assert "DataHealthy" not in checks["DataDomain"].script + checks["MeshPolicy"].script
    stale = [("Ready", "True", "Reconciled", ""), ("DataHealthy", "False", "Stale", "old")]
    assert health(cluster_object("DataDomain", *stale))[0] == "Healthy"


def test_every_transient_reason_is_progressing_and_any_other_degraded() -> None:
    for reason in sorted(TRANSIENT_REASONS):
        obj = cluster_object("MeshPolicy", ("Ready", "False", reason, "passes"))
        assert health(obj)[0] == "Progressing", reason
    for reason in ("InvalidSpec", "Forbidden", "StoreNotFound", "AccessNotGranted"):
        obj = cluster_object("MeshPolicy", ("Ready", "False", reason, "needs a change"))
        assert health(obj)[0] == "Degraded", reason


def test_conditions_without_a_reason_or_message_are_judged_not_failed_on() -> None:
    obj = cluster_object("DataDomain")
    obj["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    assert health(obj) == ("Degraded", "Ready")
    obj["status"]["conditions"] = [{"type": "Ready", "status": "True", "reason": "Reconciled"}]
    assert health(obj) == ("Healthy", "Reconciled")
