"""Kubernetes quantities and durations as numbers, and the ranges quantity fields accept
(layer ``api``, pure).

A quantity is read the way the API server reads it (``resource.ParseQuantity``): a decimal
number, an optional sign, then a binary suffix (Ki ... Ei), a decimal one (n, u, m, k ... E) or
an exponent (``e3``); values finer than a nano unit round up to one. Anything else, and any value
beyond what a Kubernetes quantity holds, is a ValueError with a message, never a ``decimal``
error: an object written under an older, looser CRD can hold any string.

A :class:`QuantityRange` is the one source of a quantity field's bounds: the CRD's CEL rule, the
models' check and the field's description are all made from it, with the same message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Context, Decimal
from functools import cached_property

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
_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:[eE](?P<exponent>[+-]?[0-9]+)|(?P<suffix>[KMGTPE]i|[numkMGTPE])?)"
)
# The largest value a Kubernetes quantity holds (an int64); the API server caps larger ones.
MAX_QUANTITY = Decimal(2**63 - 1)
# Decimal orders of magnitude beyond which a value is surely out of range (or below a nano
# unit): checked on the written exponent before any arithmetic, so "1e9999999" costs nothing.
_MAGNITUDE_LIMIT = 40
_EXPONENT_DIGITS = 6
_NANO = Decimal("1e-9")
# Wide enough for every value within the limits; rounding up keeps range checks conservative.
_ARITHMETIC = Context(prec=100, rounding=ROUND_CEILING)
_SHOWN = 40
_HINT = "a number with an optional suffix, e.g. 500m, 2, 5Gi or 1e3"
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_quantity(text: str | int) -> Decimal:
    """``"5Gi"`` -> 5368709120, as the API server reads it, rounded up to a nano unit.

    ValueError, with a message, for anything that is not a quantity, a negative one (every
    quantity here is an amount) or one beyond the largest a Kubernetes quantity holds.
    """
    written = str(text)
    match = _QUANTITY.fullmatch(written)
    if match is None:
        raise ValueError(f"{_shown(written)} is not a Kubernetes quantity ({_HINT})")
    number = Decimal(match["number"])  # digits and a point only: always exact, never raises
    if number == 0:
        return Decimal(0)
    if match["sign"] == "-":
        raise ValueError(f"{_shown(written)} is negative; a quantity here is an amount, 0 or more")
    too_large = f"{_shown(written)} is larger than any Kubernetes quantity ({MAX_QUANTITY})"
    exponent = match["exponent"] or "0"
    # Judged as text before int(), which refuses very long digit strings.
    if len(exponent.lstrip("+-").lstrip("0")) > _EXPONENT_DIGITS:
        if exponent.startswith("-"):
            return _NANO
        raise ValueError(too_large)
    magnitude = number.adjusted() + int(exponent)
    if magnitude > _MAGNITUDE_LIMIT:
        raise ValueError(too_large)
    if magnitude < -_MAGNITUDE_LIMIT:
        return _NANO  # the API server rounds a positive value finer than 1n up to 1n
    multiplier = _SUFFIXES[match["suffix"] or ""]
    value = _ARITHMETIC.multiply(number.scaleb(int(exponent), _ARITHMETIC), multiplier)
    if value > MAX_QUANTITY:
        raise ValueError(too_large)
    return value.quantize(_NANO, rounding=ROUND_CEILING, context=_ARITHMETIC)


def _shown(value: str | int) -> str:
    """The value for a message: quoted, and cut short, as a value can be a whole request."""
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}..."


@dataclass(frozen=True)
class QuantityRange:
    """The values one quantity field accepts, and how to say so.

    ``name``: what messages call the field; ``example``: values to show; ``maximum``: the
    largest value as written in messages and in CEL; ``positive``: 0 is refused too.
    """

    name: str
    example: str
    maximum: str
    positive: bool = False

    def __post_init__(self) -> None:
        _ = self.limit  # a maximum that is no quantity fails on import, not on a user's value

    @cached_property
    def limit(self) -> Decimal:
        """The maximum as a number."""
        return parse_quantity(self.maximum)

    @property
    def bounds(self) -> str:
        """``more than 0 and at most 1Pi``: the range in words."""
        low = "more than 0" if self.positive else "from 0"
        return f"{low} {'and at most' if self.positive else 'to'} {self.maximum}"

    @property
    def message(self) -> str:
        """What the API server and the models say to a value out of range."""
        return f"{self.name} must be a quantity such as {self.example}, {self.bounds}"

    def check(self, value: str | int) -> Decimal:
        """The value as a number; ValueError with :attr:`message` when it is out of range."""
        refusal = f"{self.message}, not {_shown(value)}"
        try:
            number = parse_quantity(value)
        except ValueError:
            raise ValueError(refusal) from None
        if number > self.limit or (self.positive and number == 0):
            raise ValueError(refusal)
        return number

    def cel_rule(self, value: str = "self") -> str:
        """CEL that holds when ``value`` (a string expression) is a quantity in range.

        CEL's ``&&`` absorbs the error of ``quantity()`` on a string that is no quantity, so a
        malformed value gets this rule's message rather than an evaluation error.
        """
        low = (
            f"quantity({value}).isGreaterThan(quantity('0'))"
            if self.positive
            else f"!quantity({value}).isLessThan(quantity('0'))"
        )
        high = f"quantity({value}).compareTo(quantity('{self.maximum}')) <= 0"
        return f"isQuantity({value}) && {low} && {high}"


@dataclass(frozen=True)
class ResourceRanges:
    """The ranges of a map of resources (``requests``, ``limits``): one per named resource and
    one for every other (extended resources, ephemeral-storage, hugepages)."""

    named: tuple[QuantityRange, ...]
    other: QuantityRange

    @property
    def summary(self) -> str:
        """``cpu from 0 to 1000, memory from 0 to 64Ti, any other resource from 0 to 1Pi``."""
        return ", ".join(f"{bounds.name} {bounds.bounds}" for bounds in (*self.named, self.other))

    def check(self, resources: Mapping[str, str | int]) -> None:
        """ValueError with the message of the first resource out of its range."""
        by_name = {bounds.name: bounds for bounds in self.named}
        for name, value in resources.items():
            if name in by_name:
                by_name[name].check(value)
                continue
            try:
                self.other.check(value)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None

    def cel_rules(self) -> list[tuple[str, str]]:
        """(rule, message) pairs over the map, one per range.

        Each walks the keys with ``all``: the API server bounds the cost of ``self[k]`` by the
        values' maxLength, but not that of ``self.cpu`` (rejecting the CRD as too costly).
        """
        value = "string(self[k])"  # int-or-string: a number too is read as a quantity
        rules = [
            (f"self.all(k, k != '{bounds.name}' || ({bounds.cel_rule(value)}))", bounds.message)
            for bounds in self.named
        ]
        names = ", ".join(f"'{bounds.name}'" for bounds in self.named)
        other = f"self.all(k, k in [{names}] || ({self.other.cel_rule(value)}))"
        return [*rules, (other, self.other.message)]


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
