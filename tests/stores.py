"""Helpers of the tests that place ports in the local cluster's PostgreSQL: the DataStore they
register, its admin Secret, the logins the operator writes to Secrets, quoted statements."""

from __future__ import annotations

import base64
from typing import Any

from psycopg import sql

from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.clusters import OPERATOR_NAMESPACE
from tests.helpers import wait_for
from tests.products import delete_if_present, get_if_present

STORES = "/apis/datamesh.dev/v1alpha1/datastores"
STORE = "t-pg"
ADMIN_SECRET = "t-pg-admin"


def secret_document(namespace: str, name: str, values: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
    }


def store_document(name: str, postgres: LocalPostgres, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataStore",
        "metadata": {"name": name},
        "spec": {
            "type": "Postgres",
            "postgres": {
                # The host the real node's pods reach too (the operator reaches either).
                "host": postgres.store_host,
                "port": postgres.port,
                "database": postgres.database,
                "sslMode": "disable",
            },
            "credentialsSecretRef": {"namespace": OPERATOR_NAMESPACE, "name": secret},
        },
    }


def put_secret(kube: BlockingClient, document: dict[str, Any]) -> None:
    """The Secret made anew."""
    metadata = document["metadata"]
    path = f"/api/v1/namespaces/{metadata['namespace']}/secrets/{metadata['name']}"
    delete_if_present(kube, path)
    kube.create(f"/api/v1/namespaces/{metadata['namespace']}/secrets", document)


def register_store(kube: BlockingClient, postgres: LocalPostgres) -> str:
    """The local PostgreSQL registered as the DataStore ``t-pg`` (not the default), its admin
    login (no superuser) in a Secret of the operator's namespace."""
    admin = {"username": postgres.username, "password": postgres.password}
    put_secret(kube, secret_document(OPERATOR_NAMESPACE, ADMIN_SECRET, admin))
    delete_if_present(kube, f"{STORES}/{STORE}")
    kube.create(STORES, store_document(STORE, postgres, ADMIN_SECRET))
    return STORE


def login(kube: BlockingClient, namespace: str, name: str) -> tuple[str, str]:
    """PGUSER and PGPASSWORD of a login Secret."""
    secret = kube.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    return data["PGUSER"], data["PGPASSWORD"]


def wait_login(kube: BlockingClient, namespace: str, name: str) -> tuple[str, str]:
    """The login of a Secret, once the operator wrote it."""
    path = f"/api/v1/namespaces/{namespace}/secrets/{name}"
    wait_for(lambda: get_if_present(kube, path), timeout=30, description=f"Secret {name}")
    return login(kube, namespace, name)


def q(template: str, *name: str) -> sql.Composed:
    """``template`` with ``{t}`` the quoted (schema-qualified) name."""
    return sql.SQL(template).format(t=sql.Identifier(*name))


def store_product(
    namespace: str, readers: list[dict[str, Any]], *, name: str = "orders", **spec: Any
) -> dict[str, Any]:
    """A product named ``name`` (orders, by default) whose one port ``orders-v1`` is a table in
    the DataStore ``t-pg``, read by ``readers``; ``spec``: more of its spec."""
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "domain": namespace,
            "owner": {"team": f"{namespace}-team"},
            "description": "Orders, one row per order.",
            "outputPorts": [
                {
                    "name": "orders-v1",
                    "store": {"name": STORE},
                    "schema": [
                        {"name": "order_id", "type": "string", "required": True, "unique": True},
                        {"name": "amount", "type": "integer"},
                        {"name": "placed_at", "type": "timestamp"},
                    ],
                }
            ],
            "access": {"readers": readers},
            **spec,
        },
    }
