"""The alert rules of a data product (layer ``specs``, pure).

:func:`build_alert_rules` turns a product into Prometheus alerting rules on the series the
operator exports for it (names and labels from :mod:`~dataproduct_operator.api.metric_labels`,
so a Hidden product's rules select its uid and its ports' indexes, as its series carry them).
The operator writes them as a PrometheusRule; ``dpo dev`` writes the same rules into the rule
file of the local Prometheus. Every rule is proven by ``promtool test rules`` in the tests.

- ``DataProductStale``, per port with ``slo.freshness``: the port's data is older than its SLO
  for 5 minutes. The port's own age (``dataproduct_port_freshness_age_seconds``) when it has
  one, else the product's time since any pipeline last succeeded (before a run has reported
  the port's data, as image pipelines that write no report never do).
- ``DataProductChecksFailing``: an Error check of the last run that checked a port failed, so
  nothing was published (a Warning check never stops a publish: it is not alerted on).
- ``DataProductPipelineFailed``: the last run of a pipeline failed (its checks, or anything
  else).
"""

from __future__ import annotations

import json
from typing import Any

from dataproduct_operator.api import metric_labels as series
from dataproduct_operator.api.dataproduct import DataProduct, Toggle
from dataproduct_operator.api.metric_labels import metric_labels, port_label
from dataproduct_operator.api.quantity import duration_seconds
from dataproduct_operator.api.run_terms import Severity

STALE = "DataProductStale"
CHECKS_FAILING = "DataProductChecksFailing"
PIPELINE_FAILED = "DataProductPipelineFailed"
ALERTS = (STALE, CHECKS_FAILING, PIPELINE_FAILED)
# A port past its SLO for this long is stale: a run that is publishing right now gets the time
# to finish, and a scrape that misses the publish by seconds does not page anyone.
STALE_FOR = "5m"
SEVERITY = "warning"  # the alerts' severity label (Alertmanager routing): data late, not lost


def selector(name: str, **labels: str) -> str:
    """``name{label="value",...}``; the values quoted as PromQL strings (JSON's escapes are
    PromQL's for the names and DNS labels they hold)."""
    matchers = ",".join(f"{key}={json.dumps(value)}" for key, value in labels.items())
    return f"{name}{{{matchers}}}"


def _stale_rule(product: DataProduct, port: str, freshness: str) -> dict[str, Any]:
    labels = metric_labels(product)
    product_series = {"namespace": labels.namespace, "dataproduct": labels.dataproduct}
    port_series = {**product_series, "output_port": port_label(product, port)}
    seconds = duration_seconds(freshness)
    # `or on()`: the product-wide staleness only while the port has no age of its own.
    age = f"{selector(series.PORT_FRESHNESS_AGE, **port_series)} or on() " + selector(
        series.STALENESS, **product_series
    )
    where = f"{product.namespace}/{product.name}"
    return {
        "alert": STALE,
        "expr": f"({age}) > {seconds}",
        "for": STALE_FOR,
        "labels": {
            "severity": SEVERITY,
            "domain": product.spec.domain,
            "output_port": port_series["output_port"],
        },
        "annotations": {
            "summary": f"Data product {where} is stale: output port {port} is older than "
            f"its freshness SLO of {freshness}",
            "description": f"Output port {port} of data product {where} promises data fresher "
            f"than {freshness} ({seconds} s); its data has been older than that for "
            f"{STALE_FOR}. See the product's DataHealthy condition and its pipelines' last "
            "runs.",
        },
    }


def _run_rule(
    product: DataProduct, alert: str, expr: str, summary: str, description: str
) -> dict[str, Any]:
    """A rule on what the product's runs reported: it fires at once (a run's result is a fact,
    not a measurement that may flap)."""
    return {
        "alert": alert,
        "expr": expr,
        "labels": {"severity": SEVERITY, "domain": product.spec.domain},
        "annotations": {"summary": summary, "description": description},
    }


def _checks_rule(product: DataProduct) -> dict[str, Any]:
    labels = metric_labels(product)
    failures = selector(
        series.PORT_CHECK_FAILURES,
        namespace=labels.namespace,
        dataproduct=labels.dataproduct,
        severity=Severity.ERROR.value,
    )
    where = f"{product.namespace}/{product.name}"
    return _run_rule(
        product,
        CHECKS_FAILING,
        f"{failures} > 0",
        f"Data quality checks of data product {where} fail",
        "The last run that checked output port {{ $labels.output_port }} "
        f"of data product {where} failed {{{{ $value }}}} Error check(s): it published "
        "nothing and the previous rows stay. The failed checks are named in the "
        "product's status.pipelines[].lastRun.",
    )


def _pipeline_rule(product: DataProduct) -> dict[str, Any]:
    labels = metric_labels(product)
    failed = selector(
        series.PIPELINE_LAST_RUN_FAILED, namespace=labels.namespace, dataproduct=labels.dataproduct
    )
    where = f"{product.namespace}/{product.name}"
    return _run_rule(
        product,
        PIPELINE_FAILED,
        f"{failed} == 1",
        f"A pipeline of data product {where} failed",
        "The last run of pipeline {{ $labels.pipeline }} of data product "
        f"{where} failed; why is in the product's status.pipelines[].lastRun.message.",
    )


def build_alert_rules(product: DataProduct) -> list[dict[str, Any]]:
    """The product's alerting rules, in Prometheus' rule-file form; none when its alerts are
    disabled or nothing of it can be alerted on (no freshness SLO, no pipeline)."""
    if product.spec.monitoring.alerts is Toggle.DISABLED:
        return []
    rules = [
        _stale_rule(product, port.name, port.slo.freshness)
        for port in product.spec.output_ports
        if port.slo is not None and port.slo.freshness is not None
    ]
    if product.spec.pipelines:  # only runs report checks and results
        rules += [_checks_rule(product), _pipeline_rule(product)]
    return rules


def rule_group_name(product: DataProduct) -> str:
    return f"dataproduct-{product.namespace}-{product.name}"


def build_rule_file(products: list[DataProduct]) -> dict[str, Any]:
    """A Prometheus rule file with one group per product that has alerts (the PrometheusRule's
    ``spec`` is this very form): what a Prometheus without the Prometheus Operator loads."""
    groups = [
        {"name": rule_group_name(product), "rules": rules}
        for product in sorted(products, key=lambda p: (p.namespace, p.name))
        if (rules := build_alert_rules(product))
    ]
    return {"groups": groups}
