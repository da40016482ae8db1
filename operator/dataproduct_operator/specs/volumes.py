"""What the operator does to the PersistentVolumes of output ports (layer ``specs``, pure).

A claim of a product with ``deletionPolicy: Retain`` survives the product, but not its
namespace: deleting a namespace deletes its claims, and a volume whose reclaim policy is Delete
(the usual StorageClass default) goes with its claim. So once a Retain port's claim is bound,
its PersistentVolume gets ``persistentVolumeReclaimPolicy: Retain`` and labels naming exactly
that port (claim namespace, domain, product, port). When a product of the same namespace,
domain, name and port wants its claim again (the namespace was deleted and made again), a
Released volume so labelled is pre-bound to the new claim (``claimRef`` to its namespace and
name, without the old uid) and the claim is made with ``spec.volumeName`` naming it: the data
comes back. For a Delete port, a volume the operator labelled gets the Delete policy back.

:func:`plan_volumes` decides from the claims and the labelled volumes as observed; the
reconcile layer sends the patches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dataproduct_operator.api.dataproduct import DataProduct, DeletionPolicy, OutputPort
from dataproduct_operator.api.naming import claim_name
from dataproduct_operator.constants import (
    ANNOTATION_RETAINED_VOLUME,
    LABEL_DOMAIN,
    LABEL_PORT,
    LABEL_PRODUCT,
    LABEL_VOLUME_NAMESPACE,
)

RECLAIM_POLICY = "persistentVolumeReclaimPolicy"
# Phases of a volume that may be bound again: its claim is gone (Released), or it was pre-bound
# already by an earlier pass that did not get to make the claim (Available).
REBINDABLE_PHASES = ("Released", "Available")


def volume_labels(product: DataProduct, port: OutputPort) -> dict[str, str]:
    """The labels that tie a volume to exactly one output port of one product."""
    return {
        LABEL_VOLUME_NAMESPACE: product.namespace,
        LABEL_DOMAIN: product.spec.domain,
        LABEL_PRODUCT: product.name,
        LABEL_PORT: port.name,
    }


def volume_selector(namespace: str) -> str:
    """The label selector of the volumes labelled for the claims of one namespace."""
    return f"{LABEL_VOLUME_NAMESPACE}={namespace}"


def build_reclaim_patch(
    product: DataProduct, port: OutputPort, policy: DeletionPolicy
) -> dict[str, Any]:
    """A merge patch: the port's labels and the reclaim policy that follows its deletionPolicy."""
    return {
        "metadata": {"labels": volume_labels(product, port)},
        "spec": {RECLAIM_POLICY: policy.value},
    }


def build_rebind_patch(namespace: str, claim: str) -> dict[str, Any]:
    """A merge patch pre-binding a released volume to the claim about to be made: the
    reference to the old claim (its uid, its version) goes, the new claim's name is set."""
    return {
        "spec": {
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": namespace,
                "name": claim,
                "uid": None,
                "resourceVersion": None,
            }
        }
    }


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _labelled_for(volume: dict[str, Any], product: DataProduct, port: OutputPort) -> bool:
    labels = _labels(volume)
    return all(labels.get(key) == value for key, value in volume_labels(product, port).items())


def _claim_ref(volume: dict[str, Any]) -> dict[str, Any]:
    return dict((volume.get("spec") or {}).get("claimRef") or {})


def find_retained_volume(
    product: DataProduct, port: OutputPort, volumes: Iterable[dict[str, Any]]
) -> dict[str, Any] | None:
    """The volume kept for exactly this port whose claim is gone, if any: labelled for it,
    reclaim policy Retain, and Released, or Available and free or pre-bound to this claim.
    Of several (a port retained more than once), the newest."""
    claim = claim_name(product.name, port.name)
    found = []
    for volume in volumes:
        spec, phase = volume.get("spec") or {}, (volume.get("status") or {}).get("phase")
        ref = _claim_ref(volume)
        free = phase == "Released" or (
            phase == "Available"
            and (not ref or (ref.get("namespace"), ref.get("name")) == (product.namespace, claim))
        )
        retained = spec.get(RECLAIM_POLICY) == DeletionPolicy.RETAIN.value
        if free and retained and _labelled_for(volume, product, port):
            found.append(volume)
    found.sort(key=lambda v: (v["metadata"].get("creationTimestamp", ""), v["metadata"]["name"]))
    return found[-1] if found else None


@dataclass(frozen=True)
class VolumePatch:
    """One merge patch of a PersistentVolume, and what it is for (for messages)."""

    volume: str
    port: str
    patch: dict[str, Any]
    purpose: str  # e.g. "set persistentVolumeReclaimPolicy Retain"


@dataclass(frozen=True)
class VolumePlan:
    """The volume patches to send, and the volume each port's claim names
    (``spec.volumeName``): ``pins`` holds only those the operator chose; a rebind pin counts
    once its patch went through."""

    patches: tuple[VolumePatch, ...] = ()
    pins: dict[str, str] = field(default_factory=dict)
    rebinds: dict[str, str] = field(default_factory=dict)  # port -> volume pre-bound this pass


def _bound_volume(claim: dict[str, Any]) -> str | None:
    if (claim.get("status") or {}).get("phase") != "Bound":
        return None
    return (claim.get("spec") or {}).get("volumeName") or None


def plan_volumes(
    product: DataProduct,
    claims: Mapping[str, dict[str, Any] | None],
    volumes: Mapping[str, dict[str, Any]],
) -> VolumePlan:
    """What to patch for the ports of ``claims`` (port -> its claim as observed, None when it
    is to be made), given the volumes labelled for this namespace (name -> volume)."""
    retain = product.spec.deletion_policy is DeletionPolicy.RETAIN
    policy = DeletionPolicy.RETAIN if retain else DeletionPolicy.DELETE
    patches: list[VolumePatch] = []
    pins: dict[str, str] = {}
    rebinds: dict[str, str] = {}
    for port in product.spec.output_ports:
        if port.name not in claims:
            continue
        claim = claims[port.name]
        if claim is None:
            found = find_retained_volume(product, port, volumes.values()) if retain else None
            if found is not None:
                name = found["metadata"]["name"]
                rebinds[port.name] = name
                patch = build_rebind_patch(product.namespace, claim_name(product.name, port.name))
                patches.append(VolumePatch(name, port.name, patch, "bind it to a new claim"))
            continue
        pinned = ((claim.get("metadata") or {}).get("annotations") or {}).get(
            ANNOTATION_RETAINED_VOLUME
        )
        if pinned:
            pins[port.name] = pinned
        bound = _bound_volume(claim)
        if bound is None:
            continue
        volume = volumes.get(bound)
        current = None if volume is None else (volume.get("spec") or {}).get(RECLAIM_POLICY)
        labelled = volume is not None and _labelled_for(volume, product, port)
        # A Delete port's volume is left to its StorageClass unless the operator labelled it.
        if (retain and (not labelled or current != policy.value)) or (
            not retain and volume is not None and current != policy.value
        ):
            patch = build_reclaim_patch(product, port, policy)
            purpose = f"set {RECLAIM_POLICY} {policy.value}"
            patches.append(VolumePatch(bound, port.name, patch, purpose))
    return VolumePlan(tuple(patches), pins, rebinds)
