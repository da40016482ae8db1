"""The catalog's URL scheme, in one place (layer ``catalog``, pure).

Pages, the JSON API, the lineage graph's links and the exports' links all build their paths
here, so a route and every link to it cannot drift apart.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

API = "/api/v1"


def _segment(value: str) -> str:
    return quote(value, safe="")


def index_url(**filters: str) -> str:
    """The index page, optionally with search and filters (query parameters)."""
    query = urlencode({key: value for key, value in filters.items() if value})
    return f"/?{query}" if query else "/"


def product_url(namespace: str, name: str) -> str:
    return f"/dataproducts/{_segment(namespace)}/{_segment(name)}"


def domains_url() -> str:
    return "/domains"


def domain_url(name: str) -> str:
    return f"{domains_url()}/{_segment(name)}"


def lineage_url(focus: str | None = None, hops: int | None = None) -> str:
    """The mesh's lineage graph, or the neighbourhood of the node ``focus`` (a node id)."""
    query = urlencode(
        {key: value for key, value in (("focus", focus), ("hops", hops)) if value is not None}
    )
    return f"/lineage?{query}" if query else "/lineage"


def api_product_url(namespace: str, name: str) -> str:
    return f"{API}/dataproducts/{_segment(namespace)}/{_segment(name)}"


def api_export_url(namespace: str, name: str, format_name: str) -> str:
    return f"{api_product_url(namespace, name)}/export/{_segment(format_name)}"


def api_port_contract_url(namespace: str, name: str, port: str) -> str:
    """One output port's ODCS contract alone (one YAML document, as datacontract-cli reads)."""
    return f"{api_export_url(namespace, name, 'odcs')}?{urlencode({'port': port})}"
