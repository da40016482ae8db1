"""The Grafana dashboard the chart ships: every query is PromQL that Prometheus accepts
(``promtool check rules`` on the queries written as recording rules), names only series the
operator exports, and the joins of its panels compute what their titles say on synthetic
series (``promtool test rules``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from dataproduct_operator.api import metric_labels
from dataproduct_operator.manifests.chart import CHART_DIR, DASHBOARD_FILE
from dataproduct_operator.manifests.dashboard import build_dashboard, dashboard_queries
from tests.helpers import REPO
from tests.prometheus import run_promtool, write_yaml

SHIPPED = REPO / CHART_DIR / DASHBOARD_FILE
# The series the operator exports for products: every name metric_labels gives a series.
EXPORTED = {
    value
    for name, value in vars(metric_labels).items()
    if name.isupper() and isinstance(value, str) and value.startswith("dataproduct_")
}
# Grafana's variables, as "All" expands them
VARIABLES = {"$namespace": ".*", "$dataproduct": ".*"}


def expand(query: str) -> str:
    for variable, value in VARIABLES.items():
        query = query.replace(variable, value)
    return query


def shipped_queries() -> list[str]:
    return [expand(query) for query in dashboard_queries(json.loads(SHIPPED.read_text()))]


def as_recording_rules(queries: list[str]) -> dict[str, object]:
    rules = []
    for number, query in enumerate(queries):
        # label_values() is Grafana's, not PromQL: its series selector is what Prometheus runs
        match = re.fullmatch(r"label_values\((.+), \w+\)", query)
        rules.append({"record": f"dashboard:query_{number}", "expr": match[1] if match else query})
    return {"groups": [{"name": "dashboard", "rules": rules}]}


def test_the_chart_ships_the_dashboard_the_package_builds() -> None:
    assert json.loads(SHIPPED.read_text()) == build_dashboard()


def test_every_query_of_the_dashboard_is_valid_promql(tmp_path: Path) -> None:
    queries = shipped_queries()
    assert len(queries) >= 12
    path = write_yaml(tmp_path / "dashboard.yaml", as_recording_rules(queries))
    result = run_promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout
    broken = write_yaml(tmp_path / "broken.yaml", as_recording_rules([queries[0] + ")"]))
    assert run_promtool("check", "rules", str(broken), cwd=tmp_path).returncode != 0


def test_the_dashboard_names_only_series_the_operator_exports_and_all_of_its_data_health() -> None:
    named = {
        name
        for query in shipped_queries()
        for name in re.findall(r"\b(dataproduct_[a-z_]+)\b", query)
    }
    assert named <= EXPORTED, f"not exported: {sorted(named - EXPORTED)}"
    data_health = {
        metric_labels.PORT_ROWS,
        metric_labels.PORT_SIZE_BYTES,
        metric_labels.PORT_FRESHNESS_AGE,
        metric_labels.PORT_FRESHNESS_SLO,
        metric_labels.PORT_CHECK_FAILURES,
        metric_labels.PIPELINE_RUN_DURATION,
        metric_labels.PIPELINE_LAST_RUN_FAILED,
        metric_labels.DATA_HEALTHY,
    }
    assert data_health <= named, f"not shown: {sorted(data_health - named)}"


def test_the_stale_ports_and_freshness_panels_compute_what_they_say(tmp_path: Path) -> None:
    queries = {
        panel["title"]: panel["targets"][0]["expr"]
        .replace("$namespace", ".*")
        .replace("$dataproduct", ".*")
        for panel in build_dashboard()["panels"]
    }
    port = 'namespace="sales",dataproduct="orders",output_port'
    series = [
        {"series": f'{metric_labels.PORT_FRESHNESS_AGE}{{{port}="orders-v1"}}', "values": "7200"},
        {"series": f'{metric_labels.PORT_FRESHNESS_SLO}{{{port}="orders-v1"}}', "values": "3600"},
        {"series": f'{metric_labels.PORT_FRESHNESS_AGE}{{{port}="daily"}}', "values": "60"},
        {"series": f'{metric_labels.PORT_FRESHNESS_SLO}{{{port}="daily"}}', "values": "120"},
        # a port without an SLO is never stale, and has no ratio
        {"series": f'{metric_labels.PORT_FRESHNESS_AGE}{{{port}="raw"}}', "values": "9999"},
    ]
    ratio = [
        {"labels": f'{{{port}="{name}"}}', "value": value}
        for name, value in (("orders-v1", 2), ("daily", 0.5))
    ]
    tests = {
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": queries["Stale ports"],
                        "eval_time": "0m",
                        "exp_samples": [{"labels": "{}", "value": 1}],
                    },
                    {
                        "expr": queries["Freshness: age of the data against its SLO"],
                        "eval_time": "0m",
                        "exp_samples": ratio,
                    },
                ],
            }
        ],
    }
    write_yaml(tmp_path / "tests.yaml", tests)
    result = run_promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
