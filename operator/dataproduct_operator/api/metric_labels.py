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


def port_label(product: DataProduct, port: str) -> str:
    """The ``output_port`` label of a port's series: its name, or for a Hidden product
    ``port-<index in spec.outputPorts>`` (a port's name could say what the product is)."""
    if product.spec.discoverability is not Discoverability.HIDDEN:
        return port
    names = [p.name for p in product.spec.output_ports]
    return f"port-{names.index(port)}" if port in names else "port-unknown"


# The data health series, per output port (labels namespace, dataproduct, output_port): the
# operator exports them and the alert rules and the dashboard query them by these names.
PORT_ROWS = "dataproduct_port_rows"
PORT_SIZE_BYTES = "dataproduct_port_size_bytes"
PORT_FRESHNESS_AGE = "dataproduct_port_freshness_age_seconds"  # now - lastUpdated, at scrape
PORT_FRESHNESS_SLO = "dataproduct_port_freshness_slo_seconds"  # the port's slo.freshness
# Failed checks of the port's last run, by severity (label severity: Error | Warning)
PORT_CHECK_FAILURES = "dataproduct_port_check_failures"
# Per pipeline (labels namespace, dataproduct, pipeline)
PIPELINE_RUN_DURATION = "dataproduct_pipeline_last_run_duration_seconds"
PIPELINE_LAST_RUN_FAILED = "dataproduct_pipeline_last_run_failed"  # 1 when the last run failed
# Per product (labels namespace, dataproduct, domain): 1 when DataHealthy is True
DATA_HEALTHY = "dataproduct_data_healthy"

# Series exported before the data health ones, queried by the alert rules and the dashboard
# under the same names (labels as above: per product, per pipeline).
READY = "dataproduct_ready"  # namespace, dataproduct, domain: 1 when Ready is True
PIPELINE_LAST_SUCCESS = "dataproduct_pipeline_last_success_timestamp_seconds"
# namespace, dataproduct: seconds since any pipeline last succeeded (ports without health yet)
STALENESS = "dataproduct_staleness_seconds"
ACCESS_REQUESTS = "dataproduct_access_requests"  # by phase
ACCESS_GRANTS_ACTIVE = "dataproduct_access_grants_active"
