"""Nobody asks or decides in someone else's name, and only the product's domain team decides.

The chart's admission policies make ``spec.requestedBy`` and ``spec.decidedBy`` the creating
user's name and keep a ServiceAccount subject in the request's own namespace; the CRDs bound
every field and keep a request's and a decision's spec fixed; the domain editor role lets a
domain's team create requests and decisions in its own namespace only. Everything is done as
the teams' members, by impersonation, against the chart's policies and RBAC.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.manifests.access_admission import DECISIONS_POLICY, REQUESTS_POLICY
from tests.access import (
    access_decision,
    access_request,
    create_as,
    may,
    producer_domain,
    team_member,
)
from tests.clusters import KubectlRunner
from tests.helpers import wait_for
from tests.products import OperatorProcess

DURATION = "the duration must be minutes, hours or days (30m, 12h, 30d), from 1m to 366d"


def _denied_by(policy: str) -> str:
    return f"ValidatingAdmissionPolicy '{policy}' with binding '{policy}' denied request: "


@pytest.fixture
def producer(kube: BlockingClient, crds: None) -> Iterator[str]:
    """A second domain, the producer's (the test's own ``domain`` is the consumer)."""
    with producer_domain(kube) as name:
        yield name


@pytest.fixture
def teams(
    kubectl: KubectlRunner, domain: str, producer: str, operator: OperatorProcess
) -> tuple[str, str]:
    """(consumer, producer) namespaces once the operator has bound both teams there."""
    for namespace in (domain, producer):
        who = team_member(namespace, "someone")
        wait_for(
            lambda n=namespace, w=who: may(
                kubectl, "create", "dataaccessrequests.datamesh.dev", n, *w
            ),
            description=f"the team of {namespace} to be bound",
        )
    return domain, producer


def test_a_request_in_someone_elses_name_is_refused(
    kubectl: KubectlRunner, teams: tuple[str, str]
) -> None:
    consumer, producer = teams
    dana = team_member(consumer, "dana")
    spoofed = access_request(consumer, "spoofed", product=(producer, "orders"), requested_by="erin")

    def refused() -> tuple[bool, str]:
        return create_as(kubectl, spoofed, *dana)

    wait_for(lambda: _denied_by(REQUESTS_POLICY) in refused()[1], description="the policy")
    accepted, printed = refused()
    assert not accepted
    assert (
        _denied_by(REQUESTS_POLICY)
        + "spec.requestedBy must be the name of the user making the request: dana"
    ) in printed, printed

    honest = access_request(consumer, "honest", product=(producer, "orders"), requested_by="dana")
    accepted, printed = create_as(kubectl, honest, *dana)
    assert accepted, printed


def test_a_service_account_subject_of_another_namespace_is_refused(
    kubectl: KubectlRunner, teams: tuple[str, str]
) -> None:
    consumer, producer = teams
    dana = team_member(consumer, "dana")
    elsewhere = {"kind": "ServiceAccount", "name": "reporting", "namespace": producer}
    request = access_request(
        consumer, "elsewhere", product=(producer, "orders"), requested_by="dana", subject=elsewhere
    )
    wait_for(
        lambda: _denied_by(REQUESTS_POLICY) in create_as(kubectl, request, *dana)[1],
        description="the policy",
    )
    accepted, printed = create_as(kubectl, request, *dana)
    assert not accepted
    assert (
        f"a ServiceAccount subject must be of the request's own namespace {consumer}: make the "
        f"request in namespace {producer} instead"
    ) in printed, printed


def test_a_decision_in_someone_elses_name_is_refused(
    kubectl: KubectlRunner, teams: tuple[str, str]
) -> None:
    consumer, producer = teams
    request = access_request(consumer, "ask", product=(producer, "orders"), requested_by="dana")
    accepted, printed = create_as(kubectl, request, *team_member(consumer, "dana"))
    assert accepted, printed
    created = json.loads(kubectl("get", "dar", "ask", "-n", consumer, "-o", "json").stdout)
    pat = team_member(producer, "pat")
    spoofed = access_decision(producer, "yes", request=created, decided_by="sam")
    wait_for(
        lambda: _denied_by(DECISIONS_POLICY) in create_as(kubectl, spoofed, *pat)[1],
        description="the policy",
    )
    accepted, printed = create_as(kubectl, spoofed, *pat)
    assert not accepted
    assert (
        _denied_by(DECISIONS_POLICY)
        + "spec.decidedBy must be the name of the user making the decision: pat"
    ) in printed, printed
    honest = access_decision(producer, "yes", request=created, decided_by="pat")
    accepted, printed = create_as(kubectl, honest, *pat)
    assert accepted, printed


def test_a_consumer_cannot_decide_on_its_own_request(
    kubectl: KubectlRunner, teams: tuple[str, str]
) -> None:
    consumer, producer = teams
    dana = team_member(consumer, "dana")
    request = access_request(consumer, "mine", product=(producer, "orders"), requested_by="dana")
    accepted, printed = create_as(kubectl, request, *dana)
    assert accepted, printed
    created = json.loads(kubectl("get", "dar", "mine", "-n", consumer, "-o", "json").stdout)

    approving = access_decision(producer, "self-approved", request=created, decided_by="dana")
    accepted, printed = create_as(kubectl, approving, *dana)
    assert not accepted
    assert "forbidden" in printed and "dataaccessdecisions" in printed, printed
    assert not may(kubectl, "create", "dataaccessdecisions.datamesh.dev", producer, *dana)
    # Nor can it change the status the operator writes, where the phase lives.
    status = ("--subresource=status", *dana)
    assert not may(kubectl, "patch", "dataaccessrequests.datamesh.dev", consumer, *status)
    assert not may(kubectl, "update", "dataaccessrequests.datamesh.dev", consumer, *dana)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"duration": "0d"}, DURATION),
        ({"duration": "2y"}, DURATION),
        ({"duration": "367d"}, DURATION),
        ({"duration": "30s"}, DURATION),
        ({"purpose": "x" * 1025}, "spec.purpose: Too long: may not be more than 1024 bytes"),
        ({"purpose": ""}, "spec.purpose in body should be at least 1 chars long"),
        ({"ports": ["Orders V1"]}, "spec.ports[0]: Invalid value: \"Orders V1\""),
        (
            {"subject": {"kind": "Group", "name": "system:authenticated"}},
            "a Group or User subject may not start with system:",
        ),
        (
            {"subject": {"kind": "Group", "name": "analysts", "namespace": "x"}},
            "only a ServiceAccount subject has a namespace; remove it",
        ),
    ],
    ids=["zero", "years", "above-a-year", "seconds", "long-purpose", "no-purpose", "bad-port",
         "system-group", "group-namespace"],
)  # fmt: skip
def test_a_request_out_of_bounds_is_refused_saying_what_to_change(
    kubectl: KubectlRunner, crds: None, namespace: str, change: dict[str, object], message: str
) -> None:
    request = access_request(namespace, "bounds", product=("sales", "orders"), requested_by="admin")
    request["spec"].update(change)
    result = kubectl(
        "create", "--dry-run=server", "-f", "-", stdin=json.dumps(request), check=False
    )
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_a_request_and_a_decision_cannot_change_once_made(
    kube: BlockingClient, kubectl: KubectlRunner, crds: None, namespace: str
) -> None:
    request = access_request(namespace, "fixed", product=("sales", "orders"), requested_by="x")
    path = f"/apis/datamesh.dev/v1alpha1/namespaces/{namespace}/dataaccessrequests"
    # As cluster admin, whose name the policy asks for.
    request["spec"]["requestedBy"] = _admin_name(kubectl)
    kube.create(path, request)
    changed = kubectl(
        "patch", "dar", "fixed", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"purpose": "something else"}}), check=False,
    )  # fmt: skip
    assert changed.returncode != 0
    assert "a request cannot be changed: make a new one" in changed.stderr, changed.stderr


def _admin_name(kubectl: KubectlRunner) -> str:
    review = json.loads(kubectl("auth", "whoami", "-o", "json").stdout)
    return str(review["status"]["userInfo"]["username"])
