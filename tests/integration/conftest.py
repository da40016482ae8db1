"""Fixtures for tests against a real local control plane.

One control plane per test session (``dpo cluster up`` in a temporary directory), a fresh
namespace per test, and kubeconfigs for named ServiceAccounts obtained through TokenRequest so a
test can act as a non-admin identity.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dataproduct_operator.cluster import controlplane, toolchain
from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.k8s.kubeconfig import Connection, write_kubeconfig
from dataproduct_operator.k8s.rest import ApiError, RestClient
from tests.helpers import wait_for

REPO = Path(__file__).resolve().parents[2]
KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory needs the control plane."""
    for item in items:
        if "tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    """A running control plane shared by the whole session; stopped at the end."""
    directory = tmp_path_factory.mktemp("control-plane")
    info = controlplane.up(directory)
    try:
        yield info
    finally:
        controlplane.down(directory)


@pytest.fixture(scope="session")
def kube(control_plane: ClusterInfo) -> Iterator[RestClient]:
    """A cluster-admin REST client."""
    with RestClient.from_kubeconfig(control_plane.kubeconfig) as client:
        yield client


@pytest.fixture(scope="session")
def kubectl_binary() -> Path:
    return toolchain.require_binaries(("kubectl",))["kubectl"]


def run_kubectl(
    binary: Path, kubeconfig: Path, *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run kubectl as a user would; on failure show what it printed."""
    result = subprocess.run(
        [str(binary), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


@pytest.fixture(scope="session")
def kubectl(control_plane: ClusterInfo, kubectl_binary: Path) -> KubectlRunner:
    """Run kubectl as cluster admin: ``kubectl("get", "pods", "-n", ns)``."""

    def runner(
        *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_kubectl(
            kubectl_binary, control_plane.kubeconfig, *args, check=check, stdin=stdin
        )

    return runner


def _namespace_name(test_name: str) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"t-{stem}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(kube: RestClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    name = _namespace_name(request.node.name)
    kube.create("/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    try:
        kube.delete(f"/api/v1/namespaces/{name}")
    except ApiError as error:
        if error.status != 404:
            raise


ServiceAccountKubeconfig = Callable[[str, str], Path]


@pytest.fixture
def service_account_kubeconfig(
    kube: RestClient, control_plane: ClusterInfo, tmp_path: Path
) -> ServiceAccountKubeconfig:
    """``factory(namespace, name)``: a kubeconfig acting as that ServiceAccount.

    The ServiceAccount is created if missing; its token comes from the TokenRequest API.
    """

    def factory(namespace: str, name: str) -> Path:
        try:
            kube.create(
                f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": name}}
            )
        except ApiError as error:
            if error.status != 409:
                raise
        token_request = kube.create(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600},
            },
        )
        connection = Connection(
            control_plane.server,
            kube.connection.ca_pem,
            token=token_request["status"]["token"],
        )
        path = tmp_path / f"{namespace}-{name}.kubeconfig"
        return write_kubeconfig(path, connection, user=f"{namespace}-{name}")

    return factory


@pytest.fixture(scope="session")
def crds(kubectl: KubectlRunner, kube: RestClient) -> None:
    """The CRDs of crds/ installed and served."""
    kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    wait_for(
        lambda: kube.get("/apis/datamesh.dev/v1alpha1").get("resources"),
        description="the DataProduct API to be served",
    )


@pytest.fixture(scope="session")
def operator_kubeconfig(control_plane: ClusterInfo, crds: None) -> Path:
    """The identity operator processes run as."""
    return control_plane.kubeconfig


@pytest.fixture(scope="session")
def dpo_command() -> list[str]:
    """How to run the CLI from tests: the installed entry point of this interpreter."""
    return [sys.executable, "-m", "dataproduct_operator"]
