"""What the operator knows of the mesh as a whole (layer ``reconcile``).

The reconciles of every kind share it: every DataDomain and MeshPolicy, watched into memory
(a product is provisioned only in its domain's namespace and audited against every policy on
each pass); the domain of each namespace (the oldest DataDomain naming it holds it: see
:func:`~dataproduct_operator.status.datadomain.namespace_holder`), and the namespaces where the
operator has bound its writer role already; the policies compiled; the products of each domain as
their reconciles last saw them (a domain is reconciled without reading hundreds of products);
and which rules each product violates (a policy's status counts them). Watch events that change
something another kind depends on are passed to the runtime through two callbacks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pydantic import ValidationError

from dataproduct_operator.api.datadomain import namespace_of
from dataproduct_operator.api.datastore import DataStore
from dataproduct_operator.api.kinds import DATA_DOMAIN_KIND, DATA_STORE_KIND, MESH_POLICY_KIND
from dataproduct_operator.api.meshpolicy import CompiledPolicy, MeshPolicy, compile_policy
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.informer import OnError, WatchedObjects
from dataproduct_operator.reconcile.outcome import describe_validation_error
from dataproduct_operator.status.datadomain import namespace_holder

logger = logging.getLogger(__name__)

ProductKey = tuple[str, str]


class ProductSummary(NamedTuple):
    """What a domain needs to know of one of its products."""

    ready: bool
    granted: frozenset[str]  # the namespaces of its ServiceAccount readers
    hidden: bool = False  # discoverability Hidden: counted in no domain status


@dataclass
class DomainProducts:
    """The products of each domain's namespace as the operator last saw them. A namespace is
    known once a survey of the API server seeded it; the products' reconciles and deletions keep
    it current, and every drift pass seeds it anew (what changed while a survey was under way is
    kept from the reconciles)."""

    _known: dict[str, dict[str, tuple[ProductSummary, float]]] = field(default_factory=dict)

    def of(self, namespace: str) -> dict[str, ProductSummary] | None:
        known = self._known.get(namespace)
        return None if known is None else {name: entry[0] for name, entry in known.items()}

    def seed(self, namespace: str, surveyed: dict[str, ProductSummary], started: float) -> None:
        current = self._known.get(namespace, {})
        merged = {name: (summary, started) for name, summary in surveyed.items()}
        merged.update({name: entry for name, entry in current.items() if entry[1] > started})
        self._known[namespace] = merged

    def saw(self, namespace: str, name: str, summary: ProductSummary | None) -> bool:
        """Record a product as reconciled (None: gone); whether that changed what is known."""
        known = self._known.get(namespace)
        if known is None:
            return False  # not seeded yet: the first survey will see it
        before = known.get(name, (None, 0.0))[0]
        if summary is None:
            known.pop(name, None)
        else:
            known[name] = (summary, time.monotonic())
        return before != summary


@dataclass
class Violations:
    """Which (policy, rule) pairs each product violates, from its last audit."""

    _products: dict[ProductKey, frozenset[tuple[str, str]]] = field(default_factory=dict)

    def observe(self, namespace: str, name: str, rules: set[tuple[str, str]]) -> bool:
        """Record the pairs the product violates; whether they changed."""
        before = self._products.get((namespace, name), frozenset())
        if rules:
            self._products[(namespace, name)] = frozenset(rules)
        else:
            self._products.pop((namespace, name), None)
        return before != rules

    def forget(self, namespace: str, name: str) -> bool:
        return self._products.pop((namespace, name), None) is not None

    def violating(self, policy: str) -> list[str]:
        """namespace/name of every product that violates a rule of ``policy``."""
        return sorted(
            f"{namespace}/{name}"
            for (namespace, name), rules in self._products.items()
            if any(violated == policy for violated, _ in rules)
        )

    def counts(self) -> dict[tuple[str, str], int]:
        """Products per (policy, rule)."""
        found: dict[tuple[str, str], int] = {}
        for rules in self._products.values():
            for rule in rules:
                found[rule] = found.get(rule, 0) + 1
        return found


class MeshState:
    """See the module docstring. ``on_namespaces_moved(namespaces)``: the domain of these
    namespaces changed; ``on_rules_changed()``: the rules products are audited with changed."""

    def __init__(self, client: KubeClient, on_error: OnError | None = None) -> None:
        self.domains = WatchedObjects(
            client, DATA_DOMAIN_KIND, on_change=self._domain_changed, on_error=on_error
        )
        self.policies = WatchedObjects(
            client, MESH_POLICY_KIND, on_change=self._policy_changed, on_error=on_error
        )
        self.stores = WatchedObjects(
            client, DATA_STORE_KIND, on_change=self._store_changed, on_error=on_error
        )
        # Every DataStore as parsed (the ones the models refuse left out), by name
        self.data_stores: dict[str, DataStore] = {}
        # store -> product -> its ports placed there, as the products' reconciles last saw them
        self.placed_ports: dict[str, dict[ProductKey, int]] = {}
        self.domain_of_namespace: dict[str, str] = {}  # the holder of each namespace
        # namespace -> {domain: creationTimestamp} of every DataDomain naming it
        self.claims: dict[str, dict[str, str]] = {}
        # Namespaces where the operator's writer RoleBinding was seen in effect
        self.onboarded: set[str] = set()
        self.compiled_policies: dict[str, CompiledPolicy] = {}
        self.domain_products = DomainProducts()
        self.violations = Violations()
        self.on_namespaces_moved: Callable[[set[str]], None] | None = None
        self.on_rules_changed: Callable[[], None] | None = None
        # A DataStore came, went, or changed what products placed in it see: its connection,
        # allowed domains or the default-store annotation (not its status).
        self.on_stores_changed: Callable[[str], None] | None = None

    def start(self) -> None:
        self.domains.start()
        self.policies.start()
        self.stores.start()

    async def stop(self) -> None:
        await self.domains.stop()
        await self.policies.stop()
        await self.stores.stop()

    async def wait_synced(self) -> None:
        """Return once every domain and policy has been listed (fails, to be retried, after
        the informers' timeout)."""
        await self.domains.wait_synced()
        await self.policies.wait_synced()
        await self.stores.wait_synced()

    def domain_of(self, namespace: str) -> str | None:
        return self.domain_of_namespace.get(namespace)

    def claimants(self, namespace: str) -> list[str]:
        """Every DataDomain naming ``namespace``, the holder among them."""
        return sorted(self.claims.get(namespace, {}))

    def namespaces_of_domains(self) -> dict[str, str]:
        """Every domain's namespace, by domain name."""
        return {name: namespace for namespace, name in self.domain_of_namespace.items()}

    def place(self, product: ProductKey, store: str | None, ports: int) -> set[str]:
        """Record how many ports ``product`` has in ``store`` (None, or 0 ports: none); the
        stores whose count changed."""
        changed = set()
        for name, placed in self.placed_ports.items():
            if name != store and placed.pop(product, None) is not None:
                changed.add(name)
        if store is not None:
            placed = self.placed_ports.setdefault(store, {})
            if placed.get(product, 0) != ports:
                changed.add(store)
            if ports:
                placed[product] = ports
            else:
                placed.pop(product, None)
        return changed

    def audited_policies(self) -> list[CompiledPolicy]:
        return list(self.compiled_policies.values())

    def _domain_changed(self, event: str, obj: dict[str, Any]) -> None:
        metadata = obj["metadata"]
        name = metadata["name"]
        before = {ns for ns, claim in self.claims.items() if name in claim}
        after = set() if event == "DELETED" else {namespace_of(obj)}
        for namespace in before - after:
            del self.claims[namespace][name]
        for namespace in after:
            self.claims.setdefault(namespace, {})[name] = metadata.get("creationTimestamp") or ""
        moved = set()
        for namespace in before | after:
            claim = self.claims.get(namespace) or {}
            holder = namespace_holder(claim) if claim else None
            if holder != self.domain_of_namespace.get(namespace):
                moved.add(namespace)
                # The operator's binding there is owned by the domain that held it: it goes with
                # it, and the next holder binds the operator anew.
                self.onboarded.discard(namespace)
            if holder is None:
                self.claims.pop(namespace, None)
                self.domain_of_namespace.pop(namespace, None)
            else:
                self.domain_of_namespace[namespace] = holder
        # At the initial listing every product is reconciled at start anyway.
        if moved and event != "LISTED" and self.on_namespaces_moved is not None:
            self.on_namespaces_moved(moved)

    def _store_changed(self, event: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        before = self.data_stores.get(name)
        after: DataStore | None = None
        if event != "DELETED":
            try:
                after = DataStore.from_object(obj)
            except ValidationError as error:
                # Written under a looser CRD: no port goes there; its reconcile says why.
                logger.warning("DataStore %s: not used: %s", name, describe_validation_error(error))
        if after is None:
            self.data_stores.pop(name, None)
        else:
            self.data_stores[name] = after
        seen = (before.spec, before.annotations) if before else None
        now = (after.spec, after.annotations) if after else None
        if seen != now and event != "LISTED" and self.on_stores_changed is not None:
            self.on_stores_changed(name)

    def _policy_changed(self, event: str, obj: dict[str, Any]) -> None:
        if self._compile(event, obj) and event != "LISTED" and self.on_rules_changed is not None:
            self.on_rules_changed()

    def _compile(self, event: str, obj: dict[str, Any]) -> bool:
        """Keep the compiled policies current; whether the rules products are audited with
        changed."""
        name = obj["metadata"]["name"]
        if event == "DELETED":
            return self.compiled_policies.pop(name, None) is not None
        known = self.compiled_policies.get(name)
        metadata = obj["metadata"]
        generation, uid = metadata.get("generation", 1), metadata.get("uid", "")
        if known is not None and (known.policy.generation, known.policy.uid) == (generation, uid):
            return False  # a status write: nothing to audit anew
        try:
            policy = MeshPolicy.from_object(obj)
        except ValidationError as error:
            # Written under an older, looser CRD: not audited with; its reconcile says why.
            reason = describe_validation_error(error)
            logger.warning("MeshPolicy %s: not audited with: %s", name, reason)
            return self.compiled_policies.pop(name, None) is not None
        self.compiled_policies[name] = compile_policy(policy)
        return True
