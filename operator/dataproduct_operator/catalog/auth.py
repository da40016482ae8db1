"""``--auth kubernetes``: who calls the catalog, and what they may see (layer ``catalog``,
imperative).

An aiohttp middleware in front of every route but ``/healthz`` and ``/static/``: a request
needs ``Authorization: Bearer <token>`` (else 401 with ``WWW-Authenticate``); the API server
says whose the token is (TokenReview) and, per namespace the catalog holds products or domains
in, whether that user may ``list dataproducts`` there (SubjectAccessReview; one cluster-wide
review first, so a user allowed everywhere costs one). The request then reads the store through
a :class:`~dataproduct_operator.catalog.access.ScopedStore` of those namespaces: pages, search,
JSON API, lineage and exports show nothing else, and the views stay unaware of callers.

Both answers are kept for a short time (:class:`AuthSettings`; bounded in entries, least
recently used out first), so a page view costs no API request once a user's first one is
answered; concurrent requests wait for the one review in flight. Tokens are kept only as their
SHA-256 and never logged. The cost of the cache: a token revoked or a RoleBinding removed still
works for up to the TTL.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import aiohttp
from aiohttp import web

from dataproduct_operator.api.dataproduct import PLURAL
from dataproduct_operator.api.kinds import GROUP
from dataproduct_operator.catalog import urls
from dataproduct_operator.catalog.access import NamespaceAccess, namespaces_shown, scoped
from dataproduct_operator.catalog.server import VIEW_KEY, Handler
from dataproduct_operator.catalog.store import CatalogStore
from dataproduct_operator.k8s.client import KubeClient, gather_limited
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.k8s.reviews import (
    ResourceAction,
    ReviewedUser,
    TokenVerdict,
    may,
    review_token,
)

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

REALM = "dataproduct-catalog"
# A ServiceAccount token is about 1 KB, an OIDC ID token a few; longer is no token.
MAX_TOKEN_CHARACTERS = 8192
# Reviews of one request's namespaces at once: enough for a mesh of many domains, few enough
# to leave the API server's and the client's connections to the watches.
REVIEWS_AT_ONCE = 8
OPEN_PATHS = ("/healthz",)


class AuthMode(enum.StrEnum):
    """How the catalog checks its callers (``--auth``)."""

    NONE = "none"  # everyone sees what the Visibility shows: behind a proxy that checks, or local
    KUBERNETES = "kubernetes"  # bearer tokens checked and callers' views filtered by the API server


@dataclass(frozen=True)
class AuthSettings:
    """How ``--auth kubernetes`` checks and how long it keeps what it learnt."""

    # Audiences a token must be meant for (--auth-audience); empty: the API server's own.
    audiences: tuple[str, ...] = ()
    # Seconds a TokenReview's answer is kept: a revoked token works this much longer at most.
    token_ttl_seconds: float = 60.0
    # Seconds a SubjectAccessReview's answer is kept: a RoleBinding removed (or added) shows
    # this much later at most.
    access_ttl_seconds: float = 30.0
    # Answers kept of each kind; the least recently used go first.
    max_entries: int = 4096


class TtlCache(Generic[K, V]):
    """At most ``max_entries`` values, each for ``ttl`` seconds of ``clock``; the least recently
    used go first when full."""

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)


async def _kept(
    cache: TtlCache[K, asyncio.Future[V]], key: K, answer: Callable[[], Awaitable[V]]
) -> V:
    """The answer kept under ``key``, else ``answer()``'s, kept. Kept as a future, so
    concurrent askers share one request; a failure is not kept (the next asker tries again)."""
    future = cache.get(key)
    if future is None:
        future = asyncio.ensure_future(answer())
        cache.put(key, future)
    try:
        return await asyncio.shield(future)
    except Exception:
        cache.forget(key)
        raise


def bearer_token(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, if the request has one of a sane size."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARACTERS:
        return None
    return token


class KubernetesAuth:
    """The ``--auth kubernetes`` middleware over ``store``; see the module docstring. Counts
    the reviews it sent (``token_reviews``, ``access_reviews``) for its tests and benchmarks."""

    def __init__(
        self,
        client: KubeClient,
        store: CatalogStore,
        settings: AuthSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.store = store
        self.settings = settings or AuthSettings()
        entries = self.settings.max_entries
        self._users: TtlCache[bytes, asyncio.Future[TokenVerdict]] = TtlCache(
            self.settings.token_ttl_seconds, entries, clock
        )
        self._decisions: TtlCache[tuple[ReviewedUser, str], asyncio.Future[bool]] = TtlCache(
            self.settings.access_ttl_seconds, entries, clock
        )
        self.token_reviews = 0
        self.access_reviews = 0

    async def verdict(self, token: str) -> TokenVerdict:
        """Whose ``token`` is, as the API server said within the TTL."""
        digest = hashlib.sha256(token.encode()).digest()  # the token itself is not kept

        async def review() -> TokenVerdict:
            self.token_reviews += 1
            return await review_token(self.client, token, self.settings.audiences)

        return await _kept(self._users, digest, review)

    async def may_list(self, user: ReviewedUser, namespace: str) -> bool:
        """Whether ``user`` may list DataProducts in ``namespace`` ("" for cluster-wide)."""

        async def review() -> bool:
            self.access_reviews += 1
            action = ResourceAction("list", GROUP, PLURAL, namespace)
            return await may(self.client, user, action)

        return await _kept(self._decisions, (user, namespace), review)

    async def access(self, user: ReviewedUser) -> NamespaceAccess:
        """The namespaces whose products ``user`` may see in the catalog."""
        if await self.may_list(user, ""):
            return NamespaceAccess.everything()
        namespaces = sorted(namespaces_shown(self.store))
        allowed = await gather_limited(
            REVIEWS_AT_ONCE, *(self.may_list(user, namespace) for namespace in namespaces)
        )
        return NamespaceAccess.only(n for n, yes in zip(namespaces, allowed, strict=True) if yes)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or request.path.startswith("/static/"):
            return await handler(request)
        token = bearer_token(request)
        if token is None:
            return _unauthorized(request, "Send the request with Authorization: Bearer <token>")
        try:
            verdict = await self.verdict(token)
            if verdict.user is None:
                logger.info("Catalog request to %s refused: %s", request.path, verdict.error)
                return _unauthorized(request, "The token was not accepted", invalid=True)
            access = await self.access(verdict.user)
        except (ApiError, aiohttp.ClientError, TimeoutError) as error:
            # ApiError carries the API server's message, never the request's body (the token).
            logger.warning("Cannot check a catalog caller with the API server: %s", error)
            return _answer(
                request, 503, "ReviewUnavailable", "Cannot check the caller now; try again soon"
            )
        request[VIEW_KEY] = scoped(self.store, access)
        response = await handler(request)
        # What a response shows depends on who asked: no shared cache may serve it to another.
        response.headers["Cache-Control"] = "private, no-store"
        response.headers["Vary"] = "Authorization"
        return response


def _answer(
    request: web.Request,
    status: int,
    reason: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An error answer in the catalog's shapes: JSON under /api, text elsewhere."""
    if request.path == urls.API or request.path.startswith(urls.API + "/"):
        body = {"error": {"code": status, "reason": reason, "message": message}}
        return web.json_response(
            body, status=status, headers=headers, dumps=lambda d: json.dumps(d, indent=2)
        )
    return web.Response(text=message + "\n", status=status, headers=headers)


def _unauthorized(request: web.Request, message: str, *, invalid: bool = False) -> web.Response:
    challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if invalid else "")
    return _answer(
        request,
        401,
        "Unauthorized",
        message,
        {"WWW-Authenticate": challenge, "Cache-Control": "no-store"},
    )
