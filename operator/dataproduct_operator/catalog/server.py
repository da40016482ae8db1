"""The catalog's web server: pages, JSON API, lineage SVG, exports (layer ``catalog``, imperative).

Thin on purpose: a request reads the :class:`~dataproduct_operator.catalog.store.CatalogStore`
(memory, never the API server), asks the pure views for what to show, and renders a template or
JSON. Errors of the JSON API are JSON with the matching status code; pages get an HTML error
page. Which products a page may show is the store's :class:`Visibility`: Hidden products answer
404 like products that do not exist, so a URL reveals nothing.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web
from aiohttp.typedefs import Middleware

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.api.naming import connection_config_map_name
from dataproduct_operator.catalog import urls
from dataproduct_operator.catalog.exports import EXPORT_FORMATS, ExportFormat
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

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_LIMIT = 1000
MAX_HOPS = 10
DEFAULT_HOPS = 2
STORE_KEY: web.AppKey[CatalogStore] = web.AppKey("store", CatalogStore)
TEMPLATES_KEY: web.AppKey[jinja2.Environment] = web.AppKey("templates", jinja2.Environment)
Clock = Callable[[], datetime]
CLOCK_KEY: web.AppKey[Clock] = web.AppKey("clock")
PUBLIC_URL_KEY: web.AppKey[str | None] = web.AppKey("public_url")
# The store as this request's caller may read it (set by --auth kubernetes, catalog/auth.py).
VIEW_KEY: web.RequestKey[CatalogStore] = web.RequestKey("view", CatalogStore)


class CatalogError(Exception):
    """A request the catalog cannot answer: becomes JSON (API) or an error page."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


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
    return web.Response(text=text, content_type="text/html", status=status)


def _json(data: Any, *, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, indent=2), content_type="application/json", status=status
    )


# -- reading the store -----------------------------------------------------------------------


def _store(request: web.Request) -> CatalogStore:
    """The store as the caller may read it: all of it, unless an auth middleware scoped it."""
    view = request.get(VIEW_KEY)
    return request.app[STORE_KEY] if view is None else view


def _filters(request: web.Request) -> Filters:
    query = request.query
    return Filters(
        q=query.get("q", "").strip(),
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
    svg = await asyncio.get_running_loop().run_in_executor(None, draw)
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
    view = build_index(_mesh_summaries(store), filters, domains=store.domains())
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
    view = build_index(_mesh_summaries(_store(request)), _filters(request))
    limit = _int(request, "limit", PAGE_SIZE, 1, MAX_LIMIT)
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
            "countsPerDomain": view.counts_per_domain,
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


async def api_export(request: web.Request) -> web.Response:
    store = _store(request)
    cached = _shown_product(request)
    export = _export_format(request)
    product = _exported(store, cached)
    domain = store.domains().get(product.spec.domain)
    text = export.render(product, domain, _event_time(request), catalog_url=_public_url(request))
    filename = f"{product.namespace}.{product.name}.{export.file_suffix}"
    return web.Response(
        text=text,
        content_type=export.media_type,
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


async def api_mesh_export(request: web.Request) -> web.Response:
    """Every product listed in the mesh in one export: one Backstage location for the mesh."""
    store, export = _store(request), _export_format(request)
    domains = store.domains()
    listed = [
        _exported(store, c)
        for c in sorted(store.products(), key=lambda c: c.key)
        if store.visibility.in_mesh(c.summary.discoverability)
    ]
    # Seconds for a large mesh: in a worker thread, so the event loop (in the operator's
    # process, the operator's) goes on meanwhile.
    render = functools.partial(
        export.render_many,
        [(product, domains.get(product.spec.domain)) for product in listed],
        _event_time(request),
        catalog_url=_public_url(request),
    )
    text = await asyncio.get_running_loop().run_in_executor(None, render)
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
        return _json(body, status=failure.status)
    return _page(request, "error.html.j2", status=failure.status, error=failure)


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


def _now() -> datetime:
    return datetime.now(UTC)


def build_app(
    store: CatalogStore,
    *,
    clock: Clock = _now,
    public_url: str | None = None,
    auth: Middleware | None = None,
) -> web.Application:
    """The catalog application over ``store`` (fed by a watch, or by tests); ``public_url``:
    its base URL as users reach it, for the links in exports; ``auth``: the middleware that
    checks callers and scopes what they read (catalog/auth.py), outside the error pages."""
    checks: list[Middleware] = [auth] if auth is not None else []
    app = web.Application(middlewares=[security_headers, *checks, errors, not_synced])
    app[STORE_KEY] = store
    app[CLOCK_KEY] = clock
    app[PUBLIC_URL_KEY] = public_url.rstrip("/") if public_url else None
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


async def start_catalog(
    store: CatalogStore,
    *,
    host: str,
    port: int,
    public_url: str | None = None,
    auth: Middleware | None = None,
) -> web.AppRunner:
    """Serve the catalog on ``host:port``; the caller cleans up the runner."""
    app = build_app(store, public_url=public_url, auth=auth)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise UserError(
            f"Cannot serve the catalog on port {port}: {error.strerror}; choose another port"
        ) from error
    logger.info("Serving the catalog on http://%s:%s/", host, port)
    return runner
