"""What each kind's controller is told: which events call for a pass, and how a pass is made
(layer ``runtime``).

Level-based: an event calls for a reconcile when it brings something not reconciled yet (a new
object, every object when the operator starts, a new generation of the spec, for a product a new
run request); the events of the operator's own status writes call for nothing. What was
reconciled is remembered in memory, since an event may carry a body from before the status
write of that reconcile. A deleted product is let go (its retained claims released). The passes
themselves are the reconcile layer's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dataproduct_operator.api.kinds import (
    DATA_DOMAIN_KIND,
    DATA_PRODUCT,
    DATA_STORE_KIND,
    LEGACY_FINALIZER,
    MESH_POLICY_KIND,
)
from dataproduct_operator.constants import ANNOTATION_RUN
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.informer import WatchedObjects
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.reconcile.dataproduct import (
    ProductContext,
    let_go_data_product,
    product_path,
    reconcile_data_product,
)
from dataproduct_operator.reconcile.outcome import Outcome, Want
from dataproduct_operator.runtime.clock import Clock, rfc3339
from dataproduct_operator.runtime.controller import Key

Handled = tuple[int | None, str | None]  # generation, run request
DOMAIN_RESOURCE = KNOWN_RESOURCES[DATA_DOMAIN_KIND]
POLICY_RESOURCE = KNOWN_RESOURCES[MESH_POLICY_KIND]
STORE_RESOURCE = KNOWN_RESOURCES[DATA_STORE_KIND]


def _run_request(body: dict[str, Any]) -> str | None:
    return (body["metadata"].get("annotations") or {}).get(ANNOTATION_RUN)


@dataclass
class PrometheusProbe:
    """Whether the cluster serves PrometheusRule; asked at most every ``every`` seconds."""

    client: KubeClient
    every: float
    clock: Clock
    _known: tuple[float, bool] | None = None

    async def available(self) -> bool:
        now = self.clock.monotonic()
        if self._known is None or now - self._known[0] > self.every:
            found = await self.client.has_kind("monitoring.coreos.com/v1", "PrometheusRule")
            self._known = (now, found)
        return self._known[1]


@dataclass
class DataProductWorker:
    """DataProduct passes; see the module docstring."""

    context: ProductContext
    clock: Clock
    latest_version: Callable[[Key], str | None] = lambda key: None  # set by the runtime
    kind: str = DATA_PRODUCT
    _handled: dict[Key, Handled] = field(default_factory=dict)

    def triage(self, event: str | None, body: dict[str, Any]) -> Want:
        metadata = body["metadata"]
        key = (metadata["namespace"], metadata["name"])
        held = LEGACY_FINALIZER in (metadata.get("finalizers") or [])
        if event == "DELETED" or (metadata.get("deletionTimestamp") and held):
            return Want.LET_GO
        if metadata.get("deletionTimestamp"):
            return Want.NOTHING  # the garbage collector deletes the children
        if event in (None, "ADDED"):
            return Want.RECONCILE
        generation, run = metadata.get("generation"), _run_request(body)
        handled = self._handled.get(key)
        if handled is None:
            observed = (body.get("status") or {}).get("observedGeneration")
            return Want.RECONCILE if observed != generation or run is not None else Want.NOTHING
        return Want.RECONCILE if handled != (generation, run) else Want.NOTHING

    def status_path(self, key: Key) -> str:
        return product_path(*key)

    async def fetch(self, key: Key) -> dict[str, Any] | None:
        # From the API server's watch cache, as new as the last version seen or written.
        return await self.context.client.get(
            product_path(*key), not_older_than=self.latest_version(key)
        )

    async def work(self, key: Key, want: Want, body: dict[str, Any] | None) -> Outcome:
        if want & Want.LET_GO:
            self._handled.pop(key, None)
            outcome = await let_go_data_product(self.context, key[0], key[1], body)
            rest = want & ~Want.LET_GO
            return replace(outcome, look_again=rest, look_again_after=0.0) if rest else outcome
        if body is None or event_is_stale(body):
            body = await self.fetch(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return Outcome()
        generation = body["metadata"].get("generation")
        if not want & Want.RECONCILE and self._handled.get(key, (None, None))[0] != generation:
            # A refresh must not report a generation no reconcile has applied yet.
            want |= Want.RECONCILE
        outcome = await reconcile_data_product(
            self.context, body, want=want, now=rfc3339(self.clock.time())
        )
        if want & Want.RECONCILE:
            self._handled[key] = (generation, _run_request(body))
        return outcome


def event_is_stale(body: dict[str, Any]) -> bool:
    """A DELETED event's body, kept for the let-go, is not one to reconcile with."""
    return bool(body["metadata"].get("deletionTimestamp"))


Reconcile = Callable[[dict[str, Any], Want, str], Awaitable[Outcome]]  # body, want, now


@dataclass
class StoredKindWorker:
    """A cluster-scoped kind whose objects the mesh keeps in memory (``store``): DataDomain
    (its reconcile also lets a deleted domain go), MeshPolicy and DataStore."""

    kind: str
    store: WatchedObjects
    client: KubeClient
    clock: Clock
    path: Callable[[str], str]
    reconcile: Reconcile
    _handled: dict[str, int] = field(default_factory=dict)

    def triage(self, event: str | None, body: dict[str, Any]) -> Want:
        metadata = body["metadata"]
        name, generation = metadata["name"], int(metadata.get("generation") or 0)
        if event == "DELETED":
            self._handled.pop(name, None)
            return Want.NOTHING
        if metadata.get("deletionTimestamp"):
            return Want.RECONCILE
        if event not in (None, "ADDED") and self._handled.get(name) == generation:
            return Want.NOTHING  # the echo of our own status write, or nothing new
        return Want.RECONCILE

    def status_path(self, key: Key) -> str:
        return self.path(key[1])

    async def fetch(self, key: Key) -> dict[str, Any] | None:
        return await self.client.get(self.path(key[1]))

    async def work(self, key: Key, want: Want, body: dict[str, Any] | None) -> Outcome:
        # Of the body an event brought and the one in the store, the newer: they come from
        # two watches, either may be ahead.
        stored = self.store.get(key[1])
        if body is None or (stored is not None and _version(stored) >= _version(body)):
            body = stored
        if body is None:
            return Outcome()
        outcome = await self.reconcile(body, want, rfc3339(self.clock.time()))
        metadata = body["metadata"]
        self._handled[metadata["name"]] = int(metadata.get("generation") or 0)
        return outcome


@dataclass
class WatchedKindWorker:
    """A namespaced kind watched into memory (``store``, filed by ``namespace/name``) whose
    every event calls for a pass (the pass writes nothing when nothing changed): access
    requests and decisions."""

    kind: str
    store: WatchedObjects
    client: KubeClient
    clock: Clock
    path: Callable[[str, str], str]
    reconcile: Reconcile

    def triage(self, event: str | None, body: dict[str, Any]) -> Want:
        return Want.NOTHING if event == "DELETED" else Want.RECONCILE

    def status_path(self, key: Key) -> str:
        return self.path(*key)

    async def fetch(self, key: Key) -> dict[str, Any] | None:
        return await self.client.get(self.path(*key))

    async def work(self, key: Key, want: Want, body: dict[str, Any] | None) -> Outcome:
        stored = self.store.get(f"{key[0]}/{key[1]}")
        if body is None or (stored is not None and _version(stored) >= _version(body)):
            body = stored
        if body is None:
            return Outcome()
        return await self.reconcile(body, want, rfc3339(self.clock.time()))


def _version(body: dict[str, Any]) -> int:
    try:
        return int(body["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


def domain_path(name: str) -> str:
    return DOMAIN_RESOURCE.path(name=name)


def policy_path(name: str) -> str:
    return POLICY_RESOURCE.path(name=name)


def store_path(name: str) -> str:
    return STORE_RESOURCE.path(name=name)
