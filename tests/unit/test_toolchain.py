"""The toolchain pins one Kubernetes version and builds nothing when the cache is current."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dataproduct_operator.cluster import toolchain
from dataproduct_operator.errors import MissingToolsError


def test_kubernetes_is_1_34_or_newer() -> None:
    versions = toolchain.read_versions()
    major, minor = (int(part) for part in versions.kubernetes.lstrip("v").split(".")[:2])
    assert (major, minor) >= (1, 34)


def test_every_staging_module_is_pinned_to_the_matching_version() -> None:
    versions = toolchain.read_versions()
    staging = "v0." + versions.kubernetes.split(".", 1)[1]
    replaces = re.findall(r"^\s*(k8s\.io/\S+) => (\S+) (v\S+)$", toolchain.GO_MOD.read_text(), re.M)
    assert len(replaces) > 20
    assert {version for _, _, version in replaces} == {staging}
    assert all(module == target for module, target, _ in replaces)


def test_go_sum_is_committed_beside_go_mod() -> None:
    assert toolchain.GO_SUM.stat().st_size > 0


def _without_go_env(tmp_path: Path) -> dict[str, str]:
    """An environment where `go` is not on PATH, the cache is empty and nothing is provided."""
    env = {k: v for k, v in os.environ.items() if k not in ("DPO_BIN_DIR", "KUBEBUILDER_ASSETS")}
    empty = tmp_path / "empty-path"
    empty.mkdir(exist_ok=True)
    env["PATH"] = str(empty)
    env["XDG_CACHE_HOME"] = str(tmp_path / "empty-cache")
    return env


@pytest.mark.parametrize(
    "command", [["cluster", "up", "--dir", "CLUSTER"], ["tools", "build"]], ids=["up", "build"]
)
def test_without_go_or_prebuilt_binaries_one_clear_message_names_both_ways_out(
    tmp_path: Path, command: list[str]
) -> None:
    args = [str(tmp_path / "c") if part == "CLUSTER" else part for part in command]
    result = subprocess.run(
        [sys.executable, "-m", "dataproduct_operator", *args],
        capture_output=True,
        text=True,
        env=_without_go_env(tmp_path),
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Go is not installed" in result.stderr
    assert "kube-apiserver" in result.stderr
    assert "KUBEBUILDER_ASSETS" in result.stderr
    assert "make tools" in result.stderr


def _fake_current_cache(cache: Path) -> Path:
    versions = toolchain.read_versions()
    bin_dir = cache / "dataproduct-operator" / "bin" / versions.kubernetes
    bin_dir.mkdir(parents=True)
    for tool in toolchain.tools_for(versions).values():
        binary = bin_dir / tool.name
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
        stamp = bin_dir / ".stamps" / tool.name
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(toolchain._fingerprint(tool) + "\n")
    return bin_dir


def test_current_cache_builds_nothing_and_needs_no_go(tmp_path: Path) -> None:
    env = _without_go_env(tmp_path)
    bin_dir = _fake_current_cache(Path(env["XDG_CACHE_HOME"]))
    result = subprocess.run(
        [sys.executable, "-m", "dataproduct_operator", "tools", "build"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"Tools up to date in {bin_dir}" in result.stderr


def test_outdated_stamp_needs_a_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    bin_dir = _fake_current_cache(tmp_path)
    tools = toolchain.tools_for(toolchain.read_versions())
    assert toolchain.is_current(tools["etcd"], bin_dir)
    (bin_dir / ".stamps" / "etcd").write_text("built-from-an-older-go.mod\n")
    assert not toolchain.is_current(tools["etcd"], bin_dir)
    (bin_dir / "kwok").unlink()
    assert not toolchain.is_current(tools["kwok"], bin_dir)


def test_kubebuilder_assets_are_used_and_missing_parts_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("etcd", "kube-apiserver", "kubectl"):  # what envtest ships
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.delenv("DPO_BIN_DIR", raising=False)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    monkeypatch.setenv("PATH", "/nonexistent")
    assert toolchain.require_binaries(("etcd", "kube-apiserver")) == {
        "etcd": tmp_path / "etcd",
        "kube-apiserver": tmp_path / "kube-apiserver",
    }
    with pytest.raises(MissingToolsError) as missing:
        toolchain.require_binaries(toolchain.CONTROL_PLANE_TOOLS)
    message = str(missing.value)
    assert "kube-controller-manager, kube-scheduler, kwok" in message
    assert f"KUBEBUILDER_ASSETS={tmp_path}" in message


def test_dpo_bin_dir_wins_over_kubebuilder_assets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DPO_BIN_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path / "envtest"))
    source = toolchain.binary_source()
    assert (source.directory, source.provided_by) == (tmp_path / "mine", "DPO_BIN_DIR")


def test_kubernetes_binaries_carry_the_version_stamp() -> None:
    versions = toolchain.read_versions()
    apiserver = toolchain.tools_for(versions)["kube-apiserver"]
    assert f"-X k8s.io/component-base/version.gitVersion={versions.kubernetes}" in (
        apiserver.ldflags
    )
