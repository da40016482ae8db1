"""Who the operator is to the API server, as users' kubeconfigs really say (layer ``k8s``).

Kubeconfigs (contexts, client certificates, ``token`` and ``tokenFile``, ``exec`` credential
plugins as EKS, GKE and AKS write them, OIDC) and the in-cluster ServiceAccount are read by the
``kubernetes`` package's loaders into a ``kubernetes.client.Configuration``; nothing here parses
a credential. :class:`Credentials` hands what the loader produced to the aiohttp client (the
server URL, a TLS context from the CA and client certificate files the loader wrote, the
current ``Authorization`` header) and to kopf's login, and asks the loader again at the right
moments:

- when the loader will consider the token expired (an exec plugin's ``expirationTimestamp``,
  less the loader's own five-minute margin): its refresh hook runs the plugin again;
- in a cluster, every few seconds: the loader's hook reads the projected token file again once
  a minute, so a token the kubelet rotated is used;
- after a 401: everything is loaded again (the kubeconfig, a ``tokenFile``, the exec plugin, the
  in-cluster token), unless a concurrent request has done so already.

Loading may run a subprocess (an exec plugin) or read files, so the asynchronous side runs it
in a worker thread, one load at a time, never on the event loop. Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import math
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.client import Configuration
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import (
    SERVICE_CERT_FILENAME,
    SERVICE_HOST_ENV_NAME,
    SERVICE_TOKEN_FILENAME,
    InClusterConfigLoader,
)
from kubernetes.config.kube_config import (
    EXPIRY_SKEW_PREVENTION_DELAY,
    KubeConfigLoader,
    KubeConfigMerger,
)

from dataproduct_operator.errors import UserError
from dataproduct_operator.k8s.kubeconfig import Connection, build_kubeconfig

logger = logging.getLogger(__name__)

API_KEY = "BearerToken"  # where both loaders keep the whole Authorization header value
IN_CLUSTER_CHECK_SECONDS = 10.0  # the loader itself reads the token file at most once a minute
MIN_CHECK_SECONDS = 1.0  # a loader that did not refresh when asked is asked again no sooner
NEVER = math.inf

Loaded = tuple[Any, Any]  # a kubernetes.client.Configuration, and the loader that filled it


@dataclass(frozen=True)
class Identity:
    """The credentials as they are at one moment: what kopf's login hands over."""

    server: str
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    verify: bool
    authorization: str | None  # the whole header value, e.g. "Bearer <token>"
    expiration: datetime.datetime | None  # when the loader will want to refresh it, if known


@dataclass(frozen=True)
class _Tls:
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    verify: bool
    server_hostname: str | None

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def _tls_of(configuration: Any) -> _Tls:
    return _Tls(
        ca_file=configuration.ssl_ca_cert,
        cert_file=configuration.cert_file,
        key_file=configuration.key_file,
        verify=bool(configuration.verify_ssl),
        server_hostname=getattr(configuration, "tls_server_name", None),
    )


class Credentials:
    """The server, TLS context and Authorization header of one identity, kept current.

    Build one with :meth:`from_environment`, :meth:`from_kubeconfig`, :meth:`in_cluster` or
    :meth:`from_connection`; these load at once and may block (an exec plugin runs), so call
    them from a thread when an event loop is running.
    """

    def __init__(self, description: str, load: Callable[[], Loaded], *, in_cluster: bool) -> None:
        self.description = description
        self._load = load
        self._in_cluster = in_cluster
        self._lock = threading.Lock()  # one load or check at a time, whichever loop asks
        configuration, loader = self._load_or_explain()
        self.server: str = configuration.host
        self._tls = _tls_of(configuration)
        try:
            self.ssl_context = self._tls.context()
        except (ssl.SSLError, OSError) as error:
            raise UserError(f"Cannot use the TLS files of {description}: {error}") from error
        self._configuration, self._loader = configuration, loader
        self.authorization: str | None = configuration.api_key.get(API_KEY)
        self.check_at = NEVER  # time.time() when the loader is to be asked again
        self._checking = False  # whether a worker thread is asking the loader now
        self._schedule()
        if getattr(configuration, "proxy", None):
            logger.warning("The proxy-url of %s is not supported: connecting directly", description)

    # Construction

    @classmethod
    def from_environment(
        cls, kubeconfig: Path | None = None, *, context: str | None = None
    ) -> Credentials:
        """The explicit kubeconfig; else in-cluster when in a pod (and no context is named);
        else $KUBECONFIG (every file of it, merged as kubectl does) or ~/.kube/config."""
        if kubeconfig is not None:
            return cls.from_kubeconfig(kubeconfig, context=context)
        in_a_pod = os.environ.get(SERVICE_HOST_ENV_NAME) and Path(SERVICE_TOKEN_FILENAME).is_file()
        if context is None and in_a_pod:
            return cls.in_cluster()
        return cls.from_kubeconfig(
            os.environ.get("KUBECONFIG") or "~/.kube/config", context=context
        )

    @classmethod
    def from_kubeconfig(cls, paths: Path | str, *, context: str | None = None) -> Credentials:
        """A kubeconfig file (or several, separated as in $KUBECONFIG), at its current context
        or the one named."""
        files = [Path(p).expanduser() for p in str(paths).split(os.pathsep) if p]
        if not any(path.is_file() for path in files):
            raise UserError(f"Kubeconfig {paths} does not exist")
        shown = os.pathsep.join(str(path) for path in files)

        def load() -> Loaded:
            merger = KubeConfigMerger(shown)
            if merger.config is None:
                raise UserError(f"Kubeconfig {shown} holds no configuration")
            _require_context(merger.config, context, shown)
            loader = KubeConfigLoader(
                config_dict=merger.config,
                active_context=context,
                config_base_path=None,  # relative file names are relative to their kubeconfig
                config_persister=merger.save_changes,  # a refreshed OIDC token, as kubectl does
            )
            configuration = Configuration()
            loader.load_and_set(configuration)
            return configuration, loader

        where = f"kubeconfig {shown}" + (f" (context {context})" if context else "")
        return cls(where, load, in_cluster=False)

    @classmethod
    def in_cluster(
        cls,
        *,
        token_file: str = SERVICE_TOKEN_FILENAME,
        ca_file: str = SERVICE_CERT_FILENAME,
        environ: dict[str, str] | None = None,
    ) -> Credentials:
        """The pod's ServiceAccount: its projected token, re-read as the kubelet rotates it."""

        def load() -> Loaded:
            loader = InClusterConfigLoader(
                token_filename=token_file,
                cert_filename=ca_file,
                try_refresh_token=True,
                environ=os.environ if environ is None else environ,
            )
            configuration = Configuration()
            loader.load_and_set(configuration)
            return configuration, loader

        return cls(f"the ServiceAccount token {token_file}", load, in_cluster=True)

    @classmethod
    def from_connection(cls, connection: Connection, *, user: str = "admin") -> Credentials:
        """Fixed credentials (the local control plane's own, before a kubeconfig is written),
        loaded like a kubeconfig holding them."""
        document = build_kubeconfig(connection, user=user)

        def load() -> Loaded:
            loader = KubeConfigLoader(config_dict=document)
            configuration = Configuration()
            loader.load_and_set(configuration)
            return configuration, loader

        return cls(f"{user}@{connection.server}", load, in_cluster=False)

    def _load_or_explain(self) -> Loaded:
        try:
            return self._load()
        except ConfigException as error:
            raise UserError(
                f"Cannot load the credentials of {self.description}: {error}"
            ) from error
        except OSError as error:
            raise UserError(
                f"Cannot read the credentials of {self.description}: {error}"
            ) from error

    # What the client and kopf read

    @property
    def ca_pem(self) -> bytes:
        """The CA the API server's certificate is checked against (PEM)."""
        if self._tls.ca_file is None:
            return b""
        return Path(self._tls.ca_file).read_bytes()

    @property
    def namespace(self) -> str | None:
        """The namespace of the kubeconfig's context, when it names one (kubectl's default
        for namespaced requests)."""
        context = getattr(self._loader, "current_context", None)  # a kubeconfig's loader only
        if not isinstance(context, dict):
            return None
        namespace = (context.get("context") or {}).get("namespace")
        return str(namespace) if namespace else None

    @property
    def server_hostname(self) -> str | None:
        """The name to check the server's certificate against, when not the URL's host."""
        return self._tls.server_hostname

    @property
    def expiration(self) -> datetime.datetime | None:
        """When the loader will consider the current token expired, if it knows."""
        expiry = getattr(self._loader, "expiry", None)  # set by the loader when it knows
        if not isinstance(expiry, datetime.datetime):
            return None
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=datetime.UTC)
        return expiry - EXPIRY_SKEW_PREVENTION_DELAY

    def identity(self) -> Identity:
        return Identity(
            server=self.server,
            ca_file=self._tls.ca_file,
            cert_file=self._tls.cert_file,
            key_file=self._tls.key_file,
            verify=self._tls.verify,
            authorization=self.authorization,
            expiration=self.expiration,
        )

    def due(self) -> bool:
        """Whether the loader is to be asked for a fresh token before the next request."""
        return time.time() >= self.check_at

    # Refreshing

    async def refresh_if_due(self) -> None:
        """Ask the loader, in a worker thread, whether the token needs refreshing. While one
        request waits for that, the others go on with the token as it is: the loader asks for
        a new one minutes before the old one expires (and a 401 would load it at once)."""
        if self._checking:
            return
        self._checking = True
        try:
            await asyncio.to_thread(self.refresh_if_due_blocking)
        finally:
            self._checking = False

    async def refresh(self, *, rejected: str | None) -> bool:
        """Load the credentials again after the server refused ``rejected`` (a 401), in a
        worker thread; whether there is something new to try. A concurrent refresh that has
        already replaced ``rejected`` counts: no second load."""
        return await asyncio.to_thread(self.refresh_blocking, rejected=rejected)

    def refresh_if_due_blocking(self) -> None:
        with self._lock:
            if not self.due():
                return
            try:
                if self._configuration.refresh_api_key_hook is not None:
                    header = self._configuration.get_api_key_with_prefix(API_KEY)
                    self._adopt(self._configuration, self._loader, header)
                else:  # e.g. an exec plugin that returned a client certificate
                    self._adopt(*self._load(), None)
            except Exception as error:
                logger.warning(
                    "Refreshing the credentials of %s failed: %s", self.description, error
                )
            self._schedule()

    def refresh_blocking(self, *, rejected: str | None) -> bool:
        with self._lock:
            if self.authorization != rejected:
                return True  # another request has refreshed them meanwhile
            before = (self.authorization, self._tls)
            try:
                # A client certificate may have been renewed in place: its files read again.
                self._adopt(*self._load(), None, reread_tls=True)
            except Exception as error:
                logger.warning(
                    "The API server refused the credentials of %s, and loading them again "
                    "failed: %s",
                    self.description,
                    error,
                )
                return False
            self._schedule()
            changed = (self.authorization, self._tls) != before or bool(self._tls.cert_file)
            logger.info(
                "The API server refused the credentials of %s; loaded them again (%s)",
                self.description,
                "new credentials" if changed else "unchanged",
            )
            return changed

    def _adopt(
        self, configuration: Any, loader: Any, header: str | None, *, reread_tls: bool = False
    ) -> None:
        """Take what the loader holds now (called with the lock held, in a worker thread)."""
        if header is None:  # read as loaded: asking the hook could refresh it once more
            header = configuration.api_key.get(API_KEY)
        tls = _tls_of(configuration)
        if reread_tls or tls != self._tls:  # new connections use the new files
            self.ssl_context = tls.context()
            self._tls = tls
        self._configuration, self._loader = configuration, loader
        self.authorization = header

    def _schedule(self) -> None:
        now = time.time()
        if self._in_cluster:
            self.check_at = now + IN_CLUSTER_CHECK_SECONDS
            return
        expiration = self.expiration
        if expiration is None:
            self.check_at = NEVER  # until a 401
            return
        self.check_at = max(expiration.timestamp(), now + MIN_CHECK_SECONDS)


def _require_context(config: Any, context: str | None, shown: str) -> None:
    """A clear error for a context the kubeconfig does not have (the loader's is cryptic)."""
    if context is None:
        return
    names = [str(item["name"]) for item in config.value.get("contexts") or []]
    if context not in names:
        raise UserError(
            f"Kubeconfig {shown} has no context {context!r}"
            + (f"; it has {', '.join(sorted(names))}" if names else "")
        )
