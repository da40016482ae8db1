"""Certificates: signed by the local CA, with the identities RBAC bootstrap policy knows."""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import NameOID

from dataproduct_operator.cluster import pki


def test_client_certificate_names_user_and_groups_and_is_signed_by_the_ca() -> None:
    authority = pki.CertificateAuthority()
    pair = authority.issue_client(pki.ADMIN)
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    ca = x509.load_pem_x509_certificate(authority.cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dpo-admin"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters"
    ]
    cert.verify_directly_issued_by(ca)


def test_apiserver_certificate_covers_loopback_and_the_service_names() -> None:
    authority = pki.CertificateAuthority()
    pair = authority.issue_server("kube-apiserver", pki.APISERVER_NAMES, pki.APISERVER_IPS)
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "kubernetes.default.svc" in names.get_values_for_type(x509.DNSName)


def test_service_account_key_is_an_ec_private_key() -> None:
    private, public = pki.service_account_signing_key()
    assert isinstance(load_pem_private_key(private, None), ec.EllipticCurvePrivateKey)
    assert public.startswith(b"-----BEGIN PUBLIC KEY-----")
