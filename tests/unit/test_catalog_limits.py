"""What a request or a product may cost the catalog, and what it shows of hostile text.

Bounded searches and pages, the CPU budgets of searches and whole-mesh exports, whole-mesh
exports one at a time, the store's memory per product, bidirectional controls stripped.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import tracemalloc
import urllib.request
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dataproduct_operator.api.dataproduct import MAX_TAG_LENGTH
from dataproduct_operator.catalog.limits import (
    MAX_QUERY_CHARS,
    MAX_QUERY_WORDS,
    TRUNCATED_MARK,
    CatalogLimits,
    CpuBudget,
    CpuBudgetSpentError,
    QueryTooLongError,
    bounded_object,
    search_words,
    strip_bidi,
)
from dataproduct_operator.catalog.model import Filters, build_index
from dataproduct_operator.catalog.server import WORKERS_KEY, build_app, start_catalog
from dataproduct_operator.catalog.store import PRODUCTS, CatalogStore
from tests.catalog_mesh import NOW, example_store, product_object

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def serve(store: CatalogStore, check: Any, limits: CatalogLimits | None = None) -> None:
    async def run() -> None:
        app = build_app(store, clock=lambda: NOW, limits=limits)
        async with TestClient(TestServer(app)) as client:
            await check(client)

    asyncio.run(run())


def store_of(objects: list[dict[str, Any]]) -> CatalogStore:
    store = example_store()
    for obj in objects:
        store.record(PRODUCTS, "ADDED", obj)
    return store


def many_products(count: int) -> list[dict[str, Any]]:
    return [product_object(f"p-{index:04d}", "sales", tags=["orders"]) for index in range(count)]


# -- bidirectional controls ----------------------------------------------------------------


def test_every_bidirectional_control_is_stripped_and_other_text_kept() -> None:
    assert strip_bidi(f"a{BIDI}b é 中 \u200b") == "ab é 中 \u200b"  # a zero-width space stays


def test_pages_and_the_json_api_show_no_bidirectional_control() -> None:
    tricky = product_object(
        "tricky",
        "sales",
        description=f"Refunds \u202eevil\u202c {BIDI}",
        tags=["\u2067tag\u2069"],
        owner={"team": "\u202eteam", "contacts": [{"name": "\u2066Ana\u2069"}]},
    )

    async def check(client: TestClient[Any, Any]) -> None:
        for path in (
            "/",
            "/?q=refunds",
            "/dataproducts/sales/tricky",
            "/domains/sales",
            "/lineage",
            "/lineage.svg",
            "/api/v1/dataproducts",
            "/api/v1/dataproducts/sales/tricky",
            "/api/v1/lineage",
        ):
            response = await client.get(path)
            text = await response.text()
            assert response.status == 200, path
            assert not any(c in text for c in BIDI), path
            assert "\\u202e" not in text.lower(), path  # nor escaped in JSON
        detail = await (await client.get("/api/v1/dataproducts/sales/tricky")).json()
        assert detail["summary"]["description"].startswith("Refunds evil")

    serve(store_of([tricky]), check)


# -- searches and pages --------------------------------------------------------------------


def test_a_search_too_long_or_of_too_many_words_is_refused_saying_what_to_change() -> None:
    assert search_words("Orders  EMAIL") == ["orders", "email"]
    with pytest.raises(QueryTooLongError, match=f"at most {MAX_QUERY_CHARS} are allowed"):
        search_words("a" * (MAX_QUERY_CHARS + 1))
    with pytest.raises(QueryTooLongError, match=f"at most {MAX_QUERY_WORDS} are allowed"):
        search_words(" ".join(["a"] * (MAX_QUERY_WORDS + 1)))

    async def check(client: TestClient[Any, Any]) -> None:
        long = "x" * 8000  # 8 KB with the rest of the URL: aiohttp refuses lines past 8190
        response = await client.get("/api/v1/dataproducts", params={"q": long})
        body = await response.json()
        assert response.status == 400 and body["error"]["reason"] == "QueryTooLong"
        assert "8000 characters; at most 256" in body["error"]["message"]
        page = await client.get("/", params={"q": long})
        assert page.status == 400 and "at most 256" in await page.text()
        widest = await client.get("/api/v1/dataproducts", params={"q": " ".join(["e"] * 16)})
        assert widest.status == 200

    serve(example_store(), check)


def test_a_page_size_past_the_maximum_is_clamped_not_refused() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        response = await client.get("/api/v1/dataproducts", params={"limit": "999999999"})
        body = await response.json()
        assert response.status == 200 and body["limit"] == 1000
        assert len(body["items"]) == 1000 and body["total"] > 1200
        assert body["next"] is not None and "limit=1000" in body["next"]
        second = await (await client.get(body["next"])).json()
        assert len(second["items"]) == body["total"] - 1000

    serve(store_of(many_products(1200)), check)


def test_a_search_past_its_cpu_budget_answers_what_it_found_marked_truncated() -> None:
    summaries = [c.summary for c in store_of(many_products(100)).products()]
    spent = CpuBudget(0.0)
    while not spent.spent():
        pass
    view = build_index(summaries, Filters(q="orders"), meter=spent.metered)
    assert view.truncated and view.products == []
    whole = build_index(summaries, Filters(q="orders"), meter=CpuBudget(60.0).metered)
    assert not whole.truncated and len(whole.products) > 100  # the examples' orders too

    async def check(client: TestClient[Any, Any]) -> None:
        body = await (await client.get("/api/v1/dataproducts", params={"q": "orders"})).json()
        assert body["truncated"] is True and body["total"] < 2000
        page = await (await client.get("/", params={"q": "orders"})).text()
        assert 'id="search-truncated"' in page

    tiny = CatalogLimits(search_cpu_seconds=1e-9)
    serve(store_of(many_products(2000)), check, limits=tiny)


def test_a_cpu_budget_stops_an_iteration_once_spent() -> None:
    budget = CpuBudget(0.001)
    with pytest.raises(CpuBudgetSpentError):
        for _ in budget.metered(iter(int, 1), every=1):  # endless
            sum(range(1000))


# -- whole-mesh exports ----------------------------------------------------------------------


def test_a_whole_mesh_export_while_another_runs_answers_429_with_retry_after() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        workers = client.app[WORKERS_KEY]
        workers.mesh_exports = 1  # one running
        response = await client.get("/api/v1/export/backstage")
        body = await response.json()
        assert response.status == 429 and response.headers["Retry-After"] == "7"
        assert body["error"]["reason"] == "TooManyExports"
        workers.mesh_exports = 0
        assert (await client.get("/api/v1/export/backstage")).status == 200
        assert workers.mesh_exports == 0  # released after it answered

    serve(example_store(), check, limits=CatalogLimits(retry_after_seconds=7))


def test_concurrent_whole_mesh_exports_are_served_one_at_a_time() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        answers = await asyncio.gather(*(client.get("/api/v1/export/odps") for _ in range(8)))
        statuses = sorted(a.status for a in answers)
        assert statuses.count(200) >= 1 and statuses.count(429) >= 1, statuses
        assert set(statuses) <= {200, 429}
        assert all(a.headers.get("Retry-After") for a in answers if a.status == 429)

    serve(store_of(many_products(300)), check)


def test_a_whole_mesh_export_past_its_cpu_budget_answers_503() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        response = await client.get("/api/v1/export/backstage")
        body = await response.json()
        assert response.status == 503 and body["error"]["reason"] == "ExportTooLarge"
        assert client.app[WORKERS_KEY].mesh_exports == 0

    serve(store_of(many_products(200)), check, limits=CatalogLimits(export_cpu_seconds=1e-9))


# -- memory per product -----------------------------------------------------------------------


def maximal_product(name: str) -> dict[str, Any]:
    """A product with every list and text at the largest the CRD admits."""
    column = {"type": "t" * 64, "description": "d" * 1024, "pii": True}
    ports = [
        {
            "name": f"port-{p:02d}",
            "description": "p" * 2048,
            "storage": {"size": "1Gi"},
            "schema": [{"name": f"c{p:02d}-{c:03d}" + "n" * 120, **column} for c in range(256)],
        }
        for p in range(16)
    ]
    pipelines = [
        {
            "name": f"pipe-{i:02d}",
            "image": "registry.example.com/" + "i" * 480 + ":1",
            "command": ["c" * 4096] * 64,
            "args": ["a" * 4096] * 256,
            "env": [{"name": f"E{e}", "value": "v" * 32768} for e in range(64)],
        }
        for i in range(16)
    ]
    return product_object(
        name,
        "sales",
        description="x" * 4096,
        tags=["t" * MAX_TAG_LENGTH] * 32,
        owner={"team": "o" * 128, "contacts": [{"name": "n" * 128}] * 16},
        outputPorts=ports,
        pipelines=pipelines,
        inputs=[
            {"name": f"in-{i:02d}", "external": {"type": "s3", "uri": "s3://" + "u" * 2040}}
            for i in range(32)
        ],
        access={"readers": [{"kind": "Group", "name": "g" * 253}] * 64},
    )


MAX_BYTES_PER_PRODUCT = 256 * 1024


def test_the_store_keeps_a_maximal_product_in_bounded_memory() -> None:
    sample = maximal_product("sample")
    assert len(json.dumps(sample)) > 40_000_000  # what a team may send: tens of megabytes
    store = example_store()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for index in range(5):
            store.record(PRODUCTS, "ADDED", maximal_product(f"huge-{index}"))
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    kept = [store.product("sales", f"huge-{index}") for index in range(5)]
    assert all(cached is not None for cached in kept)
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown / 5 < MAX_BYTES_PER_PRODUCT, f"{grown / 5 / 1024:.0f} KiB a product"


def test_what_the_store_shortens_is_marked_and_the_page_says_where_the_full_object_is() -> None:
    kept, truncated = bounded_object(maximal_product("huge"))
    spec = kept["spec"]
    assert spec["description"].endswith(TRUNCATED_MARK) and len(spec["description"]) == 1024
    assert sum(len(port["schema"]) for port in spec["outputPorts"]) == 100
    assert all("env" not in p and "command" not in p for p in spec["pipelines"])
    assert "spec.description" in truncated and "spec.outputPorts[].schema" in truncated
    assert "spec.outputPorts[].schema[].description" in truncated  # once for every column

    async def check(client: TestClient[Any, Any]) -> None:
        page = await (await client.get("/dataproducts/sales/huge")).text()
        assert 'id="truncated"' in page and "spec.description" in page
        assert "kubectl get dataproduct huge -n sales -o yaml" in page
        detail = await (await client.get("/api/v1/dataproducts/sales/huge")).json()
        assert detail["summary"]["truncated"] is True
        assert detail["fullObject"]["title"] == (
            "/apis/datamesh.dev/v1alpha1/namespaces/sales/dataproducts/huge"
        )
        small = await (await client.get("/api/v1/dataproducts/sales/orders")).json()
        assert small["truncated"] == [] and small["summary"]["truncated"] is False

    serve(store_of([maximal_product("huge")]), check)


# -- the server's own thread -----------------------------------------------------------------


def test_the_catalog_answers_while_the_event_loop_that_started_it_is_busy() -> None:
    # In the operator's process the caller's loop is the operator's: a catalog request must
    # never wait for it, nor hold up its next step.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    answered: dict[str, int] = {}

    def ask() -> None:
        url = f"http://127.0.0.1:{port}/api/v1/dataproducts?q=orders"
        with urllib.request.urlopen(url, timeout=10) as response:
            answered["status"] = response.status

    async def run() -> None:
        server = await start_catalog(example_store(), host="127.0.0.1", port=port)
        try:
            asker = threading.Thread(target=ask)
            asker.start()
            asker.join(timeout=10)  # blocks this loop on purpose, as a long reconcile step would
            assert answered == {"status": 200}
        finally:
            await server.cleanup()

    asyncio.run(run())
