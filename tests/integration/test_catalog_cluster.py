"""The catalog against the local control plane: served by the operator (as the chart's identity)
and alone (`dpo catalog`, as the chart's read-only catalog identity), kept current by watches."""

from __future__ import annotations

import html
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from open_data_contract_standard.model import OpenDataContractStandard

from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.rest import ApiError
from tests.clusters import (
    HelmRunner,
    chart_catalog_identity,
)
from tests.helpers import wait_for
from tests.products import (
    PRODUCTS,
    OperatorProcess,
    change_spec,
    create_ready,
    delete_if_present,
    example,
    free_port,
    product_path,
)

pytestmark = pytest.mark.integration

CATALOG_ACCOUNT = "catalog-under-test"


def get(url: str) -> tuple[int, Any]:
    """Status and JSON body of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def healthy(base: str) -> bool:
    """Whether the catalog answers /healthz with 200: it has listed the mesh."""
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def operator_with_catalog(
    operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``dpo run --catalog-port`` as the chart's ServiceAccount; the catalog's base URL."""
    port = free_port()
    process = OperatorProcess(
        operator_kubeconfig,
        tmp_path_factory.mktemp("operator") / "operator.log",
        extra=("--catalog-port", str(port), "--catalog-host", "127.0.0.1"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(base), timeout=60, description="the catalog")
        yield base
    finally:
        process.stop()


def test_operator_serves_the_catalog_and_it_follows_the_cluster(
    kube: BlockingClient, domain: str, operator_with_catalog: str
) -> None:
    base, namespace = operator_with_catalog, domain
    create_ready(kube, example(namespace))

    def listed() -> dict[str, Any] | None:
        _, body = get(f"{base}/api/v1/dataproducts/{namespace}/orders")
        summary = body.get("summary", {})
        # Ready, and no run has published data yet: neither healthy nor unhealthy
        shown = (summary.get("health"), summary.get("healthReason"))
        return body if shown == ("unknown", "NoDataYet") else None

    detail = wait_for(listed, timeout=15, description="the catalog to show orders, no data yet")
    assert [c["claimName"] for c in detail["connection"]] == [
        "orders-orders-v1",
        "orders-daily-revenue",
    ]
    assert {c["type"] for c in detail["conditions"]} >= {"Ready", "StorageReady"}
    # The operator's status lists the spec's readers, none of them a grant of a request.
    assert (detail["access"]["grantCount"], detail["access"]["pending"]) == (0, 0)
    assert detail["access"]["requests"]["command"].startswith(
        f"dpo access request {namespace}/orders"
    )

    change_spec(kube, namespace, "orders", lambda spec: spec.update(description="Now renamed."))
    wait_for(
        lambda: (
            get(f"{base}/api/v1/dataproducts/{namespace}/orders")[1]["summary"]["description"]
            == "Now renamed."
        ),
        timeout=10,
        description="the catalog to show the new description",
    )
    status, domain_view = get(f"{base}/api/v1/domains/{namespace}")
    assert status == 200 and [p["name"] for p in domain_view["products"]] == ["orders"]

    delete_if_present(kube, product_path(namespace, "orders"))
    wait_for(
        lambda: get(f"{base}/api/v1/dataproducts/{namespace}/orders")[0] == 404,
        timeout=30,
        description="the catalog to forget the deleted product",
    )


def test_hidden_products_stay_out_of_the_catalog_of_a_real_cluster(
    kube: BlockingClient, domain: str, operator_with_catalog: str
) -> None:
    base, namespace = operator_with_catalog, domain
    hidden = example(namespace, "hidden-orders")
    hidden["spec"]["discoverability"] = "Hidden"
    create_ready(kube, hidden)
    visible = example(namespace, "visible-orders")
    create_ready(kube, visible)
    wait_for(
        lambda: get(f"{base}/api/v1/dataproducts/{namespace}/visible-orders")[0] == 200,
        timeout=10,
        description="the visible product in the catalog",
    )
    status, error = get(f"{base}/api/v1/dataproducts/{namespace}/hidden-orders")
    assert (status, error["error"]["reason"]) == (404, "NotFound")
    _, listed = get(f"{base}/api/v1/dataproducts?domain={namespace}")
    assert [p["name"] for p in listed["items"]] == ["visible-orders"]


def test_the_catalog_shows_a_placed_store_ports_table_and_how_its_reader_reads_it(
    kube: BlockingClient, store: str, postgres: Any, domain: str, operator_with_catalog: str
) -> None:
    base, namespace = operator_with_catalog, domain
    orders = example(namespace)
    orders["spec"].update(inputs=[], pipelines=[])
    orders["spec"]["outputPorts"] = orders["spec"]["outputPorts"][:1]
    orders["spec"]["outputPorts"][0].pop("storage", None)  # the example names none now
    orders["spec"]["outputPorts"][0]["store"] = {"name": store}
    reader = {"kind": "ServiceAccount", "name": "analyst", "namespace": namespace}
    orders["spec"]["access"] = {"readers": [reader]}
    endpoint = create_ready(kube, orders)["status"]["outputPorts"][0]["endpoint"]

    def shown() -> str | None:
        with urllib.request.urlopen(f"{base}/dataproducts/{namespace}/orders", timeout=10) as page:  # noqa: S310
            text = html.unescape(page.read().decode())
        return text if "table in DataStore" in text else None

    text = wait_for(shown, timeout=15, description="the catalog to show the placed port")
    assert f"<code>{postgres.store_host}:{postgres.port}</code>" in text  # as the store names it
    assert f"<code>{endpoint['schema']}.{endpoint['table']}</code>" in text
    assert f"kubectl get secret dm-store-{store}-analyst -n {namespace}" in text
    table = f"{endpoint['schema']}.{endpoint['table']}"
    assert f"-c 'SELECT * FROM {table} LIMIT 10'" in text  # noqa: S608 - text on the page
    url = f"{base}/api/v1/dataproducts/{namespace}/orders/export/odcs?port=orders-v1"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own server
        (contract,) = list(yaml.safe_load_all(response.read()))
    assert contract["servers"][0]["schema"] == endpoint["schema"]


@pytest.fixture
def catalog_identity(
    helm: HelmRunner, kube: BlockingClient, control_plane: Any, tmp_path: Path
) -> Iterator[Path]:
    """The standalone catalog's identity as the chart renders it, renamed for this test."""
    with chart_catalog_identity(
        helm, kube, control_plane.server, CATALOG_ACCOUNT, tmp_path / "catalog.kubeconfig"
    ) as kubeconfig:
        yield kubeconfig


def test_dpo_catalog_alone_serves_the_mesh_with_only_read_permissions(
    kube: BlockingClient,
    domain: str,
    operator_with_catalog: str,
    catalog_identity: Path,
    tmp_path: Path,
) -> None:
    namespace = domain
    create_ready(kube, example(namespace))
    port = free_port()
    log = tmp_path / "catalog.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "dataproduct_operator", "catalog",
                "--kubeconfig", str(catalog_identity), "--port", str(port),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(
                lambda: healthy(base) if process.poll() is None else None,
                timeout=30,
                description="dpo catalog to list the mesh",
            )
            status, detail = get(f"{base}/api/v1/dataproducts/{namespace}/orders")
            assert status == 200, detail
            assert detail["connection"] is not None  # ConfigMaps are readable to it
            status, _ = get(f"{base}/api/v1/domains/{namespace}")
            assert status == 200
            # And it may change nothing.
            with (
                BlockingClient.from_kubeconfig(catalog_identity) as reader,
                pytest.raises(ApiError) as refused,
            ):
                reader.create(PRODUCTS.format(namespace=namespace), example(namespace, "intruder"))
            assert refused.value.status == 403
        finally:
            process.terminate()
            process.wait(timeout=20)
    assert "Catalog ready: " in log.read_text(), log.read_text()


def dpo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataproduct_operator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dpo_export_reads_the_product_and_its_domain_from_the_cluster(
    kube: BlockingClient, domain: str, operator: Any, control_plane: Any
) -> None:
    namespace = domain
    kube.merge_patch(
        f"/apis/datamesh.dev/v1alpha1/datadomains/{namespace}", {"spec": {"costCenter": "CC-7"}}
    )
    create_ready(kube, example(namespace))
    kubeconfig = str(control_plane.kubeconfig)
    source = ("--namespace", namespace, "--name", "orders", "--kubeconfig", kubeconfig)

    odcs = dpo("export", "--format", "odcs", *source)
    assert odcs.returncode == 0, odcs.stderr
    contracts = [c for c in yaml.safe_load_all(odcs.stdout) if c]
    assert [c["id"] for c in contracts] == [
        f"{namespace}.orders.orders-v1",
        f"{namespace}.orders.daily-revenue",
    ]
    for contract in contracts:
        OpenDataContractStandard.model_validate(contract)

    odps = dpo("export", "--format", "odps", *source)
    assert odps.returncode == 0, odps.stderr
    product = yaml.safe_load(odps.stdout)
    custom = {p["property"]: p["value"] for p in product["customProperties"]}
    assert (product["id"], product["domain"], custom["costCenter"]) == (
        f"{namespace}.orders", namespace, "CC-7",
    )  # fmt: skip

    missing = dpo("export", "--format", "odps", "--namespace", namespace, "--name", "nope",
                  "--kubeconfig", kubeconfig)  # fmt: skip
    assert missing.returncode == 1
    assert f"DataProduct {namespace}/nope not found" in missing.stderr


def test_dpo_export_goes_on_without_a_domain_it_may_not_read(
    kube: BlockingClient,
    domain: str,
    operator: Any,
    service_account_kubeconfig: Callable[[str, str], Path],
) -> None:
    namespace = domain
    domain_path = f"/apis/datamesh.dev/v1alpha1/datadomains/{namespace}"
    kube.merge_patch(domain_path, {"spec": {"costCenter": "CC-7"}})
    create_ready(kube, example(namespace))
    kube.create(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        {
            "metadata": {"name": "exporter-view"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "view",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "exporter", "namespace": namespace}],
        },
    )
    # `view` in the namespace reads DataProducts (datamesh-view), not the cluster's DataDomains.
    kubeconfig = service_account_kubeconfig(namespace, "exporter")
    exported = dpo("export", "--format", "odps", "--namespace", namespace, "--name", "orders",
                   "--kubeconfig", str(kubeconfig))  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    product = yaml.safe_load(exported.stdout)
    assert product["id"] == f"{namespace}.orders"
    assert "costCenter" not in {p["property"] for p in product["customProperties"]}


def test_dpo_catalog_on_a_port_in_use_says_so_and_exits(control_plane: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = dpo("catalog", "--kubeconfig", str(control_plane.kubeconfig), "--port", str(port))
    assert result.returncode == 1
    assert f"Cannot serve the catalog on port {port}" in result.stderr
