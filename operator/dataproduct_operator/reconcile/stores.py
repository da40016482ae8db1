"""The store side of a DataProduct's reconcile, and the connections to the stores (layer
``reconcile``, imperative).

:class:`StoreConnections` keeps one driver per DataStore, made from its spec and the admin
login of its credentials Secret (read in the operator's own namespace, the only one where it
may read Secrets), made anew when either changes.

:func:`converge_store_ports` places a product's store ports in its store and keeps what the
store holds for it converged. The readers to grant come from the caller as
:class:`~dataproduct_operator.stores.driver.ReaderScope` values (a reader and the ports it may
read; :func:`~dataproduct_operator.stores.inputs.spec_reader_scopes` gives those of the spec);
a reader given twice reads the union of its scopes. In this order, each step safe to repeat:

1. the logins of its ServiceAccount readers in namespaces of the mesh whose scope covers a port
   in this store (made, or given the password of their Secret again), their Secrets written once
   the login has their password; readers in other namespaces are reported
   (``ReaderOutsideMesh``) and granted nothing;
2. the schema, tables, columns, roles and the whole ACL the operator owns (``ensure_ports``:
   a hand-made GRANT on them is revoked there, and so is a reader's grant on a port its scope
   no longer covers), with the writer login's password from its Secret (a new one when the
   Secret is missing or a rotation is asked), the Secret written after the store took the
   password;
3. the readers no longer granted any port here: their grants went in step 2; a login left with
   no grant is dropped and its Secret deleted.

A store that cannot be reached, refuses or conflicts gives ``StoreUnavailable`` (or its own
reason) on StorageReady, retried with backoff; nothing is duplicated when it comes back (every
step observes before it acts).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import tempfile
import time
from base64 import b64decode
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dataproduct_operator.api.conditions import Reason
from dataproduct_operator.api.dataproduct import (
    DataProduct,
    PortEndpoint,
    PortGrant,
    PortStatus,
    ReaderKind,
)
from dataproduct_operator.api.datastore import (
    CA_KEY,
    PASSWORD_KEY,
    USERNAME_KEY,
    DataStore,
    PostgresConnection,
    SslMode,
)
from dataproduct_operator.api.naming import reader_secret_name, writer_secret_name
from dataproduct_operator.constants import (
    ANNOTATION_CONFIRM_DATA_DELETION,
    ANNOTATION_ROTATE_CREDENTIALS,
)
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.mesh import MeshState
from dataproduct_operator.reconcile.outcome import NORMAL, WARNING, Note
from dataproduct_operator.specs.dataproduct import StoreWiring
from dataproduct_operator.specs.logins import (
    Login,
    build_reader_secret,
    build_writer_secret,
    is_our_login_secret,
    secret_password,
)
from dataproduct_operator.status.placement import StoreChoice
from dataproduct_operator.status.stores import StoreResult
from dataproduct_operator.stores.driver import (
    AuthenticationFailedError,
    EnsureResult,
    LoginPassword,
    ReaderRef,
    ReaderScope,
    StoreError,
    merge_scopes,
)
from dataproduct_operator.stores.inputs import (
    confirmed_deletions,
    port_specs,
    product_ref,
)
from dataproduct_operator.stores.postgres import naming as postgres_naming
from dataproduct_operator.stores.postgres.settings import PostgresSettings, postgres_settings
from dataproduct_operator.stores.postgres.state import reader_role
from dataproduct_operator.stores.postgres.store import PostgresStore, StatementCounter

logger = logging.getLogger(__name__)

PASSWORD_BYTES = 32
# A store's admin Secret read for a product's pass serves the next passes this long (a
# DataStore's own passes read it every time; a login refused makes the next pass read it again).
ADMIN_SECRET_RECHECK_SECONDS = 10.0
# A reader's login and its Secret, once made sure of, serve every product granting that reader
# this long before they are looked at again.
LOGIN_RECHECK_SECONDS = 60.0
SECRETS_PATH = "/api/v1/namespaces/{namespace}/secrets/{name}"


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def secret_path(namespace: str, name: str) -> str:
    return SECRETS_PATH.format(namespace=namespace, name=name)


class CredentialsUnreadableError(StoreError):
    """The DataStore's credentials Secret cannot be read or lacks a key."""

    reason = Reason.CREDENTIALS_UNREADABLE


def _decoded(secret: dict[str, Any], key: str) -> str | None:
    encoded = (secret.get("data") or {}).get(key)
    if not encoded:
        return None
    try:
        return b64decode(encoded).decode()
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class ReaderLogins:
    """The ServiceAccount reader logins made sure of lately, per store and role.

    A reader's login and its Secret are looked at by one product's pass at a time (an asyncio
    lock per login: the other products granting it wait without holding a store connection, and
    two passes never hand out two passwords), and once made sure of they serve every product
    granting that reader for :data:`LOGIN_RECHECK_SECONDS`. A rotation, a pass that finds the
    login gone or unable to log in, and a dropped login look again at once."""

    clock: Callable[[], float] = time.monotonic
    recheck_seconds: float = LOGIN_RECHECK_SECONDS
    _checked: dict[tuple[str, str], float] = field(default_factory=dict)
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)

    def lock(self, store: str, role: str) -> asyncio.Lock:
        return self._locks.setdefault((store, role), asyncio.Lock())

    def fresh(self, store: str, role: str) -> bool:
        checked = self._checked.get((store, role))
        return checked is not None and self.clock() - checked < self.recheck_seconds

    def confirm(self, store: str, role: str) -> None:
        self._checked[(store, role)] = self.clock()

    def forget(self, store: str, role: str) -> None:
        self._checked.pop((store, role), None)

    def forget_store(self, store: str) -> None:
        for key in [key for key in self._checked if key[0] == store]:
            del self._checked[key]


@dataclass
class StoreConnections:
    """One driver per DataStore (see the module docstring); ``make``: how a driver is made."""

    client: KubeClient
    make: Callable[[PostgresSettings], PostgresStore] = PostgresStore
    clock: Callable[[], float] = time.monotonic
    logins: ReaderLogins = field(default_factory=ReaderLogins)
    _drivers: dict[str, tuple[tuple[Any, ...], PostgresStore]] = field(default_factory=dict)
    _read_at: dict[str, float] = field(default_factory=dict)  # a driver's Secrets last read
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)  # one maker per store
    _ca_dir: Path | None = None

    async def _read_secret(self, store: DataStore, name: str) -> dict[str, Any]:
        ref = store.spec.credentials_secret_ref
        where = f"Secret {ref.namespace}/{name}"
        try:
            secret = await self.client.get(secret_path(ref.namespace, name))
        except ApiError as error:
            if error.status == 403:
                raise CredentialsUnreadableError(
                    f"the operator may not read {where}: it reads Secrets only in its own "
                    "namespace; keep the store's Secrets there"
                ) from None
            raise
        if secret is None:
            raise CredentialsUnreadableError(f"{where} does not exist")
        return secret

    def _ca_file(self, store: DataStore, pem: str) -> str:
        if self._ca_dir is None:
            self._ca_dir = Path(tempfile.mkdtemp(prefix="datastore-ca-"))
        path = self._ca_dir / f"{store.name}.crt"
        path.write_text(pem)
        path.chmod(0o600)
        return str(path)

    async def driver(self, store: DataStore, *, recent: bool = False) -> PostgresStore:
        """The store's driver: the one made before while the store's spec and its Secrets are
        as they were, else a new one (the old one closed); one pass at a time reads the
        Secrets and makes it. ``recent``: a driver made for the same spec whose Secrets were
        read within :data:`ADMIN_SECRET_RECHECK_SECONDS` is taken without reading them again."""
        postgres = store.spec.postgres
        if postgres is None:
            raise CredentialsUnreadableError(f"DataStore {store.name} has no spec.postgres")
        async with self._locks.setdefault(store.name, asyncio.Lock()):
            known = self._drivers.get(store.name)
            if (
                recent
                and known is not None
                and known[0][:2] == (store.uid, store.spec)
                and self.clock() - self._read_at.get(store.name, float("-inf"))
                < ADMIN_SECRET_RECHECK_SECONDS
            ):
                return known[1]
            return await self._read_and_make(store, postgres, known)

    async def _read_and_make(
        self,
        store: DataStore,
        postgres: PostgresConnection,
        known: tuple[tuple[Any, ...], PostgresStore] | None,
    ) -> PostgresStore:
        ref = store.spec.credentials_secret_ref
        secret = await self._read_secret(store, ref.name)
        ca = None
        if postgres.ca_secret_ref is not None:
            ca = await self._read_secret(store, postgres.ca_secret_ref.name)
        key = (
            store.uid,
            store.spec,
            secret["metadata"].get("resourceVersion"),
            (ca or {}).get("metadata", {}).get("resourceVersion"),
        )
        self._read_at[store.name] = self.clock()
        if known is not None and known[0] == key:
            return known[1]
        user, password = _decoded(secret, USERNAME_KEY), _decoded(secret, PASSWORD_KEY)
        if not user or not password:
            raise CredentialsUnreadableError(
                f"Secret {ref.namespace}/{ref.name} needs the keys {USERNAME_KEY} and "
                f"{PASSWORD_KEY}"
            )
        root_cert = None
        if ca is not None and postgres.ca_secret_ref is not None:
            pem = _decoded(ca, postgres.ca_secret_ref.key or CA_KEY)
            if not pem:
                raise CredentialsUnreadableError(
                    f"Secret {ref.namespace}/{postgres.ca_secret_ref.name} has no key "
                    f"{postgres.ca_secret_ref.key}"
                )
            root_cert = self._ca_file(store, pem)
        verify = postgres.ssl_mode is SslMode.VERIFY_FULL
        settings = postgres_settings(
            store, user=user, password=password, sslrootcert=root_cert if verify else None
        )
        if known is not None:
            await known[1].close()
        self.logins.forget_store(store.name)  # perhaps another server: look at them again
        made = self.make(settings)
        self._drivers[store.name] = (key, made)
        return made

    def known(self, name: str) -> PostgresStore | None:
        """The driver made for a store, if any (for counts and benchmarks)."""
        known = self._drivers.get(name)
        return known[1] if known else None

    def counters(self) -> dict[str, StatementCounter]:
        """What each store's driver executed so far (for the operator's metrics)."""
        return {name: driver.counter for name, (_, driver) in self._drivers.items()}

    def recheck(self, name: str) -> None:
        """The next pass over the store reads its Secrets again."""
        self._read_at.pop(name, None)

    async def forget(self, name: str) -> None:
        known = self._drivers.pop(name, None)
        self._read_at.pop(name, None)
        self.logins.forget_store(name)
        if known is not None:
            await known[1].close()

    async def close(self) -> None:
        for name in list(self._drivers):
            await self.forget(name)


# -- the product's side --------------------------------------------------------------------


def _granted_before(product: DataProduct) -> set[ReaderRef]:
    """The readers the last status lists as granted on a port of the product."""
    return {
        ReaderRef(grant.kind, grant.name, grant.namespace)
        for port in product.status.output_ports
        for grant in port.grants
    }


def _readers_in_mesh(
    readers: Sequence[ReaderScope], mesh: MeshState
) -> tuple[list[ReaderScope], tuple[str, ...]]:
    """The readers that can be granted (one scope each: the union of a reader's scopes), and
    the ServiceAccount readers in namespaces no DataDomain holds (``namespace/name``)."""
    granted: list[ReaderScope] = []
    outside: list[str] = []
    for scope in merge_scopes(readers):
        ref = scope.reader
        if ref.kind is ReaderKind.SERVICE_ACCOUNT and mesh.domain_of(ref.namespace or "") is None:
            outside.append(f"{ref.namespace}/{ref.name}")
            continue
        granted.append(scope)
    return granted, tuple(outside)


@dataclass
class StoreWork:
    """What the store part did: the result for the status, the wiring for the children, the
    Events to post."""

    result: StoreResult | None
    wiring: StoreWiring
    notes: list[Note] = field(default_factory=list)
    stores_counted: set[str] = field(default_factory=set)  # stores whose count of ports changed


class _SecretWriter:
    """Reads and writes login Secrets for one pass, never overwriting one it did not make."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def password(self, namespace: str, name: str) -> str | None:
        """The password a login Secret of ours holds, None when there is none."""
        secret = await self.client.get(secret_path(namespace, name))
        if secret is None:
            return None
        if not is_our_login_secret(secret):
            raise StoreError(
                f"Secret {namespace}/{name} exists and was not made by the operator: rename or "
                "delete it, the operator writes the login there"
            )
        return secret_password(secret)

    async def write(self, secret: dict[str, Any]) -> None:
        await self.client.apply(secret)

    async def delete(self, namespace: str, name: str) -> None:
        secret = await self.client.get(secret_path(namespace, name))
        if secret is not None and is_our_login_secret(secret):
            await self.client.delete(
                secret_path(namespace, name), uid=secret["metadata"].get("uid")
            )


def _port_statuses(result: EnsureResult) -> dict[str, PortStatus]:
    ports = {}
    for placement in result.ports:
        endpoint = placement.endpoint
        if endpoint is None:
            continue
        ports[placement.port] = PortStatus(
            name=placement.port,
            phase="Placed",
            endpoint=PortEndpoint.model_validate(asdict(endpoint)),
            grants=[
                PortGrant(
                    kind=grant.reader.kind,
                    name=grant.reader.name,
                    namespace=grant.reader.namespace,
                    # the reader's own role (its login, or the role a DBA maps real logins
                    # onto), a member of the port's read role grant.role
                    role=reader_role(grant.reader).name,
                )
                for grant in placement.grants
            ],
        )
    return ports


async def converge_store_ports(
    connections: StoreConnections,
    mesh: MeshState,
    product: DataProduct,
    choice: StoreChoice,
    *,
    readers: Sequence[ReaderScope],
    now: str,
) -> StoreWork:
    """See the module docstring; ``readers``: who may read which ports."""
    if not choice.store_ports:
        return StoreWork(None, StoreWiring())
    unplaced = StoreWiring(store_ports=frozenset(choice.store_ports))
    if not choice.ok or choice.store is None:
        return StoreWork(StoreResult(choice), unplaced)
    store = choice.store
    try:
        return await _converge(connections, mesh, product, choice, store, readers=readers, now=now)
    except StoreError as error:
        if isinstance(error, AuthenticationFailedError):
            connections.recheck(store.name)  # perhaps the admin's Secret changed: read it again
        reason = getattr(error, "reason", Reason.STORE_UNAVAILABLE)
        message = f"DataStore {store.name}: {error}"
        return StoreWork(StoreResult(choice, reason=str(reason), message=message), unplaced)


async def _converge(
    connections: StoreConnections,
    mesh: MeshState,
    product: DataProduct,
    choice: StoreChoice,
    store: DataStore,
    *,
    readers: Sequence[ReaderScope],
    now: str,
) -> StoreWork:
    driver = await connections.driver(store, recent=True)
    secrets_ = _SecretWriter(connections.client)
    logins = connections.logins
    notes: list[Note] = []
    wanted_rotation = product.annotations.get(ANNOTATION_ROTATE_CREDENTIALS)
    rotate = bool(wanted_rotation) and wanted_rotation != product.status.credentials_rotation
    in_mesh, outside = _readers_in_mesh(readers, mesh)
    # A reader scoped to ports elsewhere (a volume) has nothing here, and needs no login here.
    granted = [scope for scope in in_mesh if scope.covers_any(choice.store_ports)]
    # 1. the ServiceAccount readers' logins
    for reader in (scope.reader for scope in granted):
        if reader.kind is ReaderKind.SERVICE_ACCOUNT and reader.namespace:
            await _ensure_reader_login(logins, driver, secrets_, store, reader, rotate=rotate)
    # 2. the product's objects, the writer login and the ACL
    writer_name = writer_secret_name(product.name)
    password = None if rotate else await secrets_.password(product.namespace, writer_name)
    writer = LoginPassword(password or new_password(), changed=password is None)
    result = await driver.ensure_ports(
        product_ref(product),
        port_specs(p for p in product.spec.output_ports if p.name in choice.store_ports),
        granted,
        writer_password=writer,
        confirmed=confirmed_deletions(product),
    )
    if writer.changed and result.schema is not None:
        login = Login(postgres_naming.writer_role(result.schema), writer.password)
        await secrets_.write(build_writer_secret(product, store, login))
    # A login taken as made sure of but found gone or unable to log in: looked at again now.
    for reader in result.logins_missing:
        logins.forget(store.name, reader_role(reader).name)
        await _ensure_reader_login(logins, driver, secrets_, store, reader, rotate=False)
    # 3. readers no longer granted any port here
    still = {scope.reader for scope in granted}
    for gone in sorted(_granted_before(product) - still, key=str):
        dropped = await _drop_reader_if_unused(logins, driver, store, gone)
        namespace = gone.namespace or ""
        if dropped and gone.kind is ReaderKind.SERVICE_ACCOUNT and mesh.domain_of(namespace):
            await secrets_.delete(namespace, reader_secret_name(store.name, gone.name))
    if result.adopted:
        notes.append(Note(NORMAL, Reason.RETAINED, f"Adopted schema {result.schema} with its rows"))
    kept_note: tuple[str, ...] = ()
    kept = [f"{c.port}.{c.column}" for c in result.kept_columns]
    if kept:
        message = (
            f"columns {', '.join(kept)} are no longer in the spec and kept with their data "
            f"(list them in {ANNOTATION_CONFIRM_DATA_DELETION} to drop them)"
        )
        kept_note = (message,)
        if not any(message in c.message for c in product.status.conditions):
            notes.append(Note(WARNING, Reason.COLUMNS_KEPT, message, with_status=True))
    if rotate:
        notes.append(
            Note(
                NORMAL,
                Reason.CREDENTIALS_ROTATED,
                f"Rotated the store passwords of {product.name}'s writer and its readers",
                with_status=True,
            )
        )
    ports = _port_statuses(result)
    refused = "; ".join(
        f"{r.port}{'.' + r.column if r.column else ''}: {r.message}" for r in result.refused
    )
    wiring = StoreWiring(
        store_ports=frozenset(choice.store_ports),
        endpoints={name: port.endpoint for name, port in ports.items() if port.endpoint},
        writer_secret=writer_name,
    )
    store_result = StoreResult(
        choice,
        ports=ports,
        reason=Reason.SCHEMA_CHANGE_REFUSED if refused else None,
        message=refused,
        notes=kept_note,
        readers_outside_mesh=outside,
        rotation=wanted_rotation if rotate else None,
        rotated_at=now if rotate else None,
    )
    return StoreWork(store_result, wiring, notes)


async def _ensure_reader_login(
    logins: ReaderLogins,
    driver: PostgresStore,
    secrets_: _SecretWriter,
    store: DataStore,
    reader: ReaderRef,
    *,
    rotate: bool,
) -> None:
    """A ServiceAccount reader's login exists with the password of its Secret (a new password,
    written to the Secret once the store has it, when there is none or a rotation is asked);
    looked at by one pass at a time, and not again while made sure of lately (``logins``)."""
    role = reader_role(reader).name
    async with logins.lock(store.name, role):
        if not rotate and logins.fresh(store.name, role):
            return
        namespace = reader.namespace or ""
        name = reader_secret_name(store.name, reader.name)
        password = None if rotate else await secrets_.password(namespace, name)
        chosen = password or new_password()
        login = await driver.ensure_reader_login(
            reader, LoginPassword(chosen, changed=password is None)
        )
        if password is None:
            # The store has the new password now: hand it over.
            await secrets_.write(
                build_reader_secret(store, namespace, reader.name, Login(login.role, chosen))
            )
        logins.confirm(store.name, role)


async def _drop_reader_if_unused(
    logins: ReaderLogins, driver: PostgresStore, store: DataStore, reader: ReaderRef
) -> bool:
    role = reader_role(reader).name
    async with logins.lock(store.name, role):
        dropped = await driver.drop_reader_if_unused(reader)
        if dropped:
            logins.forget(store.name, role)
        return dropped


async def release_store_ports(
    connections: StoreConnections,
    mesh: MeshState,
    product: DataProduct,
    store: DataStore,
    *,
    readers: Sequence[ReaderScope],
) -> list[Note]:
    """A deleted product: Retain keeps its schema and rows, revokes every grant and disables
    its logins; Delete drops the schema and its roles. Then the login of each of ``readers``
    (the product's readers) left with no grant is dropped, its Secret deleted."""
    driver = await connections.driver(store)
    result = await driver.delete(product_ref(product))
    secrets_ = _SecretWriter(connections.client)
    in_mesh, _ = _readers_in_mesh(readers, mesh)
    for reader in (scope.reader for scope in in_mesh):
        namespace = reader.namespace or ""
        dropped = await _drop_reader_if_unused(connections.logins, driver, store, reader)
        if dropped and reader.kind is ReaderKind.SERVICE_ACCOUNT:
            await secrets_.delete(namespace, reader_secret_name(store.name, reader.name))
    if not result.changes:
        return []
    if result.schema_dropped:
        message = (
            f"Dropped the schema of {product.name} in DataStore {store.name} "
            "(deletionPolicy Delete)"
        )
    else:
        message = (
            f"Kept the schema of {product.name} in DataStore {store.name} with its rows "
            "(deletionPolicy Retain): grants revoked, logins disabled"
        )
    return [Note(NORMAL, Reason.RETAINED if not result.schema_dropped else Reason.PRUNED, message)]
