"""Credentials as users' kubeconfigs really are, read by the kubernetes package's loader: when
they are loaded again, and what an unusable kubeconfig says. No API server: the refreshes are
asked for as the client asks after a 401 or when the loader's expiry has come."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import pytest

from dataproduct_operator.cluster import pki
from dataproduct_operator.errors import UserError
from dataproduct_operator.handlers.operator import connection_info, login_handler
from dataproduct_operator.k8s.credentials import Credentials
from tests.helpers import ExecPlugin, kubeconfig_document, wait_for, write_kubeconfig_document

SERVER = "https://127.0.0.1:6443"
CA = pki.CertificateAuthority().cert_pem


def kubeconfig(tmp_path: Path, users: dict[str, dict[str, object]], current: str) -> Path:
    document = kubeconfig_document(SERVER, CA, users, current=current)
    return write_kubeconfig_document(tmp_path / "kubeconfig", document)


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        Credentials.from_kubeconfig(tmp_path / "nope")


def test_the_named_context_chooses_the_user(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, {"alice": {"token": "a"}, "bob": {"token": "b"}}, "alice")
    assert Credentials.from_kubeconfig(path).authorization == "Bearer a"
    assert Credentials.from_kubeconfig(path, context="bob").authorization == "Bearer b"


def test_an_unknown_context_is_a_clear_error_naming_those_there_are(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, {"alice": {"token": "a"}, "bob": {"token": "b"}}, "alice")
    with pytest.raises(UserError, match=r"has no context 'carol'; it has alice, bob"):
        Credentials.from_kubeconfig(path, context="carol")


def test_kubeconfig_from_the_environment_merges_every_file_of_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = kubeconfig(tmp_path, {"alice": {"token": "a"}}, "alice")
    other = tmp_path / "other"
    other.mkdir()
    second = kubeconfig(other, {"bob": {"token": "b"}}, "bob")
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert Credentials.from_environment(context="bob").authorization == "Bearer b"


def test_a_token_file_is_read_again_after_the_server_refused_the_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first")
    credentials = Credentials.from_kubeconfig(
        kubeconfig(tmp_path, {"sa": {"tokenFile": str(token_file)}}, "sa")
    )
    assert credentials.authorization == "Bearer first"
    assert not credentials.due()  # no expiry: the file is read again when refused
    token_file.write_text("second")
    assert asyncio.run(credentials.refresh(rejected="Bearer first"))
    assert credentials.authorization == "Bearer second"


def test_a_refusal_of_credentials_already_replaced_loads_nothing(tmp_path: Path) -> None:
    plugin = ExecPlugin(tmp_path / "plugin", "one")
    credentials = Credentials.from_kubeconfig(kubeconfig(tmp_path, {"u": plugin.user()}, "u"))
    plugin.set_token("two")
    assert asyncio.run(credentials.refresh(rejected="Bearer one"))
    assert plugin.runs == 2
    # Requests sent with the first token, refused after the refresh: nothing to do again.
    assert asyncio.run(credentials.refresh(rejected="Bearer one"))
    assert plugin.runs == 2
    assert credentials.authorization == "Bearer two"


def test_credentials_that_load_the_same_again_say_there_is_nothing_new(tmp_path: Path) -> None:
    credentials = Credentials.from_kubeconfig(kubeconfig(tmp_path, {"u": {"token": "t"}}, "u"))
    assert not asyncio.run(credentials.refresh(rejected="Bearer t"))


def test_an_exec_plugin_is_run_again_only_when_the_loader_says_it_expired(tmp_path: Path) -> None:
    plugin = ExecPlugin(tmp_path / "plugin", "one", valid_seconds=3600)
    credentials = Credentials.from_kubeconfig(kubeconfig(tmp_path, {"u": plugin.user()}, "u"))
    assert (plugin.runs, credentials.authorization) == (1, "Bearer one")
    expiration = credentials.expiration
    assert expiration is not None
    in_an_hour = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    assert abs((expiration - in_an_hour).total_seconds()) < 60
    assert credentials.check_at == pytest.approx(expiration.timestamp())
    assert not credentials.due()
    asyncio.run(credentials.refresh_if_due())  # asked early: the plugin is not run
    assert plugin.runs == 1


def test_an_exec_plugin_runs_again_when_its_expiry_comes(tmp_path: Path) -> None:
    plugin = ExecPlugin(tmp_path / "plugin", "one", valid_seconds=2)
    credentials = Credentials.from_kubeconfig(kubeconfig(tmp_path, {"u": plugin.user()}, "u"))
    assert not credentials.due()
    plugin.set_token("two")
    plugin.set_valid_seconds(3600)

    def refreshed() -> bool:
        if credentials.due():
            asyncio.run(credentials.refresh_if_due())
        return plugin.runs == 2

    wait_for(refreshed, timeout=10, interval=0.05, description="the plugin to run again")
    assert credentials.authorization == "Bearer two"
    assert not credentials.due()


def test_in_cluster_the_service_account_token_is_read_again_after_a_refusal(
    tmp_path: Path,
) -> None:
    (tmp_path / "token").write_text("first")
    (tmp_path / "ca.crt").write_bytes(CA)
    credentials = Credentials.in_cluster(
        token_file=str(tmp_path / "token"),
        ca_file=str(tmp_path / "ca.crt"),
        environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
    )
    assert credentials.server == "https://10.0.0.1:443"
    assert credentials.ca_pem == CA
    assert credentials.authorization == "bearer first"
    assert credentials.expiration is None  # kopf learns of a rotation from a 401
    (tmp_path / "token").write_text("rotated")
    assert asyncio.run(credentials.refresh(rejected="bearer first"))
    assert credentials.authorization == "bearer rotated"


def test_kopf_logs_in_with_the_same_credentials_and_their_expiration(tmp_path: Path) -> None:
    plugin = ExecPlugin(tmp_path / "plugin", "one", valid_seconds=60)
    credentials = Credentials.from_kubeconfig(kubeconfig(tmp_path, {"u": plugin.user()}, "u"))
    info = connection_info(credentials.identity())
    assert (info.server, info.scheme, info.token) == (SERVER, "Bearer", "one")
    assert info.ca_path is not None and Path(info.ca_path).read_bytes() == CA
    assert info.expiration == credentials.expiration
    assert info.insecure is False


def test_kopf_logging_in_again_gets_credentials_loaded_again_once(tmp_path: Path) -> None:
    plugin = ExecPlugin(tmp_path / "plugin", "one")
    credentials = Credentials.from_kubeconfig(kubeconfig(tmp_path, {"u": plugin.user()}, "u"))
    login = login_handler(credentials)

    async def scenario() -> list[str | None]:
        tokens = [(await login()).token]  # kopf starts: what the client has
        plugin.set_token("two")
        tokens.append((await login()).token)  # kopf was refused (or its token expired)
        plugin.set_token("three")
        await credentials.refresh(rejected="Bearer two")  # the client was refused first
        tokens.append((await login()).token)  # then kopf: nothing more to load
        return tokens

    assert asyncio.run(scenario()) == ["one", "two", "three"]
    assert plugin.runs == 3


def test_a_client_certificate_renewed_in_place_is_read_again_after_a_refusal(
    tmp_path: Path,
) -> None:
    authority = pki.CertificateAuthority()
    cert, key = pki.write_pair(tmp_path, "client", authority.issue_client(pki.ADMIN))
    user = {"client-certificate": str(cert), "client-key": str(key)}
    document = kubeconfig_document(SERVER, authority.cert_pem, {"u": user}, current="u")
    credentials = Credentials.from_kubeconfig(
        write_kubeconfig_document(tmp_path / "kubeconfig", document)
    )
    before = credentials.ssl_context
    pki.write_pair(tmp_path, "client", authority.issue_client(pki.ADMIN))  # renewed
    assert asyncio.run(credentials.refresh(rejected=None))  # worth sending once more
    assert credentials.ssl_context is not before
