"""A Hidden product is named nowhere the many can read: not on /metrics, not in its domain's
status (counts, conditions), while its alerts still work."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest

from dataproduct_operator.api.dataproduct import (
    DataProduct,
    DataProductStatus,
    PipelineStatus,
    RunStatus,
)
from dataproduct_operator.metrics import OperatorMetrics
from dataproduct_operator.reconcile.datadomain import summarize_product, tally
from dataproduct_operator.specs.dataproduct import build_children
from tests.helpers import example_product

SECRET = "acquisition-target"  # the Hidden product's name: must appear nowhere


def hidden_product(**spec: Any) -> dict[str, Any]:
    document = example_product()
    document["metadata"].update(name=SECRET, uid="8c1f-uid", generation=1)
    document["spec"].update(discoverability="Hidden", **spec)
    return document


def test_metrics_carry_a_hidden_products_uid_and_one_pipeline_series_not_its_names() -> None:
    metrics = OperatorMetrics()
    product = DataProduct.from_object(hidden_product())
    assert product.spec.pipelines, "the example must have pipelines"
    status = DataProductStatus(
        pipelines=[
            PipelineStatus(
                name=pipeline.name,
                kind="CronJob",
                last_run_status=RunStatus.FAILED if index == 0 else RunStatus.SUCCEEDED,
                last_successful_time="2026-11-20T10:00:00Z",
            )
            for index, pipeline in enumerate(product.spec.pipelines)
        ]
    )
    metrics.health.observe(product, status)
    public = DataProduct.from_object(example_product())
    metrics.health.observe(public, DataProductStatus())
    text = generate_latest(metrics.registry).decode()
    assert SECRET not in text
    assert not any(p.name in text for p in product.spec.pipelines if p.name != public.name)
    assert 'dataproduct="uid-8c1f-uid"' in text
    assert (
        'dataproduct_pipeline_last_run_failed{dataproduct="uid-8c1f-uid",namespace="sales",'
        'pipeline="hidden"} 1.0' in text
    )
    assert f'dataproduct="{public.name}"' in text  # the others keep their names


def test_a_hidden_products_alert_rules_select_the_series_it_has() -> None:
    product = DataProduct.from_object(hidden_product())
    rule = next(c for c in build_children(product) if c["kind"] == "PrometheusRule")
    expressions = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert expressions and all('dataproduct="uid-8c1f-uid"' in e for e in expressions)
    assert not any(SECRET in e for e in expressions)


def test_a_domains_counts_leave_hidden_products_out_but_keep_their_readers() -> None:
    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    hidden = {**hidden_product(), "status": ready}
    shown = {**example_product(), "status": ready}
    counts, granted = tally({SECRET: summarize_product(hidden), "orders": summarize_product(shown)})
    assert (counts.total, counts.ready) == (1, 1)
    assert granted == set(summarize_product(hidden).granted) | set(summarize_product(shown).granted)
