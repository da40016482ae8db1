"""The PersistentVolumes of output ports: a Retain port's bound volume gets the Retain reclaim
policy and labels for exactly that port; a released volume so labelled is bound again to the
claim of the same namespace, domain, product and port; a Delete port's volume the operator
labelled gets the Delete policy back. Pure builders and decisions, no cluster."""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.dataproduct import DataProduct, DeletionPolicy
from dataproduct_operator.specs.dataproduct import build_children
from dataproduct_operator.specs.volumes import (
    build_rebind_patch,
    build_reclaim_patch,
    find_retained_volume,
    plan_volumes,
)
from tests.helpers import example_product

LABELS = {
    "datamesh.dev/claim-namespace": "sales",
    "datamesh.dev/domain": "sales",
    "datamesh.dev/data-product": "orders",
    "datamesh.dev/output-port": "orders-v1",
}


def product(policy: str = "Retain") -> DataProduct:
    document = example_product()
    document["metadata"].update(uid="u-1", generation=1)
    document["spec"]["deletionPolicy"] = policy
    return DataProduct.from_object(document)


def volume(
    name: str,
    *,
    phase: str = "Released",
    policy: str = "Retain",
    labels: dict[str, str] | None = None,
    claim: dict[str, str] | None = None,
    created: str = "2026-11-01T00:00:00Z",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"persistentVolumeReclaimPolicy": policy}
    if claim is not None:
        spec["claimRef"] = claim
    return {
        "metadata": {
            "name": name,
            "labels": LABELS if labels is None else labels,
            "creationTimestamp": created,
        },
        "spec": spec,
        "status": {"phase": phase},
    }


def bound_claim(volume_name: str, **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "orders-orders-v1", "annotations": annotations},
        "spec": {"volumeName": volume_name},
        "status": {"phase": "Bound"},
    }


def test_the_reclaim_patch_labels_the_volume_for_exactly_its_port() -> None:
    subject = product()
    port = subject.spec.output_ports[0]

    patch = build_reclaim_patch(subject, port, DeletionPolicy.RETAIN)

    assert patch == {
        "metadata": {"labels": LABELS},
        "spec": {"persistentVolumeReclaimPolicy": "Retain"},
    }


def test_the_rebind_patch_drops_the_old_claims_uid() -> None:
    assert build_rebind_patch("sales", "orders-orders-v1") == {
        "spec": {
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": "sales",
                "name": "orders-orders-v1",
                "uid": None,
                "resourceVersion": None,
            }
        }
    }


def test_a_bound_claim_of_a_retain_port_gets_its_volume_retained_once() -> None:
    subject = product()
    claims = {"orders-v1": bound_claim("pv-1")}

    plan = plan_volumes(subject, claims, {})
    assert [(p.volume, p.port) for p in plan.patches] == [("pv-1", "orders-v1")]
    assert plan.patches[0].patch["spec"] == {"persistentVolumeReclaimPolicy": "Retain"}

    done = volume("pv-1", phase="Bound")
    assert plan_volumes(subject, claims, {"pv-1": done}).patches == ()


def test_a_claim_not_bound_yet_needs_nothing() -> None:
    pending = {"metadata": {"name": "orders-orders-v1"}, "status": {"phase": "Pending"}}
    assert plan_volumes(product(), {"orders-v1": pending}, {}).patches == ()


def test_a_delete_port_leaves_unlabelled_volumes_and_turns_labelled_ones_back() -> None:
    subject = product("Delete")
    claims = {"orders-v1": bound_claim("pv-1")}

    assert plan_volumes(subject, claims, {}).patches == ()
    plan = plan_volumes(subject, claims, {"pv-1": volume("pv-1", phase="Bound")})
    assert [p.patch["spec"] for p in plan.patches] == [{"persistentVolumeReclaimPolicy": "Delete"}]


def test_a_missing_claim_of_a_retain_port_binds_its_released_volume_again() -> None:
    subject = product()
    old = volume("pv-old", claim={"namespace": "sales", "name": "orders-orders-v1", "uid": "x"})

    plan = plan_volumes(subject, {"orders-v1": None}, {"pv-old": old})

    assert plan.rebinds == {"orders-v1": "pv-old"}
    assert [(p.volume, p.patch) for p in plan.patches] == [
        ("pv-old", build_rebind_patch("sales", "orders-orders-v1"))
    ]
    assert plan.pins == {}  # pinned once the patch went through
    assert plan_volumes(product("Delete"), {"orders-v1": None}, {"pv-old": old}).patches == ()


def test_only_a_volume_labelled_for_exactly_that_port_and_retained_is_bound_again() -> None:
    subject = product()
    port = subject.spec.output_ports[0]
    others = [
        volume("other-namespace", labels={**LABELS, "datamesh.dev/claim-namespace": "crm"}),
        volume("other-domain", labels={**LABELS, "datamesh.dev/domain": "crm"}),
        volume("other-product", labels={**LABELS, "datamesh.dev/data-product": "order"}),
        volume("other-port", labels={**LABELS, "datamesh.dev/output-port": "daily-revenue"}),
        volume("deleting", policy="Delete"),
        volume("in-use", phase="Bound"),
        volume("pre-bound-elsewhere", phase="Available", claim={"namespace": "a", "name": "b"}),
    ]
    assert find_retained_volume(subject, port, others) is None

    newest = volume("newest", created="2026-11-02T00:00:00Z")
    older = volume("older")
    assert find_retained_volume(subject, port, [older, *others, newest]) == newest
    pre_bound = volume(
        "pre-bound", phase="Available", claim={"namespace": "sales", "name": "orders-orders-v1"}
    )
    assert find_retained_volume(subject, port, [pre_bound]) == pre_bound


def test_a_claim_made_for_a_retained_volume_keeps_naming_it() -> None:
    subject = product()
    claims = {"orders-v1": bound_claim("pv-old", **{"datamesh.dev/retained-volume": "pv-old"})}

    plan = plan_volumes(subject, claims, {"pv-old": volume("pv-old", phase="Bound")})
    assert plan.pins == {"orders-v1": "pv-old"} and plan.patches == ()

    (claim, other) = [
        c
        for c in build_children(subject, volume_names=plan.pins)
        if c["kind"] == "PersistentVolumeClaim"
    ]
    assert claim["spec"]["volumeName"] == "pv-old"
    assert claim["metadata"]["annotations"]["datamesh.dev/retained-volume"] == "pv-old"
    assert "volumeName" not in other["spec"]
    plain = next(c for c in build_children(subject) if c["kind"] == "PersistentVolumeClaim")
    assert "volumeName" not in plain["spec"]
