"""The local cluster's real node: prerequisites, start, and a teardown that leaves nothing
behind (layer ``cluster``, imperative). Files and commands come from :mod:`.node_config`.

Start: first the pods' bridge with its gateway address (:func:`create_bridge`: before
PostgreSQL starts, so the server can listen there) and the nftables rules that keep that
address to the pods and the machine; then the node's directories and files, its cgroup root in
every cgroup hierarchy, containerd's root planted with the node's images (:mod:`.node_images`:
imported once per machine and set of images, hard-linked into each node), containerd (waited
for on its socket; what the seed lacked imported), then the kubelet, waited for until the Node
``localhost`` is Ready.

Teardown (``dpo cluster down``, and again at the next ``up`` in case the last one was
SIGKILLed), each step safe to repeat and to find nothing: the kubelet stopped first (it would
start containers again); every process in the node's cgroups and every containerd shim serving
its socket killed (shims outlive containerd); containerd stopped; every mount under the node's
directories unmounted (the kubelet bind-mounts its root, pods mount volumes and network
namespaces); the bridge and the nftables table deleted; the cgroup directories removed; the
runtime directory removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TextIO

from dataproduct_operator.cluster import images, node_images, pki
from dataproduct_operator.cluster.node_config import (
    CNI_BIN_DIR,
    REAL_NODE_NAME,
    NodeLayout,
    NodeSettings,
    bridge_commands,
    cni_config,
    containerd_command,
    containerd_config,
    guard_ruleset,
    guard_table,
    kubelet_command,
    kubelet_config_yaml,
)
from dataproduct_operator.cluster.process import ComponentProcess, stop_process
from dataproduct_operator.cluster.toolchain import binary_source, find_binary
from dataproduct_operator.errors import ComponentStartError
from dataproduct_operator.k8s.kubeconfig import Connection, write_kubeconfig

CONTAINERD = "containerd"
KUBELET = "kubelet"
NODE_COMPONENTS = (CONTAINERD, KUBELET)
SUBNET_PREFIX = "10.89"
NODE_USER = f"system:node:{REAL_NODE_NAME}"
DEBIAN_PACKAGES = "containerd runc containernetworking-plugins"
KILL_WAIT_SECONDS = 10.0
# What the node's pods run: the sandbox, the toolbox of shell pipelines, the runner of sql
# pipelines. (The operator's image runs nowhere on it.)
NODE_IMAGES = ("pause", "toolbox", "runner")


class NodeMode(StrEnum):
    """Which nodes `dpo cluster up` runs: kwok's simulated node always, and the real node
    when asked (``real``: or fail saying why), when it can (``auto``), or never (``kwok``)."""

    AUTO = "auto"
    REAL = "real"
    KWOK = "kwok"


@dataclass(frozen=True)
class Problem:
    """Why the real node cannot run here, and what to do about it."""

    what: str
    fix: str


def cgroup_mounts() -> list[Path]:
    """The mount points of every cgroup hierarchy (v1 controllers, and v2)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        if fields[separator + 1] in ("cgroup", "cgroup2"):
            found.append(Path(fields[4]))
    return found


def problems(layout: NodeLayout) -> list[Problem]:
    """Everything that keeps the real node from running on this machine (none: it can)."""
    found = []
    if os.geteuid() != 0:
        found.append(Problem(
            "it needs root (mounts, cgroups, network namespaces)",
            "run `dpo cluster up` as root"))  # fmt: skip
    try:
        cgroups = cgroup_mounts()
    except OSError:
        cgroups = []
    if not cgroups:
        found.append(Problem("no cgroup hierarchy is mounted", "mount cgroups (cgroup2 or v1)"))
    commands = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "ip", "nft")
    missing = [name for name in commands if shutil.which(name) is None]
    missing += [
        f"{CNI_BIN_DIR}/{plugin}"
        for plugin in ("bridge", "host-local", "loopback")
        if not (CNI_BIN_DIR / plugin).is_file()
    ]
    if missing:
        fix = (
            f"run `make tools` (as root it installs Debian's {DEBIAN_PACKAGES}, iproute2 and "
            "nftables)"
        )
        found.append(Problem(f"{', '.join(missing)} missing", fix))
    if find_binary(KUBELET, binary_source()) is None:
        found.append(Problem("the kubelet is not built", "run `make tools`"))
    if not images.built("pause"):
        found.append(Problem("the pause image is not built", "run `make images`"))
    return found


def _used_subnets() -> set[str]:
    """The IPv4 networks routed on this machine, as a.b.c.0 (from /proc/net/route)."""
    used = set()
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        destination = line.split()[1]
        octets = [str(int(destination[i : i + 2], 16)) for i in (6, 4, 2, 0)]
        used.add(".".join(octets))
    return used


def choose_subnet(layout: NodeLayout) -> str:
    """A /24 of 10.89.0.0/16 no route uses, starting from one the node's id picks."""
    used = _used_subnets()
    start = int(layout.id[:2], 16)
    for step in range(256):
        third = (start + step) % 256
        if f"{SUBNET_PREFIX}.{third}.0" not in used:
            return f"{SUBNET_PREFIX}.{third}.0/24"
    raise ComponentStartError(f"every /24 of {SUBNET_PREFIX}.0.0/16 is routed on this machine")


@dataclass(frozen=True)
class NodeCertificates:
    """The node's files from the cluster's CA: the kubelet's serving pair, its client pair."""

    serving_cert: Path
    serving_key: Path
    client: pki.KeyPair


def issue_certificates(authority: pki.CertificateAuthority, directory: Path) -> NodeCertificates:
    serving = authority.issue_server(REAL_NODE_NAME, ("localhost",), ("127.0.0.1",))
    cert, key = pki.write_pair(directory, "kubelet-serving", serving)
    client = authority.issue_client(pki.ClientIdentity(NODE_USER, ("system:nodes",)))
    return NodeCertificates(cert, key, client)


def _run_ip(*arguments: str) -> None:
    command = [_program("ip"), *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise ComponentStartError(f"{' '.join(command)}: {done.stderr.strip() or done.stdout}")


def create_bridge(layout: NodeLayout, subnet: str) -> None:
    """The pods' bridge with the gateway's address, and the rules that keep that address to
    the pods and the machine (see :func:`node_config.guard_ruleset`). Run after a teardown."""
    for arguments in bridge_commands(layout, subnet):
        _run_ip(*arguments)
    done = subprocess.run(
        [_program("nft"), "-f", "-"],
        input=guard_ruleset(layout, subnet),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise ComponentStartError(f"nft -f (table {guard_table(layout)}): {done.stderr.strip()}")


def prepare(
    layout: NodeLayout,
    certificates: NodeCertificates,
    *,
    subnet: str,
    server: str,
    ca_pem: bytes,
    ca_file: Path,
    ports: tuple[int, int],
) -> NodeSettings:
    """The node's directories, files and cgroup root; its settings. The bridge of ``subnet``
    exists already (:func:`create_bridge`), and what a SIGKILLed cluster in this directory left
    was torn down before it was made."""
    for directory in (layout.directory, layout.runtime, layout.data, layout.cni_config_dir):
        directory.mkdir(parents=True, exist_ok=True)
    settings = NodeSettings(
        pause_image=images.image_spec("pause").ref,
        subnet=subnet,
        kubelet_port=ports[0],
        kubelet_healthz_port=ports[1],
        ca_file=ca_file,
        serving_cert=certificates.serving_cert,
        serving_key=certificates.serving_key,
    )
    layout.containerd_config.write_text(containerd_config(layout, settings))
    (layout.cni_config_dir / "10-dpo-pods.conflist").write_text(
        json.dumps(cni_config(layout, settings), indent=2) + "\n"
    )
    layout.kubelet_config.write_text(kubelet_config_yaml(layout, settings))
    layout.resolv_conf.write_text("")
    client = certificates.client
    write_kubeconfig(
        layout.kubelet_kubeconfig,
        Connection(server, ca_pem, client.cert_pem, client.key_pem),
        user=NODE_USER,
    )
    for mount in cgroup_mounts():
        (mount / layout.cgroup_root.lstrip("/")).mkdir(exist_ok=True)
    return settings


def _program(name: str) -> str:
    """A program's absolute path (``problems`` made sure it exists)."""
    return shutil.which(name) or f"/usr/bin/{name}"


def _ctr(layout: NodeLayout, *arguments: str, timeout: float = 30.0) -> str:
    command = [_program("ctr"), f"--address={layout.containerd_socket}", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise ComponentStartError(f"{' '.join(command)}: {done.stderr.strip() or done.stdout}")
    return done.stdout


def containerd_ready(layout: NodeLayout) -> Callable[[], bool]:
    def check() -> bool:
        if not layout.containerd_socket.exists():
            return False
        try:
            _ctr(layout, "version", timeout=5)
        except (ComponentStartError, subprocess.TimeoutExpired):
            return False
        return True

    return check


def _node_archives() -> list[Path]:
    """The archives of the images the node's pods run (:data:`NODE_IMAGES`, those built)."""
    return [images.image_spec(name).archive for name in NODE_IMAGES if images.built(name)]


def plant_images(layout: NodeLayout, out: TextIO) -> None:
    """containerd's root (before it starts) planted with the seed of the node's images; when
    that cannot be done, containerd starts empty and :func:`import_images` imports them all."""
    started = time.monotonic()
    try:
        seed = node_images.ensure_seed(
            _node_archives(), Path(_program("containerd")), Path(_program("ctr"))
        )
        node_images.plant(seed, layout.containerd_root)
    except (OSError, ComponentStartError, subprocess.TimeoutExpired) as error:
        print(f"  {'images':<24} not planted ({error}): importing them", file=out, flush=True)
        return
    print(f"  {'images':<24} planted in {time.monotonic() - started:4.1f}s", file=out, flush=True)


def import_images(layout: NodeLayout, out: TextIO) -> list[str]:
    """The images pods of the node run (:data:`NODE_IMAGES`, those built) imported into its
    containerd, but those its planted root holds already; their refs."""
    archives = _node_archives()
    started = time.monotonic()
    result = images.import_images(Path(_program("ctr")), layout.containerd_socket, archives)
    refs = [*result.present, *result.imported]
    took = f"imported in {time.monotonic() - started:4.1f}s: " if result.imported else ""
    print(f"  {'images':<24} {took}{', '.join(refs)}", file=out, flush=True)
    return refs


def commands(layout: NodeLayout) -> dict[str, list[str]]:
    containerd = Path(_program("containerd"))
    kubelet = find_binary(KUBELET, binary_source())
    if kubelet is None:
        raise ComponentStartError("the kubelet is not built: run `make tools`")
    return {
        CONTAINERD: containerd_command(containerd, layout),
        KUBELET: kubelet_command(kubelet, layout),
    }


# --- teardown ---------------------------------------------------------------------------------


def _processes_in_cgroups(layout: NodeLayout) -> set[int]:
    pids: set[int] = set()
    for mount in cgroup_mounts():
        root = mount / layout.cgroup_root.lstrip("/")
        for directory, _, files in os.walk(root):
            if "cgroup.procs" in files:
                try:
                    text = (Path(directory) / "cgroup.procs").read_text()
                except OSError:
                    continue
                pids.update(int(pid) for pid in text.split())
    pids.discard(os.getpid())
    return pids


def _shims(layout: NodeLayout) -> set[int]:
    """The containerd shims serving this node's containerd (they name its socket)."""
    needle = str(layout.containerd_socket).encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"containerd-shim" in command.split(b"\0")[0] and needle in command:
            found.add(int(entry.name))
    return found


def _kill_all(find: Callable[[], set[int]]) -> None:
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    while pids := find():
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise ComponentStartError(f"processes {sorted(pids)} survived SIGKILL")
        time.sleep(0.05)


def _mounts_under(roots: Iterable[Path]) -> list[Path]:
    prefixes = [str(root) for root in roots]
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == prefix or point.startswith(prefix + "/") for prefix in prefixes):
            found.append(Path(point))
    return sorted(set(found), key=lambda path: len(path.parts), reverse=True)


def _unmount_all(layout: NodeLayout) -> None:
    """Every mount under the node's directories unmounted; raises when one stays (its files
    must never be removed through it: a volume's data lives there)."""
    for _ in range(5):  # a bind mount may show again below another: look until none is left
        points = _mounts_under((layout.directory, layout.runtime, layout.data))
        if not points:
            return
        for point in points:
            subprocess.run([_program("umount"), "-l", str(point)], capture_output=True,
                           check=False)  # fmt: skip
    left = _mounts_under((layout.directory, layout.runtime, layout.data))
    if left:
        raise ComponentStartError(
            f"could not unmount {', '.join(map(str, left))}: unmount them (umount -l) and run "
            "`dpo cluster down` again"
        )


def _remove_cgroups(layout: NodeLayout) -> None:
    for mount in cgroup_mounts():
        root = mount / layout.cgroup_root.lstrip("/")
        if not root.is_dir():
            continue
        for directory, _, _ in sorted(os.walk(root), key=lambda w: len(w[0]), reverse=True):
            # A cgroup whose last process is still exiting stays: the next teardown's.
            with contextlib.suppress(OSError):
                Path(directory).rmdir()


def stop_components(components: Iterable[ComponentProcess], name: str) -> bool:
    stopped = False
    for component in components:
        if component.name == name:
            stopped = stop_process(component) or stopped
    return stopped


def teardown(layout: NodeLayout, components: Iterable[ComponentProcess] = ()) -> list[str]:
    """See the module docstring; the names of the components that were running."""
    components = list(components)
    stopped = [KUBELET] if stop_components(components, KUBELET) else []
    _kill_all(lambda: _processes_in_cgroups(layout))
    _kill_all(lambda: _shims(layout))
    if stop_components(components, CONTAINERD):
        stopped.append(CONTAINERD)
    _unmount_all(layout)
    if Path(f"/sys/class/net/{layout.bridge}").exists():
        subprocess.run([_program("ip"), "link", "delete", layout.bridge], capture_output=True,
                       check=False)  # fmt: skip
    if shutil.which("nft"):
        subprocess.run([_program("nft"), "delete", "table", "inet", guard_table(layout)],
                       capture_output=True, check=False)  # fmt: skip
    _remove_cgroups(layout)
    for directory in (layout.runtime, layout.data, layout.directory):
        shutil.rmtree(directory, ignore_errors=True)
    return stopped
