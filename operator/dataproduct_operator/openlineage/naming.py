"""How OpenLineage names a pipeline's job and the datasets it reads and writes (layer
``openlineage``, pure).

The one place both the static lineage export
(:mod:`dataproduct_operator.catalog.exports.openlineage`, served by the catalog and ``dpo
export``) and the run events the operator sends (:mod:`dataproduct_operator.openlineage.events`)
take their names from, so a lineage backend joins them into one job and the same datasets:

- a job is ``<Kubernetes namespace>/<product>/<pipeline>`` in the OpenLineage namespace of the
  operator's jobs (``dpo run --openlineage-namespace``, default ``dataproduct-operator``);
- a store port is its table, after OpenLineage's naming for PostgreSQL: namespace
  ``postgres://<host>:<port>``, name ``<database>.<schema>.<table>``, from the endpoint its
  product's status records; a volume port (or a store port not placed yet) is in namespace
  ``datamesh://<Kubernetes namespace>``, named ``<product>.<port>``;
- a sql pipeline reads the inputs named in its ``sources`` and writes its ``output``; an image
  pipeline reads every input and writes every output port of its product (it is told them all);
- another product's input is its upstream's port, named as above (the upstream's endpoint where
  known);
- an external source is named from its URI as the catalog redacts it (``scheme://authority`` as
  namespace, the path as name), so no credential, query, fragment or parameter reaches an
  event; only a JDBC ``databaseName`` is taken back. A postgres source a sql pipeline reads
  (``external.table``) is that table: ``<database>.<schema>.<table>``, schema ``public`` when
  the table names none, as PostgreSQL itself resolves it;
- a file input from a URL is named the same way (``https://<host>[:<port>]``, the path), its
  query and fragment left out; a file on a claim is in namespace ``pvc://<Kubernetes
  namespace>/<claim>``, named by its path in the claim.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from dataproduct_operator.api.dataproduct import (
    DataProduct,
    Input,
    OutputPort,
    Pipeline,
    PortEndpoint,
)
from dataproduct_operator.catalog.lineage import CLAIM_SCHEME, redact_uri
from dataproduct_operator.errors import UserError
from dataproduct_operator.openlineage.endpoint import DEFAULT_NAMESPACE

if TYPE_CHECKING:  # the exports import this module: at run time only its users need the type
    from dataproduct_operator.catalog.exports.common import EndpointLookup

DATAMESH_SCHEME = "datamesh"
# OpenLineage's naming conventions spell some schemes their own way.
SCHEME_ALIASES = {"postgresql": "postgres", "sqlserver": "mssql"}
# The schema PostgreSQL resolves an unqualified table name to (search_path's default).
DEFAULT_SCHEMA = "public"
# JDBC URLs may name the database in a parameter (;databaseName=gl), which redaction drops with
# all others. These names, and nothing else, are read back, and only a plain name as value.
_DATABASE_PARAMETERS = ("databasename", "database")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_$.-]+")


def job_of(
    namespace: str, product: str, pipeline: str, *, namespace_for_jobs: str = DEFAULT_NAMESPACE
) -> dict[str, str]:
    """The OpenLineage job of a pipeline: ``namespace/product/pipeline``, unique in the
    OpenLineage namespace of one cluster's jobs (``namespace_for_jobs``)."""
    return {"namespace": namespace_for_jobs, "name": f"{namespace}/{product}/{pipeline}"}


def inputs_read(product: DataProduct, pipeline: Pipeline) -> list[Input]:
    """The inputs ``pipeline`` reads: a sql pipeline's ``sources``, an image pipeline's all."""
    if pipeline.sql is None:
        return list(product.spec.inputs)
    return [item for item in product.spec.inputs if item.name in set(pipeline.sources)]


def ports_written(product: DataProduct, pipeline: Pipeline) -> list[OutputPort]:
    """The output ports ``pipeline`` writes: a sql pipeline's ``output``, an image one's all."""
    return [
        port
        for port in product.spec.output_ports
        if pipeline.output is None or port.name == pipeline.output
    ]


def dataset_namespace(kubernetes_namespace: str) -> str:
    return f"{DATAMESH_SCHEME}://{kubernetes_namespace}"


def dataset_name(product_name: str, port_name: str) -> str:
    return f"{product_name}.{port_name}"


def table_dataset(endpoint: PortEndpoint) -> tuple[str, str]:
    """(namespace, name) of a store port's table, after OpenLineage's naming for PostgreSQL."""
    return (
        f"postgres://{endpoint.host}:{endpoint.port}",
        f"{endpoint.database}.{endpoint.schema_}.{endpoint.table}",
    )


def port_dataset(
    namespace: str, product_name: str, port_name: str, endpoint: PortEndpoint | None
) -> dict[str, str]:
    """The namespace and name of an output port's dataset: its table when it has one."""
    if endpoint is not None:
        table_namespace, name = table_dataset(endpoint)
        return {"namespace": table_namespace, "name": name}
    return {
        "namespace": dataset_namespace(namespace),
        "name": dataset_name(product_name, port_name),
    }


def external_dataset(source_type: str, uri: str, table: str | None = None) -> tuple[str, str]:
    """(namespace, name) of an external source, after OpenLineage's naming conventions;
    ``table`` (``schema.table`` or ``table``): the table read from the URI's database."""
    text = redact_uri(uri)
    jdbc = text.lower().startswith("jdbc:")
    if jdbc:
        text = text[5:]
    scheme, separator, rest = text.partition("://")
    authority, _, path = rest.partition("/")
    if not separator or not scheme or not authority:
        return f"{source_type}://", text
    scheme = SCHEME_ALIASES.get(scheme.lower(), scheme.lower())
    name = path.strip("/") or (_jdbc_database(uri) if jdbc else "")
    if table is not None and name:
        schema, _, table_name = table.rpartition(".")
        name = f"{name}.{schema or DEFAULT_SCHEMA}.{table_name}"
    return f"{scheme}://{authority}", name


def _jdbc_database(uri: str) -> str:
    """The value of a ``;databaseName=`` (or ``;database=``) parameter, else ''."""
    for parameter in re.split(r"[?#]", uri, maxsplit=1)[0].split(";")[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() in _DATABASE_PARAMETERS and _PLAIN_NAME.fullmatch(value):
            return value
    return ""


def input_dataset(product: DataProduct, item: Input, upstream: EndpointLookup) -> dict[str, Any]:
    """The namespace and name of an input: its upstream's port, the external source, or the
    file."""
    if item.data_product is not None:
        ref = item.data_product
        namespace = ref.namespace or product.namespace
        return port_dataset(namespace, ref.name, ref.port, upstream(namespace, ref.name, ref.port))
    if item.file is not None and item.file.volume is not None:
        volume = item.file.volume
        claim = f"{CLAIM_SCHEME}://{product.namespace}/{volume.claim_name}"
        return {"namespace": claim, "name": volume.path}
    if item.file is not None and item.file.url is not None:
        namespace, name = external_dataset("http", item.file.url)
        return {"namespace": namespace, "name": name or item.name}
    source = item.external
    if source is None:  # the CRD's CEL rule wants exactly one of the three
        raise UserError(f"Input {item.name} names no data product, external source or file")
    namespace, name = external_dataset(source.type, source.uri, source.table)
    return {"namespace": namespace, "name": name or item.name}
