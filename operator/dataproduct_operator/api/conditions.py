"""Status conditions shared by every kind (layer ``api``, pure).

The shape follows ``metav1.Condition``: type, status, reason (CamelCase), message,
lastTransitionTime and observedGeneration, so kstatus-aware tools (Flux, Argo CD) read ``Ready``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from dataproduct_operator.api.base import ApiModel


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One aspect of the object's state."""

    type: str = Field(description="What this condition is about, e.g. Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="One CamelCase word for the cause.")
    message: str = Field(default="", description="What happened, in words.")
    last_transition_time: str | None = Field(
        default=None, description="When the status last changed (RFC 3339)."
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this condition was computed for."
    )
