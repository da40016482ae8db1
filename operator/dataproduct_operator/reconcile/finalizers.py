"""Adding and removing one finalizer of an object (layer ``reconcile``, imperative).

A merge patch of ``metadata.finalizers`` with the resourceVersion the caller saw: if the object
changed meanwhile the API server answers with a conflict, and the caller tries again.
"""

from __future__ import annotations

from typing import Any

from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.resources import object_path


async def add_finalizer(client: KubeClient, body: dict[str, Any], finalizer: str) -> None:
    metadata = body["metadata"]
    finalizers = list(metadata.get("finalizers") or [])
    if finalizer not in finalizers:
        await _set(client, body, [*finalizers, finalizer])


async def remove_finalizer(client: KubeClient, body: dict[str, Any], finalizer: str) -> None:
    finalizers = list(body["metadata"].get("finalizers") or [])
    if finalizer in finalizers:
        await _set(client, body, [f for f in finalizers if f != finalizer])


async def _set(client: KubeClient, body: dict[str, Any], finalizers: list[str]) -> None:
    patch = {"finalizers": finalizers, "resourceVersion": body["metadata"]["resourceVersion"]}
    await client.merge_patch(object_path(body), {"metadata": patch})
