"""The products ``dpo export`` exports, from a manifest or the cluster (layer ``catalog``).

The imperative side of the exports: it reads a file or the API server (through the package's
blocking client, one request each for the product and its domain, and one per product it
reads from, for their tables' endpoints) and hands the parsed objects to the pure renderers of
:mod:`dataproduct_operator.catalog.exports`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dataproduct_operator.api.datadomain import KIND as DOMAIN_KIND
from dataproduct_operator.api.datadomain import DataDomain
from dataproduct_operator.api.dataproduct import KIND, DataProduct
from dataproduct_operator.api.kinds import API_VERSION
from dataproduct_operator.catalog.exports.common import EndpointLookup, endpoints_of
from dataproduct_operator.errors import UserError
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.k8s.resources import resource_of
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.specs.stream import load_documents, parse_products

Exported = tuple[DataProduct, DataDomain | None]


def _domains(documents: list[Any], source: str) -> dict[str, DataDomain]:
    domains = {}
    for document in documents:
        if not isinstance(document, dict) or document.get("kind") != DOMAIN_KIND:
            continue
        name = (document.get("metadata") or {}).get("name")
        try:
            domain = DataDomain.from_object(document)
        except ValidationError as error:
            raise UserError(f"{source}: DataDomain {name} is not valid: {error}") from error
        domains[domain.name] = domain
    return domains


def read_manifest(path: Path, *, default_namespace: str = "default") -> list[Exported]:
    """The DataProducts of a manifest file, each with its DataDomain if the file holds it."""
    documents = load_documents(path)
    products = parse_products(documents, default_namespace=default_namespace)
    if not products:
        raise UserError(f"{path} holds no {KIND} of {API_VERSION}")
    domains = _domains(documents, str(path))
    return [(product, domains.get(product.spec.domain)) for product in products]


def read_from_cluster(
    namespace: str, name: str, *, kubeconfig: Path | None = None, context: str | None = None
) -> Exported:
    """The DataProduct ``namespace/name`` and its DataDomain (None when there is none to read)."""
    credentials = Credentials.from_environment(kubeconfig, context=context)
    products = resource_of(API_VERSION, KIND)
    domains = resource_of(API_VERSION, DOMAIN_KIND)
    try:
        with BlockingClient(credentials) as client:
            try:
                obj = client.get(products.path(namespace, name))
            except ApiError as error:
                if error.status == 404:
                    raise UserError(f"{KIND} {namespace}/{name} not found") from error
                raise UserError(f"Reading {KIND} {namespace}/{name} failed: {error}") from error
            try:
                product = DataProduct.from_object(obj)
            except ValidationError as error:
                raise UserError(f"{KIND} {namespace}/{name} is not valid: {error}") from error
            try:
                domain_obj = client.get(domains.path(name=product.spec.domain))
            except ApiError as error:
                # The export is still whole without the domain's extras; a reader may lack the
                # right to read cluster-scoped DataDomains.
                if error.status in (403, 404):
                    return product, None
                raise UserError(
                    f"Reading {DOMAIN_KIND} {product.spec.domain} failed: {error}"
                ) from error
    except (OSError, ValueError) as error:
        raise UserError(f"Cannot reach the API server at {credentials.server}: {error}") from error
    try:
        return product, DataDomain.from_object(domain_obj)
    except ValidationError:
        return product, None


def read_upstream_endpoints(
    product: DataProduct, *, kubeconfig: Path | None = None, context: str | None = None
) -> EndpointLookup:
    """The endpoints of the ports ``product`` reads from other products, as far as they can be
    read: an upstream that is missing, forbidden to this user or not valid is left out (its
    input is then named as a volume port is), since the export is whole without it; any other
    error of the API server is the export's error."""
    refs = {
        (item.data_product.namespace or product.namespace, item.data_product.name)
        for item in product.spec.inputs
        if item.data_product is not None
    }
    if not refs:
        return endpoints_of([])
    credentials = Credentials.from_environment(kubeconfig, context=context)
    products = resource_of(API_VERSION, KIND)
    upstreams = []
    try:
        with BlockingClient(credentials) as client:
            for namespace, name in sorted(refs):
                try:
                    obj = client.get(products.path(namespace, name))
                except ApiError as error:
                    if error.status in (403, 404):
                        continue
                    raise UserError(f"Reading {KIND} {namespace}/{name} failed: {error}") from error
                try:
                    upstreams.append(DataProduct.from_object(obj))
                except ValidationError:
                    continue
    except (OSError, ValueError) as error:
        raise UserError(f"Cannot reach the API server at {credentials.server}: {error}") from error
    return endpoints_of(upstreams)
