"""The psql commands ``dpo dev`` prints: which consumer's login, which table, no password."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml

from dataproduct_operator.cluster.store_hints import (
    build_access_demo,
    build_read_hints,
    find_access_demo,
    find_granted_read,
    sql_identifier,
)
from tests.helpers import example_product

REPO = Path(__file__).resolve().parents[2]
KUBECONFIG = Path("/tmp/dev/kubeconfig")  # noqa: S108 - a path printed, never opened
PSQL = Path("/usr/lib/postgresql/15/bin/psql")


def _placed(file_name: str, *, inputs_ready: bool = True) -> dict[str, Any]:
    """An example product as the operator reports it in ``dpo dev``: its ports tables in
    local-postgres."""
    product = example_product(file_name)
    namespace, name = product["metadata"]["namespace"], product["metadata"]["name"]
    schema = f"{namespace}__{name}".replace("-", "_")
    product["status"] = {
        "conditions": [{"type": "InputsReady", "status": "True" if inputs_ready else "False"}],
        "outputPorts": [
            {
                "name": port["name"],
                "phase": "Placed",
                "endpoint": {
                    "store": "local-postgres",
                    "host": "127.0.0.1",
                    "port": 5432,
                    "database": "datamesh",
                    "schema": schema,
                    "table": port["name"].replace("-", "_"),
                },
            }
            for port in product["spec"]["outputPorts"]
        ],
    }
    return product


EXAMPLES = [
    "sales-orders.yaml",
    "crm-customers.yaml",
    "marketing-customer-segments.yaml",
    "finance-revenue.yaml",
]


def test_finance_reads_the_daily_revenue_of_sales_orders_with_its_reader_secret() -> None:
    read = find_granted_read([_placed(name) for name in EXAMPLES])
    assert read is not None
    assert (read.consumer_namespace, read.consumer) == ("finance", "revenue")
    assert (read.upstream_namespace, read.upstream, read.port) == (
        "sales",
        "orders",
        "daily-revenue",
    )
    assert read.secret == "dm-store-local-postgres-revenue"
    assert read.qualified_table == "sales__orders.daily_revenue"


def test_a_consumer_whose_inputs_are_not_ready_is_not_shown() -> None:
    products = [_placed(name) for name in EXAMPLES[:3]]
    products.append(_placed("finance-revenue.yaml", inputs_ready=False))
    read = find_granted_read(products)
    assert read is not None
    assert (read.consumer_namespace, read.consumer) == ("marketing", "customer-segments")


def test_an_upstream_port_on_a_volume_gives_no_command() -> None:
    upstream = _placed("sales-orders.yaml")
    for port in upstream["status"]["outputPorts"]:
        del port["endpoint"]
    consumer = _placed("finance-revenue.yaml")
    assert find_granted_read([upstream, consumer]) is None


def test_the_commands_read_the_secret_into_psql_and_select_then_insert() -> None:
    read = find_granted_read([_placed(name) for name in EXAMPLES])
    assert read is not None
    lines = build_read_hints(read, KUBECONFIG, PSQL)
    select, insert = (line.strip() for line in lines if line.startswith("  env $("))
    for command, statement in [
        (select, "SELECT * FROM sales__orders.daily_revenue LIMIT 10"),
        (insert, "INSERT INTO sales__orders.daily_revenue DEFAULT VALUES"),
    ]:
        substitution, _, program = command.removeprefix("env $(").partition(") ")
        assert shlex.split(program) == [str(PSQL), "-c", statement]
        kubectl = shlex.split(substitution)
        assert kubectl[:7] == [
            "kubectl", f"--kubeconfig={KUBECONFIG}", "-n", "finance",
            "get", "secret", "dm-store-local-postgres-revenue",
        ]  # fmt: skip
        assert kubectl[7:9] == ["-o", kubectl[8]] and kubectl[8].startswith("go-template=")
        assert "base64decode" in kubectl[8]
    assert "permission denied" in lines[2]


def test_identifiers_postgres_would_fold_or_refuse_are_quoted() -> None:
    assert sql_identifier("sales__orders") == "sales__orders"
    assert sql_identifier("Orders") == '"Orders"'
    assert sql_identifier('a"b') == '"a""b"'
    assert sql_identifier("1st") == '"1st"'


def _domains() -> list[dict[str, Any]]:
    return [
        d
        for d in yaml.safe_load_all((REPO / "examples" / "domains.yaml").read_text())
        if d and d.get("kind") == "DataDomain"
    ]


def test_the_access_demo_asks_as_marketing_for_a_sales_port_it_does_not_read_yet() -> None:
    # marketing's customer-segments already reads orders-v1 (an input): the demo asks for
    # another port
    products = [_placed(name) for name in EXAMPLES]
    demo = find_access_demo(products, _domains())
    assert demo is not None
    read = demo.read
    assert (read.consumer_namespace, read.consumer, demo.consumer_team) == (
        "marketing",
        "campaign-analyst",
        "growth",
    )
    assert (read.upstream_namespace, read.upstream, read.port, demo.producer_team) == (
        "sales",
        "orders",
        "daily-revenue",
        "sales-data",
    )
    lines = build_access_demo(demo, KUBECONFIG, Path("/venv/bin/dpo"), PSQL)
    ask, approve = shlex.split(lines[1]), shlex.split(lines[2])
    assert ask[:4] == ["/venv/bin/dpo", "access", "request", "sales/orders"]
    assert ask[ask.index("--for") + 1] == "serviceaccount:marketing/campaign-analyst"
    assert ask[ask.index("--as-group") + 1] == "growth"
    assert approve[3:6] == ["marketing/campaign-analyst-orders", "--product", "sales/orders"]
    assert approve[approve.index("--as-group") + 1] == "sales-data"
    assert "dm-store-local-postgres-campaign-analyst" in lines[4]
    assert "SELECT * FROM sales__orders.daily_revenue LIMIT 10" in lines[4]
    assert lines[5].endswith(f"access history sales/orders --kubeconfig={KUBECONFIG}")


def test_no_access_demo_without_a_second_domain_or_with_requests_disabled() -> None:
    products = [_placed("sales-orders.yaml")]
    sales_only = [d for d in _domains() if d["metadata"]["name"] == "sales"]
    assert find_access_demo(products, sales_only) is None
    products[0]["spec"]["access"]["requests"] = {"enabled": False}
    assert find_access_demo(products, _domains()) is None
