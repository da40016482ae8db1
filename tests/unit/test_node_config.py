"""The real node's configuration (cluster/node_config.py): containerd's TOML, the CNI network,
the KubeletConfiguration and the command lines, read back as their programs read them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from dataproduct_operator.cluster.node_config import (
    NODE_TYPE_LABEL,
    REAL_NODE_NAME,
    NodeLayout,
    NodeSettings,
    bridge_commands,
    cni_config,
    containerd_config,
    gateway,
    guard_ruleset,
    guard_table,
    kubelet_command,
    kubelet_config_yaml,
    node_id,
)

LONG = Path("/var/lib/pytest-of-root/pytest-1234/a-rather-long-test-directory-name0/cluster")
SETTINGS = NodeSettings(
    pause_image="localhost/dataproduct-operator/pause:0.1.0",
    subnet="10.89.7.0/24",
    kubelet_port=40001,
    kubelet_healthz_port=40002,
    ca_file=Path("/c/pki/ca.crt"),
    serving_cert=Path("/c/pki/kubelet-serving.crt"),
    serving_key=Path("/c/pki/kubelet-serving.key"),
)


def test_every_cluster_directory_gets_its_own_short_names() -> None:
    one, other = NodeLayout(LONG), NodeLayout(LONG.with_name("other"))
    assert one.id == node_id(LONG) and one.id != other.id
    assert len(one.id) == 8
    # A unix socket path holds at most 107 bytes; a bridge name at most 15 characters.
    assert len(str(one.containerd_socket).encode()) < 108
    assert len(one.bridge) <= 15
    assert one.cgroup_root == f"/dpo-node-{one.id}"
    assert one.directory == LONG / "node"


def test_containerd_config_restricts_oom_adjustment_and_keeps_everything_of_its_own() -> None:
    layout = NodeLayout(LONG)
    config = tomllib.loads(containerd_config(layout, SETTINGS))
    assert config["version"] == 2
    assert config["root"] == str(layout.containerd_root)
    assert config["state"] == str(layout.containerd_state)
    assert config["grpc"]["address"] == str(layout.containerd_socket)
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == SETTINGS.pause_image
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["cni"]["conf_dir"] == str(layout.cni_config_dir)
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False


def test_pods_get_a_bridge_of_their_own_with_the_machine_at_its_gateway() -> None:
    layout = NodeLayout(LONG)
    (bridge,) = cni_config(layout, SETTINGS)["plugins"]
    assert bridge["bridge"] == layout.bridge
    assert bridge["isGateway"] is True and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.89.7.0/24"}]]
    assert bridge["ipam"]["dataDir"] == str(layout.cni_data_dir)
    assert gateway("10.89.7.0/24") == "10.89.7.1"


def test_the_bridge_is_made_with_the_address_the_cni_plugin_gives_its_gateway() -> None:
    layout = NodeLayout(LONG)
    assert bridge_commands(layout, "10.89.7.0/24") == [
        ["link", "add", "name", layout.bridge, "type", "bridge"],
        ["addr", "add", "10.89.7.1/24", "dev", layout.bridge],
        ["link", "set", layout.bridge, "up"],
    ]


def test_only_the_bridge_and_loopback_reach_the_gateways_address() -> None:
    layout = NodeLayout(LONG)
    rules = guard_ruleset(layout, "10.89.7.0/24")
    assert guard_table(layout) == f"dpo-node-{layout.id}"
    assert rules.startswith(f"table inet dpo-node-{layout.id} {{\n")
    assert "type filter hook input priority filter; policy accept;" in rules
    dropped = [line.strip() for line in rules.splitlines() if line.strip().endswith("drop")]
    assert dropped == [f'ip daddr 10.89.7.1 iifname != {{ "lo", "{layout.bridge}" }} drop']


def test_the_kubelet_admits_only_the_clusters_certificates_and_is_tainted() -> None:
    layout = NodeLayout(LONG)
    config = yaml.safe_load(kubelet_config_yaml(layout, SETTINGS))
    assert config["kind"] == "KubeletConfiguration"
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authentication"]["x509"]["clientCAFile"] == "/c/pki/ca.crt"
    assert config["readOnlyPort"] == 0
    assert (config["address"], config["port"]) == ("127.0.0.1", 40001)
    assert config["cgroupDriver"] == "cgroupfs" and config["cgroupRoot"] == layout.cgroup_root
    assert config["failCgroupV1"] is False and config["failSwapOn"] is False
    assert config["imageGCHighThresholdPercent"] == 100  # the images cannot be pulled again
    assert config["registerWithTaints"] == [
        {"key": NODE_TYPE_LABEL, "value": "real", "effect": "NoSchedule"}
    ]
    assert config["containerRuntimeEndpoint"] == f"unix://{layout.containerd_socket}"
    # The containers' logs are the node's, removed with it by teardown.
    assert Path(config["podLogsDir"]).parent == layout.data
    command = kubelet_command(Path("/bin/kubelet"), layout)
    assert f"--hostname-override={REAL_NODE_NAME}" in command
    assert f"--node-labels={NODE_TYPE_LABEL}=real" in command
