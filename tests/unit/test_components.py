"""Component command lines: secure, on loopback, with the controllers the tests rely on."""

from __future__ import annotations

from pathlib import Path

import yaml

from dataproduct_operator.cluster.components import (
    COMPONENT_ORDER,
    Layout,
    Ports,
    build_commands,
    default_storage_class,
    fake_node,
)
from dataproduct_operator.cluster.controlplane import KWOK_STAGES

PORTS = Ports(
    etcd_client=2001, etcd_peer=2002, apiserver=6443, controller_manager=2003, scheduler=2004
)
LAYOUT = Layout(Path("/c"))
BINARIES = {name: Path(f"/bin/{name}") for name in COMPONENT_ORDER}


def _flags(component: str) -> dict[str, str]:
    argv = build_commands(LAYOUT, PORTS, BINARIES)[component]
    return dict(arg.removeprefix("--").split("=", 1) for arg in argv[1:])


def test_components_start_in_dependency_order() -> None:
    commands = build_commands(LAYOUT, PORTS, BINARIES)
    assert list(commands) == [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    ]
    assert all(argv[0] == f"/bin/{name}" for name, argv in commands.items())


def test_apiserver_serves_tls_on_loopback_with_rbac_and_token_signing() -> None:
    flags = _flags("kube-apiserver")
    assert flags["bind-address"] == "127.0.0.1"
    assert flags["secure-port"] == "6443"
    assert "RBAC" in flags["authorization-mode"].split(",")
    assert flags["service-account-signing-key-file"] == "/c/pki/service-account.key"
    assert flags["etcd-servers"] == "https://127.0.0.1:2001"
    # The default admission plugins (ValidatingAdmissionPolicy among them) stay untouched.
    assert "enable-admission-plugins" not in flags
    assert "disable-admission-plugins" not in flags


def test_etcd_requires_client_certificates() -> None:
    flags = _flags("etcd")
    assert flags["client-cert-auth"] == "true"
    assert flags["listen-client-urls"] == "https://127.0.0.1:2001"


def test_controller_manager_provisions_hostpath_volumes_and_signs_tokens() -> None:
    flags = _flags("kube-controller-manager")
    assert flags["enable-hostpath-provisioner"] == "true"
    assert flags["service-account-private-key-file"] == "/c/pki/service-account.key"
    assert "controllers" not in flags  # the default set: gc, namespace, job, cronjob, ...
    assert flags["secure-port"] == "2003"


def test_kwok_manages_only_annotated_fake_nodes() -> None:
    flags = _flags("kwok")
    node = fake_node("n")
    key, value = flags["manage-nodes-with-annotation-selector"].split("=")
    assert node["metadata"]["annotations"] == {key: value}  # type: ignore[index]


def test_kwok_stages_cover_nodes_and_the_pod_lifecycle() -> None:
    stages = list(yaml.safe_load_all(KWOK_STAGES.read_text()))
    assert [stage["metadata"]["name"] for stage in stages] == [
        "node-initialize",
        "pod-ready",
        "pod-fail",
        "pod-complete",
        "pod-delete",
    ]
    assert all(stage["kind"] == "Stage" for stage in stages)


def test_standard_is_the_default_storage_class_with_immediate_binding() -> None:
    storage_class = default_storage_class()
    assert storage_class["metadata"] == {
        "name": "standard",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    }
    assert storage_class["volumeBindingMode"] == "Immediate"
