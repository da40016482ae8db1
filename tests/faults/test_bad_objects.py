"""Scenario 6: bad objects created while the operator is down, under a looser CRD than today's
(as if written under an older one): a body the model refuses, oversized specs. Once the
operator runs, each bad one carries a condition saying what is wrong, and every other product
converges and stays under drift repair.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pydantic import ValidationError

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.rest import ApiError
from tests.faults.conftest import MakeNamespaces, StartOperator
from tests.faults.mesh import (
    create_products,
    fault_product,
    observe_mesh,
    wait_all_ready,
    wait_drift_repairs,
)
from tests.faults.report import FaultRow
from tests.faults.runtime import RuntimeFeatureMissing, wait_loops_alive
from tests.helpers import wait_for
from tests.products import PRODUCTS, condition, product_path

CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/dataproducts.datamesh.dev"
GOOD = 5
DRIFT_SECONDS = 5.0
CONDITION_SECONDS = 60.0
LOOSE_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def bad_products(namespace: str) -> dict[str, tuple[dict[str, Any], str]]:
    """Bodies today's CRD refuses, by name, with a word the condition's message must name."""
    refused = fault_product(namespace, "refused")
    refused["spec"]["lifecycle"] = "Bogus"
    del refused["spec"]["owner"]
    huge = fault_product(namespace, "huge-size")
    huge["spec"]["outputPorts"][0]["storage"]["size"] = "1e9999999"
    columns = fault_product(namespace, "too-many-columns")
    columns["spec"]["outputPorts"][0]["schema"] = [
        {"name": f"c{i}", "type": "string"} for i in range(300)
    ]
    text = fault_product(namespace, "long-description", description="x" * 100_000)
    return {
        "refused": (refused, "lifecycle"),
        "huge-size": (huge, "size"),
        "too-many-columns": (columns, "schema"),
        "long-description": (text, "description"),
    }


def accepted(kube: BlockingClient, document: dict[str, Any]) -> bool:
    """Whether the API server takes the product now (a dry run, under a name of its own)."""
    metadata = document["metadata"]
    probe = {**document, "metadata": {**metadata, "name": f"{metadata['name']}-probe"}}
    try:
        kube.request(
            "POST", PRODUCTS.format(namespace=metadata["namespace"]), probe, query={"dryRun": "All"}
        )
    except ApiError as error:
        if error.status in (400, 422):
            return False
        raise
    return True


@contextmanager
def loose_crd(kube: BlockingClient, probe: dict[str, Any]) -> Iterator[None]:
    """The DataProduct CRD with a schema that takes any spec, inside the block (served once
    ``probe`` is accepted); today's again afterwards, whatever happens (served once ``probe``
    is refused again)."""
    original = kube.get(CRD)

    def put_schema(versions: list[dict[str, Any]]) -> None:
        current = kube.get(CRD)
        kube.replace(CRD, {**current, "spec": {**current["spec"], "versions": versions}})

    loose = copy.deepcopy(original["spec"]["versions"])
    for version in loose:
        version["schema"] = {"openAPIV3Schema": LOOSE_SCHEMA}
    put_schema(loose)
    try:
        wait_for(lambda: accepted(kube, probe), description="the loose CRD to be served")
        yield
    finally:
        put_schema(original["spec"]["versions"])
        wait_for(lambda: not accepted(kube, probe), description="today's CRD to be served")


def refused_by_the_model(document: dict[str, Any]) -> bool:
    try:
        DataProduct.from_object(document)
    except ValidationError:
        return True
    return False


def ready_condition(kube: BlockingClient, namespace: str, name: str) -> dict[str, Any] | None:
    return condition(kube.get(product_path(namespace, name)), "Ready")


def warning_reasons(kube: BlockingClient, namespace: str, name: str) -> list[str]:
    events = kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    return [
        event["reason"]
        for event in events
        if event["involvedObject"].get("name") == name and event["type"] == "Warning"
    ]


@pytest.mark.timeout(300)
def test_bad_objects_made_while_the_operator_was_down_get_a_condition_and_the_rest_converges(
    *,
    kube: BlockingClient,
    make_namespaces: MakeNamespaces,
    start_operator: StartOperator,
    fault: FaultRow,
) -> None:
    fault.scenario = "6. bad objects made while the operator was down"
    (namespace,) = make_namespaces()
    bad = bad_products(namespace)
    good = [fault_product(namespace, f"good-{i}") for i in range(GOOD)]
    with loose_crd(kube, bad["refused"][0]):
        create_products(kube, [document for document, _ in bad.values()] + good)
    taken = [name for name, (document, _) in bad.items() if accepted(kube, document)]
    fault.check(f"{len(bad)} bad products and {GOOD} good ones; today's CRD takes {taken}")

    operator = start_operator([namespace], drift_interval=DRIFT_SECONDS)
    started = time.monotonic()
    create_products(kube, [fault_product(namespace, "good-after")])
    names = [*(f"good-{i}" for i in range(GOOD)), "good-after"]
    wait_all_ready(kube, [(namespace, name) for name in names], timeout=60)
    fault.converged(time.monotonic() - started)
    state = observe_mesh(kube, [namespace])
    wrong = [line for line in state.problems() if "/good-" in line]
    assert not wrong, wrong
    fault.check(f"{len(names)} good products Ready, children == dpo render")

    # Twice: the first repair may come from a pass that reached a good product before the
    # bad ones; the second needs a pass after one went through them all.
    for _ in range(2):
        wait_drift_repairs(kube, namespace, ["good-0"], timeout=4 * DRIFT_SECONDS)
    fault.check("drift repair goes on beside the bad ones")
    assert operator.process.poll() is None, f"the operator exited: {operator.log.read_text()}"

    deadline = time.monotonic() + CONDITION_SECONDS
    while missing := [n for n in bad if ready_condition(kube, namespace, n) is None]:
        if time.monotonic() > deadline:
            raise RuntimeFeatureMissing(f"No Ready condition on {missing}")
        time.sleep(0.5)
    for name, (document, field) in bad.items():
        found = ready_condition(kube, namespace, name)
        assert found is not None
        assert found["status"] == "False", (name, found)
        assert field in found["message"], (name, found)
        if refused_by_the_model(document):
            assert found["reason"] == "InvalidSpec", (name, found)
            assert warning_reasons(kube, namespace, name).count("InvalidSpec") == 1, name
    fault.check(
        "each bad one Ready=False naming its field; those the model refuses InvalidSpec, with "
        "one Warning Event"
    )
    wait_loops_alive(operator, since=time.time() - DRIFT_SECONDS, timeout=4 * DRIFT_SECONDS)
    fault.check("every drift loop passed, /healthz 200")
