"""Kubeconfigs round-trip: what we write is what we (and kubectl) read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataproduct_operator.errors import UserError
from dataproduct_operator.k8s.kubeconfig import Connection, load_connection, write_kubeconfig


def test_client_certificate_kubeconfig_round_trips_and_is_private(tmp_path: Path) -> None:
    connection = Connection("https://127.0.0.1:6443", b"CA", b"CERT", b"KEY")
    path = write_kubeconfig(tmp_path / "kubeconfig", connection)
    assert load_connection(path) == connection
    assert path.stat().st_mode & 0o777 == 0o600


def test_token_kubeconfig_round_trips(tmp_path: Path) -> None:
    connection = Connection("https://127.0.0.1:6443", b"CA", token="abc")
    path = write_kubeconfig(tmp_path / "kubeconfig", connection, user="sa")
    assert load_connection(path) == connection


def test_file_references_are_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(b"CA")
    (tmp_path / "kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://h:1', certificate-authority: ca.crt}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    assert load_connection(tmp_path / "kubeconfig") == Connection("https://h:1", b"CA", token="t")


def test_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_connection(tmp_path / "nope")
