"""`make dev`'s data set and rewrites (cluster/dev_flow.py): the examples' external sources
seeded the same at every start, pointed at the local server, their Secrets, the run order, and
the summary lines."""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.cluster import images
from dataproduct_operator.cluster.dev import (
    DevSettings,
    load_manifests,
    operator_command,
    run_examples,
)
from dataproduct_operator.cluster.dev_flow import (
    SOURCES_READER,
    build_dataset,
    build_source_secrets,
    dependency_order,
    describe_health,
    describe_run,
    point_sources_at,
)
from tests.helpers import EXAMPLES

MANIFESTS = load_manifests(EXAMPLES)
PRODUCTS = [m for m in MANIFESTS if m["kind"] == "DataProduct"]


def _tables() -> dict[str, Any]:
    return {f"{t.database}.{t.table}": t for t in build_dataset()}


def test_the_data_set_is_the_same_at_every_start_and_a_few_hundred_rows() -> None:
    assert build_dataset() == build_dataset()
    assert build_dataset(seed=1) != build_dataset()
    sizes = {name: len(table.rows) for name, table in _tables().items()}
    assert sizes == {"crm.customers": 240, "shop.orders": 600, "gl.revenue_postings": 57}


def test_the_ledger_differs_from_the_shop_on_one_day_only_the_refund() -> None:
    tables = _tables()
    shop: dict[date, int] = defaultdict(int)
    for _, _, _, amount, placed in tables["shop.orders"].rows:
        shop[placed.date()] += amount
    ledger: dict[date, int] = defaultdict(int)
    for day, _, amount, _ in tables["gl.revenue_postings"].rows:
        ledger[day] += amount
    differing = {day: ledger[day] - shop[day] for day in shop.keys() | ledger.keys()}
    assert {day: d for day, d in differing.items() if d} == {date(2026, 11, 21): -12_500}


def test_every_example_external_postgres_source_is_seeded() -> None:
    tables = {(t.database, t.table) for t in build_dataset()}
    read = {
        (source.uri.rsplit("/", 1)[1], source.table.split(".")[-1])
        for product in map(DataProduct.from_object, PRODUCTS)
        for source in (i.external for i in product.spec.inputs)
        if source is not None and source.type == "postgres"
    }
    assert read == tables


def test_sources_point_at_the_local_server_keeping_database_table_and_secret() -> None:
    dataset = build_dataset()
    pointed = point_sources_at(MANIFESTS, dataset, "10.89.7.1", 54321)
    sources = {
        (p["metadata"]["namespace"], i["name"]): i["external"]
        for p in pointed
        if p["kind"] == "DataProduct"
        for i in p["spec"].get("inputs", [])
        if "external" in i
    }
    assert {key: s["uri"] for key, s in sources.items()} == {
        ("crm", "crm-db"): "postgresql://10.89.7.1:54321/crm",
        ("crm", "support-tickets"): "s3://acme-support/tickets/",  # not seeded: as written
        ("sales", "raw"): "postgresql://10.89.7.1:54321/shop",
        ("finance", "ledger"): "postgresql://10.89.7.1:54321/gl",
    }
    assert sources[("finance", "ledger")]["table"] == "public.revenue_postings"
    assert sources[("finance", "ledger")]["secretRef"] == {"name": "revenue-ledger"}
    # The examples themselves are left as a real team writes them.
    assert "ledger-db.finance:5432" in str(MANIFESTS)
    assert pointed != MANIFESTS


def test_the_read_only_login_goes_into_the_secrets_the_examples_name() -> None:
    secrets = build_source_secrets(MANIFESTS, build_dataset(), "s3cret")
    assert [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in secrets] == [
        ("crm", "customers-crm-db"),
        ("finance", "revenue-ledger"),
        ("sales", "orders-shop-db"),
    ]
    for secret in secrets:
        data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        assert data == {"PGUSER": SOURCES_READER, "PGPASSWORD": "s3cret"}


def test_runs_go_upstream_first() -> None:
    shuffled = sorted(PRODUCTS, key=lambda p: p["metadata"]["name"], reverse=True)
    order = [p["metadata"]["namespace"] for p in dependency_order(shuffled)]
    assert order.index("crm") < order.index("sales") < order.index("finance")
    assert order.index("sales") < order.index("marketing")


def test_a_run_and_a_gated_product_are_described_with_rows_health_and_the_check() -> None:
    assert describe_run({"result": "Succeeded", "rowsWritten": 28}) == "Succeeded, 28 rows written"
    failed = {"result": "Failed", "message": "check(s) failed: reconciled-with-sales"}
    assert describe_run(failed) == "Failed: check(s) failed: reconciled-with-sales"
    product = {
        "metadata": {"namespace": "finance", "name": "revenue"},
        "status": {
            "outputPorts": [{"name": "revenue-v1", "health": {"rows": 0}}],
            "conditions": [{"type": "DataHealthy", "status": "False", "reason": "ChecksFailing"}],
            "pipelines": [
                {
                    "name": "reconcile",
                    "lastRun": {"checks": {"failedNames": ["reconciled-with-sales"]}},
                }
            ],
        },
    }
    assert describe_health(product) == [
        "  finance/revenue: revenue-v1 0 rows; DataHealthy=False ChecksFailing",
        "    failing checks (previous data kept): reconciled-with-sales",
    ]


def test_dev_places_pipelines_on_the_real_node_only_when_it_runs(tmp_path: Path) -> None:
    settings = DevSettings(directory=tmp_path, examples=EXAMPLES)
    placed = operator_command(tmp_path / "kubeconfig", settings, real_node=True)
    assert {
        "--pipeline-node-selector=datamesh.dev/node-type=real",
        "--pipeline-toleration=datamesh.dev/node-type=real:NoSchedule",
        f"--runner-image={images.image_spec('runner').ref}",
    } <= set(placed)
    kwok = operator_command(tmp_path / "kubeconfig", settings)
    assert not [flag for flag in kwok if flag.startswith(("--pipeline-", "--runner-image"))]


def test_without_the_real_node_dev_says_the_pipelines_are_not_run_and_why() -> None:
    out = io.StringIO()

    def no_cluster() -> None:
        raise AssertionError("nothing may be asked of the cluster")

    run_examples(None, MANIFESTS, real_node=False, out=out, check_alive=no_cluster)  # type: ignore[arg-type]
    assert out.getvalue() == (
        "Pipelines not run: no real node in this cluster (--node kwok, or it cannot run here: "
        "see above), and kwok's simulated node runs no pod; the products stay "
        "DataHealthy=Unknown NoDataYet\n"
    )
