"""Bring a local control plane up and down in a directory (layer ``cluster``, imperative).

``up`` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on free
loopback ports, creates a default StorageClass and one fake Node, starts PostgreSQL (see
:mod:`dataproduct_operator.cluster.postgres`; when the real node runs, its pods' bridge is made
first, so the server listens on the bridge's gateway address too), and returns when the API
server is ready, the node is Ready, the ``default`` ServiceAccount exists and PostgreSQL's
admin can connect. Every started pid is recorded in ``DIR/state.json`` as soon as it starts,
so ``down`` (or an interrupted ``up``) stops exactly what was started. For fault tests, a
running component can be paused (SIGSTOP) and resumed, or stopped and started again with the
same command line and data.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from dataproduct_operator import interrupts
from dataproduct_operator.cluster import node, pki, postgres
from dataproduct_operator.cluster.components import (
    Layout,
    Ports,
    build_commands,
    default_storage_class,
    fake_node,
)
from dataproduct_operator.cluster.node import NodeMode
from dataproduct_operator.cluster.node_config import REAL_NODE_NAME, NodeLayout, gateway
from dataproduct_operator.cluster.postgres import LocalPostgres
from dataproduct_operator.cluster.postgres_commands import PodNetwork
from dataproduct_operator.cluster.process import (
    ComponentProcess,
    child_exit_code,
    command_line,
    is_running,
    pause_process,
    resume_process,
    start_process,
    stop_child,
    stop_process,
    tail,
)
from dataproduct_operator.cluster.toolchain import (
    CONTROL_PLANE_TOOLS,
    read_versions,
    require_binaries,
)
from dataproduct_operator.errors import ComponentStartError, UserError
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.kubeconfig import Connection, write_kubeconfig
from dataproduct_operator.k8s.rest import ApiError

NODE_NAME = "kwok-node-0"
STATE_VERSION = 1
# Paths under DIR that `up` owns and recreates; nothing else in DIR is ever touched.
OWNED_ENTRIES = (
    "pki",
    "etcd-data",
    "kubeconfigs",
    "logs",
    "kwok-stages.yaml",
    "kubeconfig",
    "postgres",
    "prometheus",  # the local Prometheus' configuration, rules and data (cluster/prometheus.py)
)
# kube-controller-manager's in-tree hostpath provisioner always creates volumes here.
HOSTPATH_PROVISIONER_ROOT = Path("/tmp/hostpath_pv")  # noqa: S108
KWOK_STAGES = Path(__file__).parent / "assets" / "kwok-stages.yaml"


@dataclass(frozen=True)
class ClusterInfo:
    """What ``up`` reports: where to connect and how long it took."""

    directory: Path
    kubeconfig: Path
    server: str
    kubernetes_version: str
    ready_seconds: float
    postgres: LocalPostgres
    # How long PostgreSQL held up `up` once the control plane was ready (initdb runs before,
    # beside etcd and the API server).
    postgres_ready_seconds: float
    real_node: str | None = None  # the real node's name, when it runs


class ClusterAlreadyRunningError(UserError):
    """``up`` on a directory whose cluster still runs."""


# Starts of PostgreSQL when its port was taken between choosing it and binding it.
POSTGRES_PORT_ATTEMPTS = 3


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open until chosen, so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _stop_signal(name: str) -> signal.Signals:
    """The signal that asks a component to stop at once."""
    return postgres.STOP_SIGNAL if name == postgres.NAME else signal.SIGTERM


def _read_state(layout: Layout) -> dict[str, Any] | None:
    try:
        state = json.loads(layout.state.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _recorded_processes(state: dict[str, Any] | None) -> list[ComponentProcess]:
    if not state:
        return []
    return [ComponentProcess(**entry) for entry in state.get("components", [])]


def running_components(directory: Path) -> list[ComponentProcess]:
    """The recorded components of DIR that still run."""
    return [p for p in _recorded_processes(_read_state(Layout(directory))) if is_running(p)]


class _Starter:
    """Tracks what ``up`` started so a failure or Ctrl-C stops all of it."""

    def __init__(self, layout: Layout, state: dict[str, Any]) -> None:
        self.layout = layout
        self.state = state
        self.processes: list[ComponentProcess] = []

    def start(self, name: str, argv: list[str], *, executable: str | None = None) -> None:
        """Start and record a component; ``executable``: the program ``argv`` ends up
        running, when ``argv[0]`` only prepares for it (``setpriv``)."""
        process = start_process(name, argv, self.layout.log(name))
        self.processes.append(replace(process, executable=executable or process.executable))
        self.save()

    def forget(self, name: str) -> None:
        """Forget a component that exited (to start it again)."""
        self.processes = [c for c in self.processes if c.name != name]
        self.save()

    def save(self) -> None:
        self.state["components"] = [asdict(component) for component in self.processes]
        self.layout.state.write_text(json.dumps(self.state, indent=2) + "\n")

    def check_alive(self) -> None:
        """Raise with the component's last log lines if any started component has exited."""
        for component in self.processes:
            code = child_exit_code(component.pid)
            if code is not None:
                log = self.layout.log(component.name)
                raise ComponentStartError(
                    f"{component.name} exited during start with code {code}; "
                    f"last lines of {log}:\n{tail(log)}"
                )

    def stop_all(self) -> list[str]:
        stopped = [
            c.name
            for c in reversed(self.processes)
            if stop_child(c, first_signal=_stop_signal(c.name))
        ]
        self.layout.state.unlink(missing_ok=True)
        return stopped


def _wait_until(
    starter: _Starter,
    check: Callable[[], bool],
    what: str,
    component: str,
    timeout: float,
) -> None:
    """Poll ``check`` until true; fail early if a component dies, or at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        interrupts.raise_if_interrupted()
        starter.check_alive()
        try:
            if check():
                return
        except (OSError, ApiError):
            pass  # not listening yet, or not serving yet
        if time.monotonic() > deadline:
            log = starter.layout.log(component)
            raise ComponentStartError(
                f"Timed out after {timeout:.0f}s waiting for {what}; "
                f"last lines of {log}:\n{tail(log)}"
            )
        time.sleep(0.1)


def _https_ok(client: BlockingClient, path: str) -> Callable[[], bool]:
    """A probe of a health endpoint, through one client (one TLS setup) for every poll."""

    def check() -> bool:
        status, body = client.raw("GET", path)
        # kube components answer "ok"; etcd answers {"health":"true",...}
        return status == 200 and (body.strip() == b"ok" or b'"health":"true"' in body)

    return check


@dataclass(frozen=True)
class _Prepared:
    admin: Connection
    etcd_client: pki.KeyPair  # the client certificate etcd accepts
    authority: pki.CertificateAuthority


def _prepare_directory(layout: Layout, ports: Ports) -> _Prepared:
    """Fresh certificates, component kubeconfigs and kwok stages."""
    for entry in OWNED_ENTRIES:
        path = layout.root / entry
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for directory in (layout.pki, layout.logs, layout.component_kubeconfigs):
        directory.mkdir(parents=True, exist_ok=True)
    layout.etcd_data.mkdir(mode=0o700)

    authority = pki.CertificateAuthority()
    (layout.pki / "ca.crt").write_bytes(authority.cert_pem)
    local = ("localhost",), ("127.0.0.1",)
    pki.write_pair(layout.pki, "etcd-server", authority.issue_server("etcd", *local))
    pki.write_pair(
        layout.pki,
        "apiserver",
        authority.issue_server("kube-apiserver", pki.APISERVER_NAMES, pki.APISERVER_IPS),
    )
    etcd_client = authority.issue_client(pki.APISERVER_ETCD_CLIENT)
    pki.write_pair(layout.pki, "apiserver-etcd-client", etcd_client)
    kubelet_client = authority.issue_client(pki.APISERVER_KUBELET_CLIENT)
    pki.write_pair(layout.pki, "apiserver-kubelet-client", kubelet_client)
    for name in ("controller-manager-serving", "scheduler-serving"):
        pki.write_pair(layout.pki, name, authority.issue_server(name, *local))
    private, public = pki.service_account_signing_key()
    pki.write_private(layout.pki / "service-account.key", private)
    (layout.pki / "service-account.pub").write_bytes(public)

    server = f"https://127.0.0.1:{ports.apiserver}"
    for component, identity in (
        ("kube-controller-manager", pki.CONTROLLER_MANAGER),
        ("kube-scheduler", pki.SCHEDULER),
        ("kwok", pki.KWOK),
    ):
        pair = authority.issue_client(identity)
        write_kubeconfig(
            layout.component_kubeconfig(component),
            Connection(server, authority.cert_pem, pair.cert_pem, pair.key_pem),
            user=identity.user,
        )
    shutil.copyfile(KWOK_STAGES, layout.kwok_config)

    admin = authority.issue_client(pki.ADMIN)
    connection = Connection(server, authority.cert_pem, admin.cert_pem, admin.key_pem)
    return _Prepared(connection, etcd_client, authority)


def _node_ready(client: BlockingClient, name: str = NODE_NAME) -> bool:
    found = client.get(f"/api/v1/nodes/{name}")
    conditions = found.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


Step = Callable[[str, str, Callable[[], bool], float], None]


def _start_control_plane(
    starter: _Starter,
    commands: dict[str, list[str]],
    ports: Ports,
    credentials: _Prepared,
    step: Step,
) -> None:
    """etcd, the API server, then the controllers, the scheduler and kwok, each waited for."""
    admin, etcd_client = credentials.admin, credentials.etcd_client
    layout = starter.layout
    t = time.monotonic()
    starter.start("etcd", commands["etcd"])
    etcd = Connection(
        f"https://127.0.0.1:{ports.etcd_client}",
        admin.ca_pem,
        etcd_client.cert_pem,
        etcd_client.key_pem,
    )
    with BlockingClient.from_connection(etcd, timeout=5) as probe:
        step("etcd", "etcd /health", _https_ok(probe, "/health"), t)

    t = time.monotonic()
    starter.start("kube-apiserver", commands["kube-apiserver"])
    with BlockingClient.from_connection(admin, timeout=5) as probe:
        step("kube-apiserver", "kube-apiserver /readyz", _https_ok(probe, "/readyz"), t)
    write_kubeconfig(layout.kubeconfig, admin)

    t = time.monotonic()
    for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
        starter.start(name, commands[name])
    with BlockingClient.from_connection(admin) as client:
        client.create_if_missing("/apis/storage.k8s.io/v1/storageclasses", default_storage_class())
        client.create_if_missing("/api/v1/nodes", fake_node(NODE_NAME))
        for name, port in (
            ("kube-controller-manager", ports.controller_manager),
            ("kube-scheduler", ports.scheduler),
        ):
            health = Connection(f"https://127.0.0.1:{port}", admin.ca_pem)
            with BlockingClient.from_connection(health, timeout=5) as probe:
                step(name, f"{name} /healthz", _https_ok(probe, "/healthz"), t)
        step("kwok", f"node {NODE_NAME} Ready", lambda: _node_ready(client), t)
        step(
            "serviceaccounts",
            "the default ServiceAccount",
            lambda: client.exists("/api/v1/namespaces/default/serviceaccounts/default"),
            t,
        )


def _start_postgres(
    starter: _Starter, database: postgres.PostgresSetup, step: Step
) -> tuple[LocalPostgres, float]:
    """PostgreSQL's server once ``initdb`` is done, then its admin; and how long this took.

    Its port was chosen free when ``up`` began, seconds earlier: when another process (an
    outgoing connection's ephemeral port, say) took it meanwhile, the server starts again on
    another free port."""
    t = time.monotonic()
    database.finish_initdb()
    for attempt in range(1, POSTGRES_PORT_ATTEMPTS + 1):
        starter.start(
            postgres.NAME, database.server_command(), executable=str(database.binaries.postgres)
        )
        try:
            step(postgres.NAME, "PostgreSQL to accept connections", database.accepting, t)
            break
        except ComponentStartError:
            if attempt == POSTGRES_PORT_ATTEMPTS or not postgres.port_was_taken(database.log):
                raise
            starter.forget(postgres.NAME)
            database.port = _free_ports(1)[0]
            starter.state["postgres"] = database.record()
            starter.save()
    local_postgres = database.create_admin()
    return local_postgres, round(time.monotonic() - t, 2)


def _start_node(
    starter: _Starter,
    prepared: _Prepared,
    pods: PodNetwork,
    *,
    ports: tuple[int, int],
    step: Step,
    out: TextIO,
) -> None:
    """The real node (its bridge made already): containerd with the images imported, then the
    kubelet, until Ready."""
    layout = starter.layout
    node_layout = NodeLayout(layout.root)
    t = time.monotonic()
    certificates = node.issue_certificates(prepared.authority, layout.pki)
    settings = node.prepare(
        node_layout,
        certificates,
        subnet=pods.subnet,
        server=prepared.admin.server,
        ca_pem=prepared.admin.ca_pem,
        ca_file=layout.pki / "ca.crt",
        ports=ports,
    )
    starter.state["node"] |= {
        "name": REAL_NODE_NAME,
        "subnet": settings.subnet,
        "runtime": str(node_layout.runtime),
        "cgroupRoot": node_layout.cgroup_root,
    }
    commands = node.commands(node_layout)
    node.plant_images(node_layout, out)
    starter.start(node.CONTAINERD, commands[node.CONTAINERD])
    step(node.CONTAINERD, "containerd's socket", node.containerd_ready(node_layout), t)
    node.import_images(node_layout, out)
    t = time.monotonic()
    starter.start(node.KUBELET, commands[node.KUBELET])
    with BlockingClient.from_connection(prepared.admin) as client:
        step(
            node.KUBELET,
            f"node {REAL_NODE_NAME} Ready",
            lambda: _node_ready(client, REAL_NODE_NAME),
            t,
        )


def _pod_network(
    layout: NodeLayout, mode: NodeMode
) -> tuple[list[node.Problem], PodNetwork | None]:
    """What keeps the real node from running (see :func:`_node_problems`), and when it runs,
    its pods' subnet (free on this machine) and gateway."""
    found = _node_problems(layout, mode)
    if mode is NodeMode.KWOK or found:
        return found, None
    subnet = node.choose_subnet(layout)
    return found, PodNetwork(subnet, gateway(subnet))


def _make_bridge(starter: _Starter, layout: NodeLayout, pods: PodNetwork | None) -> None:
    """The pods' bridge, before PostgreSQL starts (it binds the gateway's address); recorded
    first, so ``down`` removes it whatever happens next. Nothing without the real node."""
    if pods is None:
        return
    starter.state["node"] = {"bridge": layout.bridge, "gateway": pods.gateway}
    starter.save()
    node.create_bridge(layout, pods.subnet)


def _refuse_if_running(layout: Layout, directory: Path) -> None:
    alive = running_components(layout.root)
    if alive:
        names = ", ".join(f"{p.name} (pid {p.pid})" for p in alive)
        raise ClusterAlreadyRunningError(
            f"A cluster is already running in {directory}: {names}. "
            f"Run `dpo cluster down --dir {directory}` first."
        )


def _said(problems: list[node.Problem]) -> str:
    return "; ".join(f"{p.what} ({p.fix})" for p in problems)


def _node_problems(layout: NodeLayout, mode: NodeMode) -> list[node.Problem]:
    """What keeps the real node from running (none asked for: none); raises when it must run.
    Tears down what a SIGKILLed cluster in the directory left of its node."""
    found = [] if mode is NodeMode.KWOK else node.problems(layout)
    if found and mode is NodeMode.REAL:
        raise UserError(f"The real node cannot run here: {_said(found)}")
    if mode is not NodeMode.KWOK or layout.directory.exists():
        node.teardown(layout)
    return found


def up(
    directory: Path,
    *,
    out: TextIO = sys.stderr,
    timeout: float = 120.0,
    node_mode: NodeMode = NodeMode.AUTO,
) -> ClusterInfo:
    """Start the control plane in ``directory``; return once it is ready to use. With
    ``node_mode`` auto or real, also the real node (see :class:`NodeMode`)."""
    started = time.monotonic()
    layout = Layout(directory.resolve())
    layout.root.mkdir(parents=True, exist_ok=True)
    _refuse_if_running(layout, directory)
    binaries = require_binaries(CONTROL_PLANE_TOOLS)
    version = read_versions().kubernetes
    node_layout = NodeLayout(layout.root)
    node_problems, pods = _pod_network(node_layout, node_mode)
    *control_plane_ports, postgres_port, kubelet_port, healthz_port = _free_ports(8)
    ports = Ports(*control_plane_ports)
    database = postgres.PostgresSetup(layout.root, postgres_port, layout.log(postgres.NAME), pods)
    print(f"Starting a local control plane (Kubernetes {version}) in {directory}", file=out)
    postgres.remove_server_files(layout.root, (_read_state(layout) or {}).get("postgres"))
    prepared = _prepare_directory(layout, ports)
    admin = prepared.admin
    commands = build_commands(layout, ports, binaries)
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "kubernetesVersion": version,
        "server": admin.server,
        "ports": asdict(ports),
        "components": [],
    }
    starter = _Starter(layout, state)

    def step(name: str, what: str, check: Callable[[], bool], since: float) -> None:
        _wait_until(starter, check, what, name, timeout)
        print(f"  {name:<24} ready after {time.monotonic() - since:5.1f}s", file=out, flush=True)

    try:
        _make_bridge(starter, node_layout, pods)
        database.begin()
        state["postgres"] = database.record()
        starter.save()
        if database.note:
            print(f"  {postgres.NAME:<24} {database.note}", file=out, flush=True)
        _start_control_plane(starter, commands, ports, prepared, step)
        local_postgres, postgres_ready = _start_postgres(starter, database, step)
        real_node = None
        if node_mode is not NodeMode.KWOK and node_problems:
            print(f"  The real node is not started, pods run on kwok's simulated node only: "
                  f"{_said(node_problems)}", file=out, flush=True)  # fmt: skip
        elif pods is not None:
            _start_node(
                starter, prepared, pods, ports=(kubelet_port, healthz_port), step=step, out=out
            )
            real_node = REAL_NODE_NAME
        interrupts.raise_if_interrupted()
    except BaseException:
        database.abort()
        stopped = starter.stop_all()
        node.teardown(node_layout)
        postgres.remove_server_files(layout.root, database.record())
        if stopped:
            print(f"Stopped {', '.join(stopped)}", file=out)
        raise

    ready = time.monotonic() - started
    state.update(readySeconds=round(ready, 2), postgresReadySeconds=postgres_ready)
    layout.state.write_text(json.dumps(state, indent=2) + "\n")
    print(f"Control plane ready in {ready:.1f}s", file=out)
    return ClusterInfo(
        layout.root,
        layout.kubeconfig,
        admin.server,
        version,
        ready,
        local_postgres,
        postgres_ready,
        real_node,
    )


def _provisioned_volume_paths(layout: Layout) -> list[Path]:
    """Directories the hostpath provisioner made for this cluster's volumes."""
    try:
        with BlockingClient.from_kubeconfig(layout.kubeconfig, timeout=5) as client:
            volumes = client.get("/api/v1/persistentvolumes")["items"]
    except (OSError, ApiError, UserError):
        return []
    paths = [Path(v["spec"].get("hostPath", {}).get("path", "")) for v in volumes]
    return [path for path in paths if path.parent == HOSTPATH_PROVISIONER_ROOT]


def _stop_all(components: Iterable[ComponentProcess]) -> list[str]:
    """Stop each in turn; the names of those that were running."""
    return [p.name for p in components if stop_process(p, first_signal=_stop_signal(p.name))]


def down(directory: Path, *, out: TextIO | None = None) -> list[str]:
    """Stop every component recorded for ``directory``; say so (on ``out``, by default the
    standard error of the moment, which a test runner may have replaced since this module
    was imported) if none runs.

    The directories the hostpath provisioner created for the cluster's volumes are removed
    too, so nothing of the cluster is left outside DIR.
    """
    out = out or sys.stderr
    layout = Layout(directory.resolve())
    state = _read_state(layout)
    recorded = _recorded_processes(state)
    volume_paths = _provisioned_volume_paths(layout) if any(map(is_running, recorded)) else []
    node_layout = NodeLayout(layout.root)
    # Newest first: what was attached after the node (the operator of `dpo dev`), the node,
    # then the control plane and PostgreSQL.
    node_at = max((i for i, p in enumerate(recorded) if p.name in node.NODE_COMPONENTS), default=-1)
    stopped = _stop_all(reversed(recorded[node_at + 1 :])) if node_at >= 0 else []
    if (state or {}).get("node") or node_layout.directory.exists():
        stopped += node.teardown(node_layout, recorded)
    earlier = recorded[: node_at + 1] if node_at >= 0 else recorded
    stopped += _stop_all(p for p in reversed(earlier) if p.name not in node.NODE_COMPONENTS)
    postgres.remove_server_files(layout.root, (state or {}).get("postgres"))
    layout.state.unlink(missing_ok=True)
    for path in volume_paths:
        shutil.rmtree(path, ignore_errors=True)
    if stopped:
        print(f"Stopped {', '.join(stopped)} in {directory}", file=out)
    else:
        print(f"No cluster is running in {directory}", file=out)
    return stopped


def start_attached(
    directory: Path, name: str, argv: list[str], *, environment: Mapping[str, str] | None = None
) -> ComponentProcess:
    """Start a process that belongs to the cluster running in ``directory``.

    It is recorded with the components, so ``down`` stops it first (and ``dpo cluster status``
    lists it), even when the command that started it was killed. Its output goes to
    ``DIR/logs/<name>.log``.
    """
    layout = Layout(directory.resolve())
    state = _read_state(layout)
    if state is None or not running_components(layout.root):
        raise UserError(f"No cluster is running in {directory}; start one with `dpo cluster up`")
    process = start_process(name, argv, layout.log(name), environment=environment)
    state["components"] = [*state.get("components", []), asdict(process)]
    layout.state.write_text(json.dumps(state, indent=2) + "\n")
    return process


def component(directory: Path, name: str) -> ComponentProcess:
    """The running component ``name`` of the cluster in ``directory``."""
    for process in running_components(directory):
        if process.name == name:
            return process
    raise UserError(f"No component {name} is running in {directory}")


@contextmanager
def paused(directory: Path, name: str) -> Iterator[ComponentProcess]:
    """The component paused (SIGSTOP) inside the block and resumed (SIGCONT) when it ends,
    whatever ends it: its memory, sockets and pid stay as they were."""
    process = component(directory, name)
    pause_process(process)
    try:
        yield process
    finally:
        if is_running(process):
            resume_process(process)


@contextmanager
def stopped(directory: Path, name: str, *, grace_seconds: float = 10.0) -> Iterator[None]:
    """The component stopped (SIGTERM; PostgreSQL: a fast shutdown) inside the block and
    started again when it ends, with the same command line (so the same ports and data) and
    its output appended to the same log; recorded in place of the old process, so ``down``
    stops the new one."""
    layout = Layout(directory.resolve())
    process = component(directory, name)
    # PostgreSQL's recorded command line switches user first; its /proc one no longer does.
    recorded = (_read_state(layout) or {}).get(name, {}).get("argv")
    argv = recorded or command_line(process)
    stop_process(process, grace_seconds=grace_seconds, first_signal=_stop_signal(name))
    try:
        yield
    finally:
        started = replace(
            start_process(name, argv, layout.log(name)), executable=process.executable
        )
        state = _read_state(layout) or {}
        state["components"] = [
            asdict(started) if entry.get("pid") == process.pid else entry
            for entry in state.get("components", [])
        ]
        layout.state.write_text(json.dumps(state, indent=2) + "\n")


def restart_component(directory: Path, name: str) -> ComponentProcess:
    """Stop a component and start it again at once (see :func:`stopped`); the new process."""
    with stopped(directory, name):
        pass
    return component(directory, name)


def compact_etcd(directory: Path) -> int:
    """Compact etcd's history up to its current revision, as the API server does every five
    minutes; the revision. A watch of etcd that resumes from an older revision (the API
    server's, after etcd restarts) then finds it gone and lists again, and so do the API
    server's own watchers (410 Gone)."""
    layout = Layout(directory.resolve())
    state = _read_state(layout)
    if state is None or not running_components(layout.root):
        raise UserError(f"No cluster is running in {directory}")
    etcd = Connection(
        f"https://127.0.0.1:{state['ports']['etcd_client']}",
        (layout.pki / "ca.crt").read_bytes(),
        layout.cert("apiserver-etcd-client").read_bytes(),
        layout.key("apiserver-etcd-client").read_bytes(),
    )
    # etcd's JSON gateway of its gRPC API, on the client port.
    with BlockingClient.from_connection(etcd) as client:
        revision = int(client.request("POST", "/v3/maintenance/status", {})["header"]["revision"])
        client.request("POST", "/v3/kv/compaction", {"revision": revision, "physical": True})
    return revision
