"""Data products for the lineage tests: the example mesh, and small hand-made ones."""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.dataproduct import DataProduct, Discoverability
from dataproduct_operator.catalog.lineage import LineageEntry
from tests.helpers import MESH_FIXTURE, example_documents

EXAMPLE_PRODUCTS = [
    DataProduct.from_object(document)
    for path in sorted(MESH_FIXTURE.glob("*.yaml"))
    for document in example_documents(path.name)
    if document["kind"] == "DataProduct"
]

# (uri, redacted, short): source URIs with credentials in every place a URI can hide them, as
# redact_uri and short_uri give them; the exports' tests check that none of it leaks there.
URI_CASES: list[tuple[str, str, str]] = [
    (
        "postgresql://admin:hunter2@db.example.com:5432/app?sslpassword=hunter2",
        "postgresql://db.example.com:5432/app",
        "db.example.com/app",
    ),
    ("postgresql://admin:hun/ter@2@db:5432/app", "postgresql://db:5432/app", "db/app"),
    (
        "https://token@api.example.com/v1#secret",
        "https://api.example.com/v1",
        "api.example.com/v1",
    ),
    (
        "jdbc:sqlserver://ledger:1433;user=sa;password=hunter2",
        "jdbc:sqlserver://ledger:1433",
        "ledger",
    ),
    ("s3://bucket/reports/", "s3://bucket/reports/", "bucket/reports"),
    ("s3://bucket/key@v2", "s3://bucket/key@v2", "bucket/key@v2"),
    ("admin:hunter2@kafka:9092/orders", "kafka:9092/orders", "kafka/orders"),
    ("kafka://[::1]:9092/orders", "kafka://[::1]:9092/orders", "[::1]/orders"),
    ("s3://bucket/a\x01b\n", "s3://bucket/ab", "bucket/ab"),
    ("postgresql://u:pa?ss@host/db", "postgresql://host/db", "host/db"),
    ("postgresql://u:pa#ss@host/db", "postgresql://host/db", "host/db"),
    ("jdbc:sqlserver://sa:p;w@h:1433", "jdbc:sqlserver://h:1433", "h"),
]


def listed(entry: LineageEntry) -> bool:
    """Listed in the catalog unless hidden."""
    return entry.discoverability is not Discoverability.HIDDEN


def product(
    namespace: str,
    name: str,
    *inputs: dict[str, Any],
    ready: bool | None = None,
    hidden: bool = False,
    description: str = "Test data.",
) -> DataProduct:
    """A product in its own domain (named after the namespace) with one port ``out``."""
    document: dict[str, Any] = {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "domain": namespace,
            "owner": {"team": "team"},
            "description": description,
            "inputs": list(inputs),
            "outputPorts": [{"name": "out"}],
            "discoverability": "Hidden" if hidden else "Public",
        },
    }
    if ready is not None:
        status = "True" if ready else "False"
        document["status"] = {"conditions": [{"type": "Ready", "status": status, "reason": "X"}]}
    return DataProduct.from_object(document)


def reads(name: str, namespace: str | None = None, port: str = "out") -> dict[str, Any]:
    ref = {"name": name, "port": port} | ({"namespace": namespace} if namespace else {})
    return {"name": f"in-{name}", "dataProduct": ref}


def external(name: str, type_: str, uri: str) -> dict[str, Any]:
    return {"name": name, "external": {"type": type_, "uri": uri}}
