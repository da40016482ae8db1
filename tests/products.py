"""Support for operator tests of every cluster tier: the example product, waiting for Ready,
`dpo run` processes."""

from __future__ import annotations

import contextlib
import copy
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from prometheus_client.parser import text_string_to_metric_families

from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.rest import ApiError
from tests.helpers import example_product, wait_for

REPO = Path(__file__).resolve().parents[2]
PRODUCTS = "/apis/datamesh.dev/v1alpha1/namespaces/{namespace}/dataproducts"
# The RoleBindings of a domain in its namespace: its owner team's and the operator's own.
DOMAIN_BINDINGS = ("datamesh-domain-editors", "datamesh-operator-namespace-writer")


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: all held at once while the kernel picks them (ports
    asked for one after the other may come back the same)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def product_path(namespace: str, name: str) -> str:
    return f"{PRODUCTS.format(namespace=namespace)}/{name}"


def example(
    namespace: str, name: str = "orders", *, upstream_inputs: bool = False
) -> dict[str, Any]:
    """The sales/orders example, moved to ``namespace`` (and its domain, named alike: see the
    ``domain`` fixture) and renamed to ``name``, its Secrets with it. Its input from another
    product (crm/customers) only with ``upstream_inputs``: that product is not there, so its
    InputsReady, and Ready with it, would stay False."""
    document = example_product()
    document["metadata"] = {"name": name, "namespace": namespace}
    document["spec"]["domain"] = namespace
    if not upstream_inputs:
        document["spec"]["inputs"] = [
            source for source in document["spec"].get("inputs", []) if "dataProduct" not in source
        ]
    # A product names only Secrets of its own (<product>-...): they follow the new name.
    for source in document["spec"].get("inputs", []):
        secret = (source.get("external") or {}).get("secretRef")
        if secret:
            secret["name"] = name + secret["name"].removeprefix("orders")
    return document


def delete_if_present(kube: BlockingClient, path: str) -> None:
    try:
        kube.delete(path)
    except ApiError as error:
        if error.status != 404:
            raise


def get_if_present(kube: BlockingClient, path: str) -> dict[str, Any] | None:
    """The object at ``path``, or None when there is none."""
    try:
        found: dict[str, Any] = kube.get(path)
    except ApiError as error:
        if error.status == 404:
            return None
        raise
    return found


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for item in obj.get("status", {}).get("conditions", []):
        if item["type"] == kind:
            return dict(item)
    return None


def wait_ready(
    kube: BlockingClient,
    namespace: str,
    name: str,
    *,
    generation: int | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Wait until the product is Ready for ``generation`` (default: its current one)."""

    def ready() -> dict[str, Any] | None:
        product: dict[str, Any] = kube.get(product_path(namespace, name))
        status = product.get("status", {})
        wanted = generation or product["metadata"]["generation"]
        found = condition(product, "Ready")
        if found and found["status"] == "True" and status.get("observedGeneration") == wanted:
            return product
        return None

    return wait_for(ready, timeout=timeout, description=f"DataProduct {name} to be Ready")


def create_ready(kube: BlockingClient, document: dict[str, Any]) -> dict[str, Any]:
    namespace, name = document["metadata"]["namespace"], document["metadata"]["name"]
    kube.create(PRODUCTS.format(namespace=namespace), document)
    return wait_ready(kube, namespace, name)


def names(kube: BlockingClient, path: str) -> set[str]:
    return {item["metadata"]["name"] for item in kube.get(path)["items"]}


def change_spec(
    kube: BlockingClient, namespace: str, name: str, change: Callable[[Any], None]
) -> int:
    """Change the product's spec as a user would; the generation the change produced.

    A merge patch of the changed spec (lists are replaced whole): the operator writes the
    status and its annotations meanwhile, so a read-modify-replace could meet a conflict.
    """
    path = product_path(namespace, name)
    spec = copy.deepcopy(kube.get(path)["spec"])
    change(spec)
    patched = kube.merge_patch(path, {"spec": spec})
    generation: int = patched["metadata"]["generation"]
    return generation


def operator_metrics(
    process: OperatorProcess,
) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The samples the operator process exports, by name and labels."""
    url = f"http://127.0.0.1:{process.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


class OperatorProcess:
    """``dpo run`` as a separate process with its own log; stop it gently or kill it."""

    def __init__(
        self,
        kubeconfig: Path,
        log: Path,
        *,
        drift_interval: float = 30.0,
        extra: tuple[str, ...] = (),
        liveness: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        """``liveness``: serve ``/healthz`` on a free port (``liveness_port``), else none."""
        self.log = log
        self.metrics_port, liveness_port = free_ports(2)
        self.liveness_port = liveness_port if liveness else 0
        self._output: IO[bytes] = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "dataproduct_operator", "run",
                "--kubeconfig", str(kubeconfig),
                "--metrics-port", str(self.metrics_port),
                "--liveness-port", str(self.liveness_port),
                "--drift-interval", str(drift_interval),
                # The chart's Role lets its ServiceAccount hold the Lease of the release.
                "--leader-election-namespace", "dataproduct-system",
                "--lease-name", "dataproduct-operator",
                *extra,
            ],
            stdout=self._output,
            stderr=subprocess.STDOUT,
            env=env,
        )  # fmt: skip

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 20 s; print the log when the exit was not clean."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._output.close()
        if self.process.returncode not in (0, -15):
            sys.stderr.write(self.log.read_text())
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when a node dies."""
        self.process.kill()
        self.process.wait()
        self._output.close()


def dpo_catalog(
    output: IO[bytes], kubeconfig: Path, port: int, *args: str
) -> subprocess.Popen[bytes]:
    """``dpo catalog`` as ``kubeconfig``'s identity on ``port`` with ``args``, in a process of
    its own writing to ``output``."""
    return subprocess.Popen(
        [
            sys.executable, "-m", "dataproduct_operator", "catalog",
            "--kubeconfig", str(kubeconfig), "--port", str(port), *args,
        ],
        stdout=output,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
