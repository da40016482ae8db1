"""The ``DataAccessRequest`` kind, ``datamesh.dev/v1alpha1`` (layer ``api``, pure).

A consumer asks for read access to a data product with a purpose and a duration. The request
lives in the **consumer's** namespace; the product's owners answer it with a
``DataAccessDecision`` in theirs. An approved request grants its subject the same real access a
reader of ``spec.access.readers`` has (store grant, credentials Secret, Kubernetes RBAC) until
it expires, is revoked (its decision deleted) or withdrawn (the request deleted). The spec is
fixed once made: a renewal is a new request naming the old one in ``spec.renews``.

The API server refuses at apply what it can tell: the CRD bounds every field, and the chart's
admission policy (:mod:`dataproduct_operator.manifests.access_admission`) makes
``spec.requestedBy`` the creating user and keeps a ServiceAccount subject in the request's own
namespace. What needs the product (it exists, has the ports, allows requests, the duration is
within its cap) the operator decides: phase Denied with the reason.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from dataproduct_operator.api.base import (
    AGE_COLUMN,
    DNS_LABEL,
    ApiModel,
    NamespacedObject,
    cel,
    dns_label,
    validations,
)
from dataproduct_operator.api.conditions import Condition
from dataproduct_operator.api.dataproduct import (
    MAX_PRODUCT_NAME,
    SYSTEM_PREFIX,
    SYSTEM_SUBJECT_REASON,
    ReaderKind,
)
from dataproduct_operator.api.grants import (
    AccessPhase,
    checked_grant_duration,
    grant_duration,
)

KIND = "DataAccessRequest"
PLURAL = "dataaccessrequests"
SINGULAR = "dataaccessrequest"
SHORT_NAMES = ("dar",)

MAX_PURPOSE = 1024
MAX_NOTE = 1024
MAX_PORTS = 32
MAX_HISTORY = 32  # a request passes through at most a handful of phases
MAX_USERNAME = 253


class RequestedProduct(ApiModel):
    """The data product asked for."""

    namespace: str = dns_label("Namespace of the product (its domain's namespace).")
    name: str = dns_label("Name of the product.", max_length=MAX_PRODUCT_NAME)


class AccessSubject(ApiModel):
    """Who is to read: a ServiceAccount of the request's namespace, a Group or a User."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "self.kind != 'ServiceAccount' || has(self.namespace)",
                "a ServiceAccount subject needs its namespace: the request's own",
            ),
            cel(
                "self.kind == 'ServiceAccount' || !has(self.namespace)",
                "only a ServiceAccount subject has a namespace; remove it",
            ),
            cel(
                f"self.kind == 'ServiceAccount' || !self.name.startsWith('{SYSTEM_PREFIX}')",
                f"a Group or User subject may not start with {SYSTEM_PREFIX}: "
                + SYSTEM_SUBJECT_REASON,
            ),
        )
    }

    kind: ReaderKind = Field(description="ServiceAccount, Group or User.")
    name: str = Field(min_length=1, max_length=253, description="Name of the subject.")
    namespace: str | None = dns_label(
        "Namespace of a ServiceAccount: the request's namespace.", optional=True
    )

    def __str__(self) -> str:
        if self.kind is ReaderKind.SERVICE_ACCOUNT:
            return f"serviceaccount:{self.namespace}/{self.name}"
        return f"{self.kind.value.lower()}:{self.name}"


class RenewedRequest(ApiModel):
    """The request this one renews, in the same namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of that request.")


class DataAccessRequestSpec(ApiModel):
    """What is asked: read access to a product's ports, for whom, why and how long."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel("self == oldSelf", "a request cannot be changed: make a new one")
        )
    }

    product: RequestedProduct = Field(description="The data product asked for.")
    ports: list[str] = Field(
        default_factory=list,
        max_length=MAX_PORTS,
        description="Its output ports to read; empty: every port.",
        json_schema_extra={
            "x-kubernetes-list-type": "set",
            "items": {"type": "string", "maxLength": 63, "pattern": DNS_LABEL},
        },
    )
    subject: AccessSubject = Field(description="Who is to read.")
    purpose: str = Field(
        min_length=1,
        max_length=MAX_PURPOSE,
        description="Why the data is needed; shown to the owners and kept in the audit trail.",
    )
    duration: str | None = grant_duration(
        "How long the access is to last from its approval (30m, 12h, 30d; 1m to 366d); "
        "absent: the product's spec.access.requests.maxDuration. Above that cap: Denied."
    )
    requested_by: str = Field(
        min_length=1,
        max_length=MAX_USERNAME,
        description="The user making the request: must be the creating user's name "
        "(the API server refuses any other).",
    )
    renews: RenewedRequest | None = Field(
        default=None, description="The request this one renews (its grant ends as it did)."
    )

    @field_validator("duration")
    @classmethod
    def _duration_in_range(cls, value: str | None) -> str | None:
        return checked_grant_duration(value)


class DecisionSource(StrEnum):
    DECISION = "Decision"  # a DataAccessDecision of the owners
    AUTO_APPROVE = "AutoApprove"  # spec.access.requests.autoApprove of the product
    OPERATOR = "Operator"  # the operator refused the request (the note says why)


class RecordedDecision(ApiModel):
    """The answer a request got."""

    by: str = Field(description="Who decided: the decidedBy of the decision, or the operator.")
    at: str = Field(description="When (RFC 3339).")
    note: str | None = Field(default=None, description="Why, as the decider wrote it.")
    source: DecisionSource = Field(description="Decision, AutoApprove or Operator.")
    decision: str | None = Field(
        default=None, description="The DataAccessDecision (namespace/name), if any."
    )


class HistoryEntry(ApiModel):
    """One step of a request: append-only."""

    phase: AccessPhase = Field(description="The phase entered.")
    at: str = Field(description="When (RFC 3339).")
    by: str | None = Field(default=None, description="Who caused it.")
    note: str | None = Field(default=None, description="Why.")


class DataAccessRequestStatus(ApiModel):
    """Where the request stands, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation last reconciled."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready: the request is answered and, when approved, the grant is in place.",
    )
    phase: AccessPhase = Field(
        default=AccessPhase.PENDING,
        description="Pending, Approved, Denied, Active, ExpiringSoon, Expired, Revoked or "
        "Withdrawn.",
    )
    decision: RecordedDecision | None = Field(default=None, description="The answer.")
    granted_at: str | None = Field(default=None, description="When the access began.")
    expires_at: str | None = Field(default=None, description="When it ends (RFC 3339).")
    history: list[HistoryEntry] = Field(
        default_factory=list, max_length=MAX_HISTORY, description="Every phase, oldest first."
    )


ROOT_VALIDATIONS = (
    cel(
        "size(self.metadata.name) <= 63",
        "the DataAccessRequest name must be at most 63 characters",
    ),
)

PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    {
        "name": "Product",
        "type": "string",
        "jsonPath": ".spec.product.name",
    },
    {"name": "Subject", "type": "string", "jsonPath": ".spec.subject.name"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Expires", "type": "string", "jsonPath": ".status.expiresAt"},
    {
        "name": "Producer",
        "type": "string",
        "priority": 1,
        "jsonPath": ".spec.product.namespace",
    },
    {"name": "Purpose", "type": "string", "priority": 1, "jsonPath": ".spec.purpose"},
    AGE_COLUMN,
)


class DataAccessRequest(NamespacedObject):
    """A whole DataAccessRequest object as the operator reads it."""

    spec: DataAccessRequestSpec
    status: DataAccessRequestStatus = Field(default_factory=DataAccessRequestStatus)
