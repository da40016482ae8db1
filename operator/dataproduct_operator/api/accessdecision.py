"""The ``DataAccessDecision`` kind, ``datamesh.dev/v1alpha1`` (layer ``api``, pure).

The owners of a data product answer a ``DataAccessRequest`` with a decision in the
**producer's** namespace (the product's): Approve or Deny, with a note, and for an approval
perhaps a shorter duration than asked. Only the team of the domain holding that namespace may
create one there (the domain editor role); ``spec.decidedBy`` must be the creating user (the
chart's admission policy). Deleting an Approve decision revokes the access. The spec is fixed
once made.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from dataproduct_operator.api.accessrequest import MAX_NOTE, MAX_USERNAME
from dataproduct_operator.api.base import (
    AGE_COLUMN,
    ApiModel,
    NamespacedObject,
    cel,
    dns_label,
    validations,
)
from dataproduct_operator.api.conditions import Condition
from dataproduct_operator.api.grants import checked_grant_duration, grant_duration

KIND = "DataAccessDecision"
PLURAL = "dataaccessdecisions"
SINGULAR = "dataaccessdecision"
SHORT_NAMES = ("dad",)


class Verdict(StrEnum):
    APPROVE = "Approve"
    DENY = "Deny"


class DecidedRequest(ApiModel):
    """The request answered: its namespace, name and uid (a request made again under the same
    name is another request, which this decision does not answer)."""

    namespace: str = dns_label("Namespace of the request (the consumer's).")
    name: str = Field(min_length=1, max_length=253, description="Name of the request.")
    uid: str = Field(
        min_length=1, max_length=64, description="metadata.uid of the request (dpo access "
        "approve fills it in)."
    )  # fmt: skip


class DataAccessDecisionSpec(ApiModel):
    """The owners' answer."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel("self == oldSelf", "a decision cannot be changed: delete it and make another"),
            cel(
                "self.decision == 'Approve' || !has(self.duration)",
                "only an Approve decision has a duration; remove it",
            ),
        )
    }

    request: DecidedRequest = Field(description="The DataAccessRequest answered.")
    decision: Verdict = Field(description="Approve or Deny.")
    note: str | None = Field(
        default=None,
        max_length=MAX_NOTE,
        description="Why; shown to the requester and kept in the audit trail.",
    )
    decided_by: str = Field(
        min_length=1,
        max_length=MAX_USERNAME,
        description="The user deciding: must be the creating user's name (the API server "
        "refuses any other).",
    )
    duration: str | None = grant_duration(
        "For Approve: a shorter duration than the request asks (30m, 12h, 30d); absent: as "
        "asked. A longer one is ignored: the request's duration applies."
    )

    @field_validator("duration")
    @classmethod
    def _duration_in_range(cls, value: str | None) -> str | None:
        return checked_grant_duration(value)


class DataAccessDecisionStatus(ApiModel):
    """Whether the decision applies, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation last reconciled."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready: the decision answers its request (False with the reason when it "
        "does not: no such request, another product's namespace, the request already "
        "answered).",
    )


ROOT_VALIDATIONS = (
    cel(
        "size(self.metadata.name) <= 63",
        "the DataAccessDecision name must be at most 63 characters",
    ),
)

PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Request", "type": "string", "jsonPath": ".spec.request.name"},
    {"name": "Consumer", "type": "string", "jsonPath": ".spec.request.namespace"},
    {"name": "Decision", "type": "string", "jsonPath": ".spec.decision"},
    {"name": "By", "type": "string", "jsonPath": ".spec.decidedBy"},
    {"name": "Note", "type": "string", "priority": 1, "jsonPath": ".spec.note"},
    AGE_COLUMN,
)


class DataAccessDecision(NamespacedObject):
    """A whole DataAccessDecision object as the operator reads it."""

    spec: DataAccessDecisionSpec
    status: DataAccessDecisionStatus = Field(default_factory=DataAccessDecisionStatus)
