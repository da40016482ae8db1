"""Fixtures for tests against a real local control plane.

One control plane per test session (``dpo cluster up`` in a temporary directory), a fresh
namespace per test, and kubeconfigs for named ServiceAccounts obtained through TokenRequest so a
test can act as a non-admin identity.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks.setup import (
    FLOW_SCHEMAS,
    WRITE_VERBS,
    build_flow_schema,
    dispatched_requests,
)
from dataproduct_operator.cluster import controlplane, toolchain
from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.kubeconfig import Connection, write_kubeconfig
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.manifests.crd import KINDS
from tests.helpers import wait_for
from tests.integration.products import OperatorProcess, delete_if_present

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
def kube(control_plane: ClusterInfo) -> Iterator[BlockingClient]:
    """A cluster-admin REST client."""
    with BlockingClient.from_kubeconfig(control_plane.kubeconfig) as client:
        yield client


@pytest.fixture(scope="session")
def kubectl_binary() -> Path:
    return toolchain.require_binaries(("kubectl",))["kubectl"]


def run_tool(
    argv: list[str],
    *,
    check: bool = True,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run a command line tool as a user would; on failure show what it printed."""
    result = subprocess.run(
        argv, capture_output=True, text=True, input=stdin, env=env, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        shown = " ".join([Path(argv[0]).name, *argv[1:]])
        raise AssertionError(f"{shown} failed:\n{result.stdout}{result.stderr}")
    return result


def run_kubectl(
    binary: Path, kubeconfig: Path, *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run kubectl as a user would against ``kubeconfig``."""
    return run_tool([str(binary), f"--kubeconfig={kubeconfig}", *args], check=check, stdin=stdin)


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
def namespace(kube: BlockingClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    name = _namespace_name(request.node.name)
    kube.create("/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    try:
        kube.delete(f"/api/v1/namespaces/{name}")
    except ApiError as error:
        if error.status != 404:
            raise


@pytest.fixture
def restricted_namespace(kube: BlockingClient, namespace: str) -> str:
    """The test's namespace, enforcing Pod Security "restricted" as production namespaces do."""
    kube.merge_patch(
        f"/api/v1/namespaces/{namespace}",
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )
    return namespace


ServiceAccountKubeconfig = Callable[[str, str], Path]


def write_service_account_kubeconfig(
    kube: BlockingClient, server: str, namespace: str, name: str, path: Path, *, create: bool = True
) -> Path:
    """A kubeconfig at ``path`` acting as a ServiceAccount, with a TokenRequest token.

    The ServiceAccount is created if missing, unless ``create`` is false.
    """
    if create:
        kube.create_if_missing(
            f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": name}}
        )
    token_request = kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    connection = Connection(server, kube.credentials.ca_pem, token=token_request["status"]["token"])
    return write_kubeconfig(path, connection, user=f"{namespace}-{name}")


@pytest.fixture
def service_account_kubeconfig(
    kube: BlockingClient, control_plane: ClusterInfo, tmp_path: Path
) -> ServiceAccountKubeconfig:
    """``factory(namespace, name)``: a kubeconfig acting as that ServiceAccount."""

    def factory(namespace: str, name: str) -> Path:
        path = tmp_path / f"{namespace}-{name}.kubeconfig"
        return write_service_account_kubeconfig(kube, control_plane.server, namespace, name, path)

    return factory


HelmRunner = Callable[..., subprocess.CompletedProcess[str]]
CHART = REPO / "charts" / "dataproduct-operator"
RELEASE = "dataproduct-operator"  # also the ServiceAccount's name (the release's full name)
OPERATOR_NAMESPACE = "dataproduct-system"


@pytest.fixture(scope="session")
def helm(control_plane: ClusterInfo, tmp_path_factory: pytest.TempPathFactory) -> HelmRunner:
    """Run helm against the control plane, with its own config and cache directories."""
    binary = toolchain.require_binaries(("helm",))["helm"]
    home = tmp_path_factory.mktemp("helm")
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(control_plane.kubeconfig),
    }

    def runner(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_tool([str(binary), *args], check=check, env=environment, timeout=180)

    return runner


def install_release(helm: HelmRunner, *values: str) -> None:
    """``helm install`` the chart as the tests' operator release and wait for it."""
    helm(
        "install", RELEASE, str(CHART),
        "--namespace", OPERATOR_NAMESPACE,
        "--wait", "--timeout", "120s",
        *values,
    )  # fmt: skip


@pytest.fixture(scope="session")
def operator_release(helm: HelmRunner, kube: BlockingClient) -> str:
    """The chart installed with its CRDs into a namespace enforcing Pod Security "restricted"."""
    kube.create(
        "/api/v1/namespaces",
        {
            "metadata": {
                "name": OPERATOR_NAMESPACE,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            }
        },
    )
    install_release(helm)
    return RELEASE


@pytest.fixture(scope="session")
def crds(operator_release: str, kube: BlockingClient) -> None:
    """The CRDs (installed by the chart) served, every kind."""
    kinds = {definition.kind for definition in KINDS}

    def served() -> bool:
        resources = kube.get("/apis/datamesh.dev/v1alpha1").get("resources") or []
        return kinds <= {resource["kind"] for resource in resources}

    wait_for(served, description=f"the kinds {sorted(kinds)} to be served")


DOMAINS = "/apis/datamesh.dev/v1alpha1/datadomains"


@pytest.fixture
def domain(kube: BlockingClient, crds: None, namespace: str) -> Iterator[str]:
    """A DataDomain named after the test's namespace and owning it, so products there belong
    to a domain; deleted afterwards, its finalizer dropped if no operator is left to do it."""
    kube.create(
        DOMAINS,
        {
            "apiVersion": "datamesh.dev/v1alpha1",
            "kind": "DataDomain",
            "metadata": {"name": namespace},
            "spec": {"owners": {"team": f"{namespace}-team"}},
        },
    )
    yield namespace
    delete_if_present(kube, f"{DOMAINS}/{namespace}")
    try:
        kube.merge_patch(f"{DOMAINS}/{namespace}", {"metadata": {"finalizers": None}})
    except ApiError as error:
        if error.status != 404:
            raise


OPERATOR_WRITES = "tests-operator-writes"
DOMAIN_WRITES = "tests-operator-domain-writes"
LEASE_WRITES = "tests-operator-lease-writes"


@pytest.fixture(scope="session")
def operator_writes(kube: BlockingClient, operator_release: str) -> Callable[[], int]:
    """``operator_writes()``: the writes the API server has let through for the operator's
    ServiceAccount so far, counted by a FlowSchema of its own (other clients do not count), but
    for those of the DataDomains themselves (status, finalizer), which follow their products'
    changes a few seconds late."""
    schema = build_flow_schema(
        OPERATOR_WRITES, (OPERATOR_NAMESPACE, RELEASE), precedence=400, verbs=WRITE_VERBS
    )
    kube.create_if_missing(FLOW_SCHEMAS, schema)
    # Matched first: the writes of the DataDomains' own status and metadata count apart.
    domains = build_flow_schema(
        DOMAIN_WRITES,
        (OPERATOR_NAMESPACE, RELEASE),
        precedence=390,
        verbs=WRITE_VERBS,
        resources=("datadomains", "datadomains/status"),
    )
    kube.create_if_missing(FLOW_SCHEMAS, domains)
    # Matched first too: the leader Lease is renewed every 2 s, whatever the products do.
    lease = build_flow_schema(
        LEASE_WRITES,
        (OPERATOR_NAMESPACE, RELEASE),
        precedence=380,
        verbs=WRITE_VERBS,
        resources=("leases",),
    )
    kube.create_if_missing(FLOW_SCHEMAS, lease)
    return lambda: dispatched_requests(kube, [OPERATOR_WRITES])[OPERATOR_WRITES]


@pytest.fixture(scope="module")
def operator_kubeconfig(
    control_plane: ClusterInfo,
    kube: BlockingClient,
    crds: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The identity operator processes run as: the chart's ServiceAccount, not an admin."""
    path = tmp_path_factory.mktemp("operator-identity") / "kubeconfig"
    return write_service_account_kubeconfig(
        kube, control_plane.server, OPERATOR_NAMESPACE, RELEASE, path, create=False
    )


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """``dpo run`` as a separate process for the tests of this module."""
    process = OperatorProcess(
        operator_kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log"
    )
    yield process
    process.stop()


@pytest.fixture(scope="session")
def dpo_command() -> list[str]:
    """How to run the CLI from tests: the installed entry point of this interpreter."""
    return [sys.executable, "-m", "dataproduct_operator"]
