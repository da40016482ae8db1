"""The OpenAPI document of the catalog's JSON API (layer ``catalog``, pure).

The response schemas come from the view models themselves, so the document cannot drift from
what the API returns; the paths are listed here, beside nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic.json_schema import models_json_schema

from dataproduct_operator import __version__
from dataproduct_operator.catalog import urls
from dataproduct_operator.catalog.model import (
    DomainDetail,
    DomainSummary,
    ProductDetail,
    ProductSummary,
)

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


ERRORS = {
    "400": _json_response("A parameter is not valid.", _ref("Error")),
    "404": _json_response("No such object, or one the catalog does not show.", _ref("Error")),
    "503": _json_response("The catalog is still listing the mesh.", _ref("Error")),
}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "reason", "message"],
            "properties": {
                "code": {"type": "integer", "description": "The HTTP status code."},
                "reason": {"type": "string", "description": "One CamelCase word."},
                "message": {"type": "string", "description": "What went wrong, in words."},
            },
        }
    },
}

LINEAGE_SCHEMA = {
    "type": "object",
    "required": ["nodes", "edges"],
    "properties": {
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "kind", "label", "sublabel", "health", "url"],
                "properties": {
                    "id": {"type": "string"},
                    "kind": {
                        "type": "string",
                        "enum": ["product", "external", "unlisted"],
                    },
                    "label": {"type": "string"},
                    "sublabel": {"type": "string"},
                    "health": {"type": "string", "enum": ["healthy", "unhealthy", "unknown"]},
                    "url": {"type": ["string", "null"]},
                },
            },
        },
        "edges": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["source", "target", "label"],
                "properties": {
                    "source": {"type": "string", "description": "Node id data flows from."},
                    "target": {"type": "string", "description": "Node id data flows to."},
                    "label": {"type": "string", "description": "Port or input name."},
                },
            },
        },
    },
}


EXPORT_RESPONSE = {
    "description": "YAML (odps, odcs, backstage) or JSON (openlineage).",
    "content": {
        "application/yaml": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "array"}},
    },
}


def build_openapi(export_formats: Sequence[str]) -> dict[str, Any]:
    """The OpenAPI 3.1 document served at ``/api/v1/openapi.json``."""
    _, schemas = models_json_schema(
        [
            (model, "serialization")
            for model in (ProductSummary, ProductDetail, DomainSummary, DomainDetail)
        ],
        ref_template=REF,
    )
    components = {
        **schemas.get("$defs", {}),
        "Error": ERROR_SCHEMA,
        "Lineage": LINEAGE_SCHEMA,
        "ProductList": {
            "type": "object",
            "required": ["items", "total", "next", "countsPerDomain"],
            "properties": {
                "items": {"type": "array", "items": _ref("ProductSummary")},
                "total": {"type": "integer", "description": "Products found (all pages)."},
                "next": {"type": ["string", "null"], "description": "URL of the next page."},
                "countsPerDomain": {"type": "object", "additionalProperties": {"type": "integer"}},
                "limit": {
                    "type": "integer",
                    "description": "Products per page: the limit asked for, at most 1000.",
                },
                "truncated": {
                    "type": "boolean",
                    "description": "The search spent its CPU budget: what it found until then.",
                },
            },
        },
        "DomainList": {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": _ref("DomainSummary")}},
        },
    }
    namespace, name = _path("namespace", "Namespace of the product."), _path("name", "Its name.")
    format_parameter = {
        **_path("format", "The export format."),
        "schema": {"type": "string", "enum": list(export_formats)},
    }
    filters = [
        _query(
            "q",
            "Words that must all appear in the name, description, tags or columns (at most 16 "
            "words and 256 characters; more answers 400).",
        ),
        _query("domain", "Only this domain."),
        _query("lifecycle", "Only this lifecycle (Draft, Experimental, Production, ...)."),
        _query("classification", "Only this classification (Public, Internal, ...)."),
        _query("health", "Only this health (healthy, unhealthy, unknown)."),
        _query(
            "limit",
            "Products per page (default 100; more than 1000 gives 1000).",
            {"type": "integer"},
        ),
        _query("offset", "Products to skip.", {"type": "integer"}),
    ]
    api = urls.API
    paths = {
        f"{api}/dataproducts": {
            "get": {
                "summary": "Data products listed in the mesh, searched and filtered",
                "operationId": "listDataProducts",
                "parameters": filters,
                "responses": {"200": _json_response("One page.", _ref("ProductList")), **ERRORS},
            }
        },
        f"{api}/dataproducts/{{namespace}}/{{name}}": {
            "get": {
                "summary": "One data product: ports, schemas, SLOs, status, runs, lineage",
                "operationId": "getDataProduct",
                "parameters": [namespace, name],
                "responses": {
                    "200": _json_response("The product.", _ref("ProductDetail")),
                    **ERRORS,
                },
            }
        },
        f"{api}/dataproducts/{{namespace}}/{{name}}/export/{{format}}": {
            "get": {
                "summary": "The product in an open standard",
                "operationId": "exportDataProduct",
                "parameters": [
                    namespace,
                    name,
                    format_parameter,
                    _query(
                        "port",
                        "odcs only: the contract of this output port alone, one YAML document "
                        "(what datacontract-cli reads); 404 for another format or no such port.",
                    ),
                ],
                "responses": {
                    "200": EXPORT_RESPONSE,
                    **ERRORS,
                },
            }
        },
        f"{api}/export/{{format}}": {
            "get": {
                "summary": "Every product listed in the mesh in an open standard, as one document "
                "stream (a Backstage URL location for the whole mesh)",
                "operationId": "exportMesh",
                "parameters": [format_parameter],
                "responses": {
                    "200": EXPORT_RESPONSE,
                    **ERRORS,
                    "429": _json_response(
                        "As many whole-mesh exports as allowed at once are running; try again "
                        "after the Retry-After header's seconds.",
                        _ref("Error"),
                    ),
                    "503": _json_response(
                        "The catalog is still listing the mesh, or the export spent its CPU "
                        "budget (reason ExportTooLarge): export per product instead.",
                        _ref("Error"),
                    ),
                },
            }
        },
        f"{api}/domains": {
            "get": {
                "summary": "Every domain: onboarded ones and those products name",
                "operationId": "listDomains",
                "responses": {"200": _json_response("The domains.", _ref("DomainList")), **ERRORS},
            }
        },
        f"{api}/domains/{{name}}": {
            "get": {
                "summary": "One domain: owners, quota use, products",
                "operationId": "getDomain",
                "parameters": [_path("name", "Name of the domain.")],
                "responses": {"200": _json_response("The domain.", _ref("DomainDetail")), **ERRORS},
            }
        },
        f"{api}/lineage": {
            "get": {
                "summary": "The lineage graph of the mesh, or a node's neighbourhood",
                "operationId": "getLineage",
                "parameters": [
                    _query("focus", "A node id, e.g. product:sales/orders."),
                    _query(
                        "hops",
                        "Hops up and down from focus (1-10, default 2).",
                        {"type": "integer"},
                    ),
                ],
                "responses": {"200": _json_response("Nodes and edges.", _ref("Lineage")), **ERRORS},
            }
        },
        f"{api}/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "getOpenApi",
                "responses": {"200": {"description": "OpenAPI 3.1."}},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dataproduct-operator catalog",
            "version": __version__,
            "description": "Read-only metadata of the data mesh: products, domains, lineage and "
            "exports to ODPS, ODCS, Backstage and OpenLineage. Never data values.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
