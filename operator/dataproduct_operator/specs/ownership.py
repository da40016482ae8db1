"""Owner references of the objects the operator makes (layer ``specs``, pure)."""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.kinds import GROUP, VERSION


def controller_reference(kind: str, name: str, uid: str) -> dict[str, Any]:
    """The reference that makes a ``datamesh.dev`` object the controlling owner of another:
    the garbage collector deletes the other with it."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
