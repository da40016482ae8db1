"""A DataDomain's status from what is observed, without a cluster."""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.datadomain import DataDomain, DataDomainStatus, ProductCounts
from dataproduct_operator.status.conditions import with_ready_false
from dataproduct_operator.status.datadomain import (
    ObservedDomain,
    blocked_message,
    compute_domain_status,
    handed_over,
    product_ready,
)

POLICIES = {"datamesh-deny-ingress", "datamesh-allow-readers"}
T0, T1 = "2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z"


def domain(status: dict[str, Any] | None = None) -> DataDomain:
    return DataDomain.from_object(
        {
            "metadata": {"name": "sales", "generation": 3},
            "spec": {"owners": {"team": "sales-data"}, "quota": {"maxDataProducts": 5}},
            "status": status or {},
        }
    )


def product(ready: str) -> dict[str, Any]:
    return {"status": {"conditions": [{"type": "Ready", "status": ready, "reason": "X"}]}}


QUOTA = {
    "spec": {"hard": {"count/dataproducts.datamesh.dev": "5", "requests.storage": "1Ti"}},
    "status": {
        "hard": {"count/dataproducts.datamesh.dev": "5", "requests.storage": "1Ti"},
        "used": {"count/dataproducts.datamesh.dev": "2", "requests.storage": "0"},
    },
}


def observed(**changes: Any) -> ObservedDomain:
    found: dict[str, Any] = {
        "namespace": {
            "metadata": {"name": "sales", "labels": {"datamesh.dev/domain": "sales"}},
            "status": {"phase": "Active"},
        },
        "quota": QUOTA,
        "network_policies": set(POLICIES),
        "editors": {"metadata": {"name": "datamesh-domain-editors"}},
        "products": ProductCounts(
            total=2, ready=sum(product_ready(p) for p in (product("True"), product("False")))
        ),
    }
    return ObservedDomain(**{**found, **changes})


def status_of(
    seen: ObservedDomain,
    *,
    failures: dict[str, str] | None = None,
    now: str = T0,
    previous: dict[str, Any] | None = None,
) -> DataDomainStatus:
    return compute_domain_status(
        domain(previous),
        seen,
        quota_wanted=True,
        network_policies_wanted=POLICIES,
        failures=failures or {},
        now=now,
    )


def conditions(status: DataDomainStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status.value, c.reason) for c in status.conditions}


def test_an_onboarded_domain_is_ready_and_counts_its_products_and_quota() -> None:
    status = status_of(observed())
    assert conditions(status) == {
        "Ready": ("True", "Reconciled"),
        "NamespaceReady": ("True", "NamespaceActive"),
        "QuotaReady": ("True", "QuotaApplied"),
        "AccessReady": ("True", "AccessApplied"),
    }
    assert (status.data_products.total, status.data_products.ready) == (2, 1)
    assert [(q.resource, q.hard, q.used) for q in status.quota] == [
        ("count/dataproducts.datamesh.dev", "5", "2"),
        ("requests.storage", "1Ti", "0"),
    ]
    assert status.namespace == "sales" and status.observed_generation == 3


def test_what_is_missing_is_named_and_ready_says_the_first() -> None:
    status = status_of(observed(namespace=None, network_policies={"datamesh-deny-ingress"}))
    found = conditions(status)
    assert found["NamespaceReady"] == ("False", "NamespaceMissing")
    assert found["AccessReady"] == ("False", "AccessMissing")
    assert found["Ready"] == ("False", "NamespaceNotReady")
    access = next(c for c in status.conditions if c.type == "AccessReady")
    assert "datamesh-allow-readers" in access.message
    without_team = conditions(status_of(observed(editors=None)))
    assert without_team["AccessReady"] == ("False", "AccessMissing")
    uncounted = {"spec": QUOTA["spec"], "status": {"hard": QUOTA["spec"]["hard"], "used": {}}}
    assert conditions(status_of(observed(quota=uncounted)))["QuotaReady"] == (
        "False",
        "QuotaPending",
    )
    terminating = status_of(observed(namespace={"status": {"phase": "Terminating"}}))
    assert conditions(terminating)["NamespaceReady"] == ("False", "NamespaceTerminating")


def test_a_failure_to_apply_is_reported_on_its_aspect() -> None:
    status = status_of(observed(), failures={"QuotaReady": "ResourceQuota: forbidden"})
    quota = next(c for c in status.conditions if c.type == "QuotaReady")
    assert (quota.reason, quota.message) == ("ApplyFailed", "ResourceQuota: forbidden")
    assert conditions(status)["Ready"] == ("False", "QuotaNotReady")


def test_a_condition_keeps_its_transition_time_until_its_status_changes() -> None:
    first = status_of(observed(), now=T0).to_wire()
    again = status_of(observed(), now=T1, previous=first)
    assert {c.last_transition_time for c in again.conditions} == {T0}
    broken = status_of(observed(quota=None), now=T1, previous=first)
    times = {c.type: c.last_transition_time for c in broken.conditions}
    assert times["QuotaReady"] == T1 and times["NamespaceReady"] == T0


def test_a_blocked_deletion_names_the_products_and_keeps_the_other_conditions() -> None:
    before = status_of(observed(), now=T0).to_wire()
    names = [f"p-{index}" for index in range(12)]
    message = blocked_message("sales", names)
    wire = with_ready_false(before, "DeletionBlocked", message, generation=3, now=T1)
    blocked = DataDomainStatus.model_validate(wire)
    ready = blocked.conditions[0]
    assert (ready.type, ready.status.value, ready.reason) == ("Ready", "False", "DeletionBlocked")
    assert "p-0" in ready.message and "p-9" in ready.message and "p-10" not in ready.message
    assert "and 2 more" in ready.message and ready.last_transition_time == T1
    assert [c.type for c in blocked.conditions[1:]] == [
        "NamespaceReady",
        "QuotaReady",
        "AccessReady",
    ]


def test_a_blocked_deletion_neither_names_nor_counts_hidden_products() -> None:
    # The caller passes the products that are not Hidden; with only Hidden ones left the
    # message names none and gives no number, yet says how to find them.
    assert blocked_message("sales", ["orders"]) == (
        "deletion waits: namespace sales still holds DataProducts (orders); delete them "
        "first (kubectl get dataproducts -n sales lists every one)"
    )
    only_hidden = blocked_message("sales", [])
    assert not any(character.isdigit() for character in only_hidden)
    assert "kubectl get dataproducts -n sales" in only_hidden


def test_an_existing_namespace_without_the_domain_label_waits_for_a_platform_admin() -> None:
    unlabelled = {"metadata": {"name": "sales", "labels": {}}, "status": {"phase": "Active"}}
    status = status_of(observed(namespace=unlabelled, quota=None, network_policies=set()))
    found = {c.type: c for c in status.conditions}
    message = (
        "namespace sales exists and is not part of the mesh: a platform admin hands it over "
        "with kubectl label namespace sales datamesh.dev/domain=sales"
    )
    assert (found["NamespaceReady"].status.value, found["NamespaceReady"].reason) == (
        "False",
        "NamespaceNotHandedOver",
    )
    assert found["NamespaceReady"].message == message
    # Ready repeats the reason: it is what the user reads first, and it needs an admin's act.
    assert (found["Ready"].status.value, found["Ready"].reason) == (
        "False",
        "NamespaceNotHandedOver",
    )
    assert found["Ready"].message == f"NamespaceReady: {message}"


def test_a_namespace_labelled_for_the_domain_by_an_admin_counts_as_handed_over() -> None:
    assert handed_over({"metadata": {"labels": {"datamesh.dev/domain": "sales"}}})
    assert not handed_over({"metadata": {"labels": {"team": "sales"}}})
    assert not handed_over({"metadata": {}})
