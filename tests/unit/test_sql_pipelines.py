"""sql pipelines (api/dataproduct.py, specs/runner.py): the API refuses what cannot run, and a
sql pipeline becomes a run of the built-in runner with its run spec, once its output port is a
table and the inputs it reads are ready; never a credential in the spec."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from dataproduct_operator.api.dataproduct import DataProduct, PortEndpoint
from dataproduct_operator.constants import ANNOTATION_RUN, RUNNER_REPOSITORY
from dataproduct_operator.runner.spec import RunSpec
from dataproduct_operator.specs.dataproduct import (
    ANYWHERE,
    InputWiring,
    StoreWiring,
    build_children,
)
from dataproduct_operator.specs.placement import PodPlacement
from dataproduct_operator.specs.runner import RUN_SPEC_VARIABLE, duration_seconds


def product(**pipeline: Any) -> dict[str, Any]:
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": "revenue", "namespace": "finance", "uid": "u-1",
                     "annotations": {ANNOTATION_RUN: "build"}},
        "spec": {
            "domain": "finance",
            "owner": {"team": "finance-data"},
            "description": "Revenue per day.",
            "inputs": [{"name": "orders", "dataProduct": {
                "namespace": "sales", "name": "orders", "port": "orders-v1"}}],
            "outputPorts": [{
                "name": "daily",
                "schema": [
                    {"name": "day", "type": "date", "required": True, "unique": True},
                    {"name": "revenue", "type": "decimal"},
                    {"name": "updated_at", "type": "timestamp"},
                ],
                "slo": {"freshness": "1d", "freshnessColumn": "updated_at"},
                "checks": [
                    {"name": "positive", "sql": "SELECT count(*) FROM daily WHERE revenue < 0"},
                    {"name": "enough", "severity": "Warning", "minRows": 1},
                    {"name": "fresh", "freshness": {"column": "updated_at", "maxAge": "2d"}},
                ],
            }],
            "pipelines": [{"name": "build", **pipeline}],
        },
    }  # fmt: skip


SQL = {
    "sql": "SELECT day, sum(amount) AS revenue, now() AS updated_at FROM orders GROUP BY day",
    "output": "daily",
    "mode": "Merge",
    "sources": ["orders"],
}
PLACED = StoreWiring(
    store_ports=frozenset({"daily"}),
    endpoints={
        "daily": PortEndpoint.model_validate(
            {
                "store": "pg",
                "host": "db",
                "port": 5432,
                "database": "mesh",
                "schema": "finance__revenue",
                "table": "daily",
            }
        )
    },
    writer_secret="revenue-store",
    inputs=(InputWiring("orders", "sales__orders.orders_v1", "dm-store-pg-revenue"),),
)


@pytest.mark.parametrize(
    ("pipeline", "says"),
    [
        ({"image": "ghcr.io/a/b:1", **SQL}, "set exactly one of image or sql"),
        ({}, "set exactly one of image or sql"),
        ({"sql": "SELECT 1"}, "names the output port it writes in output"),
        ({**SQL, "sql": "DELETE FROM orders"}, "one query that reads"),
        ({"image": "ghcr.io/a/b:1", "output": "daily"}, "output and sources are for sql"),
        ({**SQL, "args": ["--full"]}, "command and args are for image pipelines"),
        ({**SQL, "output": "weekly"}, "output weekly is not one of spec.outputPorts"),
        ({**SQL, "sources": ["ledger"]}, "sources ledger are not inputs of spec.inputs"),
    ],
)
def test_what_cannot_run_is_refused_saying_what_to_change(
    pipeline: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        DataProduct.from_object(product(**pipeline))


def test_a_check_of_two_kinds_is_refused() -> None:
    document = product(**SQL)
    document["spec"]["outputPorts"][0]["checks"] = [{"name": "c", "minRows": 1, "sql": "x"}]
    with pytest.raises(ValidationError, match="set exactly one of sql, minRows"):
        DataProduct.from_object(document)


def _run_job(wiring: StoreWiring, placement: PodPlacement = ANYWHERE) -> dict[str, Any]:
    (job,) = [
        child for child in build_children(
            DataProduct.from_object(product(**SQL)), wiring=wiring, placement=placement)
        if child["kind"] == "Job"
    ]  # fmt: skip
    return job


def test_a_placed_sql_pipeline_runs_the_runner_with_its_spec_and_no_credential() -> None:
    container = _run_job(PLACED)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith(f"{RUNNER_REPOSITORY}:")
    assert "command" not in container and "args" not in container  # the image's entrypoint
    env = {item["name"]: item.get("value") for item in container["env"]}
    spec = json.loads(env[RUN_SPEC_VARIABLE])
    assert spec["sql"] == SQL["sql"] and spec["mode"] == "Merge"
    assert spec["output"] == {
        "port": "daily",
        "table": {"schema": "finance__revenue", "name": "daily"},
        "columns": [
            {"name": "day", "type": "date", "required": True, "unique": True},
            {"name": "revenue", "type": "decimal", "required": False, "unique": False},
            {"name": "updated_at", "type": "timestamp", "required": False, "unique": False},
        ],
        "freshnessColumn": "updated_at",
    }
    assert spec["sources"] == [{
        "name": "orders", "kind": "product",
        "table": {"schema": "sales__orders", "name": "orders_v1"},
        "envPrefix": "INPUT_ORDERS_"}]  # fmt: skip
    assert spec["checks"] == [
        {"name": "positive", "severity": "Error",
         "sql": "SELECT count(*) FROM daily WHERE revenue < 0"},
        {"name": "enough", "severity": "Warning", "minRows": 1},
        {"name": "fresh", "severity": "Error",
         "freshness": {"column": "updated_at", "maxAgeSeconds": 172800}},
    ]  # fmt: skip
    # Logins only from Secrets: the writer's, and the input's reader login, prefixed.
    assert container["envFrom"] == [
        {"secretRef": {"name": "revenue-store"}},
        {"prefix": "INPUT_ORDERS_", "secretRef": {"name": "dm-store-pg-revenue"}},
    ]
    image = "localhost/dataproduct-operator/runner:0.1.0"
    placed = _run_job(PLACED, PodPlacement(runner_image=image))
    assert placed["spec"]["template"]["spec"]["containers"][0]["image"] == image


def test_the_runner_reads_the_run_spec_the_operator_writes() -> None:
    container = _run_job(PLACED)["spec"]["template"]["spec"]["containers"][0]
    (value,) = [item["value"] for item in container["env"] if item["name"] == RUN_SPEC_VARIABLE]
    spec = RunSpec.from_json(value)
    assert (spec.pipeline, spec.sql, spec.mode.value) == ("build", SQL["sql"], "Merge")
    assert [source.name for source in spec.sources] == ["orders"]
    assert [check.name for check in spec.checks] == ["positive", "enough", "fresh"]


def test_no_run_while_the_output_is_not_a_table_or_an_input_is_not_ready() -> None:
    document = DataProduct.from_object(product(**SQL))
    unplaced = StoreWiring(store_ports=frozenset({"daily"}))
    no_inputs = StoreWiring(
        store_ports=PLACED.store_ports, endpoints=PLACED.endpoints, writer_secret="revenue-store"
    )
    for wiring in (unplaced, no_inputs):
        assert [c for c in build_children(document, wiring=wiring) if c["kind"] == "Job"] == []


def test_durations_become_seconds() -> None:
    assert [duration_seconds(d) for d in ("45s", "30m", "24h", "7d", "2w")] == [
        45,
        1800,
        86400,
        604800,
        1209600,
    ]


EXTERNAL = {
    "name": "shop",
    "external": {"type": "postgres", "uri": "postgresql://shop-db.sales:5433/shop",
                 "secretRef": {"name": "revenue-shop-db"}, "table": "public.orders"},
}  # fmt: skip


def _with_external(external: dict[str, Any]) -> dict[str, Any]:
    document = product(**{**SQL, "sources": ["orders", "shop"]})
    document["spec"]["inputs"].append({"name": "shop", "external": external})
    return document


@pytest.mark.parametrize(
    ("external", "says"),
    [
        ({**EXTERNAL["external"], "type": "kafka"}, "table is for a postgres source"),
        ({**EXTERNAL["external"], "uri": "postgresql://reader:pw@shop-db/shop"},
         r"uri postgresql://host\[:port\]/database, without credentials"),
        ({**EXTERNAL["external"], "table": "orders; DROP TABLE x"}, "should match pattern"),
        ({"type": "postgres", "uri": "postgresql://shop-db/shop",
          "secretRef": {"name": "revenue-shop-db"}}, "an external input of type postgres with a "
                                                     "table and a secretRef"),
        ({"type": "postgres", "uri": "postgresql://shop-db/shop", "table": "orders"},
         "an external input of type postgres with a table and a secretRef"),
    ],
)  # fmt: skip
def test_an_external_source_a_sql_pipeline_cannot_read_is_refused(
    external: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        DataProduct.from_object(_with_external(external))


def test_an_external_postgres_source_is_read_with_its_secrets_login_where_its_uri_says() -> None:
    document = DataProduct.from_object(_with_external(EXTERNAL["external"]))
    (job,) = [c for c in build_children(document, wiring=PLACED) if c["kind"] == "Job"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    spec = RunSpec.from_json(env[RUN_SPEC_VARIABLE])
    shop = next(source for source in spec.sources if source.name == "shop")
    assert (shop.kind.value, shop.query, shop.env_prefix) == (
        "postgres",
        'SELECT * FROM "public"."orders"',
        "INPUT_SHOP_",
    )
    assert (env["INPUT_SHOP_PGHOST"], env["INPUT_SHOP_PGPORT"], env["INPUT_SHOP_PGDATABASE"]) == (
        "shop-db.sales", "5433", "shop")  # fmt: skip
    assert {"prefix": "INPUT_SHOP_", "secretRef": {"name": "revenue-shop-db"}} in (
        container["envFrom"]
    )
    # Only the sql pipeline's own sources: the spec holds no login.
    assert "PGPASSWORD" not in env[RUN_SPEC_VARIABLE] and "revenue-shop-db" not in env[
        RUN_SPEC_VARIABLE]  # fmt: skip
