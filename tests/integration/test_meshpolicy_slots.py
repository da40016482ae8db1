"""The pool of admission-policy names against the local control plane: an operator whose pool
holds two names enforces two MeshPolicies; a third one waits, Ready=False with reason
NoAdmissionSlot and an Event, and takes the name another policy lets go (deleted, or set to
Audit).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataproduct_operator.constants import admission_slot_names
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.reconcile.meshpolicy import NO_SLOT_RECHECK_SECONDS
from tests.helpers import wait_for
from tests.meshpolicies import ADMISSION_POLICIES, BINDINGS, POLICIES, MakePolicy
from tests.meshpolicies import admission_objects as labelled_for
from tests.meshpolicies import policy_condition as reaches
from tests.products import OperatorProcess

POOL = admission_slot_names(2)
RULE = {"name": "described", "expression": "has(object.spec.description)", "message": "describe"}


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """``dpo run`` whose pool of admission-policy names holds two (the chart grants 32)."""
    process = OperatorProcess(
        operator_kubeconfig,
        tmp_path_factory.mktemp("operator") / "operator.log",
        extra=("--admission-policy-slots", str(len(POOL))),
    )
    yield process
    process.stop()


def slot_of(kube: BlockingClient, name: str) -> str | None:
    found: str | None = (kube.get(f"{POLICIES}/{name}").get("status") or {}).get("admissionPolicy")
    return found


def test_a_policy_beyond_the_pool_waits_for_a_name_and_takes_the_one_let_go(
    operator: OperatorProcess, kube: BlockingClient, make_policy: MakePolicy
) -> None:
    taken = [
        item["metadata"]["name"]
        for item in kube.get(ADMISSION_POLICIES)["items"]
        if item["metadata"]["name"] in POOL
    ]
    # Another test's admission policies go with their MeshPolicy (garbage collected).
    wait_for(
        lambda: not any(kube.exists(f"{ADMISSION_POLICIES}/{name}") for name in taken),
        description="the pool to be free",
    )
    make_policy("slots-a", [RULE], "Deny")
    make_policy("slots-b", [RULE], "Warn")
    for name in ("slots-a", "slots-b"):
        reaches(kube, name, "Ready", "Enforced")
    held = {name: slot_of(kube, name) for name in ("slots-a", "slots-b")}
    assert sorted(held.values()) == list(POOL), held
    for name, slot in held.items():
        assert labelled_for(kube, ADMISSION_POLICIES, name) == [slot]
        assert labelled_for(kube, BINDINGS, name) == [slot]

    make_policy("slots-c", [RULE], "Deny")
    waiting = reaches(kube, "slots-c", "Ready", "NoAdmissionSlot")
    assert waiting["status"] == "False"
    assert waiting["message"] == (
        "not enforced: 2 MeshPolicies are enforced at admission, the chart's "
        "policies.maxEnforced: raise it or set one to Audit"
    )
    assert slot_of(kube, "slots-c") is None
    assert labelled_for(kube, ADMISSION_POLICIES, "slots-c") == []
    events = kube.get("/api/v1/namespaces/default/events")["items"]
    assert any(
        e["reason"] == "NoAdmissionSlot" and e["involvedObject"]["name"] == "slots-c"
        for e in events
    )
    # The enforced ones keep their names on every pass.
    assert {name: slot_of(kube, name) for name in held} == held

    # Deleted: its name goes to the waiting policy.
    started = time.monotonic()
    kube.delete(f"{POLICIES}/slots-a")
    reaches(kube, "slots-c", "Ready", "Enforced")
    took = time.monotonic() - started
    assert slot_of(kube, "slots-c") == held["slots-a"]
    assert labelled_for(kube, ADMISSION_POLICIES, "slots-c") == [held["slots-a"]]
    # At once, not at its next look of its own.
    assert took < NO_SLOT_RECHECK_SECONDS, f"{took:.1f} s"

    # Set to Audit: likewise.
    make_policy("slots-d", [RULE], "Deny")
    reaches(kube, "slots-d", "Ready", "NoAdmissionSlot")
    kube.merge_patch(f"{POLICIES}/slots-b", {"spec": {"enforcement": "Audit"}})
    reaches(kube, "slots-b", "Ready", "Auditing")
    reaches(kube, "slots-d", "Ready", "Enforced")
    assert slot_of(kube, "slots-d") == held["slots-b"]
    assert slot_of(kube, "slots-b") is None
    assert labelled_for(kube, ADMISSION_POLICIES, "slots-b") == []
