"""How the SQL runner reads PostgreSQL's CSV into DuckDB: numerics lose their trailing zeros on
the server where it has trim_scale (PostgreSQL 13 and later), in DuckDB otherwise, and DuckDB
reads each back exactly."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from dataproduct_operator.runner import types

FIELDS = [("order_id", 25), ("amount", types.NUMERIC_OID), ("Placed At", 1184)]


def test_numerics_are_trimmed_on_servers_with_trim_scale_only() -> None:
    assert types.copy_columns(FIELDS, 150018) == (
        '"order_id", trim_scale("amount") AS "amount", "Placed At"'
    )
    assert types.copy_columns(FIELDS, 120020) == '"order_id", "amount", "Placed At"'


@pytest.mark.parametrize(
    ("version", "written", "expected"),
    [
        (150018, "1.5", Decimal("1.5")),
        (150018, "100", Decimal("100")),
        (120020, "1.50000000000000000000", Decimal("1.5")),
        (120020, "100", Decimal("100")),
        (120020, "0.33333333333333333333", Decimal("0.3333333333")),
    ],
)
def test_the_reader_reads_each_servers_numerics_back(
    version: int, written: str, expected: Decimal, tmp_path: Path
) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(f'o-1,{written},2026-11-29 12:30:00+00\n"",,\n')
    with duckdb.connect() as db:
        db.execute("SET TimeZone = 'UTC'")
        rows = db.execute(types.csv_reader(str(path), FIELDS, version)).fetchall()
    assert [(row[0], row[1]) for row in rows] == [("o-1", expected), ("", None)]
    assert rows[0][2].isoformat() == "2026-11-29T12:30:00+00:00"
    assert rows[1][2] is None
