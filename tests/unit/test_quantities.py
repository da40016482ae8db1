"""Quantities, parsed as the API server reads them."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest

from dataproduct_operator.api.quantity import MAX_QUANTITY, larger_quantity, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5Gi", 5 * 2**30),
        ("1.5Gi", 3 * 2**29),
        ("+1Ki", 1024),
        ("500m", Decimal("0.5")),
        ("100n", Decimal("1e-7")),
        ("1e3", 1000),
        ("2E", 2 * 10**18),
        (2, 2),
        ("0", 0),
        (".5", Decimal("0.5")),
        ("5.", 5),
        ("1Pi", 2**50),
        ("9223372036854775807", 2**63 - 1),
        ("1.5n", Decimal("2e-9")),  # finer than a nano unit: rounded up, as the API server does
        ("1e-9999999", Decimal("1e-9")),
    ],
)
def test_quantities_are_read_as_the_api_server_reads_them(text: str | int, value: Any) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1e9999999", "larger than any Kubernetes quantity"),
        ("1e999", "larger than any Kubernetes quantity"),
        ("1e" + "9" * 5000, "larger than any Kubernetes quantity"),
        ("9" * 5000, "larger than any Kubernetes quantity"),
        ("9223372036854775808", "larger than any Kubernetes quantity"),
        ("8Ei", "larger than any Kubernetes quantity"),
        ("-1Gi", "is negative"),
        ("-0.5", "is negative"),
        ("abc", "is not a Kubernetes quantity"),
        ("", "is not a Kubernetes quantity"),
        ("Gi", "is not a Kubernetes quantity"),
        ("1.2.3", "is not a Kubernetes quantity"),
        ("5ki", "is not a Kubernetes quantity"),
        ("5GB", "is not a Kubernetes quantity"),
        (" 5Gi", "is not a Kubernetes quantity"),
        ("1e", "is not a Kubernetes quantity"),
        ("1e1.5", "is not a Kubernetes quantity"),
        ("NaN", "is not a Kubernetes quantity"),
        ("Infinity", "is not a Kubernetes quantity"),
    ],
)
def test_anything_else_is_a_value_error_that_says_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        parse_quantity(text)
    assert len(str(refused.value)) < 200  # a long value is cut short in the message


def test_no_string_makes_the_parser_raise_anything_but_a_value_error() -> None:
    signs = ("", "+", "-")
    numbers = ("0", "1", "007", "1.", ".5", "1.5", "9" * 30, "0." + "0" * 30 + "1", ".", "")
    tails = (
        *("", "e", "E", "e0", "e-3", "e+3", "e19", "e-19", "e40", "e-41", "e999", "e-999"),
        *("e9999999", "e-9999999", "e" + "9" * 30, "e-" + "9" * 30, "e1.5"),
        *("n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"),
        *("ki", "mi", "i", "K", "B", "Gi ", "Gib", "eGi"),
    )
    for sign, number, tail in itertools.product(signs, numbers, tails):
        text = sign + number + tail
        try:
            value = parse_quantity(text)
        except ValueError:
            continue
        assert Decimal(0) <= value <= MAX_QUANTITY, text


def test_a_claim_keeps_the_larger_of_two_sizes_as_written() -> None:
    assert larger_quantity("5Gi", "6000Mi") == "6000Mi"
    assert larger_quantity("5Gi", "5G") == "5Gi"
    assert larger_quantity("5Gi", None) == "5Gi"
