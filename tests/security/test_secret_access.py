"""Pipelines reach only their product's Secrets, and the domain team reads none but those.

The exfiltration path: an owner team that cannot read Secrets names any Secret of the namespace
in a pipeline's environment and runs it; the pod gets the value. The API server now refuses a
product that names a Secret not starting with ``<product>-``; the team may create Secrets (the
answer to a create holds only what was sent) but reads and changes only those its own
product's spec names, through the product's owner Role. Everything here is done as a member of
the owner team, by impersonation, against the chart's RBAC and the operator's Roles.
"""

from __future__ import annotations

import json
from typing import Any

from dataproduct_operator.k8s.blocking import BlockingClient
from tests.clusters import KubectlRunner
from tests.helpers import wait_for
from tests.products import OperatorProcess, example, wait_ready


def _team(domain: str) -> tuple[str, ...]:
    """A member of the domain's owner team (see the ``domain`` fixture)."""
    return ("--as=dana", f"--as-group={domain}-team")


def _secret(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"password": "s3cr3t"},
    }


def _reading(product: dict[str, Any], secret: str) -> dict[str, Any]:
    """The product, owned by the domain's team, with a pipeline reading ``secret``."""
    product["spec"]["owner"]["team"] = f"{product['spec']['domain']}-team"
    product["spec"]["pipelines"][0]["env"] = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}}
    ]
    return product


def test_the_owner_team_reaches_only_the_secrets_its_product_names(
    kube: BlockingClient, kubectl: KubectlRunner, domain: str, operator: OperatorProcess
) -> None:
    team = _team(domain)

    def may(verb: str, resource: str) -> bool:
        result = kubectl("auth", "can-i", verb, resource, "-n", domain, *team, check=False)
        return result.stdout.strip() == "yes"

    # The operator binds the team when it onboards the domain; kube-controller-manager
    # aggregates the editor role's rules.
    wait_for(lambda: may("create", "dataproducts.datamesh.dev"), description="the team's role")
    kubectl("create", "-f", "-", stdin=json.dumps(_secret("other", domain)))

    exfiltrating = _reading(example(domain), "other")
    refused = kubectl("apply", "-f", "-", *team, stdin=json.dumps(exfiltrating), check=False)
    assert refused.returncode != 0
    assert (
        'The DataProduct "orders" is invalid: spec.pipelines: Invalid value: '
        "spec.pipelines[].env[].valueFrom.secretKeyRef.name must start with orders- "
        "(the product name and a dash): a pipeline reads only its own product's Secrets"
    ) in refused.stderr, refused.stderr

    created = kubectl("create", "-f", "-", *team, stdin=json.dumps(_secret("orders-creds", domain)))
    assert "secret/orders-creds created" in created.stdout
    for name in ("other", "orders-creds"):  # not even its own before the product names it
        read = kubectl("get", "secret", name, "-n", domain, "-o", "json", *team, check=False)
        assert read.returncode != 0 and "forbidden" in read.stderr, read.stderr
    assert not may("list", "secrets")

    kubectl("apply", "-f", "-", *team, stdin=json.dumps(_reading(example(domain), "orders-creds")))
    wait_ready(kube, domain, "orders")
    patch = json.dumps({"stringData": {"password": "rotated"}})

    def rotated() -> bool:
        result = kubectl(
            "patch", "secret", "orders-creds", "-n", domain, "-p", patch, *team, check=False
        )
        return result.returncode == 0

    wait_for(rotated, description="the owner team to update its product's Secret")
    read = kubectl("get", "secret", "orders-creds", "-n", domain, "-o", "json", *team)
    assert json.loads(read.stdout)["metadata"]["name"] == "orders-creds"
    other = kubectl("get", "secret", "other", "-n", domain, *team, check=False)
    assert other.returncode != 0 and "forbidden" in other.stderr, other.stderr
    changed = kubectl("patch", "secret", "other", "-n", domain, "-p", patch, *team, check=False)
    assert changed.returncode != 0 and "forbidden" in changed.stderr, changed.stderr
    assert not may("list", "secrets")
