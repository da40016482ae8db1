"""Kubeconfig files for the local control plane and the tests' identities (layer ``k8s``).

Writing only: one cluster with a CA, and a user with a client certificate or a bearer token,
certificate data embedded so a kubeconfig is a single portable file. Reading any kubeconfig is
the ``kubernetes`` package's loader's job (:mod:`.credentials`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Connection:
    """Everything needed to reach the API server as one identity."""

    server: str
    ca_pem: bytes
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str | None = None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def build_kubeconfig(
    connection: Connection, *, name: str = "dpo-local", user: str = "admin"
) -> dict[str, Any]:
    """A kubeconfig document with one cluster, one user and one current context."""
    credentials: dict[str, str] = {}
    if connection.client_cert_pem is not None and connection.client_key_pem is not None:
        credentials["client-certificate-data"] = _b64(connection.client_cert_pem)
        credentials["client-key-data"] = _b64(connection.client_key_pem)
    if connection.token is not None:
        credentials["token"] = connection.token
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": connection.server,
                    "certificate-authority-data": _b64(connection.ca_pem),
                },
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": f"{user}@{name}", "context": {"cluster": name, "user": user}}],
        "current-context": f"{user}@{name}",
    }


def write_kubeconfig(path: Path, connection: Connection, *, user: str = "admin") -> Path:
    """Write a kubeconfig readable by its owner only (it holds credentials)."""
    document = build_kubeconfig(connection, user=user)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
