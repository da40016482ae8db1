"""What ``dpo dev`` prints to show a store's grants at work (layer ``cluster``, pure).

Once the example mesh is Ready, a new user should see that access is real: a consumer's
pipeline login reads its upstream's table, and the same login cannot write it. The functions
here pick such a pair from the products as the cluster reports them (a consumer whose
``InputsReady`` is True, reading a port placed in a store) and build the two shell commands:
the consumer's reader Secret turned into ``PG*`` variables by kubectl, then psql with a SELECT,
or with an INSERT that PostgreSQL refuses. No password is ever printed: the commands fetch it
from the Secret when they run.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataproduct_operator.api.conditions import INPUTS_READY
from dataproduct_operator.api.naming import reader_secret_name, service_account_name

# Each key of the Secret as NAME=value on one line, values decoded: what `env` takes.
KEYS_AS_ENV_TEMPLATE = '{{range $k, $v := .data}}{{$k}}={{$v | base64decode}}{{"\\n"}}{{end}}'
ROWS_SHOWN = 10
_PLAIN_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class GrantedRead:
    """A consumer product's pipeline login that may read an upstream port's table."""

    consumer_namespace: str
    consumer: str
    upstream_namespace: str
    upstream: str
    port: str
    store: str
    schema: str
    table: str

    @property
    def secret(self) -> str:
        """The reader Secret in the consumer's namespace."""
        return reader_secret_name(self.store, service_account_name(self.consumer))

    @property
    def qualified_table(self) -> str:
        return f"{sql_identifier(self.schema)}.{sql_identifier(self.table)}"


def sql_identifier(name: str) -> str:
    """``name`` as an SQL identifier: bare when PostgreSQL keeps it as is, else double-quoted."""
    if _PLAIN_IDENTIFIER.match(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def _condition_true(product: dict[str, Any], kind: str) -> bool:
    conditions = (product.get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def _key(product: dict[str, Any]) -> tuple[str, str]:
    metadata = product["metadata"]
    return metadata.get("namespace", ""), metadata["name"]


def find_granted_read(products: Iterable[dict[str, Any]]) -> GrantedRead | None:
    """The first consumer (by namespace, then name) whose input from another product is ready
    and whose upstream's port has a table in a store; ``None`` when there is none."""
    by_key = {_key(product): product for product in products}
    for key in sorted(by_key):
        consumer = by_key[key]
        if not _condition_true(consumer, INPUTS_READY):
            continue
        for source in consumer.get("spec", {}).get("inputs") or []:
            wanted = source.get("dataProduct")
            if not wanted:
                continue
            upstream = by_key.get((wanted["namespace"], wanted["name"]))
            if upstream is None:
                continue
            found = _granted(key, upstream, wanted["port"])
            if found is not None:
                return found
    return None


def _granted(
    consumer: tuple[str, str], upstream: dict[str, Any], port_name: str
) -> GrantedRead | None:
    ports = {p["name"]: p for p in (upstream.get("status") or {}).get("outputPorts") or []}
    endpoint = (ports.get(port_name) or {}).get("endpoint")
    if not endpoint:
        return None
    upstream_namespace, upstream_name = _key(upstream)
    return GrantedRead(
        consumer_namespace=consumer[0],
        consumer=consumer[1],
        upstream_namespace=upstream_namespace,
        upstream=upstream_name,
        port=port_name,
        store=endpoint["store"],
        schema=endpoint["schema"],
        table=endpoint["table"],
    )


def psql_command(read: GrantedRead, kubeconfig: Path, psql: Path, statement: str) -> str:
    """A shell line: the reader Secret's keys as the environment of psql running
    ``statement``."""
    secret = shlex.join(
        [
            "kubectl", f"--kubeconfig={kubeconfig}", "-n", read.consumer_namespace,
            "get", "secret", read.secret, "-o", f"go-template={KEYS_AS_ENV_TEMPLATE}",
        ]
    )  # fmt: skip
    return f"env $({secret}) {shlex.join([str(psql), '-c', statement])}"


def select_statement(read: GrantedRead) -> str:
    return f"SELECT * FROM {read.qualified_table} LIMIT {ROWS_SHOWN}"  # noqa: S608 - printed; quoted


def insert_statement(read: GrantedRead) -> str:
    """An INSERT of a row of defaults: PostgreSQL checks the privilege before any constraint,
    so the refusal is "permission denied" whatever the columns."""
    return f"INSERT INTO {read.qualified_table} DEFAULT VALUES"


def build_read_hints(read: GrantedRead, kubeconfig: Path, psql: Path) -> list[str]:
    """The lines ``dpo dev`` prints: the read that works and the write that is refused."""
    upstream = f"{read.upstream_namespace}/{read.upstream}"
    return [
        f"Read the port {read.port} of {upstream} as {read.consumer_namespace}/{read.consumer}'s "
        f"pipeline does (its reader login, from the Secret {read.secret} in "
        f"{read.consumer_namespace}); the table is empty until a pipeline writes rows:",
        f"  {psql_command(read, kubeconfig, psql, select_statement(read))}",
        "The same login may not write (PostgreSQL answers: permission denied):",
        f"  {psql_command(read, kubeconfig, psql, insert_statement(read))}",
    ]
