"""`dpo dev` as a new user runs it: the example mesh Ready, kubectl shows it, Ctrl-C cleans up.

Each test starts its own control plane through `dpo dev`, beside the session's one.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataproduct_operator.cluster import controlplane
from dataproduct_operator.cluster.process import is_running
from tests.helpers import EXAMPLES, example_documents, wait_for
from tests.integration.conftest import run_kubectl
from tests.integration.products import free_port

EXAMPLE_PRODUCTS = {
    f"{d['metadata']['namespace']}/{d['metadata']['name']}"
    for path in EXAMPLES.glob("*.yaml")
    for d in example_documents(path.name)
    if d["kind"] == "DataProduct"
}
STARTUP_SECONDS = 120.0  # the control plane takes about 10 s here; the rest is headroom
READY_SECONDS = 60.0  # what the README promises for the example mesh
# kube-controller-manager counts a new custom resource in a quota only after its discovery has
# found the CRD (every 30 s): until then the domains' quotas, and so the domains, are not Ready.
ONBOARDED_SECONDS = 90.0


class DevProcess:
    """``dpo dev`` with its output collected line by line."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.directory = directory
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dataproduct_operator", "dev", "--dir", str(directory), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            if self.process.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"dpo dev exited early:\n{self.output}")
            return next(filter(None, (re.search(pattern, line) for line in self.lines)), None)

        try:
            return wait_for(found, timeout=timeout, description=f"dpo dev to print {pattern!r}")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.output}") from None

    def wait(self, timeout: float) -> int:
        """The exit code, once every line is read."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code

    def interrupt(self) -> int:
        """Ctrl-C, as a user in a terminal; the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.wait(timeout=60)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait(timeout=30)
        controlplane.down(self.directory)  # whatever is left, if a test failed half way


@pytest.fixture
def dev_directory(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "cluster"
    yield directory
    controlplane.down(directory)


def test_dev_shows_every_example_ready_in_kubectl_and_ctrl_c_stops_everything(
    dev_directory: Path, kubectl_binary: Path
) -> None:
    metrics_port = free_port()
    dev = DevProcess(dev_directory, f"--examples={EXAMPLES}", f"--metrics-port={metrics_port}")
    try:
        dev.wait_for_line(r"Control plane ready", timeout=STARTUP_SECONDS)
        dev.wait_for_line(r"All 5 policies Ready", timeout=READY_SECONDS)
        domains = dev.wait_for_line(r"All (\d+) domains Ready", timeout=ONBOARDED_SECONDS)
        assert int(domains[1]) == 4
        done = dev.wait_for_line(r"All (\d+) products Ready ([\d.]+)s after apply", READY_SECONDS)
        assert int(done[1]) == len(EXAMPLE_PRODUCTS) >= 4
        assert float(done[2]) < READY_SECONDS
        for product in EXAMPLE_PRODUCTS:
            assert f"  {product} Ready after" in dev.output
        dev.wait_for_line(r"get dataproducts -A", timeout=10)

        kubeconfig = dev_directory / "kubeconfig"
        table = run_kubectl(kubectl_binary, kubeconfig, "get", "dp", "-A").stdout.splitlines()
        assert table[0].split() == ["NAMESPACE", "NAME", "DOMAIN", "LIFECYCLE", "READY", "AGE"]
        rows = {f"{row.split()[0]}/{row.split()[1]}": row.split() for row in table[1:]}
        assert set(rows) == EXAMPLE_PRODUCTS
        domains_table = run_kubectl(kubectl_binary, kubeconfig, "get", "ddom").stdout.splitlines()
        assert domains_table[0].split() == [
            "NAME",
            "NAMESPACE",
            "OWNER",
            "PRODUCTS",
            "READY",
            "AGE",
        ]
        assert len(domains_table) == 5 and all(r.split()[4] == "True" for r in domains_table[1:])
        # The hint dev prints: a change that breaks a starter policy, refused with its reason.
        public = json.dumps({"spec": {"classification": "Public"}})
        refused = run_kubectl(
            kubectl_binary, kubeconfig, "-n", "sales", "patch", "dataproduct", "orders",
            "--type=merge", "-p", public, check=False,
        )  # fmt: skip
        assert refused.returncode != 0
        assert (
            "output ports with pii columns (orders-v1) need spec.classification Confidential or "
            "Restricted, not Public (MeshPolicy pii-classification, rule pii-needs-confidential)"
        ) in refused.stderr
        assert all(row[4] == "True" for row in rows.values()), table

        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as response:
            metrics = response.read().decode()
        assert len(re.findall(r"^dataproduct_ready\{.*\} 1\.0$", metrics, re.MULTILINE)) == len(
            EXAMPLE_PRODUCTS
        )

        running = {c.name: c for c in controlplane.running_components(dev_directory)}
        assert {"dataproduct-operator", "kube-apiserver", "etcd", "kwok"} <= set(running)

        assert dev.interrupt() == 130
        assert "Stopped dataproduct-operator" in dev.output
        assert controlplane.running_components(dev_directory) == []
        assert not any(is_running(component) for component in running.values())
    finally:
        dev.close()


def test_dev_reports_an_operator_that_cannot_start_and_leaves_nothing_running(
    dev_directory: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        dev = DevProcess(dev_directory, f"--examples={EXAMPLES}", f"--metrics-port={port}")
        try:
            code = dev.wait(timeout=STARTUP_SECONDS)
        finally:
            dev.close()
    assert code == 1, dev.output
    assert f"Cannot serve metrics on port {port}" in dev.output
    assert "The operator exited with code" in dev.output
    assert controlplane.running_components(dev_directory) == []
