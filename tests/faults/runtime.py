"""What the fault suite asks of a running operator process: its health, its drift loops, its
leadership, its memory, through the interfaces agreed for the runtime of issue 14.

Those interfaces: ``GET /healthz`` on the liveness port answers 200 while healthy and 500 when
a drift loop has not completed a pass within 3 drift intervals, with a JSON body
``{"leader": bool, "loops": {"<loop>": {"lastPass": <unix seconds or null>, "healthy": bool}}}``;
the metrics ``dataproduct_operator_loop_last_pass_timestamp_seconds{loop}`` and
``dataproduct_operator_leader``; leader election on a Lease. An operator without one of them
fails the scenario with :class:`RuntimeFeatureMissing`.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import wait_for
from tests.products import OperatorProcess, operator_metrics

LOOPS = ("drift-dataproducts", "drift-datadomains", "drift-meshpolicies")
HEARTBEAT = "dataproduct_operator_loop_last_pass_timestamp_seconds"
LEADER = "dataproduct_operator_leader"
LEASE_NAME = "dataproduct-operator"


class RuntimeFeatureMissing(AssertionError):  # noqa: N818 - reads as the condition it reports
    """The operator lacks an interface that the runtime of issue 14 provides."""


@dataclass(frozen=True)
class Health:
    """One answer of ``GET /healthz``."""

    status: int
    leader: bool
    last_passes: dict[str, float | None]
    healthy_loops: frozenset[str]


def healthz(process: OperatorProcess) -> Health:
    """Ask the operator's liveness endpoint; :class:`RuntimeFeatureMissing` when its answer
    does not describe the drift loops."""
    url = f"http://127.0.0.1:{process.liveness_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text
    if not isinstance(body, dict) or not isinstance(body.get("loops"), dict):
        raise RuntimeFeatureMissing(f"GET /healthz answered {status} {text!r}: no drift loops")
    loops: dict[str, Any] = {name: loop or {} for name, loop in body["loops"].items()}
    return Health(
        status=status,
        leader=bool(body.get("leader")),
        last_passes={name: loop.get("lastPass") for name, loop in loops.items()},
        healthy_loops=frozenset(name for name, loop in loops.items() if loop.get("healthy")),
    )


def heartbeats(process: OperatorProcess) -> dict[str, float]:
    """The last pass of each drift loop from the metric; :class:`RuntimeFeatureMissing` when
    the operator does not export it."""
    samples = operator_metrics(process).get(HEARTBEAT)
    if samples is None:
        raise RuntimeFeatureMissing(f"The operator exports no {HEARTBEAT}")
    return {dict(labels).get("loop", ""): value for labels, value in samples.items()}


def is_leader(process: OperatorProcess) -> bool:
    samples = operator_metrics(process).get(LEADER)
    if samples is None:
        raise RuntimeFeatureMissing(f"The operator exports no {LEADER}")
    return any(value == 1.0 for value in samples.values())


def wait_working(process: OperatorProcess, *, timeout: float = 60.0) -> None:
    """Wait until the operator serves its metrics and leads."""
    wait_for(lambda: operator_metrics(process), timeout=timeout, description="the metrics")
    wait_for(lambda: is_leader(process), timeout=timeout, description="the operator to lead")


def wait_loops_alive(process: OperatorProcess, *, since: float, timeout: float) -> float:
    """Wait until every drift loop has completed a pass after ``since`` (unix seconds) by both
    its heartbeat metric and ``/healthz``, which answers 200 with every loop healthy; the
    seconds it took from ``since``."""
    healthz(process)  # the interface first: missing, it is no use waiting
    heartbeats(process)

    def alive() -> bool:
        beats = heartbeats(process)
        health = healthz(process)
        passed = all((health.last_passes.get(loop) or 0) > since for loop in LOOPS)
        return (
            health.status == 200
            and passed
            and set(LOOPS) <= health.healthy_loops
            and all(beats.get(loop, 0) > since for loop in LOOPS)
        )

    wait_for(alive, timeout=timeout, interval=0.5, description="every drift loop to pass again")
    return time.time() - since


def one_pod(name: str) -> tuple[str, ...]:
    """The options of an operator that is always the same pod's container: restarted, it holds
    the Lease as the container it replaces did (the chart's identity is the pod's name)."""
    return ("--leader-election-identity", name)


def rss_kib(pid: int) -> int:
    """The resident memory of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"No VmRSS for pid {pid}")
