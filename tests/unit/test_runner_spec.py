"""The SQL runner's run spec: what parses, and the message naming the field when it does not."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from dataproduct_operator.api.run_terms import FileFormat, RunMode, Severity
from dataproduct_operator.runner.spec import (
    MAX_CHECKS,
    RunSpec,
    RunSpecError,
    SourceKind,
)

SPEC: dict[str, Any] = {
    "product": {"namespace": "sales", "name": "orders"},
    "pipeline": "build",
    "sql": "SELECT o.id AS order_id, o.amount, c.segment, o.placed_at FROM orders o "
    "JOIN customers c USING (customer_id)",
    "mode": "Merge",
    "output": {
        "port": "orders-v1",
        "table": {"schema": "sales__orders", "name": "orders_v1"},
        "columns": [
            {"name": "order_id", "type": "string", "required": True, "unique": True},
            {"name": "amount", "type": "decimal"},
            {"name": "segment", "type": "string"},
            {"name": "placed_at", "type": "timestamp"},
        ],
        "freshnessColumn": "placed_at",
    },
    "sources": [
        {"name": "orders", "kind": "product", "table": {"schema": "crm__raw", "name": "orders"},
         "envPrefix": "INPUT_ORDERS_"},
        {"name": "customers", "kind": "postgres", "query": "SELECT * FROM public.customers",
         "envPrefix": "SOURCE_CUSTOMERS_"},
        {"name": "ledger", "kind": "file", "format": "parquet", "location": "/data/ledger.parquet"},
        {"name": "rates", "kind": "file", "format": "csv", "location": "https://example.org/r.csv"},
    ],
    "checks": [
        {"name": "no-negative", "severity": "Error",
         "sql": "SELECT count(*) FROM orders_v1 WHERE amount < 0"},
        {"name": "enough", "severity": "Warning", "minRows": 10},
        {"name": "segments", "severity": "Error",
         "maxNullFraction": {"column": "segment", "fraction": 0.1}},
        {"name": "fresh", "severity": "Warning",
         "freshness": {"column": "placed_at", "maxAgeSeconds": 86400}},
    ],
}  # fmt: skip


def _with(path: str, value: Any) -> str:
    """SPEC as JSON with the field at PATH (dotted; list indexes as numbers) set to VALUE, or
    removed when VALUE is ...."""
    document = copy.deepcopy(SPEC)
    *parents, last = path.split(".")
    node: Any = document
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is ...:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return json.dumps(document)


def test_a_full_spec_parses_into_typed_values() -> None:
    spec = RunSpec.from_json(json.dumps(SPEC))
    assert spec.mode is RunMode.MERGE
    assert spec.output.unique_columns == ("order_id",)
    assert spec.output.freshness_column == "placed_at"
    assert [s.kind for s in spec.sources] == [
        SourceKind.PRODUCT, SourceKind.POSTGRES, SourceKind.FILE, SourceKind.FILE,
    ]  # fmt: skip
    assert spec.sources[0].env_prefix == "INPUT_ORDERS_"
    assert spec.sources[2].format is FileFormat.PARQUET
    assert not spec.sources[2].is_remote_file
    assert spec.sources[3].is_remote_file
    assert spec.checks[1].min_rows == 10
    assert spec.checks[1].severity is Severity.WARNING
    assert spec.checks[2].max_null_fraction is not None
    assert spec.checks[2].max_null_fraction.fraction == 0.1
    assert spec.checks[3].freshness is not None
    assert spec.checks[3].freshness.max_age_seconds == 86400
    assert spec.output.columns[1].sql_type == "numeric"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("mode", "Upsert", "mode is 'Upsert'; use one of: Replace, Append, Merge"),
        ("sql", "", "sql must be a non-empty string"),
        ("pipeline", ..., "pipeline must be a non-empty string"),
        ("output.columns.1.type", "money", "output.columns[1].type: type 'money' is not a known"),
        ("output.columns", [], "output.columns must be a non-empty list"),
        ("output.freshnessColumn", "shipped_at", "output.freshnessColumn 'shipped_at' is not a"),
        ("sources.0.envPrefix", "input_orders", "sources[0].envPrefix 'input_orders' must match"),
        ("sources.1.name", "bad name", "sources[1].name 'bad name' must match"),
        ("sources.2.format", "xlsx", "sources[2].format is 'xlsx'; use one of: csv, jsonl, parq"),
        ("sources.2.location", "data/x.csv", "sources[2].location must be an absolute path"),
        ("sources.3.location", "https://u:p@example.org/r.csv", "must not carry a user or pass"),
        ("checks.1.minRows", -1, "checks[1].minRows must be an integer from 0"),
        ("checks.2.maxNullFraction", {"column": "segment", "fraction": 2},
         "checks[2].maxNullFraction.fraction must be a number from 0 to 1"),
        ("checks.3.freshness", {"column": "nope", "maxAgeSeconds": 5},
         "checks[3].freshness.column 'nope' is not a column of the port"),
        ("checks.0.severity", "Fatal", "checks[0].severity is 'Fatal'; use one of: Error, Warning"),
        ("checks.1", {"name": "two", "severity": "Error", "minRows": 1, "sql": "SELECT 0"},
         "checks[1] must set exactly one of: sql, minRows, maxNullFraction, freshness"),
        ("checks.1.name", "no-negative", "checks names 'no-negative' twice"),
        ("sources.1.name", "orders_v1", "output.table.name 'orders_v1' is also a source's name"),
        ("product", "sales/orders", "product must be an object"),
    ],
)  # fmt: skip
def test_a_bad_field_is_refused_with_a_message_naming_it(
    path: str, value: Any, message: str
) -> None:
    with pytest.raises(RunSpecError) as refused:
        RunSpec.from_json(_with(path, value))
    assert message in str(refused.value)


def test_merge_without_a_unique_column_is_refused_saying_what_to_change() -> None:
    document = json.loads(_with("output.columns.0.unique", False))
    with pytest.raises(RunSpecError, match=r"mode Merge needs a unique column in port 'orders-v1'"):
        RunSpec.from_json(json.dumps(document))
    document["mode"] = "Replace"
    assert RunSpec.from_json(json.dumps(document)).mode is RunMode.REPLACE


def test_not_json_too_large_and_too_many_checks_are_refused() -> None:
    with pytest.raises(RunSpecError, match="DPO_RUN_SPEC is not JSON"):
        RunSpec.from_json("{")
    with pytest.raises(RunSpecError, match="DPO_RUN_SPEC is larger than"):
        RunSpec.from_json(_with("sql", "SELECT 1 " + "x" * 300_000))
    checks = [{"name": f"c{i}", "severity": "Error", "minRows": 1} for i in range(MAX_CHECKS + 1)]
    with pytest.raises(RunSpecError, match=f"checks has more than {MAX_CHECKS} items"):
        RunSpec.from_json(_with("checks", checks))
