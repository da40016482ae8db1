"""MeshPolicies in cluster tests: their collections, waiting for a condition, and the admission
objects the operator made for one (found by their label: their names come from a pool)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dataproduct_operator.k8s.blocking import BlockingClient
from tests.helpers import wait_for
from tests.products import condition

POLICIES = "/apis/datamesh.dev/v1alpha1/meshpolicies"
ADMISSION_POLICIES = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"
BINDINGS = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"
MakePolicy = Callable[..., dict[str, Any]]


def mesh_policy(
    name: str, rules: list[dict[str, str]], enforcement: str, **match: list[str]
) -> dict[str, Any]:
    """A MeshPolicy document."""
    spec = {"rules": rules, "enforcement": enforcement, "match": match}
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "MeshPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def policy_condition(kube: BlockingClient, name: str, kind: str, reason: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        policy = kube.get(f"{POLICIES}/{name}")
        current = (policy.get("status") or {}).get("observedGeneration") == policy["metadata"][
            "generation"
        ]
        found = condition(policy, kind)
        return found if current and found and found["reason"] == reason else None

    return wait_for(reached, description=f"MeshPolicy {name} {kind} {reason}")


def admission_objects(kube: BlockingClient, collection: str, policy: str) -> list[str]:
    """The names of the admission objects (of ``collection``) labelled for MeshPolicy
    ``policy``."""
    found = kube.get(collection, query={"labelSelector": f"datamesh.dev/mesh-policy={policy}"})
    return [item["metadata"]["name"] for item in found["items"]]
