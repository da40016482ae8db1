"""Whether requirements/*.lock still cover pyproject.toml and requirements/*.in (`make verify`,
a unit test).

`make lock` writes the locks with pip-compile; nothing else keeps them in step with the
dependencies pyproject.toml and requirements/datacontract.in declare. A dependency added, or a
range narrowed, without `make lock` would otherwise go unnoticed until an install resolved it
differently (the project itself is installed with --no-deps). Pure text checks: no index, no
network.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
RUNTIME_LOCK = Path("requirements/runtime.lock")
DEV_LOCK = Path("requirements/dev.lock")
# The runner image's lock: the runtime's pins plus the `runner` extra (DuckDB).
RUNNER_LOCK = Path("requirements/runner.lock")
BUILD_LOCK = Path("requirements/build.lock")  # the image's wheel build: the build backend alone
# datacontract-cli's own virtualenv (`make datacontract`): its .in file, not pyproject.toml.
DATACONTRACT_IN = Path("requirements/datacontract.in")
DATACONTRACT_LOCK = Path("requirements/datacontract.lock")
# The platform the locks are resolved for, whatever runs this check.
LOCK_PYTHON = "3.11"
LOCK_ENVIRONMENT = {
    **default_environment(),
    "python_version": LOCK_PYTHON,
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "extra": "",
}
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})\b")


@dataclass(frozen=True)
class LockedPackage:
    """One pin of a lock file: the version and the sha256 of every file pip may install."""

    name: str
    version: str
    hashes: tuple[str, ...]


def read_lock(path: Path) -> dict[str, LockedPackage]:
    """The pins of a pip-compile lock by canonical name; ValueError on a line that pins nothing."""
    text = re.sub(r"\\\n", " ", path.read_text())  # join continuation lines
    pins: dict[str, LockedPackage] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split(" #", 1)[0].strip()
        if not entry or entry.startswith("#"):
            continue
        match = _PIN.match(entry)
        if match is None:
            raise ValueError(f"{path}:{number}: not a `name==version --hash=...` pin: {entry!r}")
        name = canonicalize_name(match["name"])
        pins[name] = LockedPackage(name, match["version"], tuple(_HASH.findall(entry)))
    return pins


def _applies(requirement: Requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate(LOCK_ENVIRONMENT)


def _uncovered(requirements: list[str], lock: dict[str, LockedPackage], where: str) -> list[str]:
    problems = []
    for text in requirements:
        requirement = Requirement(text)
        if not _applies(requirement):
            continue
        pin = lock.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{requirement} is not in {where}")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{requirement} does not allow {where}'s {pin.name}=={pin.version}")
    return problems


def _requirements_file(path: Path) -> list[str]:
    """The requirements of a pip-compile input file: one a line, ``#`` comments ignored."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def lock_problems(root: Path = REPO) -> list[str]:
    """What disagrees between pyproject.toml and the locks under ROOT; empty when they agree."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    runtime_requirements: list[str] = pyproject["project"]["dependencies"]
    dev_requirements: list[str] = pyproject["project"]["optional-dependencies"]["dev"]
    runner_requirements: list[str] = pyproject["project"]["optional-dependencies"]["runner"]
    build_requirements: list[str] = pyproject["build-system"]["requires"]
    problems: list[str] = []
    locks: dict[Path, dict[str, LockedPackage]] = {}
    for relative in (RUNTIME_LOCK, RUNNER_LOCK, DEV_LOCK, BUILD_LOCK, DATACONTRACT_LOCK):
        path = root / relative
        if not path.is_file():
            problems.append(f"{relative} is missing")
            continue
        if f"pip-compile with Python {LOCK_PYTHON}" not in path.read_text():
            problems.append(f"{relative} was not compiled with Python {LOCK_PYTHON}")
        try:
            locks[relative] = read_lock(path)
        except ValueError as error:
            problems.append(str(error))
            continue
        problems += [
            f"{relative}: {pin.name}=={pin.version} has no sha256 hash"
            for pin in locks[relative].values()
            if not pin.hashes
        ]
    if problems:
        return problems
    runtime, dev, build = locks[RUNTIME_LOCK], locks[DEV_LOCK], locks[BUILD_LOCK]
    runner = locks[RUNNER_LOCK]
    problems += _uncovered(
        _requirements_file(root / DATACONTRACT_IN), locks[DATACONTRACT_LOCK], str(DATACONTRACT_LOCK)
    )
    problems += _uncovered(runtime_requirements, runtime, str(RUNTIME_LOCK))
    problems += _uncovered(build_requirements, build, str(BUILD_LOCK))
    problems += _uncovered(runtime_requirements + runner_requirements, runner, str(RUNNER_LOCK))
    # The project goes into the venv with --no-build-isolation: its build backend is locked too;
    # the runner's tests run there, so its engine is too.
    problems += _uncovered(
        runtime_requirements + dev_requirements + runner_requirements + build_requirements,
        dev,
        str(DEV_LOCK),
    )
    problems += [
        f"{RUNNER_LOCK} pins {name}=={pin.version}, {RUNTIME_LOCK} {runtime[name].version}"
        for name, pin in runner.items()
        if name in runtime and runtime[name].version != pin.version
    ]
    problems += [
        f"{DEV_LOCK} pins {name}=={dev[name].version}, {other} {pin.version}"
        for other, lock in ((RUNTIME_LOCK, runtime), (RUNNER_LOCK, runner), (BUILD_LOCK, build))
        for name, pin in lock.items()
        if name in dev and dev[name].version != pin.version
    ]
    problems += [
        f"{name} is in {RUNTIME_LOCK} but not in {DEV_LOCK}" for name in runtime.keys() - dev.keys()
    ]
    return problems


def main() -> int:
    """Print what disagrees and how to fix it; exit 1 then."""
    problems = lock_problems()
    if problems:
        sys.stderr.write(
            "The dependency locks do not match pyproject.toml or requirements/*.in:\n"
            + "".join(f"  {problem}\n" for problem in problems)
            + "Run `make lock` and commit requirements/*.lock.\n"
        )
        return 1
    sys.stderr.write("The dependency locks match pyproject.toml and requirements/*.in\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
