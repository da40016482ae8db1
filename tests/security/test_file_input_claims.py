"""A file input cannot reach another product's data by naming its output volume: the owners of
one product may change its spec, not its neighbour's readers. The operator (as the chart's
ServiceAccount) reports such an input on InputsReady, names the product whose port the claim
is, posts a Warning Event, and mounts the claim into no pod."""

from __future__ import annotations

from typing import Any

import pytest

from dataproduct_operator.api.conditions import INPUTS_READY, Reason
from dataproduct_operator.api.kinds import API_VERSION
from dataproduct_operator.api.naming import claim_name
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.specs.dataproduct import mounted_claims
from tests.helpers import wait_for
from tests.products import PRODUCTS, condition, create_ready, product_path


def _product(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    spec = {"domain": namespace, "owner": {"team": f"{name}-team"},
            "description": f"The {name} of the domain.", **spec}  # fmt: skip
    metadata = {"name": name, "namespace": namespace}
    return {"apiVersion": API_VERSION, "kind": "DataProduct", "metadata": metadata, "spec": spec}


@pytest.mark.usefixtures("operator")
def test_a_file_input_on_another_products_volume_is_refused_and_never_mounted(
    kube: BlockingClient, domain: str
) -> None:
    ledger = {"name": "ledger", "storage": {"size": "1Gi"},
              "schema": [{"name": "amount", "type": "decimal"}]}  # fmt: skip
    create_ready(kube, _product(domain, "payments", outputPorts=[ledger]))
    theirs = claim_name("payments", "ledger")
    volume = {"claimName": theirs, "path": "part-0.csv"}
    loot = {"name": "loot", "file": {"format": "csv", "volume": volume}}
    report = {"name": "report", "storage": {"size": "1Gi"}}
    build = {"name": "build", "image": "ghcr.io/acme/report:1", "schedule": "0 * * * *"}
    kube.create(PRODUCTS.format(namespace=domain), _product(
        domain, "report", inputs=[loot], outputPorts=[report], pipelines=[build]))  # fmt: skip

    def refused() -> dict[str, Any] | None:
        found = condition(kube.get(product_path(domain, "report")), INPUTS_READY)
        return found if found and found["reason"] == Reason.CLAIM_OF_ANOTHER_PRODUCT else None

    inputs = wait_for(refused, timeout=60, description="InputsReady ClaimOfAnotherProduct")
    assert inputs["status"] == "False"
    assert f"PersistentVolumeClaim {domain}/{theirs} holds an output port of DataProduct " \
           "payments" in inputs["message"]  # fmt: skip

    def warned() -> list[dict[str, Any]]:
        events = kube.get(f"/api/v1/namespaces/{domain}/events")["items"]
        return [e for e in events if e["reason"] == Reason.CLAIM_OF_ANOTHER_PRODUCT]

    (event, *_) = wait_for(warned, timeout=30, description="the ClaimOfAnotherProduct Event")
    assert event["type"] == "Warning"
    assert event["involvedObject"]["name"] == "report"
    # The report's pipeline is made (its CronJob) and mounts nothing of the payments product.
    cronjobs = kube.get(f"/apis/batch/v1/namespaces/{domain}/cronjobs")["items"]
    assert [c["metadata"]["name"] for c in cronjobs] == ["report-build"]
    assert mounted_claims({"kind": "CronJob", **cronjobs[0]}) == {claim_name("report", "report")}
    claims = {
        volume["persistentVolumeClaim"]["claimName"]
        for pod in kube.get(f"/api/v1/namespaces/{domain}/pods")["items"]
        for volume in pod["spec"].get("volumes", [])
        if "persistentVolumeClaim" in volume
    }
    assert theirs not in claims
