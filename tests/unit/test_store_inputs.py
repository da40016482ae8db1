"""A DataProduct as the store drivers' inputs (stores/inputs.py)."""

from __future__ import annotations

from dataproduct_operator.api.dataproduct import DataProduct, DeletionPolicy, ReaderKind
from dataproduct_operator.constants import ANNOTATION_CONFIRM_DATA_DELETION
from dataproduct_operator.stores import inputs
from dataproduct_operator.stores.driver import ColumnSpec, ReaderRef
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
