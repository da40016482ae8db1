"""Who the operator is, and what it may do where (layer ``k8s``).

The operator binds its namespaced write powers to itself in each domain's namespace; it learns
its own username from the API server (a SelfSubjectReview, ``authentication.k8s.io/v1``, which
every authenticated identity may create), so no flag has to repeat what the credentials say.
After binding itself it waits, with SelfSubjectAccessReviews, until the API server's
authorizer has seen the binding, so the writes that follow are not refused for a moment.
"""

from __future__ import annotations

import asyncio
import time

from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.rest import ApiError

SELF_SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SELF_SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


class IdentityUnknownError(Exception):
    """The API server did not say who the operator is."""


async def own_username(client: KubeClient) -> str:
    """The operator's username as the API server authenticates it."""
    try:
        review = await client.request(
            "POST",
            SELF_SUBJECT_REVIEWS,
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
    except ApiError as error:
        raise IdentityUnknownError(
            "the operator could not learn its own username with a SelfSubjectReview "
            f"(authentication.k8s.io/v1, Kubernetes 1.28 or later): {error.message or error.reason}"
        ) from error
    username = ((review.get("status") or {}).get("userInfo") or {}).get("username")
    if not username:
        raise IdentityUnknownError("the SelfSubjectReview of the operator named no username")
    return str(username)


async def allowed(client: KubeClient, namespace: str, group: str, resource: str, verb: str) -> bool:
    """Whether the operator may ``verb`` ``resource`` in ``namespace`` right now."""
    review = await client.request(
        "POST",
        SELF_SUBJECT_ACCESS_REVIEWS,
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": namespace,
                    "group": group,
                    "resource": resource,
                    "verb": verb,
                }
            },
        },
    )
    return bool((review.get("status") or {}).get("allowed"))


async def wait_allowed(
    client: KubeClient,
    namespace: str,
    group: str,
    resource: str,
    verb: str,
    *,
    timeout: float = 5.0,
    interval: float = 0.05,
) -> bool:
    """Poll :func:`allowed` until it is true or ``timeout`` passed; whether it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if await allowed(client, namespace, group, resource, verb):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)


class Identity:
    """The operator's username, asked of the API server once and then remembered (a failure
    is not remembered: the next call asks again)."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client
        self._username: str | None = None

    async def username(self) -> str:
        if self._username is None:
            self._username = await own_username(self._client)
        return self._username
