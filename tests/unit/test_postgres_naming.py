"""PostgreSQL names of a product's objects: 63-byte limit, hash suffix, no collisions, ASCII only
(stores/postgres/naming.py)."""

from __future__ import annotations

import itertools
import re

import pytest

from dataproduct_operator.stores.postgres import naming

IDENTIFIER = re.compile(r"^[a-z0-9_]{1,63}$")


def test_short_unambiguous_names_stay_readable() -> None:
    assert naming.schema_name("sales", "orders") == "sales__orders"
    assert naming.schema_name("sales-eu", "daily-orders") == "sales_eu__daily_orders"
    assert naming.table_name("orders-v1") == "orders_v1"
    assert naming.owner_role("sales__orders") == "dm_sales__orders_owner"
    assert naming.writer_role("sales__orders") == "dm_sales__orders_writer"
    assert naming.read_role("sales__orders", "orders_v1") == "dm_sales__orders__orders_v1_read"
    assert naming.service_account_role("finance", "reporting") == "dm_sa_finance__reporting"
    assert naming.group_role("finance-analysts") == "dm_group_finance_analysts"
    assert naming.user_role("ana") == "dm_user_ana"


def test_dash_placement_cannot_make_two_products_share_a_schema() -> None:
    assert naming.schema_name("sales-eu", "orders") != naming.schema_name("sales", "eu-orders")
    assert naming.schema_name("sales-eu", "orders") == "sales_eu__orders"
    assert naming.schema_name("sales", "eu-orders") == "sales__eu_orders"


def test_double_dash_is_hashed_because_underscores_would_be_ambiguous() -> None:
    # "a--b"/"c" and "a"/"b--c" would both read a__b__c.
    left, right = naming.schema_name("a--b", "c"), naming.schema_name("a", "b--c")
    assert left != right
    assert re.search(r"_[0-9a-f]{10}$", left) and re.search(r"_[0-9a-f]{10}$", right)
    assert naming.table_name("a--b") != naming.table_name("a-b")
    assert naming.table_name("a--b") == naming.identifier("a__b", "a--b", ambiguous=True)


def test_long_names_are_cut_to_63_bytes_with_a_hash_of_the_full_identity() -> None:
    namespace, product = "n" * 63, "p" * 63
    schema = naming.schema_name(namespace, product)
    assert len(schema.encode()) == 63
    assert schema.endswith("_" + naming.short_hash(f"{namespace}/{product}"))
    # Same 52-byte prefix, another product: another name.
    assert naming.schema_name(namespace, "p" * 62 + "q") != schema
    for role in (naming.owner_role(schema), naming.writer_role(schema),
                 naming.read_role(schema, naming.table_name("x" * 63))):  # fmt: skip
        assert IDENTIFIER.match(role), role


def test_a_name_that_looks_hashed_is_hashed_so_no_readable_name_equals_a_hashed_one() -> None:
    # A product named like another's hashed schema cannot take that schema.
    victim = naming.schema_name("a--b", "c")
    suffix = victim.rsplit("_", 1)[1]
    impostor = naming.schema_name("a", f"b-c-{suffix}")
    assert impostor != victim
    assert naming.identifier(f"x_{suffix}", "x") != f"x_{suffix}"


def test_service_account_logins_never_collide_with_a_product_owner_or_writer() -> None:
    # dm_sa_x__y_owner is also the owner role of product y in namespace sa-x.
    owner = naming.owner_role(naming.schema_name("sa-x", "y"))
    assert owner == "dm_sa_x__y_owner"
    assert naming.service_account_role("x", "y-owner") != owner
    writer = naming.writer_role(naming.schema_name("sa-x", "y"))
    assert naming.service_account_role("x", "y-writer") != writer


def test_group_and_user_names_outside_identifier_characters_are_hashed_and_ascii() -> None:
    names = ["Finance Analysts", "finance_analysts", "ana@example.com", "Ana@Example.com",
             "ölçü", "名前", "a" * 300, "a.b", "a_b", "a-b"]  # fmt: skip
    roles = [naming.group_role(name) for name in names] + [naming.user_role(n) for n in names]
    assert len(set(roles)) == len(roles)
    for role in roles:
        assert IDENTIFIER.match(role), role
        assert role.isascii()


def test_every_role_kind_is_distinct_for_many_generated_names() -> None:
    words = ["a", "b", "sa", "group", "user", "a-b", "a--b", "owner", "x-owner", "read", "b-read"]
    produced: dict[str, tuple[str, ...]] = {}
    for namespace, name in itertools.product(words, repeat=2):
        schema = naming.schema_name(namespace, name)
        candidates = {
            ("owner", namespace, name): naming.owner_role(schema),
            ("writer", namespace, name): naming.writer_role(schema),
            ("sa", namespace, name): naming.service_account_role(namespace, name),
            ("read", namespace, name): naming.read_role(schema, naming.table_name(name)),
            ("group", name, ""): naming.group_role(name),
            ("user", name, ""): naming.user_role(name),
        }
        for identity, role in candidates.items():
            assert IDENTIFIER.match(role), role
            assert produced.setdefault(role, identity) == identity, (role, identity)


@pytest.mark.parametrize(("table", "column"), [("orders_v1", "order_id"), ("t", "Ölçü Spaß")])
def test_unique_constraint_names_fit_and_are_ascii(table: str, column: str) -> None:
    name = naming.unique_constraint_name(table, column)
    assert IDENTIFIER.match(name)
    assert name != naming.unique_constraint_name(table, column + "x")
