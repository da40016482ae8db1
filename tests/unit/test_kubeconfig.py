"""Kubeconfigs round-trip: what we write is what the kubernetes package's loader (and so
kubectl's users) read back."""

from __future__ import annotations

from pathlib import Path

from dataproduct_operator.cluster import pki
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.k8s.kubeconfig import Connection, write_kubeconfig


def test_client_certificate_kubeconfig_round_trips_and_is_private(tmp_path: Path) -> None:
    authority = pki.CertificateAuthority()
    pair = authority.issue_client(pki.ADMIN)
    connection = Connection(
        "https://127.0.0.1:6443", authority.cert_pem, pair.cert_pem, pair.key_pem
    )
    path = write_kubeconfig(tmp_path / "kubeconfig", connection)
    identity = Credentials.from_kubeconfig(path).identity()
    assert identity.server == connection.server
    assert identity.authorization is None
    assert identity.ca_file is not None
    assert Path(identity.ca_file).read_bytes() == authority.cert_pem
    assert identity.cert_file is not None and Path(identity.cert_file).read_bytes() == pair.cert_pem
    assert identity.key_file is not None and Path(identity.key_file).read_bytes() == pair.key_pem
    assert path.stat().st_mode & 0o777 == 0o600


def test_token_kubeconfig_round_trips(tmp_path: Path) -> None:
    ca = pki.CertificateAuthority().cert_pem
    connection = Connection("https://127.0.0.1:6443", ca, token="abc")
    path = write_kubeconfig(tmp_path / "kubeconfig", connection, user="sa")
    credentials = Credentials.from_kubeconfig(path)
    assert credentials.server == connection.server
    assert credentials.ca_pem == ca
    assert credentials.authorization == "Bearer abc"
    assert credentials.identity().cert_file is None
