"""Running the operator: registry, login, settings, metrics server (layer ``handlers``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import kopf
from prometheus_client import start_http_server

from dataproduct_operator.catalog.model import Visibility
from dataproduct_operator.catalog.server import start_catalog
from dataproduct_operator.catalog.store import CatalogStore
from dataproduct_operator.catalog.watch import MeshWatch
from dataproduct_operator.config import OperatorConfig
from dataproduct_operator.errors import UserError
from dataproduct_operator.handlers import datadomain, dataproduct, meshpolicy
from dataproduct_operator.handlers.state import OperatorState
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.credentials import Credentials, Identity

logger = logging.getLogger(__name__)


class _RoutineChildEvents(logging.Filter):
    """Drops kopf's line for each child event handled without trouble (one per Job update)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        routine = message.startswith("Handler 'follow-") and message.endswith(" succeeded.")
        return not (record.levelno == logging.INFO and routine)


def configure_logging(*, verbose: bool) -> None:
    """kopf's log format, each line prefixed with the object it is about."""
    kopf.configure(verbose=verbose, log_prefix=True)
    if not verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_RoutineChildEvents())


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


def build_registry(state: OperatorState) -> kopf.OperatorRegistry:
    """A registry with every handler of the operator, bound to ``state``."""
    registry = kopf.OperatorRegistry()
    kopf.on.login(id="login", registry=registry)(login_handler(state.client.credentials))

    @kopf.on.startup(id="configure", registry=registry)
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        dataproduct.configure(settings, state)

    @kopf.on.cleanup(id="close-client", registry=registry)
    async def cleanup(**_: Any) -> None:
        await state.stop_background()
        await state.client.close()

    @kopf.on.probe(id="products", registry=registry)
    def probe(**_: Any) -> int:
        return state.metrics.health.count()

    dataproduct.register(registry, state)
    datadomain.register(registry, state)
    meshpolicy.register(registry, state)
    return registry


async def run_operator(config: OperatorConfig, *, stop_flag: asyncio.Event | None = None) -> None:
    """Run until stopped (a signal, or ``stop_flag``)."""
    # Loading may run an exec credential plugin: not on the event loop.
    credentials = await asyncio.to_thread(
        Credentials.from_environment, config.kubeconfig, context=config.context
    )
    client = KubeClient(credentials)
    state = OperatorState(client=client, config=config)
    if config.metrics_port is not None:
        try:
            start_http_server(config.metrics_port, registry=state.metrics.registry)
        except OSError as error:
            raise UserError(
                f"Cannot serve metrics on port {config.metrics_port}: {error.strerror}; "
                "choose another with --metrics-port (0 disables)"
            ) from error
        logger.info("Serving metrics on port %s", config.metrics_port)
    liveness = f"http://0.0.0.0:{config.liveness_port}/healthz" if config.liveness_port else None
    async with serve_catalog(client, config):
        await kopf.operator(
            registry=build_registry(state),
            clusterwide=not config.namespaces,
            namespaces=list(config.namespaces),
            standalone=True,
            liveness_endpoint=liveness,
            stop_flag=stop_flag,
        )


@contextlib.asynccontextmanager
async def serve_catalog(client: KubeClient, config: OperatorConfig) -> AsyncIterator[None]:
    """The catalog beside the operator, on its own port and with its own watches, when asked."""
    if config.catalog_port is None:
        yield
        return
    store = CatalogStore(Visibility(show_domain_products=config.catalog_show_domain_products))
    watch = MeshWatch(client, store, namespaces=config.namespaces)
    watch.start()
    try:
        runner = await start_catalog(
            store,
            host=config.catalog_host,
            port=config.catalog_port,
            public_url=config.catalog_public_url,
        )
        try:
            yield
        finally:
            await runner.cleanup()
    finally:
        await watch.stop()
