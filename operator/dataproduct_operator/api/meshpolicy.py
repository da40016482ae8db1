"""The ``MeshPolicy`` kind, ``datamesh.dev/v1alpha1`` (layer ``api``, pure).

A rule of federated governance, cluster-scoped: CEL expressions over a DataProduct (``object``,
and ``oldObject`` on update), enforced at admission by the API server (Deny, Warn) and audited
against existing products by the operator (every enforcement). ``match`` narrows the products a
policy applies to. Like ``DataProduct``, these models are the single source of the CRD schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import Field

from dataproduct_operator.api.base import (
    AGE_COLUMN,
    DNS_LABEL,
    READY_COLUMN,
    ApiModel,
    ClusterObject,
    cel,
    dns_label,
    keyed_by_name,
    validations,
)
from dataproduct_operator.api.cel import CelError, CelProgram, compile_cel
from dataproduct_operator.api.conditions import Condition
from dataproduct_operator.api.dataproduct import Classification, DataProduct, Lifecycle

KIND = "MeshPolicy"
PLURAL = "meshpolicies"
SINGULAR = "meshpolicy"
SHORT_NAMES = ("mpol",)
MAX_LISTED_VIOLATIONS = 20  # products named in the status; the count covers them all


class Enforcement(StrEnum):
    DENY = "Deny"
    WARN = "Warn"
    AUDIT = "Audit"


class PolicyRule(ApiModel):
    """One CEL expression that every matching DataProduct must satisfy."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.message) || has(self.messageExpression)",
                "a rule needs a message or a messageExpression: what the domain team must fix",
            )
        )
    }

    name: str = dns_label("Name of the rule, unique in the policy, e.g. freshness-declared.")
    expression: str = Field(
        min_length=1,
        max_length=4096,
        description="CEL that is true when the product complies; `object` is the DataProduct, "
        "`oldObject` the product before an update (null on create and in audits).",
    )
    message: str | None = Field(
        default=None, min_length=1, max_length=1024, description="What is wrong, for a human."
    )
    message_expression: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="CEL that builds the message (a string); wins over message.",
    )


class PolicyMatch(ApiModel):
    """Which DataProducts a policy applies to; a list left empty matches every value."""

    domains: list[str] = Field(
        default_factory=list,
        max_length=256,
        description="spec.domain of the products.",
        json_schema_extra={
            "x-kubernetes-list-type": "set",
            "items": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63},
        },
    )
    lifecycles: list[Lifecycle] = Field(
        default_factory=list,
        max_length=8,
        description="spec.lifecycle of the products.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    classifications: list[Classification] = Field(
        default_factory=list,
        max_length=8,
        description="spec.classification of the products.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )

    def matches(self, product: DataProduct) -> bool:
        spec = product.spec
        return (
            (not self.domains or spec.domain in self.domains)
            and (not self.lifecycles or spec.lifecycle in self.lifecycles)
            and (not self.classifications or spec.classification in self.classifications)
        )


class MeshPolicySpec(ApiModel):
    """The desired state of a policy."""

    description: str | None = Field(
        default=None, max_length=4096, description="What the policy protects, and why."
    )
    rules: list[PolicyRule] = Field(
        min_length=1,
        max_length=32,
        description="Every rule must hold for a matching product.",
        json_schema_extra=keyed_by_name(),
    )
    enforcement: Enforcement = Field(
        default=Enforcement.DENY,
        description="Deny: the API server refuses a violating create or update; Warn: it "
        "accepts it with a warning; Audit: only reported. Every policy is audited.",
    )
    match: PolicyMatch = Field(
        default_factory=PolicyMatch, description="The products the policy applies to."
    )


class MeshPolicyStatus(ApiModel):
    """The observed state of a policy, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation last reconciled."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Ready, Valid.")
    violations: int = Field(default=0, description="How many DataProducts violate the policy.")
    violating_products: list[str] = Field(
        default_factory=list,
        description=f"namespace/name of violating products, the first {MAX_LISTED_VIOLATIONS}.",
    )
    admission_policy: str | None = Field(
        default=None,
        max_length=253,
        description="The ValidatingAdmissionPolicy and binding that enforce the policy at "
        "admission: one name of the pool the chart grants the operator (policies.maxEnforced). "
        "Unset while the policy is not enforced at admission.",
    )


# The name appears in a label of its admission policy, in messages and in metric labels.
ROOT_VALIDATIONS = (
    cel(
        f"size(self.metadata.name) <= 63 && self.metadata.name.matches('{DNS_LABEL}')",
        "the MeshPolicy name must be a DNS label: at most 63 lower case letters, digits and '-'",
    ),
)

PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Enforcement", "type": "string", "jsonPath": ".spec.enforcement"},
    {"name": "Violations", "type": "integer", "jsonPath": ".status.violations"},
    READY_COLUMN,
    AGE_COLUMN,
)


class MeshPolicy(ClusterObject):
    """A whole MeshPolicy object as the operator reads it."""

    spec: MeshPolicySpec
    status: MeshPolicyStatus = Field(default_factory=MeshPolicyStatus)


@dataclass(frozen=True)
class CompiledRule:
    name: str
    expression: CelProgram
    message: str
    message_expression: CelProgram | None


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy ready to audit with; ``errors`` (rule -> message) when it does not compile."""

    policy: MeshPolicy
    rules: tuple[CompiledRule, ...]
    errors: dict[str, str]


def compile_policy(policy: MeshPolicy) -> CompiledPolicy:
    rules: list[CompiledRule] = []
    errors: dict[str, str] = {}
    for rule in policy.spec.rules:
        try:
            expression = compile_cel(rule.expression)
            message_expression = (
                compile_cel(rule.message_expression) if rule.message_expression else None
            )
        except CelError as error:
            errors[rule.name] = str(error)
            continue
        message = rule.message or f"failed expression: {rule.expression}"
        rules.append(CompiledRule(rule.name, expression, message, message_expression))
    return CompiledPolicy(policy, tuple(rules), errors)
