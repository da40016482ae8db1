"""A DataProduct as Backstage software catalog entities (layer ``catalog``, pure).

- a ``System`` for the product (type ``data-product``), in the ``Domain`` of its domain;
- a ``Resource`` (type ``dataset``) and an ``API`` (type ``data-contract``, whose definition is
  the port's ODCS contract) for each output port;
- a ``Component`` (type ``data-pipeline``) for each pipeline, providing the ports' APIs;
- the ``Domain`` itself when the DataDomain is given.

Entities are named ``<namespace>.<product>``, ``<namespace>.<product>.<port>`` and
``<namespace>.<product>.<pipeline>`` (see :func:`entity_name`).

Owners are references to ``Group`` entities named after the teams; the groups themselves come
from the organisation's own catalog (its identity provider), so none is emitted here. Inputs
that are other products become ``dependsOn`` references to their ports' resources. A Domain is
one entity in Backstage however many products name it: register it from one location only
(the domain's, or one product's), or Backstage reports the entity as conflicting.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from dataproduct_operator.api.datadomain import DataDomain
from dataproduct_operator.api.dataproduct import DataProduct, DataProductRef, Lifecycle
from dataproduct_operator.catalog import urls
from dataproduct_operator.catalog.exports.ids import contract_id, product_id
from dataproduct_operator.catalog.exports.odcs import build_odcs
from dataproduct_operator.constants import LABEL_PART_OF, LABEL_PIPELINE
from dataproduct_operator.specs.stream import dump_stream

API_VERSION = "backstage.io/v1alpha1"
NAMESPACE = "default"
MAX_NAME = 63  # Backstage's limit on metadata.name and on a tag
HASH_LENGTH = 8  # hex digits of the hash that ends a name cut to MAX_NAME
ANNOTATION_PRODUCT = "datamesh.dev/data-product"
ANNOTATION_DOMAIN = "datamesh.dev/data-domain"
ANNOTATION_CONTRACT = "datamesh.dev/contract-id"
ANNOTATION_COST_CENTER = "datamesh.dev/cost-center"
LABEL_LIFECYCLE = "datamesh.dev/lifecycle"
# The Backstage Kubernetes plugin finds the product's workloads with these.
ANNOTATION_K8S_NAMESPACE = "backstage.io/kubernetes-namespace"
ANNOTATION_K8S_SELECTOR = "backstage.io/kubernetes-label-selector"

# Backstage's well-known lifecycles are experimental, production and deprecated.
BACKSTAGE_LIFECYCLE = {
    Lifecycle.DRAFT: "experimental",
    Lifecycle.EXPERIMENTAL: "experimental",
    Lifecycle.PRODUCTION: "production",
    Lifecycle.DEPRECATED: "deprecated",
    Lifecycle.RETIRED: "deprecated",
}

_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_NOT_IN_TAG = re.compile(r"[^a-z0-9:+#]+")


def entity_name(*parts: str) -> str:
    """A valid Backstage ``metadata.name`` from ``parts`` joined by '.'.

    Kubernetes namespaces and the names of ports and pipelines are DNS labels, without '.', so
    ``<namespace>.<product>[.<port>]`` names one thing only (a '-' join would make
    ``sales-eu/orders`` and ``sales/eu-orders`` one entity). Backstage allows letters, digits
    and ``-_.`` between them, at most 63 characters; a longer name keeps its start and ends in
    a hash of the whole, so it stays unique and the same on every export.
    """
    joined = ".".join(parts)
    name = _NOT_IN_NAME.sub("-", joined).strip("-_.")
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(joined.encode()).hexdigest()[:HASH_LENGTH]
    return f"{name[: MAX_NAME - HASH_LENGTH - 1].rstrip('-_.')}-{digest}"


def backstage_tag(tag: str) -> str:
    """A free-form tag as Backstage accepts it: lower case words joined by '-'."""
    return _NOT_IN_TAG.sub("-", tag.lower()).strip("-")[:MAX_NAME].rstrip("-")


def _tags(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tag for tag in map(backstage_tag, tags) if tag))


def group_ref(team: str) -> str:
    return f"group:{NAMESPACE}/{entity_name(team)}"


def system_name(namespace: str, name: str) -> str:
    return entity_name(namespace, name)


def port_name(namespace: str, name: str, port: str) -> str:
    """The name of a port's Resource and of its API (they differ in kind)."""
    return entity_name(namespace, name, port)


def _upstream_resources(product: DataProduct) -> list[str]:
    refs: list[DataProductRef] = [
        item.data_product for item in product.spec.inputs if item.data_product is not None
    ]
    return [
        f"resource:{NAMESPACE}/{port_name(ref.namespace or product.namespace, ref.name, ref.port)}"
        for ref in refs
    ]


def _metadata(
    name: str,
    title: str,
    description: str | None,
    annotations: dict[str, str],
    *,
    tags: list[str] | None = None,
    labels: dict[str, str] | None = None,
    links: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "title": title}
    if description:
        metadata["description"] = description
    if labels:
        metadata["labels"] = labels
    metadata["annotations"] = annotations
    if tags:
        metadata["tags"] = tags
    if links:
        metadata["links"] = links
    return metadata


def _entity(kind: str, metadata: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def _domain_entity(domain: DataDomain) -> dict[str, Any]:
    annotations = {ANNOTATION_DOMAIN: domain.name, ANNOTATION_K8S_NAMESPACE: domain.namespace}
    if domain.spec.cost_center:
        annotations[ANNOTATION_COST_CENTER] = domain.spec.cost_center
    metadata = _metadata(
        entity_name(domain.name),
        domain.spec.display_name or domain.name,
        domain.spec.description,
        annotations,
    )
    return _entity("Domain", metadata, {"owner": group_ref(domain.spec.owners.team)})


def build_backstage_entities(
    product: DataProduct, domain: DataDomain | None = None, *, catalog_url: str | None = None
) -> list[dict[str, Any]]:
    """The entities of ``product`` (and of its domain, when given), Domain first.

    ``catalog_url`` (the catalog's base URL) adds a link from the System to the product's page.
    """
    spec = product.spec
    owner = group_ref(spec.owner.team)
    system = system_name(product.namespace, product.name)
    system_ref = f"system:{NAMESPACE}/{system}"
    lifecycle = BACKSTAGE_LIFECYCLE[spec.lifecycle]
    labels = {LABEL_LIFECYCLE: spec.lifecycle.value}
    product_annotations = {
        ANNOTATION_PRODUCT: f"{product.namespace}/{product.name}",
        ANNOTATION_K8S_NAMESPACE: product.namespace,
        ANNOTATION_K8S_SELECTOR: f"{LABEL_PART_OF}={product.name}",
    }
    tags = _tags(spec.tags)
    upstream = _upstream_resources(product)
    links = None
    if catalog_url:
        page = catalog_url.rstrip("/") + urls.product_url(product.namespace, product.name)
        links = [{"url": page, "title": "Data product catalog", "type": "catalog"}]

    entities: list[dict[str, Any]] = []
    if domain is not None:
        entities.append(_domain_entity(domain))
    entities.append(
        _entity(
            "System",
            _metadata(
                system,
                product_id(product.namespace, product.name),
                spec.description,
                product_annotations,
                tags=tags,
                labels=labels,
                links=links,
            ),
            {
                "owner": owner,
                "domain": f"domain:{NAMESPACE}/{entity_name(spec.domain)}",
                "type": "data-product",
            },
        )
    )
    api_refs = []
    for port in spec.output_ports:
        name = port_name(product.namespace, product.name, port.name)
        api_refs.append(f"api:{NAMESPACE}/{name}")
        annotations = {
            **product_annotations,
            ANNOTATION_CONTRACT: contract_id(product.namespace, product.name, port.name),
        }
        resource_spec: dict[str, Any] = {"type": "dataset", "owner": owner, "system": system_ref}
        if upstream:
            resource_spec["dependsOn"] = upstream
        title = f"{product.name} {port.name}"
        entities.append(
            _entity(
                "Resource",
                _metadata(name, title, port.description, annotations, tags=tags, labels=labels),
                resource_spec,
            )
        )
        entities.append(
            _entity(
                "API",
                _metadata(name, title, port.description, annotations, tags=tags, labels=labels),
                {
                    "type": "data-contract",
                    "lifecycle": lifecycle,
                    "owner": owner,
                    "system": system_ref,
                    "definition": dump_stream([build_odcs(product, port.name)]),
                },
            )
        )
    own_resources = [
        f"resource:{NAMESPACE}/{port_name(product.namespace, product.name, port.name)}"
        for port in spec.output_ports
    ]
    for pipeline in spec.pipelines:
        when = f"on the schedule {pipeline.schedule}" if pipeline.schedule else "on demand"
        component_spec: dict[str, Any] = {
            "type": "data-pipeline",
            "lifecycle": lifecycle,
            "owner": owner,
            "system": system_ref,
            "providesApis": api_refs,
            "dependsOn": upstream + own_resources,
        }
        entities.append(
            _entity(
                "Component",
                _metadata(
                    entity_name(product.namespace, product.name, pipeline.name),
                    f"{product.name} {pipeline.name}",
                    f"Runs {pipeline.what_runs} {when}.",
                    {
                        **product_annotations,
                        ANNOTATION_K8S_SELECTOR: (
                            f"{LABEL_PART_OF}={product.name},{LABEL_PIPELINE}={pipeline.name}"
                        ),
                    },
                    tags=tags,
                    labels=labels,
                ),
                component_spec,
            )
        )
    return entities
