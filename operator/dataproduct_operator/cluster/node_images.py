"""The real node's images, imported once per machine and planted into each node (layer
``cluster``, imperative).

Importing an image into containerd copies its layers into the content store and unpacks them
into snapshots: 12 s for the runner image (400 MB) at every ``dpo cluster up``, measured. So
the node's containerd starts from a seed instead: a containerd root in the image cache holding
exactly the node's images (:func:`ensure_seed`), imported and unpacked once per set of images
and containerd version, by a containerd of its own started for that (its CRI off, so it needs
no network, cgroups or kubelet). Each ``up`` plants the seed in its node's directory
(:func:`plant`) as hard links, in half a second: the content blobs and the unpacked snapshots,
which containerd never changes in place (a container writes into an upper directory of its
own, overlayfs copies a file up before changing it); the two bolt databases, which containerd
writes, are copied. Once containerd runs, the node's import finds every image there already.

The seeds live in ``<image cache>/node-seeds/<key>``; building one holds the seeds' lock
exclusively, planting holds it shared, so a seed is never removed while a cluster plants it.
When a new one is built, all but the seed used last are removed (two are kept: switching
between two sets of images, one outdated then rebuilt, imports nothing again).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from dataproduct_operator.cluster import image_archive, images
from dataproduct_operator.errors import ComponentStartError

SEEDS = "node-seeds"
ROOT = "root"  # the seed's containerd root, under its key's directory
# The files containerd writes in place (bolt databases): copied, never linked.
WRITTEN_IN_PLACE = (
    Path("io.containerd.metadata.v1.bolt/meta.db"),
    Path("io.containerd.snapshotter.v1.overlayfs/metadata.db"),
)
# What names one containerd: each node makes its own.
PER_INSTANCE = (Path("io.containerd.grpc.v1.introspection/uuid"),)
_RECIPE_VERSION = "1"
# Seeds kept: the newest used, so switching between two image sets (an image outdated, then
# rebuilt) plants either without importing again.
KEPT_SEEDS = 2
_START_SECONDS = 30.0
_STOP_SECONDS = 30.0


def seeds_dir() -> Path:
    return images.images_dir() / SEEDS


def seed_key(archives: list[Path], containerd_version: str) -> str:
    """Names the seed of these archives' images (refs and image IDs) for this containerd."""
    described = sorted(
        (read.ref, read.image_id) for read in map(image_archive.read_archive, archives)
    )
    document = {"recipe": _RECIPE_VERSION, "containerd": containerd_version, "images": described}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]


def containerd_version(containerd: Path) -> str:
    done = subprocess.run(
        [str(containerd), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout.strip()


@contextlib.contextmanager
def _locked(exclusive: bool) -> Iterator[None]:
    seeds_dir().mkdir(parents=True, exist_ok=True)
    with (seeds_dir() / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _seed_config(root: Path, runtime: Path) -> str:
    """A containerd with only what importing needs: no CRI (no network, no kubelet)."""
    return "\n".join([
        "version = 2",
        f"root = {json.dumps(str(root))}",
        f"state = {json.dumps(str(runtime / 'state'))}",
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        "[grpc]",
        f"  address = {json.dumps(str(runtime / 'containerd.sock'))}",
        "[ttrpc]",
        f"  address = {json.dumps(str(runtime / 'containerd.sock.ttrpc'))}",
        "",
    ])  # fmt: skip


def _build(seed: Path, archives: list[Path], containerd: Path, ctr: Path) -> None:
    """Import ``archives`` into a fresh containerd root that becomes ``seed`` when complete."""
    building = Path(tempfile.mkdtemp(prefix=".build-", dir=seeds_dir()))
    runtime = Path(tempfile.mkdtemp(prefix="dpo-seed-", dir="/run"))
    config = building / "containerd.toml"
    config.write_text(_seed_config(building / ROOT, runtime))
    socket = runtime / "containerd.sock"
    with (building / "containerd.log").open("wb") as log:
        process = subprocess.Popen(
            [str(containerd), f"--config={config}", "--log-level=warn"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + _START_SECONDS
        while not socket.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise ComponentStartError(
                    f"containerd for the node's images did not start; see {building}"
                )
            time.sleep(0.05)
        images.import_images(ctr, socket, archives)
    finally:
        process.terminate()
        try:
            process.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(runtime, ignore_errors=True)
    seed.mkdir()
    (building / ROOT).rename(seed / ROOT)
    shutil.rmtree(building, ignore_errors=True)


def _prune() -> None:
    """Remove all but the :data:`KEPT_SEEDS` - 1 seeds used last (a new one is about to be
    built), and what an interrupted build left. Holds the exclusive lock."""
    found = [entry for entry in seeds_dir().iterdir() if entry.is_dir()]
    unfinished = [entry for entry in found if entry.name.startswith(".build-")]
    seeds = sorted(set(found) - set(unfinished), key=lambda e: e.stat().st_mtime, reverse=True)
    for stale in [*unfinished, *seeds[KEPT_SEEDS - 1 :]]:
        shutil.rmtree(stale, ignore_errors=True)


def ensure_seed(archives: list[Path], containerd: Path, ctr: Path) -> Path:
    """The seed of ``archives`` (its containerd root), built when missing (the seeds used
    least recently removed then); marked used."""
    key = seed_key(archives, containerd_version(containerd))
    seed = seeds_dir() / key
    with _locked(exclusive=False):
        if (seed / ROOT).is_dir():
            seed.touch()
            return seed / ROOT
    with _locked(exclusive=True):
        if not (seed / ROOT).is_dir():
            _prune()
            _build(seed, archives, containerd, ctr)
    return seed / ROOT


def plant(seed_root: Path, root: Path) -> None:
    """``root`` (absent) made a containerd root holding the seed's images: hard links but for
    the files containerd writes in place, which are copied. Raises ``OSError`` when it cannot
    (the seed on another filesystem, say): the caller then imports the archives."""
    with _locked(exclusive=False):
        if not seed_root.is_dir():
            raise FileNotFoundError(seed_root)
        done = subprocess.run(
            [shutil.which("cp") or "/bin/cp", "-a", "-l", str(seed_root), str(root)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise OSError(f"cp -al {seed_root} {root}: {done.stderr.strip()}")
        for relative in WRITTEN_IN_PLACE:
            target = root / relative
            if target.exists():
                target.unlink()
                shutil.copy2(seed_root / relative, target)
        for relative in PER_INSTANCE:
            (root / relative).unlink(missing_ok=True)
