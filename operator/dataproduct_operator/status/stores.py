"""The store side of a DataProduct's status: its ports' tables and grants (StorageReady,
AccessReady) and whether its pipelines can read their inputs (InputsReady) (layer ``status``,
pure).

An input that is another product's port is ready when that product exists, the port is a table
in a store, and the upstream's status lists this product's pipeline ServiceAccount among the
port's grants: the upstream's reconcile then has made the reader login and written its Secret
into this namespace. Until then the message names exactly what to add where.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dataproduct_operator.api.conditions import Reason
from dataproduct_operator.api.dataproduct import (
    DataProduct,
    DataProductRef,
    Input,
    PortEndpoint,
    PortStatus,
    ReaderKind,
)
from dataproduct_operator.api.naming import reader_secret_name, service_account_name
from dataproduct_operator.status.placement import StoreChoice

ProductKey = tuple[str, str]  # namespace, name


@dataclass(frozen=True)
class StoreResult:
    """What the store part of a product's reconcile found: the placed ports' status (endpoint,
    grants), or why it failed (``reason``, ``message``: StoreUnavailable, SchemaChangeRefused,
    ...), notes for the message (columns kept), and the ServiceAccount readers no credentials
    could be given to (their namespace is outside the mesh)."""

    choice: StoreChoice
    ports: Mapping[str, PortStatus] = field(default_factory=dict)
    reason: str | None = None
    message: str = ""
    notes: tuple[str, ...] = ()
    readers_outside_mesh: tuple[str, ...] = ()
    # The datamesh.dev/rotate-credentials value acted on now, and when (None: no rotation)
    rotation: str | None = None
    rotated_at: str | None = None


def store_storage(result: StoreResult) -> tuple[bool, str, str] | None:
    """StorageReady's part for the store ports (None when the product has none)."""
    choice = result.choice
    if not choice.store_ports:
        return None
    if not choice.ok:
        return False, str(choice.reason), choice.message
    if result.reason is not None:
        return False, result.reason, result.message
    store = choice.store.name if choice.store else ""
    missing = [p for p in choice.store_ports if p not in result.ports]
    if missing:
        return False, Reason.STORE_UNAVAILABLE, f"ports {', '.join(missing)} not placed yet"
    placed = f"{len(choice.store_ports)} port(s) in DataStore {store}"
    return True, Reason.PORTS_PLACED, "; ".join([placed, *result.notes])


def readers_outside_mesh_message(readers: tuple[str, ...]) -> str:
    return (
        f"ServiceAccount readers {', '.join(readers)} are in namespaces no DataDomain holds, "
        "where the operator may not write their credentials: onboard the namespace with a "
        "DataDomain, or read with a ServiceAccount of a domain's namespace"
    )


@dataclass(frozen=True)
class InputCheck:
    """One input of another product: ready (the ``table`` to read, ``schema.table``, and the
    reader ``secret`` in this namespace; the upstream port's whole ``endpoint``, which names it
    in lineage) or why not."""

    name: str
    reason: str
    message: str
    table: str | None = None
    secret: str | None = None
    endpoint: PortEndpoint | None = None

    @property
    def ready(self) -> bool:
        return self.table is not None


def upstream_key(product: DataProduct, ref: DataProductRef) -> ProductKey:
    return ref.namespace or product.namespace, ref.name


def check_input(
    product: DataProduct, source: Input, ref: DataProductRef, upstream: DataProduct | None
) -> InputCheck:
    """Whether ``source`` (an input naming ``ref``, another product's port) can be read;
    ``upstream``: that product as last seen, None when it does not exist."""
    namespace, name = upstream_key(product, ref)
    where = f"DataProduct {namespace}/{name}"
    if upstream is None:
        return InputCheck(
            source.name,
            Reason.UPSTREAM_NOT_FOUND,
            f"input {source.name}: {where} does not exist (yet): fix inputs[{source.name}]."
            "dataProduct, or wait until its owners create it",
        )
    if not any(port.name == ref.port for port in upstream.spec.output_ports):
        ports = ", ".join(port.name for port in upstream.spec.output_ports) or "none"
        return InputCheck(
            source.name,
            Reason.UPSTREAM_NOT_FOUND,
            f"input {source.name}: {where} has no output port {ref.port} (it has {ports})",
        )
    account = service_account_name(product.name)
    reader = f"{{kind: ServiceAccount, name: {account}, namespace: {product.namespace}}}"
    if not any(
        r.kind is ReaderKind.SERVICE_ACCOUNT
        and r.name == account
        and r.namespace == product.namespace
        for r in upstream.spec.access.readers
    ):
        return InputCheck(
            source.name,
            Reason.ACCESS_NOT_GRANTED,
            f"input {source.name}: this product's pipelines run as ServiceAccount "
            f"{product.namespace}/{account}, which is not a reader of {where}: its owners "
            f"(team {upstream.spec.owner.team}) add {reader} to spec.access.readers",
        )
    port = next((p for p in upstream.status.output_ports if p.name == ref.port), None)
    if port is None or port.endpoint is None:
        return InputCheck(
            source.name,
            Reason.ACCESS_NOT_GRANTED,
            f"input {source.name}: port {ref.port} of {where} is not a table in a DataStore "
            "(a volume cannot be read from another namespace), or not placed yet: its owners "
            "put it in a store (outputPorts[].store)",
        )
    granted = any(
        g.kind is ReaderKind.SERVICE_ACCOUNT
        and g.name == account
        and g.namespace == product.namespace
        for g in port.grants
    )
    if not granted:
        return InputCheck(
            source.name,
            Reason.ACCESS_NOT_GRANTED,
            f"input {source.name}: {where} lists {reader} as a reader, and its operator has not "
            "granted it yet",
        )
    endpoint = port.endpoint
    secret = reader_secret_name(endpoint.store, account)
    table = f"{endpoint.schema_}.{endpoint.table}"
    return InputCheck(source.name, Reason.INPUTS_AVAILABLE, "", table, secret, endpoint)


def check_inputs(
    product: DataProduct, upstreams: Mapping[ProductKey, DataProduct | None]
) -> list[InputCheck]:
    """Every input naming another product's port, checked (``upstreams``: those products)."""
    return [
        check_input(product, source, ref, upstreams.get(upstream_key(product, ref)))
        for source in product.spec.inputs
        if (ref := source.data_product) is not None
    ]


def inputs_aspect(checks: list[InputCheck]) -> tuple[bool, str, str]:
    """InputsReady from the checks."""
    if not checks:
        return True, Reason.NO_INPUTS, "no inputs from other data products"
    failing = [check for check in checks if not check.ready]
    if failing:
        reasons = {check.reason for check in failing}
        reason = (
            Reason.UPSTREAM_NOT_FOUND
            if reasons == {Reason.UPSTREAM_NOT_FOUND}
            else Reason.ACCESS_NOT_GRANTED
        )
        return False, reason, "; ".join(check.message for check in failing)
    names = ", ".join(check.name for check in checks)
    return True, Reason.INPUTS_AVAILABLE, f"pipelines read {names} with their own login"
