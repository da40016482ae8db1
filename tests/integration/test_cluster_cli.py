"""`dpo cluster up/down` as a user runs them: ready, reachable, and gone without a trace."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from dataproduct_operator.cluster import postgres, toolchain
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
    up = run_dpo(dpo_command, "cluster", "up", "--node", "kwok", "--dir", str(directory))
    try:
        assert up.returncode == 0, up.stderr
        assert "Control plane ready in" in up.stderr
        assert "postgres                 ready after" in up.stderr
        readyz = run_kubectl(kubectl_binary, directory / "kubeconfig", "get", "--raw", "/readyz")
        assert readyz.stdout == "ok"
        for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kwok", "postgres"):
            assert (directory / "logs" / f"{component}.log").is_file()
        assert "database system is ready" in (directory / "logs" / "postgres.log").read_text()
        # PostgreSQL's files are outside a pytest directory (its user cannot enter one).
        assert len(processes_mentioning(str(directory))) == 5
        server_files = json.loads((directory / "state.json").read_text())["postgres"]["server"]
        assert len(processes_mentioning(server_files)) == 1

        again = run_dpo(dpo_command, "cluster", "up", "--node", "kwok", "--dir", str(directory))
        assert again.returncode == 1
        assert "already running" in again.stderr
        assert "Traceback" not in again.stderr
    finally:
        down = run_dpo(dpo_command, "cluster", "down", "--dir", str(directory))
    assert down.returncode == 0, down.stderr
    assert (
        "Stopped postgres, kwok, kube-scheduler, kube-controller-manager, kube-apiserver, etcd"
        in down.stderr
    )
    assert processes_mentioning(str(directory)) == []
    assert processes_mentioning(server_files) == []
    assert not Path(server_files).exists()


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

    result = run_dpo(
        dpo_command, "cluster", "up", "--node", "kwok", "--dir", str(directory), env=env
    )

    assert result.returncode == 1
    assert "kube-scheduler exited during start with code 3" in result.stderr
    assert "cannot load scheduler configuration" in result.stderr
    assert "Traceback" not in result.stderr
    assert processes_mentioning(str(directory)) == []


def _without_kubelet(tmp_path: Path) -> dict[str, str]:
    """An environment whose tools directory has the control plane's binaries, no kubelet."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, path in toolchain.require_binaries(toolchain.CONTROL_PLANE_TOOLS).items():
        (bin_dir / name).symlink_to(path)
    env = {**os.environ, "DPO_BIN_DIR": str(bin_dir)}
    env.pop("KUBEBUILDER_ASSETS", None)
    return env


def test_a_real_node_that_cannot_run_is_refused_saying_why_or_left_out_when_asked_for_auto(
    dpo_command: list[str], tmp_path: Path
) -> None:
    directory = tmp_path / "cluster"
    env = _without_kubelet(tmp_path)
    refused = run_dpo(dpo_command, "cluster", "up", "--node", "real", "--dir", str(directory),
                      env=env)  # fmt: skip
    assert refused.returncode == 1
    assert "The real node cannot run here: the kubelet is not built (run `make tools`)" in (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr
    assert processes_mentioning(str(directory)) == []

    auto = run_dpo(dpo_command, "cluster", "up", "--dir", str(directory), env=env)
    try:
        assert auto.returncode == 0, auto.stderr
        assert (
            "The real node is not started, pods run on kwok's simulated node only: the kubelet "
            "is not built (run `make tools`)" in auto.stderr
        )
        components = json.loads((directory / "state.json").read_text())["components"]
        assert [c["name"] for c in components if c["name"] in ("kubelet", "containerd")] == []
        assert "kwok" in [c["name"] for c in components]
    finally:
        down = run_dpo(dpo_command, "cluster", "down", "--dir", str(directory), env=env)
    assert down.returncode == 0, down.stderr
    assert processes_mentioning(str(directory)) == []


def test_failing_postgres_is_named_with_its_log_and_the_others_are_stopped(
    dpo_command: list[str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Where the server's user can run programs from (a pytest directory it cannot enter).
    bin_dir = Path(tempfile.mkdtemp(prefix="dpo-test-postgres-bin-"))
    request.addfinalizer(lambda: shutil.rmtree(bin_dir))
    bin_dir.chmod(0o755)
    real = postgres.find_binaries()
    (bin_dir / "initdb").symlink_to(real.initdb)
    broken = bin_dir / "postgres"
    broken.write_text(f"""#!/bin/sh
case "$1" in --boot|--single|-V|--version) exec {real.postgres} "$@";; esac
echo 'FATAL:  could not create shared memory segment' >&2
exit 2
""")
    broken.chmod(0o755)
    directory = tmp_path / "cluster"
    env = {**os.environ, postgres.BIN_DIR_VARIABLE: str(bin_dir)}

    result = run_dpo(
        dpo_command, "cluster", "up", "--node", "kwok", "--dir", str(directory), env=env
    )

    assert result.returncode == 1
    assert "postgres exited during start with code 2" in result.stderr
    assert "could not create shared memory segment" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Stopped kwok, kube-scheduler, kube-controller-manager, kube-apiserver, etcd" in (
        result.stderr
    )
    assert processes_mentioning(str(directory)) == []


def test_missing_postgres_says_how_to_install_it_before_starting_anything(
    dpo_command: list[str], tmp_path: Path
) -> None:
    directory = tmp_path / "cluster"
    env = {**os.environ, postgres.BIN_DIR_VARIABLE: str(tmp_path / "nowhere")}

    result = run_dpo(
        dpo_command, "cluster", "up", "--node", "kwok", "--dir", str(directory), env=env
    )

    assert result.returncode == 1
    assert "PostgreSQL is not installed" in result.stderr
    assert "make tools" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (directory / "state.json").exists()


def test_ctrl_c_during_up_stops_what_was_started(dpo_command: list[str], tmp_path: Path) -> None:
    directory = tmp_path / "cluster"
    # Started as a background job of a script is: with SIGINT ignored (kept across exec).
    # Ctrl-C must still clean up.
    ignoring = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    ignoring += "os.execv(sys.argv[1], sys.argv[1:])"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            ignoring,
            *dpo_command,
            "cluster",
            "up",
            "--node",
            "kwok",
            "--dir",
            str(directory),
        ],
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
