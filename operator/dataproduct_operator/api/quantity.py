"""Kubernetes quantities and durations as numbers (layer ``api``, pure)."""

from __future__ import annotations

import re
from decimal import Decimal

_SUFFIXES = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)([a-zA-Z]*)$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_quantity(text: str | int) -> Decimal:
    """``"5Gi"`` -> 5368709120; raises ValueError on anything else."""
    match = _QUANTITY.match(str(text).strip())
    if match is None or match.group(2) not in _SUFFIXES:
        raise ValueError(f"Not a quantity: {text!r}")
    return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]


def larger_quantity(first: str, second: str | None) -> str:
    """The larger of two quantities, as written (a claim may grow, never shrink)."""
    if second is None:
        return first
    return second if parse_quantity(second) > parse_quantity(first) else first


def duration_seconds(text: str) -> int:
    """``"24h"`` -> 86400."""
    match = re.fullmatch(r"([1-9][0-9]*)([smhdw])", text)
    if match is None:
        raise ValueError(f"Not a duration: {text!r}")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]
