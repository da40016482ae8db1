"""Which fields the operator sets have been changed by someone else (layer ``specs``, pure).

The hash stamp (:mod:`.hashing`) tells whether an object was applied from the desired content;
it cannot tell whether someone changed the object afterwards: ``kubectl edit`` keeps the stamp.
:func:`drifted_fields` compares the fields the desired object sets with the live object, so a
drift pass restores them:

- maps: every key the desired object sets must have an equal value; keys it does not set are
  someone else's (labels of other tools, defaults the API server filled in) and never drift;
- lists: the same length and every item equal in order, so a subject added by hand to a
  RoleBinding or a rule added to a NetworkPolicy is drift;
- scalars: equal, where quantities are equal by value (``1Gi`` and ``1024Mi``, or ``1`` and
  ``"1"``), since the API server writes them back in its canonical form;
- an empty map or list in the desired object matches an absent field: the API server drops
  some of them.

Only ``metadata.labels``, ``metadata.annotations`` and ``metadata.ownerReferences`` of the
metadata are compared; ``status`` never is.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from dataproduct_operator.api.quantity import parse_quantity

COMPARED_METADATA = ("labels", "annotations", "ownerReferences")
MAX_REPORTED = 5  # paths named per object; one is enough to apply it again


def drifted_fields(desired: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """Paths (e.g. ``subjects``, ``metadata.labels.team``) of the fields ``desired`` sets whose
    value differs in ``live``; empty when the live object has everything as desired."""
    found: list[str] = []
    for key, value in desired.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        if key == "metadata":
            live_metadata = live.get("metadata") or {}
            for part in COMPARED_METADATA:
                if part in value:
                    _compare(value[part], live_metadata.get(part), f"metadata.{part}", found)
            continue
        _compare(value, live.get(key), key, found)
        if len(found) >= MAX_REPORTED:
            break
    return found[:MAX_REPORTED]


def _compare(desired: Any, live: Any, path: str, found: list[str]) -> None:
    if isinstance(desired, dict | list) and not desired:
        if live not in (None, {}, []):
            found.append(path)
    elif isinstance(desired, dict):
        if not isinstance(live, dict):
            found.append(path)
            return
        for key, value in desired.items():
            _compare(value, live.get(key), f"{path}.{key}", found)
    elif isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            found.append(path)
            return
        for index, (mine, theirs) in enumerate(zip(desired, live, strict=True)):
            _compare(mine, theirs, f"{path}[{index}]", found)
    elif desired is None:
        if live is not None:
            found.append(path)
    elif not _same_scalar(desired, live):
        found.append(path)


def _same_scalar(desired: Any, live: Any) -> bool:
    if desired == live:
        return True
    if isinstance(desired, bool) or isinstance(live, bool):
        return False
    if isinstance(desired, int | str) and isinstance(live, int | str):
        first, second = _quantity(desired), _quantity(live)
        return first is not None and first == second
    return False


def _quantity(value: int | str) -> Decimal | None:
    try:
        return parse_quantity(value)
    except (ValueError, ArithmeticError):
        return None
