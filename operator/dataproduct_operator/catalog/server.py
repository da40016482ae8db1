"""The catalog's web server: pages, JSON API, lineage SVG, exports (layer ``catalog``, imperative).

Thin on purpose: a request reads the :class:`~dataproduct_operator.catalog.store.CatalogStore`
(memory, never the API server), asks the pure views for what to show, and renders a template or
JSON. Errors of the JSON API are JSON with the matching status code; pages get an HTML error
page. Which products a page may show is the store's :class:`Visibility`: Hidden products answer
404 like products that do not exist, so a URL reveals nothing.

What a request may cost is bounded (:mod:`~dataproduct_operator.catalog.limits`): searches are
refused past a length, run in a worker thread of their own under a CPU budget, and so do
whole-mesh exports, of which only so many run at once (another answers 429 with Retry-After).
Every text shown, in pages and in the JSON API, is stripped of bidirectional controls. The
server runs on a thread and event loop of its own (:class:`CatalogServer`), never the
operator's.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any, TypeVar, cast

import jinja2
from aiohttp import web
from aiohttp.typedefs import Middleware

from dataproduct_operator.api.dataproduct import DataProduct, PortEndpoint
from dataproduct_operator.api.naming import connection_config_map_name
from dataproduct_operator.catalog import urls
from dataproduct_operator.catalog.access import shows_namespace
from dataproduct_operator.catalog.exports import EXPORT_FORMATS, ExportFormat
from dataproduct_operator.catalog.exports.common import EndpointLookup, port_endpoint
from dataproduct_operator.catalog.limits import (
    MAX_PAGE_SIZE,
    CatalogLimits,
    CpuBudget,
    CpuBudgetSpentError,
    QueryTooLongError,
    search_words,
    strip_bidi,
)
from dataproduct_operator.catalog.lineage import (
    LineageGraph,
    UnknownNode,
    build_lineage,
    neighbourhood,
)
from dataproduct_operator.catalog.model import (
    DomainDetail,
    DomainSummary,
    Filters,
    IndexView,
    ProductSummary,
    build_domain_detail,
    build_index,
    build_product_detail,
    describe_age,
    parse_time,
    summarize_domain,
    without_unshown_inputs,
)
from dataproduct_operator.catalog.openapi import build_openapi
from dataproduct_operator.catalog.store import CachedProduct, CatalogStore
from dataproduct_operator.catalog.svg import render_svg
from dataproduct_operator.errors import UserError
from dataproduct_operator.openlineage.endpoint import DEFAULT_NAMESPACE as DEFAULT_LINEAGE_NAMESPACE

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_HOPS = 10
DEFAULT_HOPS = 2
STORE_KEY: web.AppKey[CatalogStore] = web.AppKey("store", CatalogStore)
TEMPLATES_KEY: web.AppKey[jinja2.Environment] = web.AppKey("templates", jinja2.Environment)
Clock = Callable[[], datetime]
CLOCK_KEY: web.AppKey[Clock] = web.AppKey("clock")
PUBLIC_URL_KEY: web.AppKey[str | None] = web.AppKey("public_url")
LINEAGE_NAMESPACE_KEY: web.AppKey[str] = web.AppKey("lineage_namespace")
# The store as this request's caller may read it (set by --auth kubernetes, catalog/auth.py).
VIEW_KEY: web.RequestKey[CatalogStore] = web.RequestKey("view", CatalogStore)


@dataclass
class Workers:
    """The catalog's worker threads and what they may spend: a thread for searches, and one
    per whole-mesh export allowed at once. Few on purpose: each busy thread takes its share of
    the interpreter's lock, which the operator's thread (in its process) needs too."""

    limits: CatalogLimits
    search: ThreadPoolExecutor = field(init=False)
    export: ThreadPoolExecutor = field(init=False)
    mesh_exports: int = 0  # running now

    def __post_init__(self) -> None:
        self.search = ThreadPoolExecutor(1, thread_name_prefix="catalog-search")
        self.export = ThreadPoolExecutor(
            self.limits.mesh_exports_at_once, thread_name_prefix="catalog-export"
        )

    def shutdown(self) -> None:
        self.search.shutdown(wait=False, cancel_futures=True)
        self.export.shutdown(wait=False, cancel_futures=True)


WORKERS_KEY: web.AppKey[Workers] = web.AppKey("workers", Workers)


class CatalogError(Exception):
    """A request the catalog cannot answer: becomes JSON (API) or an error page."""

    def __init__(
        self, status: int, reason: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers or {}


def _not_found(what: str) -> CatalogError:
    return CatalogError(404, "NotFound", f"{what} not found")


# -- templates ---------------------------------------------------------------------------------


def _templates(clock: Clock) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("dataproduct_operator.catalog", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["urls"] = urls
    environment.filters["ago"] = lambda timestamp: _ago(timestamp, clock())
    return environment


def _ago(timestamp: str | None, now: datetime) -> str:
    moment = parse_time(timestamp)
    if moment is None:
        return timestamp or ""
    return f"{describe_age((now - moment).total_seconds())} ago"


def _page(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    text = (
        request.app[TEMPLATES_KEY]
        .get_template(template)
        .render(path=request.path, synced=request.app[STORE_KEY].synced, **context)
    )
    # Bidirectional controls are never part of markup: stripped from the page in one pass.
    return web.Response(text=strip_bidi(text), content_type="text/html", status=status)


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer; its texts are what the catalog's pages show: stripped like them (written
    as UTF-8, not escaped, the controls can only be inside strings: one pass over the text)."""
    return web.Response(
        text=strip_bidi(json.dumps(data, indent=2, ensure_ascii=False)),
        content_type="application/json",
        status=status,
        headers=headers,
    )


# -- reading the store -----------------------------------------------------------------------


def _store(request: web.Request) -> CatalogStore:
    """The store as the caller may read it: all of it, unless an auth middleware scoped it."""
    view = request.get(VIEW_KEY)
    return request.app[STORE_KEY] if view is None else view


def _filters(request: web.Request) -> Filters:
    query = request.query
    q = query.get("q", "").strip()
    try:
        search_words(q)
    except QueryTooLongError as error:
        raise CatalogError(400, "QueryTooLong", f"{error}; search with fewer words") from None
    return Filters(
        q=q,
        domain=query.get("domain", ""),
        lifecycle=query.get("lifecycle", ""),
        classification=query.get("classification", ""),
        health=query.get("health", ""),
    )


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise CatalogError(400, "BadRequest", f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise CatalogError(400, "BadRequest", f"{name} must be between {low} and {high}")
    return value


def _mesh_summaries(store: CatalogStore) -> list[ProductSummary]:
    return [
        c.summary for c in store.products() if store.visibility.in_mesh(c.summary.discoverability)
    ]


async def _search(request: web.Request, filters: Filters, **extra: Any) -> IndexView:
    """The index for ``filters``, searched in the search thread under its CPU budget."""
    workers = request.app[WORKERS_KEY]
    summaries = _mesh_summaries(_store(request))
    seconds = workers.limits.search_cpu_seconds

    def search() -> IndexView:
        budget = CpuBudget(seconds)  # started in the worker: its CPU time only
        return build_index(summaries, filters, meter=budget.metered, **extra)

    return await asyncio.get_running_loop().run_in_executor(workers.search, search)


def _shown_product(request: web.Request) -> CachedProduct:
    """The product of the URL, if the catalog may show it; else 404 as if it did not exist."""
    store = _store(request)
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    cached = store.product(namespace, name)
    if cached is None or not store.visibility.on_domain_page(cached.summary.discoverability):
        raise _not_found(f"DataProduct {namespace}/{name}")
    return cached


def _graph_for(store: CatalogStore, cached: CachedProduct) -> LineageGraph:
    """The lineage a product's page may show: the mesh's, plus the product itself when it is
    listed only on its domain page."""
    if store.visibility.in_mesh(cached.summary.discoverability):
        return store.lineage()
    return build_lineage(
        [c.lineage for c in store.products()],
        listed=lambda e: store.visibility.in_mesh(e.discoverability) or e == cached.lineage,
    )


def _product_detail(request: web.Request, cached: CachedProduct) -> Any:
    store, product = _store(request), cached.product
    return build_product_detail(
        product,
        graph=_graph_for(store, cached),
        jobs=store.jobs(product.namespace, product.name),
        connection=store.connection(product.namespace, connection_config_map_name(product.name)),
        export_formats=EXPORT_FORMATS,
        now=request.app[CLOCK_KEY](),
        truncated=cached.truncated,
        subjects_shown=shows_namespace(store, product.namespace),
    )


def _domain_names(store: CatalogStore) -> list[str]:
    shown = {
        c.summary.domain
        for c in store.products()
        if store.visibility.on_domain_page(c.summary.discoverability)
    }
    return sorted(set(store.domains()) | shown)


def _domain_products(store: CatalogStore, name: str) -> list[ProductSummary]:
    return [
        c.summary
        for c in store.products()
        if c.summary.domain == name and store.visibility.on_domain_page(c.summary.discoverability)
    ]


def _domain_summaries(store: CatalogStore) -> list[DomainSummary]:
    domains = store.domains()
    return [
        summarize_domain(name, domains.get(name), _domain_products(store, name))
        for name in _domain_names(store)
    ]


def _domain_detail(request: web.Request) -> DomainDetail:
    store = _store(request)
    name = request.match_info["name"]
    domain = store.domains().get(name)
    products = _domain_products(store, name)
    if domain is None and not products:
        raise _not_found(f"DataDomain {name}")
    return build_domain_detail(name, domain, products)


@dataclass(frozen=True)
class LineageView:
    """The lineage a request asks for: cut from ``source`` (the mesh's graph, or a Domain
    product's own view of it), around ``focus`` if given."""

    source: LineageGraph
    graph: LineageGraph
    focus: str | None
    hops: int


def _lineage(request: web.Request) -> LineageView:
    store = _store(request)
    focus = request.query.get("focus") or None
    hops = _int(request, "hops", DEFAULT_HOPS, 1, MAX_HOPS)
    source = store.lineage()
    if focus is None:
        return LineageView(source, source, None, hops)
    namespace, _, name = focus.removeprefix("product:").partition("/")
    cached = store.product(namespace, name) if focus.startswith("product:") else None
    if cached is not None and store.visibility.on_domain_page(cached.summary.discoverability):
        source = _graph_for(store, cached)  # a Domain product sees itself in its lineage
    try:
        if source.node(focus).href is None:  # an unlisted node is no place to start
            raise UnknownNode(focus)
        return LineageView(source, neighbourhood(source, focus, hops), focus, hops)
    except UnknownNode:
        raise _not_found(f"Lineage node {focus}") from None


async def _svg(store: CatalogStore, view: LineageView) -> str:
    """The drawing of ``view``, kept for the mesh's current graph (the whole mesh's and the
    focused ones asked for most recently).

    Drawn in a worker thread: laying out a large mesh takes long enough to stall the event
    loop, which in the operator's process is also the operator's.
    """
    key = (view.focus, view.hops if view.focus else 0)
    mesh = store.lineage()
    if view.source is mesh and (kept := store.kept_drawing(mesh, key)) is not None:
        return kept
    draw = functools.partial(render_svg, view.graph, focus=view.focus)
    svg = strip_bidi(await asyncio.get_running_loop().run_in_executor(None, draw))
    if view.source is mesh:
        store.keep_drawing(mesh, key, svg)
    return svg


def _graph_json(graph: LineageGraph) -> dict[str, Any]:
    return {
        "nodes": [
            {
                "id": n.id,
                "kind": n.kind.value,
                "label": n.label,
                "sublabel": n.sublabel,
                "health": n.health.value,
                "url": n.href,
            }
            for n in graph.nodes
        ],
        "edges": [{"source": e.source, "target": e.target, "label": e.label} for e in graph.edges],
    }


# -- pages -----------------------------------------------------------------------------------


async def index_page(request: web.Request) -> web.Response:
    store = _store(request)
    filters = _filters(request)
    view = await _search(request, filters, domains=store.domains())
    pages = max(1, -(-len(view.products) // PAGE_SIZE))
    page = min(_int(request, "page", 1, 1, 1_000_000), pages)  # past the end: the last page
    start = (page - 1) * PAGE_SIZE
    return _page(
        request,
        "index.html.j2",
        view=view,
        filters=filters,
        shown=view.products[start : start + PAGE_SIZE],
        page=page,
        pages=pages,
    )


async def product_page(request: web.Request) -> web.Response:
    cached = _shown_product(request)
    detail = _product_detail(request, cached)
    return _page(request, "product.html.j2", detail=detail, product=detail.summary)


async def domains_page(request: web.Request) -> web.Response:
    return _page(request, "domains.html.j2", domains=_domain_summaries(_store(request)))


async def domain_page(request: web.Request) -> web.Response:
    return _page(request, "domain.html.j2", detail=_domain_detail(request))


async def lineage_page(request: web.Request) -> web.Response:
    view = _lineage(request)
    graph, focus, hops = view.graph, view.focus, view.hops
    return _page(
        request,
        "lineage.html.j2",
        svg=await _svg(_store(request), view),
        graph=graph,
        focus=focus,
        hops=hops,
        focus_label=next((n.label for n in graph.nodes if n.id == focus), None),
    )


async def lineage_svg(request: web.Request) -> web.Response:
    svg = await _svg(_store(request), _lineage(request))
    return web.Response(text=svg, content_type="image/svg+xml")


async def healthz(request: web.Request) -> web.Response:
    if not _store(request).synced:
        return web.Response(text="listing products\n", status=503)
    return web.Response(text="ok\n")


# -- JSON API --------------------------------------------------------------------------------


async def api_products(request: web.Request) -> web.Response:
    view = await _search(request, _filters(request))
    # A larger page is clamped, not refused: a client asking for "everything" gets pages.
    limit = min(_int(request, "limit", PAGE_SIZE, 1, 1_000_000_000), MAX_PAGE_SIZE)
    offset = _int(request, "offset", 0, 0, 10_000_000)
    items = view.products[offset : offset + limit]
    following = offset + limit
    next_url = None
    if following < len(view.products):
        next_url = str(request.rel_url.update_query(offset=str(following), limit=str(limit)))
    return _json(
        {
            "items": [item.to_json() for item in items],
            "total": len(view.products),
            "next": next_url,
            "limit": limit,
            "countsPerDomain": view.counts_per_domain,
            "truncated": view.truncated,
        }
    )


async def api_product(request: web.Request) -> web.Response:
    cached = _shown_product(request)
    return _json(_product_detail(request, cached).to_json())


def _export_format(request: web.Request) -> ExportFormat:
    name = request.match_info["format"]
    export = EXPORT_FORMATS.get(name)
    if export is None:
        raise CatalogError(
            404, "NotFound", f"Export format {name} not found; one of {', '.join(EXPORT_FORMATS)}"
        )
    return export


def _public_url(request: web.Request) -> str:
    """The catalog's base URL for links in exports: the one configured, else the request's
    (which a client or a proxy names, and which from inside the cluster is the Service's)."""
    return request.app[PUBLIC_URL_KEY] or str(request.url.origin())


def _event_time(request: web.Request) -> str:
    return request.app[CLOCK_KEY]().isoformat().replace("+00:00", "Z")


def _exported(store: CatalogStore, cached: CachedProduct) -> DataProduct:
    """The product as an export from the catalog may show it: no input from a product the
    catalog does not show mesh-wide (nor from one that does not exist) is named."""

    def shown(namespace: str, name: str) -> bool:
        other = store.product(namespace, name)
        return other is not None and store.visibility.in_mesh(other.summary.discoverability)

    return without_unshown_inputs(cached.product, shown)


def _upstream_endpoints(store: CatalogStore) -> EndpointLookup:
    """The endpoints of the ports of products the catalog shows mesh-wide: an input from any
    other product is not exported at all (:func:`_exported`)."""

    def lookup(namespace: str, name: str, port: str) -> PortEndpoint | None:
        cached = store.product(namespace, name)
        if cached is None or not store.visibility.in_mesh(cached.summary.discoverability):
            return None
        return port_endpoint(cached.product, port)

    return lookup


async def api_export(request: web.Request) -> web.Response:
    store = _store(request)
    cached = _shown_product(request)
    export = _export_format(request)
    product = _exported(store, cached)
    port = request.query.get("port")
    if port is not None:
        try:
            text = export.render_port(product, port)
        except UserError as error:
            raise CatalogError(404, "NotFound", str(error)) from None
        filename = f"{product.namespace}.{product.name}.{port}.{export.file_suffix}"
        return web.Response(
            text=text,
            content_type=export.media_type,
            headers={"Content-Disposition": f'inline; filename="{filename}"'},
        )
    domain = store.domains().get(product.spec.domain)
    text = export.render(
        product,
        domain,
        _event_time(request),
        catalog_url=_public_url(request),
        upstream=_upstream_endpoints(store),
        lineage_namespace=request.app[LINEAGE_NAMESPACE_KEY],
    )
    filename = f"{product.namespace}.{product.name}.{export.file_suffix}"
    return web.Response(
        text=text,
        content_type=export.media_type,
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


async def api_mesh_export(request: web.Request) -> web.Response:
    """Every product listed in the mesh in one export: one Backstage location for the mesh.

    Seconds of CPU and megabytes for a large mesh: parsed and rendered in an export thread
    under a CPU budget (503 past it), so the catalog's event loop goes on meanwhile; only so
    many at once (429 with Retry-After past that).
    """
    store, export, workers = _store(request), _export_format(request), request.app[WORKERS_KEY]
    limits = workers.limits
    if workers.mesh_exports >= limits.mesh_exports_at_once:
        raise CatalogError(
            429,
            "TooManyExports",
            f"{workers.mesh_exports} whole-mesh export(s) running, the most at once; "
            f"try again in {limits.retry_after_seconds}s",
            headers={"Retry-After": str(limits.retry_after_seconds)},
        )
    domains = store.domains()
    listed = [
        c
        for c in sorted(store.products(), key=lambda c: c.key)
        if store.visibility.in_mesh(c.summary.discoverability)
    ]
    event_time, catalog_url = _event_time(request), _public_url(request)
    lineage_namespace = request.app[LINEAGE_NAMESPACE_KEY]

    def render() -> str:
        budget = CpuBudget(limits.export_cpu_seconds)  # started in the worker
        items = (
            (product, domains.get(product.spec.domain))
            for product in (_exported(store, c) for c in budget.metered(listed, every=4))
        )
        return export.render_many(
            items,
            event_time,
            catalog_url=catalog_url,
            upstream=_upstream_endpoints(store),
            lineage_namespace=lineage_namespace,
        )

    workers.mesh_exports += 1
    try:
        text = await asyncio.get_running_loop().run_in_executor(workers.export, render)
    except CpuBudgetSpentError as error:
        raise CatalogError(
            503, "ExportTooLarge", f"The whole-mesh export {error}; export per product instead"
        ) from None
    finally:
        workers.mesh_exports -= 1
    return web.Response(
        text=text,
        content_type=export.media_type,
        headers={"Content-Disposition": f'inline; filename="mesh.{export.file_suffix}"'},
    )


async def api_domains(request: web.Request) -> web.Response:
    return _json({"items": [d.to_json() for d in _domain_summaries(_store(request))]})


async def api_domain(request: web.Request) -> web.Response:
    return _json(_domain_detail(request).to_json())


async def api_lineage(request: web.Request) -> web.Response:
    graph = _lineage(request).graph
    return _json(_graph_json(graph))


async def api_openapi(request: web.Request) -> web.Response:
    return _json(build_openapi(sorted(EXPORT_FORMATS)))


# -- errors ----------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_api(request: web.Request) -> bool:
    return request.path == urls.API or request.path.startswith(urls.API + "/")


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON errors under /api, an error page elsewhere; never a bare 500 traceback."""
    try:
        return await handler(request)
    except CatalogError as error:
        failure = error
    except UserError as error:
        failure = CatalogError(400, "BadRequest", str(error))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        failure = CatalogError(error.status, error.reason.replace(" ", ""), error.reason)
    except Exception:
        logger.exception("Catalog request %s failed", request.path_qs)
        failure = CatalogError(500, "InternalError", "The catalog failed; see its log")
    if _is_api(request):
        body = {
            "error": {"code": failure.status, "reason": failure.reason, "message": failure.message}
        }
        return _json(body, status=failure.status, headers=failure.headers)
    response = _page(request, "error.html.j2", status=failure.status, error=failure)
    response.headers.update(failure.headers)
    return response


# Scripts and styles only from the catalog itself; the lineage SVG carries its own <style>.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "Referrer-Policy": "same-origin",
}


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def not_synced(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Until the first listing is in, say so instead of showing an empty mesh."""
    if (
        _store(request).synced
        or request.path in ("/healthz", f"{urls.API}/openapi.json")
        or request.path.startswith("/static/")
        or request.path == "/favicon.ico"
    ):
        return await handler(request)
    raise CatalogError(503, "NotSynced", "The catalog is still listing the mesh; try again soon")


async def static_file(request: web.Request) -> web.StreamResponse:
    """The stylesheet and the script, served from the package (no build step)."""
    name = request.match_info["file"]
    media = {"css": "text/css", "js": "text/javascript", "svg": "image/svg+xml"}.get(
        name.rpartition(".")[2]
    )
    path = resources.files("dataproduct_operator.catalog") / "static" / name
    if media is None or "/" in name or not path.is_file():
        raise _not_found(f"Static file {name}")
    return web.Response(
        body=path.read_bytes(),
        content_type=media,
        headers={"Cache-Control": "public, max-age=300"},
    )


async def favicon(request: web.Request) -> web.StreamResponse:
    """Where browsers look for an icon when a page names none (a JSON answer, the SVG)."""
    raise web.HTTPMovedPermanently("/static/favicon.svg")


def _now() -> datetime:
    return datetime.now(UTC)


def build_app(
    store: CatalogStore,
    *,
    clock: Clock = _now,
    public_url: str | None = None,
    limits: CatalogLimits | None = None,
    auth: Middleware | None = None,
    lineage_namespace: str = DEFAULT_LINEAGE_NAMESPACE,
) -> web.Application:
    """The catalog application over ``store`` (fed by a watch, or by tests); ``public_url``:
    its base URL as users reach it, for the links in exports; ``limits``: what a request may
    cost (see :mod:`~dataproduct_operator.catalog.limits`); ``auth``: the middleware that
    checks callers and scopes what they read (catalog/auth.py), outside the error pages;
    ``lineage_namespace``: the OpenLineage namespace of the operator's jobs, which the static
    lineage export names its jobs in."""
    checks: list[Middleware] = [auth] if auth is not None else []
    app = web.Application(middlewares=[security_headers, *checks, errors, not_synced])
    workers = Workers(limits or CatalogLimits())
    app[WORKERS_KEY] = workers

    async def stop_workers(_: web.Application) -> None:
        workers.shutdown()

    app.on_cleanup.append(stop_workers)
    app[STORE_KEY] = store
    app[CLOCK_KEY] = clock
    app[PUBLIC_URL_KEY] = public_url.rstrip("/") if public_url else None
    app[LINEAGE_NAMESPACE_KEY] = lineage_namespace
    app[TEMPLATES_KEY] = _templates(clock)
    api = urls.API
    app.add_routes(
        [
            web.get("/", index_page),
            web.get("/dataproducts/{namespace}/{name}", product_page),
            web.get("/domains", domains_page),
            web.get("/domains/{name}", domain_page),
            web.get("/lineage", lineage_page),
            web.get("/lineage.svg", lineage_svg),
            web.get("/healthz", healthz),
            web.get("/static/{file}", static_file),
            web.get("/favicon.ico", favicon),
            web.get(f"{api}/dataproducts", api_products),
            web.get(f"{api}/dataproducts/{{namespace}}/{{name}}", api_product),
            web.get(f"{api}/dataproducts/{{namespace}}/{{name}}/export/{{format}}", api_export),
            web.get(f"{api}/export/{{format}}", api_mesh_export),
            web.get(f"{api}/domains", api_domains),
            web.get(f"{api}/domains/{{name}}", api_domain),
            web.get(f"{api}/lineage", api_lineage),
            web.get(f"{api}/openapi.json", api_openapi),
        ]
    )
    return app


T = TypeVar("T")


class _OnLoop:
    """``target``'s coroutine methods run on ``loop`` (the one that owns its connections),
    awaited from any other thread's loop; its other attributes as they are."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target, self._loop = target, loop

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            running = asyncio.run_coroutine_threadsafe(attribute(*args, **kwargs), self._loop)
            return await asyncio.wrap_future(running)

        return call


def on_loop(target: T) -> T:
    """``target`` (e.g. the operator's KubeClient, bound to the running loop) usable from the
    catalog's own thread: each coroutine method called there runs on the running loop."""
    return cast(T, _OnLoop(target, asyncio.get_running_loop()))


class CatalogServer:
    """The catalog served from a thread of its own, with its own event loop.

    In the operator's process the catalog would otherwise share the operator's event loop:
    every request (even one refused at once) would queue ahead of the reconciles' next steps,
    and a visitor sending requests without pause would slow every reconcile. On its own loop
    it competes only for the interpreter's lock, which a busy thread hands over every few
    milliseconds. The store is written by the watches on the caller's loop and only read here
    (by whole-object operations, atomic under that lock).
    """

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._app, self._host, self._port = app, host, port
        self._started: Future[None] = Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="catalog", daemon=True)

    async def start(self) -> None:
        """Serve; fail with :class:`UserError` when the port cannot be had."""
        self._thread.start()
        await asyncio.wrap_future(self._started)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as error:
            if not self._started.done():  # failed before serving: the caller hears why
                self._started.set_exception(error)
            raise
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        runner = web.AppRunner(self._app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except OSError as error:
            await runner.cleanup()
            self._started.set_exception(
                UserError(
                    f"Cannot serve the catalog on port {self._port}: {error.strerror}; "
                    "choose another port"
                )
            )
            return
        self._stop = asyncio.Event()
        self._started.set_result(None)
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    async def cleanup(self) -> None:
        """Stop serving and wait for the thread to end."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(self._thread.join)


async def start_catalog(
    store: CatalogStore,
    *,
    host: str,
    port: int,
    public_url: str | None = None,
    limits: CatalogLimits | None = None,
    auth: Middleware | None = None,
    lineage_namespace: str = DEFAULT_LINEAGE_NAMESPACE,
) -> CatalogServer:
    """Serve the catalog on ``host:port`` from a thread of its own; the caller cleans it up.
    An ``auth`` middleware runs on that thread: what it asks of the API server goes through
    a client made for the caller's loop wrapped by :func:`on_loop`."""
    app = build_app(
        store,
        public_url=public_url,
        limits=limits,
        auth=auth,
        lineage_namespace=lineage_namespace,
    )
    server = CatalogServer(app, host, port)
    await server.start()
    logger.info("Serving the catalog on http://%s:%s/", host, port)
    return server
