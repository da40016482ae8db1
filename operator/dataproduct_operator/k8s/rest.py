"""The API server's REST conventions: media types and errors (layer ``k8s``).

Shared by the client (:mod:`.client`) and its blocking facade (:mod:`.blocking`), and the one
place an error answer becomes an :class:`ApiError` carrying the server's own message.
"""

from __future__ import annotations

import json
from typing import Any

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class ApiError(Exception):
    """The API server answered with an error status; ``message`` is its own explanation."""

    def __init__(self, status: int, reason: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body


def decode_response(status: int, text: str) -> Any:
    """The decoded JSON answer, or :class:`ApiError` carrying the server's own message."""
    try:
        decoded: Any = json.loads(text) if text else None
    except ValueError:
        decoded = text  # e.g. "404 page not found" from the router
    if status >= 400:
        if isinstance(decoded, dict):
            reason, message = str(decoded.get("reason", "")), str(decoded.get("message", ""))
            raise ApiError(status, reason, message, decoded)
        raise ApiError(status, "", str(decoded), decoded)
    return decoded
