"""Children of two products never collide: a child's name is ``<product>-<part>``, so product
``a`` with output port (or pipeline) ``b-c`` and product ``a-b`` with ``c`` want the same claim
(or CronJob) ``a-b-c``. The operator, as the chart's ServiceAccount, leaves the first product's
object exactly as it is and reports the second as Ready False, reason NameConflict, naming the
object, the product holding it and what to rename; once the holder is gone, it provisions.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from dataproduct_operator.k8s.blocking import BlockingClient
from tests.helpers import wait_for
from tests.products import (
    PRODUCTS,
    OperatorProcess,
    condition,
    create_ready,
    example,
    get_if_present,
    product_path,
    wait_ready,
)

CLAIMS = "/api/v1/namespaces/{ns}/persistentvolumeclaims"
CRONJOBS = "/apis/batch/v1/namespaces/{ns}/cronjobs"
# Each collision shape: where the contested object a-b-c lives, the condition of its aspect, and
# how the message begins.
SHAPES = {
    "PersistentVolumeClaim": (
        CLAIMS,
        "StorageReady",
        "PersistentVolumeClaim a-b-c belongs to DataProduct a (output port b-c): "
        "rename output port c or this DataProduct",
    ),
    "CronJob": (
        CRONJOBS,
        "PipelinesReady",
        "CronJob a-b-c belongs to DataProduct a (pipeline b-c): "
        "rename pipeline c or this DataProduct",
    ),
}


def product(
    namespace: str, name: str, ports: list[str], pipelines: list[str], *, policy: str = "Delete"
) -> dict[str, Any]:
    """The example product renamed, with these output ports and scheduled pipelines (on a
    schedule that never comes up during a test), no inputs and no readers."""
    document = example(namespace, name)
    spec = document["spec"]
    port, pipeline = spec["outputPorts"][0], spec["pipelines"][0]
    spec["outputPorts"] = [{**copy.deepcopy(port), "name": p} for p in ports]
    spec["pipelines"] = [
        {**copy.deepcopy(pipeline), "name": p, "schedule": "0 0 1 1 *"} for p in pipelines
    ]
    spec["inputs"], spec["access"] = [], {"readers": []}
    spec["deletionPolicy"] = policy
    return document


def held(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What must not change of the holder's object: identity, labels, owners, spec."""
    metadata = obj["metadata"]
    return (
        metadata["uid"],
        metadata.get("labels"),
        metadata.get("ownerReferences"),
        obj["spec"],
    )


def wait_conflict(kube: BlockingClient, namespace: str, name: str, aspect: str) -> dict[str, Any]:
    """The product once Ready is False for a NameConflict; checks its aspect says the same."""

    def conflicted() -> dict[str, Any] | None:
        found = kube.get(product_path(namespace, name))
        ready = condition(found, "Ready")
        return found if ready and ready["reason"] == "NameConflict" else None

    found = wait_for(conflicted, timeout=90, description=f"{name} to report a NameConflict")
    ready, part = condition(found, "Ready"), condition(found, aspect)
    assert ready is not None and part is not None
    assert ready["status"] == "False" and (part["status"], part["reason"]) == (
        "False",
        "NameConflict",
    )
    assert ready["observedGeneration"] == found["metadata"]["generation"]
    return found


def condition_of(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    found = condition(obj, kind)
    assert found is not None, f"no {kind} condition"
    return found


def conflict_events(kube: BlockingClient, namespace: str, name: str) -> list[str]:
    events = kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    return [
        e["message"]
        for e in events
        if e["reason"] == "NameConflict" and e["involvedObject"]["name"] == name
    ]


def collide(
    kube: BlockingClient, kind: str, first: dict[str, Any], second: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Make ``first`` Ready, then ``second`` wanting the name of ``first``'s ``kind`` a-b-c:
    that object as it was, and ``second`` once it reports the NameConflict on the aspect of
    ``kind`` with the expected message (see :data:`SHAPES`)."""
    namespace = first["metadata"]["namespace"]
    collection, aspect, expected = SHAPES[kind]
    create_ready(kube, first)
    before: dict[str, Any] = kube.get(f"{collection.format(ns=namespace)}/a-b-c")
    kube.create(PRODUCTS.format(namespace=namespace), second)
    found = wait_conflict(kube, namespace, second["metadata"]["name"], aspect)
    message = condition_of(found, aspect)["message"]
    assert message.startswith(expected), message
    return before, found


def test_a_claim_name_another_product_holds_is_never_taken_over(
    operator: OperatorProcess, kube: BlockingClient, domain: str
) -> None:
    namespace = domain
    path = f"{CLAIMS.format(ns=namespace)}/a-b-c"
    first, second = product(namespace, "a", ["b-c"], []), product(namespace, "a-b", ["c"], ["load"])
    before, found = collide(kube, "PersistentVolumeClaim", first, second)
    message = condition_of(found, "StorageReady")["message"]
    assert condition_of(found, "Ready")["message"] == f"StorageReady: {message}"
    # Its pipeline would mount the other product's claim: held back too.
    pipelines = condition_of(found, "PipelinesReady")
    assert pipelines["reason"] == "NameConflict"
    assert "would mount PersistentVolumeClaim a-b-c" in pipelines["message"]
    assert get_if_present(kube, f"{CRONJOBS.format(ns=namespace)}/a-b-load") is None
    wait_for(
        lambda: any(
            "a-b-c belongs to DataProduct a" in m for m in conflict_events(kube, namespace, "a-b")
        ),
        description="a NameConflict Event on a-b",
    )
    after = kube.get(path)
    assert held(after) == held(before)
    assert after["metadata"]["labels"]["datamesh.dev/data-product"] == "a"
    assert after["metadata"]["labels"]["datamesh.dev/output-port"] == "b-c"
    wait_ready(kube, namespace, "a", timeout=10)  # the holder is untouched and well

    # The holder goes, and its claim with it (deletionPolicy Delete; the garbage collector
    # may take up to 30 s to learn a CRD installed just now). The claim's deletion wakes a-b at
    # once: its retries are 10 s or more apart by then.
    kube.delete(product_path(namespace, "a"))
    wait_for(
        lambda: (
            (claim := get_if_present(kube, path)) is None
            or claim["metadata"]["uid"] != before["metadata"]["uid"]
        ),
        timeout=60,
        description="claim a-b-c of a to be deleted",
    )
    gone = time.monotonic()
    wait_for(
        lambda: (
            (claim := get_if_present(kube, path)) is not None
            and claim["metadata"]["labels"]["datamesh.dev/data-product"] == "a-b"
        ),
        timeout=60,
        description="claim a-b-c made again for a-b",
    )
    took = time.monotonic() - gone
    assert took < 5, f"claim a-b-c made for a-b {took:.1f}s after the holder's went"
    wait_ready(kube, namespace, "a-b", timeout=120)
    assert kube.get(path)["metadata"]["uid"] != before["metadata"]["uid"]


def test_a_cronjob_name_another_product_holds_is_never_taken_over(
    operator: OperatorProcess, kube: BlockingClient, domain: str
) -> None:
    namespace = domain
    path = f"{CRONJOBS.format(ns=namespace)}/a-b-c"
    first, second = product(namespace, "a", ["x"], ["b-c"]), product(namespace, "a-b", ["y"], ["c"])
    before, _ = collide(kube, "CronJob", first, second)

    # Only the clashing child is held back: the rest of a-b is in place (its claim binds).
    def storage_ready() -> dict[str, Any] | None:
        current = kube.get(product_path(namespace, "a-b"))
        return current if condition_of(current, "StorageReady")["status"] == "True" else None

    current = wait_for(storage_ready, description="the claim of a-b to bind")
    assert condition_of(current, "Ready")["reason"] == "NameConflict"
    wait_for(
        lambda: any("CronJob a-b-c belongs" in m for m in conflict_events(kube, namespace, "a-b")),
        description="a NameConflict Event on a-b",
    )
    after = kube.get(path)
    assert held(after) == held(before)
    assert after["metadata"]["labels"]["datamesh.dev/pipeline"] == "b-c"
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
