"""The children cache: what it keeps of an object, and that older news never wins."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from dataproduct_operator.constants import (
    ANNOTATION_DESIRED_HASH,
    LABEL_MANAGED_BY,
    LABEL_PRODUCT,
    OPERATOR_NAME,
)
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.informer import CacheNotSyncedError, ChildCache, slim
from dataproduct_operator.k8s.rest import ApiError


def claim(version: str, *, product: str | None = "orders", hash_: str = "h1") -> dict[str, Any]:
    labels = {LABEL_PRODUCT: product} if product else {}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "orders-orders-v1",
            "namespace": "sales",
            "uid": "u-1",
            "resourceVersion": version,
            "labels": labels,
            "annotations": {ANNOTATION_DESIRED_HASH: hash_, "kubectl.kubernetes.io/x": "big"},
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
        "spec": {"resources": {"requests": {"storage": "5Gi"}}, "volumeName": "pv-1"},
        "status": {"phase": "Bound", "capacity": {"storage": "5Gi"}},
    }


def cache() -> tuple[ChildCache, list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []
    children = ChildCache(
        cast(KubeClient, None),
        [("v1", "PersistentVolumeClaim")],
        (),
        on_change=lambda event, obj: seen.append((event, obj["metadata"]["resourceVersion"])),
    )
    return children, seen


def test_only_what_the_operator_reads_is_kept() -> None:
    kept = slim(claim("5"), "v1", "PersistentVolumeClaim")
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["annotations"] == {ANNOTATION_DESIRED_HASH: "h1"}
    # The size it never shrinks, the volume whose reclaim policy follows the port's.
    assert kept["spec"] == {"resources": {"requests": {"storage": "5Gi"}}, "volumeName": "pv-1"}
    assert kept["status"]["phase"] == "Bound"


def test_an_older_event_never_overwrites_what_an_apply_wrote() -> None:
    children, seen = cache()
    children.put(claim("7", hash_="new"))
    children.put(claim("6", hash_="old"))  # a watch event from before the apply
    (only,) = children.children("sales", "orders")
    assert only["metadata"]["annotations"][ANNOTATION_DESIRED_HASH] == "new"
    assert seen == [("MODIFIED", "7")]


def test_the_operators_own_writes_and_their_watch_events_call_for_nothing() -> None:
    children, seen = cache()
    children.put(claim("7"), notify=False)  # the answer to an apply
    children.put(claim("7"))  # the watch event of that very apply
    assert seen == []
    lost = claim("8")  # someone else changed it since
    lost["status"]["phase"] = "Lost"
    children.put(lost)
    assert seen == [("MODIFIED", "8")]
    children.remove(claim("8"), notify=False)  # deleted by the operator
    children.remove(claim("9"))  # the watch event of that deletion
    assert seen == [("MODIFIED", "8")]
    assert children.children("sales", "orders") == []


def test_a_change_to_what_the_operator_does_not_read_calls_for_nothing() -> None:
    children, seen = cache()
    children.put(claim("7"))
    annotated = claim("8")
    annotated["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = "yes"
    children.put(annotated)
    assert seen == [("MODIFIED", "7")]
    (kept,) = children.children("sales", "orders")
    assert kept["metadata"]["resourceVersion"] == "8"
    resized = claim("9")
    resized["status"]["capacity"] = {"storage": "10Gi"}
    children.put(resized)
    assert seen == [("MODIFIED", "7"), ("MODIFIED", "9")]


def test_objects_are_found_by_product_and_leave_when_deleted_or_unlabelled() -> None:
    children, seen = cache()
    children.put(claim("1"))
    assert len(children.children("sales", "orders")) == 1
    assert children.children("sales", "other") == []
    children.put(claim("2", product=None))
    assert children.children("sales", "orders") == []
    children.put(claim("3"))
    children.remove(claim("4"))
    assert children.children("sales", "orders") == []
    assert seen[-1] == ("DELETED", "3")


def test_products_with_a_managed_child_are_listed_and_a_claims_owner_is_kept() -> None:
    children, _ = cache()
    ours = claim("1")
    ours["metadata"]["labels"][LABEL_MANAGED_BY] = OPERATOR_NAME
    ours["metadata"]["ownerReferences"] = [{"uid": "p-1", "kind": "DataProduct", "name": "x"}]
    children.put(ours)
    retained = claim("2", product="invoices")
    retained["metadata"]["name"] = "invoices-daily"
    children.put(retained)
    assert children.products(managed_by=OPERATOR_NAME) == {("sales", "orders")}
    (kept,) = children.children("sales", "orders")
    assert kept["metadata"]["ownerReferences"] == [{"uid": "p-1"}]


def test_a_kind_that_cannot_be_listed_fails_the_wait_with_its_name() -> None:
    class Forbidden:
        async def request(self, *_: object, **__: object) -> object:
            raise ApiError(403, "Forbidden", "cannot list cronjobs", {})

    async def scenario() -> str:
        children = ChildCache(cast(KubeClient, Forbidden()), [("batch/v1", "CronJob")], ("sales",))
        children.start()
        try:
            with pytest.raises(CacheNotSyncedError) as failed:
                await children.wait_synced(timeout=0.2)
        finally:
            await children.stop()
        return failed.value.message

    assert "CronJob in sales" in asyncio.run(scenario())


def test_objects_of_others_are_known_by_name_from_a_metadata_watch() -> None:
    configmap = ("v1", "ConfigMap")

    class Server:
        """Lists one ConfigMap of someone else, then tells of a second one and of the first
        one's deletion; records how it was asked."""

        def __init__(self) -> None:
            self.asked: list[tuple[str | None, str | None]] = []
            self.go, self.done = asyncio.Event(), asyncio.Event()

        async def request(self, _: str, path: str, **kwargs: Any) -> object:
            self.asked.append((kwargs["params"]["labelSelector"], kwargs.get("accept")))
            if "serviceaccounts" in path:  # an empty metadata list has "items": null
                return {"metadata": {"resourceVersion": "5"}, "items": None}
            theirs = {"metadata": {"name": "orders-connection", "namespace": "sales"}}
            return {"metadata": {"resourceVersion": "5"}, "items": [theirs]}

        async def stream(self, *_: object, **__: object) -> Any:
            await self.go.wait()
            for event, name in (("ADDED", "late"), ("DELETED", "orders-connection")):
                metadata = {"name": name, "namespace": "sales", "resourceVersion": "6"}
                yield {"type": event, "object": {"metadata": metadata}}
            self.done.set()
            await asyncio.Event().wait()  # the watch stays open

    async def scenario() -> tuple[Server, list[dict[str, Any] | None]]:
        server = Server()
        kinds = (configmap, ("v1", "ServiceAccount"))
        children = ChildCache(cast(KubeClient, server), [], ("sales",), name_kinds=kinds)
        children.start()
        try:
            await children.wait_synced(timeout=5)
            listed = children.find(configmap, "sales", "orders-connection")
            server.go.set()
            await asyncio.wait_for(server.done.wait(), 5)
            found = [
                listed,
                children.find(configmap, "sales", "late"),
                children.find(configmap, "sales", "orders-connection"),
                children.find(configmap, "sales", "nobody"),
            ]
        finally:
            await children.stop()
        return server, found

    server, (listed, late, deleted, nobody) = asyncio.run(scenario())
    assert listed is not None and listed["metadata"]["labels"] == {}
    assert late is not None and late["metadata"]["name"] == "late"
    assert deleted is None and nobody is None
    selector, accept = server.asked[0]
    assert selector == f"!{LABEL_PRODUCT}"
    assert accept is not None and "as=PartialObjectMetadataList" in accept
