"""The catalog queries that observe a product, and their parsing (layer ``stores``, pure).

One query, one round trip: :data:`PRODUCT_QUERY` returns a JSON document with the schema (owner,
marker, ACL), its tables (owner, ACL, columns, single-column UNIQUE constraints, the planner's row
estimate, optionally sizes), the default privileges in it, and the roles that matter (by name, or
marked for the schema), each with its members. ACLs come expanded by ``aclexplode``, so nothing
parses aclitem text. :func:`parse_product` turns the document into :class:`ObservedProduct`.
"""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.dataproduct import DeletionPolicy
from dataproduct_operator.stores.driver import ManagedSchema
from dataproduct_operator.stores.postgres import markers
from dataproduct_operator.stores.postgres.state import (
    AclEntry,
    ObservedColumn,
    ObservedDefaultAcl,
    ObservedProduct,
    ObservedRole,
    ObservedSchema,
    ObservedTable,
    ObservedUnique,
)

_ACL = (
    "(SELECT coalesce(json_agg(json_build_object('grantee', CASE WHEN a.grantee = 0 "
    "THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, 'privilege', a.privilege_type, "
    "'grantable', a.is_grantable)), '[]') FROM aclexplode(ACL_COLUMN) a)"
)


def _acl(column: str) -> str:
    """An aclitem[] column expanded into JSON entries (PUBLIC for grantee 0)."""
    return _ACL.replace("ACL_COLUMN", column)


# Only this module's constants are interpolated (S608 cannot see that).
PRODUCT_QUERY = f"""
SELECT json_build_object(
  'currentUser', current_user,
  'serverVersionNum', current_setting('server_version_num')::int,
  'serverVersion', current_setting('server_version'),
  'schema', (
    SELECT json_build_object('name', n.nspname, 'owner', pg_get_userbyid(n.nspowner),
      'comment', obj_description(n.oid, 'pg_namespace'), 'acl', {_acl("n.nspacl")})
    FROM pg_namespace n WHERE n.nspname = %(schema)s),
  'tables', (
    SELECT coalesce(json_agg(json_build_object(
      'name', c.relname, 'owner', pg_get_userbyid(c.relowner), 'acl', {_acl("c.relacl")},
      'columns', (
        SELECT coalesce(json_agg(json_build_object('name', col.attname,
          'type', format_type(col.atttypid, col.atttypmod), 'notNull', col.attnotnull,
          'acl', {_acl("col.attacl")}) ORDER BY col.attnum), '[]')
        FROM pg_attribute col
        WHERE col.attrelid = c.oid AND col.attnum > 0 AND NOT col.attisdropped),
      'uniques', (
        SELECT coalesce(json_agg(json_build_object('name', k.conname, 'columns', (
          SELECT json_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
          WHERE a.attrelid = c.oid AND a.attnum = ANY (k.conkey)))), '[]')
        FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'u'),
      'rowsEstimate', c.reltuples::bigint,
      'sizeBytes', CASE WHEN %(sizes)s THEN pg_total_relation_size(c.oid) END
    ) ORDER BY c.relname), '[]')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')),
  'defaultAcls', (
    SELECT coalesce(json_agg(json_build_object('role', pg_get_userbyid(d.defaclrole),
      'objtype', d.defaclobjtype, 'acl', {_acl("d.defaclacl")})), '[]')
    FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace
    WHERE n.nspname = %(schema)s),
  'roles', (
    SELECT coalesce(json_agg(json_build_object('name', r.rolname, 'canLogin', r.rolcanlogin,
      'createRole', r.rolcreaterole, 'createDb', r.rolcreatedb, 'comment', d.description,
      'usable', pg_has_role(r.oid, 'USAGE'),
      'members', (SELECT coalesce(json_agg(pg_get_userbyid(m.member)), '[]')
                  FROM pg_auth_members m WHERE m.roleid = r.oid))), '[]')
    FROM pg_roles r
    LEFT JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
    WHERE r.rolname = ANY (%(roles)s) OR position(%(needle)s IN coalesce(d.description, '')) > 0)
)
"""  # noqa: S608

# Parameter: needle (text: the marker's managedBy pair).
MANAGED_SCHEMAS_QUERY = """
SELECT n.nspname, d.description FROM pg_namespace n
JOIN pg_description d ON d.objoid = n.oid AND d.classoid = 'pg_namespace'::regclass
  AND d.objsubid = 0
WHERE position(%(needle)s IN d.description) > 0
ORDER BY n.nspname
"""

# Parameter: role (text). Its marker and the roles it is a member of.
READER_QUERY = """
SELECT r.rolname, r.rolcanlogin, d.description,
  (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid) AS memberships
FROM pg_roles r
LEFT JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
WHERE r.rolname = %(role)s
"""

VERIFY_QUERY = """
SELECT current_user, current_setting('server_version'), r.rolsuper, r.rolcreaterole,
  has_database_privilege(current_database(), 'CREATE')
FROM pg_roles r WHERE r.rolname = current_user
"""


def _acl_entries(items: list[dict[str, Any]]) -> tuple[AclEntry, ...]:
    return tuple(AclEntry(i["grantee"], i["privilege"], bool(i["grantable"])) for i in items)


def parse_product(document: dict[str, Any]) -> ObservedProduct:
    schema = document.get("schema")
    return ObservedProduct(
        current_user=document["currentUser"],
        server_version_num=int(document["serverVersionNum"]),
        server_version=document.get("serverVersion") or "",
        schema=None if schema is None else ObservedSchema(
            schema["name"], schema["owner"], schema.get("comment"), _acl_entries(schema["acl"])),
        tables=tuple(
            ObservedTable(
                name=table["name"],
                owner=table["owner"],
                acl=_acl_entries(table["acl"]),
                columns=tuple(ObservedColumn(c["name"], c["type"], bool(c["notNull"]),
                                             _acl_entries(c.get("acl") or []))
                              for c in table["columns"]),
                uniques=tuple(ObservedUnique(u["name"], tuple(u["columns"] or ()))
                              for u in table["uniques"]),
                rows_estimate=table.get("rowsEstimate"),
                size_bytes=table.get("sizeBytes"),
            )
            for table in document.get("tables") or ()
        ),
        default_acls=tuple(
            ObservedDefaultAcl(d["role"], d["objtype"], _acl_entries(d["acl"]))
            for d in document.get("defaultAcls") or ()
        ),
        roles=tuple(
            ObservedRole(
                name=role["name"],
                can_login=bool(role["canLogin"]),
                create_role=bool(role["createRole"]),
                create_db=bool(role["createDb"]),
                comment=role.get("comment"),
                members=frozenset(role["members"]),
                usable=bool(role["usable"]),
            )
            for role in document.get("roles") or ()
        ),
    )  # fmt: skip


def managed_schemas_needle() -> str:
    return markers.encode()[1:-1]


def parse_managed_schema(schema: str, comment: str | None) -> ManagedSchema | None:
    marker = markers.decode(comment)
    if marker is None or "product" not in marker:
        return None
    try:
        policy = DeletionPolicy(marker.get("deletionPolicy", DeletionPolicy.RETAIN.value))
    except ValueError:
        policy = DeletionPolicy.RETAIN  # the safe reading of a marker edited by hand
    return ManagedSchema(
        schema=schema,
        namespace=str(marker.get("namespace", "")),
        product=str(marker["product"]),
        uid=str(marker.get("uid", "")),
        deletion_policy=policy,
    )
