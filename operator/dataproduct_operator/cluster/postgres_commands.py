"""Command lines and configuration of the local cluster's PostgreSQL (layer ``cluster``, pure).

Given where the server's files go, the port, the binaries and the operating-system users,
these functions return the exact argv of ``initdb`` and of the server, and the text of
``pg_hba.conf`` and ``pg_ident.conf``. Every server setting is on the command line, so the
whole configuration reads in one place (:func:`build_server_command`).

Where it listens: 127.0.0.1, and when the real node runs, the gateway address of the node's
bridge too (``.1`` of the pods' /24, see :mod:`.node_config`), so that pipeline pods reach it;
never a wildcard address, so no other interface of the machine serves it.

Who may connect how (:func:`build_hba`):

- over TCP from 127.0.0.1, and from the pods' subnet when the real node runs, with a password
  checked by SCRAM-SHA-256 (the admin role, and the logins the operator creates); never
  ``trust``;
- over the unix socket, as the superuser ``postgres`` only, by peer authentication mapped from
  the operating-system users allowed to be superuser (root or whoever ran ``dpo cluster up``,
  and the user the server runs as): the path tests use to inspect or sabotage. Nothing else
  is accepted on the socket; the socket's directory is private to the server's user anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "postgres"
DATABASE = "datamesh"
ADMIN_ROLE = "datamesh_admin"
LISTEN_ADDRESS = "127.0.0.1"
CLUSTER_NAME = "dpo-local"
IDENT_MAP = "superuser"
# util-linux's, on every Debian system; a full path, as the component's spawn needs one.
SETPRIV = Path("/usr/bin/setpriv")
# The size of a unix socket address's path (sun_path), its terminating NUL included.
SOCKET_PATH_LIMIT = 108


@dataclass(frozen=True)
class PostgresBinaries:
    """The server programs of one installed PostgreSQL version."""

    directory: Path

    @property
    def initdb(self) -> Path:
        return self.directory / "initdb"

    @property
    def postgres(self) -> Path:
        return self.directory / "postgres"

    @property
    def psql(self) -> Path:
        """The client of the same version, for the commands ``dpo dev`` prints."""
        return self.directory / "psql"


@dataclass(frozen=True)
class ServerFiles:
    """Where the server's own files live: a directory only the server's user may enter."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sockets(self) -> Path:
        return self.root / "run"

    def socket(self, port: int) -> Path:
        return self.sockets / f".s.PGSQL.{port}"


def socket_path_fits(files: ServerFiles, port: int) -> bool:
    """Whether the server's socket path is short enough for the kernel to bind it."""
    return len(str(files.socket(port)).encode()) < SOCKET_PATH_LIMIT


def run_as(argv: list[str], user: str | None, setpriv: Path = SETPRIV) -> list[str]:
    """``argv`` run as ``user`` (with that user's group and no other), or as is when None.

    ``setpriv`` (util-linux) changes the identity and then executes the program in the same
    process, so the pid recorded at start is the program's own.
    """
    if user is None:
        return argv
    return [str(setpriv), f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *argv]


def build_initdb_command(binaries: PostgresBinaries, files: ServerFiles) -> list[str]:
    """argv of ``initdb`` for a fresh data directory."""
    return [
        str(binaries.initdb),
        f"--pgdata={files.data}",
        f"--username={SUPERUSER}",
        "--encoding=UTF8",
        "--no-locale",
        "--auth-local=peer",
        "--auth-host=scram-sha-256",
        # The local cluster is thrown away at `dpo cluster down`: durability is not worth the
        # seconds an fsync of every file costs here.
        "--no-sync",
        "--no-instructions",
    ]


@dataclass(frozen=True)
class PodNetwork:
    """The real node's pods' network, as PostgreSQL sees it: the subnet its pods connect from
    and the bridge's gateway address it listens on for them."""

    subnet: str  # e.g. 10.89.7.0/24
    gateway: str  # e.g. 10.89.7.1


def listen_addresses(pods: PodNetwork | None) -> list[str]:
    """The addresses the server binds: loopback, and the pods' gateway when there are pods."""
    return [LISTEN_ADDRESS] if pods is None else [LISTEN_ADDRESS, pods.gateway]


def build_server_command(
    binaries: PostgresBinaries, files: ServerFiles, port: int, pods: PodNetwork | None = None
) -> list[str]:
    """argv of the server: every setting that differs from the defaults, in one place."""
    settings = {
        "listen_addresses": ",".join(listen_addresses(pods)),
        "port": str(port),
        "unix_socket_directories": str(files.sockets),
        "unix_socket_permissions": "0700",
        "cluster_name": CLUSTER_NAME,
        "password_encryption": "scram-sha-256",
        # A throw-away local cluster: nothing here must survive a crash of the machine, and
        # skipping the flushes makes DDL-heavy tests and benchmarks measure the operator,
        # not the disk.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "ssl": "off",
        "log_line_prefix": "%m [%p] %q%u@%d ",
    }
    argv = [str(binaries.postgres), "-D", str(files.data)]
    for name, value in settings.items():
        argv += ["-c", f"{name}={value}"]
    return argv


def build_hba(pods: PodNetwork | None = None) -> str:
    """``pg_hba.conf``: superuser by peer on the socket, passwords over loopback TCP and, with
    the real node, from its pods' subnet."""
    text = (
        "# Written by `dpo cluster up`; see cluster/postgres_commands.py.\n"
        "# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
        f"local   all       {SUPERUSER}  peer map={IDENT_MAP}\n"
        f"host    all       all   {LISTEN_ADDRESS}/32  scram-sha-256\n"
    )
    if pods is not None:
        text += f"host    all       all   {pods.subnet}  scram-sha-256\n"
    return text


def build_ident(os_users: list[str]) -> str:
    """``pg_ident.conf``: the operating-system users that may connect as the superuser."""
    lines = ["# Written by `dpo cluster up`; see cluster/postgres_commands.py."]
    lines += [f"{IDENT_MAP}  {user}  {SUPERUSER}" for user in dict.fromkeys(os_users)]
    return "\n".join(lines) + "\n"
