"""Output ports in a real PostgreSQL: the operator (as the chart's ServiceAccount) registers a
DataStore, places ports there, hands logins to the writer and the readers through Secrets, and
takes access away again; every claim checked by logging in to the real server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import sql

from dataproduct_operator.api.conditions import Reason
from dataproduct_operator.api.dataproduct import DataProduct, ReaderKind
from dataproduct_operator.api.datastore import DataStore
from dataproduct_operator.cluster.controlplane import ClusterInfo, stopped
from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.reconcile.mesh import MeshState
from dataproduct_operator.reconcile.outcome import Note
from dataproduct_operator.reconcile.stores import (
    StoreConnections,
    StoreWork,
    converge_store_ports,
    release_store_ports,
)
from dataproduct_operator.status.placement import choose_store
from dataproduct_operator.stores.driver import ReaderRef, ReaderScope
from dataproduct_operator.stores.postgres import naming
from dataproduct_operator.stores.postgres.settings import PostgresSettings
from dataproduct_operator.stores.postgres.store import PostgresStore
from tests.clusters import (
    DOMAINS,
    OPERATOR_NAMESPACE,
    delete_domain,
    domain_document,
    hand_over,
    login_sql,
    namespace_name,
    operator_allowed,
    run_sql,
    superuser_sql,
)
from tests.helpers import wait_for
from tests.products import (
    OperatorProcess,
    change_spec,
    condition,
    create_ready,
    delete_if_present,
    get_if_present,
    product_path,
    wait_ready,
)
from tests.stores import (
    ADMIN_SECRET,
    STORE,
    STORES,
    login,
    put_secret,
    q,
    secret_document,
    store_document,
    store_product,
    wait_login,
)


@pytest.fixture
def consumer(kube: BlockingClient, crds: None, request: pytest.FixtureRequest) -> Iterator[str]:
    """A second domain's namespace: where the readers' ServiceAccounts live."""
    name = namespace_name("consumer-" + request.node.name)
    kube.create("/api/v1/namespaces", {"metadata": {"name": name}})
    hand_over(kube, name)
    kube.create(DOMAINS, domain_document(name))
    yield name
    delete_domain(kube, name)
    delete_if_present(kube, f"/api/v1/namespaces/{name}")


def _ready_store(kube: BlockingClient, name: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        found = get_if_present(kube, f"{STORES}/{name}")
        ok = (condition(found, "Ready") or {}).get("status") == "True" if found else False
        return found if ok else None

    return wait_for(ready, timeout=60, description=f"DataStore {name} to be Ready")


def _store_reason(kube: BlockingClient, name: str, reason: str) -> dict[str, Any]:
    def reported() -> dict[str, Any] | None:
        found = get_if_present(kube, f"{STORES}/{name}")
        return (
            found if found and (condition(found, "Ready") or {}).get("reason") == reason else None
        )

    return wait_for(reported, timeout=60, description=f"DataStore {name} to say {reason}")


def revenue_reader(consumer: str) -> dict[str, str]:
    """The consumer domain's ServiceAccount ``revenue`` as a reader."""
    return {"kind": "ServiceAccount", "name": "revenue", "namespace": consumer}


def _product_roles(postgres: LocalPostgres, schema: str) -> int:
    """The roles the operator made for a product's schema (by their ownership marker)."""
    needle = f'%"schema":"{schema}"%'
    rows = superuser_sql(
        postgres,
        "SELECT count(*) FROM pg_roles WHERE shobj_description(oid, 'pg_authid') LIKE %s",
        (needle,),
    )
    return int(rows[0][0])


def _denied(postgres: LocalPostgres, user: str, password: str, statement: sql.Composed) -> bool:
    try:
        login_sql(postgres, user, password, statement)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def _columns(postgres: LocalPostgres, schema: str, table: str) -> dict[str, tuple[str, str]]:
    rows = superuser_sql(
        postgres,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s",
        (schema, table),
    )
    return {name: (kind, nullable) for name, kind, nullable in rows}


def test_passes_at_once_share_one_driver_made_from_one_read_of_the_secret(
    kube: BlockingClient, store: str, operator_kubeconfig: Path
) -> None:
    """16 products' passes asking for the store's driver at once (as the workers do when a
    store first appears) get one driver: one pool, never more connections than it holds."""
    data_store = DataStore.from_object(kube.get(f"{STORES}/{store}"))
    made: list[PostgresStore] = []

    def make(settings: PostgresSettings) -> PostgresStore:
        made.append(PostgresStore(settings))
        return made[-1]

    async def drivers() -> list[PostgresStore]:
        client = KubeClient(Credentials.from_kubeconfig(operator_kubeconfig))
        connections = StoreConnections(client, make=make)
        try:
            first = await asyncio.gather(
                *(connections.driver(data_store, recent=True) for _ in range(16))
            )
            # A pass that reads the Secret again finds it unchanged: the same driver.
            return [*first, await connections.driver(data_store)]
        finally:
            await connections.close()
            await client.close()

    found = asyncio.run(drivers())
    assert len(made) == 1
    assert all(driver is made[0] for driver in found)


def test_a_store_is_ready_and_says_what_is_wrong_with_a_bad_login(
    operator: OperatorProcess,
    kube: BlockingClient,
    *,
    store: str,
    postgres: LocalPostgres,
    domain: str,
) -> None:
    found = _ready_store(kube, store)
    assert found["status"]["serverVersion"].startswith("15")
    # It counts the ports placed in it, following its products.
    create_ready(kube, store_product(domain, []))
    wait_for(
        lambda: (
            (get_if_present(kube, f"{STORES}/{store}") or {}).get("status", {}).get("portsPlaced")
            or None
        ),
        timeout=30,
        description="the store to count its ports",
    )
    # A wrong password: AuthenticationFailed, and the password is nowhere in the status.
    wrong = {"username": postgres.username, "password": "not-the-password"}
    put_secret(kube, secret_document(OPERATOR_NAMESPACE, "t-pg-wrong", wrong))
    kube.create(STORES, store_document("t-pg-wrong", postgres, "t-pg-wrong"))
    try:
        refused = _store_reason(kube, "t-pg-wrong", "AuthenticationFailed")
        assert "not-the-password" not in str(refused["status"])
    finally:
        delete_if_present(kube, f"{STORES}/t-pg-wrong")
    # A login without CREATEROLE: PrivilegeMissing, naming it.
    superuser_sql(postgres, "DROP ROLE IF EXISTS t_weak")
    superuser_sql(postgres, "CREATE ROLE t_weak LOGIN PASSWORD 'weak-pass'")
    weak = {"username": "t_weak", "password": "weak-pass"}
    put_secret(kube, secret_document(OPERATOR_NAMESPACE, "t-pg-weak", weak))
    kube.create(STORES, store_document("t-pg-weak", postgres, "t-pg-weak"))
    try:
        missing = _store_reason(kube, "t-pg-weak", "PrivilegeMissing")
        assert "CREATEROLE" in condition(missing, "Ready")["message"]  # type: ignore[index]
    finally:
        delete_if_present(kube, f"{STORES}/t-pg-weak")


def test_a_store_port_gets_a_table_a_writer_and_readers_who_may_only_select(
    operator: OperatorProcess,
    kube: BlockingClient,
    *,
    store: str,
    postgres: LocalPostgres,
    domain: str,
    consumer: str,
) -> None:
    reader = revenue_reader(consumer)
    analysts = {"kind": "Group", "name": "finance-analysts"}
    product = create_ready(kube, store_product(domain, [reader, analysts]))
    (port,) = product["status"]["outputPorts"]
    endpoint = port["endpoint"]
    assert (endpoint["store"], endpoint["port"]) == (store, postgres.port)
    schema, table = endpoint["schema"], endpoint["table"]
    assert table == "orders_v1"
    assert _columns(postgres, schema, table) == {
        "order_id": ("text", "NO"),
        "amount": ("bigint", "YES"),
        "placed_at": ("timestamp with time zone", "YES"),
    }
    assert port["grants"][0]["name"] == "revenue"
    # No claim for a store port.
    claims = kube.get(f"/api/v1/namespaces/{domain}/persistentvolumeclaims")["items"]
    assert claims == []
    # The writer inserts with the login of its Secret; the pipelines take it whole.
    writer = wait_login(kube, domain, "orders-store")
    login_sql(
        postgres, *writer, q("INSERT INTO {t} (order_id, amount) VALUES ('o-1', 42)", schema, table)
    )
    # The reader's login, in its own namespace, selects and may do nothing else.
    user, password = wait_login(kube, consumer, f"dm-store-{store}-revenue")
    assert login_sql(
        postgres, user, password, q("SELECT order_id, amount FROM {t}", schema, table)
    ) == [("o-1", 42)]
    for statement in (
        q("INSERT INTO {t} (order_id) VALUES ('o-2')", schema, table),
        q("UPDATE {t} SET amount = 0", schema, table),
        q("DELETE FROM {t}", schema, table),
        q("CREATE TABLE {t} (x int)", schema, "intruder"),
    ):
        assert _denied(postgres, user, password, statement), statement
    # A Group reader: a role named for it (NOLOGIN), member of the port's read role.
    group = next(g for g in port["grants"] if g["kind"] == "Group")
    assert group["role"] == "dm_group_finance_analysts"
    memberships = superuser_sql(
        postgres,
        "SELECT r.rolcanlogin, shobj_description(g.oid, 'pg_authid') FROM pg_roles r "
        "JOIN pg_auth_members m ON m.member = r.oid JOIN pg_roles g ON g.oid = m.roleid "
        "WHERE r.rolname = %s",
        (group["role"],),
    )
    assert [(can_login, '"role":"read"' in marker) for can_login, marker in memberships] == [
        (False, True)
    ]
    # Nothing of the passwords in the status, the Events or the operator's log.
    events = kube.get(f"/api/v1/namespaces/{domain}/events")["items"]
    log = operator.log.read_text()
    for secret in (password, writer[1]):
        assert secret not in str(product) and secret not in str(events) and secret not in log


def _create(kube: BlockingClient, document: dict[str, Any]) -> dict[str, Any]:
    namespace = document["metadata"]["namespace"]
    kube.create(f"/apis/datamesh.dev/v1alpha1/namespaces/{namespace}/dataproducts", document)
    return document


def _consumer_product(namespace: str, upstream: str) -> dict[str, Any]:
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": "revenue", "namespace": namespace},
        "spec": {
            "domain": namespace,
            "owner": {"team": f"{namespace}-team"},
            "description": "Revenue per day.",
            "inputs": [
                {
                    "name": "orders",
                    "dataProduct": {"namespace": upstream, "name": "orders", "port": "orders-v1"},
                }
            ],
            "outputPorts": [{"name": "daily", "store": {"name": STORE}}],
            "pipelines": [
                {"name": "build", "image": "registry.local/revenue:1", "schedule": "0 * * * *"}
            ],
        },
    }


def _condition(
    kube: BlockingClient, namespace: str, name: str, kind: str, reason: str, *, timeout: float = 30
) -> dict[str, Any]:
    """The product's condition ``kind``, once its reason is ``reason``."""

    def reported() -> dict[str, Any] | None:
        found = get_if_present(kube, product_path(namespace, name))
        got = (condition(found, kind) or {}) if found else {}
        return got if got.get("reason") == reason else None

    return wait_for(reported, timeout=timeout, description=f"{name}: {kind} {reason}")


def _inputs(kube: BlockingClient, namespace: str, reason: str) -> dict[str, Any]:
    return _condition(kube, namespace, "revenue", "InputsReady", reason)


def test_a_consumer_reads_its_input_only_once_granted_and_loses_it_when_removed(
    operator: OperatorProcess,
    kube: BlockingClient,
    *,
    store: str,
    postgres: LocalPostgres,
    domain: str,
    consumer: str,
) -> None:
    create_ready(kube, store_product(domain, []))
    _create(kube, _consumer_product(consumer, domain))
    message = _inputs(kube, consumer, "AccessNotGranted")["message"]
    assert f"{{kind: ServiceAccount, name: revenue, namespace: {consumer}}}" in message
    secret_path = f"/api/v1/namespaces/{consumer}/secrets/dm-store-{store}-revenue"
    assert get_if_present(kube, secret_path) is None
    # The owners add the consumer's pipelines as a reader: its pipelines get the input.
    reader = revenue_reader(consumer)
    change_spec(kube, domain, "orders", lambda s: s["access"].update(readers=[reader]))
    _inputs(kube, consumer, "InputsAvailable")
    cronjob = kube.get(f"/apis/batch/v1/namespaces/{consumer}/cronjobs/revenue-build")
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    schema = get_if_present(kube, product_path(domain, "orders"))["status"]["outputPorts"][0][  # type: ignore[index]
        "endpoint"
    ]["schema"]
    assert env["INPUT_ORDERS_TABLE"] == f"{schema}.orders_v1"
    assert {"prefix": "INPUT_ORDERS_", "secretRef": {"name": f"dm-store-{store}-revenue"}} in (
        container["envFrom"]
    )
    assert {"secretRef": {"name": "revenue-store"}} in container["envFrom"]
    user, password = login(kube, consumer, f"dm-store-{store}-revenue")
    login_sql(postgres, user, password, q("SELECT count(*) FROM {t}", schema, "orders_v1"))

    # Removed from the readers: no access within 15 s; the login held no other grant, so it
    # is dropped and its Secret goes.
    def gone() -> bool | None:
        try:
            login_sql(postgres, user, password, q("SELECT count(*) FROM {t}", schema, "orders_v1"))
        except psycopg.errors.InsufficientPrivilege:
            return True
        except psycopg.OperationalError as error:
            return "password authentication failed" in str(error) or None
        return None

    change_spec(kube, domain, "orders", lambda s: s["access"].update(readers=[]))
    wait_for(gone, timeout=15, description="the removed reader to be refused")
    wait_for(
        lambda: get_if_present(kube, secret_path) is None or None,
        timeout=15,
        description="the reader's Secret to go",
    )
    assert superuser_sql(postgres, "SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)) == []
    _inputs(kube, consumer, "AccessNotGranted")


def test_a_grant_made_by_hand_is_revoked_at_the_next_drift_pass(
    kube: BlockingClient,
    store: str,
    *,
    postgres: LocalPostgres,
    domain: str,
    operator_kubeconfig: Any,
    tmp_path: Any,
) -> None:
    fast = OperatorProcess(operator_kubeconfig, tmp_path / "operator.log", drift_interval=3.0)
    try:
        product = create_ready(kube, store_product(domain, []))
        endpoint = product["status"]["outputPorts"][0]["endpoint"]
        table = (endpoint["schema"], endpoint["table"])
        superuser_sql(postgres, "DROP ROLE IF EXISTS t_snoop")
        superuser_sql(postgres, "CREATE ROLE t_snoop LOGIN PASSWORD 'snoop-pass'")
        superuser_sql(postgres, q("GRANT USAGE ON SCHEMA {t} TO t_snoop", endpoint["schema"]))
        superuser_sql(postgres, q("GRANT SELECT ON {t} TO t_snoop", *table))
        wait_for(
            lambda: (
                _denied(postgres, "t_snoop", "snoop-pass", q("SELECT * FROM {t}", *table)) or None
            ),
            timeout=30,
            description="the hand-made grant to be revoked",
        )
    finally:
        fast.stop()
        superuser_sql(postgres, "DROP OWNED BY t_snoop")
        superuser_sql(postgres, "DROP ROLE IF EXISTS t_snoop")


def test_a_readers_login_dropped_by_hand_comes_back_with_the_password_of_its_secret(
    operator: OperatorProcess,
    kube: BlockingClient,
    store: str,
    *,
    postgres: LocalPostgres,
    domain: str,
    consumer: str,
) -> None:
    product = create_ready(kube, store_product(domain, [revenue_reader(consumer)]))
    endpoint = product["status"]["outputPorts"][0]["endpoint"]
    select = q("SELECT count(*) FROM {t}", endpoint["schema"], endpoint["table"])
    user, password = wait_login(kube, consumer, f"dm-store-{store}-revenue")
    assert login_sql(postgres, user, password, select) == [(0,)]
    superuser_sql(postgres, q("DROP ROLE {t}", user))
    # The product's next pass finds the login gone, though it made sure of it a moment ago.
    change_spec(kube, domain, "orders", lambda spec: spec.update(description="Orders; v2."))

    def selects() -> bool | None:
        try:
            return login_sql(postgres, user, password, select) == [(0,)] or None
        except psycopg.OperationalError:
            return None

    wait_for(selects, timeout=30, description="the login to be back with its Secret's password")
    assert login(kube, consumer, f"dm-store-{store}-revenue") == (user, password)


def test_retain_keeps_the_rows_and_disables_the_logins_and_a_new_product_adopts_them(
    operator: OperatorProcess,
    kube: BlockingClient,
    store: str,
    postgres: LocalPostgres,
    domain: str,
) -> None:
    product = create_ready(kube, store_product(domain, []))
    endpoint = product["status"]["outputPorts"][0]["endpoint"]
    table = (endpoint["schema"], endpoint["table"])
    writer = wait_login(kube, domain, "orders-store")
    login_sql(postgres, *writer, q("INSERT INTO {t} (order_id) VALUES ('kept')", *table))
    kube.delete(product_path(domain, "orders"))
    role = writer[0]

    def disabled() -> bool | None:
        rows = superuser_sql(
            postgres, "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,)
        )
        return (rows == [(False,)]) or None

    wait_for(disabled, timeout=30, description="the writer login to be disabled")
    assert superuser_sql(postgres, q("SELECT order_id FROM {t}", *table)) == [("kept",)]
    # Made again: the schema is adopted with its rows, the writer may log in again.
    wait_for(
        lambda: get_if_present(kube, product_path(domain, "orders")) is None or None,
        timeout=30,
        description="the product to be gone",
    )
    again = create_ready(kube, store_product(domain, []))
    assert again["status"]["outputPorts"][0]["endpoint"] == endpoint
    writer = wait_login(kube, domain, "orders-store")
    wait_for(
        lambda: (
            login_sql(postgres, *writer, q("SELECT order_id FROM {t}", *table)) == [("kept",)]
            or None
        ),
        timeout=30,
        description="the writer to log in again and see the kept rows",
    )


def test_delete_drops_the_schema_and_its_roles(
    operator: OperatorProcess,
    kube: BlockingClient,
    store: str,
    postgres: LocalPostgres,
    domain: str,
) -> None:
    product = create_ready(kube, store_product(domain, [], deletionPolicy="Delete"))
    schema = product["status"]["outputPorts"][0]["endpoint"]["schema"]
    kube.delete(product_path(domain, "orders"))

    def dropped() -> bool | None:
        rows = superuser_sql(postgres, "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        return (not rows and not _product_roles(postgres, schema)) or None

    wait_for(dropped, timeout=30, description="the schema and its roles to be dropped")


def test_rotation_changes_the_password_and_the_old_one_stops_working(
    operator: OperatorProcess,
    kube: BlockingClient,
    store: str,
    postgres: LocalPostgres,
    domain: str,
) -> None:
    product = create_ready(kube, store_product(domain, []))
    endpoint = product["status"]["outputPorts"][0]["endpoint"]
    old = wait_login(kube, domain, "orders-store")
    kube.merge_patch(
        product_path(domain, "orders"),
        {"metadata": {"annotations": {"datamesh.dev/rotate-credentials": "2026-11-29"}}},
    )

    def rotated() -> dict[str, Any] | None:
        found = get_if_present(kube, product_path(domain, "orders"))
        return (
            found if found and found["status"].get("credentialsRotation") == "2026-11-29" else None
        )

    found = wait_for(rotated, timeout=30, description="the rotation to be recorded")
    assert found["status"]["credentialsRotatedAt"]
    new = login(kube, domain, "orders-store")
    assert new[1] != old[1]
    table = (endpoint["schema"], endpoint["table"])
    login_sql(postgres, *new, q("SELECT count(*) FROM {t}", *table))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        login_sql(postgres, *old, "SELECT 1")


def test_a_stopped_server_is_store_unavailable_and_ready_again_with_no_duplicate(
    operator: OperatorProcess,
    kube: BlockingClient,
    *,
    store: str,
    postgres: LocalPostgres,
    control_plane: ClusterInfo,
    domain: str,
) -> None:
    _ready_store(kube, store)
    with stopped(control_plane.directory, "postgres"):
        _create(kube, store_product(domain, []))
        _condition(kube, domain, "orders", "StorageReady", "StoreUnavailable", timeout=60)
        _store_reason(kube, store, "StoreUnavailable")
    product = wait_ready(kube, domain, "orders", timeout=90)
    schema = product["status"]["outputPorts"][0]["endpoint"]["schema"]
    assert _product_roles(postgres, schema) == 3  # owner, writer, one read role: nothing twice
    _ready_store(kube, store)


def test_a_removed_column_is_kept_and_reported_and_a_castable_type_change_applied(
    operator: OperatorProcess,
    kube: BlockingClient,
    store: str,
    postgres: LocalPostgres,
    domain: str,
) -> None:
    product = create_ready(kube, store_product(domain, []))
    endpoint = product["status"]["outputPorts"][0]["endpoint"]
    schema, table = endpoint["schema"], endpoint["table"]

    def change(spec: dict[str, Any]) -> None:
        columns = spec["outputPorts"][0]["schema"]
        columns[:] = [c for c in columns if c["name"] != "placed_at"]
        columns.append({"name": "note", "type": "string"})
        next(c for c in columns if c["name"] == "amount")["type"] = "decimal"

    change_spec(kube, domain, "orders", change)

    def applied() -> dict[str, Any] | None:
        columns = _columns(postgres, schema, table)
        return columns if "note" in columns and columns["amount"][0] == "numeric" else None

    columns = wait_for(applied, timeout=30, description="the column changes")
    assert "placed_at" in columns  # kept
    # The status follows the store's change (the pass writes it once the store is done).

    def names_the_kept_column() -> dict[str, Any] | None:
        product = get_if_present(kube, product_path(domain, "orders"))
        found = condition(product, "StorageReady") if product else None
        return found if found and "placed_at" in found["message"] else None

    kept = wait_for(names_the_kept_column, timeout=30, description="StorageReady to say it")
    assert (kept["status"], kept["reason"]) == ("True", "PortsPlaced")
    # Not castable: refused, said why.
    change_spec(
        kube,
        domain,
        "orders",
        lambda s: next(c for c in s["outputPorts"][0]["schema"] if c["name"] == "note").update(
            type="integer"
        ),
    )
    reported = _condition(kube, domain, "orders", "StorageReady", "SchemaChangeRefused")
    assert "note" in reported["message"]
    assert _columns(postgres, schema, table)["note"][0] == "text"


def test_a_reader_outside_the_mesh_a_missing_store_and_a_fenced_one_are_reported(
    operator: OperatorProcess,
    kube: BlockingClient,
    *,
    store: str,
    postgres: LocalPostgres,
    domain: str,
) -> None:
    outsider = {"kind": "ServiceAccount", "name": "x", "namespace": "nowhere-in-the-mesh"}
    _create(kube, store_product(domain, [outsider]))
    missing = store_product(domain, [])
    missing["metadata"]["name"] = "elsewhere"
    missing["spec"]["outputPorts"][0]["store"] = {"name": "no-such-store"}
    _create(kube, missing)
    not_found = _condition(kube, domain, "elsewhere", "StorageReady", "StoreNotFound")
    assert "no-such-store" in not_found["message"]
    # A store that admits other domains only.
    fenced = store_document("t-pg-fenced", postgres, ADMIN_SECRET)
    fenced["spec"]["allowedDomains"] = ["some-other-domain"]
    kube.create(STORES, fenced)
    try:
        kube.merge_patch(
            product_path(domain, "elsewhere"),
            {
                "spec": {
                    "outputPorts": [
                        {**missing["spec"]["outputPorts"][0], "store": {"name": "t-pg-fenced"}}
                    ]
                }
            },
        )
        message = _condition(kube, domain, "elsewhere", "StorageReady", "StoreNotAllowed")[
            "message"
        ]
        assert "spec.allowedDomains" in message and domain in message
    finally:
        delete_if_present(kube, f"{STORES}/t-pg-fenced")
    outside = _condition(kube, domain, "orders", "AccessReady", "ReaderOutsideMesh")
    assert "nowhere-in-the-mesh/x" in outside["message"]


def test_a_reader_removed_from_one_product_is_refused_there_and_keeps_the_other(
    operator: OperatorProcess,
    kube: BlockingClient,
    store: str,
    *,
    postgres: LocalPostgres,
    domain: str,
    consumer: str,
) -> None:
    reader = revenue_reader(consumer)
    orders = create_ready(kube, store_product(domain, [reader]))
    customers = store_product(domain, [reader])
    customers["metadata"]["name"] = "customers"
    customers = create_ready(kube, customers)
    tables = {
        name: (p["status"]["outputPorts"][0]["endpoint"]["schema"], "orders_v1")
        for name, p in (("orders", orders), ("customers", customers))
    }
    user, password = wait_login(kube, consumer, f"dm-store-{store}-revenue")
    change_spec(kube, domain, "orders", lambda s: s["access"].update(readers=[]))
    statement = q("SELECT count(*) FROM {t}", *tables["orders"])
    wait_for(
        lambda: _denied(postgres, user, password, statement) or None,
        timeout=15,
        description="permission denied on the product it was removed from",
    )
    assert login_sql(postgres, user, password, q("SELECT count(*) FROM {t}", *tables["customers"]))
    assert get_if_present(kube, f"/api/v1/namespaces/{consumer}/secrets/dm-store-{store}-revenue")


SCOPED_DATABASE = "t_store_scopes"
T = TypeVar("T")


def _wait_operator_writes(kube: BlockingClient, namespace: str) -> None:
    """Until the operator's RoleBinding from the namespace's DataDomain is in effect (the
    operator process of the module may just have started)."""
    wait_for(lambda: operator_allowed(kube, namespace, ("", "secrets", "patch")) or None,
             timeout=60, description=f"the operator's writes in {namespace}")  # fmt: skip


async def _store_pass(
    kubeconfig: Path, step: Callable[[StoreConnections, MeshState], Awaitable[T]]
) -> T:
    """``step`` with the operator's identity, store connections and mesh, as its workers run."""
    client = KubeClient(Credentials.from_kubeconfig(kubeconfig))
    mesh, connections = MeshState(client), StoreConnections(client)
    mesh.start()
    try:
        await mesh.wait_synced()
        return await step(connections, mesh)
    finally:
        await connections.close()
        await mesh.stop()
        await client.close()
        # Not a wait for a condition: a cancelled watch's TLS connection finishes closing on
        # the loop after close() returns (aiohttp's graceful shutdown); without this grace
        # asyncio.run may close the loop first and leave its socket unclosed.
        await asyncio.sleep(0.25)


@pytest.fixture
def scoped_store(store: str, postgres: LocalPostgres) -> Iterator[DataStore]:
    """A DataStore only this test knows, on a database of its own: never in the API, so no
    operator's drift pass tidies the schemas of products it does not know there. The admin
    Secret is ``store``'s."""
    drop = f"DROP DATABASE IF EXISTS {SCOPED_DATABASE} WITH (FORCE)"
    superuser_sql(postgres, drop)
    superuser_sql(postgres, f"CREATE DATABASE {SCOPED_DATABASE}")
    superuser_sql(postgres, f"GRANT CREATE ON DATABASE {SCOPED_DATABASE} TO {postgres.username}")
    document = store_document("t-pg-scoped", postgres, ADMIN_SECRET)
    document["metadata"]["uid"] = "uid-t-pg-scoped"
    document["spec"]["postgres"]["database"] = SCOPED_DATABASE
    yield DataStore.from_object(document)
    superuser_sql(postgres, drop)


def test_the_store_pass_grants_each_reader_the_ports_of_its_scope_only(
    operator: OperatorProcess,
    kube: BlockingClient,
    operator_kubeconfig: Path,
    *,
    scoped_store: DataStore,
    postgres: LocalPostgres,
    domain: str,
    consumer: str,
) -> None:
    """converge_store_ports given readers of some ports (as access requests give them): per
    port, the status lists and the store grants only that port's readers; a reader with no port
    in the store gets no login; one whose scope leaves the store loses its login and Secret."""
    for namespace in (domain, consumer):  # the operator's powers there, from its domains
        _wait_operator_writes(kube, namespace)
    document = store_product(domain, [], deletionPolicy="Delete")
    document["metadata"]["uid"] = f"uid-{domain}"
    ports = document["spec"]["outputPorts"]
    ports[0]["store"]["name"] = scoped_store.name
    ports.append({"name": "refunds", "store": {"name": scoped_store.name},
                  "schema": [{"name": "refund_id", "type": "string"}]})  # fmt: skip
    revenue = ReaderRef(ReaderKind.SERVICE_ACCOUNT, "revenue", consumer)
    audit = ReaderRef(ReaderKind.SERVICE_ACCOUNT, "audit", consumer)

    async def as_operator(product: DataProduct, readers: Sequence[ReaderScope]) -> StoreWork:
        async def step(connections: StoreConnections, mesh: MeshState) -> StoreWork:
            choice = choose_store(product, {scoped_store.name: scoped_store})
            return await converge_store_ports(
                connections, mesh, product, choice, readers=readers, now=""
            )

        return await _store_pass(operator_kubeconfig, step)

    def converge(product: DataProduct, *readers: ReaderScope) -> tuple[DataProduct, StoreWork]:
        """One pass; the product with the status it writes (the next pass reads its grants)."""
        work = asyncio.run(as_operator(product, readers))
        assert work.result is not None and work.result.reason is None, work.result
        status = product.status.model_copy(
            update={"output_ports": list(work.result.ports.values())}
        )
        return product.model_copy(update={"status": status}), work

    def granted(work: StoreWork) -> dict[str, list[str]]:
        assert work.result is not None
        return {name: [g.name for g in port.grants] for name, port in work.result.ports.items()}

    def has_secret(name: str) -> bool:  # a bool: a failure never prints the Secret's data
        path = f"/api/v1/namespaces/{consumer}/secrets/dm-store-{scoped_store.name}-{name}"
        return get_if_present(kube, path) is not None

    def role_exists(name: str) -> bool:
        role = naming.service_account_role(consumer, name)
        return bool(superuser_sql(postgres, "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)))

    product, work = converge(DataProduct.from_object(document),
                             ReaderScope(revenue, frozenset({"orders-v1"})),
                             ReaderScope(audit, frozenset({"invoices"})))  # fmt: skip
    assert granted(work) == {"orders-v1": ["revenue"], "refunds": []}
    assert work.result is not None and work.result.readers_outside_mesh == ()
    endpoint = work.result.ports["orders-v1"].endpoint
    assert endpoint is not None
    user, password = login(kube, consumer, f"dm-store-{scoped_store.name}-revenue")

    def select(table: str) -> list[tuple[Any, ...]]:
        conninfo = {**postgres.admin_conninfo(), "dbname": SCOPED_DATABASE,
                    "user": user, "password": password}  # fmt: skip
        return run_sql(conninfo, q("SELECT count(*) FROM {t}", endpoint.schema_, table))

    assert select("orders_v1") == [(0,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        select("refunds")
    # A port the product does not have: nothing granted, no login, no Secret.
    assert not has_secret("audit") and not role_exists("audit")

    product, work = converge(product, ReaderScope(revenue))
    assert granted(work) == {"orders-v1": ["revenue"], "refunds": ["revenue"]}
    assert select("refunds") == [(0,)]

    product, work = converge(product, ReaderScope(revenue, frozenset({"invoices"})))
    assert granted(work) == {"orders-v1": [], "refunds": []}
    assert not has_secret("revenue") and not role_exists("revenue")

    async def release(connections: StoreConnections, mesh: MeshState) -> list[Note]:
        return await release_store_ports(connections, mesh, product, scoped_store, readers=())

    notes = asyncio.run(_store_pass(operator_kubeconfig, release))
    assert [note.reason for note in notes] == [Reason.PRUNED]  # deletionPolicy Delete: dropped
