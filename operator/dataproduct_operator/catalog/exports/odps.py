"""A DataProduct as a Bitol Open Data Product Standard v1.0.0 document (layer ``catalog``, pure).

ODPS describes the product and points at one ODCS contract per output port (``contractId``).
Everything of ours that ODPS has no field for (classification, the owner team, pipelines,
external inputs, how many readers, deletion policy, discoverability, the Kubernetes namespace,
the domain's cost center, and each store port's table: ``outputPortEndpoints``) is kept under
``customProperties``. A store port's ``type`` is ``postgres`` (a volume port's, its format), and
the usage says where each port's data is and how a reader logs in (never a credential).
"""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.datadomain import DataDomain
from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.api.naming import claim_name, connection_config_map_name
from dataproduct_operator.catalog import urls
from dataproduct_operator.catalog.exports.common import (
    bitol_status,
    custom_property,
    endpoint_properties,
    file_input,
    pipeline_summary,
    port_endpoint,
    reader_login_note,
    support_channels,
    team_members,
    version_of,
)
from dataproduct_operator.catalog.exports.ids import contract_id, product_id
from dataproduct_operator.catalog.lineage import redact_uri

ODPS_API_VERSION = "v1.0.0"


def _usage(product: DataProduct) -> str:
    config_map = connection_config_map_name(product.name)
    endpoints = [
        (port.name, port_endpoint(product, port.name)) for port in product.spec.output_ports
    ]
    claims = ", ".join(claim_name(product.name, name) for name, e in endpoints if e is None)
    volumes = (
        f"Readers mount the output ports' volumes (PersistentVolumeClaims {claims} in namespace "
        f"{product.namespace})"
    )
    tables = [(name, e) for name, e in endpoints if e is not None]
    if not tables:
        return (
            f"{volumes}; the ConfigMap {config_map} says where each port's data is and what "
            "its schema is."
        )
    listed = ", ".join(
        f"{name} in {e.schema_}.{e.table} (DataStore {e.store}, PostgreSQL {e.host}:{e.port}, "
        f"database {e.database})"
        for name, e in tables
    )
    return (
        f"Readers query the output ports' tables: {listed}. {reader_login_note(tables[0][1])} "
        + (f"{volumes}. " if claims else "")
        + f"The ConfigMap {config_map} says where each port's data is and what its schema is."
    )


def _input_ports(product: DataProduct) -> list[dict[str, Any]]:
    ports = []
    for item in product.spec.inputs:
        ref = item.data_product
        if ref is None:
            continue
        ports.append(
            {
                "name": item.name,
                "version": version_of(product),
                "contractId": contract_id(ref.namespace or product.namespace, ref.name, ref.port),
            }
        )
    return ports


def _output_ports(product: DataProduct) -> list[dict[str, Any]]:
    ports = []
    for port in product.spec.output_ports:
        entry: dict[str, Any] = {"name": port.name}
        if port.description:
            entry["description"] = port.description
        entry["type"] = "postgres" if port_endpoint(product, port.name) else port.format.value
        entry["version"] = version_of(product)
        entry["contractId"] = contract_id(product.namespace, product.name, port.name)
        ports.append(entry)
    return ports


def _custom_properties(product: DataProduct, domain: DataDomain | None) -> list[dict[str, Any]]:
    spec = product.spec
    properties = [
        custom_property("kubernetesNamespace", product.namespace),
        custom_property("lifecycle", spec.lifecycle.value),
        custom_property("classification", spec.classification.value),
        custom_property("ownerTeam", spec.owner.team),
        custom_property("discoverability", spec.discoverability.value),
        custom_property("deletionPolicy", spec.deletion_policy.value),
        custom_property("alerts", spec.monitoring.alerts.value),
        custom_property("readerCount", len(spec.access.readers)),
    ]
    external = [
        {"name": item.name, "type": item.external.type, "uri": redact_uri(item.external.uri)}
        for item in spec.inputs
        if item.external is not None
    ]
    if external:
        properties.append(custom_property("externalInputs", external))
    files = [
        file_input(product.namespace, item.name, item.file) for item in spec.inputs if item.file
    ]
    if files:
        properties.append(custom_property("fileInputs", files))
    endpoints = [
        {"port": port.name, **endpoint_properties(endpoint)}
        for port in spec.output_ports
        if (endpoint := port_endpoint(product, port.name)) is not None
    ]
    if endpoints:
        properties.append(custom_property("outputPortEndpoints", endpoints))
    if spec.pipelines:
        pipelines = [pipeline_summary(pipeline) for pipeline in spec.pipelines]
        properties.append(custom_property("pipelines", pipelines))
    if domain is not None:
        if domain.spec.display_name:
            properties.append(custom_property("domainDisplayName", domain.spec.display_name))
        if domain.spec.cost_center:
            properties.append(custom_property("costCenter", domain.spec.cost_center))
    return properties


def build_odps(
    product: DataProduct, domain: DataDomain | None = None, *, catalog_url: str | None = None
) -> dict[str, Any]:
    """The ODPS document of ``product``; ``catalog_url`` (the catalog's base URL) adds a link."""
    spec = product.spec
    document: dict[str, Any] = {
        "apiVersion": ODPS_API_VERSION,
        "kind": "DataProduct",
        "id": product_id(product.namespace, product.name),
        "name": product.name,
    }
    if spec.version:
        document["version"] = spec.version
    document["status"] = bitol_status(spec.lifecycle)
    document["domain"] = spec.domain
    document["description"] = {"purpose": spec.description, "usage": _usage(product)}
    if spec.tags:
        document["tags"] = list(spec.tags)
    input_ports = _input_ports(product)
    if input_ports:
        document["inputPorts"] = input_ports
    document["outputPorts"] = _output_ports(product)
    if catalog_url:
        document["managementPorts"] = [
            {
                "name": "catalog",
                "content": "discoverability",
                "type": "rest",
                "url": catalog_url.rstrip("/") + urls.product_url(product.namespace, product.name),
                "description": "The product's page in the data product catalog.",
            }
        ]
    support = support_channels(spec.owner)
    if support:
        document["support"] = support
    members = team_members(spec.owner)
    if members:
        document["team"] = members
    document["customProperties"] = _custom_properties(product, domain)
    if product.creation_timestamp:
        document["productCreatedTs"] = product.creation_timestamp
    return document
