"""The container image archive format (layer ``cluster``): what ``docker save`` writes and
``ctr images import`` reads.

An archive is a tar holding ``manifest.json`` (``[{"Config", "RepoTags", "Layers"}]``), the
image's config JSON named by its digest, and one uncompressed tar per layer. The image ID is the
config's digest, and the config names each layer by the digest of its uncompressed tar (its
``diff_id``), so the same layers and settings must give the same bytes: entries are written in
sorted order, with owners and times decided by the caller, never by the clock or the machine.

Layers are described as :class:`LayerEntry` values first (from a directory with
:func:`entries_from_directory`, or built by hand), then written; nothing here runs a program.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

ARCHITECTURE = "amd64"
OS = "linux"
# Entries without a meaningful time of their own get this one, so two builds agree.
FIXED_MTIME = 0

EntryKind = Literal["dir", "file", "symlink", "hardlink"]


@dataclass(frozen=True)
class LayerEntry:
    """One path of a layer: ``path`` is relative to the image's root, without a leading slash.

    A file's bytes come from ``data`` or, for large files, from ``source`` (read when written);
    ``link`` is a symlink's target or, for a hard link, the layer path it shares its data with.
    """

    path: str
    kind: EntryKind
    mode: int
    uid: int = 0
    gid: int = 0
    mtime: int = FIXED_MTIME
    data: bytes | None = None
    source: Path | None = None
    link: str = ""


@dataclass(frozen=True)
class ImageConfig:
    """The run settings of an image, as the config's ``config`` object holds them."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    user: str = ""
    working_dir: str = "/"
    exposed_ports: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerBlob:
    """A written layer: its uncompressed tar and that tar's digest (``sha256:<hex>``)."""

    path: Path
    digest: str

    @property
    def hex(self) -> str:
        return self.digest.removeprefix("sha256:")


def parents(path: str) -> list[str]:
    """The directories above a relative PATH, outermost first."""
    parts = PurePosixPath(path).parts
    return ["/".join(parts[:end]) for end in range(1, len(parts))]


def entries_from_directory(
    root: Path,
    *,
    prefix: str = "",
    keep_owners: bool = False,
    keep_mtimes: bool = False,
    exclude_contents_of: frozenset[str] = frozenset(),
) -> list[LayerEntry]:
    """The entries of the tree under ROOT, placed under PREFIX in the image, sorted.

    Owners are root unless ``keep_owners`` (a Debian root file system has group-owned paths,
    such as /etc/shadow). Times are :data:`FIXED_MTIME` unless ``keep_mtimes``: Python's
    timestamp-checked bytecode records its source's mtime, so a tree compiled that way must keep
    them. Sockets, pipes and device nodes are left out (the runtime provides /dev); the
    directories named in ``exclude_contents_of`` (relative to ROOT) are kept empty.
    """
    entries: list[LayerEntry] = []
    if prefix:
        entries.extend(LayerEntry(p, "dir", 0o755) for p in (*parents(prefix), prefix))
    found: list[tuple[str, Path, os.stat_result]] = []
    for directory, dirnames, filenames in os.walk(root):
        relative_dir = Path(directory).relative_to(root).as_posix()
        if relative_dir in exclude_contents_of:
            dirnames[:] = []
            continue
        for name in [*dirnames, *filenames]:
            relative = name if relative_dir == "." else f"{relative_dir}/{name}"
            path = f"{prefix}/{relative}" if prefix else relative
            found.append((path, Path(directory) / name, (Path(directory) / name).lstat()))
    # In the tar's order, so the path carrying a hard-linked file's data precedes its links.
    first_path_of_inode: dict[tuple[int, int], str] = {}
    for path, local, info in sorted(found, key=lambda item: item[0]):
        entry = LayerEntry(
            path,
            "dir",
            stat.S_IMODE(info.st_mode),
            uid=info.st_uid if keep_owners else 0,
            gid=info.st_gid if keep_owners else 0,
            mtime=int(info.st_mtime) if keep_mtimes else FIXED_MTIME,
        )
        if stat.S_ISLNK(info.st_mode):
            entries.append(replace(entry, kind="symlink", mode=0o777, link=str(local.readlink())))
        elif stat.S_ISDIR(info.st_mode):
            entries.append(entry)
        elif stat.S_ISREG(info.st_mode):
            inode = (info.st_dev, info.st_ino)
            if info.st_nlink > 1 and inode in first_path_of_inode:
                entries.append(replace(entry, kind="hardlink", link=first_path_of_inode[inode]))
            else:
                first_path_of_inode[inode] = path
                entries.append(replace(entry, kind="file", source=local))
    return sorted(entries, key=lambda e: e.path)


def _tar_info(entry: LayerEntry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = entry.mtime
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, entry.link
    elif entry.kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, entry.link
    else:
        info.type = tarfile.REGTYPE
        info.size = len(entry.data) if entry.data is not None else _source(entry).stat().st_size
    return info


def _source(entry: LayerEntry) -> Path:
    if entry.source is None:
        raise ValueError(f"Layer entry {entry.path} has neither data nor a source file")
    return entry.source


class _Digesting(io.RawIOBase):
    """A write-only stream that hashes what passes through it to the file beneath."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self.sha256 = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.sha256.update(data)
        return self._target.write(data)


def write_layer(entries: Iterable[LayerEntry], target: BinaryIO) -> str:
    """Write ENTRIES, sorted by path, as an uncompressed tar to TARGET; return its digest."""
    stream = _Digesting(target)
    # PAX: long names and large ids without GNU extensions; no times but the mtime are recorded.
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(entries, key=lambda e: e.path):
            info = _tar_info(entry)
            if info.type != tarfile.REGTYPE:
                tar.addfile(info)
            elif entry.data is not None:
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                with _source(entry).open("rb") as data:
                    tar.addfile(info, data)
    return "sha256:" + stream.sha256.hexdigest()


def config_json(config: ImageConfig, diff_ids: list[str], history: list[str]) -> bytes:
    """The image config: platform, run settings and the layers' ``diff_ids``; canonical JSON."""
    settings: dict[str, object] = {"WorkingDir": config.working_dir}
    if config.entrypoint:
        settings["Entrypoint"] = list(config.entrypoint)
    if config.cmd:
        settings["Cmd"] = list(config.cmd)
    if config.env:
        settings["Env"] = list(config.env)
    if config.user:
        settings["User"] = config.user
    if config.exposed_ports:
        settings["ExposedPorts"] = {port: {} for port in config.exposed_ports}
    if config.labels:
        settings["Labels"] = dict(config.labels)
    document = {
        "architecture": ARCHITECTURE,
        "os": OS,
        "created": "1970-01-01T00:00:00Z",
        "config": settings,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": step} for step in history],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def manifest_json(config_name: str, ref: str, layer_names: list[str]) -> bytes:
    """``manifest.json`` of a one-image archive tagged REF."""
    document = [{"Config": config_name, "RepoTags": [ref], "Layers": layer_names}]
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def image_id(config: bytes) -> str:
    """The image ID: the digest of its config."""
    return "sha256:" + hashlib.sha256(config).hexdigest()


def archive_entries(ref: str, config: bytes, layers: list[LayerBlob]) -> list[LayerEntry]:
    """The archive's own entries: config, one directory per layer with its tar, manifest."""
    config_name = f"{image_id(config).removeprefix('sha256:')}.json"
    entries = [
        LayerEntry(config_name, "file", 0o644, data=config),
        LayerEntry(
            "manifest.json",
            "file",
            0o644,
            data=manifest_json(config_name, ref, [f"{layer.hex}/layer.tar" for layer in layers]),
        ),
    ]
    for layer in {layer.hex: layer for layer in layers}.values():
        entries.append(LayerEntry(layer.hex, "dir", 0o755))
        entries.append(LayerEntry(f"{layer.hex}/layer.tar", "file", 0o644, source=layer.path))
    return entries


def write_archive(
    ref: str,
    config: ImageConfig,
    layers: list[LayerBlob],
    history: list[str],
    target: BinaryIO,
) -> str:
    """Write the archive of one image to TARGET; return its image ID."""
    document = config_json(config, [layer.digest for layer in layers], history)
    write_layer(archive_entries(ref, document, layers), target)
    return image_id(document)


@dataclass(frozen=True)
class ArchivedImage:
    """What a one-image archive holds: its ref, image ID and layer digests."""

    ref: str
    image_id: str
    diff_ids: tuple[str, ...]


def read_archive(archive: Path) -> ArchivedImage:
    """The ref, image ID and layers of a one-image archive (for listing and importing)."""
    with tarfile.open(archive) as tar:
        manifest_member = tar.extractfile("manifest.json")
        if manifest_member is None:
            raise ValueError(f"{archive} has no manifest.json")
        (manifest,) = json.loads(manifest_member.read())
        config_member = tar.extractfile(manifest["Config"])
        if config_member is None:
            raise ValueError(f"{archive} lacks its config {manifest['Config']}")
        config_bytes = config_member.read()
    (ref,) = manifest["RepoTags"]
    diff_ids = json.loads(config_bytes)["rootfs"]["diff_ids"]
    return ArchivedImage(str(ref), image_id(config_bytes), tuple(str(d) for d in diff_ids))
