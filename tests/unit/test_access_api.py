"""The access request vocabulary: durations of grants, phases, and the models' own checks
(which hold for a body written under an older, looser CRD)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dataproduct_operator.api.accessdecision import DataAccessDecisionSpec
from dataproduct_operator.api.accessrequest import AccessSubject, DataAccessRequestSpec
from dataproduct_operator.api.dataproduct import AccessRequests, ReaderKind
from dataproduct_operator.api.grants import AccessPhase, grant_seconds
from dataproduct_operator.manifests.crd import DATA_ACCESS_REQUEST, build_crd


@pytest.mark.parametrize(
    ("text", "seconds"), [("1m", 60), ("90m", 5400), ("12h", 43200), ("30d", 2592000)]
)
def test_a_grant_duration_is_minutes_hours_or_days(text: str, seconds: int) -> None:
    assert grant_seconds(text) == seconds


@pytest.mark.parametrize("text", ["0m", "30s", "2w", "1y", "", "m", "-1d", "1.5h"])
def test_anything_else_is_not_a_grant_duration(text: str) -> None:
    with pytest.raises(ValueError, match="write minutes, hours or days"):
        grant_seconds(text)


def _request(**changes: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "product": {"namespace": "sales", "name": "orders"},
        "subject": {"kind": "ServiceAccount", "name": "reporting", "namespace": "marketing"},
        "purpose": "Campaign attribution",
        "requestedBy": "dana",
    }
    spec.update(changes)
    return spec


def test_a_request_longer_than_a_year_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError, match="at most 366d"):
        DataAccessRequestSpec.model_validate(_request(duration="400d"))
    assert DataAccessRequestSpec.model_validate(_request(duration="366d")).duration == "366d"


def test_a_product_accepts_requests_for_at_most_ninety_days_unless_it_says_otherwise() -> None:
    requests = AccessRequests()
    assert (requests.enabled, requests.max_duration, requests.auto_approve.domains) == (
        True,
        "90d",
        [],
    )
    with pytest.raises(ValidationError, match="at most 366d"):
        AccessRequests.model_validate({"maxDuration": "999d"})


def test_a_decision_may_shorten_an_approval() -> None:
    spec = DataAccessDecisionSpec.model_validate(
        {
            "request": {"namespace": "marketing", "name": "ask", "uid": "u-1"},
            "decision": "Approve",
            "decidedBy": "pat",
            "duration": "7d",
        }
    )
    assert spec.duration == "7d"


def test_subjects_read_as_the_cli_writes_them() -> None:
    account = AccessSubject(kind=ReaderKind.SERVICE_ACCOUNT, name="reporting", namespace="mkt")
    assert str(account) == "serviceaccount:mkt/reporting"
    assert str(AccessSubject(kind=ReaderKind.GROUP, name="analysts")) == "group:analysts"


def test_final_and_granted_phases() -> None:
    assert {p for p in AccessPhase if p.final} == {
        AccessPhase.DENIED,
        AccessPhase.EXPIRED,
        AccessPhase.REVOKED,
        AccessPhase.WITHDRAWN,
    }
    assert {p for p in AccessPhase if p.granted} == {
        AccessPhase.APPROVED,
        AccessPhase.ACTIVE,
        AccessPhase.EXPIRING_SOON,
    }


def test_the_request_crd_prints_product_subject_phase_and_expiry() -> None:
    crd = build_crd(DATA_ACCESS_REQUEST)
    version = crd["spec"]["versions"][0]
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Product", "Subject", "Phase", "Expires", "Age"]
    assert crd["spec"]["names"]["shortNames"] == ["dar"]
    assert crd["spec"]["scope"] == "Namespaced"
