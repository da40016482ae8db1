"""Fixtures for the tiers that run against a real local control plane (integration, faults).

One control plane per test session (``dpo cluster up`` in a temporary directory, with its
PostgreSQL), the chart installed into it by helm, a fresh namespace per test, and kubeconfigs
for named ServiceAccounts obtained through TokenRequest so a test can act as a non-admin
identity: the operator runs as the chart's ServiceAccount. Each tier's pytest run starts a
control plane of its own; tests that need none never start one.
"""

from __future__ import annotations

import hashlib
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
from dataproduct_operator.cluster.node import NodeMode
from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.manifests.crd import KINDS
from tests.clusters import (
    DOMAINS,
    OPERATOR_NAMESPACE,
    RELEASE,
    HelmRunner,
    KubectlRunner,
    ServiceAccountKubeconfig,
    delete_domain,
    domain_document,
    hand_over,
    helm_environment,
    install_release,
    namespace_name,
    real_node_placement,
    run_kubectl,
    run_tool,
    write_service_account_kubeconfig,
)
from tests.helpers import wait_for
from tests.products import OperatorProcess, delete_if_present


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    """A running control plane with the real node beside kwok's, shared by the whole session;
    stopped at the end."""
    directory = tmp_path_factory.mktemp("control-plane")
    info = controlplane.up(directory, node_mode=NodeMode.REAL)
    try:
        yield info
    finally:
        controlplane.down(directory)


@pytest.fixture(scope="session")
def postgres(control_plane: ClusterInfo) -> LocalPostgres:
    """The cluster's PostgreSQL (``up`` starts it with the control plane): its admin
    (``datamesh_admin``: LOGIN, CREATEROLE, CREATE on ``datamesh``; not a superuser) over
    TCP, and its superuser over the unix socket. SQL helpers: ``tests.clusters.superuser_sql``
    and ``login_sql``."""
    return control_plane.postgres


@pytest.fixture(scope="session")
def kube(control_plane: ClusterInfo) -> Iterator[BlockingClient]:
    """A cluster-admin REST client."""
    with BlockingClient.from_kubeconfig(control_plane.kubeconfig) as client:
        yield client


@pytest.fixture(scope="session")
def kubectl_binary() -> Path:
    return toolchain.require_binaries(("kubectl",))["kubectl"]


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


@pytest.fixture
def namespace(kube: BlockingClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    name = namespace_name(request.node.name)
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


@pytest.fixture
def service_account_kubeconfig(
    kube: BlockingClient, control_plane: ClusterInfo, tmp_path: Path
) -> ServiceAccountKubeconfig:
    """``factory(namespace, name)``: a kubeconfig acting as that ServiceAccount."""

    def factory(namespace: str, name: str) -> Path:
        path = tmp_path / f"{namespace}-{name}.kubeconfig"
        return write_service_account_kubeconfig(kube, control_plane.server, namespace, name, path)

    return factory


@pytest.fixture(scope="session")
def helm(control_plane: ClusterInfo, tmp_path_factory: pytest.TempPathFactory) -> HelmRunner:
    """Run helm against the control plane, with its own config and cache directories."""
    binary = toolchain.require_binaries(("helm",))["helm"]
    environment = helm_environment(tmp_path_factory.mktemp("helm"), control_plane.kubeconfig)

    def runner(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_tool([str(binary), *args], check=check, env=environment, timeout=180)

    return runner


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


@pytest.fixture
def domain(kube: BlockingClient, crds: None, namespace: str) -> Iterator[str]:
    """A DataDomain named after the test's namespace and owning it (handed over to the mesh as
    a platform admin does), so products there belong to a domain; deleted afterwards, its
    finalizer dropped if no operator is left to do it."""
    hand_over(kube, namespace)
    kube.create(DOMAINS, domain_document(namespace))
    yield namespace
    delete_domain(kube, namespace)


@pytest.fixture
def domain_name(kube: BlockingClient, crds: None, request: pytest.FixtureRequest) -> Iterator[str]:
    """A DataDomain name of this test's own; the domain is deleted afterwards if made."""
    name = "t" + hashlib.sha256(request.node.name.encode()).hexdigest()[:8]
    yield name
    delete_if_present(kube, f"{DOMAINS}/{name}")


OPERATOR_WRITES = "tests-operator-writes"
DOMAIN_WRITES = "tests-operator-domain-writes"
LEASE_WRITES = "tests-operator-lease-writes"
REVIEWS = "tests-operator-reviews"


@pytest.fixture(scope="session")
def operator_writes(kube: BlockingClient, operator_release: str) -> Callable[[], int]:
    """``operator_writes()``: the writes the API server has let through for the operator's
    ServiceAccount so far, counted by a FlowSchema of its own (other clients do not count), but
    for those of the DataDomains themselves (status, finalizer), which follow their products'
    changes a few seconds late, those of its leader Lease, renewed all the time, and its
    SelfSubjectReviews and SelfSubjectAccessReviews (created, but they change nothing: who it
    is, once per process, and whether a new binding of its own is in effect)."""
    schema = build_flow_schema(
        OPERATOR_WRITES, (OPERATOR_NAMESPACE, RELEASE), precedence=400, verbs=WRITE_VERBS
    )
    kube.create_if_missing(FLOW_SCHEMAS, schema)
    # Matched first: the writes of the DataDomains' own status and metadata, and of the
    # Lease, count apart.
    for name, resources in (
        (DOMAIN_WRITES, ("datadomains", "datadomains/status")),
        (LEASE_WRITES, ("leases",)),
        (REVIEWS, ("selfsubjectreviews", "selfsubjectaccessreviews")),
    ):
        apart = build_flow_schema(
            name, (OPERATOR_NAMESPACE, RELEASE), precedence=390, verbs=WRITE_VERBS,
            resources=resources,
        )  # fmt: skip
        kube.create_if_missing(FLOW_SCHEMAS, apart)
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


@pytest.fixture(scope="module")
def node_operator(
    operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """``dpo run`` for the tests of this module with every pipeline pod placed on the real node
    and sql pipelines run by the runner image there (:func:`tests.clusters.real_node_placement`):
    runs really happen, their pods' reports and logs are real."""
    process = OperatorProcess(
        operator_kubeconfig,
        tmp_path_factory.mktemp("node-operator") / "operator.log",
        extra=real_node_placement(),
    )
    yield process
    process.stop()


@pytest.fixture(scope="session")
def dpo_command() -> list[str]:
    """How to run the CLI from tests: the installed entry point of this interpreter."""
    return [sys.executable, "-m", "dataproduct_operator"]
