"""A DataProduct as the store drivers' inputs (layer ``stores``, pure).

The reconcile layer decides which ports go to which store; these functions turn the API model
into the drivers' typed inputs, so no driver reads the API model itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from dataproduct_operator.api.dataproduct import DataProduct, EffectiveReader, OutputPort
from dataproduct_operator.constants import ANNOTATION_CONFIRM_DATA_DELETION
from dataproduct_operator.stores.driver import (
    ColumnSpec,
    ConfirmedDeletions,
    PortSpec,
    ProductRef,
    ReaderRef,
    ReaderScope,
)


def product_ref(product: DataProduct) -> ProductRef:
    return ProductRef(product.namespace, product.name, product.uid, product.spec.deletion_policy)


def port_spec(port: OutputPort) -> PortSpec:
    return PortSpec(
        port.name,
        tuple(ColumnSpec(c.name, c.type, c.required, c.unique) for c in port.schema_),
    )


def port_specs(ports: Iterable[OutputPort]) -> tuple[PortSpec, ...]:
    return tuple(port_spec(port) for port in ports)


def readers(product: DataProduct) -> tuple[ReaderRef, ...]:
    return tuple(
        ReaderRef(reader.kind, reader.name, reader.namespace)
        for reader in product.spec.access.readers
    )


def spec_reader_scopes(product: DataProduct) -> tuple[ReaderScope, ...]:
    """The readers of the spec (``spec.access.readers``), each granted every port."""
    return tuple(ReaderScope(reader) for reader in readers(product))


def reader_scopes(readers: Iterable[EffectiveReader]) -> tuple[ReaderScope, ...]:
    """The effective readers of a product (its spec's and its approved access requests'), each
    granted the ports it names, or every port."""
    return tuple(
        ReaderScope(
            ReaderRef(reader.kind, reader.name, reader.namespace),
            frozenset(reader.ports) if reader.ports else None,
        )
        for reader in readers
    )


def granted_scopes(product: DataProduct) -> tuple[ReaderScope, ...]:
    """Who the product's last status says reads it (its spec's readers without one)."""
    if product.status.access is not None:
        return reader_scopes(product.status.access.readers)
    return spec_reader_scopes(product)


def confirmed_deletions(product: DataProduct) -> ConfirmedDeletions:
    return ConfirmedDeletions.parse(product.annotations.get(ANNOTATION_CONFIRM_DATA_DELETION))
