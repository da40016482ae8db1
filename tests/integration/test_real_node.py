"""The local cluster's real node (cluster/node.py): pods really run there, with logs through
the API server, termination messages, exit codes and memory limits; kwok's node keeps the rest;
and `dpo cluster down` leaves nothing behind, even after every component was SIGKILLed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dataproduct_operator.cluster import controlplane, images
from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.cluster.node import NodeMode, cgroup_mounts
from dataproduct_operator.cluster.node_config import (
    NODE_TYPE_LABEL,
    REAL_NODE_NAME,
    REAL_NODE_TYPE,
    NodeLayout,
    guard_table,
)
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.helpers import wait_for
from tests.integration.test_cluster_cli import processes_mentioning
from tests.products import OperatorProcess, get_if_present, product_path

REAL = {NODE_TYPE_LABEL: REAL_NODE_TYPE}
TOLERATE_REAL = [
    {"key": NODE_TYPE_LABEL, "operator": "Equal", "value": REAL_NODE_TYPE, "effect": "NoSchedule"}
]


def job(name: str, script: str, *, real: bool = True, memory: str | None = None) -> dict[str, Any]:
    """A Job of one toolbox container running ``script`` as the pipelines run (non-root,
    read-only root filesystem, no capabilities), on the real node unless ``real`` is False."""
    container: dict[str, Any] = {
        "name": "main",
        "image": images.image_spec("toolbox").ref,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", script],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if memory:
        container["resources"] = {"limits": {"memory": memory}}
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
    }
    if real:
        pod |= {"nodeSelector": REAL, "tolerations": TOLERATE_REAL}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": pod}},
    }


def run_job(kube: BlockingClient, namespace: str, document: dict[str, Any]) -> dict[str, Any]:
    """Create the Job and wait for its pod to end; the pod."""
    wait_for(
        lambda: kube.exists(f"/api/v1/namespaces/{namespace}/serviceaccounts/default"),
        timeout=30,
        description="the namespace's default ServiceAccount",
    )
    kube.create(f"/apis/batch/v1/namespaces/{namespace}/jobs", document)
    name = document["metadata"]["name"]

    def ended() -> dict[str, Any] | None:
        pods = kube.get(
            f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": f"job-name={name}"}
        )["items"]
        done = [p for p in pods if p["status"].get("phase") in ("Succeeded", "Failed")]
        return done[0] if done else None

    pod: dict[str, Any] = wait_for(ended, timeout=60, description=f"Job {name}'s pod to end")
    return pod


def terminated(pod: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    return state


def test_the_real_node_is_ready_beside_kwoks_and_tainted(
    control_plane: ClusterInfo, kube: BlockingClient
) -> None:
    assert control_plane.real_node == REAL_NODE_NAME
    node = kube.get(f"/api/v1/nodes/{REAL_NODE_NAME}")
    assert node["metadata"]["labels"][NODE_TYPE_LABEL] == REAL_NODE_TYPE
    assert {"key": NODE_TYPE_LABEL, "value": REAL_NODE_TYPE, "effect": "NoSchedule"} in (
        node["spec"]["taints"]
    )
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert kube.get(f"/api/v1/nodes/{controlplane.NODE_NAME}")  # kwok's is still there


def test_a_job_runs_there_with_its_logs_and_termination_message(
    kube: BlockingClient, namespace: str
) -> None:
    script = 'echo "running as $(id -u)"; echo \'{"rowsWritten": 3}\' > /dev/termination-log'
    pod = run_job(kube, namespace, job("hello", script))
    assert pod["spec"]["nodeName"] == REAL_NODE_NAME
    assert pod["status"]["phase"] == "Succeeded"
    assert terminated(pod)["message"].strip() == '{"rowsWritten": 3}'
    # The API server fetches the log from the kubelet, with its client certificate.
    log = kube.raw("GET", f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}/log")
    assert log == (200, b"running as 65532\n")


def test_a_failing_command_and_a_memory_limit_fail_the_job_saying_why(
    kube: BlockingClient, namespace: str
) -> None:
    failed = run_job(kube, namespace, job("fails", "echo broken >&2; exit 3"))
    assert failed["status"]["phase"] == "Failed"
    assert terminated(failed)["exitCode"] == 3
    # Grows a shell variable far past the limit: the kernel kills it, the kubelet says so.
    hog = "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo ${#x}"
    killed = run_job(kube, namespace, job("hog", hog, memory="32Mi"))
    assert killed["status"]["phase"] == "Failed"
    assert terminated(killed)["reason"] == "OOMKilled"


def test_pods_without_the_toleration_stay_on_kwoks_node(
    kube: BlockingClient, namespace: str
) -> None:
    # An image no node has: only kwok's node "runs" it.
    document = job("simulated", "true", real=False)
    document["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.local/none:1"
    pod = run_job(kube, namespace, document)
    assert pod["spec"]["nodeName"] == controlplane.NODE_NAME


def test_the_operators_placement_runs_a_products_pipeline_on_the_real_node(
    kube: BlockingClient, domain: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    placement = (
        f"--pipeline-node-selector={NODE_TYPE_LABEL}={REAL_NODE_TYPE}",
        f"--pipeline-toleration={NODE_TYPE_LABEL}={REAL_NODE_TYPE}:NoSchedule",
    )
    operator = OperatorProcess(operator_kubeconfig, tmp_path / "operator.log", extra=placement)
    try:
        product = {
            "apiVersion": "datamesh.dev/v1alpha1",
            "kind": "DataProduct",
            "metadata": {
                "name": "orders",
                "namespace": domain,
                "annotations": {"datamesh.dev/run": "load"},
            },
            "spec": {
                "domain": domain,
                "owner": {"team": f"{domain}-team"},
                "description": "Orders, loaded by a shell pipeline.",
                "outputPorts": [{"name": "orders-v1"}],
                "pipelines": [{
                    "name": "load",
                    "image": images.image_spec("toolbox").ref,
                    "command": ["sh", "-c", "echo ok"],
                }],
            },
        }  # fmt: skip
        kube.create(f"/apis/datamesh.dev/v1alpha1/namespaces/{domain}/dataproducts", product)

        def succeeded() -> dict[str, Any] | None:
            found = get_if_present(kube, product_path(domain, "orders"))
            runs = (found or {}).get("status", {}).get("pipelines", [])
            done = [r for r in runs if r["name"] == "load" and r["lastRunStatus"] == "Succeeded"]
            return found if done else None

        wait_for(succeeded, timeout=90, description="the on-demand run to succeed")
        (pod,) = kube.get(
            f"/api/v1/namespaces/{domain}/pods",
            query={"labelSelector": "datamesh.dev/pipeline=load"},
        )["items"]
        assert pod["spec"]["nodeName"] == REAL_NODE_NAME
        log = kube.raw("GET", f"/api/v1/namespaces/{domain}/pods/{pod['metadata']['name']}/log")
        assert log == (200, b"ok\n")
    finally:
        operator.stop()


# --- a cluster of its own: teardown ----------------------------------------------------------


def _leftovers(directory: Path) -> dict[str, Any]:
    layout = NodeLayout(directory)
    roots = (str(layout.directory), str(layout.runtime), str(layout.data))
    mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    return {
        "processes": processes_mentioning(str(directory))
        + processes_mentioning(str(layout.containerd_socket)),
        "mounts": [line for line in mountinfo if any(root in line for root in roots)],
        "bridge": Path(f"/sys/class/net/{layout.bridge}").exists(),
        "nftables": guard_table(layout) in _nft_tables(),
        "cgroups": [
            str(mount)
            for mount in cgroup_mounts()
            if (mount / layout.cgroup_root.lstrip("/")).exists()
        ],
        "runtime": layout.runtime.exists() or layout.data.exists(),
    }


NOTHING_LEFT = {
    "processes": [],
    "mounts": [],
    "bridge": False,
    "nftables": False,
    "cgroups": [],
    "runtime": False,
}


def _nft_tables() -> str:
    return subprocess.run(
        [shutil.which("nft") or "/usr/sbin/nft", "list", "tables"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def _kill_all(directory: Path) -> None:
    """SIGKILL every component of the cluster, as a machine's OOM killer or a crash would."""
    for component in controlplane.running_components(directory):
        os.kill(component.pid, signal.SIGKILL)
    wait_for(
        lambda: not controlplane.running_components(directory),
        timeout=10,
        description="every component to die",
    )


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "cluster"
    yield directory
    controlplane.down(directory)


def test_down_after_every_component_was_killed_leaves_nothing_and_up_works_again(
    own_cluster: Path,
) -> None:
    info = controlplane.up(own_cluster, node_mode=NodeMode.REAL)
    with BlockingClient.from_kubeconfig(info.kubeconfig) as kube:
        kube.create("/api/v1/namespaces", {"metadata": {"name": "work"}})
        # A pod that keeps running: its mounts, network namespace and cgroups exist.
        document = job("sleeper", "sleep 600")
        wait_for(
            lambda: kube.exists("/api/v1/namespaces/work/serviceaccounts/default"),
            timeout=30,
            description="the default ServiceAccount",
        )
        kube.create("/apis/batch/v1/namespaces/work/jobs", document)

        def running() -> bool:
            pods = kube.get("/api/v1/namespaces/work/pods")["items"]
            return any(p["status"].get("phase") == "Running" for p in pods)

        wait_for(running, timeout=60, description="the sleeper to run")
    assert _leftovers(own_cluster)["mounts"]  # something to clean up
    assert _leftovers(own_cluster)["nftables"]
    _kill_all(own_cluster)

    controlplane.down(own_cluster)
    assert _leftovers(own_cluster) == NOTHING_LEFT
    # Killed again, this time without `down`: the next `up` cleans up first.
    info = controlplane.up(own_cluster, node_mode=NodeMode.REAL)
    assert info.real_node == REAL_NODE_NAME
    _kill_all(own_cluster)
    again = controlplane.up(own_cluster, node_mode=NodeMode.REAL)
    assert again.real_node == REAL_NODE_NAME
    controlplane.down(own_cluster)
    assert _leftovers(own_cluster) == NOTHING_LEFT
