"""Command lines of the control-plane components (layer ``cluster``, pure).

Given the directory layout, the chosen ports and the binaries, :func:`build_commands` returns
the exact argv of each component, in start order. Keeping this pure makes the flags easy to
read, test and change in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SERVICE_CIDR = "10.0.0.0/24"
POD_CIDR = "10.244.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
NODE_LEASE_SECONDS = 40

COMPONENT_ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


@dataclass(frozen=True)
class Ports:
    """The loopback ports the components listen on, chosen free at start."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int


@dataclass(frozen=True)
class Layout:
    """Where everything of one local cluster lives, under its directory."""

    root: Path

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd-data"

    @property
    def component_kubeconfigs(self) -> Path:
        return self.root / "kubeconfigs"

    @property
    def kwok_config(self) -> Path:
        return self.root / "kwok-stages.yaml"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def cert(self, name: str) -> Path:
        return self.pki / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.pki / f"{name}.key"

    def component_kubeconfig(self, component: str) -> Path:
        return self.component_kubeconfigs / f"{component}.kubeconfig"


def build_commands(layout: Layout, ports: Ports, binaries: dict[str, Path]) -> dict[str, list[str]]:
    """argv of every component, keyed by name, in start order."""
    pki = layout.pki
    etcd_url = f"https://127.0.0.1:{ports.etcd_client}"
    peer_url = f"http://127.0.0.1:{ports.etcd_peer}"
    commands: dict[str, list[str]] = {
        "etcd": [
            str(binaries["etcd"]),
            "--name=dpo-local",
            f"--data-dir={layout.etcd_data}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=dpo-local={peer_url}",
            f"--cert-file={layout.cert('etcd-server')}",
            f"--key-file={layout.key('etcd-server')}",
            f"--trusted-ca-file={pki / 'ca.crt'}",
            "--client-cert-auth=true",
            # A throw-away test cluster: durability is not worth an fsync per write.
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            str(binaries["kube-apiserver"]),
            f"--etcd-servers={etcd_url}",
            f"--etcd-cafile={pki / 'ca.crt'}",
            f"--etcd-certfile={layout.cert('apiserver-etcd-client')}",
            f"--etcd-keyfile={layout.key('apiserver-etcd-client')}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports.apiserver}",
            f"--tls-cert-file={layout.cert('apiserver')}",
            f"--tls-private-key-file={layout.key('apiserver')}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki / 'service-account.pub'}",
            f"--service-account-signing-key-file={pki / 'service-account.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # The real node's kubelet (logs, exec): reached by the node's name, `localhost`,
            # with a client certificate, its serving certificate checked against the CA.
            f"--kubelet-client-certificate={layout.cert('apiserver-kubelet-client')}",
            f"--kubelet-client-key={layout.key('apiserver-kubelet-client')}",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            "--kubelet-preferred-address-types=Hostname,InternalIP",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
        ],
        "kube-controller-manager": [
            str(binaries["kube-controller-manager"]),
            f"--kubeconfig={layout.component_kubeconfig('kube-controller-manager')}",
            f"--authentication-kubeconfig={layout.component_kubeconfig('kube-controller-manager')}",
            f"--authorization-kubeconfig={layout.component_kubeconfig('kube-controller-manager')}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.controller_manager}",
            f"--tls-cert-file={layout.cert('controller-manager-serving')}",
            f"--tls-private-key-file={layout.key('controller-manager-serving')}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-account-private-key-file={pki / 'service-account.key'}",
            "--use-service-account-credentials=true",
            # PVCs of the default StorageClass bind through the in-tree hostpath provisioner.
            "--enable-hostpath-provisioner=true",
            # The default 20 requests/s per controller makes the volume controller, not the API
            # server, the limit of how fast claims bind (about 4 claims/s).
            "--kube-api-qps=500",
            "--kube-api-burst=1000",
            # A quota counts a custom resource (count/dataproducts.datamesh.dev) only from the
            # first full resync after discovery has found its CRD; on a fresh cluster that is 5
            # minutes away by default, and the API server refuses the quota's objects until then.
            "--resource-quota-sync-period=10s",
            f"--cluster-cidr={POD_CIDR}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--leader-elect=false",
            "--v=1",
        ],
        "kube-scheduler": [
            str(binaries["kube-scheduler"]),
            f"--kubeconfig={layout.component_kubeconfig('kube-scheduler')}",
            f"--authentication-kubeconfig={layout.component_kubeconfig('kube-scheduler')}",
            f"--authorization-kubeconfig={layout.component_kubeconfig('kube-scheduler')}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.scheduler}",
            f"--tls-cert-file={layout.cert('scheduler-serving')}",
            f"--tls-private-key-file={layout.key('scheduler-serving')}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--leader-elect=false",
            "--v=1",
        ],
        "kwok": [
            str(binaries["kwok"]),
            f"--kubeconfig={layout.component_kubeconfig('kwok')}",
            f"--config={layout.kwok_config}",
            f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
            f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
            f"--cidr={POD_CIDR}",
            "--node-ip=127.0.0.1",
        ],
    }
    return {name: commands[name] for name in COMPONENT_ORDER}


def fake_node(name: str) -> dict[str, object]:
    """A Node that kwok manages: it reports Ready and runs pods scheduled to it."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {FAKE_NODE_ANNOTATION: "fake"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "1000"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "1000"},
        },
    }


def default_storage_class() -> dict[str, object]:
    """StorageClass ``standard``: the default, served by the hostpath provisioner."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "standard",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kubernetes.io/host-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": True,
    }
