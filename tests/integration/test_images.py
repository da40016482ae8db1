"""The images `make images` builds, imported into a containerd of the test's own and run there.

The containerd is a throw-away one (root, state and socket in a temporary directory, its CRI
plugin set as the real node's is, ``restrict_oom_score_adj``), so nothing here touches a node
that may be running. Its archives come from the cache `make images` fills: a missing or
outdated one fails with that target named, as a missing containerd names what installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataproduct_operator import __version__
from dataproduct_operator.cluster import image_archive, images
from dataproduct_operator.cluster.process import tail
from tests.helpers import wait_for

NAMESPACE = "k8s.io"  # the CRI's, where the node's kubelet looks for images


def _containerd_config(directory: Path) -> str:
    return f"""version = 2
root = "{directory / "root"}"
state = "{directory / "state"}"

[grpc]
  address = "{directory / "containerd.sock"}"

[ttrpc]
  address = "{directory / "containerd-ttrpc.sock"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{images.image_spec("pause").ref}"
  # This machine kind lacks CAP_SYS_RESOURCE: see ../shared/notes/real-node.md.
  restrict_oom_score_adj = true
"""


class Containerd:
    """A running throw-away containerd and ``ctr`` against it; its containers' cgroups go
    under a parent of its own (removed at the end), not the CRI's."""

    def __init__(self, ctr: Path, address: Path) -> None:
        self.ctr_binary = ctr
        self.address = address
        self.cgroup_parent = f"dpo-images-test-{uuid.uuid4().hex[:8]}"

    def run_command(self, ref: str, name: str, *args: str) -> list[str]:
        """``ctr run --rm`` of REF as a new container; ARGS replace the image's command."""
        container = f"{name}-{uuid.uuid4().hex[:8]}"
        return [
            str(self.ctr_binary), "--address", str(self.address), "-n", NAMESPACE,
            "run", "--rm", "--cgroup", f"/{self.cgroup_parent}/{container}", ref, container, *args,
        ]  # fmt: skip

    def remove_cgroup_parent(self) -> None:
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            parent = hierarchy / self.cgroup_parent
            if parent.is_dir():
                parent.rmdir()

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.ctr_binary), "--address", str(self.address), "-n", NAMESPACE, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def import_built(self, name: str) -> str:
        """Import the image's archive from the cache; its ref."""
        spec = images.image_spec(name)
        assert images.built(name), (
            f"The {name} image's archive {spec.archive} is missing or outdated: run `make images`"
        )
        images.import_images(self.ctr_binary, self.address, [spec.archive])
        return spec.ref


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    binaries = {name: shutil.which(name) for name in ("containerd", "ctr", "runc")}
    missing = [name for name, path in binaries.items() if path is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: install Debian's containerd and runc "
            "(`make tools` installs them, as root)"
        )
    assert os.geteuid() == 0, "containerd needs root (mounts, namespaces): run the tests as root"
    directory = tmp_path_factory.mktemp("containerd")
    config = directory / "config.toml"
    config.write_text(_containerd_config(directory))
    log = directory / "containerd.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [str(binaries["containerd"]), "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    daemon = Containerd(Path(str(binaries["ctr"])), directory / "containerd.sock")
    try:

        def serving() -> bool:
            if process.poll() is not None:
                pytest.fail(f"containerd exited ({process.returncode}):\n{tail(log)}")
            return daemon.ctr("version", timeout=10).returncode == 0

        wait_for(serving, timeout=30, description="containerd serving")
        yield daemon
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        daemon.remove_cgroup_parent()


def _run(
    containerd: Containerd, ref: str, name: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        containerd.run_command(ref, name, *args),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize("name", images.ALL_IMAGES)
def test_the_image_imports_under_its_ref_for_the_cri_once(
    containerd: Containerd, name: str
) -> None:
    spec = images.image_spec(name)
    image_id = image_archive.read_archive(spec.archive).image_id
    containerd.ctr("images", "rm", spec.ref, image_id)  # another test may have imported it
    assert images.built(name), f"{spec.archive} is missing or outdated: run `make images`"
    first = images.import_images(containerd.ctr_binary, containerd.address, [spec.archive])
    assert first == images.ImportResult(imported=(spec.ref,), present=())

    def listed() -> list[str] | None:
        refs = containerd.ctr("images", "ls", "-q").stdout.split()
        # The CRI plugin adds a ref by image ID to each image it has taken in: the kubelet's view.
        return refs if {spec.ref, image_id} <= set(refs) else None

    wait_for(listed, timeout=30, description=f"{spec.ref} and {image_id} listed")
    again = images.import_images(containerd.ctr_binary, containerd.address, [spec.archive])
    assert again == images.ImportResult(imported=(), present=(spec.ref,))


def test_the_toolbox_runs_a_shell_command(containerd: Containerd) -> None:
    ref = containerd.import_built("toolbox")
    result = _run(containerd, ref, "toolbox", "sh", "-c", "echo hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"


def test_pause_holds_its_container_until_sigterm_then_exits_zero(containerd: Containerd) -> None:
    ref = containerd.import_built("pause")
    command = containerd.run_command(ref, "pause")
    container = command[-1]
    with subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as running:
        try:

            def task_running() -> bool:
                tasks = containerd.ctr("tasks", "ls").stdout.splitlines()
                return any(line.split()[:1] == [container] and "RUNNING" in line for line in tasks)

            wait_for(task_running, timeout=30, description="the pause task running")
            killed = containerd.ctr("tasks", "kill", "--signal", "SIGTERM", container)
            assert killed.returncode == 0, killed.stderr
            assert running.wait(timeout=30) == 0
        finally:
            if running.poll() is None:
                containerd.ctr("tasks", "kill", "--signal", "SIGKILL", container)
                running.wait(timeout=30)


@pytest.mark.parametrize("name", ["operator", "runner"])
def test_the_debian_images_run_dpo_from_their_venv_as_user_65532(
    containerd: Containerd, name: str
) -> None:
    ref = containerd.import_built(name)
    result = _run(containerd, ref, name, "sh", "-c", "id -u; id -g; dpo --version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["65532", "65532", f"dpo, version {__version__}"]
