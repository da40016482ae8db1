"""Changes that delete data are confirmed: the chart's ValidatingAdmissionPolicy refuses an
update that switches ``deletionPolicy`` from Retain to Delete, or removes an output port of a
Delete product, unless the annotation ``datamesh.dev/confirm-data-deletion`` lists every port
whose data would go. Applied with kubectl as a user would; no operator is needed, the API
server decides.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from dataproduct_operator.constants import ANNOTATION_CONFIRM_DATA_DELETION
from dataproduct_operator.manifests.admission import POLICY_NAME
from tests.clusters import KubectlRunner, apply_as_user
from tests.helpers import wait_for
from tests.products import example

PORTS = ("orders-v1", "daily-revenue")  # the example's output ports
DENIED = f"ValidatingAdmissionPolicy '{POLICY_NAME}' with binding '{POLICY_NAME}' denied request: "


_apply = apply_as_user


def _confirming(document: dict[str, Any], value: str) -> dict[str, Any]:
    confirmed = copy.deepcopy(document)
    confirmed["metadata"]["annotations"] = {ANNOTATION_CONFIRM_DATA_DELETION: value}
    return confirmed


def _accepted_only_when_every_port_is_listed(
    kubectl: KubectlRunner, change: dict[str, Any], partial: str, missing: str, every: str
) -> None:
    """A ``partial`` list is refused, naming the ``missing`` port; ``every`` port is accepted."""
    accepted, printed = _apply(kubectl, _confirming(change, partial))
    assert not accepted, "a partial list confirms nothing"
    assert f"deletes the data of the output ports {missing} (" in printed, printed
    accepted, printed = _apply(kubectl, _confirming(change, every))
    assert accepted, printed


@pytest.fixture
def product(kubectl: KubectlRunner, crds: None, namespace: str) -> dict[str, Any]:
    """The example product, created with deletionPolicy Retain, once the API server enforces
    the policy (it loads a new policy a moment after the chart creates it)."""
    document = example(namespace)
    document["spec"]["deletionPolicy"] = "Retain"
    accepted, printed = _apply(kubectl, document)
    assert accepted, printed
    switched = copy.deepcopy(document)
    switched["spec"]["deletionPolicy"] = "Delete"

    def enforced() -> bool:
        result = kubectl(
            "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(switched), check=False
        )
        return DENIED in result.stderr

    wait_for(enforced, description=f"the API server to enforce {POLICY_NAME}")
    return document


def test_switching_retain_to_delete_is_refused_unless_every_port_is_confirmed(
    kubectl: KubectlRunner, product: dict[str, Any]
) -> None:
    switched = copy.deepcopy(product)
    switched["spec"]["deletionPolicy"] = "Delete"

    accepted, printed = _apply(kubectl, switched)
    assert not accepted, printed
    assert (
        DENIED + "this change deletes the data of the output ports orders-v1, daily-revenue "
        "(deletionPolicy Retain to Delete: the data of every port goes with the product); "
        f"to confirm, add the annotation {ANNOTATION_CONFIRM_DATA_DELETION}: "
        '"orders-v1,daily-revenue"'
    ) in printed, printed

    _accepted_only_when_every_port_is_listed(
        kubectl, switched, "orders-v1", "daily-revenue", " daily-revenue , orders-v1 "
    )
    namespace = product["metadata"]["namespace"]
    stored = kubectl("get", "dataproduct", "orders", "-n", namespace, "-o", "json").stdout
    assert json.loads(stored)["spec"]["deletionPolicy"] == "Delete"


def test_removing_a_port_of_a_delete_product_is_refused_unless_it_is_confirmed(
    kubectl: KubectlRunner, product: dict[str, Any]
) -> None:
    deleting = _confirming(product, ",".join(PORTS))
    deleting["spec"]["deletionPolicy"] = "Delete"
    accepted, printed = _apply(kubectl, deleting)
    assert accepted, printed
    deleting["spec"]["outputPorts"].append({"name": "returns-v1"})
    deleting["metadata"]["annotations"] = {}
    accepted, printed = _apply(kubectl, deleting)
    assert accepted, "adding a port deletes nothing: " + printed

    removed = copy.deepcopy(deleting)
    removed["spec"]["outputPorts"] = removed["spec"]["outputPorts"][:1]  # 2 of 3 ports go
    accepted, printed = _apply(kubectl, removed)
    assert not accepted, printed
    assert (
        DENIED + "this change deletes the data of the output ports daily-revenue, returns-v1 "
        "(removed while deletionPolicy is Delete); to confirm, add the annotation "
        f'{ANNOTATION_CONFIRM_DATA_DELETION}: "daily-revenue,returns-v1"'
    ) in printed, printed

    _accepted_only_when_every_port_is_listed(
        kubectl, removed, "returns-v1", "daily-revenue", "returns-v1,daily-revenue"
    )


def test_removing_a_port_of_a_retain_product_needs_no_confirmation(
    kubectl: KubectlRunner, product: dict[str, Any]
) -> None:
    """Its claim is kept: nothing is deleted."""
    removed = copy.deepcopy(product)
    removed["spec"]["outputPorts"] = removed["spec"]["outputPorts"][:1]
    accepted, printed = _apply(kubectl, removed)
    assert accepted, printed
