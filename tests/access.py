"""Access requests and decisions as users write them, for the tests of access requests."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dataproduct_operator.k8s.blocking import BlockingClient
from tests.clusters import KubectlRunner, delete_domain, make_domain

REQUESTS = "/apis/datamesh.dev/v1alpha1/namespaces/{namespace}/dataaccessrequests"
DECISIONS = "/apis/datamesh.dev/v1alpha1/namespaces/{namespace}/dataaccessdecisions"


def team_member(domain: str, user: str) -> tuple[str, ...]:
    """kubectl flags acting as ``user``, a member of the domain's owner team (see the
    ``domain`` fixture and ``tests.clusters.domain_document``)."""
    return (f"--as={user}", f"--as-group={domain}-team")


def access_request(
    namespace: str,
    name: str,
    *,
    product: tuple[str, str],
    requested_by: str,
    subject: dict[str, str] | None = None,
    ports: list[str] | None = None,
    purpose: str = "Monthly revenue reporting",
    duration: str | None = "30d",
) -> dict[str, Any]:
    """A DataAccessRequest in the consumer's ``namespace`` for ``product`` (namespace, name),
    by default for the ServiceAccount ``reporting`` of that namespace."""
    spec: dict[str, Any] = {
        "product": {"namespace": product[0], "name": product[1]},
        "subject": subject
        or {"kind": "ServiceAccount", "name": "reporting", "namespace": namespace},
        "purpose": purpose,
        "requestedBy": requested_by,
    }
    if ports is not None:
        spec["ports"] = ports
    if duration is not None:
        spec["duration"] = duration
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataAccessRequest",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def access_decision(
    namespace: str,
    name: str,
    *,
    request: dict[str, Any],
    decided_by: str,
    decision: str = "Approve",
    note: str | None = "Fine for reporting",
    duration: str | None = None,
) -> dict[str, Any]:
    """A DataAccessDecision in the producer's ``namespace`` answering ``request`` (as read back
    from the API server: its uid is needed)."""
    metadata = request["metadata"]
    spec: dict[str, Any] = {
        "request": {
            "namespace": metadata["namespace"],
            "name": metadata["name"],
            "uid": metadata.get("uid") or "not-created",
        },
        "decision": decision,
        "decidedBy": decided_by,
    }
    if note is not None:
        spec["note"] = note
    if duration is not None:
        spec["duration"] = duration
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataAccessDecision",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def create_as(kubectl: KubectlRunner, document: dict[str, Any], *identity: str) -> tuple[bool, str]:
    """``kubectl create`` as ``identity`` (impersonation flags): (accepted, what it printed)."""
    result = kubectl("create", "-f", "-", *identity, stdin=json.dumps(document), check=False)
    return result.returncode == 0, result.stdout + result.stderr


def may(kubectl: KubectlRunner, verb: str, resource: str, namespace: str, *who: str) -> bool:
    """``kubectl auth can-i`` as ``who`` (impersonation flags)."""
    result = kubectl("auth", "can-i", verb, resource, "-n", namespace, *who, check=False)
    return result.stdout.strip() == "yes"


@contextmanager
def producer_domain(kube: BlockingClient) -> Iterator[str]:
    """A second domain, the producer's (a test's own ``domain`` is the consumer), deleted
    afterwards with its namespace."""
    name = f"t-producer-{secrets.token_hex(3)}"
    make_domain(kube, name)
    try:
        yield name
    finally:
        delete_domain(kube, name)
        kube.delete(f"/api/v1/namespaces/{name}")
