"""``dpo access`` acts only as whom its credentials say, and never prints them.

``spec.requestedBy`` is the caller's name as the API server authenticates it (a
SelfSubjectReview), not the user name a kubeconfig happens to carry, so the admission policy
accepts it; ``--as`` works only for an identity the API server lets impersonate; and the
token of the kubeconfig appears in no output, whether the command succeeds or is refused.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from dataproduct_operator.constants import DOMAIN_EDITOR_ROLE
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.access import REQUESTS
from tests.clusters import ServiceAccountKubeconfig, bind_in_namespace
from tests.helpers import wait_for

ASKER = "asker"


def _dpo(dpo_command: list[str], kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*dpo_command, "access", *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _token(kubeconfig: Path) -> str:
    token: str = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
    return token


@pytest.fixture
def asker(
    kube: BlockingClient, domain: str, service_account_kubeconfig: ServiceAccountKubeconfig
) -> Path:
    """A kubeconfig of the ServiceAccount ``asker`` of the domain's namespace, holding the
    domain editor role there (as the domain's team does); its kubeconfig user is named
    ``<namespace>-asker``, not what the API server calls it."""
    path = service_account_kubeconfig(domain, ASKER)
    bind_in_namespace(kube, domain, ASKER, ("ClusterRole", DOMAIN_EDITOR_ROLE))
    return path


def test_a_request_names_the_caller_as_the_api_server_knows_it(
    kube: BlockingClient, dpo_command: list[str], domain: str, asker: Path
) -> None:
    args = ("request", "sales/orders", "--for", "group:analysts", "-n", domain,
            "--purpose", "Quarterly review", "--name", "review")  # fmt: skip

    def made() -> subprocess.CompletedProcess[str] | None:
        result = _dpo(dpo_command, asker, *args)
        return result if result.returncode == 0 else None  # until the binding is in effect

    result = wait_for(made, description="the request to be made as the ServiceAccount")
    request = kube.get(REQUESTS.format(namespace=domain) + "/review")
    assert request["spec"]["requestedBy"] == f"system:serviceaccount:{domain}:{ASKER}"
    assert _token(asker) not in result.stdout + result.stderr


def test_acting_as_someone_else_needs_the_right_to_impersonate(
    kube: BlockingClient, dpo_command: list[str], domain: str, asker: Path
) -> None:
    for who in (("--as", "pat"), ("--as", "pat", "--as-group", "sales-team")):
        refused = _dpo(dpo_command, asker, "list", "-n", domain, *who)
        assert refused.returncode == 1, refused.stdout
        assert "You may not act as another user (--as, --as-group)" in refused.stderr, (
            refused.stderr
        )
        assert "Traceback" not in refused.stderr
        assert _token(asker) not in refused.stdout + refused.stderr
    yaml_only = _dpo(
        dpo_command, asker, "request", "sales/orders", "--for", "user:pat", "-n", domain,
        "--purpose", "p", "-o", "yaml", "--as", "pat",
    )  # fmt: skip
    assert yaml_only.returncode == 1, "-o yaml still asks who you are, and may not be pat"
    assert kube.get(REQUESTS.format(namespace=domain))["items"] == []
