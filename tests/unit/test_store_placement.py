"""Where ports live (default store, named store, volume), the pipelines' store environment and
InputsReady, from the pure builders."""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.conditions import Reason
from dataproduct_operator.api.dataproduct import DataProduct, PortEndpoint
from dataproduct_operator.api.datastore import DataStore
from dataproduct_operator.api.naming import reader_secret_name
from dataproduct_operator.reconcile.dataproduct import wire_inputs
from dataproduct_operator.specs.dataproduct import InputWiring, StoreWiring, build_children
from dataproduct_operator.status.placement import choose_store
from dataproduct_operator.status.stores import InputCheck, check_inputs, inputs_aspect


def _store(name: str, *, default: bool = False, domains: list[str] | None = None) -> DataStore:
    annotations = {"datamesh.dev/is-default-store": "true"} if default else {}
    return DataStore.from_object(
        {
            "metadata": {"name": name, "annotations": annotations},
            "spec": {
                "type": "Postgres",
                "postgres": {"host": "pg", "database": "mesh"},
                "credentialsSecretRef": {"namespace": "datamesh-system", "name": "pg-admin"},
                "allowedDomains": domains or [],
            },
        }
    )


def _product(ports: list[dict[str, Any]], **spec: Any) -> DataProduct:
    return DataProduct.from_object(
        {
            "metadata": {"name": "revenue", "namespace": "finance", "uid": "u1"},
            "spec": {
                "domain": "finance",
                "owner": {"team": "finance-data"},
                "description": "Revenue per day.",
                "outputPorts": ports,
                **spec,
            },
        }
    )


def test_a_port_naming_neither_goes_to_the_default_store_and_a_volume_port_stays():
    product = _product([{"name": "a"}, {"name": "b", "storage": {"size": "2Gi"}}])
    stores = {"pg": _store("pg", default=True), "other": _store("other")}
    choice = choose_store(product, stores)
    assert choice.ok and choice.store is not None and choice.store.name == "pg"
    assert choice.store_ports == ("a",)


def test_without_a_default_store_every_port_naming_none_is_a_volume():
    choice = choose_store(_product([{"name": "a"}]), {"pg": _store("pg")})
    assert choice.ok and choice.store is None and choice.store_ports == ()


def test_a_missing_store_and_a_domain_the_store_refuses_are_reported_with_what_to_do():
    missing = choose_store(_product([{"name": "a", "store": {"name": "nope"}}]), {})
    assert missing.reason == Reason.STORE_NOT_FOUND
    assert "DataStore nope does not exist" in missing.message
    refused = choose_store(
        _product([{"name": "a", "store": {"name": "pg"}}]), {"pg": _store("pg", domains=["sales"])}
    )
    assert refused.reason == Reason.STORE_NOT_ALLOWED
    assert "spec.allowedDomains" in refused.message and refused.store_ports == ("a",)


def test_two_default_stores_are_not_guessed_between():
    stores = {"a": _store("a", default=True), "b": _store("b", default=True)}
    choice = choose_store(_product([{"name": "p"}]), stores)
    assert choice.reason == Reason.STORE_NOT_FOUND and "a, b" in choice.message


def test_ports_of_one_product_in_two_stores_are_refused():
    product = _product([{"name": "a", "store": {"name": "x"}}, {"name": "b"}])
    choice = choose_store(product, {"x": _store("x"), "y": _store("y", default=True)})
    assert not choice.ok and "a in x, b in y" in choice.message


def _pods(children: list[dict[str, Any]]) -> dict[str, Any]:
    cronjob = next(c for c in children if c["kind"] == "CronJob")
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_pipelines_get_the_writer_login_tables_and_ready_inputs_and_no_claim_for_store_ports():
    product = _product(
        [{"name": "daily-revenue"}, {"name": "scratch", "storage": {}}],
        pipelines=[{"name": "build", "image": "registry.local/x:1", "schedule": "0 * * * *"}],
    )
    endpoint = PortEndpoint.model_validate(
        {
            "store": "pg",
            "host": "pg",
            "port": 5432,
            "database": "mesh",
            "schema": "finance__revenue",
            "table": "daily_revenue",
        }
    )
    wiring = StoreWiring(
        store_ports=frozenset({"daily-revenue"}),
        endpoints={"daily-revenue": endpoint},
        writer_secret="revenue-store",
        inputs=(InputWiring("orders", "sales__orders.orders", "dm-store-pg-revenue"),),
    )
    children = build_children(product, wiring=wiring)
    claims = [c["metadata"]["name"] for c in children if c["kind"] == "PersistentVolumeClaim"]
    assert claims == ["revenue-scratch"]
    container = _pods(children)["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OUTPUT_DAILY_REVENUE_TABLE"] == "finance__revenue.daily_revenue"
    assert env["INPUT_ORDERS_TABLE"] == "sales__orders.orders"
    assert "OUTPUT_PORT_DAILY_REVENUE_PATH" not in env and "OUTPUT_PORT_SCRATCH_PATH" in env
    assert container["envFrom"] == [
        {"secretRef": {"name": "revenue-store"}},
        {"prefix": "INPUT_ORDERS_", "secretRef": {"name": "dm-store-pg-revenue"}},
    ]
    owner = next(
        c for c in children if c["kind"] == "Role" and c["metadata"]["name"] == "revenue-owner"
    )
    secrets = next(r for r in owner["rules"] if r["resources"] == ["secrets"])
    assert "revenue-store" in secrets["resourceNames"]


def _upstream(readers: list[dict[str, Any]], grants: list[dict[str, Any]]) -> DataProduct:
    return DataProduct.from_object(
        {
            "metadata": {"name": "orders", "namespace": "sales"},
            "spec": {
                "domain": "sales",
                "owner": {"team": "sales-data"},
                "description": "Orders.",
                "outputPorts": [{"name": "orders-v1"}],
                "access": {"readers": readers},
            },
            "status": {
                "outputPorts": [
                    {
                        "name": "orders-v1",
                        "phase": "Placed",
                        "endpoint": {
                            "store": "pg",
                            "host": "pg",
                            "port": 5432,
                            "database": "mesh",
                            "schema": "sales__orders",
                            "table": "orders_v1",
                        },
                        "grants": grants,
                    }
                ]
            },
        }
    )


CONSUMER = _product(
    [{"name": "daily-revenue"}],
    inputs=[
        {
            "name": "orders",
            "dataProduct": {"namespace": "sales", "name": "orders", "port": "orders-v1"},
        }
    ],
)
READER = {"kind": "ServiceAccount", "name": "revenue", "namespace": "finance"}


def test_inputs_ready_names_what_to_add_where_until_the_upstream_grants_the_pipelines():
    (missing,) = check_inputs(CONSUMER, {})
    assert missing.reason == Reason.UPSTREAM_NOT_FOUND and not missing.ready
    (not_reader,) = check_inputs(CONSUMER, {("sales", "orders"): _upstream([], [])})
    assert not_reader.reason == Reason.ACCESS_NOT_GRANTED
    assert "{kind: ServiceAccount, name: revenue, namespace: finance}" in not_reader.message
    assert "team sales-data" in not_reader.message
    (pending,) = check_inputs(CONSUMER, {("sales", "orders"): _upstream([READER], [])})
    assert pending.reason == Reason.ACCESS_NOT_GRANTED and "not granted it yet" in pending.message
    granted = _upstream([READER], [{**READER, "role": "dm_sa_finance__revenue"}])
    (ready,) = check_inputs(CONSUMER, {("sales", "orders"): granted})
    assert ready.ready and ready.table == "sales__orders.orders_v1"
    assert ready.secret == reader_secret_name("pg", "revenue") == "dm-store-pg-revenue"
    ok, reason, _ = inputs_aspect([ready])
    assert ok and reason == Reason.INPUTS_AVAILABLE
    ok, reason, message = inputs_aspect([ready, not_reader])
    assert not ok and reason == Reason.ACCESS_NOT_GRANTED and "not a reader" in message


def test_a_reader_secret_name_past_253_characters_is_shortened_with_a_hash():
    long = reader_secret_name("s" * 63, "a" * 253)
    assert len(long) <= 253 and long != reader_secret_name("s" * 63, "a" * 252 + "b")


def test_the_default_applies_when_a_port_is_first_placed_and_never_moves_it_after():
    on_volume = DataProduct.from_object(
        {
            "metadata": {"name": "revenue", "namespace": "finance"},
            "spec": _product([{"name": "a"}]).spec.to_wire(),
            "status": {"outputPorts": [{"name": "a", "claimName": "revenue-a", "phase": "Bound"}]},
        }
    )
    stores = {"pg": _store("pg", default=True)}
    assert choose_store(on_volume, stores).store_ports == ()
    in_store = DataProduct.from_object(
        {
            "metadata": {"name": "revenue", "namespace": "finance"},
            "spec": _product([{"name": "a"}]).spec.to_wire(),
            "status": {
                "outputPorts": [
                    {
                        "name": "a",
                        "phase": "Placed",
                        "endpoint": {
                            "store": "old",
                            "host": "pg",
                            "port": 5432,
                            "database": "mesh",
                            "schema": "finance__revenue",
                            "table": "a",
                        },
                    }
                ]
            },
        }
    )
    choice = choose_store(in_store, {**stores, "old": _store("old")})
    assert choice.ok and choice.store is not None and choice.store.name == "old"


def test_pipelines_get_their_inputs_only_once_every_input_is_ready():
    ready = InputCheck("orders", Reason.INPUTS_AVAILABLE, "", "s.orders", "dm-store-pg-revenue")
    waiting = InputCheck("customers", Reason.ACCESS_NOT_GRANTED, "not a reader")
    assert wire_inputs(None, [ready]).inputs == (
        InputWiring("orders", "s.orders", "dm-store-pg-revenue"),
    )
    assert wire_inputs(None, [ready, waiting]).inputs == ()
