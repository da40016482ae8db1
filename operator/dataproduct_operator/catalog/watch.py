"""Keeping the catalog's store current: list, then watch (layer ``catalog``, imperative).

DataProducts, DataDomains, the connection ConfigMaps and the pipelines' Jobs, each listed a page
at a time and then watched, per watched namespace or cluster-wide, with the same
list-then-watch loop the operator's caches use.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from dataproduct_operator.catalog.store import CONFIG_MAPS, DOMAINS, JOBS, PRODUCTS, CatalogStore
from dataproduct_operator.constants import (
    COMPONENT_ACCESS,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_PIPELINE,
    OPERATOR_NAME,
)
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.informer import OnError, list_then_watch, wait_listed
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES

SYNC_SECONDS = 60.0
MANAGED = f"{LABEL_MANAGED_BY}={OPERATOR_NAME}"
SELECTORS = {
    PRODUCTS: None,
    DOMAINS: None,
    CONFIG_MAPS: f"{MANAGED},{LABEL_COMPONENT}={COMPONENT_ACCESS}",
    JOBS: f"{MANAGED},{LABEL_PIPELINE}",  # scheduled runs and on-demand runs alike
}


@dataclass
class _Feed:
    kind: tuple[str, str]
    namespace: str | None
    synced: asyncio.Event = field(default_factory=asyncio.Event)


class MeshWatch:
    """The watches that feed one :class:`CatalogStore`."""

    def __init__(
        self,
        client: KubeClient,
        store: CatalogStore,
        *,
        namespaces: tuple[str, ...] = (),
        on_error: OnError | None = None,
    ) -> None:
        self._client = client
        self._on_error = on_error
        self._store = store
        scopes: list[str | None] = list(namespaces) or [None]
        self._feeds = [
            _Feed(kind, namespace) for namespace in scopes for kind in (PRODUCTS, CONFIG_MAPS, JOBS)
        ]
        self._feeds.append(_Feed(DOMAINS, None))
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(feed)) for feed in self._feeds]
        self._tasks.append(loop.create_task(self._mark_synced()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _mark_synced(self) -> None:
        await asyncio.gather(*(feed.synced.wait() for feed in self._feeds))
        self._store.synced = True

    async def wait_synced(self, timeout: float = SYNC_SECONDS) -> None:
        """Return once every kind has been listed; fail after ``timeout``."""
        await wait_listed(
            {
                (f"{feed.kind[1]}s in {feed.namespace or 'all namespaces'}", ""): feed.synced
                for feed in self._feeds
            },
            timeout,
        )

    async def _run(self, feed: _Feed) -> None:
        store, kind = self._store, feed.kind
        await list_then_watch(
            self._client,
            kind,
            KNOWN_RESOURCES[kind].path(feed.namespace),
            selector=SELECTORS[kind],
            accept=(None, None),
            on_listed=lambda items: store.replace_listing(kind, feed.namespace, items),
            on_event=lambda event, obj: store.record(kind, event, obj),
            synced=feed.synced,
            on_error=self._on_error,
        )
