"""The store side of a DataProduct's status: its ports' tables and grants (StorageReady,
AccessReady) and whether its pipelines can read their inputs (InputsReady) (layer ``status``,
pure).

An input that is another product's port is ready when that product exists, the port is a table
in a store, and the upstream's status lists this product's pipeline ServiceAccount among the
port's grants: the upstream's reconcile then has made the reader login and written its Secret
into this namespace. Until then the message names exactly what to add where. A file input from
a URL is always ready (the run finds out whether it downloads); one on a volume when its claim
is in the product's namespace and is not another product's output port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dataproduct_operator.api.conditions import Reason
from dataproduct_operator.api.dataproduct import (
    AccessSource,
    DataProduct,
    DataProductRef,
    EffectiveReader,
    Input,
    PortEndpoint,
    PortStatus,
    ReaderKind,
)
from dataproduct_operator.api.naming import reader_secret_name, service_account_name
from dataproduct_operator.constants import LABEL_MANAGED_BY, LABEL_PRODUCT, OPERATOR_NAME
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
    in lineage) or why not. Or a file input: ready, or why not; ``claim``: the claim it is on."""

    name: str
    reason: str
    message: str
    table: str | None = None
    secret: str | None = None
    endpoint: PortEndpoint | None = None
    claim: str | None = None

    @property
    def ready(self) -> bool:
        return self.reason == Reason.INPUTS_AVAILABLE


def upstream_key(product: DataProduct, ref: DataProductRef) -> ProductKey:
    return ref.namespace or product.namespace, ref.name


def effective_readers(product: DataProduct) -> list[EffectiveReader]:
    """Who reads ``product`` as its last status says (the spec's readers and the approved
    access requests'), or its spec's readers when no status lists them yet."""
    if product.status.access is not None:
        return list(product.status.access.readers)
    return [
        EffectiveReader(kind=r.kind, name=r.name, namespace=r.namespace, source=AccessSource.SPEC)
        for r in product.spec.access.readers
    ]


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
        and (not r.ports or ref.port in r.ports)
        for r in effective_readers(upstream)
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


def input_claims(product: DataProduct) -> list[str]:
    """The claims the product's file inputs are on, sorted, each once."""
    return sorted(
        {
            source.file.volume.claim_name
            for source in product.spec.inputs
            if source.file is not None and source.file.volume is not None
        }
    )


def check_file_input(
    product: DataProduct, source: Input, claims: Mapping[str, dict[str, Any] | None]
) -> InputCheck:
    """Whether the file input ``source`` can be read; ``claims``: the claims of the product's
    file inputs as the namespace holds them (None: not there)."""
    volume = source.file.volume if source.file is not None else None
    if volume is None:
        return InputCheck(source.name, Reason.INPUTS_AVAILABLE, "")
    claim = volume.claim_name
    where = f"PersistentVolumeClaim {product.namespace}/{claim}"
    found = claims.get(claim)
    if found is None:
        return InputCheck(
            source.name,
            Reason.CLAIM_NOT_FOUND,
            f"input {source.name}: {where} does not exist: create it with the file at "
            f"{volume.path}, or fix inputs[{source.name}].file.volume.claimName",
            claim=claim,
        )
    labels = (found.get("metadata") or {}).get("labels") or {}
    owner = labels.get(LABEL_PRODUCT)
    if labels.get(LABEL_MANAGED_BY) == OPERATOR_NAME and owner not in (None, product.name):
        return InputCheck(
            source.name,
            Reason.CLAIM_OF_ANOTHER_PRODUCT,
            f"input {source.name}: {where} holds an output port of DataProduct {owner}, whose "
            "readers it chooses: read it as an input with dataProduct, not as a file",
            claim=claim,
        )
    return InputCheck(source.name, Reason.INPUTS_AVAILABLE, "", claim=claim)


def check_inputs(
    product: DataProduct,
    upstreams: Mapping[ProductKey, DataProduct | None],
    claims: Mapping[str, dict[str, Any] | None] | None = None,
) -> list[InputCheck]:
    """Every input naming another product's port (``upstreams``: those products) or a file
    (``claims``: see :func:`check_file_input`), checked."""
    checks = []
    for source in product.spec.inputs:
        if (ref := source.data_product) is not None:
            upstream = upstreams.get(upstream_key(product, ref))
            checks.append(check_input(product, source, ref, upstream))
        elif source.file is not None:
            checks.append(check_file_input(product, source, claims or {}))
    return checks


# The reasons of InputsReady that need the product's own owners to change something.
CLAIM_REASONS = frozenset({Reason.CLAIM_NOT_FOUND, Reason.CLAIM_OF_ANOTHER_PRODUCT})


def inputs_aspect(checks: list[InputCheck]) -> tuple[bool, str, str]:
    """InputsReady from the checks."""
    if not checks:
        return True, Reason.NO_INPUTS, "no inputs from other data products or files"
    failing = [check for check in checks if not check.ready]
    if failing:
        reasons = {check.reason for check in failing}
        if len(reasons) == 1:
            (reason,) = reasons
        elif reasons <= CLAIM_REASONS:
            reason = Reason.CLAIM_NOT_FOUND
        else:
            reason = Reason.ACCESS_NOT_GRANTED
        return False, reason, "; ".join(check.message for check in failing)
    products = [check.name for check in checks if check.table is not None]
    files = [check.name for check in checks if check.table is None]
    said = [f"pipelines read {', '.join(products)} with their own login"] if products else []
    said += [f"pipelines read the files {', '.join(files)} at each run"] if files else []
    return True, Reason.INPUTS_AVAILABLE, "; ".join(said)
