"""The alert rules built for data products, proven by Prometheus itself: ``promtool test rules``
with synthetic series, for every generated alert a case where it fires and one where it does
not, for the examples and the edge cases (a Hidden product, several ports, a port without an
SLO, no pipelines, alerts disabled). The series carry the names and labels of
:mod:`~dataproduct_operator.api.metric_labels`, as the operator exports them.

Every case also has the series of another product of the same namespace, all in trouble: a rule
that selected more than its own product's series would fire for it and fail the case. And the
rules broken on purpose (never firing, selecting every product, without their ``for``) fail the
same tests, so the tests can fail.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.api.metric_labels import (
    HIDDEN_PIPELINE,
    PIPELINE_LAST_RUN_FAILED,
    PORT_CHECK_FAILURES,
    PORT_FRESHNESS_AGE,
    STALENESS,
    metric_labels,
    port_label,
)
from dataproduct_operator.api.quantity import duration_seconds
from dataproduct_operator.specs.alerts import (
    CHECKS_FAILING,
    PIPELINE_FAILED,
    STALE,
    build_alert_rules,
    build_rule_file,
    selector,
)
from dataproduct_operator.specs.dataproduct import build_prometheus_rule
from tests.helpers import EXAMPLES, example_product
from tests.prometheus import run_promtool, write_yaml

NOISE = "someone-else"  # another product of the same namespace, always stale and failing
RUN_MINUTES = 40  # the length of every synthetic series, in 1-minute samples


def hidden() -> dict[str, Any]:
    document = example_product()
    document["metadata"].update(name="acquisition-target", uid="8c1f-uid")
    document["spec"]["discoverability"] = "Hidden"
    return document


def several_ports() -> dict[str, Any]:
    """Two ports with different SLOs and one without any."""
    document = example_product()
    document["spec"]["outputPorts"].append({"name": "audit-v1", "format": "parquet"})
    return document


def without_slo() -> dict[str, Any]:
    document = example_product("crm-customers.yaml")
    for port in document["spec"]["outputPorts"]:
        port.pop("slo", None)
    return document


def without_pipelines() -> dict[str, Any]:
    document = example_product("crm-customers.yaml")
    document["spec"].pop("pipelines")
    return document


PRODUCTS = {
    "crm-customers": lambda: example_product("crm-customers.yaml", EXAMPLES),
    "sales-orders": lambda: example_product("sales-orders.yaml", EXAMPLES),
    "finance-revenue": lambda: example_product("finance-revenue.yaml", EXAMPLES),
    "hidden": hidden,
    "several-ports": several_ports,
    "no-slo": without_slo,
    "no-pipelines": without_pipelines,
}


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    return {"series": selector(name, **labels), "values": values}


def _expand(text: str, labels: dict[str, str], value: str) -> str:
    """An annotation as Prometheus' template expands it (the two forms the rules use)."""
    text = text.replace("{{ $value }}", value)
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)


class Cases:
    """The promtool test groups of one product, from its spec (not from its rules: the rules
    are what is tested)."""

    def __init__(self, product: DataProduct) -> None:
        self.product = product
        labels = metric_labels(product)
        self.own = {"namespace": labels.namespace, "dataproduct": labels.dataproduct}
        self.noise = {"namespace": labels.namespace, "dataproduct": NOISE}
        self.ports = [port_label(product, p.name) for p in product.spec.output_ports]
        self.slos = {
            port_label(product, p.name): duration_seconds(p.slo.freshness)
            for p in product.spec.output_ports
            if p.slo is not None and p.slo.freshness is not None
        }
        names = [p.name for p in product.spec.pipelines]
        self.pipelines = [HIDDEN_PIPELINE] if labels.hidden and names else names
        self.rules = {
            (rule["alert"], rule["labels"].get("output_port")): rule
            for rule in build_alert_rules(product)
        }

    def _alert(self, alert: str, port: str | None, value: str, **series: str) -> dict[str, Any]:
        rule = self.rules[(alert, port)]
        labels = {**self.own, **series, **rule["labels"]}
        return {
            "exp_labels": labels,
            "exp_annotations": {
                key: _expand(text, labels, value) for key, text in rule["annotations"].items()
            },
        }

    def _fresh_ports(self, *, but: str | None = None) -> list[dict[str, str]]:
        """Every port's age at 0 (``but`` left out), and the noise product's ports very old."""
        return [
            *(
                _series(PORT_FRESHNESS_AGE, f"0x{RUN_MINUTES}", **self.own, output_port=port)
                for port in self.ports
                if port != but
            ),
            *(
                _series(PORT_FRESHNESS_AGE, f"1e9x{RUN_MINUTES}", **self.noise, output_port=port)
                for port in self.ports
            ),
            _series(STALENESS, f"1e9x{RUN_MINUTES}", **self.noise),
        ]

    def stale(self, port: str, slo: int) -> list[dict[str, Any]]:
        fresh, late = slo // 2, slo + 60
        very_stale = _series(STALENESS, f"{slo * 10}x{RUN_MINUTES}", **self.own)
        fires = self._alert(STALE, port, "")

        def at(minute: int, *alerts: dict[str, Any]) -> dict[str, Any]:
            return {"eval_time": f"{minute}m", "alertname": STALE, "exp_alerts": list(alerts)}

        return [
            {  # the port's age passes its SLO at 10m: pending, then firing 5 minutes on
                "input_series": [
                    *self._fresh_ports(but=port),
                    _series(
                        PORT_FRESHNESS_AGE, f"{fresh}x9 {late}x30", **self.own, output_port=port
                    ),
                    very_stale,  # the port's own age wins over the product's staleness
                ],
                "alert_rule_test": [at(9), at(14), at(16, fires)],
            },
            {  # the port's age stays just under its SLO, however stale the product's runs
                "input_series": [
                    *self._fresh_ports(but=port),
                    _series(
                        PORT_FRESHNESS_AGE,
                        f"{slo - 60}x{RUN_MINUTES}",
                        **self.own,
                        output_port=port,
                    ),
                    very_stale,
                ],
                "alert_rule_test": [at(30)],
            },
            {  # no age for the port yet: the product's staleness counts, from 10m past the SLO
                "input_series": [
                    *self._fresh_ports(but=port),
                    _series(STALENESS, f"{slo - 60}x9 {late}x30", **self.own),
                ],
                "alert_rule_test": [at(9), at(14), at(16, fires)],
            },
        ]

    def _failures(self, failing: str | None, errors: int) -> list[dict[str, str]]:
        return [
            *(
                _series(
                    PORT_CHECK_FAILURES,
                    f"{errors if port == failing else 0}x{RUN_MINUTES}",
                    **self.own,
                    output_port=port,
                    severity="Error",
                )
                for port in self.ports
            ),
            *(  # Warning checks never stop a publish: never alerted on
                _series(
                    PORT_CHECK_FAILURES,
                    f"3x{RUN_MINUTES}",
                    **self.own,
                    output_port=port,
                    severity="Warning",
                )
                for port in self.ports
            ),
            _series(
                PORT_CHECK_FAILURES,
                f"4x{RUN_MINUTES}",
                **self.noise,
                output_port=self.ports[0],
                severity="Error",
            ),
        ]

    def checks(self, port: str) -> list[dict[str, Any]]:
        fires = self._alert(CHECKS_FAILING, None, "2", output_port=port)

        def at(*alerts: dict[str, Any]) -> dict[str, Any]:
            return {"eval_time": "1m", "alertname": CHECKS_FAILING, "exp_alerts": list(alerts)}

        return [
            {"input_series": self._failures(port, 2), "alert_rule_test": [at(fires)]},
            {"input_series": self._failures(None, 0), "alert_rule_test": [at()]},
        ]

    def _runs(self, failed: str | None) -> list[dict[str, str]]:
        return [
            *(
                _series(
                    PIPELINE_LAST_RUN_FAILED,
                    f"{int(pipeline == failed)}x{RUN_MINUTES}",
                    **self.own,
                    pipeline=pipeline,
                )
                for pipeline in self.pipelines
            ),
            _series(PIPELINE_LAST_RUN_FAILED, f"1x{RUN_MINUTES}", **self.noise, pipeline="ingest"),
        ]

    def pipeline(self, pipeline: str) -> list[dict[str, Any]]:
        fires = self._alert(PIPELINE_FAILED, None, "1", pipeline=pipeline)

        def at(*alerts: dict[str, Any]) -> dict[str, Any]:
            return {"eval_time": "1m", "alertname": PIPELINE_FAILED, "exp_alerts": list(alerts)}

        return [
            {"input_series": self._runs(pipeline), "alert_rule_test": [at(fires)]},
            {"input_series": self._runs(None), "alert_rule_test": [at()]},
        ]

    def all(self) -> list[dict[str, Any]]:
        tests = [test for port, slo in self.slos.items() for test in self.stale(port, slo)]
        if self.pipelines:
            tests += [test for port in self.ports for test in self.checks(port)]
            tests += [test for pipeline in self.pipelines for test in self.pipeline(pipeline)]
        return [{"interval": "1m", **test} for test in tests]


def promtool_test(directory: Path, rule_file: dict[str, Any], tests: list[dict[str, Any]]) -> Any:
    write_yaml(directory / "rules.yaml", rule_file)
    write_yaml(
        directory / "tests.yaml",
        {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests},
    )
    return run_promtool("test", "rules", "tests.yaml", cwd=directory)


@pytest.mark.parametrize("case", sorted(PRODUCTS))
def test_every_generated_alert_fires_when_it_should_and_not_otherwise(
    case: str, tmp_path: Path
) -> None:
    product = DataProduct.from_object(PRODUCTS[case]())
    cases = Cases(product)
    tests = cases.all()
    # Every rule of the product has a case where it fires and one where it does not.
    expected = {(STALE, port) for port in cases.slos}
    if product.spec.pipelines:
        expected |= {(CHECKS_FAILING, None), (PIPELINE_FAILED, None)}
    assert set(cases.rules) == expected
    tested = {
        (check["alertname"], bool(check["exp_alerts"]))
        for test in tests
        for check in test["alert_rule_test"]
    }
    assert tested == {(alert, fires) for alert, _ in expected for fires in (True, False)}

    rule_file = build_rule_file([product])
    checked = run_promtool(
        "check", "rules", str(write_yaml(tmp_path / "r.yaml", rule_file)), cwd=tmp_path
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = promtool_test(tmp_path, rule_file, tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _broken(rule_file: dict[str, Any], how: str, dataproduct: str) -> dict[str, Any]:
    broken = copy.deepcopy(rule_file)
    for rule in broken["groups"][0]["rules"]:
        if how == "never fires":
            rule["expr"] = "vector(1) == 0"
        elif how == "selects every product":
            rule["expr"] = rule["expr"].replace(f'dataproduct="{dataproduct}",', "")
        elif how == "fires at once":
            rule.pop("for", None)
    return broken


@pytest.mark.parametrize("how", ["never fires", "selects every product", "fires at once"])
@pytest.mark.parametrize("case", ["sales-orders", "hidden"])
def test_the_promtool_cases_fail_rules_that_are_wrong(case: str, how: str, tmp_path: Path) -> None:
    product = DataProduct.from_object(PRODUCTS[case]())
    rule_file = _broken(build_rule_file([product]), how, metric_labels(product).dataproduct)
    result = promtool_test(tmp_path, rule_file, Cases(product).all())
    assert result.returncode != 0, f"the rules that {how} passed:\n{result.stdout}"
    assert "FAILED" in result.stdout + result.stderr


def test_no_rules_when_alerts_are_disabled_or_nothing_can_be_alerted_on() -> None:
    marketing = DataProduct.from_object(example_product("marketing-customer-segments.yaml"))
    assert marketing.spec.monitoring.alerts.value == "Disabled"
    nothing = without_pipelines()
    nothing["spec"]["outputPorts"][0].pop("slo")
    quiet = DataProduct.from_object(nothing)
    for product in (marketing, quiet):
        assert build_prometheus_rule(product) is None
        assert build_alert_rules(product) == []
    assert build_rule_file([marketing, quiet]) == {"groups": []}


def test_the_annotations_name_the_product_the_port_and_the_slo() -> None:
    product = DataProduct.from_object(several_ports())
    rules = [r for r in build_alert_rules(product) if r["alert"] == STALE]
    assert [r["labels"]["output_port"] for r in rules] == ["orders-v1", "daily-revenue"]
    for rule, slo in zip(rules, ("24h", "36h"), strict=True):
        text = " ".join(rule["annotations"].values())
        port = rule["labels"]["output_port"]
        assert all(part in text for part in ("sales/orders", port, slo)), text
        assert rule["for"] == "5m" and rule["labels"]["severity"] == "warning"
        assert rule["labels"]["domain"] == "sales"


def test_a_hidden_products_alerts_carry_its_series_labels_not_its_names() -> None:
    product = DataProduct.from_object(hidden())
    rules = build_alert_rules(product)
    assert {r["labels"].get("output_port") for r in rules} == {"port-0", "port-1", None}
    for rule in rules:
        assert "acquisition-target" not in rule["expr"] and "orders-v1" not in rule["expr"]
        assert 'dataproduct="uid-8c1f-uid"' in rule["expr"]
