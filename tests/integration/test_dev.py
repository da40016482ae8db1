"""`dpo dev` as a new user runs it: the example mesh Ready, kubectl shows it, Ctrl-C cleans up.

Each test starts its own control plane through `dpo dev`, beside the session's one.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from psycopg import sql

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.cluster import controlplane
from dataproduct_operator.cluster.postgres import local_postgres
from dataproduct_operator.cluster.process import is_running
from dataproduct_operator.cluster.prometheus import ALERTS_PAGE
from dataproduct_operator.manifests.policies import STARTER_POLICIES
from dataproduct_operator.specs.alerts import build_rule_file
from tests.clusters import login_sql, run_kubectl, superuser_sql
from tests.helpers import EXAMPLES, example_documents, wait_for
from tests.integration.browser import browser_page
from tests.products import free_port, free_ports

EXAMPLE_PRODUCTS = {
    f"{d['metadata']['namespace']}/{d['metadata']['name']}"
    for path in EXAMPLES.glob("*.yaml")
    for d in example_documents(path.name, EXAMPLES)
    if d["kind"] == "DataProduct"
}
STARTUP_SECONDS = 120.0  # the control plane takes about 10 s here; the rest is headroom
READY_SECONDS = 60.0  # what the README promises for the example mesh
# kube-controller-manager counts a new custom resource in a quota only after its discovery has
# found the CRD (every 30 s): until then the domains' quotas, and so the domains, are not Ready.
ONBOARDED_SECONDS = 90.0
CATALOG_SECONDS = 30.0
# Each example pipeline runs once on the real node (about 4-6 s each here, 5 runs), then the
# mesh's health is printed.
RUNS_SECONDS = 300.0
# What the seeded sources give each example port (cluster/dev_flow.py: 200 customers, 600 orders
# over 28 days); the finance example's gate fails on purpose, so its table stays empty.
PUBLISHED_ROWS = {
    "crm/customers": {"customers-v1": 200},
    "sales/orders": {"orders-v1": 600, "daily-revenue": 28},
    "marketing/customer-segments": {"segments-v1": 200},
    "finance/revenue": {"revenue-v1": 0},
}
GATED = "finance/revenue"
GATE_CHECK = "reconciled-with-sales"


class DevProcess:
    """``dpo dev`` with its output collected line by line."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.directory = directory
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dataproduct_operator", "dev", "--dir", str(directory), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            if self.process.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"dpo dev exited early:\n{self.output}")
            return next(filter(None, (re.search(pattern, line) for line in self.lines)), None)

        try:
            return wait_for(found, timeout=timeout, description=f"dpo dev to print {pattern!r}")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.output}") from None

    def wait(self, timeout: float) -> int:
        """The exit code, once every line is read."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code

    def interrupt(self) -> int:
        """Ctrl-C, as a user in a terminal; the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.wait(timeout=60)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait(timeout=30)
        controlplane.down(self.directory)  # whatever is left, if a test failed half way


@pytest.fixture
def dev_directory(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "cluster"
    yield directory
    controlplane.down(directory)


@dataclass
class ExampleMesh:
    """``dpo dev`` with the example mesh Ready, as a new user has it after ``make dev``."""

    dev: DevProcess
    directory: Path
    metrics_port: int
    catalog_url: str

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"


@pytest.fixture(scope="module")
def example_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleMesh]:
    directory = tmp_path_factory.mktemp("dev") / "cluster"
    metrics_port, catalog_port, prometheus_port = free_ports(3)
    dev = DevProcess(
        directory,
        f"--examples={EXAMPLES}",
        f"--metrics-port={metrics_port}",
        f"--catalog-port={catalog_port}",
        f"--prometheus-port={prometheus_port}",
    )
    try:
        dev.wait_for_line(r"Control plane ready", timeout=STARTUP_SECONDS)
        dev.wait_for_line(rf"All {len(STARTER_POLICIES)} policies Ready", timeout=READY_SECONDS)
        dev.wait_for_line(r"All (\d+) domains Ready", timeout=ONBOARDED_SECONDS)
        dev.wait_for_line(r"All (\d+) products Ready", timeout=READY_SECONDS)
        dev.wait_for_line(r"^Pipelines run in", timeout=RUNS_SECONDS)
        catalog = dev.wait_for_line(r"^Catalog .*: (http://\S+)$", timeout=CATALOG_SECONDS)
        yield ExampleMesh(dev, directory, metrics_port, catalog[1])
    finally:
        dev.close()


def test_dev_shows_every_example_ready_in_kubectl(
    example_mesh: ExampleMesh, kubectl_binary: Path
) -> None:
    dev = example_mesh.dev
    domains = dev.wait_for_line(r"All (\d+) domains Ready", timeout=1)
    assert int(domains[1]) == 4
    done = dev.wait_for_line(r"All (\d+) products Ready ([\d.]+)s after apply", timeout=1)
    assert int(done[1]) == len(EXAMPLE_PRODUCTS) >= 4
    assert float(done[2]) < READY_SECONDS
    for product in EXAMPLE_PRODUCTS:
        assert f"  {product} Ready after" in dev.output
    dev.wait_for_line(r"get dataproducts -A", timeout=10)

    kubeconfig = example_mesh.kubeconfig
    table = run_kubectl(kubectl_binary, kubeconfig, "get", "dp", "-A").stdout.splitlines()
    assert table[0].split() == ["NAMESPACE", "NAME", "DOMAIN", "LIFECYCLE", "READY", "AGE"]
    rows = {f"{row.split()[0]}/{row.split()[1]}": row.split() for row in table[1:]}
    assert set(rows) == EXAMPLE_PRODUCTS
    domains_table = run_kubectl(kubectl_binary, kubeconfig, "get", "ddom").stdout.splitlines()
    assert domains_table[0].split() == [
        "NAME",
        "NAMESPACE",
        "OWNER",
        "PRODUCTS",
        "READY",
        "AGE",
    ]
    assert len(domains_table) == 5 and all(r.split()[4] == "True" for r in domains_table[1:])
    # The hint dev prints: a change that breaks a starter policy, refused with its reason.
    public = json.dumps({"spec": {"classification": "Public"}})
    refused = run_kubectl(
        kubectl_binary, kubeconfig, "-n", "sales", "patch", "dataproduct", "orders",
        "--type=merge", "-p", public, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert (
        "output ports with pii columns (orders-v1) need spec.classification Confidential or "
        "Restricted, not Public (MeshPolicy pii-classification, rule pii-needs-confidential)"
    ) in refused.stderr
    # Every product was Ready before its runs (the lines above) and stays Ready after them:
    # Ready means provisioned; the gated one's failed run is its DataHealthy's (below).
    assert {name: row[4] for name, row in rows.items()} == dict.fromkeys(EXAMPLE_PRODUCTS, "True")

    metrics_url = f"http://127.0.0.1:{example_mesh.metrics_port}/metrics"
    with urllib.request.urlopen(metrics_url) as response:
        metrics = response.read().decode()
    ready = dict(
        re.findall(
            r'^dataproduct_ready\{.*dataproduct="([^"]+)".*\} ([01])\.0$', metrics, re.MULTILINE
        )
    )
    assert ready == {name.split("/")[1]: "1" for name in EXAMPLE_PRODUCTS}, metrics
    healthy = dict(
        re.findall(
            r'^dataproduct_data_healthy\{.*dataproduct="([^"]+)".*\} ([01])\.0$',
            metrics,
            re.MULTILINE,
        )
    )
    assert healthy == {
        name.split("/")[1]: "0" if name == GATED else "1" for name in EXAMPLE_PRODUCTS
    }


def test_dev_runs_every_example_pipeline_on_the_real_node_and_prints_rows_and_health(
    example_mesh: ExampleMesh, kubectl_binary: Path
) -> None:
    dev = example_mesh.dev
    # Upstream products first, each run's result printed as the status reports it.
    ran = [
        (m[1], m[2], m[3])
        for m in (re.search(r"^  (\S+) (\S+): (Succeeded|Failed)", line) for line in dev.lines)
        if m
    ]
    assert ran == [
        ("crm/customers", "sync", "Succeeded"),
        ("sales/orders", "ingest", "Succeeded"),
        ("sales/orders", "daily-revenue", "Succeeded"),
        ("finance/revenue", "reconcile", "Failed"),
        ("marketing/customer-segments", "train", "Succeeded"),
    ]
    assert f"finance/revenue reconcile: Failed: check(s) failed: {GATE_CHECK}" in dev.output
    # The summary: each product's rows per port and DataHealthy.
    for name, ports in PUBLISHED_ROWS.items():
        counts = ", ".join(f"{port} {rows} rows" for port, rows in ports.items())
        health = "False ChecksFailing" if name == GATED else "True Healthy"
        assert f"  {name}: {counts}; DataHealthy={health}" in dev.lines, dev.output
    assert f"    failing checks (previous data kept): {GATE_CHECK}" in dev.lines
    assert re.search(r"The example mesh is up, its data shown, \d+s after start", dev.output)

    products = _kubectl_get(example_mesh, kubectl_binary, "dp", "-A")["items"]
    for product in products:
        name = f"{product['metadata']['namespace']}/{product['metadata']['name']}"
        status = product["status"]
        rows = {p["name"]: p["health"]["rows"] for p in status["outputPorts"]}
        assert rows == PUBLISHED_ROWS[name], name
        healthy = next(c for c in status["conditions"] if c["type"] == "DataHealthy")
        if name == GATED:
            assert (healthy["status"], healthy["reason"]) == ("False", "ChecksFailing")
            assert (
                GATE_CHECK in healthy["message"] and "previous data is kept" in healthy["message"]
            )
            (run,) = [p["lastRun"] for p in status["pipelines"]]
            assert (run["result"], run["checks"]["failedNames"]) == ("Failed", [GATE_CHECK])
        else:
            assert (healthy["status"], healthy["reason"]) == ("True", "Healthy"), healthy
            assert all(p["lastRun"]["result"] == "Succeeded" for p in status["pipelines"])
    # Nothing was published for the gated product: its table is as before (empty).
    postgres = local_postgres(example_mesh.directory)
    endpoint = next(
        p["status"]["outputPorts"][0]["endpoint"]
        for p in products
        if p["metadata"]["namespace"] == "finance"
    )
    counted = superuser_sql(
        postgres,
        sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(endpoint["schema"]), sql.Identifier(endpoint["table"])
        ),
    )
    assert counted == [(0,)]


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url) as response:  # noqa: S310 - the URL dev printed
        assert response.headers["Content-Type"].startswith("application/json")
        return json.loads(response.read())


def test_dev_prints_the_catalog_url_and_its_api_lists_the_example_mesh(
    example_mesh: ExampleMesh,
) -> None:
    base = example_mesh.catalog_url.rstrip("/")
    listed = _get_json(f"{base}/api/v1/dataproducts")
    assert {f"{p['namespace']}/{p['name']}" for p in listed["items"]} == EXAMPLE_PRODUCTS
    # dev ran every pipeline once: healthy products, and the one whose gate failed on purpose
    health = {
        f"{p['namespace']}/{p['name']}": (p["health"], p["healthReason"]) for p in listed["items"]
    }
    others = EXAMPLE_PRODUCTS - {GATED}
    assert {name: health[name] for name in others} == dict.fromkeys(others, ("healthy", "Healthy"))
    assert health[GATED][0] == "unhealthy", health
    revenue = _get_json(f"{base}/api/v1/dataproducts/{GATED}")
    (port,) = revenue["ports"]
    assert (port["health"]["checks"], port["health"]["failedChecks"]) == ("Failing", [GATE_CHECK])
    assert port["health"]["rows"] == 0  # nothing published: the previous data (none) kept
    (pipeline,) = revenue["pipelines"]
    assert (pipeline["lastRunStatus"], pipeline["rowsWritten"]) == ("Failed", 0)
    assert GATE_CHECK in pipeline["checks"] and GATE_CHECK in pipeline["message"]
    orders = _get_json(f"{base}/api/v1/dataproducts/sales/orders")
    # The ports as the operator's status reports them: tables in the default store, no claims.
    assert [(p["name"], p["phase"], p["claimName"]) for p in orders["ports"]] == [
        ("orders-v1", "Placed", None),
        ("daily-revenue", "Placed", None),
    ]
    assert [u["label"] for u in orders["upstream"] if u["kind"] == "product"] == ["customers"]
    assert {d["label"] for d in orders["downstream"]} == {"revenue", "customer-segments"}
    domains = _get_json(f"{base}/api/v1/domains")
    assert {d["name"]: d["products"] for d in domains["items"]} == {
        "crm": 1, "finance": 1, "marketing": 1, "sales": 1,
    }  # fmt: skip
    sales = _get_json(f"{base}/api/v1/domains/sales")
    assert any(q["resource"] == "count/dataproducts.datamesh.dev" for q in sales["quota"]), sales
    lineage = _get_json(f"{base}/api/v1/lineage")
    product_nodes = {n["id"] for n in lineage["nodes"] if n["kind"] == "product"}
    assert product_nodes == {f"product:{p}" for p in EXAMPLE_PRODUCTS}
    try:
        urllib.request.urlopen(f"{base}/api/v1/dataproducts/sales/nope")  # noqa: S310
    except urllib.error.HTTPError as error:
        assert error.code == 404
        assert json.loads(error.read())["error"]["reason"] == "NotFound"
    else:
        raise AssertionError("an unknown product must be 404")


def test_dev_prints_the_prometheus_url_where_the_operator_is_scraped_and_rules_loaded(
    example_mesh: ExampleMesh,
) -> None:
    dev = example_mesh.dev
    page = dev.wait_for_line(r"^Prometheus .*: (http://127\.0\.0\.1:\d+\S+)$", timeout=1)[1]
    assert page.endswith(ALERTS_PAGE)
    base = page.removesuffix(ALERTS_PAGE)
    products = [
        DataProduct.from_object(d)
        for path in EXAMPLES.glob("*.yaml")
        for d in example_documents(path.name, EXAMPLES)
        if d["kind"] == "DataProduct"
    ]
    expected = {group["name"] for group in build_rule_file(products)["groups"]}
    assert "dataproduct-sales-orders" in expected
    assert "dataproduct-marketing-customer-segments" not in expected  # its alerts are Disabled
    wait_for(
        lambda: (
            {g["name"] for g in _get_json(f"{base}/api/v1/rules")["data"]["groups"]} == expected
        ),
        timeout=30,
        description="every example's rules loaded",
    )

    def operator_up() -> bool:
        targets = _get_json(f"{base}/api/v1/targets")["data"]["activeTargets"]
        return [t["health"] for t in targets] == ["up"]

    wait_for(operator_up, timeout=30, description="the operator's metrics scraped")
    with urllib.request.urlopen(page) as response:  # noqa: S310 - the URL dev printed
        assert "DataProductStale" in response.read().decode()


def test_prometheus_fires_the_checks_failing_alert_of_the_gated_example_only(
    example_mesh: ExampleMesh,
) -> None:
    page = example_mesh.dev.wait_for_line(r"^Prometheus .*: (http://127\.0\.0\.1:\d+\S+)$", 1)[1]
    base = page.removesuffix(ALERTS_PAGE)

    def firing() -> set[tuple[str, str]] | None:
        alerts = _get_json(f"{base}/api/v1/alerts")["data"]["alerts"]
        found = {
            (a["labels"]["alertname"], f"{a['labels']['namespace']}/{a['labels']['dataproduct']}")
            for a in alerts
            if a["state"] == "firing"
        }
        return found if ("DataProductChecksFailing", GATED) in found else None

    found = wait_for(firing, timeout=60, description=f"DataProductChecksFailing for {GATED}")
    assert {product for _, product in found} == {GATED}, found


def test_catalog_in_a_browser_searches_filters_opens_a_product_and_follows_lineage(
    example_mesh: ExampleMesh, tmp_path: Path
) -> None:
    base = example_mesh.catalog_url.rstrip("/")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    also = Path(os.environ["DPO_SCREENSHOTS"]) if os.environ.get("DPO_SCREENSHOTS") else None

    def screenshot(page: Page, name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        if also is not None:
            also.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(also / f"catalog-{name}.png"), full_page=False)

    with browser_page() as (page, problems):
        page.goto(f"{base}/")
        rows = page.locator("tr.product-row")
        assert rows.count() == len(EXAMPLE_PRODUCTS)
        screenshot(page, "index")

        page.fill("input[type=search]", "segments")
        page.press("input[type=search]", "Enter")
        page.wait_for_url("**/?q=segments*")
        assert rows.evaluate_all("rows => rows.map(r => r.dataset.product)") == [
            "marketing/customer-segments"
        ]

        page.goto(f"{base}/")
        with page.expect_navigation():
            page.select_option("select[name=domain]", "sales")  # the script submits at once
        assert rows.evaluate_all("rows => rows.map(r => r.dataset.product)") == ["sales/orders"]

        page.click("a.product-link:has-text('orders')")
        page.wait_for_url("**/dataproducts/sales/orders")
        assert page.locator("h1").inner_text().startswith("orders")
        email = page.locator("table.schema tr.pii", has_text="email")
        assert email.locator(".badge.pii").inner_text() == "PII"
        assert page.locator(".condition.ok").count() >= 1
        screenshot(page, "product")

        page.click("a.lineage-link")
        page.wait_for_url("**/lineage?focus=product*")
        revenue = page.locator('[data-node-id="product:finance/revenue"] a')
        revenue.click()
        page.wait_for_url("**/dataproducts/finance/revenue")
        assert page.locator("h1").inner_text().startswith("revenue")

        page.goto(f"{base}/dataproducts/sales/orders")
        copy = page.locator("button.copy").first
        copy.click()
        expect(copy).to_have_text(re.compile("Copied|Selected"))  # Selected: no clipboard

        page.goto(f"{base}/lineage")
        assert page.locator("svg [data-node-id]").count() >= len(EXAMPLE_PRODUCTS)
        screenshot(page, "lineage")
        with page.expect_download() as download:
            page.click("a[download]")
        saved = shots / "lineage.svg"
        download.value.save_as(saved)
        assert saved.read_text().startswith("<svg")
        page.goto(f"{base}/domains/sales")
        screenshot(page, "domain")

    assert problems.errors == []
    assert {p.name for p in shots.iterdir()} == {
        "index.png", "product.png", "lineage.png", "domain.png", "lineage.svg",
    }  # fmt: skip


def test_catalog_works_without_javascript(example_mesh: ExampleMesh) -> None:
    base = example_mesh.catalog_url.rstrip("/")
    with browser_page(java_script=False) as (page, problems):
        page.goto(f"{base}/")
        page.fill("input[type=search]", "customer")
        page.select_option("select[name=lifecycle]", "Production")  # nothing submits by itself
        assert page.url.rstrip("/") == base
        with page.expect_navigation():
            page.click("form.search button[type=submit]")
        rows = page.locator("tr.product-row")
        assert rows.evaluate_all("rows => rows.map(r => r.dataset.product)") == [
            "crm/customers", "sales/orders",
        ]  # fmt: skip
        page.click("a.product-link:has-text('customers')")
        page.wait_for_url("**/dataproducts/crm/customers")
        assert page.locator("button.copy").count() == 0  # the script's, absent without it
        assert page.locator(".snippet pre").count() >= 3
        page.click("a.lineage-link")
        page.wait_for_url("**/lineage?focus=*")
        assert page.locator('svg [data-node-id="product:crm/customers"]').count() == 1
    assert problems.errors == []


def _kubectl_get(mesh: ExampleMesh, kubectl_binary: Path, *args: str) -> Any:
    """``kubectl get ARGS -o json`` on the mesh, parsed."""
    return json.loads(
        run_kubectl(kubectl_binary, mesh.kubeconfig, "get", *args, "-o", "json").stdout
    )


def test_dev_registers_the_local_postgres_as_the_default_store_with_working_credentials(
    example_mesh: ExampleMesh, kubectl_binary: Path
) -> None:
    kubeconfig = example_mesh.kubeconfig
    store = _kubectl_get(example_mesh, kubectl_binary, "dst", "local-postgres")
    assert store["metadata"]["annotations"]["datamesh.dev/is-default-store"] == "true"
    connection = store["spec"]["postgres"]
    postgres = local_postgres(example_mesh.directory)
    # The real node runs in dev: the store names its gateway, which its pods reach.
    assert postgres.pod_host is not None
    assert (connection["host"], connection["port"]) == (postgres.pod_host, postgres.port)
    assert connection["database"] == "datamesh"
    reference = store["spec"]["credentialsSecretRef"]
    assert reference["namespace"] == "dataproduct-system"  # the operator's namespace in dev
    secret = json.loads(
        run_kubectl(
            kubectl_binary, kubeconfig, "-n", reference["namespace"],
            "get", "secret", reference["name"], "-o", "json",
        ).stdout
    )  # fmt: skip
    username, password = (
        base64.b64decode(secret["data"][key]).decode() for key in ("username", "password")
    )
    rows = login_sql(
        postgres, username, password, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
    )
    assert rows == [(False,)]
    assert password not in example_mesh.dev.output


def _printed_command(dev: DevProcess, statement: str) -> str:
    """The psql command dev printed that runs ``statement`` (SELECT or INSERT)."""
    line = dev.wait_for_line(rf"^  (env \$\(kubectl .* -c '{statement} .*')$", timeout=1)
    return line[1]


def _run_printed(command: str, kubectl_binary: Path) -> subprocess.CompletedProcess[str]:
    """Run a printed command as a user would paste it into a shell, kubectl on the PATH."""
    path = f"{kubectl_binary.parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["/bin/sh", "-c", command],
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_dev_puts_the_example_ports_in_postgres_and_its_printed_reader_reads_but_cannot_write(
    example_mesh: ExampleMesh, kubectl_binary: Path
) -> None:
    kubeconfig = example_mesh.kubeconfig
    products = _kubectl_get(example_mesh, kubectl_binary, "dp", "-A")["items"]
    assert {f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in products} == (
        EXAMPLE_PRODUCTS
    )
    for product in products:
        conditions = {c["type"]: c for c in product["status"]["conditions"]}
        if f"{product['metadata']['namespace']}/{product['metadata']['name']}" == GATED:
            # Its last run failed (the gate, on purpose): provisioned all the same (Ready,
            # PipelinesReady True); the failed check is DataHealthy's, the old data kept
            said = {kind: (c["status"], c["reason"]) for kind, c in conditions.items()}
            assert said["Ready"] == ("True", "Reconciled"), conditions["Ready"]
            assert said["PipelinesReady"] == ("True", "PipelinesScheduled")
            assert (*said["DataHealthy"], conditions["DataHealthy"]["message"]) == (
                "False",
                "ChecksFailing",
                f"port revenue-v1: checks failing ({GATE_CHECK}); the previous data is kept",
            )
        else:
            assert conditions["Ready"]["status"] == "True", conditions["Ready"]
        assert conditions["InputsReady"]["status"] == "True", conditions["InputsReady"]
        ports = product["status"]["outputPorts"]
        assert [p["name"] for p in ports] == [p["name"] for p in product["spec"]["outputPorts"]]
        assert all(p["endpoint"]["store"] == "local-postgres" for p in ports), ports
        assert not any(p.get("claimName") for p in ports), ports
    # The example consumers read across domains: each input granted by its upstream.
    assert {
        c["reason"]
        for p in products
        for c in p["status"]["conditions"]
        if c["type"] == "InputsReady"
        and any("dataProduct" in source for source in p["spec"].get("inputs", []))
    } == {"InputsAvailable"}

    ports = sum(len(p["spec"]["outputPorts"]) for p in products)

    def local_store_counting_every_port() -> dict[str, str] | None:
        stores = run_kubectl(kubectl_binary, kubeconfig, "get", "dst").stdout.splitlines()
        header = stores[0].split()
        (local,) = [dict(zip(header, row.split(), strict=True)) for row in stores[1:]]
        return local if local["PORTS"] == str(ports) else None

    local = wait_for(
        local_store_counting_every_port,
        timeout=10,
        description=f"kubectl get dst to count {ports} ports",
    )
    assert (local["NAME"], local["READY"]) == ("local-postgres", "True"), local
    assert "get dst" in example_mesh.dev.output

    read = _run_printed(_printed_command(example_mesh.dev, "SELECT"), kubectl_binary)
    assert read.returncode == 0, read.stderr
    assert read.stdout.splitlines()[0].split("|")[0].strip() == "day", read.stdout
    assert "(10 rows)" in read.stdout  # LIMIT 10 of the 28 days dev's run published
    write = _run_printed(_printed_command(example_mesh.dev, "INSERT"), kubectl_binary)
    assert write.returncode != 0, write.stdout
    assert "permission denied for table daily_revenue" in write.stderr, write.stderr


def test_dev_prints_an_access_request_demo_that_works_as_printed(
    example_mesh: ExampleMesh, kubectl_binary: Path
) -> None:
    dev = example_mesh.dev
    ask = dev.wait_for_line(r"^  (\S+ access request .*)$", timeout=1)[1]
    approve = dev.wait_for_line(r"^  (\S+ access approve .*)$", timeout=1)[1]
    demo_query = r"^  (env \$\(kubectl .*campaign-analyst.* -c 'SELECT .*')$"
    query = dev.wait_for_line(demo_query, timeout=1)[1]
    history = dev.wait_for_line(r"^  (\S+ access history .*)$", timeout=1)[1]
    # The new login cannot read before the request is approved: it does not exist yet.
    assert _run_printed(query, kubectl_binary).returncode != 0
    asked = _run_printed(ask, kubectl_binary)
    assert asked.returncode == 0, asked.stdout + asked.stderr
    # The owners answer once they see the request pending on their product (sales' team may
    # not read marketing's namespace): a moment after it is made.
    answers: list[subprocess.CompletedProcess[str]] = []

    def approved_by_sales() -> bool:
        answers.append(_run_printed(approve, kubectl_binary))
        return answers[-1].returncode == 0

    wait_for(approved_by_sales, timeout=15, description="the printed approval to work")
    approved = time.monotonic()

    def read_works() -> subprocess.CompletedProcess[str] | None:
        result = _run_printed(query, kubectl_binary)
        return result if result.returncode == 0 else None

    read = wait_for(read_works, timeout=15, description="the printed query to work")
    assert "(10 rows)" in read.stdout, read.stdout
    assert time.monotonic() - approved < 15
    trail = _run_printed(history, kubectl_binary)
    assert trail.returncode == 0, trail.stderr
    assert "Approved" in trail.stdout and "campaign-analyst" in trail.stdout, trail.stdout


def test_dev_ctrl_c_stops_everything(example_mesh: ExampleMesh) -> None:
    running = {c.name: c for c in controlplane.running_components(example_mesh.directory)}
    assert {"dataproduct-operator", "kube-apiserver", "etcd", "kwok"} <= set(running)
    dev = example_mesh.dev
    assert dev.interrupt() == 130
    assert "Stopped dataproduct-operator" in dev.output
    assert controlplane.running_components(example_mesh.directory) == []
    assert not any(is_running(component) for component in running.values())


def test_dev_reports_an_operator_that_cannot_start_and_leaves_nothing_running(
    dev_directory: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        dev = DevProcess(
            dev_directory,
            f"--examples={EXAMPLES}",
            f"--metrics-port={port}",
            f"--prometheus-port={free_port()}",  # started before the operator: stopped with it
        )
        try:
            code = dev.wait(timeout=STARTUP_SECONDS)
        finally:
            dev.close()
    assert code == 1, dev.output
    assert f"Cannot serve metrics on port {port}" in dev.output
    assert "The operator exited with code" in dev.output
    assert controlplane.running_components(dev_directory) == []
