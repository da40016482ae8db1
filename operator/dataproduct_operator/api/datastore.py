"""The ``DataStore`` kind, ``datamesh.dev/v1alpha1`` (layer ``api``, pure).

A data store that output ports live in, cluster-scoped and registered by a platform team:
PostgreSQL first (a CloudNativePG cluster, a managed server, the local cluster's). Its
credentials Secret names a role that may create roles and schemas (CREATEROLE, and CREATE on
the database); it need not be a superuser. The annotation ``datamesh.dev/is-default-store:
"true"`` makes it the store of every port that names neither a store nor a volume, as
StorageClasses do. Like the other kinds, these models are the single source of the CRD schema.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from dataproduct_operator.api.base import (
    AGE_COLUMN,
    DNS_LABEL,
    READY_COLUMN,
    REASON_COLUMN,
    ApiModel,
    ClusterObject,
    cel,
    dns_label,
    validations,
)
from dataproduct_operator.api.conditions import Condition
from dataproduct_operator.api.kinds import GROUP

KIND = "DataStore"
PLURAL = "datastores"
SINGULAR = "datastore"
SHORT_NAMES = ("dst",)

DEFAULT_STORE_ANNOTATION = f"{GROUP}/is-default-store"
DEFAULT_POSTGRES_PORT = 5432
# Keys of the credentials Secret (those of the kubernetes.io/basic-auth type).
USERNAME_KEY = "username"
PASSWORD_KEY = "password"  # noqa: S105 - the name of a key, not a password
CA_KEY = "ca.crt"


class StoreType(StrEnum):
    POSTGRES = "Postgres"


class SslMode(StrEnum):
    """libpq's sslmode values the operator supports: off, encrypted, encrypted and verified."""

    DISABLE = "disable"
    REQUIRE = "require"
    VERIFY_FULL = "verify-full"


class CaSecretRef(ApiModel):
    """A Secret in the credentials Secret's namespace holding the server's CA certificate."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    key: str = Field(
        default=CA_KEY, min_length=1, max_length=253, description="Key of the PEM certificate."
    )


class PostgresConnection(ApiModel):
    """Where the PostgreSQL server is and how to reach it."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "self.sslMode != 'verify-full' || has(self.caSecretRef)",
                "sslMode verify-full needs caSecretRef, the CA of the server certificate",
            )
        )
    }

    host: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$",
        description="Host name or IP address of the server, as pipelines in the cluster reach it "
        "(for an in-cluster server, its Service's DNS name).",
    )
    port: int = Field(
        default=DEFAULT_POSTGRES_PORT, ge=1, le=65535, description="TCP port of the server."
    )
    database: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z_][A-Za-z0-9_$-]*$",
        description="The database the ports' schemas are created in.",
    )
    ssl_mode: SslMode = Field(
        default=SslMode.REQUIRE,
        description="disable (no TLS: only on a trusted network), require (TLS, the server's "
        "certificate not checked) or verify-full (TLS, certificate and host name checked "
        "against caSecretRef).",
    )
    ca_secret_ref: CaSecretRef | None = Field(
        default=None, description="The CA certificate for verify-full."
    )


class CredentialsSecretRef(ApiModel):
    """The Secret with the administrative login (keys ``username`` and ``password``)."""

    namespace: str = dns_label(
        "Namespace of the Secret: the operator reads Secrets only in its own namespace."
    )
    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")


class DataStoreSpec(ApiModel):
    """The desired state of a data store."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "self.type != 'Postgres' || has(self.postgres)",
                "a store of type Postgres needs spec.postgres: host, database",
            )
        )
    }

    type: StoreType = Field(description="Kind of store: Postgres.")
    postgres: PostgresConnection | None = Field(
        default=None, description="The PostgreSQL server, for type Postgres."
    )
    credentials_secret_ref: CredentialsSecretRef = Field(
        description="Secret with keys username and password of a role with CREATEROLE and "
        "CREATE on the database (a superuser is not needed)."
    )
    allowed_domains: list[str] = Field(
        default_factory=list,
        max_length=256,
        description="DataDomains whose products may place ports here; empty: every domain.",
        json_schema_extra={
            "x-kubernetes-list-type": "set",
            "items": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63},
        },
    )


class DataStoreStatus(ApiModel):
    """The observed state of a data store, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation last reconciled."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready: connected, and the login holds every privilege the operator needs "
        "(the missing one named when not).",
    )
    server_version: str | None = Field(default=None, description="Version the server reports.")
    ports_placed: int | None = Field(
        default=None, description="How many output ports have a table in this store."
    )


ROOT_VALIDATIONS = (
    cel(
        f"size(self.metadata.name) <= 63 && self.metadata.name.matches('{DNS_LABEL}')",
        "the DataStore name must be a DNS label: at most 63 lower case letters, digits and '-'",
    ),
)

PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
    {"name": "Host", "type": "string", "jsonPath": ".spec.postgres.host"},
    {"name": "Database", "type": "string", "jsonPath": ".spec.postgres.database"},
    {"name": "Ports", "type": "integer", "jsonPath": ".status.portsPlaced"},
    READY_COLUMN,
    REASON_COLUMN,
    {"name": "Version", "type": "string", "priority": 1, "jsonPath": ".status.serverVersion"},
    AGE_COLUMN,
)


class DataStore(ClusterObject):
    """A whole DataStore object as the operator reads it."""

    annotations: dict[str, str] = Field(default_factory=dict)
    spec: DataStoreSpec
    status: DataStoreStatus = Field(default_factory=DataStoreStatus)

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> DataStore:
        store = super().from_object(obj)
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        return store.model_copy(update={"annotations": dict(annotations)})

    @property
    def is_default(self) -> bool:
        """Whether the annotation marks this store as the default."""
        return self.annotations.get(DEFAULT_STORE_ANNOTATION) == "true"

    def allows(self, domain: str) -> bool:
        """Whether products of ``domain`` may place ports here."""
        return not self.spec.allowed_domains or domain in self.spec.allowed_domains
