"""Check a DataStore and tidy what deleted products left in it (layer ``reconcile``,
imperative).

:func:`reconcile_data_store` connects with the store's admin login and checks its privileges
(the status says which one is missing), counts the ports placed there, and on a drift pass
finds the schemas of products that are gone (deleted while no operator ran, or whose deletion
could not reach the store): each is handled by the deletionPolicy recorded on it, Retain
(grants revoked, logins disabled, rows kept) or Delete (dropped). A product is taken for gone
only when the API server says so: a schema of a product that exists under the same uid is
never touched here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from dataproduct_operator.api.conditions import Reason
from dataproduct_operator.api.datastore import DataStore
from dataproduct_operator.api.kinds import DATA_STORE
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.reconcile.mesh import MeshState
from dataproduct_operator.reconcile.outcome import (
    NORMAL,
    WARNING,
    Note,
    Outcome,
    Want,
    invalid_spec_outcome,
)
from dataproduct_operator.reconcile.stores import StoreConnections
from dataproduct_operator.status.datastore import StoreCheck, compute_store_status
from dataproduct_operator.stores.driver import ManagedSchema, ProductRef, StoreError

logger = logging.getLogger(__name__)

# A store that is not Ready is checked again this often (its products retry on their own).
NOT_READY_RECHECK_SECONDS = 15.0
PRODUCTS = "/apis/datamesh.dev/v1alpha1/namespaces/{namespace}/dataproducts/{name}"


@dataclass(frozen=True)
class StoreContext:
    client: KubeClient
    mesh: MeshState
    connections: StoreConnections


async def _product_gone(client: KubeClient, schema: ManagedSchema) -> bool:
    body = await client.get(PRODUCTS.format(namespace=schema.namespace, name=schema.product))
    return body is None or body["metadata"].get("uid") != schema.uid


async def _tidy(ctx: StoreContext, store: DataStore) -> list[Note]:
    """The schemas of products that are gone, handled by their deletionPolicy."""
    driver = await ctx.connections.driver(store)
    notes = []
    for schema in await driver.list_managed_schemas():
        if not await _product_gone(ctx.client, schema):
            continue
        ref = ProductRef(schema.namespace, schema.product, schema.uid, schema.deletion_policy)
        result = await driver.delete(ref)
        if result.changes:
            what = "dropped" if result.schema_dropped else "kept, grants revoked, logins disabled"
            notes.append(
                Note(
                    NORMAL,
                    Reason.RETAINED if not result.schema_dropped else Reason.PRUNED,
                    f"Schema {schema.schema} of the deleted DataProduct "
                    f"{schema.namespace}/{schema.product}: {what} "
                    f"(deletionPolicy {schema.deletion_policy.value})",
                )
            )
    return notes


def ports_placed(mesh: MeshState, store: str) -> int:
    return sum(mesh.placed_ports.get(store, {}).values())


async def reconcile_data_store(
    ctx: StoreContext, body: dict[str, Any], *, want: Want, now: str
) -> Outcome:
    """One pass over a store; see the module docstring."""
    try:
        store = DataStore.from_object(body)
    except ValidationError as error:
        return invalid_spec_outcome(body, error, now=now)
    if body["metadata"].get("deletionTimestamp"):
        await ctx.connections.forget(store.name)
        return Outcome()
    notes: list[Note] = []
    try:
        driver = await ctx.connections.driver(store)
        verified = await driver.verify()
        check = StoreCheck(
            verified.ready,
            verified.reason,
            verified.message,
            verified.server_version,
            ports_placed(ctx.mesh, store.name),
        )
        if verified.ready and want & Want.DRIFT:
            notes += await _tidy(ctx, store)
    except StoreError as error:
        check = StoreCheck(
            False, str(getattr(error, "reason", Reason.STORE_UNAVAILABLE)), str(error)
        )
    status = compute_store_status(store, check, now=now)
    before = next((c for c in store.status.conditions if c.type == "Ready"), None)
    after = status.conditions[0]
    if before is None or (before.status, before.reason) != (after.status, after.reason):
        kind = NORMAL if check.ok else WARNING
        notes.append(Note(kind, check.reason, f"{DATA_STORE} {store.name}: {check.message}", True))
    return Outcome(
        subject=body,
        status=status,
        notes=tuple(notes),
        look_again=Want.NOTHING if check.ok else Want.RECONCILE,
        look_again_after=None if check.ok else NOT_READY_RECHECK_SECONDS,
    )
