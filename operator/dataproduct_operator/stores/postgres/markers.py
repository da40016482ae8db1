"""Ownership markers: the comments on the schemas and roles the operator made (layer ``stores``,
pure).

A marker is compact JSON with sorted keys in ``COMMENT ON SCHEMA/ROLE``, with
``"managedBy": "dataproduct-operator"`` among them. The operator touches nothing without one, and an
object marked for another product is a conflict, never reused. A schema's marker names its product
(namespace, name, uid, deletionPolicy), so a drift pass can find the schemas of deleted products
and a product created again with the same namespace and name adopts its schema.
"""

from __future__ import annotations

import json
from typing import Any

from dataproduct_operator.constants import OPERATOR_NAME

MANAGED_BY = "managedBy"

# Role kinds in role markers.
OWNER = "owner"
WRITER = "writer"
READ = "read"
SERVICE_ACCOUNT = "serviceAccount"
GROUP = "group"
USER = "user"


def encode(**fields: str) -> str:
    return json.dumps({MANAGED_BY: OPERATOR_NAME, **fields}, sort_keys=True, separators=(",", ":"))


def decode(comment: str | None) -> dict[str, Any] | None:
    """The marker's fields, or None when the comment is not the operator's marker."""
    if not comment:
        return None
    try:
        fields = json.loads(comment)
    except ValueError:
        return None
    if not isinstance(fields, dict) or fields.get(MANAGED_BY) != OPERATOR_NAME:
        return None
    return fields


def schema_marker(namespace: str, product: str, uid: str, deletion_policy: str) -> str:
    return encode(namespace=namespace, product=product, uid=uid, deletionPolicy=deletion_policy)


def product_role_marker(kind: str, schema: str, port: str | None = None) -> str:
    return encode(role=kind, schema=schema, **({"port": port} if port else {}))


def schema_needle(schema: str) -> str:
    """A substring every marker of a product role of ``schema`` holds (for a catalog query)."""
    return json.dumps({"schema": schema}, separators=(",", ":"))[1:-1]


def reader_marker(kind: str, name: str, namespace: str | None = None) -> str:
    return encode(role=kind, name=name, **({"namespace": namespace} if namespace else {}))
