"""The Grafana dashboard of the data products (layer ``manifests``, pure).

:func:`build_dashboard` returns the dashboard's JSON model: the mesh at a glance (products
Ready, data healthy, stale ports, failing checks, failed pipelines), then per port its
freshness against its SLO, rows, size and failed checks, and per pipeline its last run's
duration, result and time since its last success. Every query names the series by their names in
:mod:`~dataproduct_operator.api.metric_labels`; the tests check each with ``promtool``. The chart
ships it in a ConfigMap labelled for Grafana's dashboard sidecar (``grafana.dashboard``).
"""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api import metric_labels as series

UID = "dataproduct-operator-data"
TITLE = "Data products: health"
# Grafana's template variables: the data source, and which namespaces and products are shown.
PRODUCTS = 'namespace=~"$namespace",dataproduct=~"$dataproduct"'
NAMESPACES = 'namespace=~"$namespace"'
PORT_LEGEND = "{{namespace}}/{{dataproduct}} {{output_port}}"
PIPELINE_LEGEND = "{{namespace}}/{{dataproduct}} {{pipeline}}"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24  # Grafana's grid is 24 columns wide


def _target(expr: str, legend: str = "", ref: str = "A") -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}


def _panel(
    title: str,
    kind: str,
    targets: list[dict[str, Any]],
    *,
    description: str,
    unit: str = "short",
    size: tuple[int, int] = (6, 4),
) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "gridPos": {"w": size[0], "h": size[1]},
    }


def _mesh_panels() -> list[dict[str, Any]]:
    return [
        _panel(
            "Products Ready",
            "stat",
            [_target(f"sum({series.READY}{{{PRODUCTS}}})")],
            description="Products whose Ready condition is True (provisioned).",
        ),
        _panel(
            "Data healthy",
            "stat",
            [_target(f"sum({series.DATA_HEALTHY}{{{PRODUCTS}}})")],
            description="Products whose DataHealthy condition is True: fresh data, checks "
            "passing, runs succeeding (Unknown, no data yet, is not counted).",
        ),
        _panel(
            "Stale ports",
            "stat",
            [
                _target(
                    f"count(({series.PORT_FRESHNESS_AGE}{{{PRODUCTS}}} > on(namespace, "
                    f"dataproduct, output_port) {series.PORT_FRESHNESS_SLO}{{{PRODUCTS}}})) "
                    "or vector(0)"
                )
            ],
            description="Output ports whose data is older than their freshness SLO.",
        ),
        _panel(
            "Failed pipelines",
            "stat",
            [_target(f"count({series.PIPELINE_LAST_RUN_FAILED}{{{PRODUCTS}}} == 1) or vector(0)")],
            description="Pipelines whose last run failed.",
        ),
    ]


def _port_panels() -> list[dict[str, Any]]:
    wide = (WIDTH // 2, 8)
    return [
        _panel(
            "Freshness: age of the data against its SLO",
            "timeseries",
            [
                _target(
                    f"{series.PORT_FRESHNESS_AGE}{{{PRODUCTS}}} / on(namespace, dataproduct, "
                    f"output_port) {series.PORT_FRESHNESS_SLO}{{{PRODUCTS}}}",
                    PORT_LEGEND,
                )
            ],
            description="Each port's age (now - lastUpdated) as a share of its slo.freshness: "
            "above 1 the port is stale (the DataProductStale alert fires 5 minutes later).",
            unit="percentunit",
            size=wide,
        ),
        _panel(
            "Age of the data",
            "timeseries",
            [
                _target(f"{series.PORT_FRESHNESS_AGE}{{{PRODUCTS}}}", PORT_LEGEND),
                _target(
                    f"{series.STALENESS}{{{PRODUCTS}}}",
                    "{{namespace}}/{{dataproduct}} since any run succeeded",
                    "B",
                ),
            ],
            description="Seconds since each port's data was last updated; for products whose "
            "runs have not reported yet, seconds since any pipeline last succeeded.",
            unit="s",
            size=wide,
        ),
        *(
            _panel(title, kind, [_target(expr, legend)], description=text, unit=unit, size=wide)
            for title, kind, expr, legend, text, unit in (
                (
                    "Rows",
                    "timeseries",
                    f"{series.PORT_ROWS}{{{PRODUCTS}}}",
                    PORT_LEGEND,
                    "Rows in each port's table, from the store.",
                    "short",
                ),
                (
                    "Size",
                    "timeseries",
                    f"{series.PORT_SIZE_BYTES}{{{PRODUCTS}}}",
                    PORT_LEGEND,
                    "Size of each port's table with its indexes, from the store.",
                    "bytes",
                ),
                (
                    "Failed checks of the last run",
                    "table",
                    f"{series.PORT_CHECK_FAILURES}{{{PRODUCTS}}} > 0",
                    "{{namespace}}/{{dataproduct}} {{output_port}} {{severity}}",
                    "Checks that failed in the last run that checked each port, by severity: "
                    "an Error check stops the publish, a Warning check only reports.",
                    "short",
                ),
            )
        ),
    ]


# Per pipeline: title, panel type, query, what it shows, unit.
_PIPELINE_PANELS = (
    (
        "Last run duration",
        "timeseries",
        f"{series.PIPELINE_RUN_DURATION}{{{PRODUCTS}}}",
        "How long each pipeline's last run took.",
        "s",
    ),
    (
        "Last run failed",
        "state-timeline",
        f"{series.PIPELINE_LAST_RUN_FAILED}{{{PRODUCTS}}}",
        "1 while a pipeline's last run failed.",
        "short",
    ),
    (
        "Since the last successful run",
        "timeseries",
        f"time() - {series.PIPELINE_LAST_SUCCESS}{{{PRODUCTS}}}",
        "Seconds since each pipeline last succeeded.",
        "s",
    ),
)


def _pipeline_panels() -> list[dict[str, Any]]:
    third = (WIDTH // 3, 8)
    return [
        _panel(
            title, kind, [_target(expr, PIPELINE_LEGEND)], description=text, unit=unit, size=third
        )
        for title, kind, expr, text, unit in _PIPELINE_PANELS
    ]


def _variables() -> list[dict[str, Any]]:
    def query(name: str, label_values: str) -> dict[str, Any]:
        return {
            "name": name,
            "type": "query",
            "datasource": DATASOURCE,
            "query": {"query": label_values, "refId": f"{name}-values"},
            "definition": label_values,
            "refresh": 2,  # on time range change: products come and go
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"text": "All", "value": "$__all"},
        }

    return [
        {
            "name": "datasource",
            "type": "datasource",
            "query": "prometheus",
            "label": "Data source",
        },
        query("namespace", f"label_values({series.READY}, namespace)"),
        query("dataproduct", f"label_values({series.READY}{{{NAMESPACES}}}, dataproduct)"),
    ]


def _laid_out(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ids and grid positions, left to right and top to bottom."""
    x = y = row_height = 0
    for number, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + w > WIDTH:
            x, y, row_height = 0, y + row_height, 0
        panel["id"] = number
        panel["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        x, row_height = x + w, max(row_height, h)
    return panels


def build_dashboard() -> dict[str, Any]:
    """The dashboard's JSON model (Grafana 10 and later)."""
    return {
        "uid": UID,
        "title": TITLE,
        "description": "Freshness, rows, size, checks and runs of the data products, from the "
        "dataproduct-operator's metrics.",
        "tags": ["data-mesh", "dataproduct-operator"],
        "editable": True,
        "schemaVersion": 39,
        "time": {"from": "now-24h", "to": "now"},
        "refresh": "1m",
        "templating": {"list": _variables()},
        "panels": _laid_out([*_mesh_panels(), *_port_panels(), *_pipeline_panels()]),
    }


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: its panels' and its variables' queries."""
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["query"]["query"])
    return queries
