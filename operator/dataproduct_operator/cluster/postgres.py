"""PostgreSQL as a component of the local cluster (layer ``cluster``, imperative).

``dpo cluster up`` runs Debian's PostgreSQL beside the control plane: a fresh data directory
(``initdb``, in the background while etcd starts), a server on a free loopback port (and on the
real node's gateway address, for its pods: see :mod:`.postgres_commands`), a
database ``datamesh`` and an admin role that is deliberately not a superuser (LOGIN,
CREATEROLE, CREATE on ``datamesh``: what a DataStore needs), with a generated password. The
admin's connection details go to ``DIR/postgres/admin.json``, readable by root (or whoever ran
``up``) only; :func:`local_postgres` reads them back. Like etcd's data, the database lives as
long as the cluster: every ``up`` starts from a fresh ``initdb``, so a server killed with
SIGKILL leaves nothing (no stale ``postmaster.pid``) that could block the next ``up``.

Who runs the server. PostgreSQL refuses to run as root. When ``up`` runs as root, the server
(and ``initdb``) run as Debian's ``postgres`` system user, switched to by ``setpriv`` just
before the program starts; otherwise they run as the user who ran ``up``.

Where its files go. The server's files (``data/`` and the socket directory ``run/``) must be
reachable by the server's user, through every parent directory. Under ``DIR/postgres/server``
when they are; pytest's temporary directories (``/tmp/pytest-of-root``, mode 0700) and other
private parents are not, and no parent directory outside DIR is ever changed to make them so.
Then the files go to a fresh private directory in the system's temporary directory
(``/tmp/dpo-postgres-*``, mode 0700, owned by the server's user), ``DIR/postgres/server`` is
a symbolic link to it, and ``dpo cluster down`` (or the next ``up``) removes it, as it removes
the volumes the hostpath provisioner made. The same happens when the socket's path under DIR
would be longer than the kernel's limit for unix sockets.

The superuser path: the unix socket, as ``postgres``, by peer authentication for root (or the
user who ran ``up``) and the server's user only; tests use it to inspect and to sabotage.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from dataproduct_operator.cluster.postgres_commands import (
    ADMIN_ROLE,
    DATABASE,
    LISTEN_ADDRESS,
    SUPERUSER,
    PodNetwork,
    PostgresBinaries,
    ServerFiles,
    build_hba,
    build_ident,
    build_initdb_command,
    build_server_command,
    run_as,
    socket_path_fits,
)
from dataproduct_operator.cluster.process import tail
from dataproduct_operator.errors import ComponentStartError, UserError

NAME = "postgres"
# Debian's packages put each major version's server programs here.
DEBIAN_VERSIONS = Path("/usr/lib/postgresql")
BIN_DIR_VARIABLE = "DPO_POSTGRES_BIN_DIR"
# The Debian system user the packages create; the server runs as it when `up` runs as root.
SYSTEM_USER = "postgres"
EXTERNAL_PREFIX = "dpo-postgres-"
# A fast shutdown: open sessions (an operator's pool, a test's connection) are ended at once;
# SIGTERM would wait for every client to disconnect first.
STOP_SIGNAL = signal.SIGINT
INITDB_TIMEOUT_SECONDS = 120.0


class PostgresNotInstalledError(UserError):
    """No PostgreSQL server programs to run."""


@dataclass(frozen=True)
class LocalPostgres:
    """How to reach the local cluster's PostgreSQL: the admin over TCP, the superuser over
    the unix socket (peer authentication, no password). ``pod_host``: the address pods of the
    real node reach it at (the node's gateway), None when no real node runs."""

    host: str
    port: int
    database: str
    username: str
    password: str = field(repr=False)
    socket_directory: Path
    superuser: str = SUPERUSER
    pod_host: str | None = None

    @property
    def store_host(self) -> str:
        """The host a DataStore names: one that both the operator (on this machine) and the
        pipeline pods reach, the pods' gateway when the real node runs, else loopback."""
        return self.pod_host or self.host

    def admin_conninfo(self) -> dict[str, Any]:
        """Keyword arguments of ``psycopg.connect`` for the admin."""
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": self.username,
            "password": self.password,
        }

    def superuser_conninfo(self, database: str | None = None) -> dict[str, Any]:
        """Keyword arguments of ``psycopg.connect`` for the superuser, through the socket."""
        return {
            "host": str(self.socket_directory),
            "port": self.port,
            "dbname": database or self.database,
            "user": self.superuser,
        }


def home(directory: Path) -> Path:
    """``DIR/postgres``: the admin file, and the server's files or a link to them."""
    return directory / "postgres"


def admin_file(directory: Path) -> Path:
    return home(directory) / "admin.json"


def find_binaries() -> PostgresBinaries:
    """The server programs: ``$DPO_POSTGRES_BIN_DIR``, else Debian's newest installed
    version; one clear error naming the way out when there are none."""
    configured = os.environ.get(BIN_DIR_VARIABLE)
    if configured:
        candidates = [PostgresBinaries(Path(configured).expanduser())]
    else:
        versions = sorted(
            (path for path in DEBIAN_VERSIONS.glob("*") if path.name.isdigit()),
            key=lambda path: int(path.name),
            reverse=True,
        )
        candidates = [PostgresBinaries(path / "bin") for path in versions]
    for binaries in candidates:
        if all(os.access(p, os.X_OK) for p in (binaries.initdb, binaries.postgres)):
            return binaries
    where = configured or f"{DEBIAN_VERSIONS}/*/bin"
    raise PostgresNotInstalledError(
        f"PostgreSQL is not installed: no initdb and postgres in {where}. Run `make tools` as "
        f"root (it installs Debian's postgresql package), or `apt-get install postgresql`, "
        f"or set {BIN_DIR_VARIABLE} to the directory that holds initdb and postgres."
    )


def server_user() -> str | None:
    """The user the server runs as: Debian's ``postgres`` when running as root, else None
    (the current user)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise PostgresNotInstalledError(
            f"PostgreSQL refuses to run as root, and there is no `{SYSTEM_USER}` user to run "
            f"it as. Install Debian's postgresql package (`make tools` as root), which creates "
            f"it, or run `dpo cluster up` as an unprivileged user."
        ) from None
    return SYSTEM_USER


def _owner_ids(user: str | None) -> tuple[int, int]:
    entry = pwd.getpwnam(user) if user else pwd.getpwuid(os.geteuid())
    return entry.pw_uid, entry.pw_gid


def _reachable(path: Path, user: str | None) -> bool:
    """Whether ``user`` may search ``path`` through every parent (ACLs included)."""
    if user is None:
        return os.access(path, os.X_OK)
    probe = subprocess.run(run_as(["test", "-x", str(path)], user), check=False)
    return probe.returncode == 0


def remove_server_files(directory: Path, record: dict[str, Any] | None) -> None:
    """Remove the server's files kept outside DIR by an earlier ``up`` (nothing else)."""
    if not record:
        return
    root = Path(record.get("server", ""))
    outside = not root.is_relative_to(directory)
    if outside and root.name.startswith(EXTERNAL_PREFIX) and root.is_absolute():
        shutil.rmtree(root, ignore_errors=True)


def port_was_taken(log: Path) -> bool:
    """Whether the server's last start failed because its port was in use."""
    return "could not create any TCP/IP sockets" in tail(log)


class PostgresSetup:
    """One ``up``'s PostgreSQL: files placed and ``initdb`` started by :meth:`begin`, then
    the server started by the caller (recorded with the other components) with
    :meth:`server_command`, then :meth:`accepting` polled and :meth:`create_admin` run.
    ``pods``: the real node's pods' network (the server listens on its gateway and admits its
    subnet), None without the real node."""

    def __init__(
        self, directory: Path, port: int, log: Path, pods: PodNetwork | None = None
    ) -> None:
        self.directory = directory
        self.port = port
        self.log = log
        self.pods = pods
        self.binaries = find_binaries()
        self.user = server_user()
        self.files = ServerFiles(home(directory) / "server")
        self.note = ""
        self._initdb: subprocess.Popen[bytes] | None = None

    def record(self) -> dict[str, Any]:
        """What ``down`` and the next ``up`` need: where the files are, how to restart."""
        return {
            "port": self.port,
            "server": str(self.files.root),
            "user": self.user,
            "executable": str(self.binaries.postgres),
            "argv": self.server_command(),
        }

    def begin(self) -> None:
        """Create the directories and start ``initdb`` in the background."""
        uid, gid = _owner_ids(self.user)
        home(self.directory).mkdir(mode=0o755)
        if not socket_path_fits(self.files, self.port):
            self._place_outside("its socket path under DIR would be too long for the kernel")
        elif not _reachable(home(self.directory), self.user):
            who = self.user or getpass.getuser()
            self._place_outside(f"the {who} user cannot reach {self.directory}")
        for path in (self.files.root, self.files.sockets):
            path.mkdir(mode=0o700, exist_ok=True)
            os.chown(path, uid, gid)
        with self.log.open("ab") as log:
            self._initdb = subprocess.Popen(
                run_as(build_initdb_command(self.binaries, self.files), self.user),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.files.root,
                start_new_session=True,
            )

    def _place_outside(self, reason: str) -> None:
        root = Path(tempfile.mkdtemp(prefix=EXTERNAL_PREFIX))
        os.chown(root, *_owner_ids(self.user))
        self.files = ServerFiles(root)
        if not _reachable(root, self.user):
            raise ComponentStartError(
                f"Cannot place PostgreSQL's files: {reason}, nor {root}. Make the parent "
                f"directories of {self.directory} searchable (chmod o+x), or choose another "
                f"--dir."
            )
        (home(self.directory) / "server").symlink_to(root)
        self.note = f"files in {root} ({reason})"

    def finish_initdb(self) -> None:
        """Wait for ``initdb``; then write who may connect how."""
        if self._initdb is None:
            raise RuntimeError("PostgresSetup.begin() must run first")
        try:
            code = self._initdb.wait(timeout=INITDB_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.abort()
            raise ComponentStartError(
                f"initdb did not finish in {INITDB_TIMEOUT_SECONDS:.0f}s; "
                f"last lines of {self.log}:\n{tail(self.log)}"
            ) from None
        if code != 0:
            raise ComponentStartError(
                f"initdb of PostgreSQL failed with code {code}; "
                f"last lines of {self.log}:\n{tail(self.log)}"
            )
        uid, gid = _owner_ids(self.user)
        superusers = [getpass.getuser(), self.user or getpass.getuser()]
        for name, text in (
            ("pg_hba.conf", build_hba(self.pods)),
            ("pg_ident.conf", build_ident(superusers)),
        ):
            path = self.files.data / name
            path.write_text(text)
            os.chown(path, uid, gid)
            path.chmod(0o600)

    def abort(self) -> None:
        """Stop ``initdb`` if it still runs (``up`` failed or was interrupted)."""
        if self._initdb is not None and self._initdb.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._initdb.pid, signal.SIGKILL)
            self._initdb.wait()

    def server_command(self) -> list[str]:
        """The server's argv, switched to the server's user."""
        command = build_server_command(self.binaries, self.files, self.port, self.pods)
        return run_as(command, self.user)

    def superuser(self) -> LocalPostgres:
        """The connection details without the admin (the superuser needs none of them)."""
        return LocalPostgres(
            LISTEN_ADDRESS, self.port, "postgres", "", "", self.files.sockets, SUPERUSER
        )

    def accepting(self) -> bool:
        """Whether the server accepts the superuser's connections."""
        return accepting(self.superuser())

    def create_admin(self) -> LocalPostgres:
        """Database ``datamesh``, its admin role with a fresh password, and the admin file."""
        password = secrets.token_urlsafe(32)
        info = LocalPostgres(
            LISTEN_ADDRESS,
            self.port,
            DATABASE,
            ADMIN_ROLE,
            password,
            self.files.sockets,
            pod_host=self.pods.gateway if self.pods else None,
        )
        with psycopg.connect(**info.superuser_conninfo("postgres"), autocommit=True) as conn:
            # Only a SCRAM verifier computed here reaches the server, so no server log or
            # statistics view can ever show the password.
            verifier = conn.pgconn.encrypt_password(
                password.encode(), ADMIN_ROLE.encode(), b"scram-sha-256"
            ).decode()
            role, database = sql.Identifier(ADMIN_ROLE), sql.Identifier(DATABASE)
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                    role, sql.Literal(verifier)
                )
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(database))
            conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(database, role))
        _write_private(admin_file(self.directory), _admin_document(info))
        return info


def accepting(info: LocalPostgres, *, timeout_seconds: int = 2) -> bool:
    """Whether the server accepts the superuser's connections now."""
    try:
        with psycopg.connect(
            **info.superuser_conninfo("postgres"), connect_timeout=timeout_seconds
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def _admin_document(info: LocalPostgres) -> dict[str, Any]:
    return {
        "host": info.host,
        "port": info.port,
        "database": info.database,
        "username": info.username,
        "password": info.password,
        "socketDirectory": str(info.socket_directory),
        "superuser": info.superuser,
        "podHost": info.pod_host,
    }


def _write_private(path: Path, document: dict[str, Any]) -> None:
    """Write a file only its owner may read, created with that mode (never readable first)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(json.dumps(document, indent=2) + "\n")


def local_postgres(directory: Path) -> LocalPostgres:
    """The local cluster's PostgreSQL, as ``dpo cluster up --dir DIR`` recorded it."""
    path = admin_file(directory.resolve())
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(
            f"No PostgreSQL recorded in {directory} (no {path}); start the cluster with "
            f"`dpo cluster up --dir {directory}`"
        ) from None
    return LocalPostgres(
        host=document["host"],
        port=int(document["port"]),
        database=document["database"],
        username=document["username"],
        password=document["password"],
        socket_directory=Path(document["socketDirectory"]),
        superuser=document["superuser"],
        pod_host=document.get("podHost"),
    )
