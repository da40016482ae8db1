"""A DataProduct and a DataStore as the store drivers' inputs (stores/inputs.py,
stores/postgres/settings.py)."""

from __future__ import annotations

from dataproduct_operator.api.dataproduct import DataProduct, DeletionPolicy, ReaderKind
from dataproduct_operator.api.datastore import DataStore
from dataproduct_operator.constants import ANNOTATION_CONFIRM_DATA_DELETION
from dataproduct_operator.stores import inputs
from dataproduct_operator.stores.driver import ColumnSpec, ReaderRef, ReaderScope, merge_scopes
from dataproduct_operator.stores.postgres.settings import postgres_settings
from tests.helpers import example_product


def test_the_example_product_becomes_typed_driver_inputs() -> None:
    document = example_product()
    document["metadata"]["uid"] = "uid-1"
    document["metadata"]["annotations"] = {ANNOTATION_CONFIRM_DATA_DELETION: "orders-v1.email"}
    document["spec"]["deletionPolicy"] = "Delete"
    product = DataProduct.from_object(document)
    ref = inputs.product_ref(product)
    assert (ref.namespace, ref.name, ref.uid, ref.deletion_policy) == (
        product.namespace, product.name, "uid-1", DeletionPolicy.DELETE)  # fmt: skip
    specs = inputs.port_specs(product.spec.output_ports)
    assert [spec.name for spec in specs] == [port.name for port in product.spec.output_ports]
    assert specs[0].columns[0] == ColumnSpec("order_id", "string", required=True, unique=True)
    assert specs[0].columns[2] == ColumnSpec("email", "string", required=False, unique=False)
    assert inputs.readers(product) == tuple(
        ReaderRef(ReaderKind(r.kind), r.name, r.namespace) for r in product.spec.access.readers
    )
    assert inputs.confirmed_deletions(product).columns == {("orders-v1", "email")}
    # The spec's readers are granted every port.
    assert inputs.spec_reader_scopes(product) == tuple(
        ReaderScope(reader) for reader in inputs.readers(product)
    )
    assert inputs.spec_reader_scopes(product)


ANA = ReaderRef(ReaderKind.USER, "ana")
BEN = ReaderRef(ReaderKind.GROUP, "ben")


def test_a_scope_covers_the_ports_it_names_and_none_means_every_port() -> None:
    scope = ReaderScope(ANA, frozenset({"refunds"}))
    assert scope.covers("refunds") and not scope.covers("orders-v1")
    assert scope.covers_any(["orders-v1", "refunds"]) and not scope.covers_any(["orders-v1"])
    assert ReaderScope(ANA).covers("any-port") and not ReaderScope(ANA).covers_any([])
    # An empty set is no port (a request for every port is None).
    assert not ReaderScope(ANA, frozenset()).covers_any(["orders-v1", "refunds"])


def test_a_reader_given_twice_reads_the_union_of_its_scopes_every_port_absorbing_the_rest() -> None:
    orders, refunds = frozenset({"orders-v1"}), frozenset({"refunds"})
    assert merge_scopes(
        [ReaderScope(ANA, orders), ReaderScope(BEN), ReaderScope(ANA, refunds)]
    ) == (
        ReaderScope(ANA, orders | refunds),
        ReaderScope(BEN),
    )
    assert merge_scopes([ReaderScope(ANA, orders), ReaderScope(ANA)]) == (ReaderScope(ANA),)
    assert merge_scopes([ReaderScope(ANA), ReaderScope(ANA, refunds)]) == (ReaderScope(ANA),)
    assert merge_scopes([ReaderScope(ANA, frozenset()), ReaderScope(ANA, orders)]) == (
        ReaderScope(ANA, orders),
    )
    assert merge_scopes([]) == ()


def test_a_postgres_datastore_becomes_the_driver_settings() -> None:
    store = DataStore.from_object({
        "metadata": {"name": "local-postgres"},
        "spec": {"type": "Postgres",
                 "postgres": {"host": "db.example", "database": "mesh", "sslMode": "verify-full",
                              "caSecretRef": {"name": "db-ca"}},
                 "credentialsSecretRef": {"namespace": "datamesh-system", "name": "db-admin"}},
    })  # fmt: skip
    settings = postgres_settings(store, user="admin", password="pw", sslrootcert="/ca/ca.crt")
    kwargs = settings.connection_kwargs()
    assert (kwargs["host"], kwargs["port"], kwargs["dbname"], kwargs["user"]) == (
        "db.example", 5432, "mesh", "admin")  # fmt: skip
    assert (kwargs["sslmode"], kwargs["sslrootcert"]) == ("verify-full", "/ca/ca.crt")
    assert "statement_timeout=30000" in kwargs["options"]
    assert "lock_timeout=10000" in kwargs["options"]
    assert "pw" not in repr(settings)
