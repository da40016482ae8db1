"""Helpers shared by the test tiers: the examples, polling with a timeout (never a bare sleep)."""

from __future__ import annotations

import base64
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
# The tests' reference mesh: the examples with image pipelines and volume ports (its README).
MESH_FIXTURE = REPO / "tests" / "fixtures" / "mesh"


def example_documents(file_name: str, directory: Path = MESH_FIXTURE) -> list[dict[str, Any]]:
    """Every document of ``<directory>/<file_name>``: the reference mesh's, or the examples'."""
    return [d for d in yaml.safe_load_all((directory / file_name).read_text()) if d]


def example_product(
    file_name: str = "sales-orders.yaml", directory: Path = MESH_FIXTURE
) -> dict[str, Any]:
    """The DataProduct document of ``<directory>/<file_name>``: the reference mesh's, or the
    examples'."""
    (product,) = [d for d in example_documents(file_name, directory) if d["kind"] == "DataProduct"]
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


EXEC_API_VERSION = "client.authentication.k8s.io/v1"
_EXEC_PLUGIN = """#!{python}
# An exec credential plugin written by a test: the token in ./token, valid for the seconds in
# ./valid-seconds past the loader's five-minute margin; every run leaves a line in ./runs.
import datetime, json, pathlib
here = pathlib.Path(__file__).parent
with open(here / "runs", "a") as runs:
    runs.write("run\\n")
valid = 300 + float((here / "valid-seconds").read_text())
expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=valid)
print(json.dumps({{
    "apiVersion": "{api_version}",
    "kind": "ExecCredential",
    "status": {{
        "token": (here / "token").read_text().strip(),
        "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }},
}}))
"""


class ExecPlugin:
    """A kubeconfig ``exec`` user as EKS, GKE and AKS write them: a script in ``directory``
    printing an ExecCredential with the token set by :meth:`set_token`. ``valid_seconds`` is
    how long the loader will use it before running the script again (its expirationTimestamp
    is that much past the loader's five-minute margin)."""

    def __init__(self, directory: Path, token: str, *, valid_seconds: float = 3600) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.script = directory / "credential-plugin"
        self.script.write_text(
            _EXEC_PLUGIN.format(python=sys.executable, api_version=EXEC_API_VERSION)
        )
        self.script.chmod(0o700)
        self.set_token(token)
        self.set_valid_seconds(valid_seconds)

    def set_token(self, token: str) -> None:
        (self.directory / "token").write_text(token)

    def set_valid_seconds(self, seconds: float) -> None:
        (self.directory / "valid-seconds").write_text(str(seconds))

    @property
    def runs(self) -> int:
        path = self.directory / "runs"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def user(self) -> dict[str, Any]:
        """The kubeconfig ``user`` entry running this plugin."""
        command = {"apiVersion": EXEC_API_VERSION, "command": str(self.script)}
        return {"exec": {**command, "interactiveMode": "Never"}}


def kubeconfig_document(
    server: str, ca_pem: bytes, users: dict[str, dict[str, Any]], *, current: str
) -> dict[str, Any]:
    """A kubeconfig with one cluster, and a context named after each user."""
    cluster = {"server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": name, "user": user} for name, user in users.items()],
        "contexts": [
            {"name": name, "context": {"cluster": "local", "user": name}} for name in users
        ],
        "current-context": current,
    }


def write_kubeconfig_document(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path


def run_pip(*args: str) -> None:
    """The test venv's pip, offline as the tests use it; its output only when it fails."""
    import subprocess  # noqa: PLC0415 - only the packaging tests run pip

    subprocess.run(
        [sys.executable, "-m", "pip", *args], check=True, capture_output=True, timeout=180
    )


def build_wheel(workdir: Path) -> Path:
    """The project's wheel, built offline (the venv's setuptools) from a copy of the sources in
    WORKDIR, as the image's build stage does: no build/ directory left in the repository, none
    of an earlier build's files carried into it."""
    import shutil  # noqa: PLC0415 - only the packaging tests build a wheel

    source = workdir / "source"
    source.mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", source)
    shutil.copy(REPO / "README.md", source)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "operator", source / "operator", ignore=ignore)
    run_pip(
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--wheel-dir",
        str(workdir / "dist"),
        str(source),
    )
    (wheel,) = (workdir / "dist").glob("dataproduct_operator-*.whl")
    return wheel
