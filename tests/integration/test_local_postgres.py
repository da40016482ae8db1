"""PostgreSQL of the local cluster: `dpo cluster up` starts it with a non-superuser admin that
can do what a DataStore needs, `dpo cluster down` stops it without a trace, and a SIGKILL
leaves nothing that blocks the next `up`."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import psycopg
import pytest

from dataproduct_operator.cluster import controlplane
from dataproduct_operator.cluster.node import NodeMode
from dataproduct_operator.cluster.postgres import LocalPostgres
from tests.clusters import login_sql, postgres_stopped, superuser_sql
from tests.helpers import wait_for


def test_admin_is_no_superuser_and_can_create_roles_and_schemas(postgres: LocalPostgres) -> None:
    admin = (postgres.username, postgres.password)
    rows = login_sql(
        postgres,
        *admin,
        "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user",
    )
    assert rows == [(False, True, False)]
    login_sql(postgres, *admin, "CREATE ROLE t_admin_can_create NOLOGIN")
    login_sql(postgres, *admin, "CREATE SCHEMA t_admin_can_create AUTHORIZATION CURRENT_USER")
    schemas = superuser_sql(
        postgres,
        "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 't_admin_can_create'",
    )
    assert schemas == [(postgres.username,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        login_sql(postgres, *admin, "CREATE DATABASE t_admin_cannot")
    superuser_sql(postgres, "DROP SCHEMA t_admin_can_create")
    superuser_sql(postgres, "DROP ROLE t_admin_can_create")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def server_processes(postmaster: int) -> list[int]:
    """The postmaster and its children (checkpointer, walwriter, sessions, ...)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
        if postmaster in (int(proc.name), parent):
            found.append(int(proc.name))
    return alive(found)


def alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` that still run (zombies excluded): a child of a killed postmaster
    is no longer its child, so it is followed by pid."""
    running = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if state != "Z":
            running.append(pid)
    return running


def test_postgres_stopped_then_started_keeps_its_data_and_down_leaves_nothing(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "cluster"
    pg = controlplane.up(directory, node_mode=NodeMode.KWOK).postgres
    try:
        server_files = Path(
            json.loads((directory / "state.json").read_text())["postgres"]["server"]
        )
        login_sql(pg, pg.username, pg.password, "CREATE SCHEMA t_kept")
        with postgres_stopped(directory, pg):
            assert not port_open(pg.port)
            with pytest.raises(psycopg.OperationalError):
                login_sql(pg, pg.username, pg.password, "SELECT 1")
        rows = login_sql(
            pg,
            pg.username,
            pg.password,
            "SELECT nspname FROM pg_namespace WHERE nspname = 't_kept'",
        )
        assert rows == [("t_kept",)]
        processes = server_processes(controlplane.component(directory, "postgres").pid)
        assert len(processes) > 1  # the postmaster and its workers
    finally:
        stopped = controlplane.down(directory)
    assert stopped[0] == "postgres"
    assert alive(processes) == []
    assert not port_open(pg.port)
    assert not server_files.exists()


def test_down_after_sigkill_of_postgres_then_up_starts_a_fresh_one(tmp_path: Path) -> None:
    directory = tmp_path / "cluster"
    first = controlplane.up(directory, node_mode=NodeMode.KWOK).postgres
    try:
        postmaster = controlplane.component(directory, "postgres").pid
        processes = server_processes(postmaster)
        os.kill(postmaster, signal.SIGKILL)
        # Its workers notice the postmaster's death and exit on their own.
        wait_for(lambda: not alive(processes), description="every postgres process to exit")
        assert "postgres" not in controlplane.down(directory)
        assert not port_open(first.port)

        again = controlplane.up(directory, node_mode=NodeMode.KWOK).postgres
        assert again.password != first.password
        rows = login_sql(again, again.username, again.password, "SELECT current_user")
        assert rows == [(again.username,)]
    finally:
        controlplane.down(directory)


def test_a_port_taken_before_postgres_binds_it_gets_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ports are chosen when ``up`` begins and PostgreSQL binds its own seconds later:
    another process taking it meanwhile costs a start on another port, not the cluster."""
    chosen = controlplane._free_ports
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        first = [True]

        def ports(count: int) -> list[int]:
            found = chosen(count)
            if first[0] and count > 1:
                first[0] = False
                return [*found[:-1], taken]  # PostgreSQL's is the last
            return found

        monkeypatch.setattr(controlplane, "_free_ports", ports)
        directory = tmp_path / "cluster"
        info = controlplane.up(directory, node_mode=NodeMode.KWOK).postgres
        try:
            assert info.port != taken
            assert login_sql(info, info.username, info.password, "SELECT 1") == [(1,)]
        finally:
            controlplane.down(directory)
