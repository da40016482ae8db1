"""MeshPolicies against the local control plane: enforced by the API server at `kubectl apply`,
audited by the operator (running as the chart's identity) on the products that exist.

Every policy here matches only the test's own domain, so that no other test's products are
refused while its admission policy is garbage-collected.
"""

from __future__ import annotations

import json
from typing import Any

from dataproduct_operator.constants import DEFAULT_ADMISSION_SLOTS, admission_slot_names
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.manifests.policies import STARTER_POLICIES
from tests.clusters import KubectlRunner
from tests.helpers import wait_for
from tests.meshpolicies import (
    ADMISSION_POLICIES,
    BINDINGS,
    POLICIES,
    MakePolicy,
    admission_objects,
    policy_condition,
)
from tests.products import (
    PRODUCTS,
    OperatorProcess,
    condition,
    create_ready,
    example,
    operator_metrics,
    product_path,
)


def refused_on_dry_run(kubectl: KubectlRunner, product: dict[str, Any]) -> bool:
    """Whether the API server's admission already refuses ``product`` (nothing is stored)."""
    result = kubectl("apply", "--dry-run=server", "-f", "-", stdin=json.dumps(product), check=False)
    return result.returncode != 0


TEAM_RULE = {
    "name": "team-suffix",
    "expression": "object.spec.owner.team.endsWith('-data')",
    "message": "spec.owner.team must name a data team: end it in -data",
}


def test_a_deny_policy_makes_kubectl_apply_fail_with_its_message(
    operator: OperatorProcess,
    kube: BlockingClient,
    kubectl: KubectlRunner,
    namespace: str,
    make_policy: MakePolicy,
) -> None:
    make_policy("team-names", [TEAM_RULE], "Deny")
    ready = policy_condition(kube, "team-names", "Ready", "Enforced")
    assert "refuses" in ready["message"]
    slot = kube.get(f"{POLICIES}/team-names")["status"]["admissionPolicy"]
    assert slot in admission_slot_names(DEFAULT_ADMISSION_SLOTS)
    admission = kube.get(f"{ADMISSION_POLICIES}/{slot}")
    assert admission["metadata"]["ownerReferences"][0]["name"] == "team-names"
    assert admission_objects(kube, BINDINGS, "team-names") == [slot]
    product = example(namespace)
    product["spec"]["owner"]["team"] = "sales-analysts"
    wait_for(lambda: refused_on_dry_run(kubectl, product), description="admission to apply")
    result = kubectl("apply", "-f", "-", stdin=json.dumps(product), check=False)
    assert result.returncode != 0
    assert "spec.owner.team must name a data team: end it in -data" in result.stderr
    assert "MeshPolicy team-names, rule team-suffix" in result.stderr
    assert f"ValidatingAdmissionPolicy '{slot}'" in result.stderr
    product["spec"]["owner"]["team"] = "sales-data"
    assert "created" in kubectl("apply", "-f", "-", stdin=json.dumps(product)).stdout
    # An update that leaves the spec alone (an annotation) is not judged again.
    kubectl("annotate", "dataproduct", "orders", "-n", namespace, "note=kept")


def test_a_warn_policy_accepts_the_product_with_the_warning(
    operator: OperatorProcess,
    kube: BlockingClient,
    kubectl: KubectlRunner,
    namespace: str,
    make_policy: MakePolicy,
) -> None:
    make_policy("team-names-warn", [TEAM_RULE], "Warn")
    assert "warns" in policy_condition(kube, "team-names-warn", "Ready", "Enforced")["message"]
    product = example(namespace, "probe")
    product["spec"]["owner"]["team"] = "sales-analysts"

    def warned() -> bool:
        result = kubectl("apply", "--dry-run=server", "-f", "-", stdin=json.dumps(product))
        return "end it in -data" in result.stderr

    wait_for(warned, description="admission to warn")
    product = example(namespace, "orders")  # the same product, under its own name
    product["spec"]["owner"]["team"] = "sales-analysts"
    result = kubectl("apply", "-f", "-", stdin=json.dumps(product))
    assert "created" in result.stdout
    assert "Warning:" in result.stderr and "end it in -data" in result.stderr
    assert kube.exists(product_path(namespace, "orders"))


def test_audit_marks_an_existing_product_and_clears_it_after_the_fix(
    operator: OperatorProcess,
    kube: BlockingClient,
    namespace: str,
    make_policy: MakePolicy,
) -> None:
    create_ready(kube, example(namespace))  # tags: orders, revenue
    rule = {
        "name": "certified",
        "expression": "'certified' in object.spec.tags",
        "messageExpression": "'tag the product certified once reviewed; tags now: ' + "
        "object.spec.tags.join(', ')",
    }
    make_policy("certified-only", [rule], "Audit")
    assert policy_condition(kube, "certified-only", "Ready", "Auditing")
    assert admission_objects(kube, ADMISSION_POLICIES, "certified-only") == []
    assert "admissionPolicy" not in kube.get(f"{POLICIES}/certified-only")["status"]

    def compliance(status: str) -> dict[str, Any] | None:
        found = condition(kube.get(product_path(namespace, "orders")), "PolicyCompliant")
        return found if found and found["status"] == status else None

    marked = wait_for(lambda: compliance("False"), description="the product to be non-compliant")
    assert marked["reason"] == "PolicyViolated"
    assert "certified-only/certified" in marked["message"]
    assert "tags now: orders, revenue" in marked["message"]
    ready = condition(kube.get(product_path(namespace, "orders")), "Ready")
    assert ready is not None and ready["status"] == "True", "a violation does not stop a product"
    events = kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    assert any(e["reason"] == "PolicyViolation" for e in events)
    labels = (("policy", "certified-only"), ("rule", "certified"))
    assert operator_metrics(operator)["dataproduct_policy_violations"][labels] == 1.0

    def counted(violations: int) -> bool:
        status = kube.get(f"{POLICIES}/certified-only").get("status") or {}
        return status.get("violations") == violations

    wait_for(lambda: counted(1), description="the policy to count the violation")
    status = kube.get(f"{POLICIES}/certified-only")["status"]
    assert status["violatingProducts"] == [f"{namespace}/orders"]

    kube.merge_patch(product_path(namespace, "orders"), {"spec": {"tags": ["certified"]}})
    cleared = wait_for(lambda: compliance("True"), description="the violation to clear")
    assert cleared["reason"] == "Compliant"
    wait_for(lambda: counted(0), description="the policy count to clear")
    gauges = operator_metrics(operator).get("dataproduct_policy_violations", {})
    assert labels not in gauges


def test_an_invalid_expression_shows_in_the_policy_status_and_blocks_nothing(
    operator: OperatorProcess,
    kube: BlockingClient,
    namespace: str,
    make_policy: MakePolicy,
) -> None:
    broken = {"name": "broken", "expression": "object.spec.lifecycle ==", "message": "never"}
    make_policy("broken-syntax", [broken], "Deny")
    valid = policy_condition(kube, "broken-syntax", "Valid", "CompileError")
    assert valid["status"] == "False"
    assert "rule broken: syntax error at line 1, column 23" in valid["message"]
    assert policy_condition(kube, "broken-syntax", "Ready", "Invalid")["status"] == "False"
    assert admission_objects(kube, ADMISSION_POLICIES, "broken-syntax") == []
    events = kube.get("/api/v1/namespaces/default/events")["items"]
    assert any(
        e["reason"] == "InvalidExpression" and e["involvedObject"]["name"] == "broken-syntax"
        for e in events
    )
    # A field the DataProduct does not have compiles, but the API server's type check says no.
    unknown = {"name": "unknown", "expression": "object.spec.nosuchfield == 'x'", "message": "no"}
    make_policy("unknown-field", [unknown], "Deny")
    failed = policy_condition(kube, "unknown-field", "Ready", "TypeCheckFailed")
    assert "nosuchfield" in failed["message"]
    assert admission_objects(kube, ADMISSION_POLICIES, "unknown-field"), "checked by the API server"
    assert admission_objects(kube, BINDINGS, "unknown-field") == [], "never bound"
    create_ready(kube, example(namespace))  # the broken policies stop nothing
    assert operator.process.poll() is None


def test_starter_policies_refuse_what_they_say_and_accept_the_examples(
    operator: OperatorProcess,
    kube: BlockingClient,
    kubectl: KubectlRunner,
    namespace: str,
    make_policy: MakePolicy,
) -> None:
    for starter in STARTER_POLICIES:
        match = starter["spec"].get("match") or {}  # with the test's domain added
        make_policy(f"{starter['metadata']['name']}-t", starter["spec"]["rules"], "Deny", **match)
    for starter in STARTER_POLICIES:
        policy_condition(kube, f"{starter['metadata']['name']}-t", "Ready", "Enforced")
    product = example(namespace)  # Production, Confidential, with contacts and freshness
    product["spec"]["outputPorts"][1].pop("slo", None)
    wait_for(lambda: refused_on_dry_run(kubectl, product), description="admission to apply")
    result = kubectl("apply", "-f", "-", stdin=json.dumps(product), check=False)
    port = product["spec"]["outputPorts"][1]["name"]
    assert "declares slo.freshness on every output port" in result.stderr
    assert f"add it (e.g. slo: {{freshness: 24h}}) to: {port}" in result.stderr

    created = create_ready(kube, example(namespace))
    version = created["spec"]["version"]
    spec = created["spec"]
    spec["outputPorts"][0]["schema"] = spec["outputPorts"][0]["schema"][:-1]  # a column less
    patch = ("patch", "dataproduct", "orders", "-n", namespace, "--type=merge", "-p")
    result = kubectl(
        *patch, json.dumps({"spec": {"outputPorts": spec["outputPorts"]}}), check=False
    )
    assert result.returncode != 0
    assert f"raise the major number of spec.version (now {version})" in result.stderr
    major = int(version.split(".")[0]) + 1
    bumped = {"spec": {"outputPorts": spec["outputPorts"], "version": f"{major}.0.0"}}
    assert "patched" in kubectl(*patch, json.dumps(bumped)).stdout

    public = example(namespace, "leads")
    public["spec"]["classification"] = "Public"
    # Each policy takes effect once the API server has loaded it, which Enforced does not wait for.
    wait_for(lambda: refused_on_dry_run(kubectl, public), description="admission to apply")
    result = kubectl("apply", "-f", "-", stdin=json.dumps(public), check=False)
    assert "need spec.classification Confidential or Restricted, not Public" in result.stderr
    assert not kube.exists(f"{PRODUCTS.format(namespace=namespace)}/leads")
