"""The chart's ValidatingAdmissionPolicy that makes changes which delete data confirmed (layer
``manifests``, pure).

Two updates of a DataProduct delete data: switching ``deletionPolicy`` from Retain to Delete
(the data of every output port would then go with the product) and removing an output port
while the policy is Delete, before or after the change (the operator deletes the removed port's
claim). The API server refuses either unless the product carries the annotation
``datamesh.dev/confirm-data-deletion`` whose value lists every such port: port names separated
by commas, spaces around them ignored (``orders-v1, daily-revenue``). The annotation sits in the
manifest, so the confirmation is reviewed with the change in Git; it stays until removed, and a
port it names is confirmed for later changes too.
"""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.dataproduct import PLURAL, DeletionPolicy
from dataproduct_operator.api.kinds import GROUP, VERSION
from dataproduct_operator.constants import ANNOTATION_CONFIRM_DATA_DELETION

POLICY_NAME = "datamesh-confirm-data-deletion"
RETAIN, DELETE = DeletionPolicy.RETAIN.value, DeletionPolicy.DELETE.value


def _policy_of(obj: str) -> str:
    return f"(has({obj}.spec.deletionPolicy) ? {obj}.spec.deletionPolicy : '{RETAIN}')"


# Evaluated in order; each may use the ones before it.
VARIABLES: tuple[tuple[str, str], ...] = (
    ("switchedToDelete", f"{_policy_of('oldObject')} == '{RETAIN}' && "
                         f"{_policy_of('object')} == '{DELETE}'"),
    ("deleting", f"{_policy_of('oldObject')} == '{DELETE}' || "
                 f"{_policy_of('object')} == '{DELETE}'"),
    ("removedPorts", "oldObject.spec.outputPorts.map(p, p.name)"
                     ".filter(n, !object.spec.outputPorts.exists(q, q.name == n))"),
    ("portsLosingData", "(variables.switchedToDelete ? object.spec.outputPorts.map(p, p.name) : [])"
                        " + (variables.deleting ? variables.removedPorts : [])"),
    ("confirmedPorts", f"has(object.metadata.annotations) && "
                       f"'{ANNOTATION_CONFIRM_DATA_DELETION}' in object.metadata.annotations ? "
                       f"object.metadata.annotations['{ANNOTATION_CONFIRM_DATA_DELETION}']"
                       ".split(',').map(n, n.trim()) : []"),
    ("unconfirmedPorts", "variables.portsLosingData.filter(n, !(n in variables.confirmedPorts))"),
)  # fmt: skip

EXPRESSION = "size(variables.unconfirmedPorts) == 0"
MESSAGE_EXPRESSION = (
    "'this change deletes the data of the output ports ' + "
    "variables.unconfirmedPorts.join(', ') + "
    f"(variables.switchedToDelete ? ' (deletionPolicy {RETAIN} to {DELETE}: the data of every "
    "port goes with the product)' : ' (removed while deletionPolicy is "
    f"{DELETE})') + '; to confirm, add the annotation {ANNOTATION_CONFIRM_DATA_DELETION}: \"' + "
    "variables.portsLosingData.join(',') + '\"'"
)
MESSAGE = (
    "this change deletes the data of output ports: confirm it with the annotation "
    f"{ANNOTATION_CONFIRM_DATA_DELETION} listing them, separated by commas"
)


def build_validating_policy(
    name: str,
    resource_rule: dict[str, Any],
    validations: list[dict[str, str]],
    variables: tuple[tuple[str, str], ...] = (),
) -> list[dict[str, Any]]:
    """A ValidatingAdmissionPolicy that denies (failure policy Fail) and its binding, for one
    rule of resources and operations (no labels: the chart adds its own)."""
    spec: dict[str, Any] = {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [resource_rule]},
    }
    if variables:
        spec["variables"] = [{"name": key, "expression": value} for key, value in variables]
    spec["validations"] = validations
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    return [policy, binding]


def build_data_deletion_policy() -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its binding (no labels: the chart adds its own)."""
    rule = {"apiGroups": [GROUP], "apiVersions": [VERSION], "operations": ["UPDATE"],
            "resources": [PLURAL]}  # fmt: skip
    validation = {
        "expression": EXPRESSION,
        "message": MESSAGE,
        "messageExpression": MESSAGE_EXPRESSION,
        "reason": "Forbidden",
    }
    return build_validating_policy(POLICY_NAME, rule, [validation], VARIABLES)
