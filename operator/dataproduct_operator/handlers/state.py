"""What the handlers of one operator process share (layer ``handlers``).

The API client, the configuration, the metrics, a lock per product (a reconcile and a status
refresh never interleave) and coalescing of scheduled work: many child events for one product
within a short delay cause one status refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from dataproduct_operator.api.meshpolicy import CompiledPolicy
from dataproduct_operator.config import OperatorConfig
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.informer import ChildCache, WatchedObjects
from dataproduct_operator.metrics import OperatorMetrics
from dataproduct_operator.reconcile.datadomain import ProductSummary

logger = logging.getLogger(__name__)


@dataclass
class _HeldLock:
    """A product's lock and how many hold it or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass
class DomainProducts:
    """The products of each domain's namespace as the operator last saw them, so that a
    domain is reconciled without reading hundreds of products. A namespace is known once a
    survey of the API server seeded it; the products' reconciles and deletions keep it
    current, and every drift check seeds it anew (what changed while a survey was under way
    is kept from the reconciles)."""

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
class OperatorState:
    client: KubeClient
    config: OperatorConfig
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    children: ChildCache | None = None  # started with the operator
    domains: WatchedObjects | None = None  # every DataDomain; started with the operator
    domain_of_namespace: dict[str, str] = field(default_factory=dict)  # namespace -> domain
    policies: WatchedObjects | None = None  # every MeshPolicy; started with the operator
    compiled_policies: dict[str, CompiledPolicy] = field(default_factory=dict)  # by name
    domain_products: DomainProducts = field(default_factory=DomainProducts)
    _locks: dict[tuple[str, str], _HeldLock] = field(default_factory=dict)
    _scheduled: dict[tuple[str, ...], asyncio.Task[None]] = field(default_factory=dict)
    _running: set[asyncio.Task[None]] = field(default_factory=set)
    _prometheus: tuple[float, bool] | None = None
    _failing: dict[tuple[str, str], tuple[int, dict[str, str]]] = field(default_factory=dict)
    _handled: dict[tuple[str, str], tuple[int | None, str | None]] = field(default_factory=dict)
    _versions: dict[tuple[str, str], int] = field(default_factory=dict)
    _pending: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _pending_runs: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    _slots: asyncio.Semaphore | None = None

    @contextlib.asynccontextmanager
    async def lock(self, namespace: str, name: str, *, slot: bool = True) -> AsyncIterator[None]:
        """The product to ourselves, and (``slot``) one of the few slots for work on any product.

        The slots bound how many products are converged at once: under a burst (thousands of
        products or child events) work then finishes in order instead of all of it slowly and
        at once, with that many responses in memory rather than thousands. A status refresh
        takes no slot: it is two requests at most, and waiting behind a backlog of reconciles
        would only keep products that are done from being reported Ready.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.config.concurrent_reconciles)
        key = (namespace, name)
        held = self._locks.get(key)
        if held is None:
            held = self._locks[key] = _HeldLock()
        held.users += 1
        try:
            async with held.lock, self._slots if slot else contextlib.nullcontext():
                yield
        finally:
            held.users -= 1
            if held.users == 0 and self._locks.get(key) is held:
                del self._locks[key]  # kept only while in use: no memory per idle product

    def schedule(
        self, key: tuple[str, ...], work: Callable[[], Awaitable[None]], *, delay: float
    ) -> None:
        """Run ``work`` after ``delay`` unless a run for ``key`` is still waiting to start.

        A run that has started may have read the state before the event that asks again, so
        such an event schedules one more run (the product's lock keeps the two apart).
        """
        if key in self._scheduled and not self._scheduled[key].done():
            return

        async def later() -> None:
            try:
                await asyncio.sleep(delay)
            finally:
                if self._scheduled.get(key) is asyncio.current_task():
                    del self._scheduled[key]
            try:
                await work()
            except Exception:
                logger.exception("Following a child of %s/%s failed", key[0], key[1])

        task = asyncio.get_running_loop().create_task(later())
        self._scheduled[key] = task
        # The event loop keeps only weak references to tasks: hold this one until it is done.
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def submit(
        self, namespace: str, name: str, body: dict[str, Any], run: Callable[[], Awaitable[None]]
    ) -> None:
        """Have ``run`` handle the product soon, with this body or a newer one submitted before
        it starts (see :meth:`take_pending`); the caller does not wait.

        Under a burst of thousands of new products the event handlers so return at once, and
        only the latest body of each waiting product is kept, without the managedFields the
        operator never reads: memory does not grow with the backlog's event bodies.
        """
        key = (namespace, name)
        metadata = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
        self._pending[key] = {**body, "metadata": metadata}
        if key in self._pending_runs:
            return  # a run is waiting to start and will take this body

        async def run_logged() -> None:
            try:
                await run()
            except Exception:
                logger.exception("Handling %s/%s failed", namespace, name)

        task = asyncio.get_running_loop().create_task(run_logged())
        self._pending_runs[key] = task
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def take_pending(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The body submitted for the product, once its run starts; None if taken already."""
        self._pending_runs.pop((namespace, name), None)  # later submissions need a run of theirs
        return self._pending.pop((namespace, name), None)

    def cancel(self, key: tuple[str, ...]) -> None:
        """Drop the run scheduled for ``key`` if it has not started (it is no longer needed)."""
        task = self._scheduled.pop(key, None)
        if task is not None:
            task.cancel()

    def handled(self, namespace: str, name: str) -> tuple[int | None, str | None] | None:
        """The generation and run request (annotation value) the product's last reconcile saw."""
        return self._handled.get((namespace, name))

    def remember_handled(
        self, namespace: str, name: str, generation: int | None, run: str | None
    ) -> None:
        self._handled[(namespace, name)] = (generation, run)

    def saw_version(self, namespace: str, name: str, resource_version: str | None) -> None:
        """A version of the product seen in an event or in the answer to a write of ours."""
        try:
            version = int(resource_version or "")
        except ValueError:
            return
        if version > self._versions.get((namespace, name), 0):
            self._versions[(namespace, name)] = version

    def latest_version(self, namespace: str, name: str) -> str | None:
        """The newest version of the product seen, so a read can ask for nothing older."""
        version = self._versions.get((namespace, name))
        return None if version is None else str(version)

    def forget(self, namespace: str, name: str) -> None:
        """Drop what is remembered of a deleted product."""
        for memory in (self._handled, self._failing, self._versions):
            memory.pop((namespace, name), None)

    def start_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` until the operator stops (see :meth:`stop_background`)."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)

    async def stop_background(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()

    def record_failures(
        self, namespace: str, name: str, failures: dict[str, str]
    ) -> tuple[float | None, dict[str, str]]:
        """After a reconcile: when to try again, and which failures are new.

        A product that keeps failing is retried after 5, 10, 20, ... seconds, never less often
        than the drift check; a failure is announced (Event) when it first appears or changes,
        not on every retry.
        """
        key = (namespace, name)
        attempts, previous = self._failing.pop(key, (0, {}))
        if not failures:
            return None, {}
        self._failing[key] = (attempts + 1, failures)
        config = self.config
        delay = min(config.retry_base_seconds * 2**attempts, config.drift_interval_seconds)
        new = {aspect: m for aspect, m in failures.items() if previous.get(aspect) != m}
        return delay, new

    async def prometheus_available(self) -> bool:
        """Whether the cluster serves PrometheusRule; asked at most once a minute."""
        now = time.monotonic()
        if (
            self._prometheus is None
            or now - self._prometheus[0] > self.config.prometheus_check_seconds
        ):
            available = await self.client.has_kind("monitoring.coreos.com/v1", "PrometheusRule")
            self._prometheus = (now, available)
        return self._prometheus[1]
