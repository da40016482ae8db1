"""Prometheus as a component of the local cluster (layer ``cluster``).

Debian's ``prometheus`` (``make prometheus``), listening on loopback only, with its data under
``DIR/prometheus`` (``up`` clears it with the rest of the cluster), scraping the operator's
metrics endpoint and evaluating the alert rules of every DataProduct of the cluster: the rules
the operator writes as PrometheusRule objects where the Prometheus Operator runs, built by the
same :func:`~dataproduct_operator.specs.alerts.build_rule_file`, written into its rule file.
Nothing here runs the Prometheus Operator, so whoever starts it (``dpo dev``) calls
:func:`sync_rules` as products change: a changed rule file is written and Prometheus is told
to read it again with SIGHUP (its lifecycle API, which would let anyone on the machine stop it,
stays off).

It is started with :func:`~dataproduct_operator.cluster.controlplane.start_attached`: recorded
with the cluster's components, so ``dpo cluster down`` stops it too.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.api.kinds import API_VERSION
from dataproduct_operator.cluster import controlplane
from dataproduct_operator.cluster.process import ComponentProcess, child_exit_code, tail
from dataproduct_operator.errors import UserError
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.specs.alerts import build_rule_file

NAME = "prometheus"
DIRECTORY = "prometheus"  # under the cluster's directory; cleared by `dpo cluster up`
JOB = "dataproduct-operator"
# Short intervals: on a laptop, a change shows within seconds; a day of data is plenty.
SCRAPE_SECONDS = 5
RETENTION = "1d"
READY_SECONDS = 60.0
POLL_SECONDS = 0.25
# Debian's build serves Prometheus' classic pages (its React UI is not packaged)
ALERTS_PAGE = "/classic/alerts"
MISSING = "Prometheus is missing: run `make prometheus` (Debian's prometheus package)"


@dataclass(frozen=True)
class PrometheusLayout:
    """Where the local Prometheus keeps its configuration, rules and data."""

    root: Path

    @classmethod
    def of(cls, cluster_directory: Path) -> PrometheusLayout:
        return cls(cluster_directory.resolve() / DIRECTORY)

    @property
    def config(self) -> Path:
        return self.root / "prometheus.yml"

    @property
    def rules(self) -> Path:
        return self.root / "dataproduct-rules.yaml"

    @property
    def data(self) -> Path:
        return self.root / "data"


def build_config(layout: PrometheusLayout, metrics_port: int) -> dict[str, Any]:
    """``prometheus.yml``: the operator's metrics endpoint and the products' rule file."""
    interval = f"{SCRAPE_SECONDS}s"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(layout.rules)],
        "scrape_configs": [
            {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}
        ],
    }


def build_command(binary: Path, layout: PrometheusLayout, port: int) -> list[str]:
    return [
        str(binary),
        f"--config.file={layout.config}",
        f"--storage.tsdb.path={layout.data}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]


def find_binary() -> Path:
    found = shutil.which(NAME)
    if found is None:
        raise UserError(MISSING)
    return Path(found)


def _rules_text(products: list[DataProduct]) -> str:
    return yaml.safe_dump(build_rule_file(products), sort_keys=False, width=200)


def write_rules(layout: PrometheusLayout, products: list[DataProduct]) -> bool:
    """Write the products' rule file; whether it changed."""
    text = _rules_text(products)
    if layout.rules.is_file() and layout.rules.read_text() == text:
        return False
    layout.rules.write_text(text)
    return True


def list_products(client: BlockingClient) -> list[DataProduct]:
    """Every DataProduct of the cluster the models accept (one they refuse has a Ready=False
    condition saying why, and no rules)."""
    items = client.get(f"/apis/{API_VERSION}/dataproducts")["items"]
    products = []
    for item in items:
        try:
            products.append(DataProduct.from_object(item))
        except ValueError:
            continue
    return products


def sync_rules(client: BlockingClient, layout: PrometheusLayout, process: ComponentProcess) -> bool:
    """Rewrite the rule file from the cluster's products; tell Prometheus when it changed."""
    changed = write_rules(layout, list_products(client))
    if changed:
        os.kill(process.pid, signal.SIGHUP)  # Prometheus reads its configuration and rules again
    return changed


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start(
    cluster_directory: Path, *, port: int, metrics_port: int, products: list[DataProduct]
) -> ComponentProcess:
    """Start the local Prometheus for the cluster in ``cluster_directory``; return once it
    answers ready, its rule file written from ``products``."""
    binary = find_binary()
    layout = PrometheusLayout.of(cluster_directory)
    if layout.root.exists():
        shutil.rmtree(layout.root)
    layout.data.mkdir(parents=True)
    layout.config.write_text(yaml.safe_dump(build_config(layout, metrics_port), sort_keys=False))
    write_rules(layout, products)
    process = controlplane.start_attached(
        cluster_directory, NAME, build_command(binary, layout, port)
    )
    log = cluster_directory.resolve() / "logs" / f"{NAME}.log"
    deadline = time.monotonic() + READY_SECONDS
    while not _ready(port):
        exited = child_exit_code(process.pid) is not None
        if exited or time.monotonic() > deadline:
            taken = "address already in use" in tail(log)
            hint = f"port {port} is taken: choose another with --prometheus-port; " if taken else ""
            raise UserError(
                f"Prometheus did not become ready on {url(port)}: {hint}last lines of {log}:\n"
                f"{tail(log)}"
            )
        time.sleep(POLL_SECONDS)
    return process
