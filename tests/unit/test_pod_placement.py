"""Where pipeline pods run (specs/placement.py): the operator's --pipeline-node-selector and
--pipeline-toleration parsed, refused with what to write instead, and given to every pipeline
pod, scheduled or on demand."""

from __future__ import annotations

import pytest

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.constants import ANNOTATION_RUN
from dataproduct_operator.specs.dataproduct import build_children
from dataproduct_operator.specs.placement import (
    PodPlacement,
    Toleration,
    parse_toleration,
    pod_placement,
)
from tests.products import example


def test_selectors_and_tolerations_are_read_as_written() -> None:
    placement = pod_placement(
        ("node-pool=data", "example.com/zone=eu-1"),
        ("datamesh.dev/node-type=real:NoSchedule", "dedicated", "gpu:NoExecute", "k=v"),
    )
    assert placement.node_selector == {"node-pool": "data", "example.com/zone": "eu-1"}
    assert [t.to_wire() for t in placement.tolerations] == [
        {"key": "datamesh.dev/node-type", "operator": "Equal", "value": "real",
         "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Exists"},
        {"key": "gpu", "operator": "Exists", "effect": "NoExecute"},
        {"key": "k", "operator": "Equal", "value": "v"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("selector", "tolerations", "says"),
    [
        (("node-pool",), (), "write KEY=VALUE"),
        (("Node Pool=data",), (), "must be a label key"),
        (("node-pool=da ta",), (), "at most 63 letters"),
        ((), ("gpu:Sometimes",), "one of NoSchedule, PreferNoSchedule, NoExecute"),
        ((), ("=x:NoSchedule",), "must be a label key"),
    ],
)
def test_a_bad_value_is_refused_saying_what_to_write(
    selector: tuple[str, ...], tolerations: tuple[str, ...], says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        pod_placement(selector, tolerations)


def test_every_pipeline_pod_gets_the_placement_and_none_without_it() -> None:
    document = example("sales", "orders")
    document["metadata"]["annotations"] = {ANNOTATION_RUN: "backfill"}
    product = DataProduct.from_object(document)
    placement = PodPlacement({"node-pool": "data"}, (parse_toleration("node-pool=data"),))
    pods = [
        child["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        if child["kind"] == "CronJob"
        else child["spec"]["template"]["spec"]
        for child in build_children(product, placement=placement)
        if child["kind"] in ("CronJob", "Job")
    ]
    assert {"CronJob", "Job"} <= {c["kind"] for c in build_children(product, placement=placement)}
    for pod in pods:
        assert pod["nodeSelector"] == {"node-pool": "data"}
        assert pod["tolerations"] == [Toleration("node-pool", value="data").to_wire()]
    for child in build_children(product):
        text = str(child)
        assert "nodeSelector" not in text and "tolerations" not in text
