"""How a data product is named in the operator's metrics (layer ``api``, pure).

The metrics and the alert rules built for a product must agree on the labels. A product whose
``discoverability`` is Hidden is never named on ``/metrics`` (anyone who can scrape it would
learn the name): its series carry its uid instead, and its pipelines are one series under a
constant name, so its alerts still fire and nothing on ``/metrics`` names it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataproduct_operator.api.dataproduct import DataProduct, Discoverability

HIDDEN_PIPELINE = "hidden"  # the pipeline label of every pipeline of a Hidden product


@dataclass(frozen=True)
class MetricLabels:
    """The ``namespace`` and ``dataproduct`` labels of a product's series, and whether its
    pipelines are aggregated under :data:`HIDDEN_PIPELINE`."""

    namespace: str
    dataproduct: str
    hidden: bool


def metric_labels(product: DataProduct) -> MetricLabels:
    if product.spec.discoverability is Discoverability.HIDDEN:
        return MetricLabels(product.namespace, f"uid-{product.uid}", hidden=True)
    return MetricLabels(product.namespace, product.name, hidden=False)
