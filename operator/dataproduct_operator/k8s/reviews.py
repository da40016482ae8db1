"""Who a bearer token belongs to, and what that user may do (layer ``k8s``).

The API server answers both questions for a service that holds no user database: a
``TokenReview`` (authentication.k8s.io/v1) says whose a token is, a ``SubjectAccessReview``
(authorization.k8s.io/v1) whether that user may do one thing. The catalog's ``--auth
kubernetes`` asks them; its identity needs ``create`` on both (see ``manifests/rbac.py``).
Answers are typed values; the token itself is sent and never kept or logged here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataproduct_operator.k8s.client import KubeClient

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"  # noqa: S105 - a path
SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


@dataclass(frozen=True)
class ReviewedUser:
    """The user a TokenReview found: what a SubjectAccessReview needs to ask for them."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()  # sorted, so it can be a cache key

    @classmethod
    def from_status(cls, user: dict[str, Any]) -> ReviewedUser:
        extra = user.get("extra") or {}
        return cls(
            username=str(user.get("username", "")),
            uid=str(user.get("uid", "")),
            groups=tuple(str(g) for g in user.get("groups") or ()),
            extra=tuple(sorted((str(k), tuple(str(v) for v in vs)) for k, vs in extra.items())),
        )


@dataclass(frozen=True)
class TokenVerdict:
    """What the API server said of a token: the user, or why not (its ``status.error``)."""

    user: ReviewedUser | None
    error: str = ""


async def review_token(
    client: KubeClient, token: str, audiences: tuple[str, ...] = ()
) -> TokenVerdict:
    """Ask the API server whose ``token`` is. With ``audiences``, the token must be meant for
    one of them (the API server checks, and says which it matched)."""
    spec: dict[str, Any] = {"token": token}
    if audiences:
        spec["audiences"] = list(audiences)
    review = await client.request(
        "POST",
        TOKEN_REVIEWS,
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec},
    )
    status = review.get("status") or {}
    if not status.get("authenticated"):
        return TokenVerdict(None, str(status.get("error") or "token not authenticated"))
    if audiences and not set(audiences) & set(status.get("audiences") or ()):
        return TokenVerdict(None, "token not meant for this audience")
    return TokenVerdict(ReviewedUser.from_status(status.get("user") or {}))


@dataclass(frozen=True)
class ResourceAction:
    """One verb on one resource, in a namespace ("" for every namespace)."""

    verb: str
    group: str
    resource: str
    namespace: str = ""


async def may(client: KubeClient, user: ReviewedUser, action: ResourceAction) -> bool:
    """Whether ``user`` may do ``action``: the API server's authorizers decide, as for a
    request of that user's own."""
    attributes = {"verb": action.verb, "group": action.group, "resource": action.resource}
    if action.namespace:
        attributes["namespace"] = action.namespace
    spec: dict[str, Any] = {
        "user": user.username,
        "groups": list(user.groups),
        "resourceAttributes": attributes,
    }
    if user.uid:
        spec["uid"] = user.uid
    if user.extra:
        spec["extra"] = {key: list(values) for key, values in user.extra}
    review = await client.request(
        "POST",
        SUBJECT_ACCESS_REVIEWS,
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
    )
    return bool((review.get("status") or {}).get("allowed"))
