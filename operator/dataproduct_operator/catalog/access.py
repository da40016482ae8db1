"""What one caller of the catalog may see (layer ``catalog``, pure: no I/O).

With ``--auth kubernetes`` a caller sees a product only where it may ``list dataproducts`` in the
product's namespace (decided by the API server, see :mod:`.auth`); the result comes here as a
typed :class:`NamespaceAccess`. :class:`ScopedStore` is the store as that caller may read it:
every page, the JSON API, lineage and exports read the store through it, so no view needs to
know about callers, and the store's :class:`~dataproduct_operator.catalog.model.Visibility`
still applies on top (Hidden products are shown to nobody).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dataproduct_operator.api.datadomain import DataDomain
from dataproduct_operator.catalog.lineage import LineageGraph
from dataproduct_operator.catalog.store import CachedProduct, CatalogStore


@dataclass(frozen=True)
class NamespaceAccess:
    """The namespaces whose products a caller may see; ``namespaces=None``: every namespace
    (the caller may list DataProducts cluster-wide, or the catalog checks no one)."""

    namespaces: frozenset[str] | None

    @classmethod
    def everything(cls) -> NamespaceAccess:
        return cls(None)

    @classmethod
    def only(cls, namespaces: Iterable[str]) -> NamespaceAccess:
        return cls(frozenset(namespaces))

    @property
    def unrestricted(self) -> bool:
        return self.namespaces is None

    def allows(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces


def namespaces_shown(store: CatalogStore) -> set[str]:
    """Every namespace the store holds something the catalog may show from: its products' and
    its domains' (the namespaces a caller's access must be decided for)."""
    return {c.key[0] for c in store.products()} | {d.namespace for d in store.domains().values()}


class ScopedStore(CatalogStore):
    """``store`` as a caller with ``access`` may read it: products and domains of the namespaces
    it may see, their connections and runs, and the lineage graph where every other product is
    an anonymous ``unlisted`` node at most. Read-only; the watches feed ``store``."""

    def __init__(self, store: CatalogStore, access: NamespaceAccess) -> None:
        # No super().__init__(): a view holds no data of its own, it reads ``store``'s.
        self.visibility = store.visibility
        self._store = store
        self.access = access

    @property
    def synced(self) -> bool:
        return self._store.synced

    @synced.setter
    def synced(self, value: bool) -> None:
        raise TypeError("A ScopedStore is read-only: feed the store it views")

    def products(self) -> list[CachedProduct]:
        return [c for c in self._store.products() if self.access.allows(c.key[0])]

    def product(self, namespace: str, name: str) -> CachedProduct | None:
        if not self.access.allows(namespace):
            return None
        return self._store.product(namespace, name)

    def domains(self) -> dict[str, DataDomain]:
        return {
            name: domain
            for name, domain in self._store.domains().items()
            if self.access.allows(domain.namespace)
        }

    def connection(self, namespace: str, config_map: str) -> dict[str, Any] | None:
        if not self.access.allows(namespace):
            return None
        return self._store.connection(namespace, config_map)

    def jobs(self, namespace: str, product: str) -> list[dict[str, Any]]:
        return self._store.jobs(namespace, product) if self.access.allows(namespace) else []

    def lineage(self) -> LineageGraph:
        if self.access.namespaces is None:
            return self._store.lineage()
        return self._store.lineage_within(self.access.namespaces)

    def kept_drawing(self, graph: LineageGraph, key: tuple[str | None, int]) -> str | None:
        return None  # drawings are kept for the whole mesh's graph only: one per caller is too many

    def keep_drawing(self, graph: LineageGraph, key: tuple[str | None, int], svg: str) -> None:
        return None

    def replace_listing(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("A ScopedStore is read-only: feed the store it views")

    def record(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("A ScopedStore is read-only: feed the store it views")


def shows_namespace(store: CatalogStore, namespace: str) -> bool:
    """Whether the caller reading ``store`` may see what ``namespace`` holds beyond its listed
    products (who reads them under an access request, and why): every caller of a catalog that
    checks no one, else those whose access allows the namespace."""
    return not isinstance(store, ScopedStore) or store.access.allows(namespace)


def scoped(store: CatalogStore, access: NamespaceAccess) -> CatalogStore:
    """The store as a caller with ``access`` reads it: the store itself when nothing is hidden
    from it (so its kept graph and drawings serve), else a :class:`ScopedStore`."""
    return store if access.unrestricted else ScopedStore(store, access)
