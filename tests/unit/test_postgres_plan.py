"""The diff of a product's desired and observed state in PostgreSQL: the minimal ordered
statement list, the full ACL the operator owns, columns kept or dropped, refusals, conflicts,
deletion (stores/postgres/plan.py, state.py, observe.py).

The observed states are written out by hand, as the catalog query returns them for the product
below, so the tests do not derive them from the code under test.
"""

# ruff: noqa: S608 (the expected statements are SQL text built from constants)
from __future__ import annotations

from dataclasses import replace

import pytest

from dataproduct_operator.api.dataproduct import DeletionPolicy, ReaderKind
from dataproduct_operator.stores.driver import (
    ColumnSpec,
    ConfirmedDeletions,
    LoginPassword,
    OwnershipConflictError,
    PortSpec,
    ProductRef,
    ReaderRef,
)
from dataproduct_operator.stores.postgres import markers, naming, observe
from dataproduct_operator.stores.postgres.plan import (
    Plan,
    missing_logins,
    plan_delete,
    plan_ensure,
    plan_memberships,
    plan_retain,
)
from dataproduct_operator.stores.postgres.state import (
    AclEntry,
    ObservedColumn,
    ObservedDefaultAcl,
    ObservedProduct,
    ObservedRole,
    ObservedSchema,
    ObservedTable,
    ObservedUnique,
    build_desired,
)

PRODUCT = ProductRef("sales", "orders", "uid-1")
PORT = PortSpec("orders-v1", (
    ColumnSpec("order_id", "string", required=True, unique=True),
    ColumnSpec("amount", "integer"),
))  # fmt: skip
READERS = (ReaderRef(ReaderKind.SERVICE_ACCOUNT, "reporting", "finance"),
           ReaderRef(ReaderKind.GROUP, "finance-analysts"))  # fmt: skip
ADMIN = "dpadmin"
SCHEMA, TABLE = "sales__orders", "orders_v1"
OWNER, WRITER = "dm_sales__orders_owner", "dm_sales__orders_writer"
READ = "dm_sales__orders__orders_v1_read"
SA, GROUP = "dm_sa_finance__reporting", "dm_group_finance_analysts"
UNIQUE = naming.unique_constraint_name("orders_v1", "order_id")
SAME_PASSWORD = LoginPassword("pw", changed=False)
SCHEMA_MARKER = (
    '{"deletionPolicy":"Retain","managedBy":"dataproduct-operator","namespace":"sales",'
    '"product":"orders","uid":"uid-1"}'
)


def role_marker(kind: str, port: str | None = None) -> str:
    port_field = f'"port":"{port}",' if port else ""
    return f'{{"managedBy":"dataproduct-operator",{port_field}"role":"{kind}","schema":"{SCHEMA}"}}'


def writer_table_acl(grantee: str = WRITER) -> tuple[AclEntry, ...]:
    return tuple(AclEntry(grantee, p) for p in ("INSERT", "SELECT", "UPDATE", "DELETE", "TRUNCATE"))


def converged() -> ObservedProduct:
    """The product as ensure_ports leaves it."""
    sa_marker = markers.reader_marker("serviceAccount", "reporting", "finance")
    return ObservedProduct(
        current_user=ADMIN,
        server_version_num=150018,
        schema=ObservedSchema(
            SCHEMA,
            OWNER,
            SCHEMA_MARKER,
            (
                AclEntry(OWNER, "USAGE"),
                AclEntry(OWNER, "CREATE"),
                AclEntry(READ, "USAGE"),
                AclEntry(WRITER, "USAGE"),
            ),
        ),
        tables=(
            ObservedTable(
                TABLE,
                OWNER,
                acl=(AclEntry(OWNER, "SELECT"), AclEntry(READ, "SELECT"), *writer_table_acl()),
                columns=(
                    ObservedColumn("order_id", "text", True),
                    ObservedColumn("amount", "bigint", False),
                ),
                uniques=(ObservedUnique(UNIQUE, ("order_id",)),),
            ),
        ),
        default_acls=(ObservedDefaultAcl(OWNER, "r", writer_table_acl()),),
        roles=(
            ObservedRole(
                OWNER, comment=role_marker("owner"), members=frozenset({ADMIN}), usable=True
            ),
            ObservedRole(WRITER, can_login=True, comment=role_marker("writer")),
            ObservedRole(
                READ, comment=role_marker("read", "orders-v1"), members=frozenset({SA, GROUP})
            ),
            ObservedRole(SA, can_login=True, comment=sa_marker),
            ObservedRole(GROUP),  # made by a DBA: no marker, used as it is
        ),
    )


NOTHING = ConfirmedDeletions()


def ensure(
    observed: ObservedProduct,
    *,
    ports: tuple[PortSpec, ...] = (PORT,),
    readers: tuple[ReaderRef, ...] = READERS,
    password: LoginPassword = SAME_PASSWORD,
    confirmed: ConfirmedDeletions = NOTHING,
    product: ProductRef = PRODUCT,
) -> Plan:
    desired = build_desired(product, ports, readers)
    return plan_ensure(desired, observed, writer_password=password, confirmed=confirmed)


def rendered(plan: Plan) -> list[str]:
    return [statement.render() for statement in plan.statements]


def with_table(observed: ObservedProduct, **changes: object) -> ObservedProduct:
    return replace(observed, tables=(replace(observed.tables[0], **changes),))  # type: ignore[arg-type]


def with_role(observed: ObservedProduct, name: str, **changes: object) -> ObservedProduct:
    roles = tuple(replace(r, **changes) if r.name == name else r for r in observed.roles)  # type: ignore[arg-type]
    return replace(observed, roles=roles)


def test_a_converged_product_yields_no_statement() -> None:
    plan = ensure(converged())
    assert rendered(plan) == []
    assert plan.kept_columns == [] and plan.refused == [] and plan.placed == [TABLE]


def test_a_new_product_is_created_in_order_roles_schema_table_grants() -> None:
    plan = ensure(ObservedProduct(current_user=ADMIN, server_version_num=150018),
                  password=LoginPassword("pw", changed=True))  # fmt: skip
    statements = rendered(plan)
    creates = [s for s in statements if s.startswith("CREATE ROLE")]
    assert [s.split('"')[1] for s in creates] == [OWNER, WRITER, READ, SA, GROUP]
    assert f'CREATE ROLE "{OWNER}" NOLOGIN' in statements
    assert f'GRANT "{OWNER}" TO CURRENT_USER' in statements
    assert any(s.startswith(f'CREATE ROLE "{WRITER}" LOGIN PASSWORD \'SCRAM-SHA-256$4096:')
               for s in statements)  # fmt: skip
    assert f'CREATE SCHEMA "{SCHEMA}" AUTHORIZATION "{OWNER}"' in statements
    assert (f'CREATE TABLE "{SCHEMA}"."{TABLE}" ("order_id" text NOT NULL, "amount" bigint, '
            f'CONSTRAINT "{UNIQUE}" UNIQUE ("order_id"))') in statements  # fmt: skip
    assert f'GRANT SELECT ON TABLE "{SCHEMA}"."{TABLE}" TO "{READ}"' in statements
    assert (f'GRANT DELETE, INSERT, SELECT, TRUNCATE, UPDATE ON TABLE "{SCHEMA}"."{TABLE}" '
            f'TO "{WRITER}"') in statements  # fmt: skip
    assert f'GRANT USAGE ON SCHEMA "{SCHEMA}" TO "{READ}"' in statements
    assert (f'ALTER DEFAULT PRIVILEGES FOR ROLE "{OWNER}" IN SCHEMA "{SCHEMA}" GRANT DELETE, '
            f'INSERT, SELECT, TRUNCATE, UPDATE ON TABLES TO "{WRITER}"') in statements  # fmt: skip
    assert f'GRANT "{READ}" TO "{GROUP}"' in statements
    assert f'GRANT "{READ}" TO "{SA}"' in statements
    # The order the statements depend on.
    order = [statements.index(s) for s in (
        f'CREATE ROLE "{OWNER}" NOLOGIN', f'GRANT "{OWNER}" TO CURRENT_USER',
        f'CREATE SCHEMA "{SCHEMA}" AUTHORIZATION "{OWNER}"',
        f'ALTER TABLE "{SCHEMA}"."{TABLE}" OWNER TO "{OWNER}"',
        f'GRANT SELECT ON TABLE "{SCHEMA}"."{TABLE}" TO "{READ}"')]  # fmt: skip
    assert order == sorted(order)
    # Readers get no default privileges: a later table belongs to no port yet.
    assert not [s for s in statements if "DEFAULT PRIVILEGES" in s and READ in s]


def test_hand_made_grants_to_anyone_are_revoked() -> None:
    observed = converged()
    observed = replace(observed, schema=replace(observed.schema, acl=(  # type: ignore[arg-type]
        *observed.schema.acl, AclEntry("mallory", "CREATE"), AclEntry("PUBLIC", "USAGE"),  # type: ignore[union-attr]
        AclEntry(READ, "CREATE"))))  # fmt: skip
    table = observed.tables[0]
    extra = (
        AclEntry("mallory", "SELECT"),
        AclEntry(READ, "INSERT"),
        AclEntry(WRITER, "REFERENCES"),
    )
    observed = with_table(observed, acl=(*table.acl, *extra))
    observed = with_table(observed, columns=(
        replace(observed.tables[0].columns[0], acl=(AclEntry("eve", "SELECT"),)),
        observed.tables[0].columns[1]))  # fmt: skip
    observed = replace(observed, default_acls=(ObservedDefaultAcl(OWNER, "r", (
        *writer_table_acl(), AclEntry("mallory", "SELECT"))),))  # fmt: skip
    observed = with_role(observed, READ, members=frozenset({SA, GROUP, "mallory", ADMIN}))
    observed = with_role(observed, OWNER, members=frozenset({ADMIN, "mallory"}))
    statements = rendered(ensure(observed))
    assert sorted(statements) == sorted([
        f'REVOKE CREATE ON SCHEMA "{SCHEMA}" FROM "{READ}" CASCADE',
        f'REVOKE USAGE ON SCHEMA "{SCHEMA}" FROM PUBLIC CASCADE',
        f'REVOKE CREATE ON SCHEMA "{SCHEMA}" FROM "mallory" CASCADE',
        f'REVOKE INSERT ON TABLE "{SCHEMA}"."{TABLE}" FROM "{READ}" CASCADE',
        f'REVOKE REFERENCES ON TABLE "{SCHEMA}"."{TABLE}" FROM "{WRITER}" CASCADE',
        f'REVOKE SELECT ON TABLE "{SCHEMA}"."{TABLE}" FROM "mallory" CASCADE',
        f'REVOKE SELECT ("order_id") ON TABLE "{SCHEMA}"."{TABLE}" FROM "eve" CASCADE',
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{OWNER}" IN SCHEMA "{SCHEMA}" REVOKE SELECT ON '
        'TABLES FROM "mallory" CASCADE',
        f'REVOKE "{READ}" FROM "mallory" CASCADE',
        f'REVOKE "{OWNER}" FROM "mallory" CASCADE',
    ])  # fmt: skip


def test_a_grant_with_grant_option_is_revoked_and_granted_again_plainly() -> None:
    observed = converged()
    table = observed.tables[0]
    acl = tuple(AclEntry(e.grantee, e.privilege, e.grantee == READ) for e in table.acl)
    statements = rendered(ensure(with_table(observed, acl=acl)))
    assert statements == [
        f'REVOKE SELECT ON TABLE "{SCHEMA}"."{TABLE}" FROM "{READ}" CASCADE',
        f'GRANT SELECT ON TABLE "{SCHEMA}"."{TABLE}" TO "{READ}"',
    ]


def test_a_removed_reader_loses_membership_and_a_new_one_gains_it() -> None:
    readers = (ReaderRef(ReaderKind.USER, "ana"),)
    observed = replace(converged(), roles=(*converged().roles, ObservedRole("dm_user_ana")))
    assert rendered(ensure(observed, readers=readers)) == [
        f'REVOKE "{READ}" FROM "{GROUP}" CASCADE',
        f'REVOKE "{READ}" FROM "{SA}" CASCADE',
        f'GRANT "{READ}" TO "dm_user_ana"',
    ]


def test_a_missing_reader_role_is_made_with_its_marker() -> None:
    readers = (*READERS, ReaderRef(ReaderKind.USER, "ana"))
    statements = rendered(ensure(converged(), readers=readers))
    assert statements[:2] == [
        'CREATE ROLE "dm_user_ana" NOLOGIN',
        'COMMENT ON ROLE "dm_user_ana" IS '
        '\'{"managedBy":"dataproduct-operator","name":"ana","role":"user"}\'',
    ]
    assert statements[2:] == [f'GRANT "{READ}" TO "dm_user_ana"']


def test_a_service_accounts_login_gone_or_unable_to_log_in_is_reported_missing() -> None:
    desired = build_desired(PRODUCT, (PORT,), READERS)
    assert missing_logins(desired, converged()) == ()
    sa = READERS[0]
    assert missing_logins(desired, with_role(converged(), SA, can_login=False)) == (sa,)
    gone = replace(converged(), roles=tuple(r for r in converged().roles if r.name != SA))
    assert missing_logins(desired, gone) == (sa,)
    # a Group's role has no login of its own: never reported
    assert missing_logins(desired, with_role(converged(), GROUP, can_login=False)) == ()


def test_roles_changed_by_hand_are_set_back() -> None:
    observed = with_role(converged(), OWNER, can_login=True, create_db=True)
    observed = with_role(observed, WRITER, create_role=True)
    assert rendered(ensure(observed)) == [
        f'ALTER ROLE "{OWNER}" NOLOGIN',
        f'ALTER ROLE "{OWNER}" NOCREATEROLE NOCREATEDB',
        f'ALTER ROLE "{WRITER}" NOCREATEROLE NOCREATEDB',
    ]


def test_a_changed_writer_password_is_sent_as_a_verifier() -> None:
    plan = ensure(converged(), password=LoginPassword("new-password", changed=True))
    assert len(plan.statements) == 1
    statement = plan.statements[0]
    assert statement.sensitive
    assert statement.render().startswith(f'ALTER ROLE "{WRITER}" LOGIN PASSWORD \'SCRAM-SHA-256$')
    assert "new-password" not in statement.render()


def test_a_column_added_to_the_spec_is_added_its_constraints_checked_against_the_rows() -> None:
    port = replace(PORT, columns=(*PORT.columns, ColumnSpec("email", "string", True, True)))
    plan = ensure(converged(), ports=(port,))
    email_key = naming.unique_constraint_name(TABLE, "email")
    assert rendered(plan) == [
        f'ALTER TABLE "{SCHEMA}"."{TABLE}" ADD COLUMN "email" text',
        f'ALTER TABLE "{SCHEMA}"."{TABLE}" ALTER COLUMN "email" SET NOT NULL',
        f'ALTER TABLE "{SCHEMA}"."{TABLE}" ADD CONSTRAINT "{email_key}" UNIQUE ("email")',
    ]
    assert [s.subject for s in plan.data_dependent] == ["orders-v1.email"] * 2


def test_a_removed_column_is_kept_reported_and_made_nullable() -> None:
    port = replace(PORT, columns=(PORT.columns[1],))
    plan = ensure(converged(), ports=(port,))
    assert [(k.port, k.column, k.sql_type) for k in plan.kept_columns] == [
        ("orders-v1", "order_id", "text")
    ]
    assert rendered(plan) == [
        f'ALTER TABLE "{SCHEMA}"."{TABLE}" ALTER COLUMN "order_id" DROP NOT NULL'
    ]


def test_a_removed_column_named_in_the_confirmation_is_dropped() -> None:
    port = replace(PORT, columns=(PORT.columns[1],))
    confirmed = ConfirmedDeletions.parse("orders-v1.order_id")
    plan = ensure(converged(), ports=(port,), confirmed=confirmed)
    assert plan.kept_columns == []
    assert rendered(plan) == [f'ALTER TABLE "{SCHEMA}"."{TABLE}" DROP COLUMN "order_id"']
    # Another port's confirmation does not count.
    other = ensure(converged(), ports=(port,), confirmed=ConfirmedDeletions.parse("x.order_id"))
    assert [k.column for k in other.kept_columns] == ["order_id"]


def test_a_castable_type_change_is_applied_and_a_risky_one_refused() -> None:
    port = replace(PORT, columns=(
        ColumnSpec("order_id", "integer", required=True, unique=True),  # text → bigint: refused
        ColumnSpec("amount", "decimal")))  # bigint → numeric: applied  # fmt: skip
    plan = ensure(converged(), ports=(port,))
    assert rendered(plan) == [
        f'ALTER TABLE "{SCHEMA}"."{TABLE}" ALTER COLUMN "amount" TYPE numeric '
        'USING "amount"::numeric'
    ]
    assert [(r.port, r.column) for r in plan.refused] == [("orders-v1", "order_id")]
    assert "text to bigint" in plan.refused[0].message


def test_required_and_unique_follow_the_spec_both_ways() -> None:
    port = replace(PORT, columns=(ColumnSpec("order_id", "string"),
                                  ColumnSpec("amount", "integer", required=True)))  # fmt: skip
    assert rendered(ensure(converged(), ports=(port,))) == [
        f'ALTER TABLE "{SCHEMA}"."{TABLE}" ALTER COLUMN "order_id" DROP NOT NULL',
        f'ALTER TABLE "{SCHEMA}"."{TABLE}" DROP CONSTRAINT IF EXISTS "{UNIQUE}"',
        f'ALTER TABLE "{SCHEMA}"."{TABLE}" ALTER COLUMN "amount" SET NOT NULL',
    ]


def test_an_unknown_type_refuses_the_port_and_creates_no_table() -> None:
    bad = PortSpec("events", (ColumnSpec("at", "datetime"),))
    plan = ensure(converged(), ports=(PORT, bad))
    assert [(r.port, r.column) for r in plan.refused] == [("events", "at")]
    assert "datetime" in plan.refused[0].message
    assert plan.placed == [TABLE]
    assert not [s for s in rendered(plan) if "CREATE TABLE" in s or '"events"' in s]


def test_long_and_duplicate_column_names_are_refused() -> None:
    port = PortSpec("events", (ColumnSpec("c" * 64, "string"), ColumnSpec("a", "string"),
                               ColumnSpec("a", "bool")))  # fmt: skip
    plan = ensure(converged(), ports=(PORT, port))
    assert sorted(r.message.split(" ")[-1] for r in plan.refused) == ["it", "one"]


def test_a_removed_port_keeps_its_table_without_grants_and_loses_its_read_role() -> None:
    other = PortSpec("orders-v2", (ColumnSpec("id", "string"),))
    plan = ensure(converged(), ports=(other,))
    statements = rendered(plan)
    assert plan.kept_tables == [TABLE]
    assert f'REVOKE SELECT ON TABLE "{SCHEMA}"."{TABLE}" FROM "{READ}" CASCADE' in statements
    assert (f'REVOKE DELETE, INSERT, SELECT, TRUNCATE, UPDATE ON TABLE "{SCHEMA}"."{TABLE}" '
            f'FROM "{WRITER}" CASCADE') in statements  # fmt: skip
    assert f'REVOKE USAGE ON SCHEMA "{SCHEMA}" FROM "{READ}" CASCADE' in statements
    assert statements.index(f'DROP ROLE IF EXISTS "{READ}"') > statements.index(
        f'REVOKE SELECT ON TABLE "{SCHEMA}"."{TABLE}" FROM "{READ}" CASCADE'
    )
    assert not [s for s in statements if s.startswith("DROP TABLE")]


def test_a_removed_port_named_in_the_confirmation_loses_its_table() -> None:
    other = PortSpec("orders-v2", (ColumnSpec("id", "string"),))
    plan = ensure(converged(), ports=(other,), confirmed=ConfirmedDeletions.parse("orders-v1"))
    assert f'DROP TABLE IF EXISTS "{SCHEMA}"."{TABLE}"' in rendered(plan)
    assert plan.kept_tables == []


@pytest.mark.parametrize(
    ("comment", "message"),
    [(None, "was not made by the operator"), ("made by a DBA", "was not made by the operator"),
     (SCHEMA_MARKER.replace('"orders"', '"invoices"'), "belongs to product sales/invoices")],
)  # fmt: skip
def test_a_schema_not_marked_for_this_product_is_a_conflict(
    comment: str | None, message: str
) -> None:
    observed = replace(converged(), schema=replace(converged().schema, comment=comment))  # type: ignore[arg-type]
    with pytest.raises(OwnershipConflictError, match=message):
        ensure(observed)


def test_a_product_role_not_made_for_this_schema_is_a_conflict() -> None:
    with pytest.raises(OwnershipConflictError, match=WRITER):
        ensure(with_role(converged(), WRITER, comment=None))
    with pytest.raises(OwnershipConflictError, match=SA):
        ensure(with_role(converged(), SA, comment=None))


def test_a_product_created_again_adopts_its_schema() -> None:
    plan = ensure(converged(), product=replace(PRODUCT, uid="uid-2"))
    assert plan.adopted
    assert rendered(plan) == [
        f"COMMENT ON SCHEMA \"{SCHEMA}\" IS '{SCHEMA_MARKER.replace('uid-1', 'uid-2')}'"
    ]


def test_retain_deletion_revokes_everything_and_disables_the_writer() -> None:
    desired = build_desired(PRODUCT, (), ())
    plan = plan_retain(desired, converged())
    statements = rendered(plan)
    assert statements[0] == f'ALTER ROLE "{WRITER}" NOLOGIN'
    assert plan.logins_disabled == [WRITER]
    assert f'REVOKE USAGE ON SCHEMA "{SCHEMA}" FROM "{READ}" CASCADE' in statements
    assert f'REVOKE "{READ}" FROM "{SA}" CASCADE' in statements
    assert (
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{OWNER}" IN SCHEMA "{SCHEMA}" REVOKE DELETE, '
        f'INSERT, SELECT, TRUNCATE, UPDATE ON TABLES FROM "{WRITER}" CASCADE'
    ) in statements
    assert not [s for s in statements if s.startswith("DROP")]
    assert not [s for s in statements if ADMIN in s]


def test_delete_deletion_drops_the_schema_then_the_product_roles_only() -> None:
    desired = build_desired(replace(PRODUCT, deletion_policy=DeletionPolicy.DELETE), (), ())
    plan = plan_delete(desired, converged())
    assert plan.schema_dropped
    assert rendered(plan) == [
        f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE',
        f'DROP ROLE IF EXISTS "{READ}"',
        f'DROP ROLE IF EXISTS "{WRITER}"',
        f'DROP ROLE IF EXISTS "{OWNER}"',
    ]


def test_deletion_leaves_a_schema_of_another_product_alone() -> None:
    observed = replace(converged(), schema=replace(
        converged().schema, comment=SCHEMA_MARKER.replace('"orders"', '"other"')))  # type: ignore[arg-type]  # fmt: skip
    desired = build_desired(PRODUCT, (), ())
    assert plan_delete(desired, observed).statements == []
    assert plan_retain(desired, observed).statements == []


def test_grant_and_revoke_touch_memberships_only() -> None:
    desired = build_desired(PRODUCT, (PortSpec("orders-v1"),), (ReaderRef(ReaderKind.USER, "ana"),))
    observed = replace(converged(), roles=(*converged().roles,
                                           ObservedRole("dm_user_ana", comment=None)))  # fmt: skip
    plan, grants = plan_memberships(desired, observed, grant=True)
    assert rendered(plan) == [f'GRANT "{READ}" TO "dm_user_ana"']
    assert [g.role for g in grants] == [READ]
    desired = build_desired(PRODUCT, (PortSpec("orders-v1"),), READERS)
    plan, _ = plan_memberships(desired, converged(), grant=False)
    assert sorted(rendered(plan)) == [f'REVOKE "{READ}" FROM "{GROUP}" CASCADE',
                                      f'REVOKE "{READ}" FROM "{SA}" CASCADE']  # fmt: skip


def test_the_catalog_document_parses_into_the_observed_state() -> None:
    document = {
        "currentUser": ADMIN, "serverVersionNum": 150018, "serverVersion": "15.18",
        "schema": {"name": SCHEMA, "owner": OWNER, "comment": SCHEMA_MARKER,
                   "acl": [{"grantee": "PUBLIC", "privilege": "USAGE", "grantable": False}]},
        "tables": [{"name": TABLE, "owner": OWNER, "acl": [], "rowsEstimate": -1, "sizeBytes": None,
                    "columns": [{"name": "a", "type": "text", "notNull": True, "acl": []}],
                    "uniques": [{"name": "k", "columns": ["a"]}]}],
        "defaultAcls": [], "roles": [{"name": READ, "canLogin": False, "createRole": False,
                                      "createDb": False, "comment": None, "usable": False,
                                      "members": [SA, SA]}],
    }  # fmt: skip
    observed = observe.parse_product(document)
    assert observed.schema is not None and observed.schema.acl == (AclEntry("PUBLIC", "USAGE"),)
    assert observed.tables[0].unique_constraints_of("a") == ("k",)
    assert observed.tables[0].rows_estimate == -1
    assert observed.roles[0].members == frozenset({SA})


def test_managed_schemas_are_read_from_their_markers() -> None:
    found = observe.parse_managed_schema(SCHEMA, SCHEMA_MARKER.replace("Retain", "Delete"))
    assert found is not None
    assert (found.namespace, found.product, found.uid, found.deletion_policy) == (
        "sales", "orders", "uid-1", DeletionPolicy.DELETE)  # fmt: skip
    assert observe.parse_managed_schema(SCHEMA, "a DBA's comment") is None
    edited = observe.parse_managed_schema(SCHEMA, SCHEMA_MARKER.replace("Retain", "Drop"))
    assert edited is not None and edited.deletion_policy == DeletionPolicy.RETAIN


def test_a_table_someone_else_made_in_the_schema_is_kept_and_left_alone() -> None:
    foreign = ObservedTable("scratch", "postgres", acl=(AclEntry("mallory", "SELECT"),))
    observed = replace(converged(), tables=(*converged().tables, foreign))
    plan = ensure(observed)
    assert plan.kept_tables == ["scratch"]
    assert rendered(plan) == []
