"""Which existing object a product may take as its child: only one labelled for this very
product and part (output port, pipeline); a name another product holds is a NameConflict, and
the pipelines that would mount such a claim are held back. Pure decisions, no cluster."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.reconcile.apply import key_of
from dataproduct_operator.reconcile.dataproduct import NameWaits, hold_taken_names
from dataproduct_operator.specs.dataproduct import build_children
from dataproduct_operator.specs.ownership import refuse_adoption
from dataproduct_operator.status.dataproduct import Failures, Observed, compute_status
from tests.helpers import example_product


def product(name: str, ports: list[str], pipelines: list[str]) -> DataProduct:
    """The example product named ``name`` with these output ports and scheduled pipelines."""
    document = example_product()
    document["metadata"].update(name=name, namespace="sales", uid=f"uid-{name}", generation=1)
    port, pipeline = document["spec"]["outputPorts"][0], document["spec"]["pipelines"][0]
    document["spec"]["outputPorts"] = [{**copy.deepcopy(port), "name": p} for p in ports]
    document["spec"]["pipelines"] = [{**copy.deepcopy(pipeline), "name": p} for p in pipelines]
    return DataProduct.from_object(document)


def child(subject: DataProduct, kind: str, name: str) -> dict[str, Any]:
    (found,) = [c for c in build_children(subject) if key_of(c) == (kind, name)]
    return found


def test_a_claim_of_another_product_with_the_same_name_is_a_name_conflict() -> None:
    first = child(product("a", ["b-c"], []), "PersistentVolumeClaim", "a-b-c")
    second = child(product("a-b", ["c"], []), "PersistentVolumeClaim", "a-b-c")

    refusal = refuse_adoption(second, first)

    assert refusal is not None and refusal.name_conflict
    assert refusal.message == (
        "PersistentVolumeClaim a-b-c belongs to DataProduct a (output port b-c): rename "
        "output port c or this DataProduct; the PersistentVolumeClaim of a is left as it is"
    )


def test_a_cronjob_of_another_product_with_the_same_name_is_a_name_conflict() -> None:
    first = child(product("a", ["x"], ["b-c"]), "CronJob", "a-b-c")
    second = child(product("a-b", ["y"], ["c"]), "CronJob", "a-b-c")

    refusal = refuse_adoption(second, first)

    assert refusal is not None and refusal.holder == "a"
    assert "rename pipeline c or this DataProduct" in refusal.message


def test_a_product_adopts_its_own_child_and_its_own_retained_claim() -> None:
    mine = child(product("a", ["b-c"], []), "PersistentVolumeClaim", "a-b-c")
    assert refuse_adoption(mine, None) is None
    assert refuse_adoption(mine, copy.deepcopy(mine)) is None
    retained = copy.deepcopy(mine)
    labels = retained["metadata"]["labels"]
    del labels["app.kubernetes.io/managed-by"]
    labels["datamesh.dev/retained"] = "true"
    assert refuse_adoption(mine, retained) is None


def test_the_retained_claim_of_another_product_is_never_adopted() -> None:
    theirs = child(product("a", ["b-c"], []), "PersistentVolumeClaim", "a-b-c")
    labels = theirs["metadata"]["labels"]
    del labels["app.kubernetes.io/managed-by"]
    labels["datamesh.dev/retained"] = "true"
    mine = child(product("a-b", ["c"], []), "PersistentVolumeClaim", "a-b-c")

    refusal = refuse_adoption(mine, theirs)

    assert refusal is not None and refusal.name_conflict and refusal.retained
    assert "holds the retained data of DataProduct a" in refusal.message


def test_managed_by_the_operator_alone_is_not_enough_to_adopt() -> None:
    mine = child(product("a", ["b-c"], []), "PersistentVolumeClaim", "a-b-c")
    other_port = copy.deepcopy(mine)
    other_port["metadata"]["labels"]["datamesh.dev/output-port"] = "other"
    no_product = copy.deepcopy(mine)
    del no_product["metadata"]["labels"]["datamesh.dev/data-product"]
    hand_made = copy.deepcopy(mine)
    del hand_made["metadata"]["labels"]["app.kubernetes.io/managed-by"]

    conflict = refuse_adoption(mine, other_port)
    assert conflict is not None and conflict.name_conflict
    for found in (no_product, hand_made):
        refusal = refuse_adoption(mine, found)
        assert refusal is not None and not refusal.name_conflict
        assert refusal.message.startswith("exists and is not managed by dataproduct-operator")


def test_pipelines_that_would_mount_a_taken_claim_are_held_back() -> None:
    holder = product("a", ["b-c"], [])
    subject = product("a-b", ["c", "d"], ["ingest"])
    theirs = {key_of(c): c for c in build_children(holder)}

    async def look_up(obj: dict[str, Any]) -> dict[str, Any] | None:
        return theirs.get(key_of(obj))

    held = asyncio.run(hold_taken_names(build_children(subject), {}, look_up))

    assert set(held.conflicts) == {
        ("PersistentVolumeClaim", "a-b-c"),
        ("CronJob", "a-b-ingest"),
    }
    aspect, message = held.conflicts[("CronJob", "a-b-ingest")]
    assert aspect == "PipelinesReady"
    assert "would mount PersistentVolumeClaim a-b-c" in message
    assert not held.refused


def test_a_name_conflict_makes_ready_false_with_its_reason() -> None:
    subject = product("a-b", ["c"], [])
    message = "PersistentVolumeClaim a-b-c belongs to DataProduct a (output port b-c): ..."
    status = compute_status(
        subject,
        Observed({}),
        failures=Failures(
            {"AccessReady": "ConfigMap a-b-connection: forbidden"}, {"StorageReady": message}
        ),
        prometheus_available=False,
        now="2026-01-01T00:00:01Z",
    )

    conditions = {c.type: c for c in status.conditions}
    assert (conditions["StorageReady"].reason, conditions["StorageReady"].message) == (
        "NameConflict",
        message,
    )
    assert conditions["AccessReady"].reason == "ApplyFailed"
    ready = conditions["Ready"]
    assert (ready.status.value, ready.reason) == ("False", "NameConflict")
    assert ready.message == f"StorageReady: {message}"


def test_a_product_waits_only_for_the_names_its_last_pass_found_taken() -> None:
    waits = NameWaits()
    claim = ("PersistentVolumeClaim", "sales", "a-b-c")
    waits.wait(("sales", "a-b"), [claim, ("CronJob", "sales", "a-b-c")])
    waits.wait(("sales", "x"), [claim])
    assert waits.waiting_for(*claim) == {("sales", "a-b"), ("sales", "x")}

    waits.wait(("sales", "a-b"), [("CronJob", "sales", "a-b-c")])  # the claim is its own now
    assert waits.waiting_for(*claim) == {("sales", "x")}
    waits.wait(("sales", "x"), ())
    assert waits.waiting_for(*claim) == set()
    assert waits.waiting_for("CronJob", "sales", "a-b-c") == {("sales", "a-b")}
