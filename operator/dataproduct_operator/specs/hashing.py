"""Content hashes of desired objects (layer ``specs``, pure).

Every object the operator applies is stamped with the hash of its own content in the
``datamesh.dev/desired-hash`` annotation. An object whose stamp equals the desired one's was
applied from that very content, so it is not applied again: the cheap first test of every
reconcile. Whether someone changed it since is a second test (:mod:`.drift`), made on drift
passes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dataproduct_operator.constants import ANNOTATION_DESIRED_HASH


def content_hash(obj: dict[str, Any]) -> str:
    """A stable hash of an object's content."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def stamped_hash(obj: dict[str, Any] | None) -> str | None:
    """The content hash an object was stamped with (see :func:`stamp_hash`), if any."""
    if obj is None:
        return None
    annotations: dict[str, str] = obj["metadata"].get("annotations") or {}
    return annotations.get(ANNOTATION_DESIRED_HASH)


def stamp_hash(obj: dict[str, Any]) -> dict[str, Any]:
    """The object with the hash of its content in an annotation."""
    metadata = obj["metadata"]
    annotations = {**metadata.get("annotations", {}), ANNOTATION_DESIRED_HASH: content_hash(obj)}
    return {**obj, "metadata": {**metadata, "annotations": annotations}}
