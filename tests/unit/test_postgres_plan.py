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
    ReaderScope,
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


def every_port(*readers: ReaderRef) -> tuple[ReaderScope, ...]:
    """Readers as the spec grants them: each on every port."""
    return tuple(ReaderScope(reader) for reader in readers)


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
    readers: tuple[ReaderScope, ...] = every_port(*READERS),
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
    readers = every_port(ReaderRef(ReaderKind.USER, "ana"))
    observed = replace(converged(), roles=(*converged().roles, ObservedRole("dm_user_ana")))
    assert rendered(ensure(observed, readers=readers)) == [
        f'REVOKE "{READ}" FROM "{GROUP}" CASCADE',
        f'REVOKE "{READ}" FROM "{SA}" CASCADE',
        f'GRANT "{READ}" TO "dm_user_ana"',
    ]


def test_a_missing_reader_role_is_made_with_its_marker() -> None:
    readers = every_port(*READERS, ReaderRef(ReaderKind.USER, "ana"))
    statements = rendered(ensure(converged(), readers=readers))
    assert statements[:2] == [
        'CREATE ROLE "dm_user_ana" NOLOGIN',
        'COMMENT ON ROLE "dm_user_ana" IS '
        '\'{"managedBy":"dataproduct-operator","name":"ana","role":"user"}\'',
    ]
    assert statements[2:] == [f'GRANT "{READ}" TO "dm_user_ana"']


def test_a_service_accounts_login_gone_or_unable_to_log_in_is_reported_missing() -> None:
    desired = build_desired(PRODUCT, (PORT,), every_port(*READERS))
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
    desired = build_desired(
        PRODUCT, (PortSpec("orders-v1"),), every_port(ReaderRef(ReaderKind.USER, "ana"))
    )
    observed = replace(converged(), roles=(*converged().roles,
                                           ObservedRole("dm_user_ana", comment=None)))  # fmt: skip
    plan, grants = plan_memberships(desired, observed, grant=True)
    assert rendered(plan) == [f'GRANT "{READ}" TO "dm_user_ana"']
    assert [g.role for g in grants] == [READ]
    desired = build_desired(PRODUCT, (PortSpec("orders-v1"),), every_port(*READERS))
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


# --- readers of some ports ----------------------------------------------------------------------

REFUNDS = PortSpec("refunds", (ColumnSpec("refund_id", "string"),))
REFUNDS_READ = "dm_sales__orders__refunds_read"
ANA, ANA_ROLE = ReaderRef(ReaderKind.USER, "ana"), "dm_user_ana"
BOTH_PORTS = (PORT, REFUNDS)


def with_refunds(
    orders_members: frozenset[str] = frozenset({SA, GROUP}),
    refunds_members: frozenset[str] = frozenset({SA, GROUP}),
    *,
    ana_role: bool = True,
) -> ObservedProduct:
    """The product as ensure_ports leaves it with a second port, ``refunds``, the two read roles
    holding the members given, and Ana's role made by a DBA (or not there)."""
    base = converged()
    assert base.schema is not None
    refunds = ObservedTable(
        "refunds",
        OWNER,
        acl=(AclEntry(OWNER, "SELECT"), AclEntry(REFUNDS_READ, "SELECT"), *writer_table_acl()),
        columns=(ObservedColumn("refund_id", "text", False),),
    )
    roles = [replace(r, members=orders_members) if r.name == READ else r for r in base.roles]
    roles.append(ObservedRole(REFUNDS_READ, comment=role_marker("read", "refunds"),
                              members=refunds_members))  # fmt: skip
    if ana_role:
        roles.append(ObservedRole(ANA_ROLE))  # a DBA's: no marker, used as it is
    schema = replace(base.schema, acl=(*base.schema.acl, AclEntry(REFUNDS_READ, "USAGE")))
    return replace(base, schema=schema, tables=(*base.tables, refunds), roles=tuple(roles))


def scoped(found: ObservedProduct, *readers: ReaderScope) -> list[str]:
    """The statements that converge ``found`` for both ports and these readers."""
    return rendered(ensure(found, ports=BOTH_PORTS, readers=readers))


def readers_of(port: str, *readers: ReaderScope) -> list[ReaderRef]:
    """The readers the desired state gives the port's read role."""
    desired = build_desired(PRODUCT, BOTH_PORTS, readers)
    return next([r for r, _ in table.readers] for table in desired.tables if table.port == port)


def only(reader: ReaderRef, *ports: str) -> ReaderScope:
    return ReaderScope(reader, frozenset(ports))


def test_each_port_has_the_readers_whose_scope_covers_it_and_each_reader_is_listed_once() -> None:
    readers = (*every_port(*READERS), only(ANA, "refunds"), only(READERS[0], "orders-v1"))
    assert readers_of("orders-v1", *readers) == list(READERS)
    assert readers_of("refunds", *readers) == [*READERS, ANA]
    desired = build_desired(PRODUCT, BOTH_PORTS, readers)
    assert [reader for reader, _ in desired.readers] == [*READERS, ANA]


def test_the_spec_readers_on_every_port_are_converged() -> None:
    assert scoped(with_refunds(), *every_port(*READERS)) == []


def test_a_reader_scoped_to_one_port_is_granted_that_ports_read_role_only() -> None:
    assert scoped(with_refunds(), *every_port(*READERS), only(ANA, "refunds")) == [
        f'GRANT "{REFUNDS_READ}" TO "{ANA_ROLE}"'
    ]
    assert scoped(with_refunds(ana_role=False), only(ANA, "orders-v1"), *every_port(*READERS)) == [
        f'CREATE ROLE "{ANA_ROLE}" NOLOGIN',
        f"COMMENT ON ROLE \"{ANA_ROLE}\" IS '{markers.reader_marker('user', 'ana')}'",
        f'GRANT "{READ}" TO "{ANA_ROLE}"',
    ]


def test_narrowing_a_scope_revokes_the_ports_left_out_and_keeps_the_others() -> None:
    members = frozenset({SA, GROUP, ANA_ROLE})
    found = with_refunds(members, members)
    assert scoped(found, *every_port(*READERS), only(ANA, "refunds")) == [
        f'REVOKE "{READ}" FROM "{ANA_ROLE}" CASCADE'
    ]
    # The spec's ServiceAccount narrowed to one port: revoked on the other only.
    assert scoped(with_refunds(), only(READERS[0], "orders-v1"), *every_port(READERS[1])) == [
        f'REVOKE "{REFUNDS_READ}" FROM "{SA}" CASCADE'
    ]


def test_widening_a_scope_grants_the_ports_added() -> None:
    found = with_refunds(refunds_members=frozenset({SA, GROUP, ANA_ROLE}))
    assert scoped(found, *every_port(*READERS, ANA)) == [f'GRANT "{READ}" TO "{ANA_ROLE}"']


def test_a_reader_with_one_port_by_request_and_every_port_by_the_spec_reads_every_port() -> None:
    readers = (only(ANA, "refunds"), *every_port(*READERS), ReaderScope(ANA))
    members = frozenset({SA, GROUP, ANA_ROLE})
    assert scoped(with_refunds(members, members), *readers) == []
    assert scoped(with_refunds(), *readers) == [
        f'GRANT "{READ}" TO "{ANA_ROLE}"',
        f'GRANT "{REFUNDS_READ}" TO "{ANA_ROLE}"',
    ]


def test_a_scope_naming_only_ports_the_product_lacks_grants_nothing_and_makes_no_role() -> None:
    readers = (*every_port(*READERS), only(ANA, "invoices"))
    assert readers_of("refunds", *readers) == list(READERS)
    desired = build_desired(PRODUCT, BOTH_PORTS, readers)
    assert [reader for reader, _ in desired.readers] == list(READERS)
    assert scoped(with_refunds(ana_role=False), *readers) == []  # no CREATE ROLE either
    # A port it lacks beside one it has: the one it has.
    assert scoped(with_refunds(), *every_port(*READERS), only(ANA, "invoices", "refunds")) == [
        f'GRANT "{REFUNDS_READ}" TO "{ANA_ROLE}"'
    ]


def test_grant_and_revoke_touch_the_ports_of_the_scope_only() -> None:
    ports = (PortSpec("orders-v1"), PortSpec("refunds"))
    desired = build_desired(PRODUCT, ports, [only(ANA, "refunds")])
    plan, grants = plan_memberships(desired, with_refunds(), grant=True)
    assert rendered(plan) == [f'GRANT "{REFUNDS_READ}" TO "{ANA_ROLE}"']
    assert [(g.reader, g.role) for g in grants] == [(ANA, REFUNDS_READ)]
    members = frozenset({SA, GROUP, ANA_ROLE})
    plan, _ = plan_memberships(desired, with_refunds(members, members), grant=False)
    assert rendered(plan) == [f'REVOKE "{REFUNDS_READ}" FROM "{ANA_ROLE}" CASCADE']


def test_logins_and_conflicts_are_checked_per_reader_whatever_its_scope() -> None:
    sa = READERS[0]
    desired = build_desired(PRODUCT, BOTH_PORTS, [only(sa, "refunds")])
    gone = replace(with_refunds(), roles=tuple(r for r in with_refunds().roles if r.name != SA))
    assert missing_logins(desired, gone) == (sa,)
    assert missing_logins(desired, with_refunds()) == ()
    elsewhere = build_desired(PRODUCT, BOTH_PORTS, [only(sa, "invoices")])
    assert missing_logins(elsewhere, gone) == ()  # nothing granted here: no login wanted
    with pytest.raises(OwnershipConflictError, match=SA):
        scoped(with_role(with_refunds(), SA, comment=None), only(sa, "refunds"))
