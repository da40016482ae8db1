"""The test tiers run in one pytest session, where two test modules may not share a name."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
TIERS = ("unit", "integration", "security", "faults")


def test_no_two_test_modules_of_the_tiers_share_a_basename() -> None:
    modules = [path for tier in TIERS for path in (TESTS / tier).glob("test_*.py")]
    assert len(modules) > 100  # the tiers were found
    shared = [name for name, count in Counter(p.name for p in modules).items() if count > 1]
    assert shared == [], f"rename one of each: {shared}"
