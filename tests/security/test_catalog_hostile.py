"""The catalog under hostile input, against the local control plane.

A mesh whose every text field the API server admits as free text (descriptions, team names,
contacts, tags, column names, types and descriptions, sources, readers, the domain's texts, a
status message, a store port's endpoint and grants, and the subjects, ports and purposes of
access requests, as a status written by hand may hold them)
holds a cross-site-scripting payload or bidirectional controls, applied through
the API server and served by ``dpo catalog``: every page loads in headless Chromium with no
script run and no console error, the payloads shown as text. Then the limits over HTTP: a long
search answers 400, concurrent whole-mesh exports one 200 at a time and 429 with Retry-After
for the rest, a huge page size is clamped.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dataproduct_operator.k8s.blocking import BlockingClient
from tests.clusters import DOMAINS, delete_domain, domain_document, hand_over
from tests.helpers import wait_for
from tests.integration.browser import browser_page
from tests.products import PRODUCTS, dpo_catalog, free_port, product_path

# Each payload, if it ran, would set window.__pwned (or navigate); none may.
SCRIPT = "<script>window.__pwned='script'</script>"
IMG = '"><img src=x onerror="window.__pwned=\'img\'">'
SVG = "<svg onload=\"window.__pwned='svg'\"><circle r=1 /></svg>"
SVG_SCRIPT = "<svg><script>window.__pwned='svg-script'</script></svg>"
JS_URL = "javascript:window.__pwned='url'"
BIDI = "\u202eevil\u202c \u2066isolate\u2069 \u200fmark\u200e \u061c"
PAYLOAD = f"{SCRIPT} {IMG} {SVG} {SVG_SCRIPT} {JS_URL} {BIDI}"
BIDI_CHARACTERS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
EMAIL = "javascript:window.__pwned='mail'//@x.io"  # passes the CRD's email pattern
FILLER = 60  # products beside the hostile ones: a whole-mesh export that takes a moment


def product(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"domain": namespace, **spec},
    }


def hostile_product(namespace: str, name: str, *, reads: str | None = None) -> dict[str, Any]:
    column = {"name": f"{SCRIPT}{IMG}", "type": SVG, "description": PAYLOAD, "pii": True}
    inputs: list[dict[str, Any]] = [
        {"name": "raw", "external": {"type": SCRIPT, "uri": f"{JS_URL} {IMG}"}}
    ]
    if reads is not None:
        inputs.append({"name": "up", "dataProduct": {"name": reads, "port": "data"}})
    return product(
        namespace,
        name,
        owner={
            "team": f"{IMG}{SCRIPT}",
            "contacts": [{"name": f"{IMG}{BIDI}", "email": EMAIL}, {"name": JS_URL}],
        },
        description=PAYLOAD,
        tags=[SCRIPT, IMG, SVG, JS_URL, BIDI],
        inputs=inputs,
        outputPorts=[
            {
                "name": "data",
                "description": PAYLOAD,
                "storage": {"size": "1Gi"},
                "schema": [column, {"name": JS_URL, "type": "string"}],
            }
        ],
        access={"readers": [{"kind": "Group", "name": f"{SCRIPT}{IMG}{BIDI}"}]},
    )


def filler_product(namespace: str, index: int) -> dict[str, Any]:
    return product(
        namespace,
        f"filler-{index:03d}",
        owner={"team": "fillers"},
        description="A product of the mesh.",
        outputPorts=[
            {
                "name": "data",
                "storage": {"size": "1Gi"},
                "schema": [{"name": f"c{c}", "type": "string"} for c in range(20)],
            }
        ],
    )


@pytest.fixture
def hostile_mesh(kube: BlockingClient, crds: None, namespace: str) -> Iterator[str]:
    """The test's namespace as a domain whose texts are payloads, two hostile products (one
    reading the other, so the lineage shows both) with a payload in a status message, and
    filler products."""
    document = domain_document(namespace)
    document["spec"].update(
        displayName=f"{SVG}{BIDI}",
        description=PAYLOAD,
        costCenter=IMG,
        owners={"team": SCRIPT, "contacts": [{"name": SVG_SCRIPT, "email": EMAIL}]},
    )
    hand_over(kube, namespace)
    kube.create(DOMAINS, document)
    try:
        collection = PRODUCTS.format(namespace=namespace)
        kube.create(collection, hostile_product(namespace, "victim"))
        kube.create(collection, hostile_product(namespace, "reader", reads="victim"))
        condition = {
            "type": "Ready",
            "status": "False",
            "reason": "Broken",
            "message": PAYLOAD,
            "lastTransitionTime": "2026-11-20T10:00:00Z",
        }
        # The status has no patterns: whatever may write it, its texts are payloads here.
        port = {
            "name": "data",
            "phase": "Placed",
            "endpoint": {
                "store": SCRIPT, "host": IMG, "port": 5432, "database": SVG,
                "schema": SVG_SCRIPT, "table": f"{JS_URL}{BIDI}",
            },
            "grants": [
                {"kind": "ServiceAccount", "name": SCRIPT, "namespace": namespace, "role": IMG},
                {"kind": "Group", "name": SVG, "role": BIDI},
            ],
        }  # fmt: skip
        # A purpose is the requester's free text; the operator copies it into the status.
        access = {
            "readers": [
                {
                    "kind": "User", "name": f"{SCRIPT}{BIDI}", "ports": [IMG],
                    "source": "Request", "request": SVG, "purpose": PAYLOAD, "expiresAt": JS_URL,
                }
            ],
            "pending": [
                {
                    "request": SVG, "uid": IMG, "kind": "Group", "name": SCRIPT,
                    "purpose": PAYLOAD, "requestedBy": IMG, "duration": SVG_SCRIPT,
                }
            ],
        }  # fmt: skip
        kube.merge_patch(
            f"{product_path(namespace, 'victim')}/status",
            {"status": {"conditions": [condition], "outputPorts": [port], "access": access}},
        )
        for index in range(FILLER):
            kube.create(collection, filler_product(namespace, index))
        yield namespace
    finally:
        delete_domain(kube, namespace)


@pytest.fixture
def catalog(control_plane: Any, hostile_mesh: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``dpo catalog`` over the hostile mesh; its base URL and the mesh's namespace."""
    port = free_port()
    log = tmp_path / "catalog.log"
    with log.open("wb") as output:
        process = dpo_catalog(output, control_plane.kubeconfig, port, "--namespace", hostile_mesh)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: process.poll() is None and status_of(f"{base}/healthz")[0] == 200,
            timeout=60,
            description="dpo catalog to list the hostile mesh",
        )
        yield base, hostile_mesh
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert "Traceback" not in log.read_text(), log.read_text()


def status_of(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - our own server
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
    except OSError:
        return 0, {}, b""


def test_every_catalog_page_shows_the_payloads_as_text_and_runs_none(
    catalog: tuple[str, str],
) -> None:
    base, namespace = catalog
    focus = urllib.parse.urlencode({"focus": f"product:{namespace}/victim", "hops": 2})
    pages = [
        "/",
        "/?q=" + urllib.parse.quote("script"),
        "/domains",
        f"/domains/{namespace}",
        f"/dataproducts/{namespace}/victim",
        f"/dataproducts/{namespace}/reader",
        "/lineage",
        f"/lineage?{focus}",
        "/lineage.svg",
        f"/api/v1/dataproducts/{namespace}/victim",
    ]
    with browser_page() as (page, problems):
        for path in pages:
            response = page.goto(base + path)
            assert response is not None and response.status == 200, path
            page.wait_for_load_state("load")
            assert page.evaluate("window.__pwned") is None, path
            assert page.url == base + path, f"{path} navigated to {page.url}"
            html = page.content()
            assert not any(c in html for c in BIDI_CHARACTERS), f"bidi control on {path}"
            # No link or image of the page may carry a javascript: URL or an injected element.
            hrefs = page.eval_on_selector_all(
                "[href], [src], [xlink\\:href]",
                "nodes => nodes.map(n => n.getAttribute('href') || n.getAttribute('src') "
                "|| n.getAttribute('xlink:href'))",
            )
            assert not [h for h in hrefs if h and h.strip().lower().startswith("javascript:")]
            assert page.locator("img[src='x']").count() == 0, path
            assert page.locator("svg[onload]").count() == 0, path
            if path.startswith("/dataproducts/"):
                shown = page.inner_text("body")
                assert SCRIPT in shown and "onerror=" in shown, "payloads shown as text"
            if path == f"/dataproducts/{namespace}/victim":
                # The endpoint's payloads are shown, and no command a reader would copy.
                assert "table in DataStore <script>" in page.inner_text("body")
                assert "psql" not in html and "kubectl get secret" not in html
                # The grant's subject, port and purpose are shown as text, in its row.
                grant = page.inner_text("table.grants tbody tr")
                assert f"User {SCRIPT}" in grant and IMG in grant and SCRIPT + " " + IMG in grant
        assert problems.errors == [], problems.errors


def test_exports_of_hostile_products_are_served_as_data_never_as_a_page(
    catalog: tuple[str, str],
) -> None:
    base, namespace = catalog
    for export in ("odcs", "odps", "backstage", "openlineage", "odcs?port=data"):
        status, headers, body = status_of(
            f"{base}/api/v1/dataproducts/{namespace}/victim/export/{export}"
        )
        assert status == 200, (export, body[:300])
        assert not headers["Content-Type"].startswith("text/html"), export
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_the_catalogs_limits_hold_over_http(catalog: tuple[str, str]) -> None:
    base, _ = catalog
    status, _, body = status_of(f"{base}/api/v1/dataproducts?q={'x' * 8000}")
    assert status == 400 and json.loads(body)["error"]["reason"] == "QueryTooLong"
    status, _, body = status_of(f"{base}/?q={'x' * 8000}")
    assert status == 400 and b"at most 256" in body

    status, _, body = status_of(f"{base}/api/v1/dataproducts?limit=1000000000")
    listed = json.loads(body)
    assert status == 200 and listed["limit"] == 1000 and len(listed["items"]) == FILLER + 2

    start = threading.Barrier(12)

    def export(_: int) -> tuple[int, dict[str, str], bytes]:
        start.wait()
        return status_of(f"{base}/api/v1/export/backstage")

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(export, range(12)))
    statuses = sorted(status for status, _, _ in answers)
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 1 and statuses.count(429) >= 1, statuses
    for status, headers, body in answers:
        if status == 429:
            assert int(headers["Retry-After"]) > 0
            assert json.loads(body)["error"]["reason"] == "TooManyExports"
    # Once they are done, the next one is served.
    assert status_of(f"{base}/api/v1/export/backstage")[0] == 200
