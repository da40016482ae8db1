"""Debian's Prometheus tools for the tests: where they are, and a clear failure (never a skip)
naming the make target that installs them when they are missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

INSTALL = "run `make prometheus` (Debian's prometheus package: promtool and prometheus)"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(f"promtool is missing: {INSTALL}")
    return found


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``promtool ARGS`` in ``cwd``; its output kept for the assertion's message."""
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def write_yaml(path: Path, document: Any) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=200))
    return path
