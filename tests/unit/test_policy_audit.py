"""MeshPolicies without a cluster: CEL in Python, the admission objects, the audit, the status,
the starter set against the examples, and the violations metric."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from dataproduct_operator.api.cel import CelCompileError, CelEvaluationError, compile_cel
from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.api.meshpolicy import MeshPolicy, compile_policy
from dataproduct_operator.constants import admission_slot_names
from dataproduct_operator.manifests.chart import REGISTRIES_TEMPLATE, render_policies_template
from dataproduct_operator.manifests.policies import STARTER_POLICIES, allowed_registries_policy
from dataproduct_operator.metrics import OperatorMetrics
from dataproduct_operator.reconcile.mesh import Violations
from dataproduct_operator.specs.meshpolicy import (
    build_admission_objects,
    choose_admission_slot,
    enforced_at_admission,
)
from dataproduct_operator.status.meshpolicy import (
    ObservedAdmission,
    audit_product,
    compute_policy_status,
    with_compliance,
)
from tests.helpers import EXAMPLES, MESH_FIXTURE, example_documents, example_product

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"
SLOT = "datamesh-policy-007"


def policy(
    name: str = "team-names",
    rules: list[dict[str, str]] | None = None,
    *,
    enforcement: str = "Deny",
    uid: str = "p-1",
    **match: list[str],
) -> MeshPolicy:
    rules = rules or [
        {
            "name": "team-suffix",
            "expression": "object.spec.owner.team.endsWith('-data')",
            "message": "end spec.owner.team in -data",
        }
    ]
    return MeshPolicy.from_object(
        {
            "metadata": {"name": name, "uid": uid, "generation": 2},
            "spec": {"rules": rules, "enforcement": enforcement, "match": match},
        }
    )


def audit(document: dict[str, Any], *policies: MeshPolicy) -> list[str]:
    product = DataProduct.from_object(document)
    compiled = [compile_policy(p) for p in policies]
    return [v.describe() for v in audit_product(product, document, compiled)]


# --- CEL ---------------------------------------------------------------------------------------


def test_cel_has_the_kubernetes_string_functions_rules_share_with_the_api_server() -> None:
    program = compile_cel("int(object.v.split('.')[0]) > 1 && object.t.lowerAscii() == 'ab'")
    assert program.holds({"object": {"v": "2.0.1", "t": "AB"}})
    assert compile_cel("['a', 'b'].join(', ')").text({}) == "a, b"


def test_cel_errors_are_short_and_say_what_is_wrong() -> None:
    with pytest.raises(CelCompileError, match="syntax error at line 1, column 23"):
        compile_cel("object.spec.lifecycle ==")
    with pytest.raises(CelEvaluationError, match="no such member") as missing:
        compile_cel("object.spec.version == '1'").holds({"object": {"spec": {}}})
    assert "activation" not in str(missing.value)
    with pytest.raises(CelEvaluationError, match="not a bool"):
        compile_cel("object.spec").holds({"object": {"spec": {}}})


# --- admission objects -------------------------------------------------------------------------


def test_deny_and_warn_become_an_admission_policy_and_its_binding() -> None:
    vap, binding = build_admission_objects(
        policy(lifecycles=["Production"], domains=["sales"]), SLOT
    )
    assert vap["metadata"]["name"] == binding["metadata"]["name"] == SLOT
    assert vap["metadata"]["labels"]["datamesh.dev/mesh-policy"] == "team-names"
    assert vap["metadata"]["ownerReferences"][0]["kind"] == "MeshPolicy"
    assert vap["spec"]["failurePolicy"] == "Fail"
    (rules,) = vap["spec"]["matchConstraints"]["resourceRules"]
    assert rules["resources"] == ["dataproducts"] and rules["operations"] == ["CREATE", "UPDATE"]
    conditions = {c["name"]: c["expression"] for c in vap["spec"]["matchConditions"]}
    assert conditions["lifecycle-matches"] == (
        "has(object.spec.lifecycle) && object.spec.lifecycle in ['Production']"
    )
    assert conditions["domain-matches"].endswith("object.spec.domain in ['sales']")
    assert "oldObject.spec" in conditions["spec-changed"]
    (validation,) = vap["spec"]["validations"]
    assert validation["message"] == (
        "end spec.owner.team in -data (MeshPolicy team-names, rule team-suffix)"
    )
    assert binding["spec"] == {
        "policyName": SLOT,
        "validationActions": ["Deny"],
    }
    (_, warn) = build_admission_objects(policy(enforcement="Warn"), SLOT)
    assert warn["spec"]["validationActions"] == ["Warn"]


def test_audit_policies_and_broken_ones_have_no_admission_objects() -> None:
    assert build_admission_objects(policy(enforcement="Audit"), SLOT) == []
    broken = [{"name": "x", "expression": "object.spec ==", "message": "m"}]
    assert build_admission_objects(policy(rules=broken), SLOT) == []
    assert not enforced_at_admission(compile_policy(policy(enforcement="Audit")))
    assert not enforced_at_admission(compile_policy(policy(rules=broken)))
    assert enforced_at_admission(compile_policy(policy(enforcement="Warn")))


def test_a_message_expression_names_the_policy_and_rule_too() -> None:
    rules = [{"name": "r", "expression": "false", "messageExpression": "'tags: ' + 'x'"}]
    (vap, _) = build_admission_objects(policy(rules=rules), SLOT)
    (validation,) = vap["spec"]["validations"]
    assert (
        validation["messageExpression"] == "('tags: ' + 'x') + ' (MeshPolicy team-names, rule r)'"
    )
    # Should the expression fail, the API server shows the message: it names them as well.
    assert validation["message"] == "failed expression: false (MeshPolicy team-names, rule r)"


# --- the pool of admission-policy names --------------------------------------------------------

POOL = admission_slot_names(4)


def test_the_pool_is_zero_padded_names_in_the_order_they_are_handed_out() -> None:
    assert POOL == (
        "datamesh-policy-000", "datamesh-policy-001", "datamesh-policy-002", "datamesh-policy-003"
    )  # fmt: skip
    assert admission_slot_names(256)[-1] == "datamesh-policy-255"


def test_a_policy_takes_the_lowest_free_name_and_keeps_it_across_passes() -> None:
    assert choose_admission_slot(POOL, {}, "a") == POOL[0]
    holders: dict[str, str | None] = {POOL[0]: "a", POOL[2]: "c"}
    assert choose_admission_slot(POOL, holders, "b") == POOL[1]
    holders[POOL[1]] = "b"
    # Kept on every later pass, even once a lower name is free.
    del holders[POOL[0]]
    assert choose_admission_slot(POOL, holders, "b") == POOL[1]
    assert choose_admission_slot(POOL, holders, "c") == POOL[2]
    assert choose_admission_slot(POOL, holders, "d") == POOL[0]


def test_a_name_held_by_an_object_the_operator_did_not_make_is_never_taken() -> None:
    assert choose_admission_slot(POOL, {POOL[0]: None}, "a") == POOL[1]


def test_a_full_pool_leaves_a_new_policy_without_a_name_and_ready_false() -> None:
    holders: dict[str, str | None] = dict(zip(POOL, "wxyz", strict=True))
    assert choose_admission_slot(POOL, holders, "a") is None
    assert choose_admission_slot(POOL, holders, "y") == POOL[2]
    waiting = compile_policy(policy())
    status = compute_policy_status(
        waiting, ObservedAdmission(None, None), [], failures=[], now=T0, pool_full=len(POOL)
    )
    ready = status.conditions[0]
    assert (ready.type, ready.status.value, ready.reason) == ("Ready", "False", "NoAdmissionSlot")
    assert ready.message == (
        "not enforced: 4 MeshPolicies are enforced at admission, the chart's "
        "policies.maxEnforced: raise it or set one to Audit"
    )
    assert status.admission_policy is None


# --- audit and status --------------------------------------------------------------------------


def test_the_audit_lists_each_failed_rule_and_skips_products_the_match_excludes() -> None:
    document = example_product()
    document["spec"]["owner"]["team"] = "sales-analysts"
    assert audit(document, policy()) == ["team-names/team-suffix: end spec.owner.team in -data"]
    assert audit(document, policy(domains=["crm"])) == []
    assert audit(document, policy(lifecycles=["Retired"])) == []
    unevaluable = [{"name": "v", "expression": "object.spec.nosuch == 1", "message": "m"}]
    (found,) = audit(document, policy("p2", unevaluable))
    assert found.startswith("p2/v: cannot be evaluated for this product: no such member")


def test_compliance_is_a_condition_of_its_own_that_keeps_ready_as_it_is() -> None:
    document = example_product()
    document["metadata"].update(generation=3)
    product = DataProduct.from_object(document)
    compiled = [compile_policy(policy())]
    document["spec"]["owner"]["team"] = "x"
    bad = audit_product(DataProduct.from_object(document), document, compiled)
    status = with_compliance(product, product.status, bad, now=T0)
    (condition,) = status.conditions
    assert (condition.type, condition.status.value, condition.reason) == (
        "PolicyCompliant",
        "False",
        "PolicyViolated",
    )
    assert condition.message == "violates team-names/team-suffix: end spec.owner.team in -data"
    again = with_compliance(product.model_copy(update={"status": status}), status, bad, now=T1)
    assert again.conditions[0].last_transition_time == T0
    fixed = with_compliance(product, product.status, [], now=T1)
    assert (fixed.conditions[0].status.value, fixed.conditions[0].reason) == ("True", "Compliant")


def admission_policy(generation: int, observed: int | None, warnings: list[Any]) -> dict[str, Any]:
    status: dict[str, Any] = {"typeChecking": {"expressionWarnings": warnings}}
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": {"generation": generation}, "status": status}


def test_policy_status_is_ready_once_the_api_server_checked_and_bound_it() -> None:
    compiled = compile_policy(policy())

    def ready(vap: dict[str, Any] | None, binding: dict[str, Any] | None) -> tuple[str, str]:
        status = compute_policy_status(
            compiled, ObservedAdmission(vap, binding), [], failures=[], now=T0
        )
        return status.conditions[0].status.value, status.conditions[0].reason

    checked = admission_policy(1, 1, [])
    assert ready(checked, {"binding": 1}) == ("True", "Enforced")
    assert ready(admission_policy(2, 1, []), None) == ("False", "TypeCheckPending")
    warned = admission_policy(1, 1, [{"fieldRef": "spec.validations[0]", "warning": "no field"}])
    assert ready(warned, None) == ("False", "TypeCheckFailed")
    assert ready(checked, None) == ("False", "AdmissionPolicyMissing")
    assert ready(None, None) == ("False", "AdmissionPolicyMissing")


def test_policy_status_counts_violations_and_reports_what_does_not_compile() -> None:
    violating = [f"ns/p-{i:02d}" for i in range(25)]
    audit_only = compile_policy(policy(enforcement="Audit"))
    status = compute_policy_status(
        audit_only, ObservedAdmission(None, None), violating, failures=[], now=T0
    )
    assert status.violations == 25 and status.violating_products == violating[:20]
    assert [(c.type, c.status.value, c.reason) for c in status.conditions] == [
        ("Ready", "True", "Auditing"),
        ("Valid", "True", "Compiled"),
    ]
    broken = compile_policy(policy(rules=[{"name": "b", "expression": "a ==", "message": "m"}]))
    status = compute_policy_status(broken, ObservedAdmission(None, None), [], failures=[], now=T0)
    ready, valid = status.conditions
    assert (ready.reason, valid.status.value, valid.reason) == ("Invalid", "False", "CompileError")
    assert valid.message.startswith("rule b: syntax error at line 1")


# --- the starter set ---------------------------------------------------------------------------


def starters() -> list[MeshPolicy]:
    return [MeshPolicy.from_object(copy.deepcopy(p)) for p in STARTER_POLICIES]


@pytest.mark.parametrize(
    "path",
    [*sorted(EXAMPLES.glob("*.yaml")), *sorted(MESH_FIXTURE.glob("*.yaml"))],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_example_product_complies_with_the_starter_policies(path: Any) -> None:
    for document in example_documents(path.name, path.parent):
        if document["kind"] == "DataProduct":
            assert audit(document, *starters()) == []


def test_each_starter_policy_says_what_to_change() -> None:
    document = example_product()  # Production, Confidential
    document["spec"]["outputPorts"][1].pop("slo")
    document["spec"]["owner"]["contacts"] = []
    document["spec"]["classification"] = "Internal"
    found = audit(document, *starters())
    assert found == [
        "pii-classification/pii-needs-confidential: output ports with pii columns (orders-v1) "
        "need spec.classification Confidential or Restricted, not Internal",
        "production-contacts/owner-contact: a Production data product names at least one "
        "owner contact: add spec.owner.contacts with a name and an email",
        "production-freshness/freshness-on-every-port: a Production data product declares "
        "slo.freshness on every output port; add it (e.g. slo: {freshness: 24h}) to: "
        "daily-revenue",
    ]
    retired = example_product()
    retired["spec"]["lifecycle"] = "Retired"
    assert audit(retired, *starters()) == [
        "retired-no-schedules/no-scheduled-pipelines: a Retired data product runs no scheduled "
        "pipelines; remove the schedule of: ingest"
    ]


def test_removing_a_column_takes_a_major_version_bump() -> None:
    (breaking,) = [p for p in starters() if p.name == "breaking-change-major-version"]
    (rule,) = breaking.spec.rules
    program = compile_cel(rule.expression)
    old = example_product()
    new = copy.deepcopy(old)
    new["spec"]["outputPorts"][0]["schema"].pop()
    assert program.holds({"object": old, "oldObject": None})  # a create
    assert program.holds({"object": old, "oldObject": old})  # nothing removed
    assert not program.holds({"object": new, "oldObject": old})
    new["spec"]["outputPorts"].pop(1)
    assert not program.holds({"object": new, "oldObject": old})  # a port removed as well
    new["spec"]["version"] = "2.0.0"  # from 1.2.0
    assert program.holds({"object": new, "oldObject": old})


# --- metrics -----------------------------------------------------------------------------------


def test_violations_are_counted_per_policy_and_rule_in_prometheus_format() -> None:
    metrics = OperatorMetrics()
    violations = Violations()
    metrics.count_policy_violations(violations.counts)
    assert violations.observe("sales", "orders", {("pii", "r1"), ("fresh", "r2")})
    assert violations.observe("crm", "customers", {("pii", "r1")})
    assert not violations.observe("crm", "customers", {("pii", "r1")})  # unchanged
    text = generate_latest(metrics.registry).decode()
    assert 'dataproduct_policy_violations{policy="pii",rule="r1"} 2.0' in text
    assert 'dataproduct_policy_violations{policy="fresh",rule="r2"} 1.0' in text
    assert violations.violating("pii") == ["crm/customers", "sales/orders"]
    violations.observe("sales", "orders", set())
    assert violations.forget("crm", "customers")
    assert "dataproduct_policy_violations{" not in generate_latest(metrics.registry).decode()


def test_allowed_registries_reports_the_pipelines_whose_images_come_from_elsewhere() -> None:
    (policy,) = [p for p in starters() if p.name == "allowed-registries"]
    assert policy.spec.enforcement.value == "Audit"
    document = example_product()
    assert audit(document, policy) == []  # ghcr.io, the default
    document["spec"]["pipelines"][0]["image"] = "busybox:1.36"  # Docker Hub
    document["spec"]["pipelines"][1]["image"] = "localhost:5000/acme/backfill:1"
    assert audit(document, policy) == [
        "allowed-registries/images-from-allowed-registries: pipeline images come from the "
        "registries ghcr.io; move these to one of them: ingest (busybox:1.36), "
        "backfill (localhost:5000/acme/backfill:1)"
    ]


def test_the_charts_registries_reach_the_allowed_registries_rule() -> None:
    listed = allowed_registries_policy("['registry.example.com:5000', 'docker.io']")
    policy = MeshPolicy.from_object(listed)
    document = example_product()
    document["spec"]["pipelines"] = [
        {"name": "a", "image": "registry.example.com:5000/team/job@sha256:" + "a" * 64},
        {"name": "b", "image": "library/busybox"},
        {"name": "c", "image": "ghcr.io/acme/c:1"},
    ]
    assert audit(document, policy) == [
        "allowed-registries/images-from-allowed-registries: pipeline images come from the "
        "registries registry.example.com:5000, docker.io; move these to one of them: "
        "c (ghcr.io/acme/c:1)"
    ]


def test_the_chart_writes_its_registries_value_into_the_rule_as_a_cel_list() -> None:
    template = render_policies_template()
    assert REGISTRIES_TEMPLATE in template
    registries = json.dumps(["a.example.com", "b.example.com:5000"])  # what toJson writes
    rendered = template.replace(REGISTRIES_TEMPLATE, registries)
    documents = [d for d in yaml.safe_load_all(re.sub(r"\{\{-.*\}\}", "", rendered)) if d]
    (chart_policy,) = [d for d in documents if d["metadata"]["name"] == "allowed-registries"]
    assert chart_policy["spec"] == allowed_registries_policy(registries)["spec"]
    assert compile_policy(MeshPolicy.from_object(chart_policy)).errors == {}  # CEL compiles
