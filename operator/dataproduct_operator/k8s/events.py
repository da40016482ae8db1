"""Kubernetes Events about an object (layer ``k8s``).

Posted by the operator itself, not through kopf, so only the events we mean to post are
written: kopf's per-handler "succeeded" events would be one write per handler run. Events are
best effort: one that cannot be written (say, in a namespace being deleted) is logged and the
work it describes goes on.
"""

from __future__ import annotations

import datetime
import logging
import secrets
from typing import Any

from dataproduct_operator.constants import OPERATOR_NAME
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.k8s.rest import ApiError

logger = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"


def build_event(
    involved: dict[str, Any], event_type: str, reason: str, message: str, now: str
) -> dict[str, Any]:
    metadata = involved["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{metadata['name']}.{secrets.token_hex(8)}",
            "namespace": metadata.get("namespace") or "default",
        },
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": metadata["name"],
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
            "resourceVersion": metadata.get("resourceVersion"),
        },
        "type": event_type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": OPERATOR_NAME},
        "reportingComponent": OPERATOR_NAME,
        "reportingInstance": OPERATOR_NAME,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


async def post_event(
    client: KubeClient, involved: dict[str, Any], event_type: str, reason: str, message: str
) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = build_event(involved, event_type, reason, message, now)
    path = KNOWN_RESOURCES[("v1", "Event")].path(event["metadata"]["namespace"])
    try:
        await client.request("POST", path, event)
    except ApiError as error:
        metadata = involved["metadata"]
        logger.warning(
            "Could not post the %s Event on %s/%s: %s",
            reason,
            metadata.get("namespace"),
            metadata["name"],
            error,
        )
