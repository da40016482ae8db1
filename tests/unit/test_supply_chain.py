"""Supply chain: the locks with hashes, the SBOM. No network."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.locks import BUILD_LOCK, DEV_LOCK, RUNTIME_LOCK, lock_problems, read_lock

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "dataproduct-operator"
DOCKERFILE = REPO / "operator" / "Dockerfile"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"]


# --- the locks ---------------------------------------------------------------------------------


def test_the_locks_cover_every_dependency_pyproject_declares_with_hashes() -> None:
    assert lock_problems() == []
    runtime = read_lock(REPO / RUNTIME_LOCK)
    assert {"kopf", "aiohttp", "pydantic", "cryptography"} <= runtime.keys()
    assert all(len(pin.hashes) >= 1 for pin in runtime.values())


def _repository_copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "requirements").mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    for lock in (RUNTIME_LOCK, DEV_LOCK, BUILD_LOCK):
        shutil.copy(REPO / lock, root / lock)
    return root


def test_a_dependency_added_to_pyproject_but_not_locked_is_reported(tmp_path: Path) -> None:
    root = _repository_copy(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    text = text.replace('    "click>=8.1,<9",\n', '    "click>=8.1,<9",\n    "humanize>=4",\n', 1)
    text = text.replace('"pytest>=8,<10"', '"pytest>=8,<8.0.1"', 1)
    pyproject.write_text(text)
    problems = lock_problems(root)
    assert f"humanize>=4 is not in {RUNTIME_LOCK}" in problems
    assert f"humanize>=4 is not in {DEV_LOCK}" in problems
    (narrowed,) = [p for p in problems if p.startswith("pytest")]
    assert re.fullmatch(rf"pytest<8\.0\.1,>=8 does not allow {DEV_LOCK}'s pytest==\S+", narrowed)


def test_a_pin_without_hashes_or_a_drifted_version_is_reported(tmp_path: Path) -> None:
    root = _repository_copy(tmp_path)
    runtime = root / RUNTIME_LOCK
    runtime.write_text(
        re.sub(
            r"(?m)^(pyyaml==\S+) \\\n(    --hash=\S+ \\\n)*    --hash=\S+\n",
            r"\1\n",
            runtime.read_text(),
        )
    )
    version = read_lock(REPO / RUNTIME_LOCK)["pyyaml"].version
    assert f"{RUNTIME_LOCK}: pyyaml=={version} has no sha256 hash" in lock_problems(root)

    root = _repository_copy(tmp_path / "drift")
    runtime = root / RUNTIME_LOCK
    runtime.write_text(re.sub(r"(?m)^click==\S+", "click==8.1.0", runtime.read_text()))
    dev_click = read_lock(REPO / DEV_LOCK)["click"].version
    assert f"{DEV_LOCK} pins click=={dev_click}, {RUNTIME_LOCK} 8.1.0" in lock_problems(root)


def _make_rule(target: str) -> str:
    makefile = (REPO / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(rf"(?ms)^{re.escape(target)}:[^\n]*\n((?:\t[^\n]*\n)+)", makefile)
    assert match, target
    return match.group(1)


def test_make_venv_installs_only_hashed_pins_then_the_project_without_dependencies() -> None:
    locked = _make_rule("$(VENV)/.locked")
    assert re.search(
        r"pip install .*--require-hashes --only-binary :all: -r requirements/dev.lock", locked
    )
    installed = _make_rule("$(VENV)/.installed")
    assert re.search(r"pip install .*--no-deps --no-build-isolation -e \.", installed)
    assert "pip check" in installed
    makefile = (REPO / "Makefile").read_text().replace("\\\n", " ")
    installs = re.findall(r"pip install [^\n]*", makefile)
    assert len(installs) == 2
    assert all("--require-hashes" in line or "--no-deps" in line for line in installs), installs
    lock = _make_rule("lock")
    for output in (RUNTIME_LOCK, DEV_LOCK, BUILD_LOCK):
        assert f"--output-file {output}" in lock
    assert "-m tests.locks" in _make_rule("verify")


# --- the SBOM ----------------------------------------------------------------------------------


def test_make_sbom_lists_every_runtime_pin_with_its_version_and_hashes(tmp_path: Path) -> None:
    output = tmp_path / "sbom.cdx.json"
    subprocess.run(
        [  # noqa: S607 - make from PATH, as a user runs it
            "make",
            "--no-print-directory",
            "-C",
            str(REPO),
            "sbom",
            f"SBOM={output}",
            f"VENV={Path(sys.executable).parents[1]}",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    sbom = json.loads(output.read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["specVersion"].startswith("1.")
    assert sbom["metadata"]["component"]["name"] == PROJECT
    listed = {c["name"]: c for c in sbom["components"]}
    locked = read_lock(REPO / RUNTIME_LOCK)
    assert set(listed) == set(locked)
    for name, pin in locked.items():
        component = listed[name]
        assert component["version"] == pin.version
        assert component["purl"] == f"pkg:pypi/{name}@{pin.version}"
        hashes = {
            h["content"]
            for reference in component.get("externalReferences", [])
            for h in reference.get("hashes", [])
            if h["alg"] == "SHA-256"
        }
        assert hashes == set(pin.hashes), name
