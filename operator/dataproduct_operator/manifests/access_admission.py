"""The chart's ValidatingAdmissionPolicies of access requests and decisions (layer
``manifests``, pure).

A request and a decision name who made them (``spec.requestedBy``, ``spec.decidedBy``), and
the audit trail shows those names: the API server refuses a name that is not the creating
user's, so nobody can ask or decide in someone else's name. A ServiceAccount subject must be of
the request's own namespace: a team asks for its own workloads, never for another namespace's.
Both are checked when the object is created; neither spec can change afterwards (the CRD's
rule), so the check holds for the object's life.
"""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.accessdecision import PLURAL as DECISIONS
from dataproduct_operator.api.accessrequest import PLURAL as REQUESTS
from dataproduct_operator.api.kinds import GROUP, VERSION
from dataproduct_operator.manifests.admission import build_validating_policy

REQUESTS_POLICY = "datamesh-access-requests"
DECISIONS_POLICY = "datamesh-access-decisions"

_USER = "request.userInfo.username"


def _validation(expression: str, message: str, message_expression: str) -> dict[str, str]:
    return {
        "expression": expression,
        "message": message,
        "messageExpression": message_expression,
        "reason": "Forbidden",
    }


REQUEST_VALIDATIONS = (
    _validation(
        f"object.spec.requestedBy == {_USER}",
        "spec.requestedBy must be the name of the user making the request",
        f"'spec.requestedBy must be the name of the user making the request: ' + {_USER}",
    ),
    _validation(
        "object.spec.subject.kind != 'ServiceAccount' || "
        "object.spec.subject.namespace == request.namespace",
        "a ServiceAccount subject must be of the request's own namespace: make the request "
        "in the ServiceAccount's namespace",
        "'a ServiceAccount subject must be of the request\\'s own namespace ' + "
        "request.namespace + ': make the request in namespace ' + "
        "object.spec.subject.namespace + ' instead'",
    ),
)

DECISION_VALIDATIONS = (
    _validation(
        f"object.spec.decidedBy == {_USER}",
        "spec.decidedBy must be the name of the user making the decision",
        f"'spec.decidedBy must be the name of the user making the decision: ' + {_USER}",
    ),
)


def _policy(name: str, resource: str, checks: tuple[dict[str, str], ...]) -> list[dict[str, Any]]:
    rule = {"apiGroups": [GROUP], "apiVersions": [VERSION], "operations": ["CREATE"],
            "resources": [resource]}  # fmt: skip
    return build_validating_policy(name, rule, list(checks))


def build_access_policies() -> list[dict[str, Any]]:
    """The two policies and their bindings (no labels: the chart adds its own)."""
    return [
        *_policy(REQUESTS_POLICY, REQUESTS, REQUEST_VALIDATIONS),
        *_policy(DECISIONS_POLICY, DECISIONS, DECISION_VALIDATIONS),
    ]
