"""Supply chain: the locks with hashes, the image's Dockerfile, the wheel without the local
control plane, the chart's default image, the SBOM. No network: the wheel is built with the
venv's setuptools and installed beside the venv's packages."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.utils import canonicalize_name

from dataproduct_operator import __version__
from dataproduct_operator.manifests.chart_values import ChartValues
from tests.dockerfile import DOCKERFILE, read_stages, runs
from tests.helpers import build_wheel, run_pip
from tests.locks import (
    BUILD_LOCK,
    DATACONTRACT_IN,
    DATACONTRACT_LOCK,
    DEV_LOCK,
    RUNNER_LOCK,
    RUNTIME_LOCK,
    lock_problems,
    read_lock,
)

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "dataproduct-operator"
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
    for lock in (
        RUNTIME_LOCK,
        RUNNER_LOCK,
        DEV_LOCK,
        BUILD_LOCK,
        DATACONTRACT_IN,
        DATACONTRACT_LOCK,
    ):
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


def test_datacontract_cli_is_locked_apart_with_hashes_and_a_narrowed_range_is_reported(
    tmp_path: Path,
) -> None:
    locked = read_lock(REPO / DATACONTRACT_LOCK)
    assert {"datacontract-cli", "psycopg"} <= locked.keys()  # psycopg: the postgres extra
    assert all(pin.hashes for pin in locked.values())
    root = _repository_copy(tmp_path)
    source = root / DATACONTRACT_IN
    source.write_text(source.read_text().replace(">=1.2.8,<2", ">=1.0,<1.2") + "sqlparse\n")
    problems = lock_problems(root)
    version = locked["datacontract-cli"].version
    assert (
        f"datacontract-cli[postgres]<1.2,>=1.0 does not allow {DATACONTRACT_LOCK}'s "
        f"datacontract-cli=={version}" in problems
    )
    assert f"sqlparse is not in {DATACONTRACT_LOCK}" in problems


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
    datacontract = _make_rule("$(DATACONTRACT_VENV)/.locked")
    assert re.search(
        rf"pip install .*--require-hashes --only-binary :all: -r {DATACONTRACT_LOCK}", datacontract
    )
    makefile = (REPO / "Makefile").read_text().replace("\\\n", " ")
    installs = re.findall(r"pip install [^\n]*", makefile)
    assert len(installs) == 3
    assert all("--require-hashes" in line or "--no-deps" in line for line in installs), installs
    lock = _make_rule("lock")
    for output in (RUNTIME_LOCK, DEV_LOCK, BUILD_LOCK, DATACONTRACT_LOCK):
        assert f"--output-file {output}" in lock
    assert f"--output-file {DATACONTRACT_LOCK} {DATACONTRACT_IN}" in lock
    for target in ("test", "unit", "integration"):  # the tiers whose tests run datacontract-cli
        (prerequisites,) = re.findall(rf"(?m)^{target}:([^#\n]*)", makefile)
        assert "datacontract" in prerequisites.split(), target
    assert "-m tests.locks" in _make_rule("verify")


# --- the Dockerfile ----------------------------------------------------------------------------


def test_every_base_image_is_pinned_to_an_exact_release() -> None:
    stages = read_stages()[1:]
    assert len(stages) >= 2, "a build stage and a final stage"
    bases = [stage[0].arguments.split()[0] for stage in stages]
    for base in bases:
        tag = base.partition("@")[0].partition(":")[2]
        assert tag, f"{base} has no tag"
        assert "latest" not in tag
        # a dated Debian build (bookworm-20250520-slim) or a full version (12.11, 3.11.13)
        assert re.fullmatch(r"[a-z]+-\d{8}(-slim)?|\d+\.\d+(\.\d+)?(-[a-z0-9-]+)?", tag), base
    # The final stage runs the venv of the build stage: one base, one /usr/bin/python3.11.
    assert len(set(bases)) == 1, bases
    # A syntax directive pulls BuildKit's frontend image by a moving tag (docker/dockerfile:1).
    directive = re.match(r"#\s*syntax\s*=\s*(\S+)", DOCKERFILE.read_text())
    assert directive is None or "@sha256:" in directive[1], directive


def _apt_packages(command: str) -> dict[str, str]:
    """The packages of an `apt-get install` command, by name, with their pinned versions."""
    words = command.split("apt-get install", 1)[1].split("&&", 1)[0].split()
    packages = [w.strip('"') for w in words if not w.startswith("-")]
    return dict(package.partition("=")[::2] for package in packages)


def test_debian_packages_are_installed_at_exact_versions() -> None:
    stages = read_stages()
    global_args = dict(i.arguments.split("=", 1) for i in stages[0] if i.keyword == "ARG")
    assert re.fullmatch(r"3\.11\.\d+-\S+", global_args["PYTHON_DEB"])
    installs = [r for s in stages[1:] for r in runs(s) if "apt-get install" in r]
    assert len(installs) == 2
    for command in installs:
        assert "--no-install-recommends" in command
        packages = _apt_packages(command)
        assert packages and all(packages.values()), command
        assert set(packages.values()) == {"${PYTHON_DEB}"}, command


def test_python_packages_come_from_the_locks_with_hashes_and_wheels_only() -> None:
    commands = [r for s in read_stages()[1:] for r in runs(s)]
    installs = [c for r in commands for c in r.split("&&") if re.search(r"\bpip\b.* install ", c)]
    locks = set()
    for install in installs:
        if " -r " in install:
            assert "--require-hashes" in install and "--only-binary :all:" in install, install
            locks.add(install.split(" -r ", 1)[1].split()[0])
        else:  # the project's own wheel, built in the stage
            assert "--no-deps" in install and "/wheels/" in install, install
    assert locks == {str(BUILD_LOCK), str(RUNTIME_LOCK)}
    wheel = [r for r in commands if "pip wheel" in r]
    assert wheel and "--no-build-isolation" in wheel[0] and "--no-deps" in wheel[0]


def test_the_final_stage_has_no_pip_compilers_or_build_tools_and_runs_as_non_root() -> None:
    *_, build, final = read_stages()
    commands = runs(final)
    assert [_apt_packages(c).keys() for c in commands] == [{"python3.11"}]
    tools = r"pip|setuptools|wheel|venv|ensurepip|gcc|g\+\+|cc|make|build-essential|git|curl"
    for command in commands:
        assert not re.search(rf"(^|[\s/\"]){tools}([\s=\"]|$)", command), command
        assert "-dev" not in command, command
    copies = [i.arguments for i in final if i.keyword == "COPY"]
    assert copies == ["--from=build /opt/dpo /opt/dpo"]
    venv = [r for r in runs(build) if "/opt/dpo" in r]
    assert venv and "-m venv --without-pip /opt/dpo" in venv[0]
    (user,) = [i.arguments for i in final if i.keyword == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) != 0 and int(gid) != 0
    assert [i.arguments for i in final if i.keyword == "ENTRYPOINT"] == ['["dpo"]']


def test_the_build_context_holds_the_locks_and_not_the_local_control_plane() -> None:
    rules = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert rules[0] == "*"
    for needed in ("pyproject.toml", "README.md", str(RUNTIME_LOCK), str(BUILD_LOCK), "operator/"):
        assert f"!{needed}" in rules
    assert "operator/dataproduct_operator/cluster/" in rules[rules.index("!operator/") :]
    copied = [i.arguments.split()[0] for s in read_stages()[1:] for i in s if i.keyword == "COPY"]
    assert {"requirements/build.lock", "pyproject.toml", "operator/"} <= set(copied)


# --- the wheel ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built offline from a clean copy of the sources (as the image's build stage)."""
    built = build_wheel(tmp_path_factory.mktemp("wheel"))
    assert built.name.startswith(f"dataproduct_operator-{__version__}-")
    return built


def _runtime_site(directory: Path) -> Path:
    """A directory of links to the test venv's installs of the runtime lock's pins, and nothing
    else: what the image's venv holds besides the project, without a download."""
    directory.mkdir()
    for name, pin in read_lock(REPO / RUNTIME_LOCK).items():
        distribution = importlib.metadata.distribution(name)
        assert distribution.version == pin.version, f"{name}: run make venv"
        tops = {f.parts[0] for f in distribution.files or [] if f.parts[0] != ".."}
        for top in sorted(tops - {"__pycache__"}):
            link = directory / top
            if not link.exists():  # a namespace package (google/) is linked once
                link.symlink_to(Path(str(distribution.locate_file(top))))
    return directory


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv without pip holding the wheel and, through a .pth file, the runtime lock's pins."""
    root = tmp_path_factory.mktemp("image")
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = str(venv / "bin" / "python")
    run_pip("--python", python, "install", "--quiet", "--no-deps", "--no-index", str(wheel))
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / "runtime_lock.pth").write_text(f"{_runtime_site(root / 'runtime-lock')}\n")
    return venv


def _dpo(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "dpo"), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=venv.parent,
        env={**os.environ, "PYTHONPATH": ""},
    )


def test_the_wheel_leaves_out_the_local_control_plane(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "dataproduct_operator/cli.py" in names
    assert "dataproduct_operator/handlers/operator.py" in names
    assert [n for n in names if n.startswith("dataproduct_operator/cluster")] == []


def test_dpo_run_and_catalog_work_without_the_local_control_plane(installed: Path) -> None:
    for command in ("run", "catalog"):
        result = _dpo(installed, command, "--help")
        assert result.returncode == 0, result.stderr
        assert "--kubeconfig" in result.stdout
    for command in (["cluster", "up"], ["cluster", "status"], ["dev"], ["tools", "dir"]):
        result = _dpo(installed, *command, *(["--examples", "."] if command == ["dev"] else []))
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert f"`dpo {' '.join(command)}` is not available in this installation" in result.stderr
        assert "Traceback" not in result.stderr


def test_the_operator_and_the_catalog_import_with_the_runtime_lock_alone(
    installed: Path,
) -> None:
    script = """
import importlib.metadata, json, sys
import dataproduct_operator.cli as cli
import dataproduct_operator.handlers.operator, dataproduct_operator.catalog.serve
owners = importlib.metadata.packages_distributions()
used = {d for m in list(sys.modules) for d in owners.get(m.partition(".")[0], [])}
cluster = [m for m in sys.modules if m.startswith("dataproduct_operator.cluster")]
print(json.dumps({"file": cli.__file__, "distributions": sorted(used), "cluster": cluster}))
"""
    result = subprocess.run(
        [str(installed / "bin" / "python"), "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=installed.parent,
        env={**os.environ, "PYTHONPATH": ""},
        check=True,
    )
    found = json.loads(result.stdout)
    assert found["file"].startswith(str(installed))
    assert found["cluster"] == []
    used = {canonicalize_name(d) for d in found["distributions"]} - {PROJECT}
    assert {"kopf", "aiohttp", "jinja2"} <= used
    assert sorted(used - read_lock(REPO / RUNTIME_LOCK).keys()) == []


# --- the chart's default image -----------------------------------------------------------------


def test_the_default_image_repository_is_named_after_the_project_everywhere() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    repository = values["image"]["repository"]
    assert chart["name"] == PROJECT
    assert repository == ChartValues().image.repository
    registry, owner, name = repository.split("/")
    assert (registry, owner, name) == ("ghcr.io", PROJECT, PROJECT)
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["properties"]["image"]["properties"]["repository"]["default"] == repository
    assert f"| `image.repository` | `{repository}` |" in (CHART / "README.md").read_text()
    assert f"-t {repository}:{__version__} ." in DOCKERFILE.read_text()
    for document in (REPO / "README.md", REPO / "docs" / "operator.md"):
        assert repository in document.read_text(), document


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


def test_the_runner_lock_adds_duckdb_with_hashes_to_the_runtime_pins() -> None:
    runner = read_lock(REPO / RUNNER_LOCK)
    runtime = read_lock(REPO / RUNTIME_LOCK)
    assert "duckdb" in runner
    assert runner["duckdb"].hashes
    assert "duckdb" not in runtime  # the operator image stays without it
    assert {name: pin.version for name, pin in runtime.items()} == {
        name: runner[name].version for name in runtime
    }
