"""What kind of failure an exception is (layer ``runtime``).

Every exception of a pass, a watch consumer or a drift loop is classified once: the class names
the ``reason`` label of ``dataproduct_operator_errors_total`` and decides what happens next.

- Transient (the API server unreachable, a connection reset, a timeout, 5xx), Throttled (429,
  honouring Retry-After), Unauthorized (401: credentials are refreshed) and Conflict (409) are
  retried quietly, soon.
- Forbidden (403), Rejected (another 4xx from the API server) and Unexpected (any other
  exception: a bug, or content no code path expected) are about the object: retried with a
  longer backoff, and surfaced on the object as Ready False with the message, and one Warning
  Event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

import aiohttp

from dataproduct_operator.api.conditions import Reason
from dataproduct_operator.k8s.rest import ApiError


class ErrorClass(StrEnum):
    TRANSIENT = "Transient"
    THROTTLED = "Throttled"
    UNAUTHORIZED = "Unauthorized"
    CONFLICT = "Conflict"
    FORBIDDEN = "Forbidden"
    REJECTED = "Rejected"
    UNEXPECTED = "Unexpected"


QUIET = frozenset(
    {ErrorClass.TRANSIENT, ErrorClass.THROTTLED, ErrorClass.UNAUTHORIZED, ErrorClass.CONFLICT}
)
MAX_MESSAGE = 512


@dataclass(frozen=True)
class Classified:
    """An exception as the runtime handles it."""

    error_class: ErrorClass
    message: str
    retry_after: float = 0.0  # at least this long before trying again (429 Retry-After)

    @property
    def quiet(self) -> bool:
        """Retried without a word on the object: the cause is not the object's."""
        return self.error_class in QUIET

    @property
    def surfaced_reason(self) -> str:
        if self.error_class is ErrorClass.FORBIDDEN:
            return Reason.FORBIDDEN
        return Reason.RECONCILE_FAILED


def classify(error: BaseException) -> Classified:
    """See the module docstring."""
    if isinstance(error, ApiError):
        return _classify_api_error(error)
    if isinstance(
        error,
        aiohttp.ClientConnectionError
        | aiohttp.ClientPayloadError
        | asyncio.TimeoutError
        | ConnectionError,
    ):
        return Classified(ErrorClass.TRANSIENT, _text(error))
    if isinstance(error, OSError):  # connection refused, network unreachable, ...
        return Classified(ErrorClass.TRANSIENT, _text(error))
    return Classified(ErrorClass.UNEXPECTED, _text(error))


def _classify_api_error(error: ApiError) -> Classified:
    message = _text(error)
    if error.status == 429:
        return Classified(ErrorClass.THROTTLED, message, retry_after=_retry_after(error))
    if error.status >= 500:
        return Classified(ErrorClass.TRANSIENT, message)
    if error.status == 401:
        return Classified(ErrorClass.UNAUTHORIZED, message)
    if error.status == 409:
        return Classified(ErrorClass.CONFLICT, message)
    if error.status == 403:
        return Classified(ErrorClass.FORBIDDEN, message)
    return Classified(ErrorClass.REJECTED, message)


def _retry_after(error: ApiError) -> float:
    details = error.body.get("details") if isinstance(error.body, dict) else None
    seconds = (details or {}).get("retryAfterSeconds") if isinstance(details, dict) else None
    return float(seconds) if isinstance(seconds, int | float) and seconds > 0 else 1.0


def _text(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if not str(error):
        return text
    if isinstance(error, ApiError):
        return text[:MAX_MESSAGE]
    return f"{type(error).__name__}: {text}"[:MAX_MESSAGE]
