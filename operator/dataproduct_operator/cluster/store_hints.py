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


# -- access requests: the two-command demo -----------------------------------------------------

DEMO_ACCOUNT = "campaign-analyst"  # the consumer's ServiceAccount the demo asks access for
DEMO_DURATION = "1h"
# The examples' pair: marketing asks for a port of sales' product (any other mesh: the first).
PREFERRED_CONSUMER, PREFERRED_PRODUCER = "marketing", "sales"


@dataclass(frozen=True)
class AccessDemo:
    """A consumer domain's team asking for a new ServiceAccount to read a port of another
    domain's product, that domain's team approving, and the login then reading."""

    read: GrantedRead  # consumer: the ServiceAccount asked for
    consumer_team: str
    producer_team: str

    @property
    def request(self) -> str:
        return f"{self.read.consumer}-{self.read.upstream}"


def _domain_teams(domains: Iterable[dict[str, Any]]) -> dict[str, str]:
    """namespace -> the owner team of the DataDomain holding it."""
    teams = {}
    for domain in domains:
        spec = domain.get("spec") or {}
        namespace = spec.get("namespace") or domain["metadata"]["name"]
        team = (spec.get("owners") or {}).get("team")
        if team:
            teams[namespace] = team
    return teams


def _takes_requests(product: dict[str, Any]) -> bool:
    requests = ((product.get("spec") or {}).get("access") or {}).get("requests") or {}
    return requests.get("enabled", True) is not False


def _inputs_of(products: Iterable[dict[str, Any]], namespace: str) -> set[tuple[str, str, str]]:
    """The ports (namespace, product, port) the products of ``namespace`` read as inputs."""
    return {
        (wanted.get("namespace") or namespace, wanted["name"], wanted["port"])
        for product in products
        if _key(product)[0] == namespace
        for source in (product.get("spec") or {}).get("inputs") or []
        if (wanted := source.get("dataProduct"))
    }


def find_access_demo(
    products: Iterable[dict[str, Any]], domains: Iterable[dict[str, Any]]
) -> AccessDemo | None:
    """The first product (sales' first, then by namespace and name) taking requests with a
    port in a store, and the first other domain to ask for it (marketing first); the port none
    of that domain's products reads as an input when there is one. ``None`` when no pair
    exists."""
    teams = _domain_teams(domains)
    for product in sorted(products, key=lambda p: (_key(p)[0] != PREFERRED_PRODUCER, _key(p))):
        producer, name = _key(product)
        if producer not in teams or not _takes_requests(product):
            continue
        consumers = sorted((ns for ns in teams if ns != producer),
                           key=lambda ns: (ns != PREFERRED_CONSUMER, ns))  # fmt: skip
        ports = [p for p in (product.get("status") or {}).get("outputPorts") or []
                 if p.get("endpoint")]  # fmt: skip
        if not consumers or not ports:
            continue
        consumer = consumers[0]
        read_there = _inputs_of(products, consumer)
        unread = [p for p in ports if (producer, name, p["name"]) not in read_there]
        port = (unread or ports)[0]
        endpoint = port["endpoint"]
        read = GrantedRead(
            consumer_namespace=consumer,
            consumer=DEMO_ACCOUNT,
            upstream_namespace=producer,
            upstream=name,
            port=port["name"],
            store=endpoint["store"],
            schema=endpoint["schema"],
            table=endpoint["table"],
        )
        return AccessDemo(read, teams[consumer], teams[producer])
    return None


def build_access_demo(demo: AccessDemo, kubeconfig: Path, dpo: Path, psql: Path) -> list[str]:
    """The lines ``dpo dev`` prints: the request as the consumer's team, the approval as the
    producer's, and the query that then works (within seconds of the approval)."""
    read = demo.read
    product = f"{read.upstream_namespace}/{read.upstream}"
    account = f"serviceaccount:{read.consumer_namespace}/{read.consumer}"
    ask = [
        str(dpo), "access", "request", product, "--port", read.port, "--for", account,
        "--purpose", "Plan the next campaign", "--duration", DEMO_DURATION,
        "--name", demo.request, f"--kubeconfig={kubeconfig}",
        "--as", f"someone@{read.consumer_namespace}", "--as-group", demo.consumer_team,
    ]  # fmt: skip
    approve = [
        str(dpo), "access", "approve", f"{read.consumer_namespace}/{demo.request}",
        "--product", product, "--note", "Fine for campaign planning", f"--kubeconfig={kubeconfig}",
        "--as", f"someone@{read.upstream_namespace}", "--as-group", demo.producer_team,
    ]  # fmt: skip
    history = [str(dpo), "access", "history", product, f"--kubeconfig={kubeconfig}"]
    return [
        f"Ask for access as {read.consumer_namespace}'s team (team {demo.consumer_team}), for "
        f"its ServiceAccount {read.consumer}, to the port {read.port} of {product}; approve as "
        f"{read.upstream_namespace}'s team (team {demo.producer_team}); see docs/access.md:",
        f"  {shlex.join(ask)}",
        f"  {shlex.join(approve)}",
        f"Then {read.consumer}'s own login reads it (its Secret {read.secret} in "
        f"{read.consumer_namespace}, written at the approval), and the audit trail shows it:",
        f"  {psql_command(read, kubeconfig, psql, select_statement(read))}",
        f"  {shlex.join(history)}",
    ]
