"""Certificates and keys for the local control plane (layer ``cluster``, pure apart from files).

One throw-away CA signs the serving certificates of etcd and kube-apiserver and the client
certificates each component uses; the identities follow the names the RBAC bootstrap policy
knows (``system:kube-controller-manager``, ``system:kube-scheduler``, group
``system:masters`` for the admin). ECDSA P-256 keys keep generation instant.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=3650)

APISERVER_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
APISERVER_IPS = ("127.0.0.1", "10.0.0.1")


@dataclass(frozen=True)
class KeyPair:
    """PEM-encoded certificate and private key."""

    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class ClientIdentity:
    """Who a client certificate says its holder is: user name and groups."""

    user: str
    groups: tuple[str, ...] = ()


ADMIN = ClientIdentity("dpo-admin", ("system:masters",))
CONTROLLER_MANAGER = ClientIdentity("system:kube-controller-manager")
SCHEDULER = ClientIdentity("system:kube-scheduler")
KWOK = ClientIdentity("kwok-controller", ("system:masters",))
APISERVER_ETCD_CLIENT = ClientIdentity("kube-apiserver-etcd-client")
# The API server's identity towards kubelets: allowed everything a kubelet serves.
APISERVER_KUBELET_CLIENT = ClientIdentity("kube-apiserver-kubelet-client", ("system:masters",))


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


class CertificateAuthority:
    """A self-signed CA that issues the component certificates."""

    def __init__(self) -> None:
        self._key = _new_key()
        now = datetime.datetime.now(datetime.UTC)
        subject = _name("dataproduct-operator-local-ca")
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )  # fmt: skip

    @property
    def cert_pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def issue_server(
        self, common_name: str, dns_names: tuple[str, ...], ips: tuple[str, ...]
    ) -> KeyPair:
        """A serving certificate valid for the given DNS names and IP addresses."""
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        return self._issue(
            _name(common_name),
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            x509.SubjectAlternativeName(names),
        )

    def issue_client(self, identity: ClientIdentity) -> KeyPair:
        """A client certificate: CN is the user name, O the groups."""
        return self._issue(
            _name(identity.user, identity.groups), [ExtendedKeyUsageOID.CLIENT_AUTH], None
        )

    def _issue(
        self,
        subject: x509.Name,
        usages: list[x509.ObjectIdentifier],
        alt_names: x509.SubjectAlternativeName | None,
    ) -> KeyPair:
        key = _new_key()
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if alt_names is not None:
            builder = builder.add_extension(alt_names, critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def service_account_signing_key() -> tuple[bytes, bytes]:
    """The key pair that signs ServiceAccount tokens: (private PEM, public PEM)."""
    key = _new_key()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _key_pem(key), public


def write_pair(directory: Path, name: str, pair: KeyPair) -> tuple[Path, Path]:
    """Write ``name.crt`` and ``name.key`` (private, 0600); return their paths."""
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(pair.cert_pem)
    write_private(key_path, pair.key_pem)
    return cert_path, key_path


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by its owner only."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)
