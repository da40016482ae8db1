"""Where a product's output ports live: a DataStore's tables or volumes (layer ``status``,
pure).

A port names a volume (``storage``), a store (``store``) or neither; then it goes to the
DataStore annotated ``datamesh.dev/is-default-store: "true"``, and to a volume when no store is
marked (or when more than one is: the choice would be a guess, so the product says so). The
default applies when a port is first placed: a port naming neither that the status shows on a
volume stays there, and one in a store stays in that store, whatever is marked default later
(moving it would leave its data behind). All the store ports of one product live in one store:
its pipelines get one writer login.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dataproduct_operator.api.conditions import Reason
from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.api.datastore import DEFAULT_STORE_ANNOTATION, DataStore


@dataclass(frozen=True)
class StoreChoice:
    """The store of a product's store ports (``store_ports``), or why there is none
    (``reason``, ``message``); the ports of a failed choice get no volume either."""

    store: DataStore | None
    store_ports: tuple[str, ...]
    reason: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None

    def in_store(self, port: str) -> bool:
        return port in self.store_ports


def default_stores(stores: Mapping[str, DataStore]) -> list[DataStore]:
    return sorted((s for s in stores.values() if s.is_default), key=lambda s: s.name)


def choose_store(product: DataProduct, stores: Mapping[str, DataStore]) -> StoreChoice:
    """See the module docstring. ``stores``: every DataStore, by name."""
    defaults = default_stores(stores)
    placed = {port.name: port for port in product.status.output_ports}
    wanted: dict[str, str] = {}  # port -> store name
    for port in product.spec.output_ports:
        before = placed.get(port.name)
        if port.store is not None:
            wanted[port.name] = port.store.name
        elif port.storage is not None or (before is not None and before.claim_name):
            continue
        elif before is not None and before.endpoint is not None:
            wanted[port.name] = before.endpoint.store
        elif defaults:
            wanted[port.name] = defaults[0].name
    ports = tuple(wanted)
    if not wanted:
        return StoreChoice(None, ())
    undecided = [
        p.name
        for p in product.spec.output_ports
        if p.name in wanted
        and p.store is None
        and (p.name not in placed or placed[p.name].endpoint is None)
    ]
    if len(defaults) > 1 and undecided:
        return StoreChoice(
            None,
            ports,
            Reason.STORE_NOT_FOUND,
            f"several DataStores are marked {DEFAULT_STORE_ANNOTATION}: "
            f"{', '.join(s.name for s in defaults)}; a platform admin keeps one, or name a store "
            "(or storage) on every port",
        )
    names = sorted(set(wanted.values()))
    if len(names) > 1:
        listed = ", ".join(f"{port} in {store}" for port, store in wanted.items())
        return StoreChoice(
            None,
            ports,
            Reason.STORE_NOT_ALLOWED,
            f"the store ports of one product live in one DataStore, these name several "
            f"({listed}): name the same store on each (ports without store or storage go to "
            f"the default store, {defaults[0].name if defaults else 'none marked'})",
        )
    store = stores.get(names[0])
    if store is None:
        return StoreChoice(
            None,
            ports,
            Reason.STORE_NOT_FOUND,
            f"DataStore {names[0]} does not exist (kubectl get datastores lists them): create "
            f"it, or name another store on {', '.join(ports)}",
        )
    if not store.allows(product.spec.domain):
        return StoreChoice(
            None,
            ports,
            Reason.STORE_NOT_ALLOWED,
            f"DataStore {store.name} admits the domains {', '.join(store.spec.allowed_domains)}, "
            f"not {product.spec.domain}: a platform admin adds it to spec.allowedDomains, or "
            f"name another store on {', '.join(ports)}",
        )
    return StoreChoice(store, ports)
