"""The vocabulary of access requests that more than one kind speaks (layer ``api``, pure).

The phases of a ``DataAccessRequest`` (the product's status lists requests by phase too) and
the durations of grants: minutes, hours or days, one minute to 366 days, read alike by the
models, the CRD's CEL rules and the operator.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import Field

from dataproduct_operator.api.base import cel, validations

# A grant's duration: minutes, hours or days; at least one minute, at most a year.
GRANT_DURATION = r"^[1-9][0-9]{0,5}(m|h|d)$"
MAX_GRANT_SECONDS = 366 * 86400
_GRANT_UNITS = {"m": 60, "h": 3600, "d": 86400}
DEFAULT_MAX_DURATION = "90d"


def grant_seconds(text: str) -> int:
    """``"30d"`` -> 2592000; ValueError naming the forms allowed."""
    match = re.fullmatch(GRANT_DURATION, text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: write minutes, hours or days, such as 30m, 12h or 30d"
        )
    return int(text[:-1]) * _GRANT_UNITS[text[-1]]


def _cel_seconds(value: str) -> str:
    """CEL: the seconds of a duration string that matched :data:`GRANT_DURATION`."""
    unit = f"{value}.substring(size({value}) - 1)"
    number = f"int({value}.substring(0, size({value}) - 1))"
    return f"{number} * ({unit} == 'd' ? 86400 : {unit} == 'h' ? 3600 : 60)"


def grant_duration(description: str, *, default: str | None = None) -> Any:
    """A duration field of a grant: minutes, hours or days, one minute to a year."""
    rule = cel(
        f"self.matches('{GRANT_DURATION}') && {_cel_seconds('self')} <= {MAX_GRANT_SECONDS}",
        "the duration must be minutes, hours or days (30m, 12h, 30d), from 1m to 366d",
    )
    return Field(
        default=default,
        max_length=8,
        description=description,
        json_schema_extra=validations(rule),
    )


def checked_grant_duration(value: str | None) -> str | None:
    """The value, or ValueError when it is longer than a grant may last."""
    if value is not None and grant_seconds(value) > MAX_GRANT_SECONDS:
        raise ValueError("the duration must be at most 366d")
    return value


class AccessPhase(StrEnum):
    """Where a request stands; Denied, Expired, Revoked and Withdrawn are final."""

    PENDING = "Pending"  # waiting for the owners' decision
    APPROVED = "Approved"  # approved: the grant is being made
    DENIED = "Denied"  # denied by the owners, or refused by the operator (the reason says why)
    ACTIVE = "Active"  # the subject reads the product
    EXPIRING_SOON = "ExpiringSoon"  # active, and ends within the operator's notice period
    EXPIRED = "Expired"  # ended at expiresAt
    REVOKED = "Revoked"  # ended by deleting its Approve decision
    WITHDRAWN = "Withdrawn"  # ended by deleting the request

    @property
    def final(self) -> bool:
        return self in FINAL_PHASES

    @property
    def granted(self) -> bool:
        """Whether the subject is to hold the grant in this phase."""
        return self in GRANTED_PHASES


FINAL_PHASES = frozenset(
    {AccessPhase.DENIED, AccessPhase.EXPIRED, AccessPhase.REVOKED, AccessPhase.WITHDRAWN}
)
GRANTED_PHASES = frozenset({AccessPhase.APPROVED, AccessPhase.ACTIVE, AccessPhase.EXPIRING_SOON})
