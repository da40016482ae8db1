"""The real node's configuration files and command lines (layer ``cluster``, pure).

The local cluster can run a real node beside kwok's simulated one: Debian's containerd (with
runc and the CNI plugins) and a kubelet built from the pinned Kubernetes module. Everything of
it lives under the cluster's directory (``NodeLayout``) but what must be short or system-wide:
containerd's sockets and state in ``/run/dpo-node-<id>`` and the kubelet's root (it makes
sockets in it) in ``/var/lib/dpo-node-<id>`` (a unix socket path has at most 107 bytes), the
cgroup root ``/dpo-node-<id>`` in every hierarchy, and the bridge ``dpo<id>``, where ``<id>``
is a hash of the cluster's directory, so two clusters on one machine never share any of them.

The node is named ``localhost``: the kubelet listens on 127.0.0.1 and the API server reaches
it by the node's host name (``kubectl logs``, ``exec``). It carries the label and the taint
``datamesh.dev/node-type=real``: pods run there only when they tolerate it (the operator's
``--pipeline-node-selector`` and ``--pipeline-toleration``), and everything else keeps running
on kwok's node, as before.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REAL_NODE_NAME = "localhost"
NODE_TYPE_LABEL = "datamesh.dev/node-type"
REAL_NODE_TYPE = "real"
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
CNI_NETWORK = "dpo-pods"
RUNTIME_BASE = Path("/run")
DATA_BASE = Path("/var/lib")
IMAGE_NAMESPACE = "k8s.io"  # containerd's namespace of the CRI


def node_id(cluster_directory: Path) -> str:
    """Eight hex digits naming this cluster's node-wide things."""
    return hashlib.sha256(str(cluster_directory.resolve()).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class NodeLayout:
    """Where the real node of the cluster in ``root`` keeps everything."""

    root: Path  # the cluster's directory

    @property
    def id(self) -> str:
        return node_id(self.root)

    @property
    def directory(self) -> Path:
        return self.root / "node"

    @property
    def runtime(self) -> Path:
        """Sockets and containerd's state (short paths, tmpfs)."""
        return RUNTIME_BASE / f"dpo-node-{self.id}"

    @property
    def containerd_socket(self) -> Path:
        return self.runtime / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.directory / "containerd.toml"

    @property
    def containerd_root(self) -> Path:
        return self.directory / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.runtime / "state"

    @property
    def cni_config_dir(self) -> Path:
        return self.directory / "cni"

    @property
    def cni_data_dir(self) -> Path:
        """host-local's record of the addresses it handed out."""
        return self.directory / "cni-ipam"

    @property
    def data(self) -> Path:
        """The kubelet's root, short too: it makes sockets in it (pod resources, plugins)."""
        return DATA_BASE / f"dpo-node-{self.id}"

    @property
    def kubelet_root(self) -> Path:
        return self.data / "kubelet"

    @property
    def pod_logs(self) -> Path:
        """The containers' logs (``kubectl logs``): the node's own, removed with it (the
        kubelet's default, /var/log/pods, outlives every cluster)."""
        return self.data / "pod-logs"

    @property
    def kubelet_config(self) -> Path:
        return self.directory / "kubelet-config.yaml"

    @property
    def kubelet_kubeconfig(self) -> Path:
        return self.directory / "kubelet.kubeconfig"

    @property
    def resolv_conf(self) -> Path:
        """An empty resolv.conf for the pods: there is no cluster DNS, and nothing in a pod
        may resolve a name through the machine's resolver."""
        return self.directory / "resolv.conf"

    @property
    def cgroup_root(self) -> str:
        return f"/dpo-node-{self.id}"

    @property
    def bridge(self) -> str:
        return f"dpo{self.id}"  # 11 characters: within IFNAMSIZ


@dataclass(frozen=True)
class NodeSettings:
    """What the node's files and commands depend on besides its layout."""

    pause_image: str
    subnet: str  # the pods' /24, e.g. 10.89.7.0/24
    kubelet_port: int
    kubelet_healthz_port: int
    ca_file: Path
    serving_cert: Path
    serving_key: Path


def containerd_config(layout: NodeLayout, settings: NodeSettings) -> str:
    """containerd's config (version 2, containerd 1.6 and later) as TOML text.

    ``restrict_oom_score_adj``: without CAP_SYS_RESOURCE (a VM may lack it) runc cannot lower a
    sandbox's oom_score_adj and every sandbox fails; with it, containerd never asks for a lower
    one. The pods' network namespaces are mounted under containerd's state directory, in the
    node's runtime directory (so teardown finds them)."""

    def quoted(value: object) -> str:
        return json.dumps(str(value))

    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return "\n".join([
        "version = 2",
        f"root = {quoted(layout.containerd_root)}",
        f"state = {quoted(layout.containerd_state)}",
        "",
        "[grpc]",
        f"  address = {quoted(layout.containerd_socket)}",
        "",
        "[ttrpc]",
        f"  address = {quoted(layout.runtime / 'containerd.sock.ttrpc')}",
        "",
        "[debug]",
        '  address = ""',
        "",
        "[metrics]",
        '  address = ""',
        "",
        f"[{cri}]",
        f"  sandbox_image = {quoted(settings.pause_image)}",
        "  restrict_oom_score_adj = true",
        "  enable_selinux = false",
        "  netns_mounts_under_state_dir = true",
        "",
        f"[{cri}.containerd]",
        '  snapshotter = "overlayfs"',
        '  default_runtime_name = "runc"',
        "",
        f"[{cri}.containerd.runtimes.runc]",
        '  runtime_type = "io.containerd.runc.v2"',
        "",
        f"[{cri}.containerd.runtimes.runc.options]",
        "  SystemdCgroup = false",
        "",
        f"[{cri}.cni]",
        f"  bin_dir = {quoted(CNI_BIN_DIR)}",
        f"  conf_dir = {quoted(layout.cni_config_dir)}",
        "  max_conf_num = 1",
        "",
    ])  # fmt: skip


def cni_config(layout: NodeLayout, settings: NodeSettings) -> dict[str, Any]:
    """A bridge on the node's own subnet; the bridge is the pods' gateway (so a pod reaches a
    server of the machine at the gateway's address), no masquerading, no DNS."""
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": layout.bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(layout.cni_data_dir),
                    "ranges": [[{"subnet": settings.subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
        ],
    }


def gateway(subnet: str) -> str:
    """The bridge's address: the first of the subnet (host-local gives it to the gateway)."""
    network = subnet.split("/", maxsplit=1)[0].rsplit(".", 1)[0]
    return f"{network}.1"


def bridge_commands(layout: NodeLayout, subnet: str) -> list[list[str]]:
    """``ip`` argv that make the node's bridge with the gateway's address, up. ``dpo cluster
    up`` runs them before PostgreSQL starts, so the server can bind the gateway's address; the
    CNI plugin later finds the bridge with exactly the address it would give it, and keeps it."""
    prefix = subnet.split("/", maxsplit=1)[1]
    return [
        ["link", "add", "name", layout.bridge, "type", "bridge"],
        ["addr", "add", f"{gateway(subnet)}/{prefix}", "dev", layout.bridge],
        ["link", "set", layout.bridge, "up"],
    ]


def guard_table(layout: NodeLayout) -> str:
    """The name of the node's nftables table (family inet)."""
    return f"dpo-node-{layout.id}"


def guard_ruleset(layout: NodeLayout, subnet: str) -> str:
    """nftables rules (``nft -f``) that keep the gateway's address to the node's pods and the
    machine itself. Linux accepts a packet for any of its addresses on any interface, so without
    them a neighbour on the machine's own network could route to the gateway through it and
    reach what listens there (PostgreSQL): only packets from the bridge or loopback get in."""
    return "\n".join([
        f"table inet {guard_table(layout)} {{",
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
        f'    ip daddr {gateway(subnet)} iifname != {{ "lo", "{layout.bridge}" }} drop',
        "  }",
        "}",
        "",
    ])  # fmt: skip


def kubelet_config(layout: NodeLayout, settings: NodeSettings) -> dict[str, Any]:
    """The kubelet's KubeletConfiguration: x509 clients of the cluster's CA only (no anonymous
    access, no read-only port), cgroupfs on cgroup v1 or v2 with a cgroup root of its own, no
    image garbage collection (images come from archives, not a registry: nothing could pull
    them again), low eviction thresholds (a developer's machine, not a production node)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "127.0.0.1",
        "port": settings.kubelet_port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": settings.kubelet_healthz_port,
        "tlsCertFile": str(settings.serving_cert),
        "tlsPrivateKeyFile": str(settings.serving_key),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(settings.ca_file)},
        },
        # Only certificates of the cluster's CA get in at all (the API server's, the admin's).
        "authorization": {"mode": "AlwaysAllow"},
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "podLogsDir": str(layout.pod_logs),
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": layout.cgroup_root,
        "cgroupsPerQOS": True,
        "failCgroupV1": False,
        "failSwapOn": False,
        "resolvConf": str(layout.resolv_conf),
        "registerNode": True,
        "registerWithTaints": [
            {"key": NODE_TYPE_LABEL, "value": REAL_NODE_TYPE, "effect": "NoSchedule"}
        ],
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "serializeImagePulls": False,
        "maxPods": 110,
        "podPidsLimit": 4096,
    }


def kubelet_command(kubelet: Path, layout: NodeLayout) -> list[str]:
    return [
        str(kubelet),
        f"--config={layout.kubelet_config}",
        f"--kubeconfig={layout.kubelet_kubeconfig}",
        f"--root-dir={layout.kubelet_root}",
        f"--hostname-override={REAL_NODE_NAME}",
        f"--node-labels={NODE_TYPE_LABEL}={REAL_NODE_TYPE}",
        "--v=1",
    ]


def containerd_command(containerd: Path, layout: NodeLayout) -> list[str]:
    return [str(containerd), f"--config={layout.containerd_config}", "--log-level=warn"]


def kubelet_config_yaml(layout: NodeLayout, settings: NodeSettings) -> str:
    return yaml.safe_dump(kubelet_config(layout, settings), sort_keys=False)
