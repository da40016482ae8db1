"""The Secrets of store logins (layer ``specs``, pure).

A login's Secret holds what libpq reads from the environment, so a pipeline takes it whole
with ``envFrom``: ``PGHOST``, ``PGPORT``, ``PGDATABASE``, ``PGUSER``, ``PGPASSWORD``,
``PGSSLMODE``. The writer login's Secret ``<product>-store`` lives in the product's namespace,
owned by the product; a reader ServiceAccount's ``dm-store-<store>-<serviceaccount>`` lives in
the ServiceAccount's namespace, labelled for the store and the ServiceAccount (a reader login
serves every product that grants it, so no one product owns it).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.api.datastore import DataStore
from dataproduct_operator.api.naming import reader_secret_name, writer_secret_name
from dataproduct_operator.constants import (
    COMPONENT_ACCESS,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_SERVICE_ACCOUNT,
    LABEL_STORE,
    OPERATOR_NAME,
)
from dataproduct_operator.specs.dataproduct import owner_reference, product_labels

PASSWORD_KEY = "PGPASSWORD"  # noqa: S105 - the name of a key


@dataclass(frozen=True)
class Login:
    """A store login and its password (kept out of every repr and log)."""

    user: str
    password: str = field(repr=False)


def login_environment(store: DataStore, login: Login) -> dict[str, str]:
    """What libpq reads: the server, the database and the login."""
    postgres = store.spec.postgres
    if postgres is None:
        raise ValueError(f"DataStore {store.name} has no spec.postgres")
    return {
        "PGHOST": postgres.host,
        "PGPORT": str(postgres.port),
        "PGDATABASE": postgres.database,
        "PGUSER": login.user,
        PASSWORD_KEY: login.password,
        "PGSSLMODE": postgres.ssl_mode.value,
    }


def _secret(metadata: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in values.items()},
    }


def build_writer_secret(product: DataProduct, store: DataStore, login: Login) -> dict[str, Any]:
    """The Secret of the product's writer login, owned by the product."""
    metadata: dict[str, Any] = {
        "name": writer_secret_name(product.name),
        "namespace": product.namespace,
        "labels": {
            LABEL_MANAGED_BY: OPERATOR_NAME,
            **product_labels(product),
            LABEL_COMPONENT: COMPONENT_ACCESS,
            LABEL_STORE: store.name,
        },
    }
    if product.uid:
        metadata["ownerReferences"] = [owner_reference(product)]
    return _secret(metadata, login_environment(store, login))


def build_reader_secret(
    store: DataStore, namespace: str, service_account: str, login: Login
) -> dict[str, Any]:
    """The Secret of a ServiceAccount's reader login for ``store``, in its namespace."""
    metadata = {
        "name": reader_secret_name(store.name, service_account),
        "namespace": namespace,
        "labels": {
            LABEL_MANAGED_BY: OPERATOR_NAME,
            LABEL_COMPONENT: COMPONENT_ACCESS,
            LABEL_STORE: store.name,
            LABEL_SERVICE_ACCOUNT: service_account,
        },
    }
    return _secret(metadata, login_environment(store, login))


def secret_password(secret: dict[str, Any]) -> str | None:
    """The password a login Secret holds (None when it holds none)."""
    encoded = (secret.get("data") or {}).get(PASSWORD_KEY)
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def is_our_login_secret(secret: dict[str, Any]) -> bool:
    """Whether the operator made this Secret (a Secret of that name someone else made is
    never overwritten nor deleted)."""
    labels = secret.get("metadata", {}).get("labels") or {}
    return labels.get(LABEL_MANAGED_BY) == OPERATOR_NAME and LABEL_STORE in labels
