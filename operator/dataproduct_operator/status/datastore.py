"""The status of a DataStore from what checking its login found (layer ``status``, pure).

One condition, ``Ready``: connected with the admin credentials, and the login holds every
privilege the operator needs; when not, the reason (StoreUnavailable, AuthenticationFailed,
PrivilegeMissing, CredentialsUnreadable, InvalidSpec) and the server's or the operator's words,
naming the missing privilege.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataproduct_operator.api.conditions import READY
from dataproduct_operator.api.datastore import DataStore, DataStoreStatus
from dataproduct_operator.status.conditions import Aspect, Stamp, build_condition


@dataclass(frozen=True)
class StoreCheck:
    """What checking a store found: ``ok`` with the ``reason`` to report and its message,
    the server's version when it answered, and how many ports the store holds."""

    ok: bool
    reason: str
    message: str
    server_version: str | None = None
    ports_placed: int | None = None


def compute_store_status(store: DataStore, check: StoreCheck, *, now: str) -> DataStoreStatus:
    stamp = Stamp(store.generation, {c.type: c for c in store.status.conditions}, now)
    ready = build_condition(READY, Aspect(check.ok, check.reason, check.message), stamp)
    return DataStoreStatus(
        observed_generation=store.generation,
        conditions=[ready],
        server_version=check.server_version or store.status.server_version,
        ports_placed=check.ports_placed
        if check.ports_placed is not None
        else store.status.ports_placed,
    )
