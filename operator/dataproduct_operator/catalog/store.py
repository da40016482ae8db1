"""The catalog's picture of the mesh, in memory (layer ``catalog``, no I/O).

Fed by :mod:`~dataproduct_operator.catalog.watch` (list, then watch) with DataProducts,
DataDomains, the products' connection ConfigMaps and their Jobs (the last pipeline runs); read by
every page view, which never asks the API server. Products are parsed once per change, with
their summary. The lineage graph is rebuilt only when something it shows changed (a product
came or went, or its inputs, health, domain, description or discoverability changed: not the
status writes of every reconcile), and the whole mesh's drawing is kept for the graph it shows.
What is kept of each product and domain is bounded (:func:`~dataproduct_operator.catalog.limits.
bounded_object`): a product of the largest size the API server admits costs the catalog tens of
kilobytes, not megabytes, and says what was shortened.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from dataproduct_operator.api.datadomain import DataDomain
from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.api.kinds import DATA_DOMAIN_KIND, DATA_PRODUCT_KIND
from dataproduct_operator.catalog.limits import bounded_object
from dataproduct_operator.catalog.lineage import LineageEntry, LineageGraph, build_lineage
from dataproduct_operator.catalog.model import ProductSummary, Visibility, summarize
from dataproduct_operator.constants import LABEL_PIPELINE, LABEL_PRODUCT

logger = logging.getLogger(__name__)

PRODUCTS = DATA_PRODUCT_KIND
DOMAINS = DATA_DOMAIN_KIND
CONFIG_MAPS = ("v1", "ConfigMap")
JOBS = ("batch/v1", "Job")
JOBS_KEPT_PER_PRODUCT = 20
DRAWINGS_KEPT = 32  # lineage drawings of the current graph: the whole mesh and focused views
SCOPED_GRAPHS_KEPT = 64  # lineage graphs of the current mesh as callers of --auth see them

Kind = tuple[str, str]
Key = tuple[str, str]  # namespace, name


@dataclass(frozen=True)
class CachedProduct:
    """One product as the store keeps it: what lists and the lineage need, the rest as compact
    JSON parsed again (in about 0.1 ms) only for the page or export that shows all of it. A
    parsed product is some hundred Python objects; kept for every product of a large mesh, they
    would be most of the memory of the process that serves the catalog (the operator's)."""

    version: str
    summary: ProductSummary
    lineage: LineageEntry
    document: bytes
    truncated: tuple[str, ...] = ()  # paths of the fields the store shortened

    @property
    def product(self) -> DataProduct:
        return DataProduct.from_object(json.loads(self.document))

    @property
    def key(self) -> Key:
        return self.lineage.namespace, self.lineage.name


def _bounded(obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What :meth:`DataProduct.from_object` reads, bounded: no annotations, no managedFields,
    long texts and lists shortened."""
    metadata = obj.get("metadata") or {}
    slim = {
        "metadata": {
            key: metadata[key]
            for key in ("name", "namespace", "uid", "generation", "creationTimestamp")
            if key in metadata
        },
        "spec": obj.get("spec") or {},
        "status": obj.get("status") or {},
    }
    return bounded_object(slim)


def _document(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _version(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _newer(obj: dict[str, Any], cached_version: str | None) -> bool:
    if cached_version is None:
        return True
    try:
        return int(_version(obj)) > int(cached_version)
    except ValueError:
        return True


def _key(obj: dict[str, Any]) -> Key:
    metadata = obj["metadata"]
    return sys.intern(metadata.get("namespace", "")), metadata["name"]


def _in(namespace: str | None, key: Key) -> bool:
    return namespace is None or key[0] == namespace


def _slim_job(job: dict[str, Any]) -> dict[str, Any]:
    metadata = job.get("metadata") or {}
    labels = metadata.get("labels") or {}
    status = job.get("status") or {}
    return {
        "metadata": {
            "name": metadata.get("name", ""),
            "namespace": metadata.get("namespace", ""),
            "creationTimestamp": metadata.get("creationTimestamp"),
            "labels": {k: labels[k] for k in (LABEL_PRODUCT, LABEL_PIPELINE) if k in labels},
        },
        "status": {
            key: status[key]
            for key in ("startTime", "completionTime", "conditions", "active")
            if key in status
        },
    }


class CatalogStore:
    """Products, domains, connection ConfigMaps and pipeline Jobs; see the module docstring."""

    def __init__(self, visibility: Visibility | None = None) -> None:
        self.visibility = visibility or Visibility()
        self.synced = False  # set by the watch once every kind has been listed
        self._products: dict[Key, CachedProduct] = {}
        self._domains: dict[str, tuple[str, DataDomain]] = {}
        self._connections: dict[Key, dict[str, Any]] = {}
        self._jobs: dict[Key, dict[str, dict[str, Any]]] = {}  # (namespace, product) -> jobs
        self._lineage_version = 0  # grows when something the lineage graph shows changed
        self._graph: tuple[int, LineageGraph] | None = None
        self._drawings_of: LineageGraph | None = None
        self._drawings: OrderedDict[tuple[str | None, int], str] = OrderedDict()
        self._scoped_graphs: OrderedDict[frozenset[str], tuple[int, LineageGraph]] = OrderedDict()

    # -- reading ---------------------------------------------------------------------------

    def products(self) -> list[CachedProduct]:
        return list(self._products.values())

    def product(self, namespace: str, name: str) -> CachedProduct | None:
        return self._products.get((namespace, name))

    # The readers below may run on the catalog's own thread while the watches write on theirs:
    # each reads a table by one whole-object operation (a copy, a lookup), atomic under the
    # interpreter's lock, and iterates only the copy.

    def domains(self) -> dict[str, DataDomain]:
        return {name: domain for name, (_, domain) in list(self._domains.items())}

    def connection(self, namespace: str, config_map: str) -> dict[str, Any] | None:
        return self._connections.get((namespace, config_map))

    def jobs(self, namespace: str, product: str) -> list[dict[str, Any]]:
        return list(self._jobs.get((namespace, product), {}).values())

    def lineage(self) -> LineageGraph:
        """The mesh-wide lineage graph (products not listed mesh-wide are unlisted nodes)."""
        if self._graph is None or self._graph[0] != self._lineage_version:
            graph = build_lineage(
                [cached.lineage for cached in self.products()],
                listed=lambda entry: self.visibility.in_mesh(entry.discoverability),
            )
            self._graph = (self._lineage_version, graph)
        return self._graph[1]

    def lineage_within(self, namespaces: frozenset[str]) -> LineageGraph:
        """The lineage graph as a caller who may see only the products of ``namespaces`` sees
        it: every other product an anonymous unlisted node at most. Kept per set of namespaces
        (the most recent :data:`SCOPED_GRAPHS_KEPT`) until the mesh's graph changes."""
        kept = self._scoped_graphs.get(namespaces)
        if kept is not None and kept[0] == self._lineage_version:
            self._scoped_graphs.move_to_end(namespaces)
            return kept[1]
        graph = build_lineage(
            [cached.lineage for cached in self._products.values()],
            listed=lambda entry: (
                entry.namespace in namespaces and self.visibility.in_mesh(entry.discoverability)
            ),
        )
        self._scoped_graphs[namespaces] = (self._lineage_version, graph)
        self._scoped_graphs.move_to_end(namespaces)
        while len(self._scoped_graphs) > SCOPED_GRAPHS_KEPT:
            self._scoped_graphs.popitem(last=False)
        return graph

    def kept_drawing(self, graph: LineageGraph, key: tuple[str | None, int]) -> str | None:
        """A drawing of ``graph`` (the mesh's) kept under ``key`` (focus, hops). Laying out a
        mesh of a thousand products takes about half a second: each is drawn once per graph."""
        if self._drawings_of is not graph or key not in self._drawings:
            return None
        self._drawings.move_to_end(key)
        return self._drawings[key]

    def keep_drawing(self, graph: LineageGraph, key: tuple[str | None, int], svg: str) -> None:
        if self._drawings_of is not graph:
            self._drawings_of, self._drawings = graph, OrderedDict()
        self._drawings[key] = svg
        self._drawings.move_to_end(key)
        while len(self._drawings) > DRAWINGS_KEPT:
            self._drawings.popitem(last=False)

    # -- feeding ---------------------------------------------------------------------------

    def replace_listing(
        self, kind: Kind, namespace: str | None, items: list[dict[str, Any]]
    ) -> None:
        """A full listing of ``kind`` in ``namespace`` (None: all): forget what is gone."""
        present = {_key(item) for item in items}
        if kind == DOMAINS:
            for name in [n for n in self._domains if ("", n) not in present]:
                self.record(kind, "DELETED", {"metadata": {"name": name}})
        elif kind == JOBS:
            for key in [k for k in self._jobs if _in(namespace, k)]:
                del self._jobs[key]
        else:
            table: dict[Key, Any] = self._products if kind == PRODUCTS else self._connections
            for key in [k for k in table if _in(namespace, k) and k not in present]:
                self.record(kind, "DELETED", {"metadata": {"namespace": key[0], "name": key[1]}})
        for item in items:
            self.record(kind, "LISTED", item)

    def record(self, kind: Kind, event: str, obj: dict[str, Any]) -> None:
        """One watch event (ADDED, MODIFIED, DELETED, or LISTED) of an object of ``kind``."""
        {
            PRODUCTS: self._product_event,
            DOMAINS: self._domain_event,
            CONFIG_MAPS: self._connection_event,
            JOBS: self._job_event,
        }[kind](event, obj)

    def _product_event(self, event: str, obj: dict[str, Any]) -> None:
        key = _key(obj)
        if event == "DELETED":
            if self._products.pop(key, None) is not None:
                self._lineage_version += 1
            return
        cached = self._products.get(key)
        if not _newer(obj, cached.version if cached else None):
            return
        kept, truncated = _bounded(obj)
        try:
            product = DataProduct.from_object(kept)
        except ValidationError as error:
            # The CRD admitted it; a newer operator may know fields this one does not. What was
            # shown before goes: the change may have been to Hidden.
            logger.warning("DataProduct %s/%s cannot be shown: %s", *key, error)
            if self._products.pop(key, None) is not None:
                self._lineage_version += 1
            return
        lineage = LineageEntry.of(product)
        self._products[key] = CachedProduct(
            _version(obj),
            summarize(product, truncated=bool(truncated)),
            lineage,
            _document(kept),
            tuple(truncated),
        )
        # Only what the graph shows counts: most updates are the operator's status writes.
        if cached is None or cached.lineage != lineage:
            self._lineage_version += 1

    def _domain_event(self, event: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if event == "DELETED":
            self._domains.pop(name, None)
            return
        cached = self._domains.get(name)
        if not _newer(obj, cached[0] if cached else None):
            return
        try:
            kept, _ = _bounded(obj)
            self._domains[name] = (_version(obj), DataDomain.from_object(kept))
        except ValidationError as error:
            logger.warning("DataDomain %s cannot be shown: %s", name, error)

    def _connection_event(self, event: str, obj: dict[str, Any]) -> None:
        key = _key(obj)
        if event == "DELETED":
            self._connections.pop(key, None)
        else:
            self._connections[key] = {"data": dict(obj.get("data") or {})}

    def _job_event(self, event: str, obj: dict[str, Any]) -> None:
        metadata = obj["metadata"]
        product = (metadata.get("labels") or {}).get(LABEL_PRODUCT)
        if product is None:
            return
        key = (sys.intern(metadata.get("namespace", "")), product)
        jobs = self._jobs.setdefault(key, {})
        if event == "DELETED":
            jobs.pop(metadata["name"], None)
        else:
            jobs[metadata["name"]] = _slim_job(obj)
            if len(jobs) > JOBS_KEPT_PER_PRODUCT:
                del jobs[min(jobs, key=lambda n: jobs[n]["metadata"]["creationTimestamp"] or "")]
        if not jobs:
            del self._jobs[key]
