"""A DataProduct as OpenLineage static lineage events (layer ``catalog``, pure).

A ``JobEvent`` per pipeline (the product's inputs in, its output ports out) and a
``DatasetEvent`` per output port, which a lineage backend such as Marquez takes before any run
happened. Dataset names follow OpenLineage's naming conventions: a store port is its table,
namespace ``postgres://<host>:<port>`` and name ``<database>.<schema>.<table>`` (the endpoint
its product's status records), as every tool that reads or writes that table names it; a volume
port (or a store port not placed yet) is in namespace ``datamesh://<Kubernetes namespace>`` and
named ``<product>.<port>``. Another product's input names its upstream's port the same way, the
endpoint coming from the upstream's status (``upstream``: the catalog knows every product, ``dpo
export`` reads the upstreams it can), so the edge meets the dataset its producer exports; an
external source is named from its URI as the
catalog redacts it (``scheme://authority`` as namespace, the path as name), so no credential,
query, fragment or parameter reaches an event; only a JDBC ``databaseName`` is taken back. A file
input from a URL is named the same way (``https://host[:port]``, the path); a file on a claim is
in namespace ``pvc://<Kubernetes namespace>/<claim>`` and named by its path in the claim.
"""

from __future__ import annotations

import re
from typing import Any

from dataproduct_operator.api.dataproduct import (
    Column,
    DataProduct,
    Input,
    OutputPort,
    Pipeline,
    PortEndpoint,
)
from dataproduct_operator.catalog.exports.common import (
    PROJECT_URL,
    EndpointLookup,
    no_endpoints,
    port_endpoint,
)
from dataproduct_operator.catalog.lineage import CLAIM_SCHEME, redact_uri
from dataproduct_operator.errors import UserError

SPEC_URL = "https://openlineage.io/spec/2-0-7/OpenLineage.json"
JOB_EVENT_SCHEMA = f"{SPEC_URL}#/$defs/JobEvent"
DATASET_EVENT_SCHEMA = f"{SPEC_URL}#/$defs/DatasetEvent"
FACETS_URL = "https://openlineage.io/spec/facets"
SCHEMA_FACET = f"{FACETS_URL}/1-0-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
DATASET_DOCUMENTATION_FACET = (
    f"{FACETS_URL}/1-0-0/DocumentationDatasetFacet.json#/$defs/DocumentationDatasetFacet"
)
JOB_DOCUMENTATION_FACET = (
    f"{FACETS_URL}/1-0-0/DocumentationJobFacet.json#/$defs/DocumentationJobFacet"
)
JOB_TYPE_FACET = f"{FACETS_URL}/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
OWNERSHIP_FACET = f"{FACETS_URL}/1-0-0/OwnershipJobFacet.json#/$defs/OwnershipJobFacet"

DATAMESH_SCHEME = "datamesh"
INTEGRATION = "DATAMESH"
# OpenLineage's naming conventions spell some schemes their own way.
SCHEME_ALIASES = {"postgresql": "postgres", "sqlserver": "mssql"}
# JDBC URLs may name the database in a parameter (;databaseName=gl), which redaction drops with
# all others. These names, and nothing else, are read back, and only a plain name as value.
_DATABASE_PARAMETERS = ("databasename", "database")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_$.-]+")


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


def _facet(schema_url: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PROJECT_URL, "_schemaURL": schema_url, **fields}


def _schema_facet(columns: list[Column]) -> dict[str, Any]:
    fields = []
    for column in columns:
        field = {"name": column.name, "type": column.type}
        if column.description:
            field["description"] = column.description
        fields.append(field)
    return _facet(SCHEMA_FACET, fields=fields)


def external_dataset(source_type: str, uri: str) -> tuple[str, str]:
    """(namespace, name) of an external source, after OpenLineage's naming conventions."""
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
    file (the run events of ``dataproduct_operator.openlineage`` name their inputs the same
    way)."""
    if item.data_product is not None:
        ref = item.data_product
        namespace = ref.namespace or product.namespace
        return port_dataset(namespace, ref.name, ref.port, upstream(namespace, ref.name, ref.port))
    if item.file is not None and item.file.volume is not None:
        volume = item.file.volume
        return {
            "namespace": f"{CLAIM_SCHEME}://{product.namespace}/{volume.claim_name}",
            "name": volume.path,
        }
    if item.file is not None and item.file.url is not None:
        namespace, name = external_dataset("http", item.file.url)
        return {"namespace": namespace, "name": name or item.name}
    source = item.external
    if source is None:  # the CRD's CEL rule wants exactly one of the three
        raise UserError(f"Input {item.name} names no data product, external source or file")
    namespace, name = external_dataset(source.type, source.uri)
    return {"namespace": namespace, "name": name or item.name}


def _port_dataset(product: DataProduct, port: OutputPort) -> dict[str, Any]:
    description = port.description or product.spec.description
    endpoint = port_endpoint(product, port.name)
    return {
        **port_dataset(product.namespace, product.name, port.name, endpoint),
        "facets": {
            "schema": _schema_facet(list(port.schema_)),
            "documentation": _facet(DATASET_DOCUMENTATION_FACET, description=description),
        },
    }


def _job_event(
    product: DataProduct, pipeline: Pipeline, event_time: str, upstream: EndpointLookup
) -> dict[str, Any]:
    when = f"on the schedule {pipeline.schedule}" if pipeline.schedule else "on demand"
    description = (
        f"{product.spec.description} Pipeline {pipeline.name} of the data product "
        f"{product.namespace}/{product.name} runs {pipeline.what_runs} {when}."
    )
    return {
        "eventTime": event_time,
        "producer": PROJECT_URL,
        "schemaURL": JOB_EVENT_SCHEMA,
        "job": {
            "namespace": dataset_namespace(product.namespace),
            "name": f"{product.name}.{pipeline.name}",
            "facets": {
                "documentation": _facet(JOB_DOCUMENTATION_FACET, description=description),
                "jobType": _facet(
                    JOB_TYPE_FACET, processingType="BATCH", integration=INTEGRATION, jobType="JOB"
                ),
                "ownership": _facet(
                    OWNERSHIP_FACET, owners=[{"name": f"team:{product.spec.owner.team}"}]
                ),
            },
        },
        "inputs": [input_dataset(product, item, upstream) for item in product.spec.inputs],
        "outputs": [_port_dataset(product, port) for port in product.spec.output_ports],
    }


def build_openlineage(
    product: DataProduct, *, event_time: str, upstream: EndpointLookup = no_endpoints
) -> list[dict[str, Any]]:
    """The events of ``product`` at ``event_time`` (an ISO 8601 UTC timestamp); ``upstream``
    gives the endpoints of the ports it reads, where known."""
    events = [
        _job_event(product, pipeline, event_time, upstream) for pipeline in product.spec.pipelines
    ]
    events += [
        {
            "eventTime": event_time,
            "producer": PROJECT_URL,
            "schemaURL": DATASET_EVENT_SCHEMA,
            "dataset": _port_dataset(product, port),
        }
        for port in product.spec.output_ports
    ]
    return events
