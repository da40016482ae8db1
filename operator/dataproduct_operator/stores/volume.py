"""Output ports on volumes, as a store driver (layer ``stores``, pure).

A volume port is a PersistentVolumeClaim in the product's namespace: the reconcile layer builds
and applies it as a Kubernetes child (specs.volumes), and Kubernetes RBAC on the product is its
only grant, so nothing here does I/O. :class:`VolumeStore` answers the driver interface with
what that means, so the reconcile layer can treat every port through one interface: a port's
placement is its claim name; reader grants are not the store's (no store role carries them);
deletion is the claims' (kept under Retain, owned by the product under Delete) and happens in
Kubernetes. It does not observe claims: their phase and capacity come from the API server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dataproduct_operator.api.naming import claim_name
from dataproduct_operator.stores.driver import (
    NOTHING_CONFIRMED,
    ConfirmedDeletions,
    DeleteResult,
    EnsureResult,
    Grant,
    LoginPassword,
    PortPlacement,
    PortSpec,
    ProductObservation,
    ProductRef,
    ReaderScope,
    StoreDriver,
)


class VolumeStore:
    """The driver of volume ports (see :class:`~dataproduct_operator.stores.driver.StoreDriver`)."""

    async def ensure_ports(
        self,
        product: ProductRef,
        ports: Sequence[PortSpec],
        readers: Sequence[ReaderScope],
        *,
        writer_password: LoginPassword | None = None,
        confirmed: ConfirmedDeletions = NOTHING_CONFIRMED,
    ) -> EnsureResult:
        """Each port's claim name; the claims themselves are Kubernetes children."""
        return EnsureResult(
            ports=tuple(
                PortPlacement(port=port.name, claim_name=claim_name(product.name, port.name))
                for port in ports
            )
        )

    async def grant(
        self, product: ProductRef, ports: Sequence[str], readers: Sequence[ReaderScope]
    ) -> tuple[Grant, ...]:
        return ()  # a volume has no roles: readers get Kubernetes RBAC on the product

    async def revoke(
        self, product: ProductRef, ports: Sequence[str], readers: Sequence[ReaderScope]
    ) -> int:
        return 0

    async def observe(self, product: ProductRef, ports: Sequence[str]) -> ProductObservation:
        """Nothing: a claim's phase and capacity are read from the API server."""
        return ProductObservation(exists=True, schema=None)

    async def delete(self, product: ProductRef) -> DeleteResult:
        return DeleteResult(policy=product.deletion_policy)


if TYPE_CHECKING:
    _conforms: type[StoreDriver] = VolumeStore
