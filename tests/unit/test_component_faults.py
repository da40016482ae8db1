"""Pausing, resuming and restarting a recorded component, on a stand-in process (no cluster)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from dataproduct_operator.cluster import controlplane
from dataproduct_operator.cluster.components import Layout
from dataproduct_operator.cluster.process import (
    ComponentProcess,
    command_line,
    is_paused,
    is_running,
    start_process,
    stop_process,
)
from dataproduct_operator.errors import UserError
from tests.helpers import wait_for

SLEEP = shutil.which("sleep") or "/bin/sleep"


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory whose state records two stand-in components, as ``up`` records them."""
    layout = Layout(tmp_path)
    processes = [
        start_process(name, [SLEEP, seconds], layout.log(name))
        for name, seconds in (("etcd", "301"), ("kube-apiserver", "302"))
    ]
    state = {"version": 1, "components": [asdict(process) for process in processes]}
    layout.state.write_text(json.dumps(state))
    yield tmp_path
    controlplane.down(tmp_path)
    for process in processes:
        stop_process(process, grace_seconds=1)


def recorded(directory: Path) -> list[ComponentProcess]:
    state = json.loads(Layout(directory).state.read_text())
    return [ComponentProcess(**entry) for entry in state["components"]]


def test_a_paused_component_is_resumed_when_the_block_ends(cluster_dir: Path) -> None:
    with controlplane.paused(cluster_dir, "kube-apiserver") as process:
        assert is_paused(process)
        assert not is_paused(controlplane.component(cluster_dir, "etcd"))
    assert is_running(process)
    assert not is_paused(process)


def test_a_paused_component_is_resumed_when_the_block_fails(cluster_dir: Path) -> None:
    with pytest.raises(RuntimeError), controlplane.paused(cluster_dir, "etcd") as process:
        raise RuntimeError("the test failed while etcd was paused")
    assert not is_paused(process)


def test_a_paused_component_stops_at_sigterm_without_waiting_for_sigkill(
    cluster_dir: Path,
) -> None:
    with controlplane.paused(cluster_dir, "etcd") as process:
        # A grace period longer than the test's timeout: SIGKILL would come too late.
        assert stop_process(process, grace_seconds=600)
        assert not is_running(process)


def test_a_restarted_component_runs_its_command_line_again_and_is_recorded(
    cluster_dir: Path,
) -> None:
    before = controlplane.component(cluster_dir, "etcd")
    argv = command_line(before)
    assert argv == [SLEEP, "301"]

    after = controlplane.restart_component(cluster_dir, "etcd")

    assert after.pid != before.pid
    assert not is_running(before)
    assert command_line(after) == argv
    assert [p.name for p in recorded(cluster_dir)] == ["etcd", "kube-apiserver"], "order kept"
    assert recorded(cluster_dir)[0] == after
    assert controlplane.down(cluster_dir) == ["kube-apiserver", "etcd"]
    wait_for(lambda: not is_running(after), timeout=5, description="the new etcd to stop")


def test_inside_stopped_the_component_is_not_running_and_starts_after(cluster_dir: Path) -> None:
    with controlplane.stopped(cluster_dir, "kube-apiserver"):
        assert [p.name for p in controlplane.running_components(cluster_dir)] == ["etcd"]
    assert command_line(controlplane.component(cluster_dir, "kube-apiserver")) == [SLEEP, "302"]


def test_a_component_that_is_not_running_is_named(cluster_dir: Path) -> None:
    with pytest.raises(UserError, match="No component kwok is running in"):
        controlplane.component(cluster_dir, "kwok")
    with (
        pytest.raises(UserError, match="No component kwok"),
        controlplane.paused(cluster_dir, "kwok"),
    ):
        pass
