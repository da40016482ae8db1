"""The integration tier: its fixtures (the control plane, the chart, namespaces, identities)
are shared with the fault tier in ``tests/conftest.py``; helpers are in ``tests/clusters.py``.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory needs the control plane."""
    for item in items:
        if "tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)
