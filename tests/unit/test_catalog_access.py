"""What one caller of the catalog may see: the store scoped to the namespaces it may list, through
every page, the JSON API, lineage and exports; the bounded TTL cache and the bearer-token parsing
of ``--auth kubernetes`` (the API server's side is tested in tests/security/)."""

from __future__ import annotations

import asyncio
import re
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from dataproduct_operator.catalog.access import NamespaceAccess, ScopedStore, scoped
from dataproduct_operator.catalog.auth import (
    MAX_TOKEN_CHARACTERS,
    KubernetesAuth,
    TtlCache,
    bearer_token,
)
from dataproduct_operator.catalog.server import VIEW_KEY, Handler, build_app
from dataproduct_operator.catalog.store import PRODUCTS, CatalogStore
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.credentials import Credentials
from tests.catalog_mesh import NOW, example_store, product_object
from tests.unit.test_catalog_pages import page as text

SALES_ONLY = NamespaceAccess.only({"sales"})
# How pages, the API and exports name the products of the other namespaces (links and ids).
OTHERS = tuple(
    f"{namespace}{separator}{name}"
    for namespace, name in (
        ("crm", "customers"),
        ("finance", "revenue"),
        ("marketing", "customer-segments"),
    )
    for separator in ("/", ".")
)


def serve_as(store: CatalogStore, access: NamespaceAccess, check: Any) -> None:
    """The catalog app with every request scoped to ``access``, as --auth kubernetes does."""

    @web.middleware
    async def caller(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[VIEW_KEY] = scoped(store, access)
        return await handler(request)

    async def run() -> None:
        app = build_app(store, clock=lambda: NOW, auth=caller)
        async with TestClient(TestServer(app)) as client:
            await check(client)

    asyncio.run(run())


def test_a_caller_sees_only_the_products_and_domains_of_namespaces_it_may_list() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        listing = await client.get("/api/v1/dataproducts")
        body = await listing.json()
        assert [p["name"] for p in body["items"]] == ["orders"]
        assert body["total"] == 1
        assert body["countsPerDomain"] == {"sales": 1}
        domains = await (await client.get("/api/v1/domains")).json()
        assert [d["name"] for d in domains["items"]] == ["sales"]
        index = await text(client, "/")
        assert re.findall(r'data-product="([^"]+)"', index) == ["sales/orders"]
        for path in ("/", "/?q=customers", "/domains", "/lineage", "/api/v1/lineage"):
            page = await text(client, path)
            for other in OTHERS:
                assert other not in page, (path, other)
        for namespace, name in (("crm", "customers"), ("finance", "revenue")):
            await text(client, f"/dataproducts/{namespace}/{name}", status=404)
            await text(client, f"/api/v1/dataproducts/{namespace}/{name}", status=404)
            await text(client, f"/api/v1/dataproducts/{namespace}/{name}/export/odps", status=404)
        await text(client, "/domains/finance", status=404)
        await text(client, "/api/v1/domains/crm", status=404)

    serve_as(example_store(), SALES_ONLY, check)


def test_lineage_and_exports_name_no_product_of_another_namespace() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        orders = await (await client.get("/api/v1/dataproducts/sales/orders")).json()
        upstream = {(n["kind"], n["label"]) for n in orders["upstream"]}
        # It reads crm/customers: an anonymous unlisted node, no name; its readers are not shown.
        assert ("unlisted", "unlisted product") in upstream
        assert orders["downstream"] == []
        graph = await (await client.get("/api/v1/lineage")).json()
        products = [n["label"] for n in graph["nodes"] if n["kind"] == "product"]
        assert products == ["orders"]
        for export in ("backstage", "odps", "openlineage"):
            mesh = await text(client, f"/api/v1/export/{export}")
            one = await text(client, f"/api/v1/dataproducts/sales/orders/export/{export}")
            for shown in (mesh, one):
                assert "orders" in shown
                for other in OTHERS:
                    assert other not in shown, (export, other)

    serve_as(example_store(), SALES_ONLY, check)


def test_hidden_products_stay_hidden_from_a_caller_who_may_list_their_namespace() -> None:
    hidden = product_object("secret-sauce", "sales", discoverability="Hidden")

    async def check(client: TestClient[Any, Any]) -> None:
        for path in ("/", "/domains/sales", "/lineage", "/api/v1/dataproducts"):
            assert "secret-sauce" not in await text(client, path), path
        await text(client, "/api/v1/dataproducts/sales/secret-sauce", status=404)

    serve_as(example_store(extra=[hidden]), SALES_ONLY, check)


def test_a_caller_allowed_nowhere_sees_an_empty_mesh_and_one_allowed_everywhere_all() -> None:
    store = example_store()
    nowhere = ScopedStore(store, NamespaceAccess.only(()))
    assert nowhere.products() == [] and nowhere.domains() == {}
    assert [n for n in nowhere.lineage().nodes if n.kind.value == "product"] == []
    assert nowhere.synced
    # Unrestricted callers read the store itself: its kept graph and drawings serve them.
    assert scoped(store, NamespaceAccess.everything()) is store


def test_scoped_lineage_is_kept_until_the_mesh_changes() -> None:
    store = example_store()
    first = ScopedStore(store, SALES_ONLY).lineage()
    assert ScopedStore(store, NamespaceAccess.only({"sales"})).lineage() is first
    store.record(PRODUCTS, "ADDED", product_object("invoices", "sales"))
    changed = ScopedStore(store, SALES_ONLY).lineage()
    assert changed is not first
    assert "invoices" in {n.label for n in changed.nodes}


def test_a_scoped_store_is_read_only() -> None:
    view = ScopedStore(example_store(), SALES_ONLY)
    with pytest.raises(TypeError):
        view.record(PRODUCTS, "ADDED", product_object("x", "sales"))
    with pytest.raises(TypeError):
        view.synced = False


def test_the_ttl_cache_forgets_after_its_ttl_and_keeps_at_most_its_entries() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(30.0, 2, lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    now[0] = 29.0
    assert cache.get("a") == 1  # and "a" becomes the most recently used
    cache.put("c", 3)
    assert (cache.get("b"), len(cache)) == (None, 2)  # the least recently used went
    now[0] = 30.0
    assert cache.get("a") is None and cache.get("c") == 3
    now[0] = 59.0
    assert cache.get("c") is None


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def", "abc.def"),
        ("bearer   abc  ", "abc"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer ", None),
        ("", None),
        ("Bearer " + "x" * (MAX_TOKEN_CHARACTERS + 1), None),
    ],
)
def test_only_a_bearer_token_of_a_sane_size_is_taken(header: str, token: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    assert bearer_token(make_mocked_request("GET", "/", headers=headers)) == token


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api/v1/dataproducts",
        "/api/v1/export/backstage",
        "/static/../api/v1/dataproducts",
        "/static/%2e%2e/api/v1/dataproducts",
        "/healthz/../api/v1/dataproducts",
        "/no-such-page",
    ],
)
def test_without_a_token_only_healthz_and_static_files_answer(path: str) -> None:
    store = example_store()
    # Never used: a request without a token is refused before any review is asked.
    client = KubeClient(cast(Credentials, None))
    auth = KubernetesAuth(client, store)

    async def run() -> None:
        app = build_app(store, clock=lambda: NOW, auth=auth.middleware)
        async with TestClient(TestServer(app)) as http:
            refused = await http.get(path)
            assert refused.status == 401, (path, refused.status)
            assert refused.headers["WWW-Authenticate"] == 'Bearer realm="dataproduct-catalog"'
            assert "orders" not in await refused.text()
            assert (await http.get("/healthz")).status == 200
            assert (await http.get("/static/catalog.css")).status == 200

    asyncio.run(run())
    assert (auth.token_reviews, auth.access_reviews) == (0, 0)


def test_the_sign_in_form_refuses_posts_from_other_origins_and_empty_tokens() -> None:
    store = example_store()
    auth = KubernetesAuth(KubeClient(cast(Credentials, None)), store)  # never asked: see above

    async def run() -> None:
        app = build_app(store, clock=lambda: NOW, auth=auth.middleware)
        async with TestClient(TestServer(app)) as http:
            form = await http.get("/login")
            assert form.status == 200
            assert 'name="token"' in await form.text()
            page = await http.get("/domains")  # a browser without a token gets the form
            assert page.status == 401 and 'action="/login"' in await page.text()
            foreign = await http.post(
                "/login", data={"token": "t"}, headers={"Origin": "https://evil.example"}
            )
            assert foreign.status == 403
            assert "Set-Cookie" not in foreign.headers
            empty = await http.post("/login", data={"token": "  "})
            assert empty.status == 400 and "Set-Cookie" not in empty.headers
            out = await http.post("/logout", allow_redirects=False)
            assert (out.status, out.headers["Location"]) == (303, "/login")
            assert 'dpo-catalog-token=""' in out.headers["Set-Cookie"]

    asyncio.run(run())
    assert auth.token_reviews == 0
