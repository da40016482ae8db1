"""Running the operator: kopf's registry and settings, and everything beside it (layer
``handlers``).

kopf watches the three kinds and passes every event to the runtime; the runtime (started here,
with leader election unless switched off) does the work. Beside them: the metrics endpoint, the
health endpoint and, when asked, the catalog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, cast

import kopf
from aiohttp import web
from prometheus_client import start_http_server

from dataproduct_operator.catalog.auth import AuthMode, KubernetesAuth
from dataproduct_operator.catalog.model import Visibility
from dataproduct_operator.catalog.server import on_loop, start_catalog
from dataproduct_operator.catalog.store import CatalogStore
from dataproduct_operator.catalog.watch import MeshWatch
from dataproduct_operator.config import OperatorConfig
from dataproduct_operator.constants import KOPF_PREFIX
from dataproduct_operator.errors import UserError
from dataproduct_operator.handlers import datadomain, dataproduct, datastore, meshpolicy
from dataproduct_operator.k8s.client import CONNECT_SECONDS, KubeClient
from dataproduct_operator.k8s.credentials import Credentials, Identity
from dataproduct_operator.k8s.informer import READ_TIMEOUT_SECONDS, WATCH_SECONDS, OnError
from dataproduct_operator.runtime.health import start_health_server
from dataproduct_operator.runtime.leader import LeaseSettings, default_lease_namespace
from dataproduct_operator.runtime.operator import OperatorRuntime

logger = logging.getLogger(__name__)
HEALTH_HOST = "0.0.0.0"  # noqa: S104 - the kubelet probes the pod's own address


class _RoutineHandlerLines(logging.Filter):
    """Drops kopf's line for each event handled without trouble (one per watch event)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        routine = message.startswith("Handler '") and message.endswith(" succeeded.")
        return not (record.levelno == logging.INFO and routine)


def configure_logging(*, verbose: bool) -> None:
    """kopf's log format, each line prefixed with the object it is about."""
    kopf.configure(verbose=verbose, log_prefix=True)
    if not verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_RoutineHandlerLines())


class _NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """Nothing here diffs bodies (no create/update handlers): skip kopf's deep copy of the body
    of every event, a tenth of the operator's time under load."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})


def configure_kopf(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """kopf settings: its annotation prefix, no diff bases, quiet events, no peering, watches
    that are reopened when silent."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = _NoDiffBase(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    # kopf's own "Handler succeeded" events would be one write per handler run.
    settings.posting.level = logging.WARNING
    settings.peering.standalone = True
    settings.scanning.disabled = True
    # kopf's watches as the operator's own (k8s.informer): ended by the server after a few
    # minutes and resumed; given up and resumed when silent (not even a bookmark) for longer
    # than the read timeout; a connection not made in 30 s is tried again.
    settings.watching.server_timeout = WATCH_SECONDS
    settings.watching.client_timeout = WATCH_SECONDS + 60
    settings.watching.connect_timeout = CONNECT_SECONDS
    settings.watching.inactivity_timeout = READ_TIMEOUT_SECONDS
    settings.batching.worker_limit = config.workers


def connection_info(identity: Identity) -> kopf.ConnectionInfo:
    """kopf's view of the operator's credentials; with their expiration, when known, so that
    kopf logs in again in time."""
    scheme, _, token = (identity.authorization or "").partition(" ")
    return kopf.ConnectionInfo(
        server=identity.server,
        ca_path=identity.ca_file,
        insecure=not identity.verify,
        scheme=scheme or None,
        token=token or None,
        certificate_path=identity.cert_file,
        private_key_path=identity.key_file,
        expiration=identity.expiration,
    )


def login_handler(credentials: Credentials) -> Callable[..., Awaitable[kopf.ConnectionInfo]]:
    """kopf's login: the credentials of the operator's own client."""
    handed: list[Identity] = []  # what kopf was given last

    async def login(**_: Any) -> kopf.ConnectionInfo:
        # kopf logs in again when what it has expires or is refused (a 401): then load anew,
        # unless the operator's own client has done so since.
        if handed:
            await credentials.refresh(rejected=handed[-1].authorization)
        elif credentials.due():
            await credentials.refresh_if_due()
        handed[:] = [credentials.identity()]
        return connection_info(handed[-1])

    return login


def build_registry(runtime: OperatorRuntime) -> kopf.OperatorRegistry:
    """A registry with every handler of the operator, feeding ``runtime``."""
    registry = kopf.OperatorRegistry()
    kopf.on.login(id="login", registry=registry)(login_handler(runtime.client.credentials))

    @kopf.on.startup(id="configure", registry=registry)
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings, runtime.config)

    dataproduct.register(registry, runtime)
    datadomain.register(registry, runtime)
    meshpolicy.register(registry, runtime)
    datastore.register(registry, runtime)
    return registry


def lease_settings(config: OperatorConfig) -> LeaseSettings | None:
    if not config.leader_election:
        return None
    namespace = config.leader_election_namespace or default_lease_namespace()
    return LeaseSettings(
        namespace=namespace, name=config.lease_name, identity=config.lease_identity or ""
    )


async def run_operator(config: OperatorConfig, *, stop_flag: asyncio.Event | None = None) -> None:
    """Run until stopped (a signal, or ``stop_flag``)."""
    # Loading may run an exec credential plugin: not on the event loop.
    credentials = await asyncio.to_thread(
        Credentials.from_environment, config.kubeconfig, context=config.context
    )
    client = KubeClient(credentials)
    runtime = OperatorRuntime(client, config)
    if config.metrics_port is not None:
        try:
            start_http_server(config.metrics_port, registry=runtime.metrics.registry)
        except OSError as error:
            raise UserError(
                f"Cannot serve metrics on port {config.metrics_port}: {error.strerror}; "
                "choose another with --metrics-port (0 disables)"
            ) from error
        logger.info("Serving metrics on port %s", config.metrics_port)
    catalog = serve_catalog(client, config, on_error=runtime.watch_failed)
    async with serve_health(runtime, config), catalog:
        runtime.start(lease_settings(config))
        try:
            await kopf.operator(
                registry=build_registry(runtime),
                clusterwide=not config.namespaces,
                namespaces=list(config.namespaces),
                standalone=True,
                stop_flag=stop_flag,
            )
        finally:
            await runtime.stop()
            await client.close()


@contextlib.asynccontextmanager
async def serve_health(runtime: OperatorRuntime, config: OperatorConfig) -> AsyncIterator[None]:
    """``/healthz`` on the liveness port, when one is set."""
    if config.liveness_port is None:
        yield
        return
    try:
        runner: web.AppRunner = await start_health_server(
            runtime.health,
            host=HEALTH_HOST,
            port=config.liveness_port,
        )
    except OSError as error:
        raise UserError(
            f"Cannot serve /healthz on port {config.liveness_port}: {error.strerror}; "
            "choose another with --liveness-port (0 disables)"
        ) from error
    try:
        yield
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def serve_catalog(
    client: KubeClient, config: OperatorConfig, *, on_error: OnError | None = None
) -> AsyncIterator[None]:
    """The catalog beside the operator, on its own port and with its own watches, when asked;
    ``on_error`` is told why a watch failed."""
    if config.catalog_port is None:
        yield
        return
    store = CatalogStore(Visibility(show_domain_products=config.catalog_show_domain_products))
    watch = MeshWatch(client, store, namespaces=config.namespaces, on_error=on_error)
    checks = None
    if AuthMode(config.catalog_auth) is AuthMode.KUBERNETES:
        checks = KubernetesAuth(on_loop(client), store).middleware
    watch.start()
    try:
        runner = await start_catalog(
            store,
            host=config.catalog_host,
            port=config.catalog_port,
            public_url=config.catalog_public_url,
            limits=config.catalog_limits,
            auth=checks,
            lineage_namespace=config.openlineage_namespace,
        )
        try:
            yield
        finally:
            await runner.cleanup()
    finally:
        await watch.stop()
