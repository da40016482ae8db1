"""A cache of the products' children fed by watches (layer ``k8s``).

Each child kind is listed once and then watched (per watched namespace, or cluster-wide), for
objects carrying the product label. A reconcile then reads its children from memory instead of
listing eight collections, the largest cost of the operator at scale. Writes of the operator go
through to the cache at once (:meth:`ChildCache.put`), so a reconcile never misses what the
previous one applied; a watch event not newer than what is cached is ignored. Only the fields the
operator reads are kept (no managedFields, only our labels and annotations), to keep memory per
product small. For the kinds in ``name_kinds`` the objects without the product label are watched
too, as metadata, and only their names kept: a new child's name is then checked against the
objects of others without asking the API server.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import aiohttp

from dataproduct_operator.constants import (
    ANNOTATION_DESIRED_HASH,
    ANNOTATION_RETAINED_FROM,
    ANNOTATION_RETAINED_VOLUME,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_PIPELINE,
    LABEL_PORT,
    LABEL_PRODUCT,
    LABEL_RETAINED,
    LABEL_RUN,
)
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.k8s.rest import ApiError

logger = logging.getLogger(__name__)

Kind = tuple[str, str]  # apiVersion, kind
ChildKey = tuple[str, str, str]  # kind, namespace, name
OnChange = Callable[[str, dict[str, Any]], None]  # event type, slim object
KEPT_ANNOTATIONS = (ANNOTATION_DESIRED_HASH, ANNOTATION_RETAINED_FROM, ANNOTATION_RETAINED_VOLUME)
KEPT_LABELS = (
    LABEL_MANAGED_BY, LABEL_PRODUCT, LABEL_COMPONENT, LABEL_PIPELINE, LABEL_PORT, LABEL_RETAINED,
    LABEL_RUN,
)  # fmt: skip
# The children (objects with the product label) in full, slimmed; of the objects of others only
# the names, as metadata: enough to never take one over, at little cost to the API server.
CHILDREN, OTHERS = "children", "others"
SELECTORS = {CHILDREN: LABEL_PRODUCT, OTHERS: f"!{LABEL_PRODUCT}"}
ACCEPT_LIST = {
    CHILDREN: None,
    OTHERS: "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
}
ACCEPT_WATCH = {
    CHILDREN: None,
    OTHERS: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
}
WATCH_SECONDS = 300  # the server ends a watch after this; it is resumed at once
# No data for this long, not even a bookmark, and the connection is taken for dead: the watch
# is resumed on another. The API server sends a watch that allows them a bookmark every 60 s
# (measured), and keeps at least 75 s of events to resume from: 70 s finds a dead connection
# while its last version can still be resumed from on a busy server.
READ_TIMEOUT_SECONDS = 70.0
RETRY_SECONDS = 1.0  # after a failure; doubling with each failure in a row, up to:
MAX_RETRY_SECONDS = 8.0
OnError = Callable[[str], None]  # why a list or watch failed (a short reason), for a metric
SYNC_SECONDS = 60.0


class CacheNotSyncedError(ApiError):
    """The children of some kind could not be listed yet; reconciles wait and retry."""


def slim(obj: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """The parts of a child the operator reads."""
    metadata = obj.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    labels = metadata.get("labels") or {}
    kept: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            key: metadata[key]
            for key in (
                "name", "namespace", "uid", "resourceVersion", "creationTimestamp",
                "deletionTimestamp",
            )
            if key in metadata
        },
    }  # fmt: skip
    # Label values repeat across children (product, component and port names): one copy each.
    kept["metadata"]["labels"] = {
        key: sys.intern(labels[key]) for key in KEPT_LABELS if key in labels
    }
    for key in ("namespace", "creationTimestamp"):
        if key in kept["metadata"]:
            kept["metadata"][key] = sys.intern(kept["metadata"][key])
    ours = {key: annotations[key] for key in KEPT_ANNOTATIONS if key in annotations}
    if ours:
        kept["metadata"]["annotations"] = ours
    if kind == "PersistentVolumeClaim":
        spec = obj.get("spec") or {}
        requests = (spec.get("resources") or {}).get("requests") or {}
        kept["spec"] = {"resources": {"requests": dict(requests)}}
        if spec.get("volumeName"):  # the volume of a bound claim (see specs.volumes)
            kept["spec"]["volumeName"] = spec["volumeName"]
        # An owned claim goes with its product; one without an owner is released instead.
        owners = metadata.get("ownerReferences") or []
        if owners:
            kept["metadata"]["ownerReferences"] = [{"uid": o.get("uid")} for o in owners]
    if kind in ("PersistentVolumeClaim", "Job", "CronJob") and "status" in obj:
        kept["status"] = obj["status"]
    return kept


def _newer(candidate: dict[str, Any], cached: dict[str, Any] | None) -> bool:
    """Later than the cached version: not the watch event of a write already put, nor older."""
    if cached is None:
        return True
    try:
        return int(candidate["metadata"]["resourceVersion"]) > int(
            cached["metadata"]["resourceVersion"]
        )
    except (KeyError, ValueError):
        return True


def _same_but_version(candidate: dict[str, Any], cached: dict[str, Any]) -> bool:
    version = "resourceVersion"
    if {**candidate["metadata"], version: None} != {**cached["metadata"], version: None}:
        return False
    return all(candidate.get(key) == cached.get(key) for key in ("spec", "status"))


async def wait_listed(listings: dict[tuple[str, str], asyncio.Event], timeout: float) -> None:
    """Return once every listing's event is set; else :class:`CacheNotSyncedError` naming
    those still missing (the first element of each key) after ``timeout``."""
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in listings.values())), timeout)
    except TimeoutError:
        pending = sorted({what for (what, _), event in listings.items() if not event.is_set()})
        raise CacheNotSyncedError(
            503,
            "CacheNotSynced",
            f"Could not list {', '.join(pending)} within {timeout:.0f}s; "
            "see the log (RBAC or connection problems)",
        ) from None


class ChildCache:
    """Children of every product, by namespace and product name; see the module docstring."""

    def __init__(
        self,
        client: KubeClient,
        kinds: list[Kind],
        namespaces: tuple[str, ...],
        on_change: OnChange | None = None,
        *,
        name_kinds: tuple[Kind, ...] = (),
        on_error: OnError | None = None,
    ) -> None:
        self._client = client
        self._on_error = on_error
        self._kinds = kinds
        self._name_kinds = name_kinds
        self._namespaces = namespaces
        self._on_change = on_change
        self._objects: dict[ChildKey, dict[str, Any]] = {}
        self._others: set[ChildKey] = set()  # objects of name_kinds without the product label
        self._by_product: dict[tuple[str, str], set[ChildKey]] = {}
        self._synced: dict[tuple[Kind, str | None, str], asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def kinds(self) -> list[Kind]:
        return list(self._kinds)

    def start(self) -> None:
        scopes: list[str | None] = list(self._namespaces) or [None]
        feeds = [(kind, CHILDREN) for kind in self._kinds]
        feeds += [(kind, OTHERS) for kind in self._name_kinds]
        for kind, feed in feeds:
            for namespace in scopes:
                self._synced[(kind, namespace, feed)] = asyncio.Event()
                task = asyncio.get_running_loop().create_task(self._run(kind, namespace, feed))
                self._tasks.append(task)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def wait_synced(self, timeout: float = SYNC_SECONDS) -> None:
        """Return once every kind has been listed; fail (to be retried) after ``timeout``."""
        await wait_listed(
            {
                (f"{kind[1]} in {namespace or 'all namespaces'}", feed): event
                for (kind, namespace, feed), event in self._synced.items()
            },
            timeout,
        )

    def children(self, namespace: str, product: str) -> list[dict[str, Any]]:
        keys = self._by_product.get((namespace, product), set())
        return [self._objects[key] for key in keys if key in self._objects]

    def knows_names(self, kind: Kind) -> bool:
        """Whether :meth:`find` answers for ``kind`` (its objects of others are watched too)."""
        return kind in self._name_kinds

    def find(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object of that name, as far as the watches know: a child as cached, an object
        of someone else (without the product label) as its bare name, or None."""
        key = (kind[1], namespace, name)
        if key in self._objects:
            return self._objects[key]
        if key in self._others:
            bare = {"name": name, "namespace": namespace, "labels": {}}
            return {"apiVersion": kind[0], "kind": kind[1], "metadata": bare}
        return None

    def products(self, *, managed_by: str) -> set[tuple[str, str]]:
        """(namespace, name) of every product with a child managed by ``managed_by``."""
        return {
            product
            for product, keys in self._by_product.items()
            if any(
                self._objects[key]["metadata"]["labels"].get(LABEL_MANAGED_BY) == managed_by
                for key in keys
                if key in self._objects
            )
        }

    def put(self, obj: dict[str, Any], *, event: str = "MODIFIED", notify: bool = True) -> None:
        """Record an object as it is now (an apply's answer, or a watch event).

        ``notify=False`` for the operator's own writes: whoever wrote knows what changed, and
        the watch event of that write is then recognised as nothing new.
        """
        kind_key = (obj.get("apiVersion", ""), obj.get("kind", ""))
        metadata = obj["metadata"]
        key = (kind_key[1], metadata.get("namespace", ""), metadata["name"])
        cached = self._objects.get(key)
        kept = slim(obj, *kind_key)
        if not _newer(kept, cached):
            return
        if cached is not None and _same_but_version(kept, cached):
            # Nothing the operator reads has changed (an annotation of someone else, say).
            cached["metadata"]["resourceVersion"] = kept["metadata"]["resourceVersion"]
            return
        self._forget_index(key, cached)
        product = (kept["metadata"].get("labels") or {}).get(LABEL_PRODUCT)
        if product is None:
            self._objects.pop(key, None)
        else:
            self._objects[key] = kept
            self._by_product.setdefault((key[1], product), set()).add(key)
        if notify and self._on_change is not None and product is not None:
            self._on_change(event, kept)

    def remove(self, obj: dict[str, Any], *, event: str = "DELETED", notify: bool = True) -> None:
        """Forget an object (a watch event, or ``notify=False`` after the operator deleted it)."""
        metadata = obj["metadata"]
        key = (obj.get("kind", ""), metadata.get("namespace", ""), metadata["name"])
        cached = self._objects.pop(key, None)
        self._forget_index(key, cached)
        if notify and self._on_change is not None and cached is not None:
            self._on_change(event, cached)

    def _forget_index(self, key: ChildKey, cached: dict[str, Any] | None) -> None:
        if cached is None:
            return
        product = (cached["metadata"].get("labels") or {}).get(LABEL_PRODUCT)
        keys = self._by_product.get((key[1], product or ""))
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_product[(key[1], product or "")]

    async def _run(self, kind: Kind, namespace: str | None, feed: str) -> None:
        await list_then_watch(
            self._client,
            kind,
            KNOWN_RESOURCES[kind].path(namespace),
            selector=SELECTORS[feed],
            accept=(ACCEPT_LIST[feed], ACCEPT_WATCH[feed]),
            on_listed=functools.partial(self._listed, kind, namespace, feed),
            on_event=functools.partial(self._record, feed),
            synced=self._synced[(kind, namespace, feed)],
            on_error=self._on_error,
        )

    def _listed(
        self, kind: Kind, namespace: str | None, feed: str, items: list[dict[str, Any]]
    ) -> None:
        """A full listing: record every object, forget those no longer there."""
        seen: set[ChildKey] = set()
        for item in items:
            self._record(feed, "LISTED", item)
            seen.add(_child_key(item))

        def in_scope(key: ChildKey) -> bool:
            return key[0] == kind[1] and (namespace is None or key[1] == namespace)

        if feed == OTHERS:
            self._others -= {key for key in self._others if in_scope(key) and key not in seen}
        else:
            gone = [obj for key, obj in self._objects.items() if in_scope(key) and key not in seen]
            for obj in gone:
                self.remove(obj)

    def _record(self, feed: str, event: str, obj: dict[str, Any]) -> None:
        if feed == OTHERS:
            key = _child_key(obj)
            if event == "DELETED":
                self._others.discard(key)
            else:
                self._others.add(key)
        elif event == "DELETED":
            self.remove(obj)
        else:
            self.put(obj, event=event)


def _child_key(obj: dict[str, Any]) -> ChildKey:
    metadata = obj["metadata"]
    return obj["kind"], sys.intern(metadata.get("namespace", "")), metadata["name"]


async def list_then_watch(
    client: KubeClient,
    kind: Kind,
    path: str,
    *,
    selector: str | None,
    accept: tuple[str | None, str | None],
    on_listed: Callable[[list[dict[str, Any]]], None],
    on_event: Callable[[str, dict[str, Any]], None],
    synced: asyncio.Event,
    on_error: OnError | None = None,
    read_timeout: float = READ_TIMEOUT_SECONDS,
) -> None:
    """List ``path`` (``on_listed`` with every object), set ``synced``, then watch from there
    (``on_event`` per change). Runs until cancelled. ``accept``: the media types of the list
    and of the watch (None: JSON).

    A watch the server ends, or that fails (a connection lost, silent for ``read_timeout``
    seconds, an error answer), is resumed from the last resourceVersion seen: no event is
    missed and nothing is listed again. Only when that version is too old for the server
    (410 Gone) is the collection listed again. Each failure is logged once, naming what was
    watched, and passed to ``on_error`` as a short reason (e.g. ``ReadTimeout``); retries back
    off up to :data:`MAX_RETRY_SECONDS`.
    """
    watch = _ListWatch(client, kind, path, selector=selector, accept=accept)
    await watch.run(on_listed, on_event, synced, on_error, read_timeout=read_timeout)


class WatchExpiredError(Exception):
    """The version to resume from is too old for the server (410 Gone): list again."""


def failure_reason(error: BaseException) -> str:
    """A short, bounded name for why a list or watch failed (a metric label)."""
    if isinstance(error, ApiError):
        return error.reason or f"HTTP{error.status}"
    if isinstance(error, aiohttp.SocketTimeoutError):
        return "ReadTimeout"  # no data, not even a bookmark: a silent connection
    if isinstance(error, TimeoutError):
        return "Timeout"
    if isinstance(error, aiohttp.ClientError | OSError):
        return "ConnectionError"
    if isinstance(error, ValueError):
        return "InvalidResponse"
    return "Unexpected"


class _ListWatch:
    """The state of one list-then-watch loop: the version to resume from."""

    def __init__(
        self,
        client: KubeClient,
        kind: Kind,
        path: str,
        *,
        selector: str | None,
        accept: tuple[str | None, str | None],
    ) -> None:
        self.client, self.kind, self.path = client, kind, path
        self.selector, self.accept = selector, accept
        self.version: str | None = None  # None: list (again)
        self.heard = False  # whether the current watch has had an event (a bookmark counts)
        self.what = f"{kind[1]} at {path}" + (f" ({selector})" if selector else "")

    async def run(
        self,
        on_listed: Callable[[list[dict[str, Any]]], None],
        on_event: Callable[[str, dict[str, Any]], None],
        synced: asyncio.Event,
        on_error: OnError | None,
        *,
        read_timeout: float,
    ) -> None:
        failures = 0
        while True:
            try:
                if self.version is None:
                    items, self.version = await self._list()
                    on_listed(items)
                    synced.set()
                # Until the server ends it (after WATCH_SECONDS): then resumed at once.
                await self._watch(self.version, on_event, read_timeout, on_error)
                failures = 0
            except asyncio.CancelledError:
                raise
            except WatchExpiredError:
                logger.info("Watch of %s expired (410 Gone); listing again", self.what)
                self.version = None
            except Exception as error:  # a watch must not end unseen: the cache would go stale
                failures = 1 if self.heard else failures + 1
                self._report(error, on_error, delay := _backoff(failures))
                await asyncio.sleep(delay)

    def _report(self, error: Exception, on_error: OnError | None, delay: float) -> None:
        reason = failure_reason(error)
        doing = "Listing" if self.version is None else "Watch of"
        then = (
            "listing again"
            if self.version is None
            else f"resuming from resourceVersion {self.version}"
        )
        if reason == "Unexpected":
            logger.exception("%s %s failed; %s in %.0fs", doing, self.what, then, delay)
        else:
            logger.warning(
                "%s %s failed (%s: %s); %s in %.0fs", doing, self.what, reason, error, then, delay
            )
        if on_error is not None:
            try:
                on_error(reason)
            except Exception:  # counting must not stop the watch
                logger.exception("Counting a failure of the watch of %s failed", self.what)

    async def _list(self) -> tuple[list[dict[str, Any]], str]:
        """Every object, a page of 500 at a time, and the version of the listing."""
        params = {"limit": "500"}
        if self.selector:
            params["labelSelector"] = self.selector
        items: list[dict[str, Any]] = []
        while True:
            page = await self.client.request("GET", self.path, params=params, accept=self.accept[0])
            version = str(page["metadata"]["resourceVersion"])
            for item in page.get("items") or []:  # null in an empty metadata list
                item["apiVersion"], item["kind"] = self.kind
                items.append(item)
            token = page["metadata"].get("continue")
            if not token:
                return items, version
            params["continue"] = token

    def _pass_on(
        self,
        on_event: Callable[[str, dict[str, Any]], None],
        event: str,
        obj: dict[str, Any],
        on_error: OnError | None,
    ) -> None:
        """Give the consumer one event. A consumer that fails on it is logged and counted, and
        the watch goes on past that event: retrying it would hold every later event back (the
        next listing or drift pass brings the object again)."""
        try:
            on_event(event, obj)
        except Exception:
            name = (obj.get("metadata") or {}).get("name")
            logger.exception("Handling the %s event of %s %s failed", event, self.what, name)
            if on_error is not None:
                on_error("ConsumerError")

    async def _watch(
        self,
        version: str,
        on_event: Callable[[str, dict[str, Any]], None],
        read_timeout: float,
        on_error: OnError | None = None,
    ) -> None:
        """Pass on the events after ``version`` until the server ends the watch, keeping the
        version of the latest as the one to resume from."""
        params = {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        if self.selector:
            params["labelSelector"] = self.selector
        self.heard = False
        try:
            events = self.client.stream(
                self.path, params=params, accept=self.accept[1], read_timeout=read_timeout
            )
            async for event in events:
                kind_of_event, obj = event.get("type"), event.get("object") or {}
                if kind_of_event == "ERROR":
                    status = obj.get("code") or 500
                    if status == 410:
                        raise WatchExpiredError()
                    raise ApiError(status, str(obj.get("reason", "")), str(obj.get("message")), obj)
                self.heard = True
                seen = (obj.get("metadata") or {}).get("resourceVersion")
                if kind_of_event != "BOOKMARK":
                    obj["apiVersion"], obj["kind"] = self.kind
                    self._pass_on(on_event, str(kind_of_event), obj, on_error)
                self.version = seen or self.version
        except ApiError as error:
            if error.status == 410:
                raise WatchExpiredError() from error
            raise


def _backoff(failures: int) -> float:
    return float(min(RETRY_SECONDS * 2 ** (failures - 1), MAX_RETRY_SECONDS))


def watched_key(obj: dict[str, Any]) -> str:
    """How :class:`WatchedObjects` files an object: its name, ``namespace/name`` if namespaced."""
    metadata = obj["metadata"]
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata['name']}" if namespace else str(metadata["name"])


class WatchedObjects:
    """Every object of one kind (that ``selector`` selects), in full, kept current by a watch
    of every namespace: for kinds with few objects that the operator consults on every
    reconcile (DataDomains; the PersistentVolumes it labelled; access requests). Filed by name,
    a namespaced object by ``namespace/name`` (:func:`watched_key`)."""

    def __init__(
        self,
        client: KubeClient,
        kind: Kind,
        on_change: OnChange | None = None,
        *,
        on_error: OnError | None = None,
        selector: str | None = None,
    ) -> None:
        self._client = client
        self._selector = selector
        self._on_error = on_error
        self._kind = kind
        self._on_change = on_change
        self._objects: dict[str, dict[str, Any]] = {}
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            list_then_watch(
                self._client,
                self._kind,
                KNOWN_RESOURCES[self._kind].path(),
                selector=self._selector,
                accept=(None, None),
                on_listed=self._listed,
                on_event=self._record,
                synced=self._synced,
                on_error=self._on_error,
            )
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def wait_synced(self, timeout: float = SYNC_SECONDS) -> None:
        """Return once listed; fail (to be retried) after ``timeout``."""
        await wait_listed({(f"{self._kind[1]}s", ""): self._synced}, timeout)

    def items(self) -> list[dict[str, Any]]:
        return list(self._objects.values())

    def get(self, name: str) -> dict[str, Any] | None:
        """The object of that name (``namespace/name`` for a namespaced kind)."""
        return self._objects.get(name)

    def put(self, obj: dict[str, Any]) -> None:
        """Record an object as the operator just wrote it, telling no one: its watch event is
        then nothing new, and the next reconcile sees the write."""
        key = watched_key(obj)
        cached = self._objects.get(key)
        if cached is None or _newer(obj, cached):
            self._objects[key] = obj

    def _listed(self, items: list[dict[str, Any]]) -> None:
        names = {watched_key(item) for item in items}
        for name in [name for name in self._objects if name not in names]:
            self._record("DELETED", self._objects[name])
        for item in items:
            self._record("LISTED", item)

    def _record(self, event: str, obj: dict[str, Any]) -> None:
        name = watched_key(obj)
        if event == "DELETED":
            if self._objects.pop(name, None) is None:
                return
        else:
            cached = self._objects.get(name)
            if cached is not None and not _newer(obj, cached):
                return
            self._objects[name] = obj
        if self._on_change is not None:
            self._on_change(event, obj)
