"""The admission policies that fence the operator in (layer ``manifests``, pure).

The operator's write powers in a namespace come from a RoleBinding it makes itself (see
:mod:`dataproduct_operator.manifests.rbac`). These ValidatingAdmissionPolicies, shipped by the
chart with ``failurePolicy: Fail``, make sure it cannot use its cluster-wide powers to reach
further; each one matches only requests of the operator's own ServiceAccount:

- ``datamesh-operator-rolebindings``: a RoleBinding by the operator only in a namespace that
  carries the domain label (``datamesh.dev/domain``) and is not protected;
- ``datamesh-operator-namespaces``: no change to a protected namespace, no domain label added
  to a namespace that exists without one (the operator labels only the namespaces it creates;
  a platform admin hands an existing one over by labelling it), and no domain label changed to
  another domain (or removed);

No admission policy can fence the operator's writes to admission policies themselves: the API
server does not apply ValidatingAdmissionPolicies created through the API to
ValidatingAdmissionPolicies and their bindings (to avoid circular dependencies; only static,
manifest-based ones would be). RBAC fences them instead: the operator may write admission
policies only in the chart's pool of names for MeshPolicies (``datamesh-policy-000`` and on,
see :func:`~dataproduct_operator.manifests.rbac.admission_slot_rule`), never these guards.

One more, ``datamesh-domain-namespaces``, holds for every user: a DataDomain may not name the
operator's namespace or one of the chart's ``protectedNamespaces``. (The fixed platform
namespaces, kube-* and default, are refused by the DataDomain CRD itself.)

Protected namespaces are :data:`~dataproduct_operator.constants.PROTECTED_NAMESPACES`, the
release's namespace and the chart value ``protectedNamespaces``. The builders take the
operator's username and the CEL list literals of the protected namespaces, so the chart passes
Helm expressions and the tests concrete values.
"""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.datadomain import PLURAL as DOMAIN_PLURAL
from dataproduct_operator.api.kinds import GROUP
from dataproduct_operator.constants import LABEL_DOMAIN

ROLE_BINDINGS_GUARD = "datamesh-operator-rolebindings"
NAMESPACES_GUARD = "datamesh-operator-namespaces"
DOMAIN_NAMESPACES_GUARD = "datamesh-domain-namespaces"

ADMISSION = "admissionregistration.k8s.io"


def _labelled(obj: str, label: str) -> str:
    return f"has({obj}.metadata.labels) && '{label}' in {obj}.metadata.labels"


def _label(obj: str, label: str) -> str:
    return f"{obj}.metadata.labels['{label}']"


def _rule(group: str, resources: list[str], operations: list[str]) -> dict[str, Any]:
    return {
        "apiGroups": [group],
        "apiVersions": ["*"],
        "resources": resources,
        "operations": operations,
    }


def _policy(
    name: str,
    description: str,
    rules: list[dict[str, Any]],
    validations: list[dict[str, str]],
    *,
    operator: str | None,
    variables: list[dict[str, str]],
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": rules},
    }
    if operator is not None:
        # Only the operator's own requests: everyone else keeps what RBAC gives them.
        spec["matchConditions"] = [
            {"name": "by-the-operator", "expression": f'request.userInfo.username == "{operator}"'}
        ]
    spec["variables"] = variables
    spec["validations"] = [{**validation, "reason": "Forbidden"} for validation in validations]
    return {
        "apiVersion": f"{ADMISSION}/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "annotations": {f"{GROUP}/description": description}},
        "spec": spec,
    }


def _binding(policy: dict[str, Any]) -> dict[str, Any]:
    name = policy["metadata"]["name"]
    return {
        "apiVersion": f"{ADMISSION}/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }


def build_guard_policies(operator: str, protected: str, configured: str) -> list[dict[str, Any]]:
    """The three policies, each followed by its binding.

    ``operator``: the operator's username (``system:serviceaccount:<ns>:<name>``);
    ``protected``: a CEL list of every protected namespace; ``configured``: a CEL list of the
    release's namespace and the chart's ``protectedNamespaces`` only.
    """
    protected_var = [{"name": "protected", "expression": protected}]
    in_domain = _labelled("namespaceObject", LABEL_DOMAIN)
    role_bindings = _policy(
        ROLE_BINDINGS_GUARD,
        "The operator binds roles only in the namespaces of DataDomains, never in a protected one.",
        [_rule("rbac.authorization.k8s.io", ["rolebindings"], ["CREATE", "UPDATE"])],
        [
            {
                "expression": f"{in_domain}",
                "messageExpression": "'the operator binds roles only in a DataDomain\\'s "
                "namespace; namespace ' + namespaceObject.metadata.name + ' carries no "
                f"{LABEL_DOMAIN} label: create a DataDomain for it'",
            },
            {
                "expression": "!(namespaceObject.metadata.name in variables.protected)",
                "messageExpression": "'namespace ' + namespaceObject.metadata.name + ' is "
                "protected: the operator binds no role in it; use another namespace for the "
                "DataDomain'",
            },
        ],
        operator=operator,
        variables=protected_var,
    )
    had_domain = _labelled("oldObject", LABEL_DOMAIN)
    keeps_domain = (
        f"{_labelled('object', LABEL_DOMAIN)} && "
        f"{_label('object', LABEL_DOMAIN)} == {_label('oldObject', LABEL_DOMAIN)}"
    )
    namespaces = _policy(
        NAMESPACES_GUARD,
        "The operator changes no protected namespace, takes no existing namespace into the mesh "
        "and hands no namespace to another domain.",
        [_rule("", ["namespaces"], ["CREATE", "UPDATE"])],
        [
            {
                "expression": "!(object.metadata.name in variables.protected)",
                "messageExpression": "'namespace ' + object.metadata.name + ' is protected: "
                "the operator does not change it; use another namespace for the DataDomain'",
            },
            {
                "expression": f"request.operation != 'UPDATE' || ({had_domain}) || "
                f"!({_labelled('object', LABEL_DOMAIN)})",
                "messageExpression": "'namespace ' + object.metadata.name + ' exists and is not "
                "part of the mesh: the operator labels only the namespaces it creates; a "
                "platform admin hands it over with kubectl label namespace ' + "
                f"object.metadata.name + ' {LABEL_DOMAIN}=' + {_label('object', LABEL_DOMAIN)}",
            },
            {
                "expression": f"request.operation != 'UPDATE' || !({had_domain}) || "
                f"({keeps_domain})",
                "messageExpression": "'namespace ' + object.metadata.name + ' belongs to the "
                f"DataDomain ' + {_label('oldObject', LABEL_DOMAIN)} + ': the operator does not "
                "hand it to another domain; to move it, remove the label by hand (kubectl label "
                f"namespace ' + object.metadata.name + ' {LABEL_DOMAIN}-)'",
            },
        ],
        operator=operator,
        variables=protected_var,
    )
    # "namespace" is a CEL keyword: read as a map key (the escaped field name is not resolved).
    domain_namespace = (
        "'namespace' in object.spec ? object.spec['namespace'] : object.metadata.name"
    )
    domains = _policy(
        DOMAIN_NAMESPACES_GUARD,
        "No DataDomain takes the operator's namespace or a namespace the chart protects.",
        [_rule(GROUP, [DOMAIN_PLURAL], ["CREATE", "UPDATE"])],
        [
            {
                "expression": "!(variables.domainNamespace in variables.protected)",
                "messageExpression": "'spec.namespace ' + variables.domainNamespace + ' is "
                "protected (the operator\\'s namespace or the chart value "
                "protectedNamespaces): set spec.namespace to a namespace of the domain\\'s own'",
            }
        ],
        operator=None,
        variables=[
            {"name": "domainNamespace", "expression": domain_namespace},
            {"name": "protected", "expression": configured},
        ],
    )
    return [document for policy in (role_bindings, namespaces, domains)
            for document in (policy, _binding(policy))]  # fmt: skip
