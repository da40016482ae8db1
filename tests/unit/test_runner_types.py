"""How the SQL runner asks PostgreSQL for a source's rows and types them in DuckDB: the types
DuckDB's PostgreSQL reader takes as they are come in binary, numerics as DuckDB's widest decimal
(rounded on the server), an oid as a bigint, JSON as its text turned back into JSON, and every
other type as its text form."""

from __future__ import annotations

from dataproduct_operator.runner import types

FIELDS = [
    ("order_id", 25), ("amount", types.NUMERIC_OID), ("Placed At", 1184), ("doc", 3802),
    ("tags", 1009), ("owner", types.OID_OID), ("blob", 17),
]  # fmt: skip


def test_the_server_sends_numerics_as_wide_decimals_and_unknown_types_as_text() -> None:
    wide = (
        'CASE WHEN abs("amount") >= 1e28 THEN CAST(\'column amount: NaN, an infinity or 28 '
        "digits or more before the point, which DuckDB''s widest decimal cannot hold' || "
        '\': \' || "amount" AS numeric) ELSE CAST("amount" AS numeric(38, 10)) END'
    )
    assert types.read_columns(FIELDS) == (
        f'"order_id", {wide} AS "amount", "Placed At", '
        'CAST("doc" AS text) AS "doc", CAST("tags" AS text) AS "tags", '
        'CAST("owner" AS bigint) AS "owner", "blob"'
    )


def test_duckdb_reads_the_attached_databases_query_and_turns_json_back_into_json() -> None:
    reader = types.postgres_reader("dpo_source", "SELECT 'it''s' AS q", FIELDS)
    assert reader.startswith('SELECT "order_id", "amount", "Placed At", CAST("doc" AS JSON) AS')
    assert reader.endswith("FROM postgres_query('dpo_source', 'SELECT ''it''''s'' AS q')")
