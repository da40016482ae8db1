"""The example mesh as the catalog's store holds it, with statuses fixed in time (tests only).

Every example DataDomain and DataProduct goes through the store's own event path, with the
status the operator would have written: orders and customers Ready, revenue failing its runs,
customer-segments not yet reconciled. ``NOW`` is the clock the pages are rendered at.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.catalog.model import Visibility
from dataproduct_operator.catalog.store import (
    CONFIG_MAPS,
    DOMAINS,
    JOBS,
    PRODUCTS,
    CatalogStore,
)
from dataproduct_operator.specs.dataproduct import build_connection_config_map
from tests.helpers import MESH_FIXTURE, example_documents

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CREATED = "2026-11-01T09:00:00Z"


def _condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-11-20T10:00:00Z",
        "observedGeneration": 1,
    }


READY = [
    _condition("Ready", True, "Ready", "Every part of the product is in place"),
    _condition("StorageReady", True, "ClaimsBound", "2 volume(s) bound"),
    _condition("PipelinesReady", True, "Scheduled", "1 CronJob(s) scheduled"),
    _condition("AccessReady", True, "Bound", "Roles and bindings in place"),
]
# As the operator writes it after a failed run: provisioned (Ready, PipelinesReady True), its
# data not healthy (DataHealthy False, RunsFailing, naming the pipeline and why).
RUNS_FAILING = [
    _condition("Ready", True, "Reconciled", "all children are in place"),
    _condition("PipelinesReady", True, "PipelinesScheduled", "2 pipeline(s) in place"),
    _condition(
        "DataHealthy",
        False,
        "RunsFailing",
        "pipeline recognise: the last run failed: the Job failed",
    ),
]
# Who reads orders: its spec's readers, two approved access requests (one ending within the
# operator's notice period) and one request waiting for the owners.
ORDERS_ACCESS: dict[str, Any] = {
    "readers": [
        {"kind": "Group", "name": "finance-analysts", "source": "Spec"},
        {
            "kind": "ServiceAccount",
            "name": "churn-model",
            "namespace": "marketing",
            "ports": ["orders-v1"],
            "source": "Request",
            "request": "marketing/churn-orders",
            "purpose": "Train the churn model on last quarter's orders",
            "expiresAt": "2026-12-20T12:00:00Z",
        },
        {
            "kind": "Group",
            "name": "risk-analysts",
            "source": "Request",
            "request": "risk/fraud-review",
            "purpose": "Review suspected fraud",
            "expiresAt": "2026-11-22T12:00:00Z",
        },
    ],
    "pending": [
        {
            "request": "crm/enrich-from-orders",
            "uid": "6f1e2a7c-0000-4000-8000-000000000001",
            "kind": "ServiceAccount",
            "name": "enricher",
            "namespace": "crm",
            "purpose": "Enrich the customer records",
            "requestedBy": "carol",
            "duration": "30d",
            "requestedAt": "2026-11-20T11:30:00Z",
        }
    ],
}
STATUSES: dict[str, dict[str, Any]] = {
    "orders": {
        "observedGeneration": 1,
        "conditions": READY,
        "outputPorts": [
            {"name": "orders-v1", "claimName": "orders-orders-v1", "phase": "Bound"},
            {"name": "daily-revenue", "claimName": "orders-daily-revenue", "phase": "Bound"},
        ],
        "pipelines": [
            {
                "name": "ingest",
                "kind": "CronJob",
                "objectName": "orders-ingest",
                "lastScheduleTime": "2026-11-20T11:00:00Z",
                "lastSuccessfulTime": "2026-11-20T11:02:00Z",
                "lastRunStatus": "Succeeded",
            }
        ],
        "access": ORDERS_ACCESS,
    },
    "customers": {"observedGeneration": 1, "conditions": READY},
    "revenue": {
        "observedGeneration": 1,
        "conditions": RUNS_FAILING,
        "pipelines": [
            {
                "name": "recognise",
                "kind": "CronJob",
                "lastFailureTime": "2026-11-20T06:00:00Z",
                "lastRunStatus": "Failed",
            }
        ],
    },
}


def example_objects() -> list[dict[str, Any]]:
    """Every example document, products with their fixed status and metadata."""
    objects = []
    for path in sorted(MESH_FIXTURE.glob("*.yaml")):
        for document in example_documents(path.name):
            obj = copy.deepcopy(document)
            metadata = obj.setdefault("metadata", {})
            metadata.update(resourceVersion="1", creationTimestamp=CREATED, generation=1)
            if obj["kind"] == "DataProduct":
                obj["status"] = STATUSES.get(metadata["name"], {})
            objects.append(obj)
    return objects


def _job(namespace: str, product: str, pipeline: str, name: str, ok: bool | None) -> dict[str, Any]:
    status: dict[str, Any] = {"startTime": f"2026-11-20T{name[-2:]}:00:00Z"}
    if ok is not None:
        if ok:
            status["completionTime"] = f"2026-11-20T{name[-2:]}:02:00Z"
        status["conditions"] = [
            {
                "type": "Complete" if ok else "Failed",
                "status": "True",
                "lastTransitionTime": f"2026-11-20T{name[-2:]}:02:00Z",
            }
        ]
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": "1",
            "creationTimestamp": status["startTime"],
            "labels": {
                "datamesh.dev/data-product": product,
                "datamesh.dev/pipeline": pipeline,
            },
        },
        "status": status,
    }


def example_store(
    visibility: Visibility | None = None, *, extra: list[dict[str, Any]] | None = None
) -> CatalogStore:
    """A synced store of the example mesh (plus ``extra`` objects: products or domains)."""
    store = CatalogStore(visibility)
    for obj in [*example_objects(), *(extra or [])]:
        kind = (obj["apiVersion"], obj["kind"])
        store.record(DOMAINS if kind == DOMAINS else PRODUCTS, "ADDED", obj)
        if kind == PRODUCTS:
            config_map = build_connection_config_map(DataProduct.from_object(obj))
            config_map["metadata"]["resourceVersion"] = "1"
            store.record(CONFIG_MAPS, "ADDED", config_map)
    for name, ok in (("orders-ingest-10", True), ("orders-ingest-11", True)):
        store.record(JOBS, "ADDED", _job("sales", "orders", "ingest", name, ok))
    store.record(
        JOBS, "ADDED", _job("finance", "revenue", "recognise", "revenue-recognise-06", False)
    )
    store.synced = True
    return store


def product_object(
    name: str, namespace: str, *, discoverability: str = "Public", **spec: Any
) -> dict[str, Any]:
    """A small valid DataProduct object, for visibility and search cases."""
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
        "spec": {
            "domain": namespace,
            "owner": {"team": f"{namespace}-team"},
            "description": f"The {name} product.",
            "discoverability": discoverability,
            "outputPorts": [{"name": f"{name}-v1", "schema": [{"name": "id", "type": "string"}]}],
            **spec,
        },
    }
