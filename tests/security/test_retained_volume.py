"""Retained data survives its namespace: the bound volume of a ``deletionPolicy: Retain`` output
port gets the Retain reclaim policy and labels for exactly that port, so deleting the namespace
(and with it the claim) keeps the volume; when the namespace, its DataDomain and the product
are made again, the new claim binds that very volume and the data written before is there.
Switching the port to Delete gives the volume the Delete policy back. The operator runs as the
chart's ServiceAccount; the local control plane's volumes are directories of kube-controller-
manager's hostpath provisioner, so the test writes its file there directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataproduct_operator.constants import LABEL_VOLUME_NAMESPACE
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.clusters import DOMAINS, domain_document, hand_over
from tests.helpers import wait_for
from tests.products import (
    PRODUCTS,
    OperatorProcess,
    change_spec,
    create_ready,
    example,
    get_if_present,
    product_path,
)

VOLUMES = "/api/v1/persistentvolumes"
CLAIM = "orders-orders-v1"
CONFIRM_DATA_DELETION = "datamesh.dev/confirm-data-deletion"


def retained_product(namespace: str) -> dict[str, Any]:
    """The example product with its first output port only, Retain, no pipelines or inputs."""
    document = example(namespace)
    spec = document["spec"]
    spec["outputPorts"] = spec["outputPorts"][:1]
    spec["pipelines"], spec["inputs"], spec["access"] = [], [], {"readers": []}
    spec["deletionPolicy"] = "Retain"
    return document


def bound_claim(kube: BlockingClient, namespace: str) -> dict[str, Any]:
    path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{CLAIM}"

    def bound() -> dict[str, Any] | None:
        claim = get_if_present(kube, path)
        return claim if claim and claim.get("status", {}).get("phase") == "Bound" else None

    return wait_for(bound, timeout=60, description=f"claim {CLAIM} to be Bound")


def volume_with(kube: BlockingClient, name: str, **expected: str) -> dict[str, Any]:
    """The volume once its reclaim policy (``policy``) and phase (``phase``) are as given."""

    def matches() -> dict[str, Any] | None:
        volume: dict[str, Any] = kube.get(f"{VOLUMES}/{name}")
        found = {
            "policy": volume["spec"].get("persistentVolumeReclaimPolicy"),
            "phase": volume.get("status", {}).get("phase"),
        }
        return volume if all(found[key] == value for key, value in expected.items()) else None

    # The PV controller releases a volume when it sees its claim gone; with the namespace's
    # deletion and a busy machine that can take minutes
    return wait_for(matches, timeout=180, description=f"PersistentVolume {name} with {expected}")


def wait_gone(kube: BlockingClient, path: str) -> None:
    wait_for(lambda: get_if_present(kube, path) is None, timeout=180, description=f"{path} gone")


def test_retained_data_survives_deleting_and_recreating_its_namespace(
    operator: OperatorProcess, kube: BlockingClient, domain: str
) -> None:
    namespace = domain
    create_ready(kube, retained_product(namespace))
    claim = bound_claim(kube, namespace)
    name = claim["spec"]["volumeName"]
    volume = volume_with(kube, name, policy="Retain", phase="Bound")
    assert {
        key: value
        for key, value in volume["metadata"].get("labels", {}).items()
        if key.startswith("datamesh.dev/")
    } == {
        LABEL_VOLUME_NAMESPACE: namespace,
        "datamesh.dev/domain": namespace,
        "datamesh.dev/data-product": "orders",
        "datamesh.dev/output-port": "orders-v1",
    }
    directory = Path(volume["spec"]["hostPath"]["path"])
    (directory / "orders.csv").write_text("order_id,line\nA-1,1\n")

    # The domain first (it waits for its products to go, and makes no namespace meanwhile),
    # then the namespace with everything in it; the DataProduct has no finalizer.
    kube.delete(f"{DOMAINS}/{namespace}")
    kube.delete(f"/api/v1/namespaces/{namespace}")
    wait_gone(kube, f"{DOMAINS}/{namespace}")
    wait_gone(kube, f"/api/v1/namespaces/{namespace}")
    volume_with(kube, name, policy="Retain", phase="Released")

    kube.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
    hand_over(kube, namespace)
    kube.create(DOMAINS, domain_document(namespace))
    create_ready(kube, retained_product(namespace))

    again = bound_claim(kube, namespace)
    assert again["metadata"]["uid"] != claim["metadata"]["uid"]
    assert again["spec"]["volumeName"] == name
    rebound = volume_with(kube, name, policy="Retain", phase="Bound")
    assert rebound["spec"]["claimRef"]["uid"] == again["metadata"]["uid"]
    assert (directory / "orders.csv").read_text() == "order_id,line\nA-1,1\n"
    events = kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    assert any(
        e["reason"] == "Retained" and f"PersistentVolume {name}" in e["message"] for e in events
    ), [e["message"] for e in events]

    # Delete follows: the volume the operator labelled goes with its claim again.
    path = product_path(namespace, "orders")
    kube.merge_patch(path, {"metadata": {"annotations": {CONFIRM_DATA_DELETION: "orders-v1"}}})
    change_spec(kube, namespace, "orders", lambda spec: spec.update(deletionPolicy="Delete"))
    volume_with(kube, name, policy="Delete", phase="Bound")
    assert get_if_present(kube, PRODUCTS.format(namespace=namespace) + "/orders") is not None
