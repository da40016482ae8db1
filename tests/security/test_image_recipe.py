"""The image's build stage, run for real without Docker: operator/Dockerfile's RUN and COPY
instructions (all but apt-get) with Debian's python3.11 of this machine, the image's Python,
against PyPI, in a temporary directory standing for /. Then what the final stage copies, the
venv, is checked: hashes checked on every download, no pip, setuptools or wheel in it, no local
control plane, and `dpo` runs from it as the image runs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.dockerfile import REPO, read_stages

DEBIAN_PYTHON = Path("/usr/bin/python3.11")


def _context_ignores() -> list[str]:
    """The .dockerignore rules that drop paths under operator/ from the build context."""
    rules = (REPO / ".dockerignore").read_text().splitlines()
    return [r for r in rules if r.startswith("operator/")]


def _copy_from_context(sources: list[str], destination: str, workdir: Path) -> None:
    """COPY as Docker does it: a directory's contents into DESTINATION, a file into it when it
    ends with a slash; what .dockerignore drops is left out."""
    ignored = _context_ignores()
    for source in sources:
        path = REPO / source
        if path.is_dir():
            target = workdir / destination
            shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            for rule in ignored:
                relative = Path(rule.rstrip("/"))
                if "*" not in rule and relative.parts[0] == source.rstrip("/"):
                    shutil.rmtree(target.joinpath(*relative.parts[1:]))
        else:
            target = (
                workdir / destination / path.name
                if destination.endswith("/")
                else workdir / destination
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)


def _in_root(command: str, root: Path) -> str:
    """COMMAND with the image's absolute paths under ROOT, and Debian's python3.11 by path."""
    command = re.sub(r"(?<![\w./-])/(opt/|wheels\b)", lambda m: f"{root}/{m[1]}", command)
    return command.replace("python3.11 -m venv", f"{DEBIAN_PYTHON} -m venv")


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build stage run into a directory standing for the image's /."""
    probe = subprocess.run(
        [str(DEBIAN_PYTHON), "-c", "import ensurepip, venv"], check=False, capture_output=True
    )
    if probe.returncode:
        pytest.fail(
            "The image's recipe needs Debian's python3.11-venv: make image-python installs it"
        )
    root = tmp_path_factory.mktemp("image-root")
    build = read_stages()[1]
    assert build[0].arguments.endswith(" AS build")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))
    }
    workdir = root
    for instruction in build[1:]:
        if instruction.keyword == "ENV":
            for assignment in instruction.arguments.split():
                name, _, value = assignment.partition("=")
                env[name] = value
        elif instruction.keyword == "WORKDIR":
            workdir = root / instruction.arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            *sources, destination = instruction.arguments.split()
            _copy_from_context(sources, destination, workdir)
        elif instruction.keyword == "RUN" and "apt-get" not in instruction.arguments:
            subprocess.run(
                ["/bin/bash", "-euo", "pipefail", "-c", _in_root(instruction.arguments, root)],
                cwd=workdir,
                env=env,
                check=True,
                timeout=900,
            )
    return root


def test_the_build_stage_installs_only_hashed_pins_and_leaves_no_pip_in_the_venv(
    image_root: Path,
) -> None:
    venv = image_root / "opt" / "dpo"
    (site,) = (venv / "lib").glob("python3.11/site-packages")
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"kopf", "aiohttp", "pydantic", "dataproduct_operator"} <= installed
    assert not {"pip", "setuptools", "wheel"} & installed
    assert not (venv / "bin" / "pip").exists()
    assert not (site / "dataproduct_operator" / "cluster").exists()
    # The final stage's Debian python3.11 is the interpreter the copied venv points at.
    assert (venv / "bin" / "python3.11").readlink() == DEBIAN_PYTHON
    assert f"home = {DEBIAN_PYTHON.parent}" in (venv / "pyvenv.cfg").read_text()


def test_dpo_runs_from_the_image_venv_and_refuses_the_local_cluster(image_root: Path) -> None:
    bin_dir = image_root / "opt" / "dpo" / "bin"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(image_root)}

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / command[0]), *command[1:]],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )

    result = run("dpo", "run", "--help")
    assert result.returncode == 0, result.stderr
    modules = "dataproduct_operator.handlers.operator, dataproduct_operator.catalog.serve"
    imports = run("python", "-c", f"import {modules}")
    assert imports.returncode == 0, imports.stderr
    cluster = run("dpo", "cluster", "up")
    assert cluster.returncode == 1
    assert "`dpo cluster up` is not available in this installation" in cluster.stderr
