"""`dpo cluster up/down` as a user runs them: ready, reachable, and gone without a trace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from dataproduct_operator.cluster import toolchain
from tests.clusters import run_kubectl
from tests.helpers import wait_for


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (zombies excluded)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if text in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


def run_dpo(
    dpo_command: list[str], *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*dpo_command, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )


def test_up_serves_readyz_and_down_leaves_no_process_behind(
    dpo_command: list[str], tmp_path: Path, kubectl_binary: Path
) -> None:
    directory = tmp_path / "cluster"
    up = run_dpo(dpo_command, "cluster", "up", "--dir", str(directory))
    try:
        assert up.returncode == 0, up.stderr
        assert "Control plane ready in" in up.stderr
        readyz = run_kubectl(kubectl_binary, directory / "kubeconfig", "get", "--raw", "/readyz")
        assert readyz.stdout == "ok"
        for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kwok"):
            assert (directory / "logs" / f"{component}.log").is_file()
        assert len(processes_mentioning(str(directory))) == 5

        again = run_dpo(dpo_command, "cluster", "up", "--dir", str(directory))
        assert again.returncode == 1
        assert "already running" in again.stderr
        assert "Traceback" not in again.stderr
    finally:
        down = run_dpo(dpo_command, "cluster", "down", "--dir", str(directory))
    assert down.returncode == 0, down.stderr
    assert "Stopped kwok, kube-scheduler, kube-controller-manager, kube-apiserver, etcd" in (
        down.stderr
    )
    assert processes_mentioning(str(directory)) == []


def test_down_without_a_running_cluster_says_so_and_succeeds(
    dpo_command: list[str], tmp_path: Path
) -> None:
    result = run_dpo(dpo_command, "cluster", "down", "--dir", str(tmp_path))
    assert result.returncode == 0
    assert "No cluster is running" in result.stderr


def test_failing_component_is_named_with_its_log_and_the_others_are_stopped(
    dpo_command: list[str], tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real = toolchain.require_binaries(toolchain.CONTROL_PLANE_TOOLS)
    for name, path in real.items():
        (bin_dir / name).symlink_to(path)
    (bin_dir / "kube-scheduler").unlink()
    broken = bin_dir / "kube-scheduler"
    broken.write_text("#!/bin/sh\necho 'E0101 cannot load scheduler configuration' >&2\nexit 3\n")
    broken.chmod(0o755)
    directory = tmp_path / "cluster"
    env = {**os.environ, "DPO_BIN_DIR": str(bin_dir)}
    env.pop("KUBEBUILDER_ASSETS", None)

    result = run_dpo(dpo_command, "cluster", "up", "--dir", str(directory), env=env)

    assert result.returncode == 1
    assert "kube-scheduler exited during start with code 3" in result.stderr
    assert "cannot load scheduler configuration" in result.stderr
    assert "Traceback" not in result.stderr
    assert processes_mentioning(str(directory)) == []


def test_ctrl_c_during_up_stops_what_was_started(dpo_command: list[str], tmp_path: Path) -> None:
    directory = tmp_path / "cluster"
    # Started as a background job of a script is: with SIGINT ignored (kept across exec).
    # Ctrl-C must still clean up.
    ignoring = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    ignoring += "os.execv(sys.argv[1], sys.argv[1:])"
    process = subprocess.Popen(
        [sys.executable, "-c", ignoring, *dpo_command, "cluster", "up", "--dir", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def started_apiserver() -> bool:
            state = json.loads((directory / "state.json").read_text())
            return any(c["name"] == "kube-apiserver" for c in state["components"])

        wait_for(started_apiserver, interval=0.05, description="up to start kube-apiserver")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "Interrupted" in stderr
    assert processes_mentioning(str(directory)) == []
