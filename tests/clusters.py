"""Helpers for the tiers that run against a local control plane (integration, faults): the
tools as a user runs them, ServiceAccount identities, the chart's release, namespaces and
domains, SQL on the cluster's PostgreSQL. Their fixtures are in ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql

from dataproduct_operator.cluster import controlplane, images
from dataproduct_operator.cluster.node_config import NODE_TYPE_LABEL, REAL_NODE_TYPE
from dataproduct_operator.cluster.postgres import LocalPostgres, accepting
from dataproduct_operator.constants import LABEL_DOMAIN
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.kubeconfig import Connection, write_kubeconfig
from dataproduct_operator.k8s.rest import ApiError
from tests.helpers import wait_for
from tests.products import delete_if_present

REPO = Path(__file__).resolve().parents[1]
KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]
ServiceAccountKubeconfig = Callable[[str, str], Path]
HelmRunner = Callable[..., subprocess.CompletedProcess[str]]
CHART = REPO / "charts" / "dataproduct-operator"
RELEASE = "dataproduct-operator"  # also the ServiceAccount's name (the release's full name)
OPERATOR_NAMESPACE = "dataproduct-system"
DOMAINS = "/apis/datamesh.dev/v1alpha1/datadomains"
OPERATOR_ACCOUNT = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{RELEASE}"


def real_node_placement() -> tuple[str, ...]:
    """``dpo run`` flags that place every pipeline pod on the real node (its label, its taint
    tolerated) and run sql pipelines with the runner image imported there."""
    return (
        f"--pipeline-node-selector={NODE_TYPE_LABEL}={REAL_NODE_TYPE}",
        f"--pipeline-toleration={NODE_TYPE_LABEL}={REAL_NODE_TYPE}:NoSchedule",
        f"--runner-image={images.image_spec('runner').ref}",
    )


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


def apply_as_user(kubectl: KubectlRunner, document: dict[str, Any]) -> tuple[bool, str]:
    """``kubectl apply`` as a user would: (accepted, what kubectl printed)."""
    result = kubectl("apply", "-f", "-", stdin=json.dumps(document), check=False)
    return result.returncode == 0, result.stdout + result.stderr


def namespace_name(test_name: str) -> str:
    """A fresh namespace name that says which test made it."""
    stem = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"t-{stem}-{secrets.token_hex(3)}"


def write_service_account_kubeconfig(
    kube: BlockingClient, server: str, namespace: str, name: str, path: Path, *, create: bool = True
) -> Path:
    """A kubeconfig at ``path`` acting as a ServiceAccount, with a TokenRequest token, for the
    API server at ``server`` (the cluster's, or a proxy in front of it).

    The ServiceAccount is created if missing, unless ``create`` is false.
    """
    if create:
        kube.create_if_missing(
            f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": name}}
        )
    token = service_account_token(kube, namespace, name)
    connection = Connection(server, kube.credentials.ca_pem, token=token)
    return write_kubeconfig(path, connection, user=f"{namespace}-{name}")


def service_account_token(kube: BlockingClient, namespace: str, name: str) -> str:
    """A fresh TokenRequest token of a ServiceAccount (an hour), as a client would send it."""
    token_request = kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    return str(token_request["status"]["token"])


def bind_in_namespace(
    kube: BlockingClient, namespace: str, account: str, role: tuple[str, str]
) -> None:
    """A RoleBinding in ``namespace`` of ``role`` (kind, name: Role or ClusterRole) to the
    ServiceAccount ``account`` of that namespace."""
    kind, name = role
    kube.create(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        {
            "metadata": {"name": f"{account}-{name}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    )


@contextlib.contextmanager
def chart_catalog_identity(
    helm: HelmRunner, kube: BlockingClient, server: str, release: str, kubeconfig: Path
) -> Iterator[Path]:
    """The standalone catalog's ServiceAccount, ClusterRole and binding as the chart renders
    them for a release named ``release``; a kubeconfig at ``kubeconfig`` acting as it. Removed
    afterwards."""
    rendered = helm(
        "template", release, str(CHART), "--namespace", OPERATOR_NAMESPACE,
        "--set", "catalog.standalone=true", "--show-only", "templates/catalog-rbac.yaml",
    ).stdout  # fmt: skip
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    assert [d["kind"] for d in documents] == [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
    ]
    paths = {
        "ServiceAccount": f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/serviceaccounts",
        "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    }
    for document in documents:
        kube.create(paths[document["kind"]], document)
    account = documents[0]["metadata"]["name"]
    try:
        yield write_service_account_kubeconfig(
            kube, server, OPERATOR_NAMESPACE, account, kubeconfig, create=False
        )
    finally:
        for document in documents:
            delete_if_present(kube, f"{paths[document['kind']]}/{document['metadata']['name']}")


def helm_environment(home: Path, kubeconfig: Path) -> dict[str, str]:
    """helm with config and cache directories of its own, against ``kubeconfig``."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(kubeconfig),
    }


def install_release(helm: HelmRunner, *values: str) -> None:
    """``helm install`` the chart as the tests' operator release and wait for it."""
    helm(
        "install", RELEASE, str(CHART),
        "--namespace", OPERATOR_NAMESPACE,
        "--wait", "--timeout", "120s",
        *values,
    )  # fmt: skip


def domain_document(name: str) -> dict[str, Any]:
    """A DataDomain owning the namespace of its name, so products there belong to a domain."""
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataDomain",
        "metadata": {"name": name},
        "spec": {"owners": {"team": f"{name}-team"}},
    }


def hand_over(kube: BlockingClient, namespace: str, domain: str | None = None) -> None:
    """As a platform admin, hand an existing namespace over to the mesh: label it with its
    DataDomain (``domain``, by default the namespace's name). The operator labels only the
    namespaces it creates; a domain for an existing one waits for this."""
    kube.merge_patch(
        f"/api/v1/namespaces/{namespace}",
        {"metadata": {"labels": {LABEL_DOMAIN: domain or namespace}}},
    )


def make_domain(kube: BlockingClient, name: str) -> None:
    """A new namespace ``name`` handed over to the mesh, and its DataDomain (see
    :func:`delete_domain`)."""
    kube.create("/api/v1/namespaces", {"metadata": {"name": name}})
    hand_over(kube, name)
    kube.create(DOMAINS, domain_document(name))


def delete_domain(kube: BlockingClient, name: str) -> None:
    """Delete a DataDomain; its finalizer dropped if no operator is left to do it."""
    delete_if_present(kube, f"{DOMAINS}/{name}")
    try:
        kube.merge_patch(f"{DOMAINS}/{name}", {"metadata": {"finalizers": None}})
    except ApiError as error:
        if error.status != 404:
            raise


def wait_quiet_writes(
    operator_writes: Callable[[], int], *, quiet: float = 3.0, timeout: float = 60.0
) -> int:
    """The operator's write count once it stayed unchanged for ``quiet`` seconds."""
    last = operator_writes()
    since = time.monotonic()

    def settled() -> int | None:
        nonlocal last, since
        now = operator_writes()
        if now != last:
            last, since = now, time.monotonic()
            return None
        return now if time.monotonic() - since >= quiet else None

    return wait_for(settled, timeout=timeout, interval=0.5, description="writes to stop")


def operator_allowed(kube: BlockingClient, namespace: str, attributes: tuple[str, ...]) -> bool:
    """Whether the operator's ServiceAccount may (group, resource, verb[, name]) in
    ``namespace``: a SubjectAccessReview, as admin."""
    group, resource, verb, name = (*attributes, "")[:4]
    review = kube.create(
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": OPERATOR_ACCOUNT,
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "resourceAttributes": {
                    "namespace": namespace,
                    "group": group,
                    "resource": resource,
                    "verb": verb,
                    "name": name,
                },
            },
        },
    )
    return bool(review["status"]["allowed"])


Statement = str | sql.Composable
SqlRows = list[tuple[Any, ...]]


def run_sql(
    conninfo: dict[str, Any], statement: Statement, params: tuple[Any, ...] | None = None
) -> SqlRows:
    """One statement in its own connection and transaction (autocommit); its rows, or none
    for a statement that returns none. Errors (``psycopg.errors.InsufficientPrivilege``,
    ...) propagate, for a test to assert on."""
    with psycopg.connect(**conninfo, autocommit=True, connect_timeout=10) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def superuser_sql(
    postgres: LocalPostgres,
    statement: Statement,
    params: tuple[Any, ...] | None = None,
    *,
    database: str | None = None,
) -> SqlRows:
    """As the superuser, over the unix socket: to inspect, or to sabotage (a GRANT by hand)."""
    return run_sql(postgres.superuser_conninfo(database), statement, params)


def login_sql(
    postgres: LocalPostgres,
    user: str,
    password: str,
    statement: Statement,
    params: tuple[Any, ...] | None = None,
) -> SqlRows:
    """As ``user`` with ``password`` over TCP, as a pipeline or a reader connects."""
    conninfo = {**postgres.admin_conninfo(), "user": user, "password": password}
    return run_sql(conninfo, statement, params)


@contextlib.contextmanager
def postgres_stopped(directory: Path, postgres: LocalPostgres) -> Iterator[None]:
    """The cluster's PostgreSQL stopped inside the block (a fast shutdown: open sessions end,
    the port closes) and started again when it ends, with the same data, port and password;
    accepting connections again by the time the block has been left."""
    with controlplane.stopped(directory, "postgres"):
        yield
    wait_for(lambda: accepting(postgres), timeout=30, description="PostgreSQL to accept again")
