"""SCRAM-SHA-256 password verifiers (layer ``stores``, pure).

The operator sends PostgreSQL a login's password only as the verifier PostgreSQL itself would
store (``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``, RFC 5802 / RFC 7677), so
the password never crosses the wire nor lands in a server log with ``log_statement = ddl``.
PostgreSQL recognises a string of this form in ``CREATE/ALTER ROLE ... PASSWORD`` and keeps it
as is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata

ITERATIONS = 4096  # PostgreSQL's scram_iterations default
SALT_BYTES = 16
PREFIX = "SCRAM-SHA-256"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _normalized(password: str) -> bytes:
    """PostgreSQL applies SASLprep and falls back to the raw bytes when the password is not
    valid for it; the passwords the operator generates are ASCII, which SASLprep leaves alone.
    Other passwords get NFKC, SASLprep's normalisation step."""
    if password.isascii():
        return password.encode()
    return unicodedata.normalize("NFKC", password).encode()


def salted_password(password: str, salt: bytes, iterations: int = ITERATIONS) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", _normalized(password), salt, iterations)


def keys(password: str, salt: bytes, iterations: int = ITERATIONS) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) of a password."""
    salted = salted_password(password, salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return hashlib.sha256(client_key).digest(), server_key


def verifier(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The verifier PostgreSQL stores for ``password``; a fresh random salt unless given."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    stored_key, server_key = keys(password, salt, iterations)
    return f"{PREFIX}${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"
