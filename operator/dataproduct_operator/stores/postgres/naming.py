"""PostgreSQL names of a product's objects (layer ``stores``, pure).

PostgreSQL truncates identifiers past 63 bytes (NAMEDATALEN - 1), so two long names could end up
the same object; every name here goes through :func:`identifier`, which keeps a readable name when
it is short and unambiguous, and otherwise cuts it and appends ``_`` + 10 hex digits of the SHA-256
of what it identifies.

Injectivity, by construction:

- readable names are built only from Kubernetes names, which have no ``_``: ``-`` becomes ``_``
  and ``__`` separates two names, so a readable name maps back to exactly one pair (a name with
  ``--`` would make ``__`` ambiguous, so it is hashed);
- a readable name never ends like a hashed one (``_`` + 10 hex digits): such a name is hashed too,
  so a readable name cannot equal the hashed name of another object;
- hashed names differ by their hash, taken over the full identity (``<namespace>/<product>``).

What remains is a 40-bit hash collision between two hashed names with the same prefix; the
ownership marker (:mod:`.markers`) catches it: an object marked for another product is a conflict,
never reused. Every character produced is in ``[a-z0-9_]``: never multibyte, never quoted oddly.
"""

from __future__ import annotations

import hashlib
import re

MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1
HASH_HEX_DIGITS = 10
ROLE_PREFIX = "dm_"

_LOOKS_HASHED = re.compile(rf"_[0-9a-f]{{{HASH_HEX_DIGITS}}}$")
_KUBERNETES_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_OUTSIDE_IDENTIFIER = re.compile(r"[^a-z0-9_]")
# Readable role names of each kind stay apart: product roles hold one ``__`` (owner, writer) or
# two (read), and end in these suffixes; Group and User roles hold none; ServiceAccount logins
# hold one and never end in these suffixes.
_PRODUCT_ROLE_SUFFIXES = ("_owner", "_writer", "_read")


def short_hash(identity: str) -> str:
    return hashlib.sha256(identity.encode()).hexdigest()[:HASH_HEX_DIGITS]


def identifier(readable: str, identity: str, *, ambiguous: bool = False) -> str:
    """``readable`` when it is unambiguous, at most 63 bytes and does not look hashed; else its
    prefix + ``_`` + the hash of ``identity`` (exactly 63 bytes at most)."""
    cleaned = _OUTSIDE_IDENTIFIER.sub("_", readable.lower())
    if (
        not ambiguous
        and cleaned == readable
        and len(readable) <= MAX_IDENTIFIER_BYTES
        and not _LOOKS_HASHED.search(readable)
    ):
        return readable
    prefix = cleaned[: MAX_IDENTIFIER_BYTES - HASH_HEX_DIGITS - 1]
    return f"{prefix}_{short_hash(identity)}"


def _joinable(*names: str) -> bool:
    """Kubernetes names whose '-' → '_' and '__' join map back to exactly these names."""
    return all(_KUBERNETES_LABEL.match(name) and "--" not in name for name in names)


def _underscored(name: str) -> str:
    return name.replace("-", "_")


def schema_name(namespace: str, product: str) -> str:
    """``<namespace>__<product>`` with '-' → '_', hashed when ambiguous or long."""
    return identifier(
        f"{_underscored(namespace)}__{_underscored(product)}",
        f"{namespace}/{product}",
        ambiguous=not _joinable(namespace, product),
    )


def table_name(port: str) -> str:
    """A port's table: the port name with '-' → '_', hashed when ambiguous."""
    return identifier(_underscored(port), port, ambiguous=not _joinable(port))


def owner_role(schema: str) -> str:
    return identifier(f"{ROLE_PREFIX}{schema}_owner", f"owner/{schema}")


def writer_role(schema: str) -> str:
    return identifier(f"{ROLE_PREFIX}{schema}_writer", f"writer/{schema}")


def read_role(schema: str, table: str) -> str:
    return identifier(f"{ROLE_PREFIX}{schema}__{table}_read", f"read/{schema}/{table}")


def service_account_role(namespace: str, service_account: str) -> str:
    """The login of a reader ServiceAccount (one per store).

    Like a product's owner and writer roles it holds one ``__``: ``dm_sa_x__y_owner`` is also the
    owner role of product ``y`` in namespace ``sa-x``, so a ServiceAccount name ending in
    ``-owner`` or ``-writer`` is hashed.
    """
    readable = f"{ROLE_PREFIX}sa_{_underscored(namespace)}__{_underscored(service_account)}"
    return identifier(
        readable,
        f"sa/{namespace}/{service_account}",
        ambiguous=not _joinable(namespace, service_account)
        or readable.endswith(_PRODUCT_ROLE_SUFFIXES),
    )


def group_role(group: str) -> str:
    return identifier(
        f"{ROLE_PREFIX}group_{_underscored(group)}",
        f"group/{group}",
        ambiguous=not _joinable(group),
    )


def user_role(user: str) -> str:
    return identifier(
        f"{ROLE_PREFIX}user_{_underscored(user)}", f"user/{user}", ambiguous=not _joinable(user)
    )


def unique_constraint_name(table: str, column: str) -> str:
    """The UNIQUE constraint of one column (the index of the same name lives in the schema)."""
    return identifier(f"{table}__{column}_key", f"unique/{table}/{column}", ambiguous=True)
