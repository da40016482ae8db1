"""The diff of a product's desired and observed state: the minimal ordered statement list
(layer ``stores``, pure).

Order: roles, schema, tables, columns, revocations, grants, roles of removed ports dropped, and
last the data-dependent changes (type changes, SET NOT NULL, UNIQUE), which the I/O module runs
each in a savepoint so that one refused by the rows is reported without undoing the rest.

The ACL is the operator's in full: on the schema, its tables and the owner role's default
privileges there, every privilege the desired state does not hold is revoked, whoever granted it
(the admin, a member of the owning role, revokes as the owner); so are members of the owner and
read roles that are not the readers of that port (a reader scoped to some ports is a member of
their read roles only). The admin's own memberships are never revoked.
Members of Group and User roles are the DBA's (that is how real logins reach them) and are never
looked at. A converged product yields no statement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from dataproduct_operator.stores import driver
from dataproduct_operator.stores.driver import (
    ConfirmedDeletions,
    KeptColumn,
    LoginPassword,
    RefusedChange,
)
from dataproduct_operator.stores.postgres import markers, naming, scram
from dataproduct_operator.stores.postgres import statements as sql
from dataproduct_operator.stores.postgres.state import (
    READER_PRIVILEGES,
    SCHEMA_PRIVILEGES,
    TABLES,
    WRITER_PRIVILEGES,
    AclEntry,
    DesiredColumn,
    DesiredProduct,
    DesiredRole,
    DesiredTable,
    ObservedColumn,
    ObservedProduct,
    ObservedRole,
    ObservedTable,
    read_role_marker,
)
from dataproduct_operator.stores.postgres.types import cast_for

Acl = dict[str, frozenset[str]]  # grantee → privileges


@dataclass
class Plan:
    """Statements in order, and what the diff found beside them."""

    roles: list[sql.Statement] = field(default_factory=list)
    objects: list[sql.Statement] = field(default_factory=list)
    revocations: list[sql.Statement] = field(default_factory=list)
    grants: list[sql.Statement] = field(default_factory=list)
    drops: list[sql.Statement] = field(default_factory=list)
    data_dependent: list[sql.Statement] = field(default_factory=list)
    kept_columns: list[KeptColumn] = field(default_factory=list)
    kept_tables: list[str] = field(default_factory=list)
    refused: list[RefusedChange] = field(default_factory=list)
    placed: list[str] = field(default_factory=list)  # tables of ports that exist after the plan
    logins_disabled: list[str] = field(default_factory=list)
    schema_dropped: bool = False
    adopted: bool = False

    @property
    def statements(self) -> list[sql.Statement]:
        return (
            self.roles
            + self.objects
            + self.revocations
            + self.grants
            + self.drops
            + self.data_dependent
        )


def conflict(desired: DesiredProduct, observed: ObservedProduct) -> str | None:
    """Why the product may not use these objects, or None."""
    if observed.schema is not None:
        marker = markers.decode(observed.schema.comment)
        if marker is None:
            return (
                f"schema {desired.schema} exists and was not made by the operator; "
                "rename or drop it, or place the product in another store"
            )
        owner = (marker.get("namespace"), marker.get("product"))
        if owner != (desired.product.namespace, desired.product.name):
            return (
                f"schema {desired.schema} belongs to product {owner[0]}/{owner[1]}; "
                "the names collide: place this product in another store"
            )
    product_roles = [desired.owner, desired.writer] + [
        DesiredRole(table.read_role, read_role_marker(desired.schema, table))
        for table in desired.tables
    ]
    for role in product_roles:
        found = observed.role(role.name)
        marker = markers.decode(found.comment) if found else None
        if found and (marker is None or marker.get("schema") != desired.schema):
            return f"role {role.name} exists and was not made by the operator for this product"
    for _, role in desired.readers:
        found = observed.role(role.name)
        if found and not role.shared and markers.decode(found.comment) is None:
            return f"role {role.name} exists and was not made by the operator"
    return None


def _create_role(plan: Plan, role: DesiredRole, verifier: str | None) -> None:
    plan.roles.append(sql.create_role(role.name, verifier=verifier))
    plan.roles.append(sql.comment_on_role(role.name, role.marker))


def _split(
    observed: Iterable[AclEntry], owner: str, desired: Acl
) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """(privileges held as desired, privileges to revoke) per grantee; the owner's are its own."""
    held: dict[str, set[str]] = defaultdict(set)
    to_revoke: dict[str, set[str]] = defaultdict(set)
    for entry in observed:
        if entry.grantee == owner:
            continue
        if entry.privilege in desired.get(entry.grantee, frozenset()) and not entry.grantable:
            held[entry.grantee].add(entry.privilege)
        else:
            to_revoke[entry.grantee].add(entry.privilege)
    return (
        defaultdict(frozenset, {grantee: frozenset(names) for grantee, names in held.items()}),
        {grantee: frozenset(names) for grantee, names in to_revoke.items()},
    )


def _acl_diff(plan: Plan, target: _AclTarget, observed: Iterable[AclEntry], desired: Acl) -> None:
    held, to_revoke = _split(observed, target.owner, desired)
    for grantee, names in sorted(to_revoke.items()):
        plan.revocations.append(target.revoke(names, grantee))
    for grantee, names in sorted(desired.items()):
        if names - held[grantee]:
            plan.grants.append(target.grant(names - held[grantee], grantee))


@dataclass(frozen=True)
class _AclTarget:
    """An object whose ACL the operator owns: a schema, a table, or the owner role's default
    privileges on one kind of object in the schema (``objtype``)."""

    kind: str  # "schema", "table" or "default"
    owner: str
    schema: str
    table: str = ""
    objtype: str = ""

    def _name(self) -> sql.Ident:
        return sql.Ident.of(self.schema, self.table) if self.table else sql.Ident.of(self.schema)

    def grant(self, names: Iterable[str], grantee: str) -> sql.Statement:
        if self.kind == "default":
            return sql.alter_default_privileges(
                self.owner, self.schema, self.objtype, names, grantee, grant=True
            )
        return sql.grant_on(self.kind, self._name(), names, grantee)

    def revoke(self, names: Iterable[str], grantee: str) -> sql.Statement:
        if self.kind == "default":
            return sql.alter_default_privileges(
                self.owner, self.schema, self.objtype, names, grantee, grant=False
            )
        return sql.revoke_on(self.kind, self._name(), names, grantee)


def _column_acls(plan: Plan, schema: str, table: ObservedTable) -> None:
    """Column privileges are all revoked: the operator grants on whole tables only."""
    for column in table.columns:
        _, to_revoke = _split(column.acl, table.owner, {})
        for grantee, names in sorted(to_revoke.items()):
            plan.revocations.append(
                sql.revoke_on_column(sql.Ident.of(schema, table.name), column.name, names, grantee)
            )


def _members_diff(
    plan: Plan, role: str, observed: ObservedRole | None, desired: frozenset[str], admin: str
) -> None:
    members = (observed.members if observed else frozenset()) - {admin}
    for member in sorted(members - desired):
        plan.revocations.append(sql.revoke_role(role, member))
    for member in sorted(desired - members):
        plan.grants.append(sql.grant_role(role, member))


def _product_role(
    plan: Plan, role: DesiredRole, found: ObservedRole | None, password: LoginPassword | None
) -> None:
    """Create or align one of the product's own roles (owner, writer, read)."""
    if found is None:
        _create_role(plan, role, scram.verifier(password.password) if password else None)
        return
    if password is not None and (password.changed or not found.can_login):
        plan.roles.append(
            sql.alter_role_login(role.name, verifier=scram.verifier(password.password))
        )
    if password is None and found.can_login:
        plan.roles.append(sql.alter_role_nologin(role.name))
    if found.create_role or found.create_db:
        plan.roles.append(sql.alter_role_no_powers(role.name))


def unique_constraint(table: DesiredTable, column: str) -> str:
    return naming.unique_constraint_name(table.name, column)


@dataclass
class _Planner:
    """plan_ensure's steps, each adding to one plan."""

    desired: DesiredProduct
    observed: ObservedProduct
    confirmed: ConfirmedDeletions
    plan: Plan

    @property
    def schema(self) -> str:
        return self.desired.schema

    @property
    def owner(self) -> str:
        return self.desired.owner.name

    def placeable(self) -> list[DesiredTable]:
        """Ports whose table exists or can be made (a new port with a refused column waits)."""
        return [
            table
            for table in self.desired.tables
            if not table.columns_refused or self.observed.table(table.name) is not None
        ]

    def roles(self, writer_password: LoginPassword) -> None:
        desired, observed, plan = self.desired, self.observed, self.plan
        owner_found = observed.role(self.owner)
        _product_role(plan, desired.owner, owner_found, None)
        if owner_found is None or not owner_found.usable:
            plan.roles.append(sql.grant_role_to_current_user(
                self.owner, server_version_num=observed.server_version_num))  # fmt: skip
        _product_role(plan, desired.writer, observed.role(desired.writer.name), writer_password)
        for table in self.placeable():
            role = DesiredRole(table.read_role, read_role_marker(self.schema, table))
            _product_role(plan, role, observed.role(table.read_role), None)
        for _, role in desired.readers:
            if observed.role(role.name) is None:
                # A ServiceAccount's login gets its password from ensure_reader_login.
                _create_role(plan, role, None)

    def schema_object(self) -> None:
        found, plan = self.observed.schema, self.plan
        if found is None:
            plan.objects.append(sql.create_schema(self.schema, self.owner))
            plan.objects.append(sql.comment_on_schema(self.schema, self.desired.schema_marker))
            return
        marker = markers.decode(found.comment) or {}
        if marker != markers.decode(self.desired.schema_marker):
            plan.objects.append(sql.comment_on_schema(self.schema, self.desired.schema_marker))
            plan.adopted = marker.get("uid") != self.desired.product.uid
        if found.owner != self.owner:
            plan.objects.append(sql.alter_schema_owner(self.schema, self.owner))

    def tables(self) -> None:
        plan, schema = self.plan, self.schema
        for table in self.placeable():
            found = self.observed.table(table.name)
            if found is None:
                plan.objects.append(sql.create_table(schema, table.name, [
                    sql.ColumnDefinition(c.name, c.sql_type, c.not_null,
                                         unique_constraint(table, c.name) if c.unique else None)
                    for c in table.columns]))  # fmt: skip
                plan.objects.append(sql.alter_table_owner(schema, table.name, self.owner))
            else:
                if found.owner != self.owner:
                    plan.objects.append(sql.alter_table_owner(schema, table.name, self.owner))
                if not table.columns_refused:
                    self.columns(table, found)
            plan.placed.append(table.name)
        confirmed_tables = {naming.table_name(port) for port in self.confirmed.ports}
        for found in self.observed.tables:
            if found.name in plan.placed:
                continue
            if found.name in confirmed_tables:
                plan.objects.append(sql.drop_table(schema, found.name))
            else:
                plan.kept_tables.append(found.name)

    def columns(self, table: DesiredTable, found: ObservedTable) -> None:
        for column in table.columns:
            current = found.column(column.name)
            if current is None:
                self.plan.objects.append(
                    sql.add_column(self.schema, table.name, column.name, column.sql_type)
                )
                current = ObservedColumn(column.name, column.sql_type, not_null=False)
            self.column(table, column, current, found.unique_constraints_of(column.name))
        for current in found.columns:
            if table.column(current.name) is not None:
                continue
            if (table.port, current.name) in self.confirmed.columns:
                self.plan.objects.append(sql.drop_column(self.schema, table.name, current.name))
                continue
            self.plan.kept_columns.append(KeptColumn(table.port, current.name, current.sql_type))
            if current.not_null:
                # The pipeline writes rows without the column from now on.
                self.plan.objects.append(sql.drop_not_null(self.schema, table.name, current.name))

    def column(
        self,
        table: DesiredTable,
        column: DesiredColumn,
        current: ObservedColumn,
        uniques: tuple[str, ...],
    ) -> None:
        plan, schema, subject = self.plan, self.schema, f"{table.port}.{column.name}"
        if current.sql_type != column.sql_type:
            cast = cast_for(current.sql_type, column.sql_type)
            if cast.using is None:
                plan.refused.append(RefusedChange(table.port, column.name, cast.reason))
            else:
                plan.data_dependent.append(sql.alter_column_type(
                    schema, table.name, column.name, column.sql_type, cast.using,
                    subject=subject))  # fmt: skip
        if column.not_null and not current.not_null:
            plan.data_dependent.append(
                sql.set_not_null(schema, table.name, column.name, subject=subject)
            )
        if not column.not_null and current.not_null:
            plan.objects.append(sql.drop_not_null(schema, table.name, column.name))
        if column.unique and not uniques:
            constraint = unique_constraint(table, column.name)
            plan.data_dependent.append(
                sql.add_unique(schema, table.name, column.name, constraint, subject=subject)
            )
        if not column.unique:
            plan.objects += [sql.drop_constraint(schema, table.name, u) for u in uniques]

    def acl(self) -> None:
        desired, observed, plan, schema = self.desired, self.observed, self.plan, self.schema
        writer = desired.writer.name
        placed = [table for table in desired.tables if table.name in plan.placed]
        schema_acl: Acl = {writer: SCHEMA_PRIVILEGES}
        schema_acl |= {table.read_role: SCHEMA_PRIVILEGES for table in placed}
        found_schema = observed.schema
        schema_owner = found_schema.owner if found_schema else self.owner
        schema_target = _AclTarget("schema", schema_owner, schema)
        _acl_diff(plan, schema_target, found_schema.acl if found_schema else (), schema_acl)
        for table in placed:
            found = observed.table(table.name)
            target = _AclTarget("table", found.owner if found else self.owner, schema, table.name)
            _acl_diff(plan, target, found.acl if found else (),
                      {writer: WRITER_PRIVILEGES, table.read_role: READER_PRIVILEGES})  # fmt: skip
            if found is not None:
                _column_acls(plan, schema, found)
        for name in plan.kept_tables:
            kept = observed.table(name)
            # A table someone else made in the schema and still owns is theirs to grant.
            if kept is not None and kept.owner == self.owner:
                _acl_diff(plan, _AclTarget("table", kept.owner, schema, name), kept.acl, {})
                _column_acls(plan, schema, kept)
        _default_acl_diff(plan, desired, observed, {TABLES: {writer: WRITER_PRIVILEGES}})

    def members(self) -> None:
        desired, observed, plan = self.desired, self.observed, self.plan
        admin = observed.current_user
        _members_diff(plan, self.owner, observed.role(self.owner), frozenset(), admin)
        for table in self.placeable():
            # Per port: a reader whose scope no longer covers it is revoked here only.
            _members_diff(plan, table.read_role, observed.role(table.read_role),
                          table.reader_roles, admin)  # fmt: skip
        desired_read_roles = {table.read_role for table in desired.tables}
        for role in _product_read_roles(self.schema, observed):
            if role not in desired_read_roles:
                plan.drops.append(sql.drop_role(role))


def plan_ensure(
    desired: DesiredProduct,
    observed: ObservedProduct,
    *,
    writer_password: LoginPassword,
    confirmed: ConfirmedDeletions,
) -> Plan:
    """Everything that makes ``observed`` the desired state; raises OwnershipConflictError."""
    problem = conflict(desired, observed)
    if problem:
        raise driver.OwnershipConflictError(problem)
    planner = _Planner(desired, observed, confirmed, Plan(refused=list(desired.refused)))
    planner.roles(writer_password)
    planner.schema_object()
    planner.tables()
    planner.acl()
    planner.members()
    return planner.plan


def _default_acl_diff(
    plan: Plan, desired: DesiredProduct, observed: ObservedProduct, wanted: dict[str, Acl]
) -> None:
    """The owner role's default privileges in the schema (those of other roles could only be
    revoked as them; no one else creates objects there)."""
    owner = desired.owner.name
    found: dict[str, tuple[AclEntry, ...]] = {
        default.objtype: default.acl for default in observed.default_acls if default.role == owner
    }
    for objtype in sorted((set(wanted) | set(found)) & set(sql.DEFAULT_ACL_OBJECTS)):
        target = _AclTarget("default", owner, desired.schema, objtype=objtype)
        _acl_diff(plan, target, found.get(objtype, ()), wanted.get(objtype, {}))


def _product_read_roles(schema: str, observed: ObservedProduct) -> list[str]:
    """Read roles of the product's ports, present or removed, found by their markers."""
    found = []
    for role in observed.roles:
        marker = markers.decode(role.comment) or {}
        if marker.get("role") == markers.READ and marker.get("schema") == schema:
            found.append(role.name)
    return sorted(found)


def _is_ours(desired: DesiredProduct, observed: ObservedProduct) -> bool:
    """The schema, if any, is marked for this product (deletion touches nothing else)."""
    if observed.schema is None:
        return True
    marker = markers.decode(observed.schema.comment) or {}
    return (marker.get("namespace"), marker.get("product")) == (
        desired.product.namespace,
        desired.product.name,
    )


def missing_logins(
    desired: DesiredProduct, observed: ObservedProduct
) -> tuple[driver.ReaderRef, ...]:
    """The ServiceAccount readers whose login is not there, or cannot log in."""
    missing = []
    for reader, role in desired.readers:
        found = observed.role(role.name)
        if role.login and (found is None or not found.can_login):
            missing.append(reader)
    return tuple(missing)


def plan_retain(desired: DesiredProduct, observed: ObservedProduct) -> Plan:
    """Deletion under Retain: every grant on the product's objects revoked, every member of its
    roles removed, its writer login disabled; schema, tables and rows stay, and so do the roles
    (a product created again with the same name adopts them)."""
    plan = Plan()
    if not _is_ours(desired, observed):
        return plan
    schema, owner, admin = desired.schema, desired.owner.name, observed.current_user
    if observed.schema is not None:
        _acl_diff(
            plan, _AclTarget("schema", observed.schema.owner, schema), observed.schema.acl, {}
        )
    for table in observed.tables:
        _acl_diff(plan, _AclTarget("table", table.owner, schema, table.name), table.acl, {})
        _column_acls(plan, schema, table)
    _default_acl_diff(plan, desired, observed, {})
    for role in [owner, *_product_read_roles(schema, observed)]:
        _members_diff(plan, role, observed.role(role), frozenset(), admin)
    writer = observed.role(desired.writer.name)
    if writer is not None and writer.can_login:
        plan.roles.append(sql.alter_role_nologin(writer.name))
        plan.logins_disabled.append(writer.name)
    return plan


def plan_delete(desired: DesiredProduct, observed: ObservedProduct) -> Plan:
    """Deletion under Delete: the schema dropped with its tables, then the product's roles."""
    plan = Plan()
    if not _is_ours(desired, observed):
        return plan
    if observed.schema is not None:
        plan.objects.append(sql.drop_schema_cascade(desired.schema))
        plan.schema_dropped = True
    for role in [*_product_read_roles(desired.schema, observed), desired.writer.name,
                 desired.owner.name]:  # fmt: skip
        found = observed.role(role)
        if (
            found is not None
            and (markers.decode(found.comment) or {}).get("schema") == desired.schema
        ):
            plan.drops.append(sql.drop_role(role))
    return plan


def plan_memberships(
    desired: DesiredProduct, observed: ObservedProduct, *, grant: bool
) -> tuple[Plan, tuple[driver.Grant, ...]]:
    """Grant (or revoke) the desired readers on the read roles of the desired ports their
    scopes cover, nothing else; ports whose read role does not exist yet are skipped
    (ensure_ports makes them)."""
    problem = conflict(desired, observed)
    if problem:
        raise driver.OwnershipConflictError(problem)
    plan = Plan()
    granted: list[driver.Grant] = []
    for _, role in desired.readers:
        if grant and observed.role(role.name) is None:
            _create_role(plan, role, None)
    for table in desired.tables:
        read_role = observed.role(table.read_role)
        if read_role is None:
            continue
        for reader, role in table.readers:
            member = role.name in read_role.members
            if grant and not member:
                plan.grants.append(sql.grant_role(table.read_role, role.name))
            if not grant and member:
                plan.revocations.append(sql.revoke_role(table.read_role, role.name))
            if grant:
                granted.append(driver.Grant(reader, table.read_role))
    return plan, tuple(granted)
