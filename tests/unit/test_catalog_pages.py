"""The catalog's pages and JSON API over the example mesh, served in-process (no cluster).

Pages are compared with golden files (``UPDATE_GOLDEN=1`` rewrites them); API answers are
checked against the OpenAPI document the catalog serves.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Awaitable, Callable
from typing import Any

import jsonschema
import pytest
import yaml
import yarl
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate as validate_openapi

from dataproduct_operator.catalog.model import Visibility
from dataproduct_operator.catalog.server import build_app
from dataproduct_operator.catalog.store import CONFIG_MAPS, DOMAINS, JOBS, PRODUCTS, CatalogStore
from tests.catalog_mesh import NOW, example_objects, example_store, product_object
from tests.helpers import assert_golden

Check = Callable[[TestClient[Any, Any]], Awaitable[None]]


def serve(store: CatalogStore, check: Check) -> None:
    async def run() -> None:
        async with TestClient(TestServer(build_app(store, clock=lambda: NOW))) as client:
            await check(client)

    asyncio.run(run())


async def page(client: TestClient[Any, Any], path: str, status: int = 200) -> str:
    response = await client.get(path)
    text = await response.text()
    assert response.status == status, f"GET {path}: {response.status} {text[:500]}"
    return text


async def api(client: TestClient[Any, Any], path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, f"GET {path}: {response.status} {await response.text()}"
    assert response.content_type == "application/json"
    return await response.json()


def names_in(html: str) -> list[str]:
    """Products listed on a page, by their rows."""
    return re.findall(r'data-product="([^"]+)"', html)


# -- pages -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "golden"),
    [
        ("/", "catalog/index.html"),
        ("/dataproducts/sales/orders", "catalog/product-orders.html"),
        ("/dataproducts/finance/revenue", "catalog/product-revenue.html"),
        ("/domains", "catalog/domains.html"),
        ("/domains/sales", "catalog/domain-sales.html"),
        ("/lineage", "catalog/lineage.html"),
    ],
)
def test_pages_render_as_their_golden_files(path: str, golden: str) -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        assert_golden(await page(client, path), golden)

    serve(example_store(), check)


def test_index_lists_every_example_product_with_its_health() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        html = await page(client, "/")
        assert names_in(html) == [
            "crm/customers", "finance/revenue", "marketing/customer-segments", "sales/orders",
        ]  # fmt: skip
        assert '<strong id="found">4</strong> of 4 products' in html
        revenue_row = html[html.index('data-product="finance/revenue"') :].split("</tr>")[0]
        # Provisioned, its last run failed: the badge follows DataHealthy and names its reason
        assert "health-unhealthy" in revenue_row and "RunsFailing" in revenue_row

    serve(example_store(), check)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=email", ["crm/customers", "sales/orders"]),  # a column name
        ("q=campaigns", ["marketing/customer-segments"]),  # a tag
        ("q=ORDER+line", ["sales/orders"]),  # words of the description, any case
        ("q=nothing-like-this", []),
        ("domain=finance", ["finance/revenue"]),
        ("lifecycle=Production", ["crm/customers", "sales/orders"]),
        ("lifecycle=Experimental", ["finance/revenue"]),
        ("classification=Confidential", ["crm/customers", "sales/orders"]),
        ("health=unhealthy", ["finance/revenue"]),
        ("health=unknown", ["marketing/customer-segments"]),
        ("q=customer&domain=marketing", ["marketing/customer-segments"]),
    ],
)
def test_search_and_filters_narrow_the_index(query: str, expected: list[str]) -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        html = await page(client, f"/?{query}")
        assert names_in(html) == expected
        listed = await api(client, f"/api/v1/dataproducts?{query}")
        assert [f"{p['namespace']}/{p['name']}" for p in listed["items"]] == expected
        assert listed["total"] == len(expected)

    serve(example_store(), check)


def test_index_counts_products_per_domain() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        listed = await api(client, "/api/v1/dataproducts?q=customer")
        assert listed["countsPerDomain"] == {"crm": 1, "marketing": 1, "sales": 1}
        html = await page(client, "/?q=customer")
        assert re.search(r'class="domain-count" href="[^"]*domain=crm[^"]*">crm <span', html)

    serve(example_store(), check)


def test_product_page_shows_schema_pii_slos_status_runs_readers_connection_and_lineage() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        html = await page(client, "/dataproducts/sales/orders")
        email_row = html[html.index("<code>email</code>") :].split("</tr>")[0]
        assert "PII" in email_row and "Restricted" in email_row
        # ingest succeeded 58 minutes before NOW: orders-v1 (24h) is fresh
        assert "freshness 24h" in html and "slo-fresh" in html
        assert "Last successful run 58m ago" in html
        assert "<strong>Storage</strong>: yes" in html
        assert "<code>orders-ingest-11</code>" in html  # the newest run comes first
        assert html.index("orders-ingest-11") < html.index("orders-ingest-10")
        assert "auditor@example.com" in html and "ServiceAccount <code>revenue</code>" in html
        assert "<code>orders-orders-v1</code>" in html  # the claim, from the ConfigMap
        assert 'href="/dataproducts/crm/customers"' in html  # upstream
        assert 'href="/dataproducts/finance/revenue"' in html  # downstream
        assert "dpo export --format odcs --namespace sales --name orders" in html

    serve(example_store(), check)


def test_a_product_whose_runs_fail_says_so_in_words() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        html = await page(client, "/dataproducts/finance/revenue")
        assert "<strong>Overall</strong>: yes" in html  # Ready: provisioned all the same
        assert "<strong>Pipelines</strong>: yes" in html
        assert "<strong>Data health</strong>: no" in html and "(RunsFailing," in html
        assert "pipeline recognise: the last run failed: the Job failed" in html
        assert "slo-stale" in html and "No pipeline run has succeeded yet" in html

    serve(example_store(), check)


def test_domain_page_shows_owners_quota_and_products() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        html = await page(client, "/domains/sales")
        assert "Sales" in html and "sales-data" in html and "mailto:ana@example.com" in html
        assert names_in(html) == ["sales/orders"]
        detail = await api(client, "/api/v1/domains/sales")
        assert detail["summary"]["ownerTeam"] == "sales-data"
        assert [p["name"] for p in detail["products"]] == ["orders"]

    serve(example_store(), check)


def test_lineage_page_links_every_listed_node_and_highlights_the_unhealthy() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        html = await page(client, "/lineage")
        for path in ("/dataproducts/sales/orders", "/dataproducts/finance/revenue"):
            assert f'href="{path}"' in html
        revenue = re.search(r'<g class="([^"]*)" data-node-id="product:finance/revenue"', html)
        assert revenue is not None and "health-unhealthy" in revenue[1].split()
        focused = await page(client, "/lineage?focus=product:sales/orders&hops=1")
        assert 'data-node-id="product:crm/customers"' in focused
        assert 'data-node-id="product:finance/revenue"' in focused
        two_hops_up = await api(client, "/api/v1/lineage?focus=product:finance/revenue&hops=2")
        ids = {n["id"] for n in two_hops_up["nodes"]}
        assert "product:crm/customers" in ids and "product:marketing/customer-segments" not in ids

    serve(example_store(), check)


def test_the_mesh_lineage_is_drawn_again_only_when_something_it_shows_changed() -> None:
    store = example_store()
    orders = next(o for o in example_objects() if o["metadata"]["name"] == "orders")

    def version(obj: dict[str, Any], resource_version: str) -> dict[str, Any]:
        changed = copy.deepcopy(obj)
        changed["metadata"]["resourceVersion"] = resource_version
        return changed

    async def check(client: TestClient[Any, Any]) -> None:
        before = await page(client, "/lineage.svg")
        graph = store.lineage()
        assert store.kept_drawing(graph, (None, 0)) == before
        # A status write the graph does not show (a pipeline's last run) keeps graph and drawing.
        quiet = version(orders, "2")
        quiet["status"]["pipelines"][0]["lastScheduleTime"] = "2026-11-20T11:30:00Z"
        store.record(PRODUCTS, "MODIFIED", quiet)
        assert store.lineage() is graph
        # Health is shown: Ready turning False draws the product red.
        failing = version(quiet, "3")
        failing["status"]["conditions"][0]["status"] = "False"
        store.record(PRODUCTS, "MODIFIED", failing)
        assert store.lineage() is not graph
        red = await page(client, "/lineage.svg")
        node = re.search(r'<g class="([^"]*)" data-node-id="product:sales/orders"', red)
        assert node is not None and "health-unhealthy" in node[1].split()
        store.record(PRODUCTS, "ADDED", product_object("late-arrival", "sales"))
        after = await page(client, "/lineage.svg")
        assert "product:sales/late-arrival" not in before
        assert 'data-node-id="product:sales/late-arrival"' in after
        assert 'data-node-id="product:sales/late-arrival"' in await page(client, "/lineage")

    serve(store, check)


def test_credentials_in_a_source_uri_are_never_shown() -> None:
    leaky = product_object(
        "leaky",
        "sales",
        inputs=[
            {
                "name": "db",
                "external": {"type": "postgres", "uri": "postgresql://app:hunter2@db:5432/x"},
            }
        ],
    )

    async def check(client: TestClient[Any, Any]) -> None:
        detail = await api(client, "/api/v1/dataproducts/sales/leaky")
        (source,) = detail["upstream"]
        assert source["kind"] == "external" and "db" in source["label"]
        for path in ("/dataproducts/sales/leaky", "/lineage", "/api/v1/lineage"):
            assert "hunter2" not in await page(client, path), path

    serve(example_store(extra=[leaky]), check)


# -- visibility ------------------------------------------------------------------------------


HIDDEN = product_object(
    "secret-sauce",
    "sales",
    discoverability="Hidden",
    tags=["confidential-project"],
    inputs=[{"name": "o", "dataProduct": {"name": "orders", "port": "orders-v1"}}],
)
READS_HIDDEN = product_object(
    "reads-secret",
    "sales",
    inputs=[{"name": "s", "dataProduct": {"name": "secret-sauce", "port": "secret-sauce-v1"}}],
)
DOMAIN_ONLY = product_object(
    "team-scratch",
    "sales",
    discoverability="Domain",
    inputs=[{"name": "o", "dataProduct": {"name": "orders", "port": "orders-v1"}}],
)


def test_hidden_products_are_nowhere_and_answer_404_like_unknown_ones() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        for path in ("/", "/?q=sauce", "/domains/sales", "/lineage", "/dataproducts/sales/orders"):
            assert "secret-sauce" not in await page(client, path), path
        for path in ("/api/v1/dataproducts", "/api/v1/lineage", "/api/v1/domains/sales"):
            response = await client.get(path)
            assert "secret-sauce" not in await response.text(), path
        await page(client, "/dataproducts/sales/secret-sauce", status=404)
        error = await api(client, "/api/v1/dataproducts/sales/secret-sauce", status=404)
        unknown = await api(client, "/api/v1/dataproducts/sales/no-such-product", status=404)
        assert error["error"]["reason"] == unknown["error"]["reason"] == "NotFound"
        await api(client, "/api/v1/dataproducts/sales/secret-sauce/export/odps", status=404)
        # Nothing at all of a hidden consumer: not even that something unlisted reads orders.
        orders = await api(client, "/api/v1/dataproducts/sales/orders")
        assert {d["label"] for d in orders["downstream"]} == {"revenue", "customer-segments"}

    serve(example_store(extra=[HIDDEN]), check)


def test_a_product_reading_a_hidden_one_shows_an_unlisted_source_without_its_name() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        detail = await api(client, "/api/v1/dataproducts/sales/reads-secret")
        (source,) = detail["upstream"]
        assert (source["kind"], source["label"], source["url"]) == (
            "unlisted", "unlisted product", None,
        )  # fmt: skip
        for path in ("/dataproducts/sales/reads-secret", "/lineage", "/api/v1/lineage"):
            assert "secret-sauce" not in await page(client, path), path

    serve(example_store(extra=[HIDDEN, READS_HIDDEN]), check)


def test_domain_products_show_only_on_their_domain_page_when_configured() -> None:
    async def check_default(client: TestClient[Any, Any]) -> None:
        assert "team-scratch" not in await page(client, "/domains/sales")
        await page(client, "/dataproducts/sales/team-scratch", status=404)

    serve(example_store(extra=[DOMAIN_ONLY]), check_default)

    async def check_configured(client: TestClient[Any, Any]) -> None:
        assert "sales/team-scratch" in names_in(await page(client, "/domains/sales"))
        assert "team-scratch" not in await page(client, "/")
        assert "team-scratch" not in await page(client, "/lineage")
        listed = await api(client, "/api/v1/dataproducts")
        assert "team-scratch" not in {p["name"] for p in listed["items"]}
        own = await api(client, "/api/v1/dataproducts/sales/team-scratch")
        assert [u["label"] for u in own["upstream"]] == ["orders"]

    serve(
        example_store(Visibility(show_domain_products=True), extra=[DOMAIN_ONLY]), check_configured
    )


# -- JSON API --------------------------------------------------------------------------------


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A component schema of the OpenAPI document, resolvable on its own."""
    return {**document["components"]["schemas"][name], "components": document["components"]}


def _validate(document: dict[str, Any], name: str, value: Any) -> None:
    schema = _schema(document, name)
    jsonschema.Draft202012Validator(schema).validate(value)


def test_api_answers_match_the_openapi_document() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        document = await api(client, "/api/v1/openapi.json")
        assert document["openapi"].startswith("3.1")
        validate_openapi(document)  # the document itself, against the OpenAPI 3.1 schema
        _validate(document, "ProductList", await api(client, "/api/v1/dataproducts"))
        for namespace, name in (("sales", "orders"), ("finance", "revenue")):
            detail = await api(client, f"/api/v1/dataproducts/{namespace}/{name}")
            _validate(document, "ProductDetail", detail)
        _validate(document, "DomainList", await api(client, "/api/v1/domains"))
        _validate(document, "DomainDetail", await api(client, "/api/v1/domains/crm"))
        _validate(document, "Lineage", await api(client, "/api/v1/lineage"))
        _validate(document, "Error", await api(client, "/api/v1/domains/nope", status=404))
        for path in document["paths"]:
            assert path.startswith("/api/v1/")

    serve(example_store(), check)


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [
        ("/api/v1/dataproducts/sales/nope", 404, "NotFound"),
        ("/api/v1/domains/nope", 404, "NotFound"),
        ("/api/v1/no-such-thing", 404, "NotFound"),
        ("/api/v1/lineage?focus=product:sales/nope", 404, "NotFound"),
        ("/api/v1/lineage?focus=product:sales/orders&hops=many", 400, "BadRequest"),
        ("/api/v1/lineage?focus=product:sales/orders&hops=99", 400, "BadRequest"),
        ("/api/v1/dataproducts?limit=0", 400, "BadRequest"),
        ("/api/v1/dataproducts/sales/orders/export/pdf", 404, "NotFound"),
    ],
)
def test_api_errors_are_json_with_the_right_status(path: str, status: int, reason: str) -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        error = await api(client, path, status=status)
        assert error["error"]["code"] == status
        assert error["error"]["reason"] == reason
        assert error["error"]["message"]

    serve(example_store(), check)


def test_api_refuses_writes_with_405_in_json() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        response = await client.post("/api/v1/dataproducts", json={})
        assert response.status == 405
        assert (await response.json())["error"]["code"] == 405

    serve(example_store(), check)


def test_api_pages_through_products() -> None:
    extra = [product_object(f"p{i:02}", "bulk") for i in range(25)]

    async def check(client: TestClient[Any, Any]) -> None:
        seen: list[str] = []
        url: str | None = "/api/v1/dataproducts?domain=bulk&limit=10"
        while url:
            listed = await api(client, url)
            assert listed["total"] == 25
            seen += [p["name"] for p in listed["items"]]
            url = listed["next"]
        assert seen == [f"p{i:02}" for i in range(25)]

    serve(example_store(extra=extra), check)


@pytest.mark.parametrize("name", ["odps", "odcs", "backstage"])
def test_exports_from_the_api_are_yaml_of_the_product(name: str) -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        response = await client.get(f"/api/v1/dataproducts/sales/orders/export/{name}")
        assert response.status == 200
        documents = [d for d in yaml.safe_load_all(await response.text()) if d]
        assert documents and "orders" in yaml.safe_dump(documents)

    serve(example_store(), check)


def test_pages_and_api_say_503_until_the_mesh_is_listed() -> None:
    store = example_store()
    store.synced = False

    async def check(client: TestClient[Any, Any]) -> None:
        assert (await client.get("/")).status == 503
        assert (await client.get("/healthz")).status == 503
        error = await api(client, "/api/v1/dataproducts", status=503)
        assert error["error"]["reason"] == "NotSynced"
        assert (await client.get("/static/catalog.css")).status == 200

    serve(store, check)


def test_unknown_pages_get_an_html_404() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        html = await page(client, "/no/such/page", status=404)
        assert "<h1>404" in html
        for traversal in ("/static/%2e%2e%2fserver.py", "/static/..%2fserver.py"):
            response = await client.get(yarl.URL(traversal, encoded=True))
            assert response.status == 404, traversal
            assert "Catalog server" not in await response.text()
        assert (await client.get("/static/nope.css")).status == 404

    serve(example_store(), check)


def test_the_whole_mesh_is_one_backstage_location_without_repeated_entities() -> None:
    two_in_sales = product_object("returns", "sales")

    async def check(client: TestClient[Any, Any]) -> None:
        response = await client.get("/api/v1/export/backstage")
        assert response.status == 200
        entities = [e for e in yaml.safe_load_all(await response.text()) if e]
        systems = sorted(e["metadata"]["name"] for e in entities if e["kind"] == "System")
        assert systems == [
            "crm.customers", "finance.revenue", "marketing.customer-segments", "sales.orders",
            "sales.returns",
        ]  # fmt: skip
        keys = [(e["kind"], e["metadata"]["name"]) for e in entities]
        assert len(keys) == len(set(keys)), "an entity defined twice in one location"
        assert ("Domain", "sales") in keys
        assert "secret-sauce" not in await response.text()
        lineage = await client.get("/api/v1/export/openlineage")
        assert lineage.content_type == "application/json"
        await api(client, "/api/v1/export/pdf", status=404)

    serve(example_store(extra=[two_in_sales, HIDDEN]), check)


# -- what the review found -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["odps", "odcs", "backstage", "openlineage"])
def test_exports_never_name_a_product_the_catalog_hides_or_that_does_not_exist(name: str) -> None:
    reads_both = product_object(
        "reads-both",
        "sales",
        inputs=[
            {"name": "s", "dataProduct": {"name": "secret-sauce", "port": "secret-sauce-v1"}},
            {"name": "g", "dataProduct": {"namespace": "ghost-ns", "name": "ghost", "port": "x"}},
            {"name": "o", "dataProduct": {"name": "orders", "port": "orders-v1"}},
        ],
        pipelines=[{"name": "build", "image": "example/build:1", "schedule": "0 * * * *"}],
    )

    async def check(client: TestClient[Any, Any]) -> None:
        for path in (
            f"/api/v1/dataproducts/sales/reads-both/export/{name}",
            f"/api/v1/export/{name}",
        ):
            response = await client.get(path)
            text = await response.text()
            assert response.status == 200, text
            for secret in ("secret-sauce", "ghost"):
                assert secret not in text, (path, secret)
        if name != "odcs":  # a contract describes the port, not what it is built from
            own = await client.get(f"/api/v1/dataproducts/sales/reads-both/export/{name}")
            assert "orders" in await own.text()  # what the catalog shows is still named

    serve(example_store(extra=[HIDDEN, reads_both]), check)


def test_status_times_that_cannot_be_read_give_unknown_not_a_failure() -> None:
    odd = [
        ("2026-11-20T10:00:00", "fresh"),  # no zone: taken as UTC
        ("yesterday", "unknown"),
        ("", "stale"),
    ]
    for text, state in odd:
        broken = product_object(
            "odd-times", "sales", pipelines=[{"name": "p", "image": "i", "schedule": "0 * * * *"}]
        )
        broken["spec"]["outputPorts"][0]["slo"] = {"freshness": "7d"}
        broken["status"] = {
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "R", "lastTransitionTime": text}
            ],
            "pipelines": [
                {"name": "p", "kind": "CronJob", "lastSuccessfulTime": text or None},
            ],
        }

        async def check(client: TestClient[Any, Any], state: str = state) -> None:
            await page(client, "/dataproducts/sales/odd-times")
            detail = await api(client, "/api/v1/dataproducts/sales/odd-times")
            assert detail["ports"][0]["slos"][0]["state"] == state

        serve(example_store(extra=[broken]), check)


@pytest.mark.parametrize(
    "payload",
    [
        '[{"name": "x"}]',
        '["x", null, 3]',
        '{"not": "a list"}',
        "not json",
        '[{"name": "p", "format": "csv", "claimName": "c", "mountPath": 7}]',
    ],
)
def test_a_connection_config_map_of_another_shape_shows_nothing_of_it(payload: str) -> None:
    store = example_store()
    store.record(
        CONFIG_MAPS,
        "MODIFIED",
        {
            "metadata": {"name": "orders-connection", "namespace": "sales", "resourceVersion": "9"},
            "data": {"output-ports.json": payload},
        },
    )

    async def check(client: TestClient[Any, Any]) -> None:
        await page(client, "/dataproducts/sales/orders")
        detail = await api(client, "/api/v1/dataproducts/sales/orders")
        assert detail["connection"] in (None, [])

    serve(store, check)


def test_a_quota_the_status_should_not_hold_shows_no_percentage() -> None:
    store = example_store()
    (sales,) = [
        o
        for o in example_objects()
        if o["kind"] == "DataDomain" and o["metadata"]["name"] == "sales"
    ]
    sales = copy.deepcopy(sales)
    sales["metadata"]["resourceVersion"] = "5"
    sales["status"] = {"quota": [{"resource": "requests.storage", "hard": "1..2", "used": "."}]}
    store.record(DOMAINS, "MODIFIED", sales)

    async def check(client: TestClient[Any, Any]) -> None:
        await page(client, "/domains/sales")
        detail = await api(client, "/api/v1/domains/sales")
        assert detail["quota"] == [
            {"resource": "requests.storage", "used": ".", "hard": "1..2", "percent": None}
        ]

    serve(store, check)


def test_a_product_that_turns_unreadable_is_no_longer_shown() -> None:
    store = example_store()
    orders = next(o for o in example_objects() if o["metadata"]["name"] == "orders")
    changed = copy.deepcopy(orders)
    changed["metadata"]["resourceVersion"] = "7"
    changed["spec"]["lifecycle"] = "Sometime"  # not a lifecycle this catalog knows
    store.record(PRODUCTS, "MODIFIED", changed)

    async def check(client: TestClient[Any, Any]) -> None:
        await api(client, "/api/v1/dataproducts/sales/orders", status=404)
        assert 'data-node-id="product:sales/orders"' not in await page(client, "/lineage")

    serve(store, check)


def test_a_domain_products_page_links_to_its_own_lineage() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        detail = await api(client, "/api/v1/dataproducts/sales/team-scratch")
        html = await page(client, detail["lineageUrl"])
        assert 'data-node-id="product:sales/team-scratch"' in html
        assert "team-scratch" not in await page(client, "/lineage")

    serve(example_store(Visibility(show_domain_products=True), extra=[DOMAIN_ONLY]), check)


def test_focused_lineage_drawings_are_kept_for_the_current_graph() -> None:
    store = example_store()

    async def check(client: TestClient[Any, Any]) -> None:
        first = await page(client, "/lineage.svg?focus=product:sales/orders&hops=1")
        assert store.kept_drawing(store.lineage(), ("product:sales/orders", 1)) == first
        assert await page(client, "/lineage.svg?focus=product:sales/orders&hops=1") == first

    serve(store, check)


def test_every_answer_carries_the_security_headers() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        for path in ("/", "/api/v1/dataproducts", "/static/catalog.css", "/nope", "/lineage.svg"):
            response = await client.get(path)
            assert response.headers["X-Content-Type-Options"] == "nosniff", path
            assert "script-src" not in response.headers["Content-Security-Policy"]
            assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")

    serve(example_store(), check)


def test_the_openapi_document_is_served_before_the_mesh_is_listed() -> None:
    store = example_store()
    store.synced = False

    async def check(client: TestClient[Any, Any]) -> None:
        document = await api(client, "/api/v1/openapi.json")
        assert document["openapi"].startswith("3.1")

    serve(store, check)


def test_a_page_past_the_last_shows_the_last() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        html = await page(client, "/?page=999")
        assert len(names_in(html)) == 4  # not "No product matches"
        assert "No product matches" not in html

    serve(example_store(), check)


def test_export_links_use_the_configured_public_url_not_the_request_host() -> None:
    async def run() -> None:
        app = build_app(
            example_store(), clock=lambda: NOW, public_url="https://catalog.example.com/"
        )
        async with TestClient(TestServer(app)) as client:
            response = await client.get(
                "/api/v1/dataproducts/sales/orders/export/backstage",
                headers={"Host": "evil.example.net"},
            )
            text = await response.text()
            assert "https://catalog.example.com/dataproducts/sales/orders" in text
            assert "evil.example.net" not in text

    asyncio.run(run())


def test_a_new_listing_forgets_what_is_gone_and_keeps_the_other_namespaces() -> None:
    store = example_store()
    orders = next(o for o in example_objects() if o["metadata"]["name"] == "orders")
    # The sales namespace listed again (after a watch expired) without orders; crm untouched.
    store.replace_listing(PRODUCTS, "sales", [])
    store.replace_listing(JOBS, "sales", [])
    assert store.product("sales", "orders") is None
    assert store.product("crm", "customers") is not None
    assert store.jobs("sales", "orders") == []
    assert store.jobs("finance", "revenue") != []
    store.replace_listing(PRODUCTS, "sales", [orders])
    assert store.product("sales", "orders") is not None
    domains = [o for o in example_objects() if o["kind"] == "DataDomain"]
    store.replace_listing(DOMAINS, None, [d for d in domains if d["metadata"]["name"] != "crm"])
    assert set(store.domains()) == {"finance", "marketing", "sales"}


def test_the_catalogs_openlineage_export_names_jobs_in_the_operators_namespace() -> None:
    # The operator's --openlineage-namespace reaches its catalog, so the static lineage and
    # the run events name one job: per product and for the whole mesh.
    async def run() -> None:
        app = build_app(example_store(), clock=lambda: NOW, lineage_namespace="cluster-eu-1")
        async with TestClient(TestServer(app)) as client:
            one = await api(client, "/api/v1/dataproducts/sales/orders/export/openlineage")
            mesh = await api(client, "/api/v1/export/openlineage")
            for events in (one, mesh):
                jobs = [e["job"] for e in events if "job" in e]
                assert jobs and {job["namespace"] for job in jobs} == {"cluster-eu-1"}
            assert [job["job"]["name"] for job in one if "job" in job] == [
                "sales/orders/ingest",
                "sales/orders/backfill",
            ]

    asyncio.run(run())
