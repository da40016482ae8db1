"""The ``DataProduct`` kind, ``datamesh.dev/v1alpha1`` (layer ``api``, pure).

These models are the single source of the CRD schema (``make generate`` renders them into
``crds/``) and the typed view the operator works with. Validation that the API server can do
lives here as schema facts and CEL rules, each with a message that says what must change.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from dataproduct_operator.api.base import (
    AGE_COLUMN,
    DNS_LABEL,
    READY_COLUMN,
    REASON_COLUMN,
    ApiModel,
    InRange,
    IntOrString,
    cel,
    dns_label,
    keyed_by_name,
    resource_map,
    validations,
)
from dataproduct_operator.api.conditions import Condition, ConditionStatus
from dataproduct_operator.api.cron import (
    CRON,
    CRON_FIELDS,
    CRON_MESSAGE,
    MAX_SCHEDULE_LENGTH,
    RANGE_ORDER_MESSAGE,
    RANGE_ORDER_RULE,
    check_schedule,
)
from dataproduct_operator.api.grants import (
    DEFAULT_MAX_DURATION,
    AccessPhase,
    checked_grant_duration,
    grant_duration,
)
from dataproduct_operator.api.quantity import QuantityRange, ResourceRanges
from dataproduct_operator.api.run_terms import FileFormat, RunMode, Severity

KIND = "DataProduct"
PLURAL = "dataproducts"
SINGULAR = "dataproduct"
SHORT_NAMES = ("dp",)
CATEGORIES = ("datamesh",)

# Children are named <product>-<part>; Kubernetes limits what those names may be.
MAX_PRODUCT_NAME = 40
MAX_CRONJOB_NAME = 52  # a CronJob's Jobs append 11 characters and must stay within 63
MAX_CLAIM_NAME = 63  # also a label value on the claim

# Lets the API server apply the nested defaults when the whole object is left out.
OBJECT_DEFAULT: dict[str, Any] = {"default": {}}

# A container image reference as the container runtimes read it:
# [host[:port]/]path[:tag][@sha256:<64 hex digits>], the path in lower case.
_DOMAIN_PART = r"[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?"
_PATH_PART = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = (
    rf"^({_DOMAIN_PART}(\.{_DOMAIN_PART})*(:[0-9]{{1,5}})?/)?{_PATH_PART}(/{_PATH_PART})*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
IMAGE_MESSAGE = (
    "image must be a container image reference [registry[:port]/]path[:tag][@sha256:digest], "
    "the path in lower case, e.g. ghcr.io/acme/orders-ingest:1.4 or "
    "registry.example.com:5000/team/job@sha256:<64 hex digits>"
)
MAX_IMAGE_LENGTH = 512
SQL_SOURCE_MESSAGE = (
    "a sql pipeline's source is another product's port, a file (inputs[].file), or an "
    "external input of type postgres with a table and a secretRef"
)
# A file source's URL: http(s), a host, nothing after it but a path, query or fragment.
FILE_URL = r"^https?://[^/?#@\s]+([/?#]\S*)?$"
FILE_URL_MESSAGE = (
    "file.url must be an http:// or https:// URL with a host and no spaces, e.g. "
    "https://data.example.com/exports/orders.csv"
)
# user[:password]@ before the host: a credential in the spec would be readable by every
# viewer of the product and end up in the pod's environment.
URL_CREDENTIALS = r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@"
URL_CREDENTIALS_MESSAGE = (
    "file.url must not carry a user or password (user:password@host): anyone who can read "
    "the DataProduct would see it; serve the file without credentials in the URL, or put it "
    "on a volume (file.volume)"
)
MAX_FILE_URL_LENGTH = 2048
MAX_FILE_PATH_LENGTH = 1024
# A DNS subdomain, as Kubernetes names a PersistentVolumeClaim.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
FILE_PATH_ABSOLUTE_MESSAGE = (
    "file.volume.path is relative to the claim's root: remove the leading /, e.g. "
    "exports/orders.csv"
)
PARENT_SEGMENT = r"(^|/)\.\.(/|$)"
FILE_PATH_PARENT_MESSAGE = (
    "file.volume.path must not have a .. segment: it names a file inside the claim, "
    "e.g. exports/orders.csv"
)
# postgresql://host[:port]/database: where a postgres source is; no user or password in it.
POSTGRES_LOCATION = r"^postgres(ql)?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9_-]{1,63}$"
# schema.table or table: SQL identifiers as PostgreSQL keeps them unquoted.
QUALIFIED_TABLE = r"^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$"
DURATION = r"^[1-9][0-9]*(s|m|h|d|w)$"
SEMVER = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PERCENT = r"^(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)%$"

# Bounds of the quantities, checked by the CRD (CEL) and the models alike. A volume of 0 is
# refused by Kubernetes; one container runs on one node, and no node has 1000 cores or 64Ti.
STORAGE_SIZE = QuantityRange("size", "5Gi", "1Pi", positive=True)
PIPELINE_RESOURCES = ResourceRanges(
    named=(
        QuantityRange("cpu", "500m or 2", "1000"),
        QuantityRange("memory", "512Mi or 4Gi", "64Ti"),
    ),
    other=QuantityRange("any other resource", "1 or 10Gi", "1Pi"),
)
MAX_RESOURCES = 16  # entries of requests or limits; bounds the cost of their CEL rules
MAX_ENV = 64  # environment variables of a pipeline; bounds the cost of the Secret name rule
MAX_ARGUMENT_LENGTH = 4096  # one item of a command or of its arguments
MAX_TAG_LENGTH = 64
MAX_SQL_LENGTH = 16384  # a pipeline's transform (it reaches the runner in its environment)
MAX_CHECK_SQL_LENGTH = 4096
MAX_COLUMN_NAME = 128
MAX_ACCESS_HISTORY = 100  # steps of access requests kept in a product's status
# One statement that reads: SELECT, or WITH ... SELECT (RE2 syntax, for CEL and Python alike).
READ_QUERY = r"(?i)^\s*(select|with)\b"


class Lifecycle(StrEnum):
    DRAFT = "Draft"
    EXPERIMENTAL = "Experimental"
    PRODUCTION = "Production"
    DEPRECATED = "Deprecated"
    RETIRED = "Retired"


class Classification(StrEnum):
    PUBLIC = "Public"
    INTERNAL = "Internal"
    CONFIDENTIAL = "Confidential"
    RESTRICTED = "Restricted"


class Format(StrEnum):
    PARQUET = "parquet"
    CSV = "csv"
    JSONL = "jsonl"
    POSTGRES = "postgres"
    OTHER = "other"


class AccessMode(StrEnum):
    READ_WRITE_ONCE = "ReadWriteOnce"
    READ_WRITE_MANY = "ReadWriteMany"
    READ_WRITE_ONCE_POD = "ReadWriteOncePod"


class ReaderKind(StrEnum):
    GROUP = "Group"
    USER = "User"
    SERVICE_ACCOUNT = "ServiceAccount"


class Toggle(StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"


class Discoverability(StrEnum):
    PUBLIC = "Public"
    DOMAIN = "Domain"
    HIDDEN = "Hidden"


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class Contact(ApiModel):
    """A person to ask about the product."""

    name: str = Field(min_length=1, max_length=128, description="Full name.")
    email: str | None = Field(
        default=None, max_length=254, pattern=EMAIL, description="Email address."
    )


# Groups and users named system: are Kubernetes' own: system:authenticated holds every
# signed-in user, system:nodes and system:serviceaccounts the cluster's machinery.
SYSTEM_PREFIX = "system:"
SYSTEM_SUBJECT_REASON = (
    "names starting with system: are reserved by Kubernetes: such groups hold every "
    "authenticated user (system:authenticated) or node and controller identities"
)


class Owner(ApiModel):
    """Who owns the product."""

    team: str = Field(
        min_length=1,
        max_length=128,
        json_schema_extra=validations(
            cel(
                f"!self.startsWith('{SYSTEM_PREFIX}')",
                f"the owner team must be a group of the team's own, not {SYSTEM_PREFIX}...: "
                + SYSTEM_SUBJECT_REASON,
            )
        ),
        description="The owning team; also the Kubernetes group granted the owner Role. "
        "It may not start with system:.",
    )
    contacts: list[Contact] = Field(
        default_factory=list, max_length=16, description="People to contact."
    )


class DataProductRef(ApiModel):
    """An output port of another data product."""

    namespace: str | None = dns_label(
        "Namespace of the product; defaults to this one.", optional=True
    )
    name: str = dns_label("Name of the product.")
    port: str = dns_label("Name of its output port.")


class SecretRef(ApiModel):
    """A Secret in the product's namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")


class ExternalSource(ApiModel):
    """A source outside the mesh, such as an operational database."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "!has(self.table) || self.type == 'postgres'",
                "table is for a postgres source; remove it or set type: postgres",
            ),
            cel(
                f"!has(self.table) || self.uri.matches(r'{POSTGRES_LOCATION}')",
                "a postgres source read by a sql pipeline has a uri postgresql://host[:port]/"
                "database, without credentials (they go in its secretRef)",
            ),
        )
    }

    type: str = Field(
        min_length=1, max_length=63, description="Kind of source, e.g. postgres, s3, kafka."
    )
    uri: str = Field(min_length=1, max_length=2048, description="Where the source is.")
    secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret with the credentials to read it. A postgres source read by a sql "
        "pipeline: libpq's variables (PGUSER, PGPASSWORD, optionally PGSSLMODE).",
    )
    table: Annotated[str, Field(max_length=127, pattern=QUALIFIED_TABLE)] | None = Field(
        default=None,
        description="For a postgres source a sql pipeline reads: the table (schema.table, or "
        "table in schema public) the runner reads, with the login of secretRef, from the "
        "database of uri.",
    )

    @model_validator(mode="after")
    def _table_of_postgres(self) -> ExternalSource:
        if self.table is not None and self.type != "postgres":
            raise ValueError("table is for a postgres source; remove it or set type: postgres")
        if self.table is not None and not re.match(POSTGRES_LOCATION, self.uri):
            raise ValueError(
                "a postgres source read by a sql pipeline has a uri postgresql://host[:port]/"
                "database, without credentials (they go in its secretRef)"
            )
        return self

    @property
    def readable_by_runner(self) -> bool:
        """Whether the built-in runner can read it: a postgres table with a login Secret."""
        return self.type == "postgres" and self.table is not None and self.secret_ref is not None


class FileVolume(ApiModel):
    """A file on a PersistentVolumeClaim of the product's own namespace."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel("!self.path.startsWith('/')", FILE_PATH_ABSOLUTE_MESSAGE),
            cel(f"!self.path.matches(r'{PARENT_SEGMENT}')", FILE_PATH_PARENT_MESSAGE),
        )
    }

    claim_name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="The PersistentVolumeClaim, in the product's namespace. Its pipeline pods "
        "mount it read-only.",
    )
    path: str = Field(
        min_length=1,
        max_length=MAX_FILE_PATH_LENGTH,
        description="The file, relative to the claim's root (no leading / and no .. segment), "
        "e.g. exports/orders.csv.",
    )

    @model_validator(mode="after")
    def _inside_the_claim(self) -> FileVolume:
        if self.path.startswith("/"):
            raise ValueError(FILE_PATH_ABSOLUTE_MESSAGE)
        if re.search(PARENT_SEGMENT, self.path):
            raise ValueError(FILE_PATH_PARENT_MESSAGE)
        return self


class FileSource(ApiModel):
    """A CSV, JSON-lines or Parquet file a sql pipeline reads: from an http(s) URL or from a
    volume of the product's namespace."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.url) != has(self.volume)",
                "a file input sets exactly one of url (http or https) or volume (a claim and "
                "a path in it)",
            ),
        )
    }

    format: FileFormat = Field(
        description="csv (with a header line), jsonl (one JSON object per line) or parquet."
    )
    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_FILE_URL_LENGTH,
        json_schema_extra=validations(
            cel(f"!self.matches(r'{URL_CREDENTIALS}')", URL_CREDENTIALS_MESSAGE),
            cel(f"self.matches(r'{FILE_URL}')", FILE_URL_MESSAGE),
        ),
        description="An http:// or https:// URL the runner downloads at the start of each run "
        "(no user or password in it).",
    )
    volume: FileVolume | None = Field(
        default=None, description="A file on a PersistentVolumeClaim of the product's namespace."
    )

    @model_validator(mode="after")
    def _one_place(self) -> FileSource:
        if (self.url is None) == (self.volume is None):
            raise ValueError(
                "a file input sets exactly one of url (http or https) or volume (a claim and "
                "a path in it)"
            )
        if self.url is not None:
            if re.match(URL_CREDENTIALS, self.url):
                raise ValueError(URL_CREDENTIALS_MESSAGE)
            if not re.match(FILE_URL, self.url):
                raise ValueError(FILE_URL_MESSAGE)
        return self


INPUT_KINDS_MESSAGE = "an input must set exactly one of dataProduct, external or file"


class Input(ApiModel):
    """Something the product is built from: another product's port, an external source, or a
    file."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "[has(self.dataProduct), has(self.external), has(self.file)]"
                ".filter(x, x).size() == 1",
                INPUT_KINDS_MESSAGE,
            )
        )
    }

    name: str = dns_label("Name of the input, unique in the product.")
    data_product: DataProductRef | None = Field(
        default=None, description="An output port of another data product."
    )
    external: ExternalSource | None = Field(default=None, description="An external source.")
    file: FileSource | None = Field(
        default=None,
        description="A CSV, JSON-lines or Parquet file, from an http(s) URL or a volume; a "
        "sql pipeline reads it as a table named like the input.",
    )

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Input:
        kinds = (self.data_product, self.external, self.file)
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError(f"input {self.name}: {INPUT_KINDS_MESSAGE}")
        return self


class Storage(ApiModel):
    """The volume that holds an output port's data."""

    size: Annotated[str, InRange(STORAGE_SIZE)] = Field(
        default="1Gi",
        description=f"Requested size: a quantity such as 5Gi, {STORAGE_SIZE.bounds}. "
        "Can grow, never shrinks.",
    )
    storage_class_name: str | None = Field(
        default=None,
        max_length=253,
        description="StorageClass of the claim; the cluster default when absent.",
    )
    access_mode: AccessMode = Field(
        default=AccessMode.READ_WRITE_ONCE, description="Access mode of the claim."
    )


class Column(ApiModel):
    """One column (field) of an output port's schema."""

    name: str = Field(min_length=1, max_length=128, description="Column name.")
    type: str = Field(
        min_length=1, max_length=64, description="Logical type, e.g. string, integer, timestamp."
    )
    description: str | None = Field(default=None, max_length=1024, description="Meaning.")
    required: bool = Field(default=False, description="Never null.")
    unique: bool = Field(default=False, description="No two rows share a value.")
    pii: bool = Field(default=False, description="Holds personally identifiable information.")
    classification: Classification | None = Field(
        default=None, description="Classification of this column, if stricter than the product."
    )


class Slo(ApiModel):
    """Service level objectives of an output port."""

    freshness: str | None = Field(
        default=None,
        json_schema_extra=validations(
            cel(
                f"self.matches(r'{DURATION}')",
                "freshness must be a duration such as 30m, 24h or 7d",
            )
        ),
        max_length=16,
        description="Data must be newer than this: a duration such as 30m, 24h or 7d.",
    )
    availability: str | None = Field(
        default=None,
        pattern=PERCENT,
        max_length=8,
        description="Target availability as a percentage string, e.g. 99.9%.",
    )
    freshness_column: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_COLUMN_NAME,
        description="A timestamp column of the port: the newest value a run publishes is the "
        "data's age (the run's watermark). Absent: the time of the last publish.",
    )


class NullFraction(ApiModel):
    """At most this share of a column's values may be NULL."""

    column: str = Field(min_length=1, max_length=MAX_COLUMN_NAME, description="The column.")
    fraction: float = Field(ge=0, le=1, description="The share allowed, from 0 to 1.")


class FreshnessCheck(ApiModel):
    """The newest value of a timestamp column is at most this old."""

    column: str = Field(min_length=1, max_length=MAX_COLUMN_NAME, description="The column.")
    max_age: str = Field(
        max_length=16,
        pattern=DURATION,
        description="A duration such as 30m, 24h or 7d.",
    )


class PortCheck(ApiModel):
    """A data quality check of the rows a built-in (sql) run stages, before they are
    published; exactly one of sql, minRows, maxNullFraction or freshness."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "[has(self.sql), has(self.minRows), has(self.maxNullFraction), "
                "has(self.freshness)].filter(x, x).size() == 1",
                "a check sets exactly one of sql, minRows, maxNullFraction or freshness",
            )
        )
    }

    name: str = dns_label("Name of the check, unique in the port, e.g. no-negative-amounts.")
    severity: Severity = Field(
        default=Severity.ERROR,
        description="Error: a failure stops the publish, the previous rows stay and the run "
        "fails. Warning: reported, the rows are published.",
    )
    sql: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CHECK_SQL_LENGTH,
        description="A query (DuckDB SQL) returning one number: the violating rows; the staged "
        "rows are the table named like the port's table (the port's name with '-' as '_'), "
        "e.g. SELECT count(*) FROM orders_v1 WHERE amount < 0.",
    )
    min_rows: int | None = Field(
        default=None, ge=0, le=10**15, description="At least this many rows."
    )
    max_null_fraction: NullFraction | None = Field(
        default=None, description="At most this share of NULLs in a column."
    )
    freshness: FreshnessCheck | None = Field(
        default=None, description="The newest value of a timestamp column is recent enough."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> PortCheck:
        kinds = (self.sql, self.min_rows, self.max_null_fraction, self.freshness)
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError(
                f"check {self.name}: set exactly one of sql, minRows, maxNullFraction or freshness"
            )
        return self


class StoreRef(ApiModel):
    """A DataStore an output port lives in."""

    name: str = dns_label("Name of the DataStore (kubectl get datastores).")


class OutputPort(ApiModel):
    """A way consumers get the data: a table in a data store (or a volume), one format, one
    schema."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "!(has(self.storage) && has(self.store))",
                "a port sets at most one of storage (a volume) or store (a DataStore); with "
                "neither it goes to the default DataStore, else to a volume",
            )
        )
    }

    name: str = dns_label("Name of the port, e.g. orders-v1.")
    description: str | None = Field(default=None, max_length=2048, description="What it offers.")
    format: Format = Field(default=Format.PARQUET, description="Format of the data.")
    storage: Storage | None = Field(
        default=None,
        description="A volume (PersistentVolumeClaim) for the data, private to the product's "
        "namespace.",
    )
    store: StoreRef | None = Field(
        default=None,
        description="The DataStore whose table holds the data, readable by the product's "
        "readers with their own logins. With neither store nor storage: the DataStore marked "
        "datamesh.dev/is-default-store, else a volume.",
    )
    schema_: list[Column] = Field(
        default_factory=list,
        alias="schema",
        max_length=256,
        description="Columns of the data.",
        json_schema_extra=keyed_by_name(),
    )
    slo: Slo | None = Field(default=None, description="Service level objectives.")
    checks: list[PortCheck] = Field(
        default_factory=list,
        max_length=32,
        description="Data quality checks a built-in (sql) run makes of the rows before it "
        "publishes them, besides the contract of the schema (required: no NULL, unique: no "
        "duplicate, the types).",
        json_schema_extra=keyed_by_name(),
    )

    @property
    def volume(self) -> Storage:
        """The volume of a port kept in one: ``storage``, or its defaults when left out."""
        return self.storage or Storage()


class EnvFromKey(ApiModel):
    name: str = Field(min_length=1, max_length=253, description="Name of the object.")
    key: str = Field(min_length=1, max_length=253, description="Key in it.")


class EnvSource(ApiModel):
    """Where an environment variable's value comes from."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                "valueFrom must set exactly one of secretKeyRef or configMapKeyRef",
            )
        )
    }

    secret_key_ref: EnvFromKey | None = Field(default=None, description="A key of a Secret.")
    config_map_key_ref: EnvFromKey | None = Field(default=None, description="A key of a ConfigMap.")


class EnvVar(ApiModel):
    """An environment variable of a pipeline container."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel("!(has(self.value) && has(self.valueFrom))", "set value or valueFrom, not both")
        )
    }

    name: str = Field(
        min_length=1, max_length=253, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", description="Name."
    )
    value: str | None = Field(default=None, max_length=32768, description="Literal value.")
    value_from: EnvSource | None = Field(
        default=None, description="Value from a Secret or ConfigMap."
    )


class Resources(ApiModel):
    """Compute resources of a pipeline container (quantities such as 500m, 1Gi)."""

    requests: dict[str, IntOrString] = Field(
        default_factory=dict,
        max_length=MAX_RESOURCES,
        description=f"Requests: {PIPELINE_RESOURCES.summary}.",
        json_schema_extra=resource_map(PIPELINE_RESOURCES),
    )
    limits: dict[str, IntOrString] = Field(
        default_factory=dict,
        max_length=MAX_RESOURCES,
        description=f"Limits: {PIPELINE_RESOURCES.summary}.",
        json_schema_extra=resource_map(PIPELINE_RESOURCES),
    )

    @field_validator("requests", "limits")
    @classmethod
    def _in_range(cls, resources: dict[str, int | str]) -> dict[str, int | str]:
        PIPELINE_RESOURCES.check(resources)
        return resources


class Pipeline(ApiModel):
    """A job that produces the product's data: scheduled (CronJob) or on demand (Job). Either a
    container of your own (image) or a SQL transform the built-in runner runs (sql)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.image) != has(self.sql)",
                "a pipeline sets exactly one of image (a container of your own) or sql (a "
                "transform the built-in runner runs)",
            ),
            cel(
                "!has(self.sql) || has(self.output)",
                "a sql pipeline names the output port it writes in output",
            ),
            cel(
                "has(self.sql) || (!has(self.output) && "
                "(!has(self.sources) || size(self.sources) == 0))",
                "output and sources are for sql pipelines; an image pipeline gets its ports "
                "and inputs from its environment",
            ),
            cel(
                "!has(self.sql) || ((!has(self.command) || size(self.command) == 0) && "
                "(!has(self.args) || size(self.args) == 0))",
                "command and args are for image pipelines; a sql pipeline runs the built-in runner",
            ),
        )
    }

    name: str = dns_label("Name of the pipeline, e.g. ingest.")
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_IMAGE_LENGTH,
        json_schema_extra=validations(cel(f"self.matches(r'{IMAGE_REFERENCE}')", IMAGE_MESSAGE)),
        description="Container image: [registry[:port]/]path[:tag][@sha256:digest], e.g. "
        "ghcr.io/acme/orders-ingest:1.4.",
    )
    sql: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SQL_LENGTH,
        json_schema_extra=validations(
            cel(
                f"self.matches(r'{READ_QUERY}')",
                "sql must be one query that reads: SELECT ... or WITH ... SELECT",
            )
        ),
        description="A transform the built-in runner runs (DuckDB SQL): one SELECT producing "
        "the output port's rows; each of sources is a table named like its input.",
    )
    output: str | None = dns_label("The output port a sql pipeline writes.", optional=True)
    mode: RunMode = Field(
        default=RunMode.REPLACE,
        description="How a sql pipeline publishes: Replace the port's rows, Append to them, or "
        "Merge on the port's unique columns.",
    )
    sources: list[Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]] = Field(
        default_factory=list,
        max_length=32,
        description="The inputs a sql pipeline reads, by name; each is a table of that "
        "name in its SQL.",
    )
    command: list[Annotated[str, Field(max_length=MAX_ARGUMENT_LENGTH)]] = Field(
        default_factory=list, max_length=64, description="Entrypoint."
    )
    args: list[Annotated[str, Field(max_length=MAX_ARGUMENT_LENGTH)]] = Field(
        default_factory=list, max_length=256, description="Arguments."
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=MAX_ENV,
        description="Extra environment variables.",
        json_schema_extra=keyed_by_name(),
    )
    resources: Resources | None = Field(default=None, description="Requests and limits.")
    schedule: str | None = Field(
        default=None,
        max_length=MAX_SCHEDULE_LENGTH,
        json_schema_extra=validations(
            cel(f"self.matches(r'{CRON}')", CRON_MESSAGE),
            *(cel(field.cel_rule(), field.message) for field in CRON_FIELDS),
            cel(RANGE_ORDER_RULE, RANGE_ORDER_MESSAGE),
        ),
        description="Cron schedule: minute (0-59), hour (0-23), day of month (1-31), month "
        "(1-12 or JAN-DEC) and day of week (0-7 or SUN-SAT), separated by spaces; each a list "
        "of *, values or ranges a-b, with an optional step /n. Absent: runs on demand, when "
        "the annotation datamesh.dev/run names this pipeline.",
    )
    timeout_seconds: int | None = Field(
        default=None, ge=1, le=604800, description="A run is stopped after this many seconds."
    )
    retries: int = Field(default=0, ge=0, le=20, description="Retries of a failed run.")
    suspend: bool = Field(default=False, description="Pause the schedule.")

    @property
    def what_runs(self) -> str:
        """What a run runs, in a few words: its image, or the built-in runner's transform."""
        if self.image is not None:
            return self.image
        return f"a SQL transform into {self.output} ({self.mode.value})"

    @field_validator("image")
    @classmethod
    def _image_reference(cls, image: str | None) -> str | None:
        if image is not None and not re.fullmatch(IMAGE_REFERENCE[1:-1], image):
            raise ValueError(IMAGE_MESSAGE)
        return image

    @field_validator("sql")
    @classmethod
    def _reads(cls, sql: str | None) -> str | None:
        if sql is not None and not re.match(READ_QUERY, sql):
            raise ValueError("sql must be one query that reads: SELECT ... or WITH ... SELECT")
        return sql

    @model_validator(mode="after")
    def _image_or_sql(self) -> Pipeline:
        name = f"pipeline {self.name}"
        if (self.image is None) == (self.sql is None):
            raise ValueError(f"{name}: set exactly one of image or sql")
        if self.sql is not None and self.output is None:
            raise ValueError(f"{name}: a sql pipeline names the output port it writes in output")
        if self.sql is None and (self.output is not None or self.sources):
            raise ValueError(f"{name}: output and sources are for sql pipelines")
        if self.sql is not None and (self.command or self.args):
            raise ValueError(f"{name}: command and args are for image pipelines")
        return self

    @field_validator("schedule")
    @classmethod
    def _schedule_in_range(cls, schedule: str | None) -> str | None:
        return None if schedule is None else check_schedule(schedule)


class Reader(ApiModel):
    """A subject allowed to read the product."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "self.kind != 'ServiceAccount' || has(self.namespace)",
                "a ServiceAccount reader needs a namespace",
            ),
            cel(
                "self.kind == 'ServiceAccount' || !has(self.namespace)",
                "only a ServiceAccount reader has a namespace; remove it",
            ),
            cel(
                f"self.kind == 'ServiceAccount' || !self.name.startsWith('{SYSTEM_PREFIX}')",
                f"a Group or User reader may not start with {SYSTEM_PREFIX}: "
                + SYSTEM_SUBJECT_REASON,
            ),
        )
    }

    kind: ReaderKind = Field(description="Group, User or ServiceAccount.")
    name: str = Field(min_length=1, max_length=253, description="Name of the subject.")
    namespace: str | None = Field(
        default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Namespace of a ServiceAccount.",
    )  # fmt: skip


class AutoApprove(ApiModel):
    """Access requests the operator approves by itself."""

    domains: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="DataDomains whose requests (made in their namespace) are approved by the "
        "operator, recorded as such in the request's decision and history.",
        json_schema_extra={
            "x-kubernetes-list-type": "set",
            "items": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63},
        },
    )


class AccessRequests(ApiModel):
    """Self-service access: DataAccessRequests for this product, answered by its owners."""

    enabled: bool = Field(
        default=True,
        description="Whether consumers may request access; false: every request is Denied.",
    )
    max_duration: str = grant_duration(
        "The longest access a request may ask for or be granted (30m, 12h, 30d; 1m to 366d). "
        "A request asking for more is Denied; one asking for nothing gets this.",
        default=DEFAULT_MAX_DURATION,
    )
    auto_approve: AutoApprove = Field(
        default_factory=AutoApprove, description="Requests approved without the owners."
    )

    @field_validator("max_duration")
    @classmethod
    def _duration_in_range(cls, value: str) -> str:
        checked_grant_duration(value)
        return value


class Access(ApiModel):
    """Who may read the product."""

    readers: list[Reader] = Field(
        default_factory=list,
        max_length=64,
        description="Subjects granted the reader Role.",
    )
    requests: AccessRequests = Field(
        default_factory=AccessRequests,
        description="Access requests (DataAccessRequest) and how they are answered.",
    )


class Monitoring(ApiModel):
    """Alerting for the product."""

    alerts: Toggle = Field(
        default=Toggle.ENABLED,
        description="Enabled: a PrometheusRule alerts on stale data and failed runs "
        "(when the Prometheus Operator is installed).",
    )


def _child_names_fit(items: str, item: str, child: str, limit: int) -> dict[str, str]:
    """CEL rule on the root: ``<product>-<item name>`` fits the child's name limit."""
    return cel(
        f"!has(self.spec.{items}) || self.spec.{items}.all(x, "
        f"size(self.metadata.name) + 1 + size(x.name) <= {limit})",
        f"the {child} name <product>-<{item}> must be at most {limit} characters: "
        f"shorten the product or the {item} name",
    )


class DataProductSpec(ApiModel):
    """The desired state of a data product."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "!has(self.pipelines) || self.pipelines.all(p, !has(p.output) || "
                "self.outputPorts.exists(o, o.name == p.output))",
                "pipelines[].output must name one of spec.outputPorts",
            ),
            cel(
                "!has(self.pipelines) || self.pipelines.all(p, !has(p.sources) || "
                "p.sources.all(s, has(self.inputs) && self.inputs.exists(i, i.name == s)))",
                "pipelines[].sources must name inputs of spec.inputs",
            ),
            cel(
                "!has(self.pipelines) || !has(self.inputs) || self.pipelines.all(p, "
                "!has(p.sources) || p.sources.all(s, self.inputs.all(i, i.name != s || "
                "has(i.dataProduct) || has(i.file) || (i.external.type == 'postgres' && "
                "has(i.external.table) && has(i.external.secretRef)))))",
                SQL_SOURCE_MESSAGE,
            ),
        )
    }

    domain: str = dns_label("The business domain that owns the product.")
    owner: Owner = Field(description="The owning team and its contacts.")
    description: str = Field(min_length=1, max_length=4096, description="What the data is.")
    version: str | None = Field(
        default=None, max_length=64, pattern=SEMVER, description="Semantic version, e.g. 1.2.0."
    )
    lifecycle: Lifecycle = Field(default=Lifecycle.DRAFT, description="Lifecycle stage.")
    classification: Classification = Field(
        default=Classification.INTERNAL, description="Data classification."
    )
    tags: list[Annotated[str, Field(min_length=1, max_length=MAX_TAG_LENGTH)]] = Field(
        default_factory=list, max_length=32, description="Free-form tags."
    )
    inputs: list[Input] = Field(
        default_factory=list,
        max_length=32,
        description="What the product is built from.",
        json_schema_extra=keyed_by_name(),
    )
    output_ports: list[OutputPort] = Field(
        min_length=1,
        max_length=16,
        description="How consumers get the data; one volume each.",
        json_schema_extra=keyed_by_name(),
    )
    pipelines: list[Pipeline] = Field(
        default_factory=list,
        max_length=16,
        description="Jobs that produce the data.",
        json_schema_extra=keyed_by_name(),
    )
    access: Access = Field(
        default_factory=Access,
        description="Who may read the product.",
        json_schema_extra=OBJECT_DEFAULT,
    )
    monitoring: Monitoring = Field(
        default_factory=Monitoring, description="Alerting.", json_schema_extra=OBJECT_DEFAULT
    )
    discoverability: Discoverability = Field(
        default=Discoverability.PUBLIC,
        description="Who finds the product in the catalog. Public: everyone. Domain: only on "
        "its domain's page, and only where the catalog is configured to show such products. "
        "Hidden: never listed. The catalog shows metadata only, never data.",
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description="Retain: the data volumes survive deletion of the product, and of its "
        "namespace: once a claim is bound, its PersistentVolume gets the Retain reclaim policy "
        "and labels for this port, and a product of the same namespace, domain, name and port "
        "made again binds it again. Volumes not bound yet keep their StorageClass's reclaim "
        "policy (often Delete). Delete: they are deleted with it.",
    )

    @model_validator(mode="after")
    def _pipelines_name_ports_and_inputs(self) -> DataProductSpec:
        ports = {port.name for port in self.output_ports}
        inputs = {source.name for source in self.inputs}
        for pipeline in self.pipelines:
            if pipeline.output is not None and pipeline.output not in ports:
                raise ValueError(
                    f"pipeline {pipeline.name}: output {pipeline.output} is not one of "
                    f"spec.outputPorts ({', '.join(sorted(ports))})"
                )
            unknown = [s for s in pipeline.sources if s not in inputs]
            if unknown:
                raise ValueError(
                    f"pipeline {pipeline.name}: sources {', '.join(unknown)} are not inputs of "
                    "spec.inputs"
                )
            unreadable = [
                source.name
                for source in self.inputs
                if source.name in pipeline.sources
                and source.external is not None
                and not source.external.readable_by_runner
            ]
            if unreadable:
                raise ValueError(
                    f"pipeline {pipeline.name}: sources {', '.join(unreadable)}: "
                    f"{SQL_SOURCE_MESSAGE}"
                )
        return self


class RunStatus(StrEnum):
    NEVER_RUN = "NeverRun"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class Freshness(StrEnum):
    MET = "Met"  # the data is newer than the port's slo.freshness
    STALE = "Stale"  # older than slo.freshness
    UNKNOWN = "Unknown"  # no SLO, or nothing published yet


class ChecksState(StrEnum):
    PASSING = "Passing"  # the last run that checked the port passed every Error check
    FAILING = "Failing"  # an Error check of the last run failed (a Warning check never fails it)
    UNKNOWN = "Unknown"  # no run has checked the port yet


class RunChecks(ApiModel):
    """The checks of one run: the port's contract and its declared checks."""

    passed: int = Field(default=0, ge=0, description="Checks that passed.")
    failed: int = Field(default=0, ge=0, description="Checks that failed (Error or Warning).")
    failed_names: list[str] = Field(
        default_factory=list, description="The names of the failed checks, as far as reported."
    )
    failed_errors: int = Field(
        default=0,
        ge=0,
        description="Of the failed checks, those of severity Error: they stopped the publish.",
    )


class LastRun(ApiModel):
    """The newest finished (or running) run of a pipeline, from its Job and its run report."""

    job_name: str | None = Field(default=None, description="The Job of the run.")
    start_time: str | None = Field(default=None, description="When the run started (RFC 3339).")
    completion_time: str | None = Field(
        default=None, description="When the run ended (RFC 3339); absent while it runs."
    )
    result: RunStatus = Field(description="Running, Succeeded or Failed.")
    rows_written: int | None = Field(
        default=None, ge=0, description="Rows the run published (from its run report)."
    )
    checks: RunChecks | None = Field(
        default=None, description="The checks of the run (from its run report)."
    )
    message: str | None = Field(
        default=None,
        description="Why the run failed: the failed checks, OOMKilled, the deadline, the "
        "runner's error, or a report that could not be read.",
    )


class PortHealth(ApiModel):
    """How trustworthy a port's data is: from the store and the last runs that wrote it."""

    rows: int | None = Field(
        default=None, ge=0, description="Rows in the port's table (from the store)."
    )
    size_bytes: int | None = Field(
        default=None, ge=0, description="The table's size with its indexes (from the store)."
    )
    last_updated: str | None = Field(
        default=None,
        description="The data's age: the watermark of the last successful run (the newest "
        "slo.freshnessColumn value, else its publish time), RFC 3339.",
    )
    freshness: Freshness = Field(
        default=Freshness.UNKNOWN, description="Met, Stale or Unknown against slo.freshness."
    )
    checks: ChecksState = Field(
        default=ChecksState.UNKNOWN, description="Passing, Failing or Unknown (last run)."
    )


class PortEndpoint(ApiModel):
    """Where a port's table is: what a reader connects to."""

    store: str = Field(description="The DataStore.")
    host: str = Field(description="Host of the server.")
    port: int = Field(description="TCP port of the server.")
    database: str = Field(description="Database.")
    schema_: str = Field(alias="schema", description="Schema of the product.")
    table: str = Field(description="Table of the port.")


class PortGrant(ApiModel):
    """An identity that may read a port, and the store role it reads with."""

    kind: ReaderKind = Field(description="Group, User or ServiceAccount.")
    name: str = Field(description="Name of the group, user or ServiceAccount.")
    namespace: str | None = Field(default=None, description="Namespace of a ServiceAccount.")
    role: str = Field(
        description="The reader's own role in the store: a ServiceAccount's login, or the "
        "NOLOGIN role of a Group or User that a DBA maps real logins onto; a member of the "
        "port's read role."
    )


class PortStatus(ApiModel):
    """Observed state of an output port: its volume, or its table in a data store."""

    name: str = Field(description="Port name.")
    claim_name: str | None = Field(
        default=None, description="The PersistentVolumeClaim holding its data (a volume port)."
    )
    phase: str = Field(
        description="A volume: the claim's phase (Pending, Bound, Lost or Missing). A store: "
        "Placed, Pending or Failed."
    )
    capacity: str | None = Field(default=None, description="Capacity of the bound volume.")
    endpoint: PortEndpoint | None = Field(
        default=None, description="The table in a data store (a store port)."
    )
    grants: list[PortGrant] = Field(
        default_factory=list, description="Who may read the table, and with which store role."
    )
    health: PortHealth | None = Field(
        default=None, description="Rows, size, last update, freshness and checks of the data."
    )


class PipelineStatus(ApiModel):
    """Observed state of a pipeline."""

    name: str = Field(description="Pipeline name.")
    kind: str = Field(description="CronJob (scheduled) or Job (on demand).")
    object_name: str | None = Field(default=None, description="Name of that object.")
    last_schedule_time: str | None = Field(default=None, description="Last time a run started.")
    last_successful_time: str | None = Field(default=None, description="Last time a run succeeded.")
    last_failure_time: str | None = Field(default=None, description="Last time a run failed.")
    last_run_status: RunStatus = Field(
        default=RunStatus.NEVER_RUN, description="NeverRun, Running, Succeeded or Failed."
    )
    last_run_id: str | None = Field(
        default=None,
        description="The id of the last on-demand run started (the datamesh.dev/run label of "
        "its Job). A run request starts one run: deleting its Job does not start it again; a "
        "new datamesh.dev/run value does.",
    )
    last_run: LastRun | None = Field(
        default=None, description="The newest run: times, result, rows written and checks."
    )


class AccessSource(StrEnum):
    SPEC = "Spec"  # spec.access.readers
    REQUEST = "Request"  # an approved DataAccessRequest


class EffectiveReader(ApiModel):
    """A subject that may read the product now, and why."""

    kind: ReaderKind = Field(description="Group, User or ServiceAccount.")
    name: str = Field(description="Name of the group, user or ServiceAccount.")
    namespace: str | None = Field(default=None, description="Namespace of a ServiceAccount.")
    ports: list[str] = Field(
        default_factory=list, description="The ports it reads; empty: every port."
    )
    source: AccessSource = Field(description="Spec (spec.access.readers) or Request.")
    request: str | None = Field(
        default=None, description="The DataAccessRequest (namespace/name) that granted it."
    )
    purpose: str | None = Field(default=None, description="The request's purpose.")
    expires_at: str | None = Field(
        default=None, description="When a request's grant ends (RFC 3339)."
    )


class PendingRequest(ApiModel):
    """A DataAccessRequest waiting for the owners' decision."""

    request: str = Field(description="The request, namespace/name.")
    uid: str = Field(description="Its metadata.uid (a decision names it).")
    kind: ReaderKind = Field(description="The subject's kind.")
    name: str = Field(description="The subject's name.")
    namespace: str | None = Field(default=None, description="A ServiceAccount's namespace.")
    ports: list[str] = Field(default_factory=list, description="Ports asked for; empty: all.")
    purpose: str = Field(description="Why the requester needs the data.")
    requested_by: str = Field(description="Who asked.")
    duration: str = Field(description="How long, as asked (or the product's cap).")
    requested_at: str | None = Field(default=None, description="When (RFC 3339).")


class AccessRecord(ApiModel):
    """One step of a request of this product, for the audit trail."""

    request: str = Field(description="The request, namespace/name.")
    subject: str = Field(description="Who reads: kind:name or serviceaccount:namespace/name.")
    phase: AccessPhase = Field(description="The phase the request entered.")
    at: str = Field(description="When (RFC 3339).")
    by: str | None = Field(default=None, description="Who caused it.")
    note: str | None = Field(default=None, description="Why.")


class ProductAccessStatus(ApiModel):
    """Who reads the product, who asks to, and what happened to the requests."""

    readers: list[EffectiveReader] = Field(
        default_factory=list,
        description="Effective readers: spec.access.readers and the approved requests.",
    )
    pending: list[PendingRequest] = Field(
        default_factory=list, description="Requests waiting for the owners' decision."
    )
    history: list[AccessRecord] = Field(
        default_factory=list,
        max_length=MAX_ACCESS_HISTORY,
        description=f"The newest {MAX_ACCESS_HISTORY} steps of the product's requests, oldest "
        "first: who asked, who decided, when and why, when it ended.",
    )


class DataProductStatus(ApiModel):
    """The observed state of a data product, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation last reconciled."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, StorageReady, PipelinesReady, AccessReady, MonitoringReady, "
        "InputsReady, PolicyCompliant, and DataHealthy (the data, apart from Ready).",
    )
    output_ports: list[PortStatus] = Field(default_factory=list, description="Each port's volume.")
    pipelines: list[PipelineStatus] = Field(
        default_factory=list, description="Each pipeline's runs."
    )
    credentials_rotation: str | None = Field(
        default=None,
        description="The value of the datamesh.dev/rotate-credentials annotation last acted "
        "on: the store passwords of the product's writer and readers were changed then.",
    )
    credentials_rotated_at: str | None = Field(
        default=None, description="When the store passwords were last rotated."
    )
    access: ProductAccessStatus | None = Field(
        default=None,
        description="Effective readers, pending access requests and their audit trail.",
    )

    @property
    def ready(self) -> bool:
        """Whether the Ready condition is True."""
        return any(c.type == "Ready" and c.status is ConditionStatus.TRUE for c in self.conditions)


def _has_product_prefix(name: str) -> str:
    """CEL: the string ``name`` starts with ``<product>-``.

    Written with substring and equality, not ``startsWith(self.metadata.name + '-')``: the API
    server prices a rule by the largest values it could see, and takes the product's name to be
    as long as a whole request; a comparison with a substring of the bounded ``name`` is priced
    by that substring.
    """
    product = "self.metadata.name"
    return (
        f"(size({name}) > size({product}) && {name}.substring(0, size({product})) == {product} "
        f"&& {name}.substring(size({product}), size({product}) + 1) == '-')"
    )


def _own_secrets_only(field: str, rule: str, field_path: str) -> dict[str, str]:
    """CEL rule on the root: every Secret ``field`` names starts with ``<product>-``."""
    because = "a pipeline reads only its own product's Secrets"
    return cel(
        rule,
        f"{field} must start with the product's name and '-': {because}",
        fieldPath=field_path,
        messageExpression=f"'{field} must start with ' + self.metadata.name + "
        f'"- (the product name and a dash): {because}"',
    )


ROOT_VALIDATIONS = (
    cel(
        f"size(self.metadata.name) <= {MAX_PRODUCT_NAME}",
        f"the DataProduct name must be at most {MAX_PRODUCT_NAME} characters",
    ),
    _child_names_fit("outputPorts", "port", "PersistentVolumeClaim", MAX_CLAIM_NAME),
    _child_names_fit("pipelines", "pipeline", "CronJob", MAX_CRONJOB_NAME),
    _own_secrets_only(
        "spec.pipelines[].env[].valueFrom.secretKeyRef.name",
        "!has(self.spec.pipelines) || self.spec.pipelines.all(p, !has(p.env) || p.env.all(e, "
        "!has(e.valueFrom) || !has(e.valueFrom.secretKeyRef) || "
        f"{_has_product_prefix('e.valueFrom.secretKeyRef.name')}))",
        ".spec.pipelines",
    ),
    _own_secrets_only(
        "spec.inputs[].external.secretRef.name",
        "!has(self.spec.inputs) || self.spec.inputs.all(i, !has(i.external) || "
        "!has(i.external.secretRef) || "
        f"{_has_product_prefix('i.external.secretRef.name')})",
        ".spec.inputs",
    ),
)

PRINTER_COLUMNS = (
    {"name": "Domain", "type": "string", "jsonPath": ".spec.domain"},
    {"name": "Lifecycle", "type": "string", "jsonPath": ".spec.lifecycle"},
    READY_COLUMN,
    REASON_COLUMN,
    AGE_COLUMN,
)


class DataProduct(ApiModel):
    """A whole DataProduct object as the operator reads it."""

    name: str
    namespace: str
    generation: int = 1
    uid: str = ""
    creation_timestamp: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
    spec: DataProductSpec
    status: DataProductStatus = Field(default_factory=DataProductStatus)

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> DataProduct:
        """Parse an object from the API server (metadata + spec + status)."""
        metadata = obj.get("metadata") or {}
        return cls.model_validate(
            {
                "name": metadata.get("name"),
                "namespace": metadata.get("namespace"),
                "generation": metadata.get("generation", 1),
                "uid": metadata.get("uid", ""),
                "creation_timestamp": metadata.get("creationTimestamp"),
                "annotations": metadata.get("annotations") or {},
                "spec": obj.get("spec") or {},
                "status": obj.get("status") or {},
            }
        )
