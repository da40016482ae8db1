"""A DataProduct as OpenLineage static lineage events (layer ``catalog``, pure).

A ``JobEvent`` per pipeline (what it reads in, what it writes out: a sql pipeline its
``sources`` and its ``output``, an image pipeline all the product's inputs and ports) and a
``DatasetEvent`` per output port, which a lineage backend such as Marquez takes before any run
happened. The job and every dataset are named by :mod:`dataproduct_operator.openlineage.naming`,
as the operator's run events name them, so a backend joins the runs to this lineage: the job
``<namespace>/<product>/<pipeline>`` in the OpenLineage namespace of the operator's jobs, a store
port its table (``postgres://<host>:<port>``, ``<database>.<schema>.<table>``, from its
product's status), a volume port ``datamesh://<namespace>`` ``<product>.<port>``, another
product's input its upstream's port (``upstream``: the catalog knows every product, ``dpo
export`` reads the upstreams it can), an external source its redacted URI (a postgres table a
sql pipeline reads: ``<database>.<schema>.<table>``), a file its URL's ``scheme://host[:port]``
and path, or ``pvc://<namespace>/<claim>`` and its path in the claim.
"""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.dataproduct import Column, DataProduct, OutputPort, Pipeline
from dataproduct_operator.catalog.exports.common import (
    PROJECT_URL,
    EndpointLookup,
    no_endpoints,
    port_endpoint,
)
from dataproduct_operator.openlineage.endpoint import DEFAULT_NAMESPACE
from dataproduct_operator.openlineage.naming import (
    input_dataset,
    inputs_read,
    job_of,
    port_dataset,
    ports_written,
)

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

INTEGRATION = "DATAMESH"


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
    product: DataProduct,
    pipeline: Pipeline,
    event_time: str,
    upstream: EndpointLookup,
    namespace_for_jobs: str,
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
            **job_of(
                product.namespace,
                product.name,
                pipeline.name,
                namespace_for_jobs=namespace_for_jobs,
            ),
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
        "inputs": [
            input_dataset(product, item, upstream) for item in inputs_read(product, pipeline)
        ],
        "outputs": [_port_dataset(product, port) for port in ports_written(product, pipeline)],
    }


def build_openlineage(
    product: DataProduct,
    *,
    event_time: str,
    upstream: EndpointLookup = no_endpoints,
    namespace_for_jobs: str = DEFAULT_NAMESPACE,
) -> list[dict[str, Any]]:
    """The events of ``product`` at ``event_time`` (an ISO 8601 UTC timestamp); ``upstream``
    gives the endpoints of the ports it reads, where known; ``namespace_for_jobs``: the
    OpenLineage namespace the operator's run events put the jobs in."""
    events = [
        _job_event(product, pipeline, event_time, upstream, namespace_for_jobs)
        for pipeline in product.spec.pipelines
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
