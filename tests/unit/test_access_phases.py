"""The phase machine of access requests and the product's side of it, with the time given."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest

from dataproduct_operator.api.accessdecision import Verdict
from dataproduct_operator.api.accessrequest import DataAccessRequest, DecisionSource
from dataproduct_operator.api.dataproduct import AccessSource, DataProduct
from dataproduct_operator.api.grants import AccessPhase
from dataproduct_operator.metrics import OperatorMetrics
from dataproduct_operator.status.access import (
    DecisionSeen,
    RequestFacts,
    active_grants,
    compute_product_access,
    compute_request,
    new_records,
    next_change_seconds,
    next_expiry_seconds,
)
from tests.products import example

T0 = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _product(**access: Any) -> DataProduct:
    document = example("sales")
    document["metadata"]["uid"] = "product-uid"
    document["spec"]["access"] = {"readers": [], **access}
    return DataProduct.from_object(document)


def _request(name: str = "ask", **spec: Any) -> DataAccessRequest:
    return DataAccessRequest.from_object(
        {
            "metadata": {
                "name": name,
                "namespace": "marketing",
                "uid": f"{name}-uid",
                "creationTimestamp": "2026-11-30T07:59:00Z",
            },
            "spec": {
                "product": {"namespace": "sales", "name": "orders"},
                "subject": {
                    "kind": "ServiceAccount",
                    "name": "reporting",
                    "namespace": "marketing",
                },
                "purpose": "Campaign attribution",
                "requestedBy": "dana",
                "duration": "30d",
                **spec,
            },
        }
    )


def _approve(duration: str | None = None, verdict: Verdict = Verdict.APPROVE) -> DecisionSeen:
    return DecisionSeen("sales", "yes", verdict, "pat", "fine", duration)


def _step(
    request: DataAccessRequest, now: datetime, **facts: Any
) -> tuple[DataAccessRequest, list[AccessPhase]]:
    """One pass: the request with its new status, and the phases it entered."""
    facts.setdefault("product", _product())
    facts.setdefault("decision", None)
    facts.setdefault("consumer_domain", "marketing")
    result = compute_request(request, RequestFacts(**facts), now)
    after = request.model_copy(update={"status": result.status})
    return after, [entry.phase for entry in result.entered]


def test_a_request_waits_for_the_owners_recording_who_asked_and_why() -> None:
    request, steps = _step(_request(), T0)
    assert request.status.phase is AccessPhase.PENDING
    assert steps == []  # the request itself is no step to announce
    first = request.status.history[0]
    assert (first.phase, first.at, first.by, first.note) == (
        AccessPhase.PENDING,
        "2026-11-30T07:59:00Z",
        "dana",
        "Campaign attribution",
    )
    again, steps = _step(request, T0 + DAY)
    assert (again.status.phase, steps, len(again.status.history)) == (AccessPhase.PENDING, [], 1)
    assert again.status.conditions[0].reason == "AwaitingDecision"


def test_an_approval_grants_for_the_duration_asked_then_the_grant_makes_it_active() -> None:
    request, _ = _step(_request(), T0)
    approved, steps = _step(request, T0 + timedelta(seconds=5), decision=_approve())
    assert steps == [AccessPhase.APPROVED]
    status = approved.status
    assert (status.granted_at, status.expires_at) == (
        "2026-11-30T08:00:05Z",
        "2026-12-30T08:00:05Z",
    )
    assert status.decision is not None
    assert (status.decision.by, status.decision.source, status.decision.decision) == (
        "pat",
        DecisionSource.DECISION,
        "sales/yes",
    )
    active, steps = _step(approved, T0 + timedelta(seconds=6), decision=_approve(), granted=True)
    assert (active.status.phase, steps) == (AccessPhase.ACTIVE, [AccessPhase.ACTIVE])
    assert active.status.conditions[0].status == "True"


def test_the_owners_may_approve_for_less_time_and_nobody_for_more_than_the_cap() -> None:
    shortened, _ = _step(_request(), T0, decision=_approve("7d"))
    assert shortened.status.expires_at == "2026-12-07T08:00:00Z"
    longer, _ = _step(_request(), T0, decision=_approve("60d"))
    assert longer.status.expires_at == "2026-12-30T08:00:00Z"  # as asked: 30d
    capped = _product(requests={"maxDuration": "10d"})
    unasked, _ = _step(_request(duration=None), T0, decision=_approve(), product=capped)
    assert unasked.status.expires_at == "2026-12-10T08:00:00Z"


def test_an_active_grant_warns_before_it_ends_then_expires_on_time() -> None:
    approved, _ = _step(_request(duration="5d"), T0, decision=_approve())
    active, steps = _step(approved, T0, decision=_approve(), granted=True)
    assert steps == [AccessPhase.ACTIVE]
    assert next_change_seconds(active.status, T0, 3 * 86400) == 2 * 86400
    later = T0 + 2 * DAY
    soon, steps = _step(active, later, decision=_approve(), granted=True)
    assert (soon.status.phase, steps) == (AccessPhase.EXPIRING_SOON, [AccessPhase.EXPIRING_SOON])
    assert next_change_seconds(soon.status, later, 3 * 86400) == 3 * 86400
    last_second = T0 + 5 * DAY - timedelta(seconds=1)
    before_end, steps = _step(soon, last_second, decision=_approve(), granted=True)
    assert (before_end.status.phase, steps) == (AccessPhase.EXPIRING_SOON, [])
    ended, steps = _step(soon, T0 + 5 * DAY, decision=_approve(), granted=True)
    assert (ended.status.phase, steps) == (AccessPhase.EXPIRED, [AccessPhase.EXPIRED])
    assert next_change_seconds(ended.status, T0 + 5 * DAY, 3 * 86400) is None
    phases = [entry.phase for entry in ended.status.history]
    assert phases == [AccessPhase.PENDING, AccessPhase.APPROVED, AccessPhase.ACTIVE,
                      AccessPhase.EXPIRING_SOON, AccessPhase.EXPIRED]  # fmt: skip


def test_a_grant_shorter_than_the_notice_is_expiring_soon_at_once() -> None:
    approved, _ = _step(_request(duration="1m"), T0, decision=_approve())
    _, steps = _step(approved, T0, decision=_approve(), granted=True)
    assert steps == [AccessPhase.ACTIVE, AccessPhase.EXPIRING_SOON]


def test_deleting_the_approval_revokes_and_a_final_phase_stays() -> None:
    approved, _ = _step(_request(), T0, decision=_approve())
    active, _ = _step(approved, T0, decision=_approve(), granted=True)
    revoked, steps = _step(active, T0 + DAY, decision=None, granted=True)
    assert (revoked.status.phase, steps) == (AccessPhase.REVOKED, [AccessPhase.REVOKED])
    assert revoked.status.history[-1].note == "decision sales/yes deleted"
    again, steps = _step(revoked, T0 + 2 * DAY, decision=_approve(), granted=True)
    assert (again.status.phase, steps) == (AccessPhase.REVOKED, [])


def test_a_deleted_product_ends_the_grant() -> None:
    approved, _ = _step(_request(), T0, decision=_approve())
    gone, steps = _step(approved, T0, product=None, decision=_approve())
    assert (gone.status.phase, steps) == (AccessPhase.REVOKED, [AccessPhase.REVOKED])


def test_a_denial_records_the_owners_note() -> None:
    denied, steps = _step(_request(), T0, decision=_approve(verdict=Verdict.DENY))
    assert (denied.status.phase, steps) == (AccessPhase.DENIED, [AccessPhase.DENIED])
    assert denied.status.decision is not None and denied.status.decision.note == "fine"
    assert (denied.status.granted_at, denied.status.expires_at) == (None, None)


def _hidden() -> DataProduct:
    document = example("sales")
    document["spec"]["discoverability"] = "Hidden"
    return DataProduct.from_object(document)


@pytest.mark.parametrize(
    ("request_spec", "product", "message"),
    [
        ({}, None, "DataProduct sales/orders does not exist: check spec.product"),
        ({}, _hidden(), "DataProduct sales/orders does not exist: check spec.product"),
        ({"ports": ["nope"]}, _product(), "has no output port nope (it has daily-revenue, "
         "orders-v1): fix spec.ports"),
        ({}, _product(requests={"enabled": False}), "takes no access requests "
         "(spec.access.requests.enabled is false)"),
        ({"duration": "120d"}, _product(), "the duration 120d is above the product's cap of 90d "
         "(spec.access.requests.maxDuration): ask for less"),
    ],
    ids=["missing", "hidden", "port", "disabled", "cap"],
)  # fmt: skip
def test_the_operator_denies_what_it_cannot_grant_saying_why(
    request_spec: dict[str, Any], product: DataProduct | None, message: str
) -> None:
    denied, steps = _step(_request(**request_spec), T0, product=product, decision=_approve())
    assert (denied.status.phase, steps) == (AccessPhase.DENIED, [AccessPhase.DENIED])
    assert denied.status.decision is not None
    assert denied.status.decision.source is DecisionSource.OPERATOR
    assert message in (denied.status.decision.note or "")


def test_requests_of_an_auto_approved_domain_are_approved_by_the_operator() -> None:
    product = _product(requests={"autoApprove": {"domains": ["marketing"]}})
    approved, steps = _step(_request(), T0, product=product)
    assert steps == [AccessPhase.APPROVED]
    assert approved.status.decision is not None
    assert approved.status.decision.source is DecisionSource.AUTO_APPROVE
    other, steps = _step(_request(), T0, product=product, consumer_domain="finance")
    assert (other.status.phase, steps) == (AccessPhase.PENDING, [])


def test_the_product_lists_its_readers_pending_requests_and_audit_trail() -> None:
    product = _product(readers=[{"kind": "Group", "name": "analysts"}])
    pending, _ = _step(_request("waiting", ports=["orders-v1"]), T0)
    approved, _ = _step(_request("granted", ports=["orders-v1"]), T0, decision=_approve("1d"))
    access = compute_product_access(product, [pending, approved], T0 + timedelta(seconds=1))
    assert [(r.name, r.source, r.ports, r.request) for r in access.readers] == [
        ("analysts", AccessSource.SPEC, [], None),
        ("reporting", AccessSource.REQUEST, ["orders-v1"], "marketing/granted"),
    ]
    assert access.readers[1].expires_at == "2026-12-01T08:00:00Z"
    assert [(p.request, p.uid, p.duration) for p in access.pending] == [
        ("marketing/waiting", "waiting-uid", "30d")
    ]
    assert [(r.request, r.phase) for r in access.history] == [
        ("marketing/waiting", AccessPhase.PENDING),
        ("marketing/granted", AccessPhase.PENDING),
        ("marketing/granted", AccessPhase.APPROVED),
    ]
    assert next_expiry_seconds(access, T0) == 86400

    # A day later the grant is over, even before the request's own pass says so.
    assert active_grants(product, [approved], T0 + DAY) == []

    # The waiting request withdrawn: recorded once, announced once.
    recorded = product.model_copy(
        update={"status": product.status.model_copy(update={"access": access})}
    )
    later = compute_product_access(recorded, [approved], T0 + timedelta(seconds=2))
    added = new_records(access, later)
    assert [(r.request, r.phase, r.by) for r in added] == [
        ("marketing/waiting", AccessPhase.WITHDRAWN, "requester")
    ]
    again = compute_product_access(
        recorded.model_copy(
            update={"status": recorded.status.model_copy(update={"access": later})}
        ),
        [approved],
        T0 + timedelta(seconds=3),
    )
    assert new_records(later, again) == []


def test_a_request_for_another_product_grants_nothing_here() -> None:
    approved, _ = _step(_request(), T0, decision=_approve())
    other = copy.deepcopy(example("sales", "invoices"))
    assert active_grants(DataProduct.from_object(other), [approved], T0) == []


def test_requests_are_counted_by_phase_and_active_grants_apart() -> None:
    metrics = OperatorMetrics()
    phases = [AccessPhase.PENDING, AccessPhase.ACTIVE, AccessPhase.EXPIRING_SOON,
              AccessPhase.EXPIRED]  # fmt: skip
    metrics.count_access(lambda: phases)
    text = generate_latest(metrics.registry).decode()
    assert 'dataproduct_access_requests{phase="Pending"} 1.0' in text
    assert 'dataproduct_access_requests{phase="Active"} 1.0' in text
    assert 'dataproduct_access_requests{phase="Withdrawn"} 0.0' in text
    assert "dataproduct_access_grants_active 2.0" in text
