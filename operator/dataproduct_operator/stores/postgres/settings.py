"""How to reach one PostgreSQL DataStore (layer ``stores``, pure).

:class:`PostgresSettings` holds the connection (host, port, database, TLS), the admin's
credentials (read from the DataStore's Secret by the reconcile layer) and the pool's bounds and
timeouts; :func:`postgres_settings` makes it from a DataStore.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataproduct_operator.api.datastore import DataStore

DEFAULT_MAX_CONNECTIONS = 5
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5
DEFAULT_ACQUIRE_TIMEOUT_SECONDS = 30.0
DEFAULT_STATEMENT_TIMEOUT_MS = 30_000
DEFAULT_LOCK_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class PostgresSettings:
    """Where and how to connect; ``password`` is the admin's, from the DataStore's Secret."""

    store: str  # the DataStore's name, for endpoints
    host: str
    database: str
    user: str
    password: str = field(repr=False)
    port: int = 5432
    sslmode: str = "disable"
    sslrootcert: str | None = None  # a file path, for verify-full
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    connect_timeout_seconds: int = DEFAULT_CONNECT_TIMEOUT_SECONDS
    acquire_timeout_seconds: float = DEFAULT_ACQUIRE_TIMEOUT_SECONDS  # a free connection, at most
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS

    def connection_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": self.user,
            "password": self.password,
            "sslmode": self.sslmode,
            "connect_timeout": self.connect_timeout_seconds,
            "application_name": "dataproduct-operator",
            "options": f"-c statement_timeout={self.statement_timeout_ms} "
            f"-c lock_timeout={self.lock_timeout_ms} "
            "-c idle_in_transaction_session_timeout=60000",
        }
        if self.sslrootcert:
            kwargs["sslrootcert"] = self.sslrootcert
        return kwargs


def postgres_settings(
    store: DataStore, *, user: str, password: str, sslrootcert: str | None = None
) -> PostgresSettings:
    """The settings of a Postgres DataStore; ``sslrootcert``: the path the CA of
    ``caSecretRef`` was written to (verify-full)."""
    connection = store.spec.postgres
    if connection is None:
        raise ValueError(f"DataStore {store.name} has no postgres connection")
    return PostgresSettings(
        store=store.name,
        host=connection.host,
        port=connection.port,
        database=connection.database,
        user=user,
        password=password,
        sslmode=connection.ssl_mode.value,
        sslrootcert=sslrootcert,
    )
