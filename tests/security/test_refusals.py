"""Hostile or malformed input is refused by the API server at ``kubectl apply``, with a message
that says what to change: cron fields out of range, image references that are not references,
unbounded strings, domains in the cluster's own namespaces, and ``system:`` groups or users as
owners or readers (``system:authenticated`` is every signed-in user). The messages checked are
the real API server's.
"""

from __future__ import annotations

from typing import Any

import pytest

from dataproduct_operator.api.cron import CRON_FIELDS, RANGE_ORDER_MESSAGE
from dataproduct_operator.api.datadomain import RESERVED_NAMESPACES
from dataproduct_operator.api.dataproduct import IMAGE_MESSAGE, SYSTEM_SUBJECT_REASON
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.clusters import DOMAINS, KubectlRunner, apply_as_user, domain_document
from tests.products import delete_if_present, example

MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK = (field.message for field in CRON_FIELDS)


_apply = apply_as_user


def _refused(kubectl: KubectlRunner, document: dict[str, Any], expected: str) -> None:
    accepted, printed = _apply(kubectl, document)
    assert not accepted, printed
    assert expected in printed, printed


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("61 * * * *", MINUTE),
        ("*/0 * * * *", MINUTE),
        ("0 24 * * *", HOUR),
        ("0 0 32 * *", DAY_OF_MONTH),
        ("0 0 * 13 *", MONTH),
        ("0 0 * * 8", DAY_OF_WEEK),
        ("0 18-6 * * *", RANGE_ORDER_MESSAGE),
    ],
)
def test_a_cron_field_out_of_range_is_refused_with_a_message_naming_it(
    kubectl: KubectlRunner, crds: None, namespace: str, schedule: str, message: str
) -> None:
    product = example(namespace)
    product["spec"]["pipelines"][0]["schedule"] = schedule
    _refused(
        kubectl,
        product,
        f'The DataProduct "orders" is invalid: spec.pipelines[0].schedule: '
        f'Invalid value: "{schedule}": {message}',
    )


def test_the_minute_field_message_names_the_field_and_its_range() -> None:
    assert MINUTE.startswith("schedule: the minute field (1st) takes values 0-59")


def test_schedules_in_range_and_image_references_are_accepted(
    kube: BlockingClient, kubectl: KubectlRunner, crds: None, namespace: str
) -> None:
    product = example(namespace)
    product["spec"]["pipelines"][0]["schedule"] = "0,30 8-18/2 1-15 JAN-jun mon-FRI"
    product["spec"]["pipelines"][0]["image"] = "registry.example.com:5000/team/job@sha256:" + (
        "0123456789abcdef" * 4
    )
    accepted, printed = _apply(kubectl, product)
    assert accepted, printed


@pytest.mark.parametrize(
    "image", ["Ghcr.io/Acme/Job:1", "ghcr.io/acme/job:1 --privileged", "x@sha256:12"]
)
def test_an_image_that_is_not_a_reference_is_refused_with_an_example(
    kubectl: KubectlRunner, crds: None, namespace: str, image: str
) -> None:
    product = example(namespace)
    product["spec"]["pipelines"][0]["image"] = image
    _refused(
        kubectl,
        product,
        f'spec.pipelines[0].image: Invalid value: "{image}": {IMAGE_MESSAGE}',
    )
    assert "e.g. ghcr.io/acme/orders-ingest:1.4" in IMAGE_MESSAGE


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s.update(tags=["t" * 65]), "spec.tags[0]: Too long: may not be more than 64"),
        (
            lambda s: s["pipelines"][0].update(args=["a" * 4097]),
            "spec.pipelines[0].args[0]: Too long: may not be more than 4096",
        ),
        (
            lambda s: s["pipelines"][0].update(command=["c"] * 65),
            "spec.pipelines[0].command: Too many: 65: must have at most 64 items",
        ),
    ],
    ids=["tag", "argument", "command"],
)
def test_strings_and_lists_beyond_their_bounds_are_refused(
    kubectl: KubectlRunner, crds: None, namespace: str, change: Any, expected: str
) -> None:
    product = example(namespace)
    change(product["spec"])
    _refused(kubectl, product, expected)


@pytest.mark.parametrize(
    ("kind", "name"), [("Group", "system:authenticated"), ("User", "system:admin")]
)
def test_a_system_reader_is_refused_with_the_reason(
    kubectl: KubectlRunner, crds: None, namespace: str, kind: str, name: str
) -> None:
    product = example(namespace)
    product["spec"]["access"]["readers"] = [{"kind": kind, "name": name}]
    _refused(
        kubectl,
        product,
        "spec.access.readers[0]: Invalid value: "
        f"a Group or User reader may not start with system:: {SYSTEM_SUBJECT_REASON}",
    )


def test_a_system_group_as_product_owner_is_refused_with_the_reason(
    kubectl: KubectlRunner, crds: None, namespace: str
) -> None:
    product = example(namespace)
    product["spec"]["owner"]["team"] = "system:authenticated"
    _refused(
        kubectl,
        product,
        'spec.owner.team: Invalid value: "system:authenticated": the owner team must be a '
        f"group of the team's own, not system:...: {SYSTEM_SUBJECT_REASON}",
    )


def _domain(name: str, **spec: Any) -> dict[str, Any]:
    document = domain_document(name)
    document["spec"].update(spec)
    return document


RESERVED = (
    "a DataDomain may not use the namespace kube-system, kube-public, kube-node-lease, default: "
    "they belong to the cluster itself"
)


@pytest.mark.parametrize("reserved", RESERVED_NAMESPACES)
def test_a_domain_in_a_namespace_of_the_cluster_itself_is_refused(
    kubectl: KubectlRunner, domain_name: str, reserved: str
) -> None:
    _refused(kubectl, _domain(domain_name, namespace=reserved), RESERVED)


def test_a_domain_named_after_a_namespace_of_the_cluster_itself_is_refused(
    kube: BlockingClient, kubectl: KubectlRunner, crds: None
) -> None:
    try:
        _refused(kubectl, _domain("kube-system"), RESERVED)
    finally:
        delete_if_present(kube, f"{DOMAINS}/kube-system")


@pytest.mark.parametrize("team", ["system:authenticated", "system:masters", "system:nodes"])
def test_a_system_group_as_domain_owner_is_refused_with_the_reason(
    kubectl: KubectlRunner, domain_name: str, team: str
) -> None:
    domain = _domain(domain_name)
    domain["spec"]["owners"]["team"] = team
    _refused(
        kubectl,
        domain,
        f'spec.owners.team: Invalid value: "{team}": the owner team must be a group of the '
        f"team's own, not system:...: {SYSTEM_SUBJECT_REASON}",
    )
