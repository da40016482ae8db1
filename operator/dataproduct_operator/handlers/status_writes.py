"""What the handlers of every kind share to write a status (layer ``handlers``).

The time stamp of a condition, and the merge patch that turns the status as read into the status
as computed, so that a status is written only when something in it changed.
"""

from __future__ import annotations

import datetime
from typing import Any

from dataproduct_operator.k8s.client import KubeClient


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch turning ``old`` status into ``new`` (keys gone become null); {} if equal."""
    patch: dict[str, Any] = {key: value for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old if key not in new})
    return patch


async def write_status(
    client: KubeClient, path: str, body: dict[str, Any], status: dict[str, Any]
) -> bool:
    """Merge-patch what changed between ``body``'s status and ``status`` into the status
    subresource of the object at ``path``; whether anything did."""
    changes = status_patch(dict(body.get("status") or {}), status)
    if changes:
        await client.merge_patch(f"{path}/status", {"status": changes})
    return bool(changes)
