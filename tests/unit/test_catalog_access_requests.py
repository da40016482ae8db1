"""The catalog's side of access requests: a product page's "Request access" section (the
``dpo access request`` line and the DataAccessRequest it applies, or why there is none), the
grants of approved requests with their purposes and expiry, shown with their subjects only to a
caller who may see the product's namespace, and the same in the JSON API, never in an export."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml
from aiohttp.test_utils import TestClient

from dataproduct_operator.api.accessrequest import DataAccessRequest
from dataproduct_operator.catalog.access import (
    NamespaceAccess,
    ScopedStore,
    shows_namespace,
)
from dataproduct_operator.catalog.limits import MAX_LIST
from dataproduct_operator.catalog.model import (
    YOUR_NAMESPACE,
    YOUR_PURPOSE,
    YOUR_REQUEST_NAME,
    YOUR_SERVICE_ACCOUNT,
    YOUR_USER_NAME,
    build_product_detail,
)
from dataproduct_operator.catalog.server import _templates
from tests.catalog_mesh import NOW, example_store, product_object
from tests.unit.test_catalog_access import serve_as
from tests.unit.test_catalog_pages import api, page, serve

# What only the grants and pending requests of orders say (tests/catalog_mesh.py): none of it may
# reach an export, or a caller who may not see the namespace sales.
REQUEST_TEXTS = (
    "churn-model",
    "Train the churn model",
    "risk-analysts",
    "Review suspected fraud",
    "enricher",
    "Enrich the customer records",
)


def _filled(manifest: str) -> dict[str, Any]:
    """The page's DataAccessRequest with its placeholders replaced, as a consumer would."""
    for placeholder, value in (
        (YOUR_NAMESPACE, "marketing"),
        (YOUR_SERVICE_ACCOUNT, "churn-model"),
        (YOUR_PURPOSE, "Train the churn model"),
        (YOUR_USER_NAME, "carol"),
        (YOUR_REQUEST_NAME, "churn-orders"),
    ):
        assert placeholder in manifest, placeholder
        manifest = manifest.replace(placeholder, value)
    document: dict[str, Any] = yaml.safe_load(manifest)
    return document


def test_the_page_shows_the_request_command_and_a_manifest_the_api_accepts_once_filled() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        html = await page(client, "/dataproducts/sales/orders")
        section = html[html.index('id="request-access"') :].split("</section>")[0]
        assert "dpo access request sales/orders" in section
        assert "--port orders-v1" in section and "--port daily-revenue" in section
        assert "--for serviceaccount:&lt;your-namespace&gt;/&lt;serviceaccount&gt;" in section
        assert "--duration 90d" in section  # the default cap
        assert section.count('class="snippet request"') == 2  # copy buttons, like other commands
        requests = (await api(client, "/api/v1/dataproducts/sales/orders"))["access"]["requests"]
        assert requests["enabled"] is True and requests["maxDuration"] == "90d"
        assert requests["ports"] == ["orders-v1", "daily-revenue"]
        request = DataAccessRequest.from_object(_filled(requests["manifest"]))
        assert (request.spec.product.namespace, request.spec.product.name) == ("sales", "orders")
        assert request.spec.ports == ["orders-v1", "daily-revenue"]
        assert str(request.spec.subject) == "serviceaccount:marketing/churn-model"
        assert request.spec.duration == "90d" and request.spec.requested_by == "carol"

    serve(example_store(), check)


def test_the_command_asks_for_the_products_own_cap() -> None:
    capped = product_object("ledger", "finance", access={"requests": {"maxDuration": "7d"}})

    async def check(client: TestClient[Any, Any]) -> None:
        detail = await api(client, "/api/v1/dataproducts/finance/ledger")
        requests = detail["access"]["requests"]
        assert requests["maxDuration"] == "7d"
        assert requests["command"].endswith("--duration 7d")
        assert yaml.safe_load(requests["manifest"])["spec"]["duration"] == "7d"
        assert "for at most <strong>7d</strong>" in await page(
            client, "/dataproducts/finance/ledger"
        )

    serve(example_store(extra=[capped]), check)


def test_a_product_taking_no_requests_says_so_and_offers_no_command() -> None:
    closed = product_object("ledger", "finance", access={"requests": {"enabled": False}})

    async def check(client: TestClient[Any, Any]) -> None:
        html = await page(client, "/dataproducts/finance/ledger")
        section = html[html.index('id="request-access"') :].split("</section>")[0]
        assert "takes no access requests" in section
        assert "dpo access request" not in section and "DataAccessRequest" not in section
        requests = (await api(client, "/api/v1/dataproducts/finance/ledger"))["access"]["requests"]
        assert requests == {
            "enabled": False,
            "maxDuration": None,
            "ports": ["ledger-v1"],
            "command": None,
            "manifest": None,
        }

    serve(example_store(extra=[closed]), check)


def test_grants_of_requests_show_subject_ports_purpose_and_expiry_soonest_first() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        access = (await api(client, "/api/v1/dataproducts/sales/orders"))["access"]
        assert access["grantCount"] == 2 and access["pending"] == 1
        assert access["grants"] == [
            {
                "subject": "Group risk-analysts",
                "ports": [],
                "purpose": "Review suspected fraud",
                "expiresAt": "2026-11-22T12:00:00Z",
                "expiresIn": "2d",
            },
            {
                "subject": "ServiceAccount marketing/churn-model",
                "ports": ["orders-v1"],
                "purpose": "Train the churn model on last quarter's orders",
                "expiresAt": "2026-12-20T12:00:00Z",
                "expiresIn": "30d",
            },
        ]  # the spec's reader finance-analysts is a reader, not a grant of a request
        html = await page(client, "/dataproducts/sales/orders")
        grants = html[html.index('class="grants"') :].split("</table>")[0]
        assert "finance-analysts" not in grants
        assert "ServiceAccount marketing/churn-model" in grants and "in 30d" in grants
        assert "1 request(s) waiting" in html

    serve(example_store(), check)


def test_a_product_without_access_status_has_no_grants_and_nothing_pending() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        access = (await api(client, "/api/v1/dataproducts/finance/revenue"))["access"]
        assert (access["grantCount"], access["grants"], access["pending"]) == (0, [], 0)
        assert "No request grants access now." in await page(
            client, "/dataproducts/finance/revenue"
        )

    serve(example_store(), check)


def test_a_purpose_is_shown_as_text_never_as_markup() -> None:
    payload = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>"
    hostile = product_object("ledger", "finance")
    hostile["status"] = {
        "access": {
            "readers": [
                {
                    "kind": "User",
                    "name": "<b>mallory</b>",
                    "source": "Request",
                    "purpose": payload,
                    "expiresAt": "not a time",
                }
            ]
        }
    }

    async def check(client: TestClient[Any, Any]) -> None:
        html = await page(client, "/dataproducts/finance/ledger")
        assert payload not in html and "<b>mallory" not in html
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
        assert "User &lt;b&gt;mallory&lt;/b&gt;" in html
        grants = html[html.index('class="grants"') :].split("</table>")[0]
        assert "unknown" in grants  # an expiry that cannot be read is not a failure

    serve(example_store(extra=[hostile]), check)


def test_a_caller_who_may_list_the_namespace_sees_the_subjects_and_one_who_may_not_nothing() -> (
    None
):
    async def sales(client: TestClient[Any, Any]) -> None:
        access = (await api(client, "/api/v1/dataproducts/sales/orders"))["access"]
        assert [g["subject"] for g in access["grants"]] == [
            "Group risk-analysts",
            "ServiceAccount marketing/churn-model",
        ]

    async def finance(client: TestClient[Any, Any]) -> None:
        await api(client, "/api/v1/dataproducts/sales/orders", status=404)
        for path in ("/", "/api/v1/dataproducts", "/api/v1/dataproducts/finance/revenue"):
            body = await (await client.get(path)).text()
            assert not any(text in body for text in REQUEST_TEXTS), path

    serve_as(example_store(), NamespaceAccess.only({"sales"}), sales)
    serve_as(example_store(), NamespaceAccess.only({"finance"}), finance)


def test_only_a_catalog_that_shows_the_namespace_shows_who_holds_its_grants() -> None:
    store = example_store()
    assert shows_namespace(store, "sales")  # no --auth: as the spec's readers are shown
    assert shows_namespace(ScopedStore(store, NamespaceAccess.only({"sales"})), "sales")
    assert not shows_namespace(ScopedStore(store, NamespaceAccess.only({"finance"})), "sales")
    assert shows_namespace(ScopedStore(store, NamespaceAccess.everything()), "sales")


def test_a_caller_who_may_not_see_the_namespace_gets_the_number_of_grants_only() -> None:
    store = example_store()
    cached = store.product("sales", "orders")
    assert cached is not None
    detail = build_product_detail(
        cached.product,
        graph=store.lineage(),
        jobs=[],
        connection=None,
        export_formats=(),
        now=NOW,
        subjects_shown=False,
    )
    assert (detail.access.grant_count, detail.access.grants, detail.access.pending) == (2, None, 1)
    assert detail.access.requests.enabled  # how to ask is the same for every caller
    html = (
        _templates(lambda: NOW)
        .get_template("product.html.j2")
        .render(path="/", synced=True, detail=detail, product=detail.summary)
    )
    section = html[html.index('id="request-access"') :].split("</section>")[0]
    assert "2 grant(s) of approved requests in force" in section
    assert "dpo access request sales/orders" in section
    assert not any(text in section for text in REQUEST_TEXTS)
    assert not any(text in detail.model_dump_json() for text in REQUEST_TEXTS)


@pytest.mark.parametrize("export", ["odcs", "odps", "backstage", "openlineage"])
def test_exports_name_no_subject_or_purpose_of_a_request(export: str) -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        for path in (
            f"/api/v1/dataproducts/sales/orders/export/{export}",
            f"/api/v1/export/{export}",
        ):
            response = await client.get(path)
            assert response.status == 200, path
            body = await response.text()
            assert "orders" in body  # the product is in it
            leaked = [text for text in REQUEST_TEXTS if text in body]
            assert leaked == [], (path, leaked)

    serve(example_store(), check)


def test_the_access_of_the_api_matches_the_openapi_document() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        document = await api(client, "/api/v1/openapi.json")
        detail = await api(client, "/api/v1/dataproducts/sales/orders")
        schema = {**document["components"]["schemas"]["ProductAccessView"]}
        schema["components"] = document["components"]
        jsonschema.Draft202012Validator(schema).validate(detail["access"])
        product = document["components"]["schemas"]["ProductDetail"]
        assert "access" in product["required"]

    serve(example_store(), check)


def test_a_long_list_of_grants_is_counted_as_a_lower_bound_and_purposes_are_kept_whole() -> None:
    purpose = "p" * 1024  # the longest purpose a request may have
    many = product_object("ledger", "finance")
    many["status"] = {
        "access": {
            "readers": [
                {
                    "kind": "User",
                    "name": f"user-{index:02d}",
                    "source": "Request",
                    "purpose": purpose,
                    "expiresAt": "2026-12-01T00:00:00Z",
                }
                for index in range(MAX_LIST + 8)
            ],
        }
    }

    async def check(client: TestClient[Any, Any]) -> None:
        access = (await api(client, "/api/v1/dataproducts/finance/ledger"))["access"]
        assert (access["grantCount"], access["grantsShortened"]) == (MAX_LIST, True)
        assert (access["pending"], access["pendingShortened"]) == (0, False)
        assert {grant["purpose"] for grant in access["grants"]} == {purpose}
        html = await page(client, "/dataproducts/finance/ledger")
        assert "0 request(s) waiting" in html  # nothing pending was cut
        assert "the full object lists every grant" in html
        orders = (await api(client, "/api/v1/dataproducts/sales/orders"))["access"]
        assert (orders["grantsShortened"], orders["pendingShortened"]) == (False, False)

    serve(example_store(extra=[many]), check)
