"""What the mesh state knows of domains' products, Events the API server refuses, the drift
comparison of the fields we set, and one run per run request."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.constants import ANNOTATION_RUN
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.events import post_event
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.mesh import DomainProducts, ProductSummary
from dataproduct_operator.specs.dataproduct import build_children
from dataproduct_operator.specs.drift import drifted_fields
from tests.helpers import example_product


def test_a_domain_knows_its_products_from_a_survey_and_then_from_their_reconciles() -> None:
    known = DomainProducts()
    ready = ProductSummary(True, frozenset({"finance"}))
    assert not known.saw("sales", "orders", ready), "unknown until a survey seeds the namespace"
    assert known.of("sales") is None
    started = time.monotonic()
    known.saw("crm", "x", ready)
    known.seed("sales", {"orders": ProductSummary(False, frozenset())}, started)
    assert known.saw("sales", "orders", ready)  # became Ready: the domain must hear of it
    assert not known.saw("sales", "orders", ready)  # nothing new
    assert known.saw("sales", "refunds", ProductSummary(False, frozenset()))
    assert known.of("sales") == {"orders": ready, "refunds": ProductSummary(False, frozenset())}
    # A survey that began before those reconciles keeps them; one it missed stays.
    known.seed("sales", {"orders": ProductSummary(False, frozenset())}, started)
    assert known.of("sales") == {"orders": ready, "refunds": ProductSummary(False, frozenset())}
    # A later survey is the truth for what did not change since it began.
    known.seed("sales", {"orders": ready}, time.monotonic())
    assert known.of("sales") == {"orders": ready}
    assert known.saw("sales", "orders", None) and known.of("sales") == {}


def test_an_event_the_api_server_refuses_is_logged_and_does_not_fail_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Refusing:
        async def request(self, method: str, path: str, body: object = None) -> object:
            raise ApiError(403, "Forbidden", "namespace sales is being terminated", {})

    involved = {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": "orders", "namespace": "sales", "uid": "u-1"},
    }
    asyncio.run(post_event(cast(KubeClient, Refusing()), involved, "Normal", "Pruned", "Deleted"))
    assert "Could not post the Pruned Event on sales/orders" in caplog.text
    assert "being terminated" in caplog.text


ROLE_BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "RoleBinding",
    "metadata": {
        "name": "orders-reader",
        "namespace": "sales",
        "labels": {"app.kubernetes.io/managed-by": "dataproduct-operator"},
        "annotations": {"datamesh.dev/desired-hash": "abc"},
    },
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "orders-reader"},
    "subjects": [{"kind": "Group", "name": "finance-analysts"}],
}


def live(desired: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``desired`` as the API server returns it: its defaults and others' fields added."""
    found = {
        **desired,
        "metadata": {
            **desired["metadata"],
            "uid": "u-1",
            "resourceVersion": "12",
            "managedFields": [{"manager": "dataproduct-operator"}],
            "labels": {**desired["metadata"]["labels"], "team": "added-by-someone"},
        },
    }
    found.update(changes)
    return found


def test_the_live_object_with_defaults_and_foreign_labels_has_not_drifted() -> None:
    assert drifted_fields(ROLE_BINDING, live(ROLE_BINDING)) == []


def test_a_subject_added_by_hand_is_drift() -> None:
    extra = [*ROLE_BINDING["subjects"], {"kind": "Group", "name": "system:authenticated"}]
    assert drifted_fields(ROLE_BINDING, live(ROLE_BINDING, subjects=extra)) == ["subjects"]


def test_a_changed_or_removed_label_we_set_is_drift() -> None:
    changed = live(ROLE_BINDING)
    changed["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "someone"
    assert drifted_fields(ROLE_BINDING, changed) == ["metadata.labels.app.kubernetes.io/managed-by"]
    removed = live(ROLE_BINDING)
    del removed["metadata"]["annotations"]
    assert drifted_fields(ROLE_BINDING, removed) == ["metadata.annotations"]


def test_quantities_are_compared_by_value_and_empty_maps_match_absent_fields() -> None:
    desired = {
        "apiVersion": "v1",
        "kind": "X",
        "metadata": {"name": "x"},
        "spec": {"size": "1Gi", "cpu": 1, "selector": {}, "ports": []},
    }
    same = {"apiVersion": "v1", "kind": "X", "metadata": {}, "spec": {"size": "1024Mi", "cpu": "1"}}
    assert drifted_fields(desired, same) == []
    other = {"metadata": {}, "spec": {"size": "2Gi", "cpu": "1", "selector": {"a": "b"}}}
    assert drifted_fields(desired, other) == ["spec.size", "spec.selector"]


def test_a_run_request_starts_one_run_even_when_its_job_is_deleted() -> None:
    document = example_product()
    pipeline = next(p["name"] for p in document["spec"]["pipelines"] if not p.get("schedule"))
    document["metadata"]["annotations"] = {ANNOTATION_RUN: f"{pipeline}:first"}
    product = DataProduct.from_object(document)
    jobs = [child for child in build_children(product) if child["kind"] == "Job"]
    assert len(jobs) == 1
    run_id = jobs[0]["metadata"]["labels"]["datamesh.dev/run"]
    started = {"pipelines": [{"name": pipeline, "kind": "Job", "lastRunId": run_id}]}
    after = DataProduct.from_object({**document, "status": started})
    assert [c for c in build_children(after) if c["kind"] == "Job"] == []
    again = {**document, "status": started}
    again["metadata"] = {**document["metadata"], "annotations": {ANNOTATION_RUN: f"{pipeline}:2"}}
    children = build_children(DataProduct.from_object(again))
    assert len([child for child in children if child["kind"] == "Job"]) == 1
