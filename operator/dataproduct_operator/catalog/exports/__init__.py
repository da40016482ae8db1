"""Open-standard exports of a DataProduct, by format name (layer ``catalog``, pure).

``odps`` (Bitol Open Data Product Standard), ``odcs`` (Bitol Open Data Contract Standard, one
contract per output port), ``backstage`` (catalog entities) and ``openlineage`` (static lineage
events). The YAML formats are streams of documents (``---`` before each), as ``kubectl`` and a
Backstage URL location read them; OpenLineage is a JSON array of events, each of which can be
sent as it is to an OpenLineage endpoint. A format with a document per port (``odcs``) also
renders one port's alone (:meth:`ExportFormat.render_port`): one contract in one YAML document,
which is what datacontract-cli reads (it refuses a stream). The catalog's JSON API and ``dpo
export`` both render through :data:`EXPORT_FORMATS`; both pass the endpoints of the products
they know (``upstream``), so lineage names an input by its upstream's table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dataproduct_operator.api.datadomain import DataDomain
from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.catalog.exports.backstage import build_backstage_entities
from dataproduct_operator.catalog.exports.common import EndpointLookup, no_endpoints
from dataproduct_operator.catalog.exports.odcs import build_odcs, build_odcs_contracts
from dataproduct_operator.catalog.exports.odps import build_odps
from dataproduct_operator.catalog.exports.openlineage import build_openlineage
from dataproduct_operator.errors import UserError
from dataproduct_operator.openlineage.endpoint import DEFAULT_NAMESPACE as DEFAULT_LINEAGE_NAMESPACE
from dataproduct_operator.specs.stream import dump_stream

# (product, its domain if known, event time, catalog base URL if known, upstream endpoints,
# the OpenLineage namespace of the operator's jobs) -> documents
Builder = Callable[
    [DataProduct, DataDomain | None, str, str | None, EndpointLookup, str], list[Any]
]
Dumper = Callable[[list[Any]], str]
# (product, port name) -> the document of that port alone
PortBuilder = Callable[[DataProduct, str], Any]


def _json_array(documents: list[Any]) -> str:
    return json.dumps(documents, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class ExportFormat:
    """One export format: what it is called and served as, and how it is built."""

    name: str
    title: str
    media_type: str
    file_suffix: str  # after "<namespace>.<name>."
    build: Builder
    dump: Dumper
    build_port: PortBuilder | None = None

    def documents(
        self,
        product: DataProduct,
        domain: DataDomain | None,
        event_time: str,
        *,
        catalog_url: str | None = None,
        upstream: EndpointLookup = no_endpoints,
        lineage_namespace: str = DEFAULT_LINEAGE_NAMESPACE,
    ) -> list[Any]:
        return self.build(product, domain, event_time, catalog_url, upstream, lineage_namespace)

    def render(
        self,
        product: DataProduct,
        domain: DataDomain | None,
        event_time: str,
        *,
        catalog_url: str | None = None,
        upstream: EndpointLookup = no_endpoints,
        lineage_namespace: str = DEFAULT_LINEAGE_NAMESPACE,
    ) -> str:
        """The export of one product as text.

        ``event_time`` (ISO 8601, UTC) stamps OpenLineage events; ``catalog_url``, the
        catalog's base URL, adds links to the product's page where the format has a place;
        ``upstream`` gives the endpoints of the other products' ports it reads, where known;
        ``lineage_namespace``: the OpenLineage namespace of the operator's jobs
        (``--openlineage-namespace``), so the static lineage names the jobs its run events do.
        """
        return self.dump(
            self.build(product, domain, event_time, catalog_url, upstream, lineage_namespace)
        )

    def render_port(self, product: DataProduct, port_name: str) -> str:
        """The document of one output port alone (one YAML document), or a :class:`UserError`
        when the format has no document per port or the product no such port."""
        if self.build_port is None:
            per_port = ", ".join(f.name for f in EXPORT_FORMATS.values() if f.build_port)
            raise UserError(
                f"The {self.name} export has no document per output port; one port's document "
                f"is exported in {per_port}"
            )
        return self.dump([self.build_port(product, port_name)])

    def render_many(
        self,
        items: Iterable[tuple[DataProduct, DataDomain | None]],
        event_time: str,
        *,
        catalog_url: str | None = None,
        upstream: EndpointLookup = no_endpoints,
        lineage_namespace: str = DEFAULT_LINEAGE_NAMESPACE,
    ) -> str:
        """The exports of several products as one text: one stream, or one JSON array.

        A document several products export alike (their Backstage Domain) appears once: one
        location must not define an entity twice.
        """
        documents: list[Any] = []
        seen: set[str] = set()
        for product, domain in items:
            built = self.build(
                product, domain, event_time, catalog_url, upstream, lineage_namespace
            )
            for document in built:
                key = json.dumps(document, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    documents.append(document)
        return self.dump(documents)


EXPORT_FORMATS: dict[str, ExportFormat] = {
    export.name: export
    for export in (
        ExportFormat(
            name="odps",
            title="Open Data Product Standard (ODPS) v1.0.0",
            media_type="application/yaml",
            file_suffix="odps.yaml",
            build=lambda product, domain, _time, url, _upstream, _jobs: [
                build_odps(product, domain, catalog_url=url)
            ],
            dump=dump_stream,
        ),
        ExportFormat(
            name="odcs",
            title="Open Data Contract Standard (ODCS) v3, one contract per output port",
            media_type="application/yaml",
            file_suffix="odcs.yaml",
            build=lambda product, _domain, _time, _url, _upstream, _jobs: build_odcs_contracts(
                product
            ),
            dump=dump_stream,
            build_port=build_odcs,
        ),
        ExportFormat(
            name="backstage",
            title="Backstage catalog entities",
            media_type="application/yaml",
            file_suffix="backstage.yaml",
            build=lambda product, domain, _time, url, _upstream, _jobs: build_backstage_entities(
                product, domain, catalog_url=url
            ),
            dump=dump_stream,
        ),
        ExportFormat(
            name="openlineage",
            title="OpenLineage static lineage events (a JSON array)",
            media_type="application/json",
            file_suffix="openlineage.json",
            build=lambda product, _domain, time, _url, upstream, jobs: build_openlineage(
                product, event_time=time, upstream=upstream, namespace_for_jobs=jobs
            ),
            dump=_json_array,
        ),
    )
}


def export_format(name: str) -> ExportFormat:
    """The format called ``name``, or a :class:`UserError` naming the valid ones."""
    try:
        return EXPORT_FORMATS[name]
    except KeyError:
        raise UserError(
            f"Unknown export format {name!r}; one of {', '.join(EXPORT_FORMATS)}"
        ) from None
