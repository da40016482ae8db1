"""The local PostgreSQL's command lines and access rules: loopback only, passwords by SCRAM,
the superuser only through the socket, no root, and nothing slowed down by flushes; and its
registration as the dev setup's default DataStore."""

from __future__ import annotations

import base64
from pathlib import Path

from dataproduct_operator.api.datastore import DataStore
from dataproduct_operator.cluster import postgres_commands as commands
from dataproduct_operator.cluster.dev import OPERATOR_NAMESPACE, build_local_store
from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.cluster.postgres_commands import (
    PodNetwork,
    PostgresBinaries,
    ServerFiles,
)

BINARIES = PostgresBinaries(Path("/usr/lib/postgresql/15/bin"))
FILES = ServerFiles(Path("/c/postgres/server"))


def _settings(argv: list[str]) -> dict[str, str]:
    pairs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-c"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_server_listens_on_loopback_only_with_its_socket_private() -> None:
    argv = commands.build_server_command(BINARIES, FILES, 5433)
    assert argv[:3] == ["/usr/lib/postgresql/15/bin/postgres", "-D", "/c/postgres/server/data"]
    settings = _settings(argv)
    assert settings["listen_addresses"] == "127.0.0.1"
    assert settings["port"] == "5433"
    assert settings["unix_socket_directories"] == "/c/postgres/server/run"
    assert settings["unix_socket_permissions"] == "0700"
    assert settings["password_encryption"] == "scram-sha-256"


def test_with_the_real_node_it_listens_on_the_pods_gateway_too_and_no_wildcard() -> None:
    pods = PodNetwork("10.89.7.0/24", "10.89.7.1")
    settings = _settings(commands.build_server_command(BINARIES, FILES, 5433, pods))
    assert settings["listen_addresses"] == "127.0.0.1,10.89.7.1"


def test_server_skips_flushes_of_the_throw_away_cluster() -> None:
    settings = _settings(commands.build_server_command(BINARIES, FILES, 5433))
    assert settings["fsync"] == "off"
    assert settings["synchronous_commit"] == "off"
    assert "--no-sync" in commands.build_initdb_command(BINARIES, FILES)


def test_initdb_makes_a_utf8_cluster_whose_superuser_is_postgres() -> None:
    argv = commands.build_initdb_command(BINARIES, FILES)
    assert argv[0] == "/usr/lib/postgresql/15/bin/initdb"
    assert "--pgdata=/c/postgres/server/data" in argv
    assert "--username=postgres" in argv
    assert "--encoding=UTF8" in argv
    assert "--auth-host=scram-sha-256" in argv


def test_passwords_over_loopback_tcp_and_only_the_superuser_on_the_socket() -> None:
    rules = [line.split() for line in commands.build_hba().splitlines() if not line.startswith("#")]
    assert rules == [
        ["local", "all", "postgres", "peer", "map=superuser"],
        ["host", "all", "all", "127.0.0.1/32", "scram-sha-256"],
    ]


def test_with_the_real_node_its_pods_subnet_logs_in_by_password_never_trust() -> None:
    pods = PodNetwork("10.89.7.0/24", "10.89.7.1")
    rules = [
        line.split() for line in commands.build_hba(pods).splitlines() if not line.startswith("#")
    ]
    assert rules == [
        ["local", "all", "postgres", "peer", "map=superuser"],
        ["host", "all", "all", "127.0.0.1/32", "scram-sha-256"],
        ["host", "all", "all", "10.89.7.0/24", "scram-sha-256"],
    ]
    assert all(rule[-1] != "trust" for rule in rules)


def test_superuser_map_names_each_operating_system_user_once() -> None:
    rules = [
        line.split() for line in commands.build_ident(["root", "postgres", "root"]).splitlines()
    ]
    assert [rule for rule in rules if rule[0] != "#"] == [
        ["superuser", "root", "postgres"],
        ["superuser", "postgres", "postgres"],
    ]


def test_run_as_switches_user_and_drops_groups_in_the_same_process() -> None:
    assert commands.run_as(["/bin/postgres", "-D", "d"], "postgres") == [
        "/usr/bin/setpriv",
        "--reuid=postgres",
        "--regid=postgres",
        "--clear-groups",
        "--",
        "/bin/postgres",
        "-D",
        "d",
    ]
    assert commands.run_as(["/bin/postgres"], None) == ["/bin/postgres"]


def test_a_socket_path_past_the_kernel_limit_does_not_fit() -> None:
    assert commands.socket_path_fits(FILES, 5433)
    longest = ServerFiles(
        Path("/" + "d" * (commands.SOCKET_PATH_LIMIT - len("/run/.s.PGSQL.5433") - 2))
    )
    assert len(str(longest.socket(5433))) == commands.SOCKET_PATH_LIMIT - 1  # and the NUL
    assert commands.socket_path_fits(longest, 5433)
    too_long = ServerFiles(longest.root.with_name(longest.root.name + "d"))
    assert not commands.socket_path_fits(too_long, 5433)


def test_dev_registers_the_local_postgres_as_the_default_store_with_its_admin_secret() -> None:
    postgres = LocalPostgres("127.0.0.1", 5433, "datamesh", "datamesh_admin", "s3cret", Path("/r"))
    namespace, secret, document = build_local_store(postgres)
    assert namespace["metadata"]["name"] == OPERATOR_NAMESPACE
    store = DataStore.from_object(document)
    assert store.name == "local-postgres"
    assert store.is_default
    assert store.spec.postgres is not None
    assert (store.spec.postgres.host, store.spec.postgres.port) == ("127.0.0.1", 5433)
    assert store.spec.postgres.database == "datamesh"
    reference = store.spec.credentials_secret_ref
    assert (reference.namespace, reference.name) == (
        secret["metadata"]["namespace"],
        secret["metadata"]["name"],
    )
    decoded = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert decoded == {"username": "datamesh_admin", "password": "s3cret"}


def test_with_the_real_node_the_default_store_names_the_gateway_its_pods_reach() -> None:
    postgres = LocalPostgres(
        "127.0.0.1", 5433, "datamesh", "datamesh_admin", "s3cret", Path("/r"),
        pod_host="10.89.7.1",
    )  # fmt: skip
    assert postgres.admin_conninfo()["host"] == "127.0.0.1"
    store = DataStore.from_object(build_local_store(postgres)[-1])
    assert store.spec.postgres is not None
    assert store.spec.postgres.host == "10.89.7.1"
