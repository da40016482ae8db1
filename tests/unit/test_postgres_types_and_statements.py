"""Logical types and cast rules, quoting of names and literals, SCRAM verifiers and the
confirm-data-deletion syntax (stores/postgres/types.py, statements.py, scram.py; stores/driver.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from psycopg import sql as psycopg_sql

from dataproduct_operator.stores.driver import ConfirmedDeletions
from dataproduct_operator.stores.postgres import scram, types
from dataproduct_operator.stores.postgres import statements as sql
from dataproduct_operator.stores.postgres.store import _compose, _safe_message


@pytest.mark.parametrize(
    ("logical", "expected"),
    [("string", "text"), ("integer", "bigint"), ("long", "bigint"), ("int", "bigint"),
     ("number", "double precision"), ("double", "double precision"), ("decimal", "numeric"),
     ("boolean", "boolean"), ("bool", "boolean"), ("date", "date"),
     ("timestamp", "timestamp with time zone"), ("time", "time without time zone"),
     ("bytes", "bytea"), ("binary", "bytea"), ("object", "jsonb"), ("json", "jsonb"),
     ("array", "jsonb"), ("uuid", "uuid"), (" String ", "text")],
)  # fmt: skip
def test_logical_types_map_to_the_documented_sql_types(logical: str, expected: str) -> None:
    assert types.sql_type(logical) == expected


def test_an_unknown_type_is_refused_with_the_list_of_known_ones() -> None:
    with pytest.raises(types.UnknownTypeError) as refusal:
        types.sql_type("varchar(10)")
    assert "'varchar(10)'" in str(refusal.value)
    assert "string" in str(refusal.value) and "uuid" in str(refusal.value)


@pytest.mark.parametrize(
    ("current", "wanted"),
    [("bigint", "numeric"), ("integer", "bigint"), ("smallint", "bigint"), ("integer", "numeric"),
     ("real", "double precision"), ("date", "timestamp with time zone"),
     ("bigint", "text"), ("jsonb", "text"), ("uuid", "text"), ("character varying(20)", "text")],
)  # fmt: skip
def test_widening_and_anything_to_text_are_applied(current: str, wanted: str) -> None:
    cast = types.cast_for(current, wanted)
    assert cast.allowed and cast.using is not None and "{}" in cast.using


@pytest.mark.parametrize(
    ("current", "wanted"),
    [("text", "bigint"), ("text", "uuid"), ("text", "jsonb"), ("bigint", "double precision"),
     ("numeric", "bigint"), ("double precision", "numeric"), ("timestamp with time zone", "date"),
     ("boolean", "bigint")],
)  # fmt: skip
def test_changes_that_can_fail_or_lose_data_are_refused_saying_what_to_do(
    current: str, wanted: str
) -> None:
    cast = types.cast_for(current, wanted)
    assert not cast.allowed
    assert f"{current} to {wanted}" in cast.reason
    assert "add a new column" in cast.reason and "by hand" in cast.reason


HOSTILE = ['a"; DROP TABLE x; --', 'quote"quote', "it's", "back\\slash", "Ünïcode", "{}", "%s"]


@pytest.mark.parametrize("name", HOSTILE)
def test_identifiers_are_quoted_as_psycopg_quotes_them(name: str) -> None:
    statement = sql.grant_on("table", sql.Ident.of("schema", name), ["SELECT"], name)
    ours = statement.render()
    theirs = _compose(statement).as_string(None)
    assert ours == theirs
    assert ours.count('"') % 2 == 0
    assert f'"{name.replace(chr(34), chr(34) * 2)}"' in ours


@pytest.mark.parametrize("value", HOSTILE)
def test_literals_double_their_quotes_and_stay_one_literal(value: str) -> None:
    rendered = sql.comment_on_schema("s", value).render()
    assert rendered == f"COMMENT ON SCHEMA \"s\" IS '{value.replace(chr(39), chr(39) * 2)}'"


def test_nul_characters_and_unknown_privileges_are_refused() -> None:
    with pytest.raises(ValueError, match="identifier"):
        sql.quote_ident("a\x00b")
    with pytest.raises(ValueError, match="NUL"):
        sql.quote_literal("a\x00b")
    with pytest.raises(ValueError, match="not privileges"):
        sql.privileges(["SELECT; DROP"])


def test_a_statement_with_a_verifier_never_renders_it_in_messages() -> None:
    statement = sql.alter_role_login("dm_x", verifier=scram.verifier("secret"))
    assert statement.sensitive
    assert "SCRAM" not in str(statement) and "SCRAM" not in repr(statement.parts[1])


def test_create_table_names_each_unique_constraint() -> None:
    statement = sql.create_table("s", "t", [
        sql.ColumnDefinition("id", "text", not_null=True, unique_constraint="t__id_key_0123456789"),
        sql.ColumnDefinition("n", "bigint", not_null=False, unique_constraint=None)])  # fmt: skip
    assert statement.render() == (
        'CREATE TABLE "s"."t" ("id" text NOT NULL, "n" bigint, '
        'CONSTRAINT "t__id_key_0123456789" UNIQUE ("id"))'
    )


# RFC 7677, section 3: user "user", password "pencil".
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_AUTH_MESSAGE = (
    b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
)
RFC_CLIENT_PROOF = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
RFC_SERVER_SIGNATURE = base64.b64decode("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


def test_scram_keys_reproduce_the_rfc_7677_exchange() -> None:
    stored_key, server_key = scram.keys("pencil", RFC_SALT)
    assert hmac.digest(server_key, RFC_AUTH_MESSAGE, "sha256") == RFC_SERVER_SIGNATURE
    client_signature = hmac.digest(stored_key, RFC_AUTH_MESSAGE, "sha256")
    client_key = bytes(a ^ b for a, b in zip(RFC_CLIENT_PROOF, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key


def test_scram_verifier_has_postgresql_format_and_a_fresh_salt() -> None:
    verifier = scram.verifier("pencil", salt=RFC_SALT)
    prefix, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    assert prefix == "SCRAM-SHA-256"
    assert iterations_salt == "4096:W22ZaJ0SNY7soEsUEjb6gQ=="
    stored, server = (base64.b64decode(key) for key in keys.split(":"))
    assert (stored, server) == scram.keys("pencil", RFC_SALT)
    assert scram.verifier("pencil") != scram.verifier("pencil")
    assert "pencil" not in scram.verifier("pencil")


def test_confirm_data_deletion_names_ports_and_port_columns() -> None:
    confirmed = ConfirmedDeletions.parse(" orders-v1 , orders-v2.email,orders-v2.a.b ,, ")
    assert confirmed.ports == {"orders-v1"}
    assert confirmed.columns == {("orders-v2", "email"), ("orders-v2", "a.b")}
    assert ConfirmedDeletions.parse(None) == ConfirmedDeletions()


def test_composed_statements_use_psycopg_identifiers_and_literals() -> None:
    composed = _compose(sql.comment_on_role("dm_x", "it's"))
    kinds = {type(part) for part in composed._obj}  # the composition's parts
    assert psycopg_sql.Identifier in kinds and psycopg_sql.Literal in kinds


def test_error_messages_never_carry_the_admin_password() -> None:
    error = Exception('connection to "db" failed: bad option "password=s3cr3t-Pw"')
    assert _safe_message(error, "s3cr3t-Pw") == (
        'connection to "db" failed: bad option "password=<password>"'
    )
