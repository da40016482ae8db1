"""A Hidden product, reconciled by the operator on the local control plane, is named nowhere the
many can read: not on the operator's /metrics, not in its domain's counts or conditions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.specs.datadomain import ALLOW_READERS
from tests.clusters import DOMAINS
from tests.helpers import wait_for
from tests.products import OperatorProcess, create_ready, example, operator_metrics, product_path

SECRET = "acquisition-target"
SPY = "spy-reader"  # the namespace of a reader only the Hidden product lists


def domain_status(kube: BlockingClient, name: str) -> dict[str, Any]:
    return kube.get(f"{DOMAINS}/{name}").get("status") or {}


def test_a_hidden_product_is_in_no_metric_label_domain_count_or_condition(
    kube: BlockingClient, domain: str, operator: OperatorProcess
) -> None:
    namespace = domain
    create_ready(kube, example(namespace, "orders"))
    hidden = example(namespace, SECRET)
    hidden["spec"]["discoverability"] = "Hidden"
    hidden["spec"]["access"]["readers"].append(
        {"kind": "ServiceAccount", "name": "reporting", "namespace": SPY}
    )
    uid = create_ready(kube, hidden)["metadata"]["uid"]

    # The domain lets the Hidden product's readers in (its NetworkPolicy names their namespace):
    # from then on it knows the product, and its counts must still leave it out.
    policy = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{ALLOW_READERS}"
    wait_for(
        lambda: SPY in json.dumps(kube.get(policy)),
        description="the domain to let the Hidden product's readers in",
    )

    def counted() -> dict[str, Any] | None:
        counts = domain_status(kube, namespace).get("dataProducts") or {}
        return counts if counts.get("ready") == 1 else None

    assert wait_for(counted, description="the domain to count its products") == {
        "total": 1,
        "ready": 1,
    }

    def exported() -> dict[str, Any] | None:
        samples = operator_metrics(operator)
        ready = samples.get("dataproduct_ready", {})
        return samples if any(("dataproduct", f"uid-{uid}") in k for k in ready) else None

    samples = wait_for(exported, description="the hidden product's series, by its uid")
    labels = {value for series in samples.values() for key in series for _, value in key}
    assert "orders" in labels and not any(SECRET in value for value in labels)

    # A deletion that waits for the products names only the one that is not Hidden.
    kube.delete(product_path(namespace, "orders"))
    kube.delete(f"{DOMAINS}/{namespace}")

    def blocked() -> str | None:
        conditions = domain_status(kube, namespace).get("conditions") or []
        ready: dict[str, Any] = next((c for c in conditions if c["type"] == "Ready"), {})
        message = str(ready.get("message", ""))
        waits_for_hidden_only = ready.get("reason") == "DeletionBlocked" and "orders" not in message
        return message if waits_for_hidden_only else None

    message = wait_for(blocked, description="the deletion to wait for the Hidden product")
    assert SECRET not in message and f"kubectl get dataproducts -n {namespace}" in message
    events = kube.get("/api/v1/namespaces/default/events")["items"]
    assert not any(SECRET in (e.get("message") or "") for e in events)
    kube.delete(product_path(namespace, SECRET))


pytestmark = pytest.mark.security
