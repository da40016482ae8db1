"""Each module that names OpenLineage jobs and datasets imports on its own, whichever is
imported first (the exports and the run events share openlineage/naming.py, which must not
need the exports package to be imported before it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

MODULES = (
    "dataproduct_operator.openlineage.naming",
    "dataproduct_operator.openlineage.events",
    "dataproduct_operator.openlineage.client",
    "dataproduct_operator.catalog.exports.openlineage",
    "dataproduct_operator.catalog.exports",
)


@pytest.mark.parametrize("module", MODULES)
def test_the_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    imported = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert imported.returncode == 0, imported.stderr
