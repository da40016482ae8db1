"""Owner references of the objects the operator makes, and which existing objects a product may
take as its own (layer ``specs``, pure).

A child's name is ``<product>-<part>``, so two products can want one name: product ``a`` with
output port ``b-c`` and product ``a-b`` with port ``c`` both want the claim ``a-b-c``. An
existing object is adopted only when it is labelled for this very product and the same part
(output port or pipeline), and the operator made it (or it is a claim this product retained);
being "managed by the operator" alone is not enough. Any other object of that name is left
alone and reported: a :class:`Refusal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataproduct_operator.api.kinds import GROUP, VERSION
from dataproduct_operator.constants import (
    LABEL_MANAGED_BY,
    LABEL_PIPELINE,
    LABEL_PORT,
    LABEL_PRODUCT,
    LABEL_RETAINED,
    OPERATOR_NAME,
)

# The labels that say which part of a product a child serves, and how a message names it.
PART_LABELS = {LABEL_PORT: "output port", LABEL_PIPELINE: "pipeline"}


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


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def part_of(obj: dict[str, Any]) -> str | None:
    """``output port b-c``, ``pipeline ingest``, or None for a child of the whole product."""
    labels = _labels(obj)
    for label, what in PART_LABELS.items():
        if labels.get(label):
            return f"{what} {labels[label]}"
    return None


@dataclass(frozen=True)
class Refusal:
    """An existing object has the name of a desired child and is not this product's to take.

    ``holder``: the product the object is labelled for (a name conflict between products), or
    None when it belongs to no product (someone else's object).
    """

    kind: str
    name: str
    holder: str | None = None
    holder_part: str | None = None
    part: str | None = None
    retained: bool = False

    @property
    def name_conflict(self) -> bool:
        return self.holder is not None

    @property
    def message(self) -> str:
        """What is wrong and what to change, naming the object and the product holding it."""
        if self.holder is None:
            return f"exists and is not managed by {OPERATOR_NAME}; delete or rename it"
        held = "holds the retained data of" if self.retained else "belongs to"
        theirs = f" ({self.holder_part})" if self.holder_part else ""
        what = f"{self.part} or this DataProduct" if self.part else "this DataProduct"
        return (
            f"{self.kind} {self.name} {held} DataProduct {self.holder}{theirs}: rename {what}; "
            f"the {self.kind} of {self.holder} is left as it is"
        )


def refuse_adoption(desired: dict[str, Any], found: dict[str, Any] | None) -> Refusal | None:
    """None when ``found`` (the object of ``desired``'s name, None if there is none) may be
    applied over; else why not. See the module docstring."""
    if found is None:
        return None
    mine, theirs = _labels(desired), _labels(found)
    holder = theirs.get(LABEL_PRODUCT)
    same = holder == mine.get(LABEL_PRODUCT) and all(
        theirs.get(label) == mine.get(label) for label in PART_LABELS
    )
    kind, name = desired["kind"], desired["metadata"]["name"]
    retained = found.get("kind") == "PersistentVolumeClaim" and theirs.get(LABEL_RETAINED) == "true"
    if holder is not None and not same:
        return Refusal(kind, name, holder, part_of(found), part_of(desired), retained)
    if same and (theirs.get(LABEL_MANAGED_BY) == OPERATOR_NAME or retained):
        return None
    return Refusal(kind, name, part=part_of(desired))
