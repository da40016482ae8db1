"""The seed of the real node's images (cluster/node_images.py): planted as hard links but for
the databases containerd writes in place, which are copied, and the instance's own uuid; named
by the images it holds and the containerd it was made for."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dataproduct_operator.cluster import node_images
from dataproduct_operator.cluster.image_archive import ArchivedImage


def _seed(root: Path) -> Path:
    for relative, text in (
        ("io.containerd.content.v1.content/blobs/sha256/abc", "layer"),
        ("io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs/bin/sh", "shell"),
        ("io.containerd.metadata.v1.bolt/meta.db", "images"),
        ("io.containerd.snapshotter.v1.overlayfs/metadata.db", "snapshots"),
        ("io.containerd.grpc.v1.introspection/uuid", "seed-uuid"),
    ):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_planting_links_the_layers_and_copies_what_containerd_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node_images, "seeds_dir", lambda: tmp_path / "seeds")
    seed = _seed(tmp_path / "seed")
    root = tmp_path / "node" / "containerd"
    root.parent.mkdir()
    node_images.plant(seed, root)
    for linked in (
        "io.containerd.content.v1.content/blobs/sha256/abc",
        "io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs/bin/sh",
    ):
        assert (root / linked).stat().st_ino == (seed / linked).stat().st_ino, linked
    for relative in node_images.WRITTEN_IN_PLACE:
        assert (root / relative).read_text() == (seed / relative).read_text()
        assert (root / relative).stat().st_ino != (seed / relative).stat().st_ino, relative
    assert not (root / "io.containerd.grpc.v1.introspection/uuid").exists()
    assert (seed / "io.containerd.grpc.v1.introspection/uuid").read_text() == "seed-uuid"


def test_a_missing_seed_is_an_error_the_node_answers_by_importing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node_images, "seeds_dir", lambda: tmp_path / "seeds")
    with pytest.raises(OSError):
        node_images.plant(tmp_path / "absent", tmp_path / "root")
    assert not (tmp_path / "root").exists()


def test_the_seed_is_named_by_its_images_and_containerds_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = {
        Path("pause.tar"): ArchivedImage("localhost/p:1", "sha256:1", ()),
        Path("runner.tar"): ArchivedImage("localhost/r:1", "sha256:2", ()),
    }
    monkeypatch.setattr(node_images.image_archive, "read_archive", found.__getitem__)
    key = node_images.seed_key([Path("pause.tar"), Path("runner.tar")], "containerd 1.6.20")
    assert key == node_images.seed_key([Path("runner.tar"), Path("pause.tar")], "containerd 1.6.20")
    assert key != node_images.seed_key([Path("pause.tar")], "containerd 1.6.20")
    assert key != node_images.seed_key(list(found), "containerd 2.0.0")
    found[Path("runner.tar")] = ArchivedImage("localhost/r:1", "sha256:3", ())
    assert key != node_images.seed_key(list(found), "containerd 1.6.20")


def test_a_new_seed_keeps_the_one_used_last_and_drops_older_ones_and_unfinished_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = tmp_path / "seeds"
    monkeypatch.setattr(node_images, "seeds_dir", lambda: seeds)
    for age, name in enumerate(["newest", "older", "oldest"]):
        (seeds / name / node_images.ROOT).mkdir(parents=True)
        os.utime(seeds / name, (1_000_000 - age, 1_000_000 - age))
    (seeds / ".build-x").mkdir()
    node_images._prune()
    assert sorted(entry.name for entry in seeds.iterdir()) == ["newest"]
