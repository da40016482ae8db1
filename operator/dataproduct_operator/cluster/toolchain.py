"""Control-plane binaries: where they live and how they are built (layer ``cluster``).

The versions are pinned in one file, ``toolchain/go.mod``: a small Go module of ours that
requires ``k8s.io/kubernetes``, etcd's server, kwok and helm, and pins every ``k8s.io`` staging
module to the published ``v0.X.Y`` that matches the Kubernetes version. ``build_tools`` runs
``go build`` inside that module for each missing or outdated tool, into a cache outside the
repository: ``$XDG_CACHE_HOME/dataproduct-operator/bin/<kubernetes-version>/``.

``DPO_BIN_DIR`` or ``KUBEBUILDER_ASSETS`` (the envtest convention) name a directory of
prebuilt binaries instead; then nothing is ever built.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from dataproduct_operator.errors import MissingToolsError, ToolBuildError

TOOLCHAIN_DIR = Path(__file__).parent / "toolchain"
GO_MOD = TOOLCHAIN_DIR / "go.mod"
GO_SUM = TOOLCHAIN_DIR / "go.sum"

KUBERNETES_MODULE = "k8s.io/kubernetes"
ETCD_MODULE = "go.etcd.io/etcd/server/v3"
KWOK_MODULE = "sigs.k8s.io/kwok"
HELM_MODULE = "helm.sh/helm/v3"

CONTROL_PLANE_TOOLS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
)
# The real node's kubelet (its container runtime comes from Debian's packages).
NODE_TOOLS = ("kubelet",)
ALL_TOOLS = (*CONTROL_PLANE_TOOLS, *NODE_TOOLS, "kubectl", "helm")

PROGRESS_INTERVAL_SECONDS = 15.0


@dataclass(frozen=True)
class Versions:
    """The module versions pinned in ``toolchain/go.mod``."""

    kubernetes: str
    etcd: str
    kwok: str
    helm: str


@dataclass(frozen=True)
class Tool:
    """One binary: its name, the Go package that builds it and its link-time flags."""

    name: str
    package: str
    ldflags: tuple[str, ...]


def read_versions(go_mod: Path = GO_MOD) -> Versions:
    """Read the pinned versions from the toolchain's go.mod."""
    text = go_mod.read_text()

    def version_of(module: str) -> str:
        match = re.search(rf"^\s*{re.escape(module)} (v\S+)", text, re.MULTILINE)
        if match is None:
            raise ToolBuildError(f"{go_mod} does not pin {module}")
        return match.group(1)

    return Versions(
        kubernetes=version_of(KUBERNETES_MODULE),
        etcd=version_of(ETCD_MODULE),
        kwok=version_of(KWOK_MODULE),
        helm=version_of(HELM_MODULE),
    )


def tools_for(versions: Versions) -> dict[str, Tool]:
    """Every tool with its package and version stamps, as ``kubectl version`` expects them."""
    major, minor = versions.kubernetes.lstrip("v").split(".")[:2]
    kube_version_flags = tuple(
        f"-X {package}.{field}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for field, value in (
            ("gitVersion", versions.kubernetes),
            ("gitMajor", major),
            ("gitMinor", minor),
            ("gitTreeState", "clean"),
        )
    )

    def kube(name: str) -> Tool:
        return Tool(name, f"{KUBERNETES_MODULE}/cmd/{name}", kube_version_flags)

    return {
        "etcd": Tool("etcd", ETCD_MODULE, ()),
        "kube-apiserver": kube("kube-apiserver"),
        "kube-controller-manager": kube("kube-controller-manager"),
        "kube-scheduler": kube("kube-scheduler"),
        "kubelet": kube("kubelet"),
        "kubectl": kube("kubectl"),
        "kwok": Tool(
            "kwok",
            f"{KWOK_MODULE}/cmd/kwok",
            (f"-X sigs.k8s.io/kwok/pkg/consts.Version={versions.kwok.lstrip('v')}",),
        ),
        "helm": Tool(
            "helm",
            f"{HELM_MODULE}/cmd/helm",
            (
                f"-X helm.sh/helm/v3/internal/version.version={versions.helm}",
                # The Kubernetes version `helm template` and `helm lint` assume without a
                # cluster: the one helm is built against, as helm's own Makefile sets it.
                *(
                    f"-X helm.sh/helm/v3/pkg/{package}.{field}={value}"
                    for package in ("chartutil", "lint/rules")
                    for field, value in (("k8sVersionMajor", major), ("k8sVersionMinor", minor))
                ),
            ),
        ),
    }


def cache_root() -> Path:
    """The project's cache outside the repository: ``$XDG_CACHE_HOME`` (or ``~/.cache``)
    / dataproduct-operator."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dataproduct-operator"


def cache_bin_dir(versions: Versions | None = None) -> Path:
    """The cache directory that ``build_tools`` fills for the pinned Kubernetes version."""
    versions = versions or read_versions()
    return cache_root() / "bin" / versions.kubernetes


@dataclass(frozen=True)
class BinarySource:
    """Where binaries come from: the build cache, or a directory the user provides."""

    directory: Path
    provided_by: str | None  # the environment variable naming it; None for the build cache


def binary_source() -> BinarySource:
    """``DPO_BIN_DIR``, else ``KUBEBUILDER_ASSETS``, else the build cache."""
    for variable in ("DPO_BIN_DIR", "KUBEBUILDER_ASSETS"):
        value = os.environ.get(variable)
        if value:
            return BinarySource(Path(value).expanduser(), variable)
    return BinarySource(cache_bin_dir(), None)


def find_binary(name: str, source: BinarySource | None = None) -> Path | None:
    """The path of a tool, or ``None``.

    A provided directory may hold only part of the set (envtest ships etcd, kube-apiserver and
    kubectl), so for a provided directory the rest is looked up on ``PATH``.
    """
    source = source or binary_source()
    candidate = source.directory / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    if source.provided_by is not None:
        found = shutil.which(name)
        return Path(found) if found else None
    return None


def require_binaries(names: tuple[str, ...]) -> dict[str, Path]:
    """Paths of the named tools, or one clear error naming what is missing and the ways out."""
    source = binary_source()
    found = {name: find_binary(name, source) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise MissingToolsError(missing_tools_message(missing, source))
    return {name: path for name, path in found.items() if path is not None}


def missing_tools_message(missing: list[str], source: BinarySource) -> str:
    """Explain which binaries are missing and both ways to provide them."""
    names = ", ".join(missing)
    if source.provided_by is not None:
        return (
            f"Missing control-plane binaries: {names}. {source.provided_by}={source.directory} "
            f"does not contain them and they are not on PATH. Either add them to that directory "
            f"(or PATH), or unset {source.provided_by} and run `make tools` to build them with Go."
        )
    if shutil.which("go") is None:
        return (
            f"Missing control-plane binaries: {names}, and Go is not installed to build them. "
            f"Either install Go (1.26 or newer) and run `make tools`, or set KUBEBUILDER_ASSETS "
            f"(or DPO_BIN_DIR) to a directory that holds prebuilt binaries."
        )
    return (
        f"Missing control-plane binaries: {names} in {source.directory}. Run `make tools` "
        f"(or `dpo tools build`) to build them, or set KUBEBUILDER_ASSETS (or DPO_BIN_DIR) to "
        f"a directory that holds prebuilt binaries."
    )


def _fingerprint(tool: Tool) -> str:
    """Changes whenever the pinned modules or the way the tool is built change."""
    digest = hashlib.sha256()
    digest.update(GO_MOD.read_bytes())
    digest.update(GO_SUM.read_bytes())
    digest.update(tool.package.encode())
    digest.update(" ".join(tool.ldflags).encode())
    return digest.hexdigest()


def _stamp_path(bin_dir: Path, name: str) -> Path:
    return bin_dir / ".stamps" / name


def is_current(tool: Tool, bin_dir: Path) -> bool:
    """True when the cached binary was built from exactly the pinned modules."""
    stamp = _stamp_path(bin_dir, tool.name)
    return (
        (bin_dir / tool.name).is_file()
        and stamp.is_file()
        and stamp.read_text().strip() == _fingerprint(tool)
    )


@contextlib.contextmanager
def exclusive(directory: Path) -> Iterator[None]:
    """Serialise builds into the same cache directory (two `make` runs at once)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def build_tools(
    names: tuple[str, ...] = ALL_TOOLS,
    *,
    force: bool = False,
    out: TextIO = sys.stderr,
) -> Path:
    """Build the named tools that are missing or outdated; return the directory holding them.

    Does nothing (and starts no ``go``) when every tool is current. With ``DPO_BIN_DIR`` or
    ``KUBEBUILDER_ASSETS`` set it never builds; it only checks the binaries are there.
    """
    source = binary_source()
    if source.provided_by is not None:
        require_binaries(names)
        print(f"Using prebuilt binaries from {source.provided_by}={source.directory}", file=out)
        return source.directory

    versions = read_versions()
    tools = tools_for(versions)
    unknown = [name for name in names if name not in tools]
    if unknown:
        raise ToolBuildError(f"Unknown tools: {', '.join(unknown)}; known: {', '.join(tools)}")
    bin_dir = source.directory
    with exclusive(bin_dir):
        todo = [tools[name] for name in names if force or not is_current(tools[name], bin_dir)]
        if not todo:
            print(f"Tools up to date in {bin_dir}", file=out)
            return bin_dir
        go = shutil.which("go")
        if go is None:
            raise MissingToolsError(missing_tools_message([t.name for t in todo], source))
        print(
            f"Building {len(todo)} tool(s) for Kubernetes {versions.kubernetes} into {bin_dir}: "
            f"{', '.join(t.name for t in todo)} (a cold build takes many minutes)",
            file=out,
        )
        started = time.monotonic()
        for index, tool in enumerate(todo, start=1):
            _go_build(go, tool, bin_dir, f"[{index}/{len(todo)}]", out)
        print(f"All tools built in {_format_duration(time.monotonic() - started)}", file=out)
    return bin_dir


def _go_build(go: str, tool: Tool, bin_dir: Path, step: str, out: TextIO) -> None:
    """``go build`` one tool, reporting compiled packages periodically; atomic install."""
    target = bin_dir / tool.name
    partial = bin_dir / f".{tool.name}.partial"
    command = [
        go, "build", "-v", "-trimpath",
        "-ldflags", " ".join(("-s", "-w", *tool.ldflags)),
        "-o", str(partial), tool.package,
    ]  # fmt: skip
    print(f"{step} Building {tool.name} from {tool.package}", file=out, flush=True)
    started = time.monotonic()
    compiled = 0
    tail: list[str] = []
    lock = threading.Lock()

    def on_line(line: str) -> None:
        nonlocal compiled
        with lock:
            # `go build -v` names each package as it compiles; anything else is a message.
            if re.fullmatch(r"[\w.\-/~]+", line):
                compiled += 1
            tail.append(line)
            del tail[:-40]

    def report() -> None:
        with lock:
            count = compiled
        elapsed = _format_duration(time.monotonic() - started)
        print(f"{step}   {tool.name}: {count} packages compiled, {elapsed}", file=out, flush=True)

    env = {**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false"}
    process = subprocess.Popen(
        command,
        cwd=TOOLCHAIN_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if process.stdout is None:  # pragma: no cover - stdout=PIPE always sets it
        raise ToolBuildError("go build started without an output pipe")
    reader = threading.Thread(target=_pump, args=(process.stdout, on_line), daemon=True)
    reader.start()
    try:
        while process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=PROGRESS_INTERVAL_SECONDS)
            if process.returncode is None:
                report()
    except BaseException:
        process.kill()
        process.wait()
        partial.unlink(missing_ok=True)
        raise
    reader.join()
    if process.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ToolBuildError(
            f"go build of {tool.name} failed (exit {process.returncode}):\n" + "\n".join(tail)
        )
    partial.replace(target)
    stamp = _stamp_path(bin_dir, tool.name)
    stamp.parent.mkdir(exist_ok=True)
    stamp.write_text(_fingerprint(tool) + "\n")
    elapsed = _format_duration(time.monotonic() - started)
    print(f"{step} Built {tool.name} in {elapsed} ({compiled} packages compiled)", file=out)


def _pump(stream: TextIO, on_line: Callable[[str], None]) -> None:
    for raw in stream:
        on_line(raw.rstrip("\n"))
