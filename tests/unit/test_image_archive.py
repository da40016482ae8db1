"""The image archive writer: what `docker save` writes and `ctr images import` reads, the same
bytes for the same inputs; and the images' specs, configs and fingerprints."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from dataproduct_operator import __version__
from dataproduct_operator.cli import main
from dataproduct_operator.cluster import image_archive, images
from dataproduct_operator.cluster.image_archive import ImageConfig, LayerBlob, LayerEntry
from dataproduct_operator.errors import ImageBuildError, UserError
from tests.dockerfile import read_stages, runs

CONFIG = ImageConfig(entrypoint=("dpo",), cmd=("run",), env=("A=1",), user="65532:65532")


def _tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "bin" / "alias").symlink_to("tool")
    (root / "bin" / "same").hardlink_to(root / "bin" / "tool")
    (root / "dev").mkdir()
    (root / "dev" / "stray").write_text("left out")
    (root / "etc").mkdir()
    (root / "etc" / "hostname").write_text("")
    return root


def _archive(tmp_path: Path, tree: Path, name: str) -> tuple[bytes, str]:
    entries = image_archive.entries_from_directory(tree, exclude_contents_of=frozenset({"dev"}))
    layer_path = tmp_path / f"{name}-layer.tar"
    with layer_path.open("wb") as stream:
        digest = image_archive.write_layer(entries, stream)
    target = io.BytesIO()
    identity = image_archive.write_archive(
        "localhost/x/y:1", CONFIG, [LayerBlob(layer_path, digest)], ["made"], target
    )
    return target.getvalue(), identity


def test_the_archive_names_its_config_and_layers_by_their_digests(tmp_path: Path) -> None:
    data, identity = _archive(tmp_path, _tree(tmp_path / "tree"), "a")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        (manifest,) = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        config_bytes = tar.extractfile(manifest["Config"]).read()  # type: ignore[union-attr]
        (layer_name,) = manifest["Layers"]
        layer = tar.extractfile(layer_name).read()  # type: ignore[union-attr]
    assert manifest["RepoTags"] == ["localhost/x/y:1"]
    assert manifest["Config"] == f"{hashlib.sha256(config_bytes).hexdigest()}.json"
    assert identity == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    config = json.loads(config_bytes)
    layer_digest = hashlib.sha256(layer).hexdigest()
    assert layer_name == f"{layer_digest}/layer.tar"
    assert config["rootfs"] == {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]}
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    assert config["config"] == {
        "Entrypoint": ["dpo"],
        "Cmd": ["run"],
        "Env": ["A=1"],
        "User": "65532:65532",
        "WorkingDir": "/",
    }


def test_a_layer_is_sorted_owned_by_root_with_one_time_and_keeps_links(tmp_path: Path) -> None:
    data, _ = _archive(tmp_path, _tree(tmp_path / "tree"), "a")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        (manifest,) = json.loads(archive.extractfile("manifest.json").read())  # type: ignore[union-attr]
        layer = archive.extractfile(manifest["Layers"][0]).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names == ["bin", "bin/alias", "bin/same", "bin/tool", "dev", "etc", "etc/hostname"]
    assert {(m.uid, m.gid, m.mtime, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    by_name = {m.name: m for m in members}
    assert by_name["bin/alias"].issym() and by_name["bin/alias"].linkname == "tool"
    # The first path of a hard-linked file carries the data; the later one links to it.
    assert by_name["bin/same"].isfile() and by_name["bin/same"].size == len(
        b"#!/bin/sh\necho tool\n"
    )
    assert by_name["bin/tool"].islnk() and by_name["bin/tool"].linkname == "bin/same"
    assert by_name["bin/same"].mode == 0o755


def test_the_same_inputs_give_the_same_image_id_built_anywhere_at_any_time(tmp_path: Path) -> None:
    first, first_id = _archive(tmp_path, _tree(tmp_path / "one"), "one")
    second_tree = _tree(tmp_path / "two")
    for path in second_tree.rglob("*"):
        if not path.is_symlink():
            path.touch()  # other times, another directory: the same image
    second, second_id = _archive(tmp_path, second_tree, "two")
    assert first_id == second_id
    assert first == second
    (second_tree / "bin" / "tool").write_bytes(b"changed")
    _, changed_id = _archive(tmp_path, second_tree, "three")
    assert changed_id != first_id


def test_owners_and_times_are_kept_only_when_asked(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    kept = image_archive.entries_from_directory(tree, keep_mtimes=True, keep_owners=True)
    tool = next(e for e in kept if e.path == "bin/same")
    assert tool.mtime == int((tree / "bin" / "same").stat().st_mtime) != 0


def test_a_prefix_places_the_tree_under_it_with_its_directories(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    entries = image_archive.entries_from_directory(tree, prefix="opt/dpo")
    paths = [e.path for e in entries]
    assert paths[:3] == ["opt", "opt/dpo", "opt/dpo/bin"]
    assert all(p == "opt" or p.startswith("opt/dpo") for p in paths)


def test_the_toolbox_links_every_applet_to_busybox() -> None:
    entries = images.toolbox_entries(b"ELF", ["bin/sh", "usr/bin/awk", "bin/busybox", "sbin/ip"])
    by_path = {e.path: e for e in entries}
    assert by_path["bin/busybox"].data == b"ELF"
    assert {p for p, e in by_path.items() if e.kind == "symlink"} == {
        "bin/sh",
        "usr/bin/awk",
        "sbin/ip",
    }
    assert {e.link for e in entries if e.kind == "symlink"} == {"/bin/busybox"}
    assert {"usr", "usr/bin", "sbin", "tmp"} <= {p for p, e in by_path.items() if e.kind == "dir"}
    assert by_path["tmp"].mode == 0o1777


def test_image_specs_name_the_repository_the_version_and_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    spec = images.image_spec("pause")
    assert spec.ref == f"localhost/dataproduct-operator/pause:{__version__}"
    assert spec.archive == tmp_path / "dataproduct-operator" / "images" / "pause.tar"
    with pytest.raises(UserError, match="the images are pause, toolbox, runner, operator"):
        images.image_spec("nginx")


def test_an_image_is_built_only_while_its_stamp_matches_its_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    spec = images.image_spec("pause")
    assert not images.built("pause")
    spec.archive.parent.mkdir(parents=True)
    spec.archive.write_bytes(b"archive")
    images._write_stamp(spec.archive, images.fingerprint("pause"))
    assert images.built("pause")
    source = tmp_path / "pause.c"
    source.write_text(images.PAUSE_SOURCE.read_text() + "\n/* changed */\n")
    monkeypatch.setattr(images, "PAUSE_SOURCE", source)
    assert not images.built("pause")


def test_the_project_s_fingerprint_leaves_out_the_local_cluster_and_bytecode() -> None:
    files = images.project_files()
    assert images.REPO_ROOT / "pyproject.toml" in files
    assert any(p.name == "cli.py" for p in files)
    assert not [p for p in files if "cluster" in p.relative_to(images.REPO_ROOT).parts]
    assert not [p for p in files if p.suffix == ".pyc"]


def test_the_debian_images_run_as_the_dockerfile_says() -> None:
    dockerfile = images.DOCKERFILE.read_text()
    operator, runner = images.CONFIGS["operator"], images.CONFIGS["runner"]
    assert f"USER {operator.user}" in dockerfile
    assert runner.user == operator.user == "65532:65532"
    assert operator.entrypoint == ("dpo",) and operator.cmd == ("run",)
    assert runner.entrypoint == ("dpo", "pipeline", "run")
    assert f"ARG PYTHON_DEB={images.python_pin()}" in dockerfile
    assert images.CONFIGS["pause"].entrypoint == ("/pause",)
    assert images.CONFIGS["toolbox"].cmd == ("sh",) and not images.CONFIGS["toolbox"].entrypoint


def test_an_entry_without_data_or_source_is_refused() -> None:
    with pytest.raises(ValueError, match="neither data nor a source"):
        image_archive.write_layer([LayerEntry("x", "file", 0o644)], io.BytesIO())


def test_a_hard_link_never_precedes_the_path_carrying_its_data(tmp_path: Path) -> None:
    # Walked top-down, a/z comes before a/b/deep; in the tar, a/b/deep comes first.
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "z").write_text("shared")
    (tmp_path / "a" / "b" / "deep").hardlink_to(tmp_path / "a" / "z")
    entries = image_archive.entries_from_directory(tmp_path)
    by_path = {e.path: e for e in entries}
    assert by_path["a/b/deep"].kind == "file"
    assert (by_path["a/z"].kind, by_path["a/z"].link) == ("hardlink", "a/b/deep")


def test_only_a_statically_linked_busybox_will_do() -> None:
    # A 64-bit ELF header whose one program header starts at byte 64.
    ident = b"\x7fELF\x02\x01\x01" + bytes(0x19) + (64).to_bytes(8, "little")
    header = bytearray(ident.ljust(64, b"\0"))
    header[0x36:0x38] = (56).to_bytes(2, "little")
    header[0x38:0x3A] = (1).to_bytes(2, "little")
    load = (1).to_bytes(4, "little").ljust(56, b"\0")  # PT_LOAD only: static
    interp = (3).to_bytes(4, "little").ljust(56, b"\0")  # PT_INTERP: dynamic
    assert images.is_static_elf(bytes(header) + load)
    assert not images.is_static_elf(bytes(header) + interp)
    assert not images.is_static_elf(b"#!/bin/sh\n")


def test_images_list_shows_every_ref_and_that_nothing_is_built_in_an_empty_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["images", "list"])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.output.splitlines()]
    assert [(row[0], row[1]) for row in rows] == [
        (f"localhost/dataproduct-operator/{name}:{__version__}", "missing")
        for name in images.ALL_IMAGES
    ]


def test_the_venv_is_built_by_the_dockerfile_s_build_stage_steps_in_its_order() -> None:
    build_stage = read_stages()[1]
    dockerfile_steps = [
        " ".join(step.split())
        for command in runs(build_stage)
        if "apt-get" not in command
        for step in command.split("&&")
    ]
    ours = [
        " ".join(step.replace(" --no-compile", "").split())
        for step in images._venv_script([]).split("&&")
    ]
    positions = [ours.index(step) for step in dockerfile_steps]
    assert positions == sorted(positions)
    # Only the bytecode step is added, besides changing into the context's copy.
    assert set(ours) - set(dockerfile_steps) == {
        "cd /src",
        "python3.11 -m compileall -q --invalidation-mode unchecked-hash /opt/dpo/lib",
    }
    extra = images._venv_script(["duckdb.lock"])
    assert extra.index("-r requirements/runtime.lock") < extra.index("-r requirements/duckdb.lock")
    assert extra.index("-r requirements/duckdb.lock") < extra.index("/wheels/*.whl")


def test_an_archive_reads_back_as_its_ref_image_id_and_layers(tmp_path: Path) -> None:
    data, identity = _archive(tmp_path, _tree(tmp_path / "tree"), "a")
    archive = tmp_path / "image.tar"
    archive.write_bytes(data)
    image = image_archive.read_archive(archive)
    assert (image.ref, image.image_id) == ("localhost/x/y:1", identity)
    layer = hashlib.sha256((tmp_path / "a-layer.tar").read_bytes()).hexdigest()
    assert image.diff_ids == (f"sha256:{layer}",)


def test_only_the_opt_dpo_layers_of_current_images_stay_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    layers = images.images_dir() / "layers"
    layers.mkdir(parents=True)
    current = layers / images._venv_layer_name("runner")
    stale = layers / "dpo-0000000000000000.tar"
    base = layers / "debian-base.tar"
    for layer in (current, stale, base):
        layer.write_bytes(b"tar")
        layer.with_suffix(".digest").write_text("sha256:x\n")
    images._prune_venv_layers()
    assert sorted(p.name for p in layers.iterdir()) == sorted(
        [current.name, current.with_suffix(".digest").name, "debian-base.tar", "debian-base.digest"]
    )


def test_the_debian_images_refuse_to_build_without_root_and_say_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(images.os, "geteuid", lambda: 1000)
    with pytest.raises(ImageBuildError, match=r"needs root .* run `make images` as root"):
        images.build_images(("runner",), out=io.StringIO())
    assert not images.image_spec("runner").archive.exists()
