"""The local cluster's PostgreSQL keeps its admin's password to the user who started it: the
admin file is private, the password reaches no log or state file, the server runs unprivileged
with private files, the socket takes only the superuser, and TCP only the right password."""

from __future__ import annotations

import json
import os
import pwd
import stat
from pathlib import Path

import psycopg
import pytest

from dataproduct_operator.cluster import controlplane
from dataproduct_operator.cluster.postgres import LocalPostgres, local_postgres
from tests.clusters import login_sql


def test_admin_file_is_private_to_who_ran_up_and_matches_the_cluster(
    control_plane: controlplane.ClusterInfo, postgres: LocalPostgres
) -> None:
    path = control_plane.directory / "postgres" / "admin.json"
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert path.stat().st_uid == os.geteuid()
    assert local_postgres(control_plane.directory) == postgres
    assert json.loads(path.read_text())["host"] == "127.0.0.1"
    assert postgres.password not in repr(control_plane)


def test_admin_password_is_in_no_log_and_no_state_file(
    control_plane: controlplane.ClusterInfo, postgres: LocalPostgres
) -> None:
    # The role's password reached the server as a SCRAM verifier: a statement logged in full
    # would show the verifier, never the password.
    directory = control_plane.directory
    files = [*(directory / "logs").iterdir(), directory / "state.json"]
    assert directory / "logs" / "postgres.log" in files
    for path in files:
        assert postgres.password not in path.read_text(errors="replace"), path


def test_server_runs_unprivileged_with_files_only_its_user_may_enter(
    control_plane: controlplane.ClusterInfo,
) -> None:
    server = controlplane.component(control_plane.directory, "postgres")
    status = Path(f"/proc/{server.pid}/status").read_text()
    real, effective = (int(x) for x in status.split("Uid:")[1].split()[:2])
    assert real == effective != 0
    state = json.loads((control_plane.directory / "state.json").read_text())
    files = Path(state["postgres"]["server"])
    for directory in (files, files / "data", files / "run"):
        info = directory.stat()
        assert stat.S_IMODE(info.st_mode) == 0o700, directory
        assert info.st_uid == effective, directory
    if os.geteuid() == 0:
        assert pwd.getpwuid(effective).pw_name == "postgres"


def test_socket_takes_only_the_superuser_and_tcp_only_the_right_password(
    postgres: LocalPostgres,
) -> None:
    with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry"):
        psycopg.connect(
            **{**postgres.superuser_conninfo(), "user": postgres.username},
            password=postgres.password,
            connect_timeout=5,
        ).close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        login_sql(postgres, postgres.username, "not-the-password", "SELECT 1")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        login_sql(postgres, postgres.superuser, postgres.password, "SELECT 1")
