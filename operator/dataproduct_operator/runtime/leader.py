"""Leader election on a ``coordination.k8s.io`` Lease (layer ``runtime``).

Only the leader reconciles; every replica watches, so a standby that takes over has warm caches.
The algorithm is client-go's: the holder renews the Lease every ``renew_every`` seconds; a
candidate takes it over when it is free, or when its record (holder, renew time) has not changed
for ``duration`` seconds as measured on the candidate's own monotonic clock (no comparison of
clocks across machines). Writes carry the resourceVersion read, so two candidates never both win.

A leader that cannot renew within ``renew_deadline`` (shorter than ``duration``, so it stops
before anyone may take over) stands down and becomes a candidate again; when the API server
was only away and nobody took the Lease, it leads again at its next try. On shutdown the leader
gives the Lease up, so a standby takes over at once.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.runtime.clock import Clock
from dataproduct_operator.runtime.errors import classify

logger = logging.getLogger(__name__)

LEASE = KNOWN_RESOURCES[("coordination.k8s.io/v1", "Lease")]
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_LEASE_NAME = "dataproduct-operator"


def default_lease_namespace() -> str:
    """The pod's namespace in a cluster, else $POD_NAMESPACE, else ``default``."""
    if IN_CLUSTER_NAMESPACE.is_file():
        return IN_CLUSTER_NAMESPACE.read_text().strip()
    return os.environ.get("POD_NAMESPACE") or "default"


def default_identity() -> str:
    """$POD_NAME when set (the chart sets it: a container restarted in its pod takes its own
    Lease back at once), else ``<hostname>_<random>``, unique per process."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{secrets.token_hex(4)}"


def micro_time(unix_seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(unix_seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseSettings:
    namespace: str
    name: str = DEFAULT_LEASE_NAME
    identity: str = ""
    duration: float = 10.0
    renew_deadline: float = 8.0
    renew_every: float = 2.0
    retry_every: float = 2.0


class LeaderElector:
    """See the module docstring. ``on_change(leading)`` is told of every change."""

    def __init__(
        self,
        client: KubeClient,
        settings: LeaseSettings,
        clock: Clock,
        on_change: Callable[[bool], None],
    ) -> None:
        self._client = client
        self._settings = settings
        self._identity = settings.identity or default_identity()
        self._clock = clock
        self._on_change = on_change
        self._path = LEASE.path(settings.namespace, settings.name)
        self._observed: tuple[Any, ...] | None = None  # holder, renewTime, duration
        self._observed_at = 0.0
        self._leading = False
        self._last_problem: str | None = None

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def leading(self) -> bool:
        return self._leading

    async def run(self) -> None:
        """Take the Lease, keep it while possible, take it again; until cancelled."""
        settings = self._settings
        while True:
            while not await self._try_acquire_or_renew():
                await self._clock.sleep(settings.retry_every)
            self._set_leading(True)
            last_renewed = self._clock.monotonic()
            while True:
                await self._clock.sleep(settings.renew_every)
                if await self._try_acquire_or_renew():
                    last_renewed = self._clock.monotonic()
                    continue
                if not self._holds_observed() or (
                    self._clock.monotonic() - last_renewed >= settings.renew_deadline
                ):
                    break
            self._set_leading(False)
            logger.warning(
                "Lost the leader lease %s/%s; reconciling stops until it is taken again",
                settings.namespace,
                settings.name,
            )

    def _set_leading(self, leading: bool) -> None:
        if leading != self._leading:
            self._leading = leading
            if leading:
                logger.info(
                    "Leading as %s (lease %s/%s)",
                    self._identity,
                    self._settings.namespace,
                    self._settings.name,
                )
            self._on_change(leading)

    def _holds_observed(self) -> bool:
        return self._observed is not None and self._observed[0] == self._identity

    async def _try_acquire_or_renew(self) -> bool:
        try:
            return await self._attempt()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            problem = classify(error).message
            if problem != self._last_problem:  # once per distinct problem, not every 2 s
                logger.warning(
                    "Leader lease %s/%s: %s; trying again every %ss",
                    self._settings.namespace,
                    self._settings.name,
                    problem,
                    self._settings.retry_every,
                )
                self._last_problem = problem
            return False

    async def _attempt(self) -> bool:
        settings = self._settings
        now_unix = self._clock.time()
        lease = await self._client.get(self._path)
        if lease is None:
            body = self._lease_body(None, now_unix)
            try:
                await self._client.request("POST", LEASE.path(settings.namespace), body)
            except ApiError as error:
                if error.status == 409:
                    return False  # another candidate made it first
                raise
            self._observe(body["spec"])
            return True
        spec = lease.get("spec") or {}
        self._observe(spec)
        holder = spec.get("holderIdentity") or ""
        expired = self._clock.monotonic() - self._observed_at >= float(
            spec.get("leaseDurationSeconds") or settings.duration
        )
        if holder and holder != self._identity and not expired:
            return False
        body = self._lease_body(lease, now_unix)
        try:
            updated = await self._client.request("PUT", self._path, body)
        except ApiError as error:
            if error.status == 409:
                return False  # changed since read: someone else renewed or took it
            raise
        self._observe(updated.get("spec") or {})
        self._last_problem = None
        return True

    def _observe(self, spec: dict[str, Any]) -> None:
        record = (
            spec.get("holderIdentity"),
            spec.get("renewTime"),
            spec.get("leaseDurationSeconds"),
        )
        if record != self._observed:
            self._observed = record
            self._observed_at = self._clock.monotonic()

    def _lease_body(self, lease: dict[str, Any] | None, now_unix: float) -> dict[str, Any]:
        settings = self._settings
        spec = dict((lease or {}).get("spec") or {})
        taking = spec.get("holderIdentity") != self._identity
        if taking:
            spec["acquireTime"] = micro_time(now_unix)
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (
                1 if lease is not None else 0
            )
        spec.update(
            holderIdentity=self._identity,
            leaseDurationSeconds=int(settings.duration),
            renewTime=micro_time(now_unix),
        )
        metadata: dict[str, Any] = {"name": settings.name, "namespace": settings.namespace}
        if lease is not None:
            metadata["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    async def release(self) -> None:
        """Give the Lease up if this process holds it (on shutdown)."""
        if not self._leading:
            return
        self._set_leading(False)
        try:
            lease = await self._client.get(self._path)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self._identity:
                return
            spec = {**lease["spec"], "holderIdentity": None, "leaseDurationSeconds": 1}
            body = {**lease, "spec": spec}
            await self._client.request("PUT", self._path, body)
            logger.info("Gave the leader lease up")
        except (ApiError, OSError) as error:
            logger.warning("Could not give the leader lease up: %s", error)
