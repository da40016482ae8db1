"""Scenario 3: the operator killed with SIGKILL 50 times at random moments while products are
created, updated (ports added and removed) and deleted, under both deletion policies, names
coming back after their deletion; afterwards one operator converges everything: no duplicate
child, no orphan, nothing Terminating, every claim kept under ``Retain`` released.

Each operator runs without leader election where it has it: a killed leader's Lease would make
every next process wait for it to expire (failover has a scenario of its own), and most kills
would then land while waiting instead of while working.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest

from dataproduct_operator.constants import ANNOTATION_CONFIRM_DATA_DELETION, LABEL_PRODUCT
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.rest import ApiError
from tests.faults.conftest import MakeNamespaces, StartOperator
from tests.faults.mesh import fault_product, wait_converged
from tests.faults.report import FaultRow
from tests.faults.runtime import one_pod
from tests.products import PRODUCTS, product_path

KILLS = 50
NAMES = 12  # names reused: a product deleted may come back and find its released claims
LIFETIME_SECONDS = (0.5, 4.0)  # how long each operator runs before its SIGKILL
OPERATIONS_PER_SECOND = 5.0
DRIFT_SECONDS = 3.0
WORK = (": Applied ", ": Deleted ", ": Released ")  # the log lines of changes it made
CLAIM = "PersistentVolumeClaim"
SEED = random.randrange(1 << 32)  # noqa: S311 - a workload, not a secret; the seed is shown


def retained(name: str) -> bool:
    """The policy of a name never changes: even numbers retain their claims."""
    return int(name.removeprefix("p-")) % 2 == 0


class Workload:
    """Owners changing their products at random, in a thread of its own (with a client of
    its own: the REST client is not thread-safe)."""

    def __init__(self, kube: BlockingClient, namespace: str, rng: random.Random) -> None:
        self.kube = BlockingClient(kube.credentials)
        self.namespace = namespace
        self.rng = rng
        self.done: Counter[str] = Counter()
        self.retained: dict[str, str] = {}  # uid -> name of every claim seen under Retain
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.kube.close()
        if self.error is not None:
            raise AssertionError(f"The workload failed: {self.error!r}") from self.error

    def _run(self) -> None:
        try:
            while not self._stop.wait(1 / OPERATIONS_PER_SECOND):
                self._one()
                self.note_retained_claims()
        except BaseException as error:  # reported by stop()
            self.error = error

    def note_retained_claims(self) -> None:
        """Remember every claim of a product under ``Retain``: none may ever go."""
        claims = self.kube.get(f"/api/v1/namespaces/{self.namespace}/persistentvolumeclaims")
        for claim in claims["items"]:
            product = (claim["metadata"].get("labels") or {}).get(LABEL_PRODUCT, "")
            if product.startswith("p-") and retained(product):
                self.retained[claim["metadata"]["uid"]] = claim["metadata"]["name"]

    def _one(self) -> None:
        name = f"p-{self.rng.randrange(NAMES):02d}"
        path = product_path(self.namespace, name)
        try:
            current: dict[str, Any] | None = self.kube.get(path)
        except ApiError as error:
            if error.status != 404:
                raise
            current = None
        if current is None:
            ports = self.rng.choice([("a",), ("a", "b")])
            policy = "Retain" if retained(name) else "Delete"
            document = fault_product(self.namespace, name, ports=ports, deletion_policy=policy)
            self.kube.create(PRODUCTS.format(namespace=self.namespace), document)
            self.done["created"] += 1
        elif self.rng.random() < 0.6:
            ports = [port["name"] for port in current["spec"]["outputPorts"]]
            wanted = ["a"] if "b" in ports else ["a", "b"]
            spec = fault_product(self.namespace, name, ports=wanted)["spec"]
            # Removing port b of a Delete product deletes its data: confirmed, as it must be.
            confirm = {"annotations": {ANNOTATION_CONFIRM_DATA_DELETION: "b"}}
            change = {"metadata": confirm, "spec": {"outputPorts": spec["outputPorts"]}}
            self.kube.merge_patch(path, change)
            self.done["ports changed"] += 1
        else:
            self.kube.delete(path)
            self.done["deleted"] += 1


@pytest.mark.timeout(600)
def test_after_50_sigkills_during_changes_nothing_is_duplicated_orphaned_or_left_retained(
    *,
    kube: BlockingClient,
    make_namespaces: MakeNamespaces,
    start_operator: StartOperator,
    fault: FaultRow,
) -> None:
    fault.scenario = f"3. operator SIGKILLed {KILLS} times during changes"
    (namespace,) = make_namespaces()
    kills = random.Random(SEED)  # noqa: S311 - as above
    options = one_pod("operator-7d9f8c6b5-x2k4q")
    workload = Workload(kube, namespace, random.Random(SEED + 1))  # noqa: S311
    workload.start()
    lifetimes, busy = [], 0
    try:
        for _ in range(KILLS):
            operator = start_operator([namespace], drift_interval=DRIFT_SECONDS, extra=options)
            lifetime = kills.uniform(*LIFETIME_SECONDS)
            time.sleep(lifetime)  # a random moment of its life: the wait is the point
            assert operator.process.poll() is None, f"exited early: {operator.log.read_text()}"
            operator.kill()
            lifetimes.append(lifetime)
            busy += any(word in operator.log.read_text() for word in WORK)
    finally:
        workload.stop()
    fault.check(
        f"{KILLS} SIGKILLs after {min(lifetimes):.1f}-{max(lifetimes):.1f} s of life (seed "
        f"{SEED}), {busy} of them once it had applied, pruned or released"
    )
    fault.check(", ".join(f"{count} {what}" for what, count in sorted(workload.done.items())))

    start_operator([namespace], drift_interval=DRIFT_SECONDS, extra=options)
    state, took = wait_converged(kube, [namespace], timeout=120)
    fault.converged(took)
    fault.check(
        f"{len(state.products)} products Ready with children == dpo render; 0 orphans; "
        "0 Terminating"
    )
    uids = {claim["metadata"]["uid"] for claim in state.labelled if claim["kind"] == CLAIM}
    lost = sorted(name for uid, name in workload.retained.items() if uid not in uids)
    assert not lost, f"claims of products under Retain deleted: {lost}"
    fault.check(
        f"{len(workload.retained)} claims seen under Retain, none deleted; "
        f"{len(state.released_claims())} released at the end"
    )
