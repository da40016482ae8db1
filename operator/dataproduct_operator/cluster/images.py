"""Container images built here, without a registry or a Docker engine (layer ``cluster``).

``make images`` (``dpo images build``) writes each image as a ``docker save`` archive into a
cache outside the repository, ``$XDG_CACHE_HOME/dataproduct-operator/images/<name>.tar``, and
:func:`import_images` loads archives into a containerd, where the kubelet finds them by their
refs (pods use ``imagePullPolicy: IfNotPresent`` or ``Never``):

- ``pause``: a static C program (``assets/pause.c``), the node's sandbox image;
- ``toolbox``: Debian's static busybox and its applet links, for shell pipelines in tests;
- ``operator`` and ``runner``: Debian bookworm (debootstrap, minbase) with Debian's python3.11
  at operator/Dockerfile's ``PYTHON_DEB`` pin as one layer, and /opt/dpo, the venv that
  Dockerfile's build stage makes (runtime.lock with hashes checked, the project's wheel), as a
  second, so a change to the project rebuilds the small layer only.

Each archive has a stamp: the fingerprint of its inputs (as :func:`toolchain.is_current` does
for binaries); an image whose stamp matches is not built again. The archive format itself is
in :mod:`image_archive`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from dataproduct_operator import __version__
from dataproduct_operator.cluster import image_archive, toolchain
from dataproduct_operator.cluster.image_archive import ImageConfig, LayerBlob, LayerEntry
from dataproduct_operator.errors import ComponentStartError, ImageBuildError, UserError

REPOSITORY = "localhost/dataproduct-operator"
ALL_IMAGES = ("pause", "toolbox", "runner", "operator")

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = _PACKAGE_DIR.parents[1]
DOCKERFILE = REPO_ROOT / "operator" / "Dockerfile"
PAUSE_SOURCE = Path(__file__).parent / "assets" / "pause.c"
BUSYBOX = Path("/bin/busybox")  # from Debian's busybox-static

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# What the operator and runner images run as, as operator/Dockerfile's USER says.
IMAGE_USER = "65532:65532"
DPO_PATH = "/opt/dpo"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Bumped when a recipe below changes in a way its inputs do not show.
_RECIPE_VERSION = "1"

# Locks installed into /opt/dpo after requirements/runtime.lock, per image: the place where an
# image gets packages of its own (each a hashed lock of requirements/, installed the same way).
# The runner carries DuckDB (its own lock: the runtime pins and duckdb, hashed).
EXTRA_LOCKS: dict[str, tuple[str, ...]] = {"operator": (), "runner": ("runner.lock",)}

_IMPORT_TIMEOUT_SECONDS = 600


def images_dir() -> Path:
    """The archive cache: ``$XDG_CACHE_HOME`` or ``~/.cache``, then dataproduct-operator/images."""
    return toolchain.cache_root() / "images"


IMAGES_DIR = images_dir()


@dataclass(frozen=True)
class ImageSpec:
    """One image: its name, the ref pods use, and its archive in the cache."""

    name: str
    ref: str
    archive: Path


def image_spec(name: str) -> ImageSpec:
    """The spec of a known image; a :class:`UserError` naming the known ones otherwise."""
    if name not in ALL_IMAGES:
        raise UserError(f"Unknown image {name!r}: the images are {', '.join(ALL_IMAGES)}")
    return ImageSpec(name, f"{REPOSITORY}/{name}:{__version__}", images_dir() / f"{name}.tar")


# ---- fingerprints: what each image is made of --------------------------------------------


def python_pin(dockerfile: Path = DOCKERFILE) -> str:
    """Debian's python3.11 version that operator/Dockerfile pins (``ARG PYTHON_DEB=``)."""
    match = re.search(r"^ARG PYTHON_DEB=(\S+)$", dockerfile.read_text(), re.MULTILINE)
    if match is None:
        raise ImageBuildError(f"{dockerfile} does not pin PYTHON_DEB")
    return match.group(1)


def _digest(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def project_files(root: Path = REPO_ROOT) -> list[Path]:
    """What the project's wheel is built from, as operator/Dockerfile's build context holds it:
    pyproject.toml, README.md and operator/ less the local control plane and bytecode."""
    skipped = root / "operator" / "dataproduct_operator" / "cluster"
    found = [
        path
        for path in (root / "operator").rglob("*")
        if path.is_file()
        and skipped not in path.parents
        and "__pycache__" not in path.parts
        and path.suffix != ".pyc"
    ]
    return [root / "pyproject.toml", root / "README.md", *sorted(found)]


def _base_fingerprint() -> str:
    return _digest(
        _RECIPE_VERSION, DEBIAN_SUITE, DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR, python_pin()
    )


def _locks(name: str) -> list[Path]:
    return [REPO_ROOT / "requirements" / lock for lock in ("runtime.lock", *EXTRA_LOCKS[name])]


def _venv_fingerprint(name: str) -> str:
    inputs: list[bytes | str] = [_base_fingerprint()]
    for path in [REPO_ROOT / "requirements" / "build.lock", *_locks(name), *project_files()]:
        inputs += [path.relative_to(REPO_ROOT).as_posix(), path.read_bytes()]
    return _digest(*inputs)


def fingerprint(name: str) -> str:
    """Changes whenever anything the image is made of changes."""
    spec = image_spec(name)
    if name == "pause":
        return _digest(_RECIPE_VERSION, spec.ref, PAUSE_SOURCE.read_bytes())
    if name == "toolbox":
        busybox = BUSYBOX.read_bytes() if BUSYBOX.is_file() else b"missing"
        return _digest(_RECIPE_VERSION, spec.ref, busybox)
    return _digest(_RECIPE_VERSION, spec.ref, _venv_fingerprint(name))


def _stamp(path: Path) -> Path:
    return path.parent / ".stamps" / path.name


def _is_stamped(path: Path, value: str) -> bool:
    stamp = _stamp(path)
    return path.exists() and stamp.is_file() and stamp.read_text().strip() == value


def _write_stamp(path: Path, value: str) -> None:
    stamp = _stamp(path)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(value + "\n")


def built(name: str) -> bool:
    """True when the image's archive exists and was built from exactly the current inputs."""
    return _is_stamped(image_spec(name).archive, fingerprint(name))


# ---- building ----------------------------------------------------------------------------


def _run(command: list[str], *, out: TextIO, what: str, env: dict[str, str] | None = None) -> None:
    """Run COMMAND, its output shown on OUT indented as it comes; a clear error on failure."""
    tail: list[str] = []
    with subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        if process.stdout is None:  # pragma: no cover - stdout=PIPE always sets it
            raise ImageBuildError(f"{what} started without an output pipe")
        try:
            for line in process.stdout:
                print(f"    {line.rstrip()}", file=out, flush=True)
                tail.append(line.rstrip())
                del tail[:-30]
            process.wait()
        except BaseException:
            process.kill()
            raise
    if process.returncode != 0:
        raise ImageBuildError(f"{what} failed (exit {process.returncode}):\n" + "\n".join(tail))


def _need_command(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ImageBuildError(
            f"{name} is missing: `make images` installs Debian's {package} (as root), "
            f"or apt-get install {package}"
        )
    return found


def _write_layer_file(entries: list[LayerEntry], target: Path) -> LayerBlob:
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("wb") as stream:
        digest = image_archive.write_layer(entries, stream)
    partial.replace(target)
    return LayerBlob(target, digest)


def _write_image(
    spec: ImageSpec, config: ImageConfig, layers: list[LayerBlob], history: list[str]
) -> str:
    partial = spec.archive.with_name(f".{spec.archive.name}.partial")
    with partial.open("wb") as stream:
        identity = image_archive.write_archive(spec.ref, config, layers, history, stream)
    partial.replace(spec.archive)
    return identity


def _pause_layers(work: Path, out: TextIO) -> tuple[list[LayerBlob], list[str]]:
    gcc = _need_command("gcc", "gcc")
    binary = work / "pause"
    _run(
        [
            gcc,
            "-static",
            "-Os",
            "-s",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-o",
            str(binary),
            str(PAUSE_SOURCE),
        ],
        out=out,
        what="gcc of pause.c",
    )
    entry = LayerEntry("pause", "file", 0o755, data=binary.read_bytes())
    return [_write_layer_file([entry], work / "pause-layer.tar")], ["gcc -static -Os pause.c"]


def toolbox_entries(busybox: bytes, applets: list[str]) -> list[LayerEntry]:
    """The toolbox's one layer: busybox at /bin/busybox, a symlink to it per applet (paths as
    ``busybox --list-full`` prints them), a world-writable /tmp and a minimal /etc/passwd."""
    directories = {"bin", "etc", "tmp"}
    links: dict[str, LayerEntry] = {}
    for applet in applets:
        path = applet.strip().lstrip("/")
        if not path or path == "bin/busybox":
            continue
        directories.update(image_archive.parents(path))
        links[path] = LayerEntry(path, "symlink", 0o777, link="/bin/busybox")
    entries = [LayerEntry(d, "dir", 0o1777 if d == "tmp" else 0o755) for d in sorted(directories)]
    entries.append(LayerEntry("bin/busybox", "file", 0o755, data=busybox))
    entries.append(
        LayerEntry(
            "etc/passwd",
            "file",
            0o644,
            data=b"root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/tmp:/bin/sh\n",
        )
    )
    entries.append(LayerEntry("etc/group", "file", 0o644, data=b"root:x:0:\nnonroot:x:65532:\n"))
    return [*entries, *links.values()]


def is_static_elf(binary: bytes) -> bool:
    """True for an ELF executable without a program interpreter (statically linked)."""
    if binary[:4] != b"\x7fELF" or binary[4] != 2:  # 64-bit only, as the images are amd64
        return False
    phoff = int.from_bytes(binary[0x20:0x28], "little")
    entry_size = int.from_bytes(binary[0x36:0x38], "little")
    count = int.from_bytes(binary[0x38:0x3A], "little")
    for index in range(count):
        offset = phoff + index * entry_size
        if int.from_bytes(binary[offset : offset + 4], "little") == 3:  # PT_INTERP
            return False
    return True


def _toolbox_layers(work: Path, out: TextIO) -> tuple[list[LayerBlob], list[str]]:
    if not BUSYBOX.is_file():
        raise ImageBuildError(
            f"{BUSYBOX} is missing: `make images` installs Debian's busybox-static (as root), "
            "or apt-get install busybox-static"
        )
    busybox = BUSYBOX.read_bytes()
    if not is_static_elf(busybox):
        raise ImageBuildError(
            f"{BUSYBOX} is linked dynamically (Debian's busybox package): the toolbox needs "
            "busybox-static (apt-get install busybox-static)"
        )
    listed = subprocess.run(
        [str(BUSYBOX), "--list-full"], capture_output=True, text=True, check=True, timeout=30
    )
    applets = listed.stdout.split()
    print(f"    busybox with {len(applets)} applets", file=out)
    layer = _write_layer_file(toolbox_entries(busybox, applets), work / "toolbox-layer.tar")
    return [layer], ["busybox-static with its applet links"]


# ---- the Debian images ------------------------------------------------------------------


def _rootfs_dir() -> Path:
    return images_dir() / "rootfs" / f"{DEBIAN_SUITE}-python3.11"


def _layers_dir() -> Path:
    return images_dir() / "layers"


def _private_mounts() -> list[str]:
    """The prefix that runs a command in a mount namespace of its own: whatever it mounts
    (debootstrap mounts /proc and /sys in its target) goes when it ends, even killed."""
    unshare = _need_command("unshare", "util-linux")
    return [unshare, "--mount", "--propagation", "private", "--fork", "--"]


def _in_root(root: Path, script: str, *, out: TextIO, what: str, env: dict[str, str]) -> None:
    """Run SCRIPT with /bin/sh inside ROOT (chroot), /proc and /dev mounted in a mount
    namespace of its own, so nothing stays mounted when it ends, however it ends."""
    wrapper = (
        'mount -t proc proc "$1/proc" && mount --bind /dev "$1/dev" '
        '&& exec chroot "$1" /bin/sh -euc "$2"'
    )
    _run(
        [*_private_mounts(), "/bin/sh", "-euc", wrapper, "sh", str(root), script],
        out=out,
        what=what,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LC_ALL": "C.UTF-8", **env},
    )


_APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_BUILD_CA_BUNDLE = "/root/host-ca-certificates.crt"


def _sources_list() -> str:
    return (
        f"deb {DEBIAN_MIRROR} {DEBIAN_SUITE} main\n"
        f"deb {DEBIAN_MIRROR} {DEBIAN_SUITE}-updates main\n"
        f"deb {DEBIAN_SECURITY_MIRROR} {DEBIAN_SUITE}-security main\n"
    )


def _copy_host_file(source: Path, root: Path) -> None:
    if source.is_file():
        target = root / source.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def _ensure_rootfs(out: TextIO) -> Path:
    """Debian bookworm (minbase) with python3.11 at the pin, cached: built once per inputs."""
    rootfs = _rootfs_dir()
    wanted = _base_fingerprint()
    if _is_stamped(rootfs, wanted):
        return rootfs
    debootstrap = _need_command("debootstrap", "debootstrap")
    pin = python_pin()
    partial = rootfs.with_name(f".{rootfs.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(rootfs, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"  Debian base: debootstrap --variant=minbase {DEBIAN_SUITE} from {DEBIAN_MIRROR}",
        file=out,
    )
    _run(
        [
            *_private_mounts(),
            debootstrap,
            "--variant=minbase",
            "--arch=amd64",
            DEBIAN_SUITE,
            str(partial),
            DEBIAN_MIRROR,
        ],
        out=out,
        what="debootstrap",
        env={**os.environ, **_APT_ENV},
    )
    (partial / "etc" / "apt" / "sources.list").write_text(_sources_list())
    (partial / "etc" / "dpkg" / "dpkg.cfg.d" / "slim").write_text(_SLIM_DPKG_CONFIG)
    _copy_host_file(Path("/etc/resolv.conf"), partial)
    print(f"  Debian base: python3.11={pin}", file=out)
    _in_root(
        partial,
        f'apt-get update -q && apt-get install -y -q --no-install-recommends "python3.11={pin}" '
        "&& apt-get clean && rm -rf /var/lib/apt/lists/*",
        out=out,
        what=f"apt-get install python3.11={pin}",
        env=_APT_ENV,
    )
    _slim(partial)
    _tidy_rootfs(partial)
    partial.rename(rootfs)
    _write_stamp(rootfs, wanted)
    return rootfs


# What Debian's -slim images leave out (their dpkg configuration), so packages installed later
# leave it out too; the copyright files stay.
_SLIM_DPKG_CONFIG = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
"""
_SLIM_EXCLUDED = (
    "usr/share/man",
    "usr/share/groff",
    "usr/share/info",
    "usr/share/lintian",
    "usr/share/linda",
    "usr/share/locale",
)


def _slim(root: Path) -> None:
    """Remove what the slim dpkg configuration excludes from the packages debootstrap
    installed before that configuration existed."""
    for relative in _SLIM_EXCLUDED:
        for child in (root / relative).glob("*"):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    for doc in (root / "usr" / "share" / "doc").glob("*"):
        if doc.is_dir() and not doc.is_symlink():
            for child in doc.iterdir():
                if child.name == "copyright":
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()


def _tidy_rootfs(root: Path) -> None:
    """What a container image leaves out: logs, caches, the host's resolver and identity
    (the runtime provides /etc/resolv.conf, /etc/hosts and /etc/hostname)."""
    for pattern in (
        "var/log/*",
        "var/cache/apt/*.bin",
        "var/cache/debconf/*-old",
        "var/lib/apt/lists/*",
    ):
        for child in root.glob(pattern):
            if child.is_file() or child.is_symlink():
                child.unlink()
    for relative in ("etc/resolv.conf", "etc/hostname", "etc/machine-id"):
        target = root / relative
        target.unlink(missing_ok=True)
        target.write_text("")


def _ensure_base_layer(out: TextIO) -> LayerBlob:
    """The Debian root file system as one layer tar, cached beside the archives."""
    rootfs = _ensure_rootfs(out)
    target = _layers_dir() / "debian-base.tar"
    wanted = _base_fingerprint()
    digest_file = target.with_suffix(".digest")
    if _is_stamped(target, wanted) and digest_file.is_file():
        print(f"  Debian base: current ({target.name})", file=out)
        return LayerBlob(target, digest_file.read_text().strip())
    print("  Debian base: writing its layer", file=out)
    target.parent.mkdir(parents=True, exist_ok=True)
    entries = image_archive.entries_from_directory(
        rootfs,
        keep_owners=True,
        keep_mtimes=True,
        exclude_contents_of=frozenset({"dev", "proc", "sys", "run", "tmp"}),
    )
    blob = _write_layer_file(entries, target)
    digest_file.write_text(blob.digest + "\n")
    _write_stamp(target, wanted)
    return blob


def _venv_script(extra_locks: list[str]) -> str:
    """operator/Dockerfile's build stage, as one script run in a copy of the base with
    python3.11-venv added; two differences, for a reproducible read-only image: no bytecode
    from pip, then all of /opt/dpo compiled to hash-based bytecode that is never checked
    against its source: file times do not matter (the layer sets one fixed value) and a
    read-only root never needs to write bytecode."""
    pip = "/opt/build/bin/pip"
    into_dpo = f"{pip} --python /opt/dpo/bin/python install --no-compile"
    hashed = "--require-hashes --only-binary :all:"
    steps = [
        "cd /src",
        "python3.11 -m venv /opt/build",
        f"{pip} install {hashed} -r requirements/build.lock",
        f"{pip} wheel --no-deps --no-build-isolation --wheel-dir /wheels .",
        "python3.11 -m venv --without-pip /opt/dpo",
        *(f"{into_dpo} {hashed} -r requirements/{lock}" for lock in ("runtime.lock", *extra_locks)),
        f"{into_dpo} --no-deps /wheels/*.whl",
        "python3.11 -m compileall -q --invalidation-mode unchecked-hash /opt/dpo/lib",
    ]
    return " && ".join(steps)


def _copy_sources(src: Path) -> None:
    """What operator/Dockerfile's COPY instructions put in /src."""
    for path in project_files():
        target = src / path.relative_to(REPO_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    for lock in sorted(
        {*(lock for locks in EXTRA_LOCKS.values() for lock in locks), "runtime.lock", "build.lock"}
    ):
        target = src / "requirements" / lock
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / "requirements" / lock, target)


def _ensure_venv_layer(name: str, out: TextIO) -> LayerBlob:
    """/opt/dpo as one layer, built in a throw-away copy of the base, cached by its inputs
    (images with the same locks share it)."""
    wanted = _venv_fingerprint(name)
    target = _layers_dir() / _venv_layer_name(name)
    digest_file = target.with_suffix(".digest")
    if _is_stamped(target, wanted) and digest_file.is_file():
        print(f"  /opt/dpo: current ({target.name})", file=out)
        return LayerBlob(target, digest_file.read_text().strip())
    rootfs = _ensure_rootfs(out)
    pin = python_pin()
    with tempfile.TemporaryDirectory(dir=images_dir(), prefix=".build-") as scratch:
        build_root = Path(scratch) / "root"
        print("  /opt/dpo: copying the base to build in", file=out)
        _run(["cp", "-a", str(rootfs), str(build_root)], out=out, what="copying the Debian base")
        _copy_host_file(Path("/etc/resolv.conf"), build_root)
        env = {
            **_APT_ENV,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_CACHE_DIR": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if HOST_CA_BUNDLE.is_file():
            # This machine's CAs (a network may inspect TLS) where the build's packages do not
            # overwrite them (ca-certificates regenerates its bundle); the build root goes.
            shutil.copyfile(HOST_CA_BUNDLE, build_root / _BUILD_CA_BUNDLE.lstrip("/"))
            env["PIP_CERT"] = _BUILD_CA_BUNDLE
        _copy_sources(build_root / "src")
        print(
            f"  /opt/dpo: python3.11-venv={pin}, then the build stage of operator/Dockerfile",
            file=out,
        )
        _in_root(
            build_root,
            "apt-get update -q && apt-get install -y -q --no-install-recommends "
            f'"python3.11-venv={pin}" && {_venv_script(list(EXTRA_LOCKS[name]))}',
            out=out,
            what=f"the /opt/dpo build for {name}",
            env=env,
        )
        print("  /opt/dpo: writing its layer", file=out)
        target.parent.mkdir(parents=True, exist_ok=True)
        entries = image_archive.entries_from_directory(build_root / "opt" / "dpo", prefix="opt/dpo")
        blob = _write_layer_file(entries, target)
    digest_file.write_text(blob.digest + "\n")
    _write_stamp(target, wanted)
    _prune_venv_layers()
    return blob


def _prune_venv_layers() -> None:
    """Remove /opt/dpo layers no image is made of any more (each is hundreds of megabytes)."""
    kept = {_venv_layer_name(name) for name in EXTRA_LOCKS}
    for layer in _layers_dir().glob("dpo-*.tar"):
        if layer.name not in kept:
            for path in (layer, layer.with_suffix(".digest"), _stamp(layer)):
                path.unlink(missing_ok=True)


def _venv_layer_name(name: str) -> str:
    return f"dpo-{_venv_fingerprint(name)[:16]}.tar"


def _require_root(name: str) -> None:
    if os.geteuid() != 0:
        raise ImageBuildError(
            f"The {name} image needs root to build (debootstrap and chroot): run `make images` "
            "as root, or build only the others (dpo images build pause toolbox)"
        )


def _debian_layers(name: str, out: TextIO) -> tuple[list[LayerBlob], list[str]]:
    _require_root(name)
    base = _ensure_base_layer(out)
    venv = _ensure_venv_layer(name, out)
    locks = ", ".join(("runtime.lock", *EXTRA_LOCKS[name]))
    return [base, venv], [
        f"debootstrap --variant=minbase {DEBIAN_SUITE}; apt-get install python3.11={python_pin()}",
        f"/opt/dpo: venv of {locks} and the project's wheel",
    ]


_DEBIAN_ENV = (
    f"PATH={DPO_PATH}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "PYTHONDONTWRITEBYTECODE=1",
    "PYTHONUNBUFFERED=1",
)

CONFIGS: dict[str, ImageConfig] = {
    "pause": ImageConfig(entrypoint=("/pause",)),
    "toolbox": ImageConfig(cmd=("sh",), env=(PATH_ENV,)),
    # As operator/Dockerfile's final stage.
    "operator": ImageConfig(
        entrypoint=("dpo",),
        cmd=("run",),
        env=_DEBIAN_ENV,
        user=IMAGE_USER,
        exposed_ports=("8000/tcp", "8080/tcp"),
    ),
    "runner": ImageConfig(entrypoint=("dpo", "pipeline", "run"), env=_DEBIAN_ENV, user=IMAGE_USER),
}

_LAYERS: dict[str, Callable[[str, Path, TextIO], tuple[list[LayerBlob], list[str]]]] = {
    "pause": lambda _name, work, out: _pause_layers(work, out),
    "toolbox": lambda _name, work, out: _toolbox_layers(work, out),
    "operator": lambda name, _work, out: _debian_layers(name, out),
    "runner": lambda name, _work, out: _debian_layers(name, out),
}


def build_images(names: tuple[str, ...] = ALL_IMAGES, *, out: TextIO = sys.stderr) -> None:
    """Build the named images whose archives are missing or outdated, with progress on OUT."""
    specs = [image_spec(name) for name in names]
    directory = images_dir()
    with toolchain.exclusive(directory):
        # Scratch left by a build that was killed (a build root is hundreds of megabytes).
        for leftover in [*directory.glob(".work-*"), *directory.glob(".build-*")]:
            shutil.rmtree(leftover, ignore_errors=True)
        for index, spec in enumerate(specs, start=1):
            step = f"[{index}/{len(specs)}]"
            wanted = fingerprint(spec.name)
            if _is_stamped(spec.archive, wanted):
                print(f"{step} {spec.ref}: current ({spec.archive})", file=out, flush=True)
                continue
            print(f"{step} Building {spec.ref}", file=out, flush=True)
            started = time.monotonic()
            with tempfile.TemporaryDirectory(dir=directory, prefix=".work-") as work:
                layers, history = _LAYERS[spec.name](spec.name, Path(work), out)
                identity = _write_image(spec, CONFIGS[spec.name], layers, history)
            _write_stamp(spec.archive, wanted)
            size = spec.archive.stat().st_size / 1e6
            print(
                f"{step} Built {spec.ref} in {time.monotonic() - started:.1f}s: {spec.archive} "
                f"({size:.1f} MB, image ID {identity[:19]})",
                file=out,
                flush=True,
            )


@dataclass(frozen=True)
class ImageStatus:
    """One line of ``dpo images list``."""

    spec: ImageSpec
    current: bool
    image_id: str | None


def list_images() -> list[ImageStatus]:
    """Every image with whether its archive is current and, when there is one, its image ID."""
    statuses = []
    for name in ALL_IMAGES:
        spec = image_spec(name)
        identity = None
        if spec.archive.is_file():
            identity = image_archive.read_archive(spec.archive).image_id
        statuses.append(ImageStatus(spec, built(name), identity))
    return statuses


# ---- containerd ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_images` did: refs imported, and refs already there with the same
    image ID (not imported again)."""

    imported: tuple[str, ...]
    present: tuple[str, ...]


def _ctr(
    ctr: Path, address: Path, namespace: str, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    command = [str(ctr), "--address", str(address), "-n", namespace, *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise ComponentStartError(
            f"ctr {' '.join(args)} did not finish in {timeout:.0f}s"
        ) from error


def _present_image_id(ctr: Path, address: Path, namespace: str, ref: str) -> str | None:
    """The image ID (config digest) REF names in the containerd, or None when it names none
    (or what it names cannot be read: then the archive is imported again)."""
    listed = _ctr(ctr, address, namespace, "images", "ls", f"name=={ref}")
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    digests = [row[2] for row in rows if len(row) > 2 and row[0] == ref]
    if listed.returncode != 0 or len(digests) != 1:
        return None
    manifest = _ctr(ctr, address, namespace, "content", "get", digests[0])
    try:
        config = json.loads(manifest.stdout)["config"]["digest"]
    except (ValueError, KeyError, TypeError):
        return None
    return config if manifest.returncode == 0 and isinstance(config, str) else None


def import_images(
    ctr: Path, address: Path, archives: list[Path], *, namespace: str = "k8s.io"
) -> ImportResult:
    """Import ARCHIVES into the containerd listening on ADDRESS, unpacked for its default
    snapshotter, so the CRI (namespace ``k8s.io``) runs them without pulling. An archive whose
    ref already names its image ID there is skipped: a Debian image takes seconds to import."""
    imported: list[str] = []
    present: list[str] = []
    for archive in archives:
        image = image_archive.read_archive(archive)
        if _present_image_id(ctr, address, namespace, image.ref) == image.image_id:
            present.append(image.ref)
            continue
        result = _ctr(
            ctr,
            address,
            namespace,
            "images",
            "import",
            str(archive),
            timeout=_IMPORT_TIMEOUT_SECONDS,
        )
        if result.returncode != 0:
            raise ComponentStartError(
                f"ctr images import {archive} failed (exit {result.returncode}): "
                f"{(result.stdout + result.stderr).strip()}"
            )
        imported.append(image.ref)
    return ImportResult(tuple(imported), tuple(present))
