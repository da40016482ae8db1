"""The security tier: the operator's and the catalog's least privilege checked by impersonation
and SubjectAccessReviews, refusals of hostile or data-deleting input at apply time, tenant
isolation between products and domains, and the catalog under abuse. It runs against the same
kind of local control plane as the integration tier, with the fixtures of ``tests/conftest.py``.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory needs the control plane."""
    for item in items:
        if "tests/security/" in str(item.path):
            item.add_marker(pytest.mark.security)
