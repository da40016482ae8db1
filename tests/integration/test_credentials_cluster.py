"""Credentials as users' kubeconfigs really are, against the local API server: exec credential
plugins (as EKS, GKE and AKS kubeconfigs run them), ``tokenFile``, the in-cluster token file,
client certificates and contexts; a token that stops working during a run is replaced.

A token is made to stop working mid-run by binding it to a Secret (TokenRequest
``boundObjectRef``) and deleting the Secret: kube-apiserver refuses expirations below 600 s.
The API server may go on accepting a token it authenticated for some seconds (its token cache):
each test first waits until a client holding only the old token is refused.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dataproduct_operator.cluster.controlplane import ClusterInfo
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.k8s.kubeconfig import Connection
from dataproduct_operator.k8s.rest import ApiError
from tests.clusters import OPERATOR_NAMESPACE, RELEASE
from tests.helpers import ExecPlugin, kubeconfig_document, wait_for, write_kubeconfig_document
from tests.products import (
    PRODUCTS,
    OperatorProcess,
    create_ready,
    delete_if_present,
    example,
    product_path,
)

REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
ACCOUNT = "reader"
KubeconfigFor = Callable[[dict[str, Any]], Path]


def who(client: BlockingClient) -> str:
    """The user the API server takes the client for."""
    username: str = client.create(REVIEWS, REVIEW)["status"]["userInfo"]["username"]
    return username


async def who_async(client: KubeClient) -> str:
    username: str = (await client.request("POST", REVIEWS, REVIEW))["status"]["userInfo"][
        "username"
    ]
    return username


class Tokens:
    """TokenRequest tokens for one ServiceAccount, each bound to a Secret of its own so that
    it can be made to stop working at once."""

    def __init__(self, kube: BlockingClient, namespace: str, account: str) -> None:
        self._kube, self._namespace, self._account = kube, namespace, account
        self._secrets: dict[str, str] = {}  # token -> name of its Secret
        self.user = f"system:serviceaccount:{namespace}:{account}"
        kube.create_if_missing(
            f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": account}}
        )

    def new(self) -> str:
        name = f"token-binding-{secrets.token_hex(4)}"
        secret = self._kube.create(
            f"/api/v1/namespaces/{self._namespace}/secrets", {"metadata": {"name": name}}
        )
        bound = {"apiVersion": "v1", "kind": "Secret", "name": name}
        request = self._kube.create(
            f"/api/v1/namespaces/{self._namespace}/serviceaccounts/{self._account}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {
                    "expirationSeconds": 3600,
                    "boundObjectRef": {**bound, "uid": secret["metadata"]["uid"]},
                },
            },
        )
        token: str = request["status"]["token"]
        self._secrets[token] = name
        return token

    def revoke(self, token: str) -> None:
        """Delete the token's Secret, and return once the API server refuses the token."""
        self._forget(token)
        wait_for(lambda: self._refused(token), description="the token to be refused")

    def revoke_all(self) -> None:
        for token in self._secrets:
            self._forget(token)

    def _forget(self, token: str) -> None:
        path = f"/api/v1/namespaces/{self._namespace}/secrets/{self._secrets[token]}"
        delete_if_present(self._kube, path)

    def _refused(self, token: str) -> bool:
        server, ca = self._kube.credentials.server, self._kube.credentials.ca_pem
        with BlockingClient.from_connection(Connection(server, ca, token=token)) as client:
            try:
                who(client)
            except ApiError as error:
                return error.status == 401
        return False


@pytest.fixture
def tokens(kube: BlockingClient, namespace: str) -> Iterator[Tokens]:
    """Tokens of a ServiceAccount in the test's namespace."""
    made = Tokens(kube, namespace, ACCOUNT)
    yield made
    made.revoke_all()


@pytest.fixture
def kubeconfig_for(kube: BlockingClient, tmp_path: Path) -> KubeconfigFor:
    """``kubeconfig_for(user)``: a kubeconfig for the local API server as that user entry."""

    def write(user: dict[str, Any]) -> Path:
        server, ca = kube.credentials.server, kube.credentials.ca_pem
        document = kubeconfig_document(server, ca, {"test": user}, current="test")
        return write_kubeconfig_document(tmp_path / "kubeconfig", document)

    return write


def test_an_exec_plugin_kubeconfig_works_for_the_client_and_the_blocking_facade(
    tokens: Tokens, kubeconfig_for: KubeconfigFor, tmp_path: Path
) -> None:
    plugin = ExecPlugin(tmp_path / "plugin", tokens.new())
    path = kubeconfig_for(plugin.user())
    with BlockingClient.from_kubeconfig(path) as client:
        assert who(client) == tokens.user

    async def scenario() -> str:
        client = KubeClient.from_environment(path)
        try:
            return await who_async(client)
        finally:
            await client.close()

    assert asyncio.run(scenario()) == tokens.user
    assert plugin.runs == 2  # once for each client, not once a request


def test_an_exec_plugin_runs_again_when_its_expiration_timestamp_passes(
    tokens: Tokens, kubeconfig_for: KubeconfigFor, tmp_path: Path
) -> None:
    plugin = ExecPlugin(tmp_path / "plugin", tokens.new(), valid_seconds=2)
    with BlockingClient.from_kubeconfig(kubeconfig_for(plugin.user())) as client:
        assert who(client) == tokens.user
        assert plugin.runs == 1
        plugin.set_valid_seconds(3600)
        second = tokens.new()
        plugin.set_token(second)

        def ran_again() -> bool:
            assert who(client) == tokens.user
            return plugin.runs == 2

        wait_for(ran_again, timeout=15, interval=0.1, description="the plugin to run again")
        assert client.credentials.authorization == f"Bearer {second}"
        for _ in range(5):
            who(client)
        assert plugin.runs == 2


def test_a_token_refused_mid_run_is_replaced_by_running_the_exec_plugin_again(
    tokens: Tokens, kubeconfig_for: KubeconfigFor, tmp_path: Path
) -> None:
    first = tokens.new()
    plugin = ExecPlugin(tmp_path / "plugin", first)
    with BlockingClient.from_kubeconfig(kubeconfig_for(plugin.user())) as client:
        assert who(client) == tokens.user
        plugin.set_token(tokens.new())
        tokens.revoke(first)
        assert who(client) == tokens.user  # a 401, the plugin run again, sent again
    assert plugin.runs == 2


def test_a_rewritten_token_file_is_read_again_when_the_old_token_is_refused(
    tokens: Tokens, kubeconfig_for: KubeconfigFor, tmp_path: Path
) -> None:
    first = tokens.new()
    token_file = tmp_path / "token"
    token_file.write_text(first)
    path = kubeconfig_for({"tokenFile": str(token_file)})

    async def scenario() -> tuple[str, str]:
        client = KubeClient.from_environment(path)
        try:
            before = await who_async(client)
            token_file.write_text(tokens.new())
            await asyncio.to_thread(tokens.revoke, first)
            return before, await who_async(client)
        finally:
            await client.close()

    assert asyncio.run(scenario()) == (tokens.user, tokens.user)


def test_in_a_pod_a_rotated_service_account_token_is_read_again_after_a_refusal(
    kube: BlockingClient, tokens: Tokens, tmp_path: Path
) -> None:
    first = tokens.new()
    (tmp_path / "token").write_text(first)
    (tmp_path / "ca.crt").write_bytes(kube.credentials.ca_pem)
    host, port = kube.credentials.server.removeprefix("https://").rsplit(":", 1)
    credentials = Credentials.in_cluster(
        token_file=str(tmp_path / "token"),
        ca_file=str(tmp_path / "ca.crt"),
        environ={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port},
    )
    with BlockingClient(credentials) as client:
        assert who(client) == tokens.user
        (tmp_path / "token").write_text(tokens.new())  # as the kubelet rotates it
        tokens.revoke(first)
        assert who(client) == tokens.user


def test_client_certificates_and_a_named_context_choose_who_the_client_is(
    kube: BlockingClient, control_plane: ClusterInfo, tokens: Tokens, tmp_path: Path
) -> None:
    admin = who(kube)  # the local control plane's kubeconfig: a client certificate
    assert admin != tokens.user
    server, ca = kube.credentials.server, kube.credentials.ca_pem
    document = kubeconfig_document(
        server, ca, {"reader": {"token": tokens.new()}}, current="reader"
    )
    path = write_kubeconfig_document(tmp_path / "kubeconfig", document)
    merged = f"{control_plane.kubeconfig}:{path}"  # as $KUBECONFIG lists them
    as_reader = Credentials.from_kubeconfig(merged, context="reader")
    as_admin = Credentials.from_kubeconfig(merged, context="admin@dpo-local")
    with BlockingClient(as_reader) as reader, BlockingClient(as_admin) as admin_client:
        assert who(reader) == tokens.user
        assert who(admin_client) == admin


def test_an_unknown_context_is_a_clear_error(
    dpo_command: list[str], control_plane: ClusterInfo
) -> None:
    export = ["export", "--format", "odps", "--namespace", "n", "--name", "p", "--context", "nope"]
    result = subprocess.run(
        [*dpo_command, *export, "--kubeconfig", str(control_plane.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "has no context 'nope'; it has admin@dpo-local" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.usefixtures("domain")  # the products' DataDomain, named after the namespace
def test_the_operator_runs_on_an_exec_plugin_and_survives_its_token_being_refused(
    kube: BlockingClient, restricted_namespace: str, kubeconfig_for: KubeconfigFor, tmp_path: Path
) -> None:
    namespace = restricted_namespace
    operator_tokens = Tokens(kube, OPERATOR_NAMESPACE, RELEASE)  # the chart's ServiceAccount
    first = operator_tokens.new()
    plugin = ExecPlugin(tmp_path / "plugin", first)
    path = kubeconfig_for(plugin.user())
    operator = OperatorProcess(path, tmp_path / "operator.log", extra=("--namespace", namespace))
    try:
        create_ready(kube, example(namespace, "orders"))
        plugin.set_token(operator_tokens.new())
        operator_tokens.revoke(first)
        # The operator must log in again to make this one Ready.
        create_ready(kube, example(namespace, "invoices"))
        assert plugin.runs >= 2
        for name in ("orders", "invoices"):
            delete_if_present(kube, product_path(namespace, name))
        wait_for(
            lambda: not kube.get(PRODUCTS.format(namespace=namespace))["items"],
            description="the products deleted",
        )
    finally:
        operator.stop()
        operator_tokens.revoke_all()
    assert "Traceback" not in operator.log.read_text()
