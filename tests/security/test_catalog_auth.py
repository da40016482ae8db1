"""``dpo catalog --auth kubernetes`` against the local control plane, as the chart's catalog
identity: no or a bad bearer token gets 401; a ServiceAccount allowed to list DataProducts in one
namespace sees that namespace's products only, in pages, search, the JSON API, lineage and
exports; TokenReviews and SubjectAccessReviews are kept, not sent per request (counted by the
API server's own flow control); no token reaches the catalog's log. The operator's own catalog
(``dpo run --catalog-auth kubernetes``) checks callers the same way, as the chart's identity."""

from __future__ import annotations

import secrets
import statistics
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.setup import FLOW_SCHEMAS, build_flow_schema, dispatched_requests
from dataproduct_operator.k8s.blocking import BlockingClient
from tests.clusters import (
    DOMAINS,
    OPERATOR_NAMESPACE,
    HelmRunner,
    bind_in_namespace,
    chart_catalog_identity,
    delete_domain,
    domain_document,
    hand_over,
    namespace_name,
    service_account_token,
)
from tests.helpers import wait_for
from tests.products import (
    PRODUCTS,
    OperatorProcess,
    delete_if_present,
    dpo_catalog,
    example,
    free_port,
)

CATALOG_RELEASE = "catalog-auth-under-test"
CATALOG_ACCOUNT = f"{CATALOG_RELEASE}-dataproduct-operator-catalog"
TOKEN_REVIEWS_SCHEMA = "tests-catalog-token-reviews"
ACCESS_REVIEWS_SCHEMA = "tests-catalog-access-reviews"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    text: str


def get(
    url: str, token: str | None = None, *, scheme: str = "Bearer", cookie: str | None = None
) -> Answer:
    """A GET with ``Authorization: <scheme> <token>`` when a token is given (and ``Cookie:
    <cookie>``, as a signed-in browser), errors included."""
    headers = {} if token is None else {"Authorization": f"{scheme} {token}"}
    if cookie is not None:
        headers["Cookie"] = cookie
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - our own server
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
            return Answer(response.status, dict(response.headers), response.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read().decode())


@dataclass(frozen=True)
class Catalog:
    base: str
    log: Path
    process: subprocess.Popen[bytes]

    def reviews(self, kube: BlockingClient) -> tuple[int, int]:
        """TokenReviews and SubjectAccessReviews the catalog has sent so far."""
        counts = dispatched_requests(kube, [TOKEN_REVIEWS_SCHEMA, ACCESS_REVIEWS_SCHEMA])
        return counts[TOKEN_REVIEWS_SCHEMA], counts[ACCESS_REVIEWS_SCHEMA]


@pytest.fixture(scope="module")
def catalog(
    helm: HelmRunner,
    kube: BlockingClient,
    control_plane: Any,
    crds: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Catalog]:
    """``dpo catalog --auth kubernetes`` as the chart's catalog identity, its reviews counted by
    FlowSchemas of their own."""
    directory = tmp_path_factory.mktemp("catalog-auth")
    account = (OPERATOR_NAMESPACE, CATALOG_ACCOUNT)
    schemas = [
        build_flow_schema(
            TOKEN_REVIEWS_SCHEMA, account, 380, ["create"], resources=("tokenreviews",)
        ),
        build_flow_schema(
            ACCESS_REVIEWS_SCHEMA, account, 381, ["create"], resources=("subjectaccessreviews",)
        ),
    ]
    for schema in schemas:
        kube.create_if_missing(FLOW_SCHEMAS, schema)
    port = free_port()
    log = directory / "catalog.log"
    with (
        chart_catalog_identity(
            helm, kube, control_plane.server, CATALOG_RELEASE, directory / "kubeconfig"
        ) as kubeconfig,
        log.open("wb") as output,
    ):
        process = dpo_catalog(
            output, kubeconfig, port, "--auth", "kubernetes",
            # Longer than the tests take on a busy machine: what is counted is the cache.
            "--auth-token-ttl", "300", "--auth-access-ttl", "300", "--verbose",
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(
                lambda: get(f"{base}/healthz").status == 200 if process.poll() is None else None,
                timeout=60,
                description="dpo catalog --auth kubernetes to list the mesh",
            )
            yield Catalog(base, log, process)
        finally:
            process.terminate()
            process.wait(timeout=20)
            for schema in schemas:
                delete_if_present(kube, f"{FLOW_SCHEMAS}/{schema['metadata']['name']}")


@dataclass(frozen=True)
class Mesh:
    """Two domains with a product each; a reader allowed to list DataProducts in the first."""

    allowed: str
    other: str
    reader_token: str


@pytest.fixture
def mesh(kube: BlockingClient, crds: None, request: pytest.FixtureRequest) -> Iterator[Mesh]:
    allowed = namespace_name(f"{request.node.name}-a")
    other = namespace_name(f"{request.node.name}-b")
    try:
        for name in (allowed, other):
            kube.create("/api/v1/namespaces", {"metadata": {"name": name}})
            hand_over(kube, name)
            kube.create(DOMAINS, domain_document(name))
            kube.create(PRODUCTS.format(namespace=name), example(name, "orders"))
        kube.create(
            f"/api/v1/namespaces/{allowed}/serviceaccounts", {"metadata": {"name": "reader"}}
        )
        kube.create(
            f"{RBAC}/namespaces/{allowed}/roles",
            {
                "metadata": {"name": "list-dataproducts"},
                "rules": [
                    {
                        "apiGroups": ["datamesh.dev"],
                        "resources": ["dataproducts"],
                        "verbs": ["get", "list"],
                    }
                ],
            },
        )
        bind_in_namespace(kube, allowed, "reader", ("Role", "list-dataproducts"))
        yield Mesh(allowed, other, service_account_token(kube, allowed, "reader"))
    finally:
        for name in (allowed, other):
            delete_domain(kube, name)
            delete_if_present(kube, f"/api/v1/namespaces/{name}")


def shown_to(catalog: Catalog, token: str, namespace: str) -> bool:
    """Whether the catalog lists ``namespace``'s orders to the holder of ``token`` yet."""
    answer = get(f"{catalog.base}/api/v1/dataproducts/{namespace}/orders", token)
    return answer.status == 200


def test_requests_without_a_token_or_with_a_bad_one_get_401_and_healthz_stays_open(
    catalog: Catalog, mesh: Mesh
) -> None:
    for path in ("/", "/api/v1/dataproducts", f"/api/v1/dataproducts/{mesh.allowed}/orders"):
        answer = get(f"{catalog.base}{path}")
        assert answer.status == 401, (path, answer)
        assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="dataproduct-catalog"')
        assert mesh.allowed not in answer.text
    for token, scheme in (
        (secrets.token_urlsafe(32), "Bearer"),
        (mesh.reader_token + "x", "Bearer"),  # a signature that does not match
        (mesh.reader_token, "Basic"),  # not a bearer token
    ):
        answer = get(f"{catalog.base}/api/v1/dataproducts", token, scheme=scheme)
        assert answer.status == 401, answer
        assert "application/json" in answer.headers["Content-Type"]
    bad = get(f"{catalog.base}/api/v1/dataproducts", secrets.token_urlsafe(32))
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    assert get(f"{catalog.base}/healthz").status == 200


def test_a_reader_sees_only_the_products_of_the_namespace_it_may_list(
    catalog: Catalog, mesh: Mesh
) -> None:
    base, token = catalog.base, mesh.reader_token
    wait_for(
        lambda: shown_to(catalog, token, mesh.allowed),
        timeout=30,
        description="the catalog to show the reader its namespace's product",
    )
    # The other namespace's product exists (the catalog lists it to a cluster-wide reader)
    # but answers this reader 404, as if it did not.
    for path in (
        f"/dataproducts/{mesh.other}/orders",
        f"/api/v1/dataproducts/{mesh.other}/orders",
        f"/api/v1/dataproducts/{mesh.other}/orders/export/odps",
        f"/api/v1/domains/{mesh.other}",
    ):
        assert get(f"{base}{path}", token).status == 404, path
    listing = get(f"{base}/api/v1/dataproducts?q=orders&limit=1000", token)
    assert listing.status == 200
    assert f'"namespace": "{mesh.allowed}"' in listing.text
    for path in (
        "/",
        "/?q=orders",
        "/domains",
        f"/domains/{mesh.allowed}",
        "/lineage",
        "/api/v1/dataproducts?q=orders&limit=1000",
        "/api/v1/domains",
        "/api/v1/lineage",
        "/api/v1/export/backstage",
        "/api/v1/export/odps",
    ):
        answer = get(f"{base}{path}", token)
        assert answer.status == 200, (path, answer.status)
        assert mesh.allowed in answer.text, path
        assert mesh.other not in answer.text, path
        assert answer.headers["Cache-Control"] == "private, no-store", path


def test_reviews_are_kept_so_page_views_send_none(
    catalog: Catalog, kube: BlockingClient, mesh: Mesh, record_property: Any
) -> None:
    # The FlowSchemas count once the API server has taken them up: wait for a refused token's
    # review to be counted (each random token is reviewed once).
    before = catalog.reviews(kube)
    wait_for(
        lambda: (
            get(f"{catalog.base}/", secrets.token_urlsafe(32)).status == 401
            and catalog.reviews(kube)[0] > before[0]
        ),
        timeout=30,
        description="the catalog's TokenReviews to be counted",
    )
    wait_for(
        lambda: shown_to(catalog, mesh.reader_token, mesh.allowed),
        timeout=30,
        description="the catalog to show the reader its namespace's product",
    )
    warm = catalog.reviews(kube)
    seconds = []
    for path in ["/", "/api/v1/dataproducts", f"/dataproducts/{mesh.allowed}/orders"] * 10:
        started = time.perf_counter()
        assert get(f"{catalog.base}{path}", mesh.reader_token).status == 200
        seconds.append(time.perf_counter() - started)
    after = catalog.reviews(kube)
    assert after == warm, f"30 page views sent reviews: {warm} -> {after}"
    record_property("page_view_p50_ms", round(statistics.median(seconds) * 1000, 1))


def test_no_token_reaches_the_catalog_log(catalog: Catalog, mesh: Mesh) -> None:
    refused = secrets.token_urlsafe(32)
    assert get(f"{catalog.base}/api/v1/dataproducts", refused).status == 401
    wait_for(
        lambda: shown_to(catalog, mesh.reader_token, mesh.allowed),
        timeout=30,
        description="the catalog to show the reader its namespace's product",
    )
    log = catalog.log.read_text()
    assert "refused" in log  # the refusal was logged: without its token
    for token in (refused, mesh.reader_token):
        assert token not in log
        assert token[:16] not in log


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def sign_in(base: str, token: str) -> Answer:
    """POST the sign-in form as a browser on the catalog's page would; the redirect not
    followed (it carries the cookie)."""
    request = urllib.request.Request(  # noqa: S310 - our own server
        f"{base}/login",
        data=urllib.parse.urlencode({"token": token}).encode(),
        headers={"Origin": base},
    )
    opener = urllib.request.build_opener(NoRedirects)
    try:
        with opener.open(request, timeout=20) as response:
            return Answer(response.status, dict(response.headers), response.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read().decode())


def test_a_browser_signs_in_with_a_token_into_a_cookie_that_scopes_it_alike(
    catalog: Catalog, mesh: Mesh
) -> None:
    refused = sign_in(catalog.base, secrets.token_urlsafe(32))
    assert refused.status == 401 and "Set-Cookie" not in refused.headers
    signed_in = sign_in(catalog.base, mesh.reader_token)
    assert (signed_in.status, signed_in.headers["Location"]) == (303, "/")
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    pair = cookie.split(";")[0]
    assert pair == f"dpo-catalog-token={mesh.reader_token}"

    wait_for(
        lambda: mesh.allowed in get(f"{catalog.base}/", cookie=pair).text,
        timeout=30,
        description="the catalog to show the signed-in reader its namespace's product",
    )
    for path in ("/", "/api/v1/dataproducts?limit=1000"):
        answer = get(f"{catalog.base}{path}", cookie=pair)
        assert mesh.allowed in answer.text and mesh.other not in answer.text, path
    assert mesh.reader_token not in catalog.log.read_text()


def test_the_operators_own_catalog_checks_callers_with_the_charts_review_role(
    operator_kubeconfig: Path, mesh: Mesh, tmp_path: Path
) -> None:
    """``dpo run --catalog-auth kubernetes`` as the chart's operator identity, which the chart
    (catalog.auth: kubernetes, its default) lets create the reviews."""
    port = free_port()
    extra = ("--catalog-port", str(port), "--catalog-host", "127.0.0.1")
    process = OperatorProcess(
        operator_kubeconfig,
        tmp_path / "operator.log",
        extra=(*extra, "--catalog-auth", "kubernetes"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: get(f"{base}/healthz").status == 200,
            timeout=60,
            description="the operator's catalog to list the mesh",
        )
        assert get(f"{base}/api/v1/dataproducts").status == 401
        assert get(f"{base}/", secrets.token_urlsafe(32)).status == 401
        operator_catalog = Catalog(base, process.log, process.process)
        wait_for(
            lambda: shown_to(operator_catalog, mesh.reader_token, mesh.allowed),
            timeout=30,
            description="the operator's catalog to show the reader its namespace's product",
        )
        listing = get(f"{base}/api/v1/dataproducts?limit=1000", mesh.reader_token)
        assert mesh.allowed in listing.text and mesh.other not in listing.text
    finally:
        process.stop()
    assert mesh.reader_token not in process.log.read_text()
