"""``dpo access`` as the teams' members run it, against the chart's policies and RBAC.

Two domains: the test's own is the consumer's, a second the producer's. Each command runs as
a separate ``dpo`` process acting as a team member by impersonation (``--as``,
``--as-group``), as kubectl's flags do, so the API server's admission policies see that
member as the creating user. The operator binds the teams and moves the requests' phases.

An owner learns a request's uid by reading the request, where the platform lets owners read
the consumer's namespace (here the platform admin gives the approver ``pat`` the built-in
``view`` there), or else from the product's ``status.access.pending``, which the operator
fills (``sam``, of the same team, may not read the consumer's namespace).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.access import DECISIONS, REQUESTS, may, producer_domain, team_member
from tests.clusters import KubectlRunner
from tests.helpers import wait_for
from tests.products import OperatorProcess, create_ready, example

APPROVER = "pat"  # of the producer's team, may read the consumer's requests
OTHER_OWNER = "sam"  # of the producer's team, may not
REQUESTER = "dana"  # of the consumer's team
PURPOSE = "Monthly revenue reporting for the finance team"


@pytest.fixture
def producer(kube: BlockingClient, crds: None) -> Iterator[str]:
    """A second domain, the producer's (the test's own ``domain`` is the consumer)."""
    with producer_domain(kube) as name:
        yield name


@pytest.fixture
def teams(
    kube: BlockingClient,
    kubectl: KubectlRunner,
    domain: str,
    producer: str,
    operator: OperatorProcess,
) -> tuple[str, str]:
    """(consumer, producer) namespaces once the operator has bound both teams there, and the
    approver may read the consumer's requests."""
    kube.create(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{domain}/rolebindings",
        {
            "metadata": {"name": "owners-read-requests"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "view"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": APPROVER}],
        },
    )  # fmt: skip
    checks = [
        ("create", "dataaccessrequests.datamesh.dev", domain, team_member(domain, REQUESTER)),
        ("create", "dataaccessdecisions.datamesh.dev", producer, team_member(producer, "x")),
        ("get", "dataaccessrequests.datamesh.dev", domain, team_member(producer, APPROVER)),
    ]
    for verb, resource, namespace, who in checks:
        wait_for(
            lambda v=verb, r=resource, n=namespace, w=who: may(kubectl, v, r, n, *w),
            description=f"{who} to be allowed to {verb} {resource} in {namespace}",
        )
    return domain, producer


class Dpo:
    """``dpo access ...`` as a separate process against the test cluster."""

    def __init__(self, command: list[str], kubeconfig: Path) -> None:
        self._command = command
        self._kubeconfig = kubeconfig

    def __call__(
        self, *args: str, who: tuple[str, ...], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self._command, "access", *args, "--kubeconfig", str(self._kubeconfig), *who],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"dpo access {' '.join(args)} failed: {result.stderr}")
        return result


@pytest.fixture
def dpo(dpo_command: list[str], control_plane: ClusterInfo) -> Dpo:
    return Dpo(dpo_command, control_plane.kubeconfig)


def _objects(kube: BlockingClient, collection: str, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kube.get(collection.format(namespace=namespace))["items"]
    return items


def _one(kube: BlockingClient, collection: str, namespace: str) -> dict[str, Any]:
    items = _objects(kube, collection, namespace)
    assert len(items) == 1, [item["metadata"]["name"] for item in items]
    return items[0]


def _refused(dpo: Dpo, *args: str, who: tuple[str, ...]) -> str:
    """What ``dpo access ...`` said when it failed as a user error should: exit 1, one message,
    no traceback."""
    result = dpo(*args, who=who, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
    return result.stderr


def _request(dpo: Dpo, consumer: str, producer: str, *extra: str) -> str:
    """A request by the consumer's member for its ServiceAccount ``reporting``; its name."""
    dpo(
        "request", f"{producer}/orders", "--for", f"serviceaccount:{consumer}/reporting",
        "--purpose", PURPOSE, "--duration", "30d", "--name", "reporting", *extra,
        who=team_member(consumer, REQUESTER),
    )  # fmt: skip
    return f"{consumer}/reporting"


def test_a_consumer_requests_and_an_owner_approves_naming_the_request(
    kube: BlockingClient, dpo: Dpo, teams: tuple[str, str]
) -> None:
    consumer, producer = teams
    printed = dpo(
        "request", f"{producer}/orders", "--for", f"serviceaccount:{consumer}/reporting",
        "--port", "daily", "--purpose", PURPOSE, "--duration", "30d",
        who=team_member(consumer, REQUESTER),
    ).stdout  # fmt: skip
    request = _one(kube, REQUESTS, consumer)
    name = request["metadata"]["name"]
    assert name.startswith("orders-reporting-"), name
    assert printed.strip() == f"DataAccessRequest {consumer}/{name} created (by {REQUESTER})"
    assert request["spec"] == {
        "product": {"namespace": producer, "name": "orders"},
        "ports": ["daily"],
        "subject": {"kind": "ServiceAccount", "name": "reporting", "namespace": consumer},
        "purpose": PURPOSE,
        "duration": "30d",
        "requestedBy": REQUESTER,
    }

    dpo(
        "approve", f"{consumer}/{name}", "--note", "Fine for reporting", "--duration", "7d",
        who=team_member(producer, APPROVER),
    )  # fmt: skip
    decision = _one(kube, DECISIONS, producer)
    assert decision["spec"] == {
        "request": {"namespace": consumer, "name": name, "uid": request["metadata"]["uid"]},
        "decision": "Approve",
        "note": "Fine for reporting",
        "decidedBy": APPROVER,
        "duration": "7d",
    }


def test_an_owner_denies_with_a_note(
    kube: BlockingClient, dpo: Dpo, teams: tuple[str, str]
) -> None:
    consumer, producer = teams
    request = _request(dpo, consumer, producer)
    dpo("deny", request, "--note", "Use the aggregated port", "--name", "no",
        who=team_member(producer, APPROVER))  # fmt: skip
    decision = kube.get(DECISIONS.format(namespace=producer) + "/no")
    assert decision["spec"]["decision"] == "Deny"
    assert decision["spec"]["note"] == "Use the aggregated port"
    assert decision["spec"]["decidedBy"] == APPROVER
    assert decision["spec"]["request"]["name"] == "reporting"


def test_revoking_deletes_the_approval_and_says_so(
    kube: BlockingClient, dpo: Dpo, teams: tuple[str, str]
) -> None:
    consumer, producer = teams
    request = _request(dpo, consumer, producer)
    owner = team_member(producer, APPROVER)
    dpo("approve", request, "--name", "yes", who=owner)
    dpo("deny", request, "--name", "a-denial", who=owner)  # not an approval: stays

    to_delete = yaml.safe_load(dpo("revoke", request, "-o", "yaml", who=owner).stdout)
    assert to_delete["metadata"] == {"name": "yes", "namespace": producer}
    assert to_delete["spec"]["decision"] == "Approve"
    assert len(_objects(kube, DECISIONS, producer)) == 2, "-o yaml must not delete"

    printed = dpo("revoke", request, who=owner).stdout
    assert printed.strip() == f"DataAccessDecision {producer}/yes deleted"
    names = [d["metadata"]["name"] for d in _objects(kube, DECISIONS, producer)]
    assert names == ["a-denial"]

    again = _refused(dpo, "revoke", request, who=owner)
    assert (
        f"No Approve DataAccessDecision in namespace {producer} answers DataAccessRequest "
        f"{request}: nothing to revoke"
    ) in again, again


def test_an_owner_who_may_not_read_the_request_revokes_by_the_products_namespace(
    kube: BlockingClient, dpo: Dpo, teams: tuple[str, str]
) -> None:
    consumer, producer = teams
    request = _request(dpo, consumer, producer)
    dpo("approve", request, "--name", "yes", who=team_member(producer, APPROVER))
    other = team_member(producer, OTHER_OWNER)

    printed = dpo("revoke", request, "-n", producer, who=other).stdout
    assert printed.strip() == f"DataAccessDecision {producer}/yes deleted"
    assert _objects(kube, DECISIONS, producer) == []


def test_withdrawing_deletes_the_request(
    kube: BlockingClient, dpo: Dpo, teams: tuple[str, str]
) -> None:
    consumer, producer = teams
    request = _request(dpo, consumer, producer)
    shown = dpo("withdraw", request, "-o", "yaml", who=team_member(consumer, REQUESTER))
    assert yaml.safe_load(shown.stdout)["spec"]["purpose"] == PURPOSE
    assert "Delete these from your repository (nothing was deleted)" in shown.stderr
    assert len(_objects(kube, REQUESTS, consumer)) == 1, "-o yaml must not delete"
    printed = dpo("withdraw", request, who=team_member(consumer, REQUESTER)).stdout
    assert printed.strip() == f"DataAccessRequest {request} deleted"

    def gone() -> bool:
        return _objects(kube, REQUESTS, consumer) == []

    wait_for(gone, description="the request to be deleted")
    again = _refused(dpo, "withdraw", request, who=team_member(consumer, REQUESTER))
    assert f"DataAccessRequest {request} not found: nothing to withdraw" in again, again


def test_yaml_output_sends_nothing_and_applies_as_the_same_user(
    kube: BlockingClient, kubectl: KubectlRunner, dpo: Dpo, teams: tuple[str, str]
) -> None:
    consumer, producer = teams
    dana = team_member(consumer, REQUESTER)
    printed = dpo(
        "request", f"{producer}/orders", "--for", "group:analysts", "-n", consumer,
        "--purpose", PURPOSE, "--name", "analysts", "-o", "yaml", who=dana,
    ).stdout  # fmt: skip
    document = yaml.safe_load(printed)
    assert document["kind"] == "DataAccessRequest"
    assert document["metadata"] == {"name": "analysts", "namespace": consumer}
    assert document["spec"]["requestedBy"] == REQUESTER
    assert document["spec"]["subject"] == {"kind": "Group", "name": "analysts"}
    assert _objects(kube, REQUESTS, consumer) == [], "-o yaml must not create"

    applied = kubectl("apply", "-f", "-", *dana, stdin=printed, check=False)
    assert applied.returncode == 0, applied.stderr
    request = _one(kube, REQUESTS, consumer)

    pat = team_member(producer, APPROVER)
    decision_yaml = dpo("approve", f"{consumer}/analysts", "--name", "ok", "-o", "yaml",
                        who=pat).stdout  # fmt: skip
    assert yaml.safe_load(decision_yaml)["spec"]["request"]["uid"] == request["metadata"]["uid"]
    assert _objects(kube, DECISIONS, producer) == [], "-o yaml must not create"
    applied = kubectl("apply", "-f", "-", *pat, stdin=decision_yaml, check=False)
    assert applied.returncode == 0, applied.stderr
    assert _one(kube, DECISIONS, producer)["spec"]["decidedBy"] == APPROVER


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (
            ("consumer", REQUESTER),
            "You may not create dataaccessdecisions in namespace {producer}: only the owning "
            "domain's team may answer requests for its products",
        ),
        (
            ("producer", OTHER_OWNER),
            "DataAccessRequest {request} is not readable to you, and no DataProduct you can read "
            "lists it as pending: give --product NAMESPACE/PRODUCT",
        ),
    ],
    ids=["a-consumer-approving-its-own", "an-owner-who-may-not-read-the-request"],
)
def test_an_approval_that_cannot_be_made_says_why(
    kube: BlockingClient,
    dpo: Dpo,
    teams: tuple[str, str],
    member: tuple[str, str],
    message: str,
) -> None:
    consumer, producer = teams
    request = _request(dpo, consumer, producer)
    side, user = member
    team = consumer if side == "consumer" else producer
    refused = _refused(dpo, "approve", request, who=team_member(team, user))
    assert message.format(producer=producer, request=request) in refused, refused
    assert _objects(kube, DECISIONS, producer) == []


def test_listing_shows_my_requests_and_not_others(
    kube: BlockingClient, dpo: Dpo, teams: tuple[str, str]
) -> None:
    consumer, producer = teams
    request = _request(dpo, consumer, producer)
    # There is no such product: the operator denies, and the list shows that phase.
    wait_for(lambda: _phase(kube, request) == "Denied", description="the operator's denial")
    mine = dpo("list", "--mine", "-n", consumer, who=team_member(consumer, REQUESTER)).stdout
    header, row = mine.strip().splitlines()
    assert header.split() == ["NAMESPACE", "NAME", "PRODUCT", "SUBJECT", "PORTS", "PHASE",
                              "EXPIRES", "PURPOSE"]  # fmt: skip
    words = row.split()
    assert words[:5] == [
        consumer, "reporting", f"{producer}/orders", f"serviceaccount:{consumer}/reporting", "*",
    ]  # fmt: skip
    assert words[5:7] == ["Denied", "-"], words
    theirs = dpo("list", "--mine", "-n", consumer, who=team_member(consumer, "erin")).stdout
    assert theirs.strip() == "No access requests found"


def _phase(kube: BlockingClient, request: str) -> str | None:
    namespace, name = request.split("/")
    found = kube.get(REQUESTS.format(namespace=namespace) + f"/{name}")
    phase: str | None = (found.get("status") or {}).get("phase")
    return phase


def test_an_owner_approves_from_the_pending_list_and_the_request_becomes_active(
    kube: BlockingClient, dpo: Dpo, teams: tuple[str, str]
) -> None:
    consumer, producer = teams
    create_ready(kube, example(producer))
    request = _request(dpo, consumer, producer, "--port", "daily-revenue")
    sam = team_member(producer, OTHER_OWNER)

    def listed() -> str | None:
        table = dpo("list", "--pending", "-n", producer, who=sam).stdout
        return table if request in table else None

    header, row = wait_for(listed, description="the request to be pending").strip().splitlines()
    assert header.split()[:3] == ["PRODUCT", "REQUEST", "SUBJECT"]
    assert row.split()[:6] == [
        f"{producer}/orders", request, f"serviceaccount:{consumer}/reporting", "daily-revenue",
        "30d", REQUESTER,
    ]  # fmt: skip

    dpo("approve", request, "--product", f"{producer}/orders", "--note", "Fine", "--name", "yes",
        who=sam)  # fmt: skip
    uid = kube.get(REQUESTS.format(namespace=consumer) + "/reporting")["metadata"]["uid"]
    assert _one(kube, DECISIONS, producer)["spec"]["request"]["uid"] == uid
    wait_for(lambda: _phase(kube, request) == "Active", description="the request to be Active")

    lines = dpo("history", f"{producer}/orders", who=sam).stdout.splitlines()
    readers = lines[: lines.index("")]
    assert any(
        line.split()[:4] == [f"serviceaccount:{consumer}/reporting", "Request", "daily-revenue",
                             request]
        for line in readers
    ), readers  # fmt: skip
    trail = [line.split() for line in lines[lines.index("") + 2 :]]
    steps = [(words[1], words[3]) for words in trail if len(words) > 3]
    assert (request, "Pending") in steps and (request, "Active") in steps, trail

    dpo("revoke", request, "-n", producer, who=sam)
    wait_for(lambda: _phase(kube, request) == "Revoked", description="the request to be Revoked")
