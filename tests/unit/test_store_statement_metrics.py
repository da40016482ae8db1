"""The operator's metrics say what each DataStore's driver executed: statements by kind,
transactions, and the most connections its pool held."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dataproduct_operator.metrics import OperatorMetrics
from dataproduct_operator.stores.postgres.store import StatementCounter


def _samples(metrics: OperatorMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_store_statements_are_counted_by_kind_and_read_at_scrape_time() -> None:
    counter = StatementCounter()
    metrics = OperatorMetrics()
    metrics.count_store_statements(lambda: {"local-postgres": counter})
    counter.reads, counter.changes, counter.transactions, counter.peak_connections = 7, 3, 2, 4

    samples = _samples(metrics)

    store = ("store", "local-postgres")
    assert samples[("dataproduct_store_statements_total", (("kind", "read"), store))] == 7
    assert samples[("dataproduct_store_statements_total", (("kind", "change"), store))] == 3
    assert samples[("dataproduct_store_transactions_total", (store,))] == 2
    assert samples[("dataproduct_store_peak_connections", (store,))] == 4
    counter.changes = 5
    assert (
        _samples(metrics)[("dataproduct_store_statements_total", (("kind", "change"), store))] == 5
    )


def test_no_store_series_before_a_store_is_used() -> None:
    metrics = OperatorMetrics()
    metrics.count_store_statements(dict)
    assert not [key for key in _samples(metrics) if key[0].startswith("dataproduct_store_")]
