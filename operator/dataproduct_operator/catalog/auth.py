"""``--auth kubernetes``: who calls the catalog, and what they may see (layer ``catalog``,
imperative).

An aiohttp middleware in front of every route but ``/healthz``, ``/static/`` and ``/login``:
a request needs ``Authorization: Bearer <token>`` (else 401 with ``WWW-Authenticate``); the API
server says whose the token is (TokenReview) and, per namespace the catalog holds products or
domains in, whether that user may ``list dataproducts`` there (SubjectAccessReview; one
cluster-wide review first, so a user allowed everywhere costs one). The request then reads the
store through a :class:`~dataproduct_operator.catalog.access.ScopedStore` of those namespaces:
pages, search, JSON API, lineage and exports show nothing else, and the views stay unaware of
callers.

Browsers: ``/login`` takes a pasted token (checked with a TokenReview first) into an HttpOnly,
SameSite=Strict session cookie that stands in for the header; ``/logout`` drops it; a form
posted from another origin is refused. A proxy that sends the header (docs/catalog.md) needs
neither.

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
import yarl
from aiohttp import web

from dataproduct_operator.api.dataproduct import PLURAL
from dataproduct_operator.api.kinds import GROUP
from dataproduct_operator.catalog import urls
from dataproduct_operator.catalog.access import NamespaceAccess, namespaces_shown, scoped
from dataproduct_operator.catalog.server import TEMPLATES_KEY, VIEW_KEY, Handler
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
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
TOKEN_COOKIE = "dpo-catalog-token"  # noqa: S105 - the cookie's name


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


def _sane(token: str) -> str | None:
    token = token.strip()
    return token if token and len(token) <= MAX_TOKEN_CHARACTERS else None


def bearer_token(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, if the request has one of a sane size."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    return _sane(token) if scheme.lower() == "bearer" else None


def request_token(request: web.Request) -> str | None:
    """The caller's token: the Authorization header's, else the sign-in cookie's."""
    if "Authorization" in request.headers:
        return bearer_token(request)
    return _sane(request.cookies.get(TOKEN_COOKIE, ""))


def _same_origin(request: web.Request) -> bool:
    """Whether a form post comes from the catalog's own pages (browsers send Origin with every
    POST; a client without it is no browser to be tricked)."""
    origin = request.headers.get("Origin")
    return origin is None or yarl.URL(origin).host_port_subcomponent == request.host


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
        if request.path in (LOGIN_PATH, LOGOUT_PATH):
            return await self._sign_in_or_out(request)
        token = request_token(request)
        if token is None:
            return _unauthorized(request, "Send the request with Authorization: Bearer <token>")
        try:
            verdict = await self.verdict(token)
            if verdict.user is None:
                logger.info("Catalog request to %s refused: %s", request.path, verdict.error)
                return _unauthorized(request, "The token was not accepted", invalid=True)
            access = await self.access(verdict.user)
        except (ApiError, aiohttp.ClientError, TimeoutError) as error:
            return _unavailable(request, error)
        request[VIEW_KEY] = scoped(self.store, access)
        response = await handler(request)
        # What a response shows depends on who asked: no shared cache may serve it to another.
        response.headers["Cache-Control"] = "private, no-store"
        response.headers["Vary"] = "Authorization"
        return response

    async def _sign_in_or_out(self, request: web.Request) -> web.StreamResponse:
        """The sign-in form (GET /login), taking a token (POST /login), dropping it (POST
        /logout)."""
        if request.method not in ("GET", "HEAD", "POST"):
            return _answer(request, 405, "MethodNotAllowed", "GET or POST", {"Allow": "GET, POST"})
        if request.method != "POST":
            return _login_page(request, signed_in=TOKEN_COOKIE in request.cookies)
        if not _same_origin(request):
            return _answer(request, 403, "Forbidden", "Sign in from the catalog's own page")
        if request.path == LOGOUT_PATH:
            response = _see_other(LOGIN_PATH)
            response.del_cookie(TOKEN_COOKIE, path="/")
            return response
        return await self._sign_in(request)

    async def _sign_in(self, request: web.Request) -> web.StreamResponse:
        """A posted token, checked, into the sign-in cookie; the form again if refused."""
        form = await request.post()
        token = _sane(str(form.get("token", "")))
        if token is None:
            return _login_page(request, status=400, message="Paste a token")
        try:
            verdict = await self.verdict(token)
        except (ApiError, aiohttp.ClientError, TimeoutError) as error:
            return _unavailable(request, error)
        if verdict.user is None:
            logger.info("Catalog sign-in refused: %s", verdict.error)
            return _login_page(request, status=401, message="The token was not accepted")
        response = _see_other("/")
        secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
        # A session cookie: the token's own expiry still applies (checked on every review).
        response.set_cookie(
            TOKEN_COOKIE, token, path="/", httponly=True, samesite="Strict", secure=secure
        )
        return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _login_page(
    request: web.Request, *, status: int = 200, message: str = "", signed_in: bool = False
) -> web.Response:
    page = request.app[TEMPLATES_KEY].get_template("login.html.j2")
    text = page.render(path=request.path, message=message, signed_in=signed_in)
    return web.Response(
        text=text, content_type="text/html", status=status, headers={"Cache-Control": "no-store"}
    )


def _is_api(request: web.Request) -> bool:
    return request.path == urls.API or request.path.startswith(urls.API + "/")


def _unavailable(request: web.Request, error: Exception) -> web.Response:
    # ApiError carries the API server's message, never the request's body (the token).
    logger.warning("Cannot check a catalog caller with the API server: %s", error)
    return _answer(request, 503, "ReviewUnavailable", "Cannot check the caller now; try again soon")


def _answer(
    request: web.Request,
    status: int,
    reason: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An error answer in the catalog's shapes: JSON under /api, text elsewhere."""
    if _is_api(request):
        body = {"error": {"code": status, "reason": reason, "message": message}}
        return web.json_response(
            body, status=status, headers=headers, dumps=lambda d: json.dumps(d, indent=2)
        )
    return web.Response(text=message + "\n", status=status, headers=headers)


def _sign_in_page(request: web.Request, message: str, headers: dict[str, str]) -> web.Response:
    """A 401 for a browser: the sign-in form, saying why."""
    response = _login_page(request, status=401, message=message)
    response.headers.update(headers)
    return response


def _unauthorized(request: web.Request, message: str, *, invalid: bool = False) -> web.Response:
    challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if invalid else "")
    headers = {"WWW-Authenticate": challenge, "Cache-Control": "no-store"}
    if _is_api(request):
        return _answer(request, 401, "Unauthorized", message, headers)
    return _sign_in_page(request, message, headers)
