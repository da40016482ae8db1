"""Kubeconfig files: build them for the local control plane and read their connection data.

Only what this project needs is supported: one cluster with a CA, and a user with either a
client certificate or a bearer token. Certificate data is embedded so a kubeconfig is a single
portable file.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dataproduct_operator.errors import UserError


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


def _data(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    """Inline ``<key>-data`` (base64) or a file named by ``<key>``, relative to the kubeconfig."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return (base / str(entry[key])).read_bytes()
    return None


def load_connection(path: Path, context: str | None = None) -> Connection:
    """The connection data of a kubeconfig's current (or named) context."""
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError as error:
        raise UserError(f"Kubeconfig {path} does not exist") from error
    if not isinstance(document, dict):
        raise UserError(f"Kubeconfig {path} is not a kubeconfig document")
    context_name = context or document.get("current-context")
    contexts = {item["name"]: item["context"] for item in document.get("contexts", [])}
    if context_name not in contexts:
        raise UserError(f"Kubeconfig {path} has no context {context_name!r}")
    selected = contexts[context_name]
    clusters = {item["name"]: item["cluster"] for item in document.get("clusters", [])}
    users = {item["name"]: item.get("user") or {} for item in document.get("users", [])}
    cluster = clusters[selected["cluster"]]
    user = users.get(selected.get("user", ""), {})
    base = path.parent
    ca = _data(cluster, "certificate-authority", base)
    if ca is None:
        raise UserError(f"Kubeconfig {path}: cluster {selected['cluster']!r} has no CA")
    return Connection(
        server=cluster["server"],
        ca_pem=ca,
        client_cert_pem=_data(user, "client-certificate", base),
        client_key_pem=_data(user, "client-key", base),
        token=user.get("token"),
    )
