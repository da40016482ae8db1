"""Helpers shared by the test tiers: the examples, polling with a timeout (never a bare sleep)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def example_documents(file_name: str) -> list[dict[str, Any]]:
    """Every document of ``examples/<file_name>``."""
    return [d for d in yaml.safe_load_all((EXAMPLES / file_name).read_text()) if d]


def example_product(file_name: str = "sales-orders.yaml") -> dict[str, Any]:
    """The DataProduct document of ``examples/<file_name>``."""
    (product,) = [d for d in example_documents(file_name) if d["kind"] == "DataProduct"]
    return product


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float = 60.0,
    interval: float = 0.2,
    description: str = "condition",
) -> T:
    """Call ``probe`` until it returns something truthy; return it, or fail at the timeout.

    Exceptions from the probe count as "not yet" and the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = probe()
            if result:
                return result
        except Exception as error:
            last_error = error
        if time.monotonic() > deadline:
            detail = f"; last error: {last_error!r}" if last_error else ""
            raise AssertionError(f"Timed out after {timeout}s waiting for {description}{detail}")
        time.sleep(interval)


GOLDEN = REPO / "tests" / "unit" / "golden"


def assert_golden(actual: str, name: str) -> None:
    """Compare ``actual`` with ``tests/unit/golden/<name>``.

    ``UPDATE_GOLDEN=1`` rewrites the file instead; review the diff before committing it.
    """
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    assert path.exists(), f"{path} is missing; run with UPDATE_GOLDEN=1 to write it"
    expected = path.read_text()
    assert actual == expected, f"{name} differs from its golden file (UPDATE_GOLDEN=1 rewrites it)"
