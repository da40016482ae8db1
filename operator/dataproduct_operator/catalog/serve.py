"""``dpo catalog``: the catalog in a process of its own (layer ``catalog``, imperative)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from dataproduct_operator.catalog.auth import AuthMode, AuthSettings, KubernetesAuth
from dataproduct_operator.catalog.limits import CatalogLimits
from dataproduct_operator.catalog.model import Visibility
from dataproduct_operator.catalog.server import on_loop, start_catalog
from dataproduct_operator.catalog.store import CatalogStore
from dataproduct_operator.catalog.watch import MeshWatch
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.k8s.informer import CacheNotSyncedError
from dataproduct_operator.openlineage.endpoint import DEFAULT_NAMESPACE as DEFAULT_LINEAGE_NAMESPACE

logger = logging.getLogger(__name__)


async def serve_forever(
    *,
    kubeconfig: Path | None,
    context: str | None = None,
    namespaces: tuple[str, ...],
    host: str,
    port: int,
    visibility: Visibility,
    public_url: str | None = None,
    limits: CatalogLimits | None = None,
    auth: AuthMode = AuthMode.NONE,
    auth_settings: AuthSettings | None = None,
    lineage_namespace: str = DEFAULT_LINEAGE_NAMESPACE,
) -> None:
    """Watch the mesh and serve the catalog until cancelled (Ctrl-C); with ``auth``
    kubernetes, to callers with a bearer token the API server accepts, each shown what it may
    list (see :mod:`~dataproduct_operator.catalog.auth`)."""
    # Loading may run an exec credential plugin: not on the event loop.
    credentials = await asyncio.to_thread(Credentials.from_environment, kubeconfig, context=context)
    client = KubeClient(credentials)
    store = CatalogStore(visibility)
    watch = MeshWatch(client, store, namespaces=namespaces)
    checks = None
    if auth is AuthMode.KUBERNETES:
        checks = KubernetesAuth(on_loop(client), store, auth_settings).middleware
        logger.info("Catalog callers need a bearer token (TokenReview, SubjectAccessReview)")
    try:
        watch.start()
        runner = await start_catalog(
            store,
            host=host,
            port=port,
            public_url=public_url,
            limits=limits,
            auth=checks,
            lineage_namespace=lineage_namespace,
        )
        try:
            while True:
                try:
                    await watch.wait_synced()
                    break
                except CacheNotSyncedError as error:
                    # Pages answer 503 meanwhile (and /healthz keeps a replica out of its
                    # Service); the watches keep trying: RBAC may be granted, a server recover.
                    logger.warning("%s; still trying", error.message)
            logger.info(
                "Catalog ready: %d products, %d domains",
                len(store.products()),
                len(store.domains()),
            )
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
    finally:
        await watch.stop()
        await client.close()
