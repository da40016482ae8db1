"""The operator's write powers only where the mesh lives: its self-binding in a domain's
namespace, which domain holds a contested namespace, and the admission policies that fence the
operator in (their CEL evaluated here with cel-python; the security tier runs them on a real
API server)."""

from __future__ import annotations

from typing import Any, cast

import celpy
import pytest
from celpy.adapter import json_to_cel

from dataproduct_operator.api.datadomain import DataDomain
from dataproduct_operator.constants import NAMESPACE_WRITER_BINDING, NAMESPACE_WRITER_ROLE
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.manifests.guards import (
    DOMAIN_NAMESPACES_GUARD,
    NAMESPACES_GUARD,
    ROLE_BINDINGS_GUARD,
    build_guard_policies,
)
from dataproduct_operator.manifests.rbac_docs import render_rbac_section
from dataproduct_operator.reconcile.mesh import MeshState
from dataproduct_operator.specs.datadomain import (
    build_domain_objects,
    build_operator_binding,
    subject_of,
)
from dataproduct_operator.status.datadomain import namespace_holder, taken_message

OPERATOR = "system:serviceaccount:dataproduct-system:dataproduct-operator"
PROTECTED = '["kube-system", "default", "dataproduct-system"]'


def domain(name: str = "sales", namespace: str | None = None) -> DataDomain:
    spec: dict[str, Any] = {"owners": {"team": "sales-team"}}
    if namespace:
        spec["namespace"] = namespace
    return DataDomain.from_object(
        {
            "apiVersion": "datamesh.dev/v1alpha1",
            "kind": "DataDomain",
            "metadata": {"name": name, "uid": "u-1", "generation": 1},
            "spec": spec,
        }
    )


def test_the_operator_binds_its_writer_role_to_its_own_service_account_in_the_namespace() -> None:
    binding = build_operator_binding(domain(namespace="sales-prod"), OPERATOR)
    assert binding["metadata"]["name"] == NAMESPACE_WRITER_BINDING
    assert binding["metadata"]["namespace"] == "sales-prod"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": NAMESPACE_WRITER_ROLE,
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": "dataproduct-operator",
            "namespace": "dataproduct-system",
        }
    ]
    assert binding["metadata"]["ownerReferences"][0]["kind"] == "DataDomain"


def test_an_operator_that_is_not_a_service_account_is_bound_as_a_user() -> None:
    assert subject_of("kubernetes-admin") == {
        "kind": "User",
        "apiGroup": "rbac.authorization.k8s.io",
        "name": "kubernetes-admin",
    }
    # Not a well-formed ServiceAccount name: taken as a user's, never half-parsed.
    assert subject_of("system:serviceaccount:only-namespace")["kind"] == "User"


def test_the_operator_binding_is_desired_only_when_the_operator_is_known() -> None:
    def bindings(objects: list[dict[str, Any]]) -> set[str]:
        return {o["metadata"]["name"] for o in objects if o["kind"] == "RoleBinding"}

    assert NAMESPACE_WRITER_BINDING not in bindings(build_domain_objects(domain()))
    with_operator = build_domain_objects(domain(), operator=OPERATOR)
    assert NAMESPACE_WRITER_BINDING in bindings(with_operator)
    assert with_operator[0]["kind"] == "Namespace"


def test_the_domain_created_first_holds_a_contested_namespace_then_the_first_by_name() -> None:
    claims = {"late": "2026-01-02T00:00:00Z", "early": "2026-01-01T00:00:00Z"}
    assert namespace_holder(claims) == "early"
    tie = {"b": "2026-01-01T00:00:00Z", "a": "2026-01-01T00:00:00Z"}
    assert namespace_holder(tie) == "a"
    message = taken_message("shared", "early")
    assert "namespace shared is held by the DataDomain early" in message
    assert "set spec.namespace to another namespace" in message


def _guard(name: str) -> dict[str, Any]:
    policies = build_guard_policies(OPERATOR, PROTECTED, '["dataproduct-system"]')
    return next(
        p
        for p in policies
        if p["kind"] == "ValidatingAdmissionPolicy" and p["metadata"]["name"] == name
    )


def _failures(policy: dict[str, Any], **request: Any) -> list[str]:
    """The messages of the validations of ``policy`` that ``request`` fails (its match
    conditions assumed true), evaluated as the API server would."""
    environment = celpy.Environment()
    activation: dict[str, Any] = {name: json_to_cel(value) for name, value in request.items()}
    variables: dict[str, Any] = {}
    for variable in policy["spec"]["variables"]:
        program = environment.program(environment.compile(variable["expression"]))
        variables[variable["name"]] = program.evaluate(
            {**activation, "variables": json_to_cel(variables)}
        )
    activation["variables"] = json_to_cel(variables)
    failed = []
    for validation in policy["spec"]["validations"]:
        program = environment.program(environment.compile(validation["expression"]))
        if not program.evaluate(activation):
            expression = validation.get("messageExpression")
            if expression is None:
                failed.append(validation["message"])
            else:
                message = environment.program(environment.compile(expression))
                failed.append(str(message.evaluate(activation)))
    return failed


def test_every_operator_guard_fails_closed_and_matches_only_the_operator() -> None:
    for name in (ROLE_BINDINGS_GUARD, NAMESPACES_GUARD):
        spec = _guard(name)["spec"]
        assert spec["failurePolicy"] == "Fail"
        assert spec["matchConditions"] == [
            {"name": "by-the-operator", "expression": f'request.userInfo.username == "{OPERATOR}"'}
        ]
        assert all(v["reason"] == "Forbidden" for v in spec["validations"])
    # The DataDomain guard holds for everyone.
    assert "matchConditions" not in _guard(DOMAIN_NAMESPACES_GUARD)["spec"]
    bindings = [
        p for p in build_guard_policies(OPERATOR, PROTECTED, "[]")
        if p["kind"] == "ValidatingAdmissionPolicyBinding"
    ]  # fmt: skip
    assert len(bindings) == 3
    assert all(b["spec"]["validationActions"] == ["Deny"] for b in bindings)


def _namespace(name: str, domain: str | None) -> dict[str, Any]:
    labels = {"datamesh.dev/domain": domain} if domain else {}
    return {"metadata": {"name": name, "labels": labels}}


@pytest.mark.parametrize(
    ("namespace", "expected"),
    [
        (_namespace("sales", "sales"), []),
        (
            _namespace("payments", None),
            [
                "the operator binds roles only in a DataDomain's namespace; namespace payments "
                "carries no datamesh.dev/domain label: create a DataDomain for it"
            ],
        ),
        (
            _namespace("kube-system", "sales"),
            [
                "namespace kube-system is protected: the operator binds no role in it; use "
                "another namespace for the DataDomain"
            ],
        ),
    ],
)
def test_the_operator_binds_roles_only_in_unprotected_domain_namespaces(
    namespace: dict[str, Any], expected: list[str]
) -> None:
    policy = _guard(ROLE_BINDINGS_GUARD)
    assert _failures(policy, namespaceObject=namespace) == expected


def test_the_operator_changes_no_protected_namespace_and_hands_none_to_another_domain() -> None:
    policy = _guard(NAMESPACES_GUARD)
    relabel = {
        "request": {"operation": "UPDATE"},
        "oldObject": _namespace("kube-system", None),
        "object": _namespace("kube-system", "sales"),
    }
    assert _failures(policy, **relabel) == [
        "namespace kube-system is protected: the operator does not change it; use another "
        "namespace for the DataDomain",
        "namespace kube-system exists and is not part of the mesh: the operator labels only the "
        "namespaces it creates; a platform admin hands it over with kubectl label namespace "
        "kube-system datamesh.dev/domain=sales",
    ]
    hand_over = {
        "request": {"operation": "UPDATE"},
        "oldObject": _namespace("sales", "sales"),
        "object": _namespace("sales", "finance"),
    }
    assert _failures(policy, **hand_over) == [
        "namespace sales belongs to the DataDomain sales: the operator does not hand it to "
        "another domain; to move it, remove the label by hand (kubectl label namespace sales "
        "datamesh.dev/domain-)"
    ]
    keep = {**hand_over, "object": _namespace("sales", "sales")}
    assert _failures(policy, **keep) == []


def test_the_operator_labels_only_the_namespaces_it_creates() -> None:
    policy = _guard(NAMESPACES_GUARD)
    take_over = {
        "request": {"operation": "UPDATE"},
        "oldObject": _namespace("payments", None),
        "object": _namespace("payments", "payments"),
    }
    assert _failures(policy, **take_over) == [
        "namespace payments exists and is not part of the mesh: the operator labels only the "
        "namespaces it creates; a platform admin hands it over with kubectl label namespace "
        "payments datamesh.dev/domain=payments"
    ]
    create = {"request": {"operation": "CREATE"}, "object": _namespace("sales", "sales")}
    assert _failures(policy, **create) == []
    handed_over = {**take_over, "oldObject": _namespace("payments", "payments")}
    assert _failures(policy, **handed_over) == []
    # An existing namespace without the label, changed otherwise, stays as RBAC allows.
    untouched = {**take_over, "object": _namespace("payments", None)}
    assert _failures(policy, **untouched) == []


def test_no_domain_takes_the_operators_namespace_or_a_configured_one() -> None:
    policy = _guard(DOMAIN_NAMESPACES_GUARD)

    def domain_object(name: str, namespace: str | None) -> dict[str, Any]:
        spec = {"namespace": namespace} if namespace else {}
        return {"metadata": {"name": name}, "spec": spec}

    assert _failures(policy, object=domain_object("sales", None)) == []
    assert _failures(policy, object=domain_object("sales", "sales-prod")) == []
    message = (
        "spec.namespace dataproduct-system is protected (the operator's namespace or the chart "
        "value protectedNamespaces): set spec.namespace to a namespace of the domain's own"
    )
    assert _failures(policy, object=domain_object("x", "dataproduct-system")) == [message]
    assert _failures(policy, object=domain_object("dataproduct-system", None)) == [message]


def test_the_chart_readme_lists_every_rule_with_its_reason() -> None:
    section = render_rbac_section()
    assert f"### ClusterRole `{NAMESPACE_WRITER_ROLE}`" in section
    assert "bind itself to datamesh-operator-namespace-writer" in section
    for name in (ROLE_BINDINGS_GUARD, NAMESPACES_GUARD):
        assert f"| `{name}` |" in section
    assert "### Accepted risk" in section


def _domain_body(name: str, namespace: str, created: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"namespace": namespace},
    }


def test_the_mesh_knows_the_holder_of_a_contested_namespace_and_tells_when_it_changes() -> None:
    mesh = MeshState(cast(KubeClient, object()))  # no watch is started: no request is made
    moved: list[set[str]] = []
    mesh.on_namespaces_moved = moved.append
    early = _domain_body("early", "shared", "2026-01-01T00:00:00Z")
    late = _domain_body("late", "shared", "2026-01-02T00:00:00Z")
    mesh._domain_changed("ADDED", late)
    mesh._domain_changed("ADDED", early)  # older: takes the namespace over
    assert mesh.domain_of("shared") == "early"
    assert mesh.claimants("shared") == ["early", "late"]
    assert moved == [{"shared"}, {"shared"}]
    mesh.onboarded.add("shared")
    mesh._domain_changed("MODIFIED", late)  # a status write of the rival: nothing moves
    assert moved == [{"shared"}, {"shared"}]
    mesh._domain_changed("DELETED", early)
    assert mesh.domain_of("shared") == "late"
    assert moved[-1] == {"shared"}
    # The operator's binding was the old holder's (owned by it): the new one binds it anew.
    assert "shared" not in mesh.onboarded
    mesh._domain_changed("DELETED", late)
    assert mesh.domain_of("shared") is None and mesh.claimants("shared") == []
