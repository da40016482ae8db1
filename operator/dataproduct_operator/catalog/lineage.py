"""The mesh's lineage graph (layer ``catalog``, pure: no I/O).

Turns the data products into a directed graph of where data comes from: one node per product,
one per external source, and edges along each product's ``spec.inputs`` (data flows from the
source node to the consuming product). The catalog shows only what it may show: a product that
is not listed appears as an anonymous ``unlisted`` node, and only where a listed product reads
from it. Everything comes out sorted so the same mesh always gives the same graph.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from dataproduct_operator.api.conditions import DATA_HEALTHY, READY, ConditionStatus
from dataproduct_operator.api.dataproduct import (
    DataProduct,
    Discoverability,
    ExternalSource,
    FileSource,
    Input,
)
from dataproduct_operator.catalog.urls import lineage_url, product_url


class NodeKind(StrEnum):
    PRODUCT = "product"
    EXTERNAL = "external"
    UNLISTED = "unlisted"


class Health(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


class UnknownNode(LookupError):  # noqa: N818 - reads as the server's 404: no such node
    """No node of the graph has this id."""

    def __init__(self, node_id: str) -> None:
        super().__init__(f"No node {node_id!r} in the lineage graph")
        self.node_id = node_id


@dataclass(frozen=True)
class LineageEntry:
    """What the graph shows of one product: all the catalog keeps in memory for its lineage."""

    namespace: str
    name: str
    domain: str
    description: str
    health: Health
    discoverability: Discoverability
    inputs: tuple[Input, ...]

    @classmethod
    def of(cls, product: DataProduct) -> LineageEntry:
        spec = product.spec
        return cls(
            namespace=product.namespace,
            name=product.name,
            domain=spec.domain,
            description=spec.description,
            health=health_of(product),
            discoverability=spec.discoverability,
            inputs=tuple(spec.inputs),
        )


@dataclass(frozen=True)
class Node:
    """One box of the graph. ``description`` is hover text only."""

    id: str
    kind: NodeKind
    label: str
    sublabel: str
    health: Health
    href: str | None
    description: str = ""


@dataclass(frozen=True)
class Edge:
    """Data flows from ``source`` to ``target``: a port name, or an external input's name."""

    source: str
    target: str
    label: str


@dataclass(frozen=True)
class LineageGraph:
    """Nodes sorted by id, edges sorted by (source, target, label); every edge end is a node."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    @cached_property
    def _by_id(self) -> dict[str, Node]:
        return {node.id: node for node in self.nodes}

    @cached_property
    def _incoming(self) -> dict[str, tuple[Edge, ...]]:
        return _group(self.edges, lambda edge: edge.target)

    @cached_property
    def _outgoing(self) -> dict[str, tuple[Edge, ...]]:
        return _group(self.edges, lambda edge: edge.source)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._by_id

    def node(self, node_id: str) -> Node:
        """The node with this id; ``UnknownNode`` if there is none."""
        try:
            return self._by_id[node_id]
        except KeyError:
            raise UnknownNode(node_id) from None

    def incoming(self, node_id: str) -> tuple[Edge, ...]:
        """Edges into the node: where its data comes from."""
        return self._incoming.get(node_id, ())

    def outgoing(self, node_id: str) -> tuple[Edge, ...]:
        """Edges out of the node: who reads it."""
        return self._outgoing.get(node_id, ())


def _group(edges: Iterable[Edge], key: Callable[[Edge], str]) -> dict[str, tuple[Edge, ...]]:
    groups: dict[str, list[Edge]] = {}
    for edge in edges:
        groups.setdefault(key(edge), []).append(edge)
    return {node_id: tuple(group) for node_id, group in groups.items()}


# Control characters and non-characters mean nothing in a source's type or URI, and XML and
# many terminals cannot carry them: they go, so an id reads the same everywhere it appears.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def product_node_id(namespace: str, name: str) -> str:
    return f"product:{namespace}/{name}"


def external_node_id(source: ExternalSource) -> str:
    return f"external:{_printable(source.type)}:{redact_uri(source.uri)}"


# The scheme naming a file on a claim: pvc://<namespace>/<claim>/<path> (lineage, exports).
CLAIM_SCHEME = "pvc"


def file_location(namespace: str, file: FileSource) -> str:
    """Where a file input is, as the catalog and the exports name it: its URL redacted (no
    query or fragment), or ``pvc://<namespace>/<claim>/<path>`` for a file on a claim."""
    if file.volume is not None:
        return f"{CLAIM_SCHEME}://{namespace}/{file.volume.claim_name}/{file.volume.path}"
    return redact_uri(file.url or "")


def file_node_id(namespace: str, file: FileSource) -> str:
    return f"external:file:{_printable(file_location(namespace, file))}"


def _printable(text: str) -> str:
    return _UNPRINTABLE.sub("", text)


def health_of(product: DataProduct) -> Health:
    """Unhealthy when Ready or DataHealthy is False; healthy when Ready is True and the data is
    healthy (or the status predates DataHealthy); unknown otherwise: not yet reconciled, or no
    run has published data yet. Never "healthy" beside stale data or failing checks."""
    states = {c.type: c.status for c in product.status.conditions}
    ready, data = states.get(READY), states.get(DATA_HEALTHY)
    if ConditionStatus.FALSE in (ready, data):
        return Health.UNHEALTHY
    if ready is ConditionStatus.TRUE and data in (ConditionStatus.TRUE, None):
        return Health.HEALTHY
    return Health.UNKNOWN


# Anything after these in a URI may carry credentials (query tokens, JDBC ;password=...).
_URI_TAIL = re.compile(r"[?#;]")


def _uri_parts(uri: str) -> tuple[str, str, str, str]:
    """(scheme, host, port, path) of a URI; user information, query and parameters dropped.

    Nested schemes (``jdbc:sqlserver://...``) stay whole in the scheme; a URI without ``://``
    is read as ``host[:port]/path``.
    """
    text = _printable(uri).strip()
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "", text
    # Passwords are often pasted unencoded, '/', '@', '?', '#' and ';' included: when a
    # user:password form precedes the last '@', all of it goes (before the query, fragment and
    # parameters are cut, which could otherwise cut the password in two), even at the cost of a
    # path that held an '@'.
    userinfo, at, after = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = after
    rest = _URI_TAIL.split(rest, maxsplit=1)[0]
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]
    if authority.startswith("["):
        address, _, port = authority.partition("]")
        host, port = address + "]", port.removeprefix(":")
    else:
        host, _, port = authority.partition(":")
    return scheme, host, port, slash + path


def redact_uri(uri: str) -> str:
    """The URI without user information, query, fragment or parameters.

    What remains (scheme, host, port, path) names the source without carrying a secret.
    """
    scheme, host, port, path = _uri_parts(uri)
    prefix = f"{scheme}://" if scheme else ""
    return f"{prefix}{host}{':' + port if port else ''}{path}"


def short_uri(uri: str) -> str:
    """``host/path`` of a URI, for a label: no scheme, port, credentials or query."""
    _, host, _, path = _uri_parts(uri)
    return f"{host}{path}".rstrip("/") or host


def build_lineage(
    products: Sequence[DataProduct | LineageEntry],
    *,
    listed: Callable[[LineageEntry], bool],
) -> LineageGraph:
    """The lineage graph of ``products``, showing only what ``listed`` lets the catalog show.

    A reference to a product that is not listed, or does not exist, becomes an anonymous
    ``unlisted`` node: the graph never tells which names exist.
    """
    entries = [p if isinstance(p, LineageEntry) else LineageEntry.of(p) for p in products]
    by_key = {(e.namespace, e.name): e for e in entries}
    shown = sorted((key, e) for key, e in by_key.items() if listed(e))
    nodes: dict[str, Node] = {}
    edges: set[Edge] = set()
    unlisted: dict[tuple[str, str], list[Edge]] = {}

    for (namespace, name), entry in shown:
        node_id = product_node_id(namespace, name)
        nodes[node_id] = Node(
            id=node_id,
            kind=NodeKind.PRODUCT,
            label=name,
            sublabel=entry.domain,
            health=entry.health,
            href=product_url(namespace, name),
            description=entry.description,
        )

    for (namespace, name), entry in shown:
        target = product_node_id(namespace, name)
        for item in entry.inputs:
            if item.external is not None:
                source = external_node_id(item.external)
                nodes.setdefault(source, _external_node(source, item.external))
                edges.add(Edge(source, target, item.name))
            elif item.file is not None:
                source = file_node_id(namespace, item.file)
                nodes.setdefault(source, _file_node(source, namespace, item.file))
                edges.add(Edge(source, target, item.name))
            elif item.data_product is not None:
                ref = item.data_product
                key = (ref.namespace or namespace, ref.name)
                upstream = by_key.get(key)
                if upstream is not None and listed(upstream):
                    edges.add(Edge(product_node_id(*key), target, ref.port))
                else:
                    # A product that does not exist looks the same as one that is not shown, or
                    # the graph would tell which hidden names exist. Port names often repeat the
                    # product's name: an unlisted port stays unnamed.
                    unlisted.setdefault(key, []).append(Edge("", target, ""))

    # Numbered in name order, and only those a listed product reads: the id must say nothing
    # about the product, and a hidden product nobody listed reads from is not shown at all.
    for number, key in enumerate(sorted(unlisted), start=1):
        source = f"unlisted:{number}"
        nodes[source] = Node(
            id=source,
            kind=NodeKind.UNLISTED,
            label="unlisted product",
            sublabel="",
            health=Health.UNKNOWN,
            href=None,
        )
        edges.update(Edge(source, edge.target, edge.label) for edge in unlisted[key])

    return LineageGraph(
        nodes=tuple(sorted(nodes.values(), key=lambda node: node.id)),
        edges=tuple(sorted(edges, key=lambda edge: (edge.source, edge.target, edge.label))),
    )


def _external_node(node_id: str, source: ExternalSource) -> Node:
    return Node(
        id=node_id,
        kind=NodeKind.EXTERNAL,
        label=f"{_printable(source.type)} {short_uri(source.uri)}".strip(),
        sublabel="external source",
        health=Health.UNKNOWN,
        href=lineage_url(focus=node_id),
        description=redact_uri(source.uri),
    )


def _file_node(node_id: str, namespace: str, file: FileSource) -> Node:
    location = file_location(namespace, file)
    return Node(
        id=node_id,
        kind=NodeKind.EXTERNAL,
        label=f"{file.format.value} {short_uri(location)}",
        sublabel="file",
        health=Health.UNKNOWN,
        href=lineage_url(focus=node_id),
        description=location,
    )


def neighbourhood(graph: LineageGraph, focus: str, hops: int) -> LineageGraph:
    """``focus`` and what lies within ``hops`` edges upstream of it or downstream of it.

    Upstream follows edges backwards only and downstream forwards only, so a sibling (another
    reader of the same source) is not a neighbour. The edges kept are all edges among the
    nodes kept. ``UnknownNode`` if ``focus`` is not in the graph.
    """
    if hops < 0:
        raise ValueError(f"hops must be 0 or more, not {hops}")
    graph.node(focus)
    kept = {focus}
    for upstream in (True, False):
        frontier = {focus}
        seen = {focus}
        for _ in range(hops):
            frontier = {
                edge.source if upstream else edge.target
                for node_id in frontier
                for edge in (graph.incoming(node_id) if upstream else graph.outgoing(node_id))
            } - seen
            if not frontier:
                break
            seen |= frontier
        kept |= seen
    return LineageGraph(
        nodes=tuple(node for node in graph.nodes if node.id in kept),
        edges=tuple(e for e in graph.edges if e.source in kept and e.target in kept),
    )
