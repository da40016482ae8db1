"""Access requests end to end, as the people involved (impersonation), against the local
control plane, the operator as the chart's ServiceAccount and the real PostgreSQL.

A consumer team asks for its ServiceAccount to read another domain's product; the request shows
on the product; the owners approve; the ServiceAccount's own store login then selects from the
port's table, and Kubernetes lets it read the product; at its expiry (a minute, here) the grant
ends by itself, even across an operator restart, and the same login gets "permission denied".
Denied, revoked, withdrawn, auto-approved and capped requests are checked alike.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.access import REQUESTS, access_decision, access_request, create_as, team_member
from tests.clusters import KubectlRunner, delete_domain, login_sql, make_domain
from tests.helpers import wait_for
from tests.products import OperatorProcess, create_ready, delete_if_present, get_if_present
from tests.stores import STORE, q, store_product, wait_login

# Granted within 15 s of the decision, ended within 15 s of a revocation (the bound).
WITHIN_SECONDS = 15.0
ACCOUNT = "reporting"


@pytest.fixture(scope="module")
def access_operator(
    operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[OperatorProcess]]:
    """The operator of this module, in a list: a test may kill it and start another."""
    log = tmp_path_factory.mktemp("access-operator") / "operator.log"
    processes = [OperatorProcess(operator_kubeconfig, log)]
    yield processes
    processes[-1].stop()


@pytest.fixture
def domains(
    kube: BlockingClient,
    kubectl: KubectlRunner,
    store: str,
    access_operator: list[OperatorProcess],
) -> Iterator[tuple[str, str]]:
    """(consumer, producer): two domains whose teams the operator has bound; the consumer's
    ServiceAccount ``reporting``."""
    suffix = secrets.token_hex(3)
    consumer, producer = f"t-mkt-{suffix}", f"t-sales-{suffix}"
    for name in (consumer, producer):
        make_domain(kube, name)
    kube.create(f"/api/v1/namespaces/{consumer}/serviceaccounts", {"metadata": {"name": ACCOUNT}})
    for name in (consumer, producer):
        _wait_bound(kubectl, name)
    yield consumer, producer
    for name in (consumer, producer):
        delete_domain(kube, name)
        delete_if_present(kube, f"/api/v1/namespaces/{name}")


def _wait_bound(kubectl: KubectlRunner, namespace: str) -> None:
    """Once the operator has bound the domain's team in its namespace."""

    def bound() -> bool:
        member = team_member(namespace, "someone")
        return _may(kubectl, "create", "dataaccessrequests.datamesh.dev", namespace, *member)

    wait_for(bound, timeout=60, description=f"the team of {namespace} to be bound")


def _may(kubectl: KubectlRunner, verb: str, resource: str, namespace: str, *who: str) -> bool:
    result = kubectl("auth", "can-i", verb, resource, "-n", namespace, *who, check=False)
    return result.stdout.strip() == "yes"


def _product(namespace: str, name: str = "orders", **access: Any) -> dict[str, Any]:
    """A product with its port in the store, and ``access`` (readers, requests)."""
    product = store_product(namespace, access.pop("readers", []), name=name)
    product["spec"]["access"].update(access)
    return product


def _request_path(namespace: str, name: str) -> str:
    return REQUESTS.format(namespace=namespace) + f"/{name}"


def _phase(kube: BlockingClient, namespace: str, name: str) -> str | None:
    found = get_if_present(kube, _request_path(namespace, name))
    return ((found or {}).get("status") or {}).get("phase")


def _wait_phase(
    kube: BlockingClient, namespace: str, name: str, phase: str, timeout: float = 30
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        found = get_if_present(kube, _request_path(namespace, name))
        return found if ((found or {}).get("status") or {}).get("phase") == phase else None

    return wait_for(reached, timeout=timeout, description=f"request {name} to be {phase}")


def _ask(
    kube: BlockingClient, kubectl: KubectlRunner, consumer: str, producer: str, name: str,
    **spec: Any,
) -> dict[str, Any]:  # fmt: skip
    """A request made by dana of the consumer's team, as the API server stored it."""
    request = access_request(consumer, name, product=(producer, "orders"), requested_by="dana",
                             **spec)  # fmt: skip
    accepted, printed = create_as(kubectl, request, *team_member(consumer, "dana"))
    assert accepted, printed
    stored: dict[str, Any] = kube.get(_request_path(consumer, name))
    return stored


def _decide(
    kubectl: KubectlRunner, producer: str, request: dict[str, Any], name: str, **decision: Any
) -> None:
    """A decision made by pat of the producer's team."""
    document = access_decision(producer, name, request=request, decided_by="pat", **decision)
    accepted, printed = create_as(kubectl, document, *team_member(producer, "pat"))
    assert accepted, printed


def _select(postgres: LocalPostgres, user: str, password: str, product: dict[str, Any]) -> Any:
    endpoint = product["status"]["outputPorts"][0]["endpoint"]
    count = q("SELECT count(*) FROM {t}", endpoint["schema"], endpoint["table"])
    return login_sql(postgres, user, password, count)


def _denied(postgres: LocalPostgres, user: str, password: str, product: dict[str, Any]) -> str:
    """The error a SELECT gets, once it gets one."""
    try:
        _select(postgres, user, password, product)
    except psycopg.errors.InsufficientPrivilege as error:
        return str(error)
    return ""


def _events(kubectl: KubectlRunner, namespace: str) -> str:
    return kubectl("get", "events", "-n", namespace, "-o", "json").stdout


def test_an_approved_request_grants_real_access_until_it_expires_even_across_a_restart(
    *,
    kube: BlockingClient,
    kubectl: KubectlRunner,
    postgres: LocalPostgres,
    domains: tuple[str, str],
    access_operator: list[OperatorProcess],
    operator_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    consumer, producer = domains
    account = f"system:serviceaccount:{consumer}:{ACCOUNT}"
    # The ServiceAccount also reads another product of the domain by its spec: its store login
    # stays when this grant ends, so the end shows as "permission denied", not a lost login.
    create_ready(kube, _product(producer, "customers", readers=[
        {"kind": "ServiceAccount", "name": ACCOUNT, "namespace": consumer}]))  # fmt: skip
    product = create_ready(kube, _product(producer))
    user, password = wait_login(kube, consumer, f"dm-store-{STORE}-{ACCOUNT}")
    assert "permission denied" in _denied(postgres, user, password, product)

    request = _ask(kube, kubectl, consumer, producer, "reporting", duration="1m",
                   ports=["orders-v1"])  # fmt: skip

    # Pending, and shown to the owners: on the product, with an Event in both namespaces.
    def pending() -> dict[str, Any] | None:
        found = kube.get(f"/apis/datamesh.dev/v1alpha1/namespaces/{producer}/dataproducts/orders")
        waiting = ((found.get("status") or {}).get("access") or {}).get("pending") or []
        return waiting[0] if waiting else None

    shown = wait_for(pending, timeout=30, description="the request on the product")
    assert shown["request"] == f"{consumer}/reporting"
    assert (shown["purpose"], shown["requestedBy"], shown["duration"], shown["uid"]) == (
        "Monthly revenue reporting", "dana", "1m", request["metadata"]["uid"])  # fmt: skip
    assert _phase(kube, consumer, "reporting") == "Pending"
    wait_for(lambda: "AccessRequested" in _events(kubectl, producer), timeout=30,
             description="an AccessRequested Event on the product")  # fmt: skip
    assert not _may(kubectl, "get", "dataproducts.datamesh.dev/orders", producer, f"--as={account}")

    # The owners approve: within 15 s the ServiceAccount selects, and may read the product.
    _decide(kubectl, producer, request, "approve-reporting", note="Reporting is fine")
    decided = time.monotonic()
    wait_for(lambda: _select(postgres, user, password, product) == [(0,)], timeout=WITHIN_SECONDS,
             interval=0.2, description="the grant in the store")  # fmt: skip
    granted_after = time.monotonic() - decided
    assert _may(kubectl, "get", "dataproducts.datamesh.dev/orders", producer, f"--as={account}")
    active = _wait_phase(kube, consumer, "reporting", "ExpiringSoon")  # 1m is within the notice
    status = active["status"]
    assert status["decision"]["by"] == "pat" and status["decision"]["note"] == "Reporting is fine"
    assert [e["phase"] for e in status["history"]] == ["Pending", "Approved", "Active",
                                                       "ExpiringSoon"]  # fmt: skip
    readers = kube.get(f"/apis/datamesh.dev/v1alpha1/namespaces/{producer}/dataproducts/orders")[
        "status"]["access"]["readers"]  # fmt: skip
    assert [(r["name"], r["source"], r["ports"], r["expiresAt"]) for r in readers] == [
        (ACCOUNT, "Request", ["orders-v1"], status["expiresAt"])]  # fmt: skip
    assert "AccessApproved" in _events(kubectl, consumer)

    # The operator dies during the grant; another one takes over and ends it on time.
    access_operator[-1].kill()
    access_operator.append(OperatorProcess(operator_kubeconfig, tmp_path / "second.log"))
    expires = time.time() + _seconds_until(status["expiresAt"])
    message = wait_for(lambda: _denied(postgres, user, password, product), timeout=120,
                       interval=0.5, description="the grant to end")  # fmt: skip
    late = time.time() - expires
    assert "permission denied" in message
    assert late < WITHIN_SECONDS, f"ended {late:.1f}s after expiresAt"
    _wait_phase(kube, consumer, "reporting", "Expired")
    assert not _may(kubectl, "get", "dataproducts.datamesh.dev/orders", producer, f"--as={account}")
    sys.stderr.write(
        f"granted {granted_after:.1f}s after the decision; ended {late:.1f}s after expiresAt\n"
    )


def _seconds_until(stamp: str) -> float:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (moment - datetime.now(UTC)).total_seconds()


def test_a_denied_request_grants_nothing_and_says_why(
    kube: BlockingClient, kubectl: KubectlRunner, domains: tuple[str, str]
) -> None:
    consumer, producer = domains
    create_ready(kube, _product(producer))
    request = _ask(kube, kubectl, consumer, producer, "denied")
    _decide(kubectl, producer, request, "no", decision="Deny", note="Use the aggregate instead")
    denied = _wait_phase(kube, consumer, "denied", "Denied")
    assert denied["status"]["decision"]["note"] == "Use the aggregate instead"
    assert "expiresAt" not in denied["status"]
    product = kube.get(f"/apis/datamesh.dev/v1alpha1/namespaces/{producer}/dataproducts/orders")
    assert product["status"]["access"]["readers"] == []
    secret = f"/api/v1/namespaces/{consumer}/secrets/dm-store-{STORE}-{ACCOUNT}"
    assert get_if_present(kube, secret) is None


def _approved(
    kube: BlockingClient,
    kubectl: KubectlRunner,
    postgres: LocalPostgres,
    domains: tuple[str, str],
    name: str,
) -> tuple[dict[str, Any], str, str]:
    """A request ``name`` approved (decision ``yes``), once its ServiceAccount selects from the
    product: the product, the login's user and password."""
    consumer, producer = domains
    product = create_ready(kube, _product(producer))
    request = _ask(kube, kubectl, consumer, producer, name)
    _decide(kubectl, producer, request, "yes")
    user, password = wait_login(kube, consumer, f"dm-store-{STORE}-{ACCOUNT}")
    wait_for(lambda: _select(postgres, user, password, product) == [(0,)], timeout=WITHIN_SECONDS,
             description="the grant")  # fmt: skip
    return product, user, password


def test_deleting_the_approval_revokes_within_fifteen_seconds(
    kube: BlockingClient, kubectl: KubectlRunner, postgres: LocalPostgres, domains: tuple[str, str]
) -> None:
    consumer, producer = domains
    product, user, password = _approved(kube, kubectl, postgres, domains, "revoked")
    kubectl("delete", "dataaccessdecision", "yes", "-n", producer, *team_member(producer, "pat"))
    revoked = time.monotonic()
    wait_for(lambda: _gone(postgres, user, password, product), timeout=WITHIN_SECONDS,
             interval=0.2, description="the grant to end")  # fmt: skip
    sys.stderr.write(f"revoked {time.monotonic() - revoked:.1f}s after the decision was deleted\n")
    ended = _wait_phase(kube, consumer, "revoked", "Revoked")
    assert ended["status"]["history"][-1]["note"] == f"decision {producer}/yes deleted"


def _gone(postgres: LocalPostgres, user: str, password: str, product: dict[str, Any]) -> bool:
    """Whether the login can no longer read the table (its login dropped, or denied)."""
    try:
        _select(postgres, user, password, product)
    except (psycopg.errors.InsufficientPrivilege, psycopg.OperationalError):
        return True
    return False


def test_a_withdrawn_request_ends_its_access_and_stays_in_the_audit_trail(
    kube: BlockingClient, kubectl: KubectlRunner, postgres: LocalPostgres, domains: tuple[str, str]
) -> None:
    consumer, producer = domains
    product, user, password = _approved(kube, kubectl, postgres, domains, "withdrawn")
    kubectl("delete", "dataaccessrequest", "withdrawn", "-n", consumer,
            *team_member(consumer, "dana"))  # fmt: skip
    wait_for(lambda: _gone(postgres, user, password, product), timeout=WITHIN_SECONDS,
             interval=0.2, description="the grant to end")  # fmt: skip

    def trail() -> list[Any] | None:
        found = kube.get(f"/apis/datamesh.dev/v1alpha1/namespaces/{producer}/dataproducts/orders")
        history = found["status"]["access"]["history"]
        return history if history and history[-1]["phase"] == "Withdrawn" else None

    history = wait_for(trail, timeout=30, description="Withdrawn in the audit trail")
    assert [(r["phase"], r["by"]) for r in history] == [
        ("Pending", "dana"), ("Approved", "pat"), ("Active", "dataproduct-operator"),
        ("Withdrawn", "requester")]  # fmt: skip
    assert {r["subject"] for r in history} == {f"serviceaccount:{consumer}/{ACCOUNT}"}


def test_requests_of_an_auto_approved_domain_and_above_the_cap(
    kube: BlockingClient, kubectl: KubectlRunner, domains: tuple[str, str]
) -> None:
    consumer, producer = domains
    requests = {"maxDuration": "7d", "autoApprove": {"domains": [consumer]}}
    create_ready(kube, _product(producer, requests=requests))
    _ask(kube, kubectl, consumer, producer, "auto", duration="7d")
    approved = _wait_phase(kube, consumer, "auto", "Active")
    assert approved["status"]["decision"]["source"] == "AutoApprove"
    _ask(kube, kubectl, consumer, producer, "too-long", duration="30d")
    capped = _wait_phase(kube, consumer, "too-long", "Denied")
    assert capped["status"]["decision"]["note"] == (
        "the duration 30d is above the product's cap of 7d (spec.access.requests.maxDuration): "
        "ask for less"
    )
    _ask(kube, kubectl, consumer, producer, "no-port", ports=["nope"])
    missing = _wait_phase(kube, consumer, "no-port", "Denied")
    assert "has no output port nope" in missing["status"]["decision"]["note"]
