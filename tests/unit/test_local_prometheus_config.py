"""The local Prometheus' configuration and rule file (``dpo dev``), without starting it."""

from __future__ import annotations

from pathlib import Path

import yaml

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.cluster.prometheus import (
    JOB,
    PrometheusLayout,
    build_command,
    build_config,
    write_rules,
)
from dataproduct_operator.specs.alerts import build_alert_rules
from tests.helpers import example_product


def test_it_listens_on_loopback_without_its_lifecycle_api(tmp_path: Path) -> None:
    layout = PrometheusLayout.of(tmp_path)
    command = build_command(Path("/usr/bin/prometheus"), layout, 9090)
    assert "--web.listen-address=127.0.0.1:9090" in command
    assert not any("lifecycle" in argument or "admin-api" in argument for argument in command)
    assert f"--storage.tsdb.path={tmp_path.resolve() / 'prometheus' / 'data'}" in command


def test_it_scrapes_the_operator_and_loads_the_products_rule_file(tmp_path: Path) -> None:
    layout = PrometheusLayout.of(tmp_path)
    config = build_config(layout, 8000)
    assert config["rule_files"] == [str(layout.rules)]
    (scrape,) = config["scrape_configs"]
    assert scrape == {"job_name": JOB, "static_configs": [{"targets": ["127.0.0.1:8000"]}]}


def test_the_rule_file_holds_each_products_rules_and_is_rewritten_only_on_change(
    tmp_path: Path,
) -> None:
    layout = PrometheusLayout.of(tmp_path)
    layout.root.mkdir()
    orders = DataProduct.from_object(example_product())
    customers = DataProduct.from_object(example_product("crm-customers.yaml"))
    assert write_rules(layout, [orders, customers])
    groups = yaml.safe_load(layout.rules.read_text())["groups"]
    assert [g["name"] for g in groups] == ["dataproduct-crm-customers", "dataproduct-sales-orders"]
    assert groups[1]["rules"] == build_alert_rules(orders)
    assert not write_rules(layout, [customers, orders])  # the same rules: nothing to reload
    assert write_rules(layout, [customers])
    assert len(yaml.safe_load(layout.rules.read_text())["groups"]) == 1
