"""Fixtures of the fault suite (``make faults``): one local control plane for the session, as
the integration tier starts it (the chart installed by helm, the operator run as the chart's
ServiceAccount), shared by scenarios that leave it healthy; namespaces with their DataDomains
per scenario; operator processes; and the summary table printed at the end of the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from dataproduct_operator.k8s.blocking import BlockingClient
from tests.clusters import (
    DOMAINS,
    OPERATOR_NAMESPACE,
    delete_domain,
    domain_document,
    hand_over,
    namespace_name,
)
from tests.faults.report import FaultRow, render_table
from tests.faults.runtime import LEASE_NAME
from tests.products import OperatorProcess, delete_if_present

ROW = pytest.StashKey[FaultRow]()
ROWS = pytest.StashKey[list[FaultRow]]()
SUMMARY = pytest.StashKey[Path]()
MakeNamespaces = Callable[..., list[str]]
StartOperator = Callable[..., OperatorProcess]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.path):
            item.add_marker(pytest.mark.faults)


# --- the summary table ---------------------------------------------------------------------------


@pytest.fixture
def fault(request: pytest.FixtureRequest) -> FaultRow:
    """The scenario's row of the summary: ``fault.scenario = ...``, ``fault.check(...)``,
    ``fault.converged(seconds)``."""
    row = FaultRow(scenario=request.node.name)
    request.node.stash[ROW] = row
    return row


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    row = item.stash.get(ROW, None)
    if row is None or not (report.when == "call" or report.failed):
        return report
    if report.when != "call":
        row.outcome = f"{report.outcome} ({report.when})"
    else:
        row.outcome = report.outcome
    row.duration_seconds += report.duration
    rows = item.config.stash.setdefault(ROWS, [])
    if row not in rows:
        rows.append(row)
    return report


@pytest.fixture(scope="session", autouse=True)
def _summary_file(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> None:
    """Where the summary is written: the session's temporary directory."""
    request.config.stash[SUMMARY] = tmp_path_factory.getbasetemp() / "fault-summary.txt"


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    rows = sorted(config.stash.get(ROWS, []), key=lambda row: row.scenario)
    if not rows:
        return
    table = render_table(rows, width=max(120, shutil.get_terminal_size((160, 24)).columns))
    terminalreporter.write_sep("=", "fault scenarios")
    terminalreporter.write_line(table)
    path = config.stash.get(SUMMARY, None)
    if path is not None:
        path.write_text(table + "\n")
        terminalreporter.write_line(f"(also in {path})")


# --- namespaces and operators --------------------------------------------------------------------


@pytest.fixture
def make_namespaces(
    kube: BlockingClient, crds: None, request: pytest.FixtureRequest
) -> Iterator[MakeNamespaces]:
    """``make_namespaces(count)``: fresh namespaces, each owned by a DataDomain of its name;
    deleted with their domains afterwards (without waiting)."""
    made: list[str] = []

    def make(count: int = 1) -> list[str]:
        names = [namespace_name(f"{request.node.name}-{len(made) + i}") for i in range(count)]
        for name in names:
            kube.create("/api/v1/namespaces", {"metadata": {"name": name}})
            made.append(name)
            hand_over(kube, name)
            kube.create(DOMAINS, domain_document(name))
        return names

    yield make
    for name in made:
        delete_domain(kube, name)
        delete_if_present(kube, f"/api/v1/namespaces/{name}")


@pytest.fixture
def start_operator(
    operator_kubeconfig: Path, kube: BlockingClient, tmp_path: Path
) -> Iterator[StartOperator]:
    """``start_operator(namespaces, drift_interval=..., kubeconfig=..., extra=...)``: ``dpo
    run`` as the chart's ServiceAccount, watching ``namespaces``, with its metrics and liveness
    ports, and in the chart's namespace (POD_NAMESPACE) as its pod would be. Every operator
    started is stopped at the end, and the leader Lease deleted, so the next scenario's operator
    does not wait for a Lease held by a process that is gone."""
    started: list[OperatorProcess] = []

    def start(
        namespaces: list[str],
        *,
        drift_interval: float = 5.0,
        kubeconfig: Path | None = None,
        extra: tuple[str, ...] = (),
    ) -> OperatorProcess:
        process = OperatorProcess(
            kubeconfig or operator_kubeconfig,
            tmp_path / f"operator-{len(started)}.log",
            drift_interval=drift_interval,
            extra=(*(arg for ns in namespaces for arg in ("--namespace", ns)), *extra),
            liveness=True,
            env={**os.environ, "POD_NAMESPACE": OPERATOR_NAMESPACE},
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.stop()
    leases = f"/apis/coordination.k8s.io/v1/namespaces/{OPERATOR_NAMESPACE}/leases"
    delete_if_present(kube, f"{leases}/{LEASE_NAME}")
