"""What the catalog shows of products and domains (layer ``catalog``, pure).

The API objects go in, views come out: the summaries the index lists and searches, the
details of a product page, a domain page. The same views are the JSON API's responses, so their
pydantic schemas are the OpenAPI document's. Only metadata is ever shown, never data values;
which products a page may show is decided by :class:`Visibility`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from dataproduct_operator.api.accessrequest import KIND as ACCESS_REQUEST_KIND
from dataproduct_operator.api.conditions import (
    ACCESS_READY,
    DATA_HEALTHY,
    MONITORING_READY,
    PIPELINES_READY,
    POLICY_COMPLIANT,
    READY,
    STORAGE_READY,
    Condition,
    ConditionStatus,
)
from dataproduct_operator.api.datadomain import DataDomain
from dataproduct_operator.api.dataproduct import (
    AccessSource,
    Classification,
    DataProduct,
    Discoverability,
    EffectiveReader,
    Lifecycle,
    OutputPort,
    PipelineStatus,
    PortEndpoint,
    PortGrant,
    PortHealth,
    ReaderKind,
    RunChecks,
    RunStatus,
)
from dataproduct_operator.api.kinds import API_VERSION
from dataproduct_operator.api.naming import connection_config_map_name, reader_secret_name
from dataproduct_operator.api.quantity import duration_seconds, parse_quantity
from dataproduct_operator.catalog import urls
from dataproduct_operator.catalog.exports.ids import product_id
from dataproduct_operator.catalog.limits import CpuBudgetSpentError
from dataproduct_operator.catalog.lineage import Health, LineageGraph, health_of, product_node_id
from dataproduct_operator.constants import LABEL_PIPELINE
from dataproduct_operator.specs.dataproduct import CONNECTION_KEY
from dataproduct_operator.status.dataproduct import job_state
from dataproduct_operator.status.health import writers

RUNS_SHOWN = 10
LINEAGE_HOPS = 2  # of the lineage a product page links to

CONDITION_TOPICS = {
    READY: "Overall",
    STORAGE_READY: "Storage",
    PIPELINES_READY: "Pipelines",
    ACCESS_READY: "Access",
    MONITORING_READY: "Monitoring",
    POLICY_COMPLIANT: "Mesh policies",
    DATA_HEALTHY: "Data health",
}


class View(BaseModel):
    """Base of every view: immutable, camelCase in JSON like the Kubernetes objects."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, alias_generator=to_camel)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class Visibility(BaseModel):
    """Which products the catalog shows where (``spec.discoverability``)."""

    model_config = ConfigDict(frozen=True)

    show_domain_products: bool = False

    def in_mesh(self, discoverability: Discoverability) -> bool:
        """Listed mesh-wide: index, search, API list, lineage graph."""
        return discoverability is Discoverability.PUBLIC

    def on_domain_page(self, discoverability: Discoverability) -> bool:
        """Shown on its domain's page, and its own page reachable from there."""
        return discoverability is Discoverability.PUBLIC or (
            discoverability is Discoverability.DOMAIN and self.show_domain_products
        )


def _condition(conditions: Iterable[Condition], kind: str) -> Condition | None:
    return next((c for c in conditions if c.type == kind), None)


class ProductSummary(View):
    """One product as the index lists it."""

    id: str = Field(description="<namespace>.<name>, the id of the exports.")
    namespace: str
    name: str
    domain: str
    description: str
    owner_team: str
    version: str | None
    lifecycle: str
    classification: str
    discoverability: Discoverability
    tags: list[str]
    ports: list[str] = Field(description="Names of the output ports.")
    columns: list[str] = Field(description="Column names of every port.")
    health: Health
    health_reason: str = Field(
        description="Reason of Ready, or of DataHealthy when Ready is True, if any."
    )
    url: str = Field(description="The product page.")
    api_url: str
    truncated: bool = Field(
        default=False,
        description="Some texts or lists were shortened by the catalog (ending in …); "
        "the product's page says which, and where the full object is.",
    )


def summarize(product: DataProduct, *, truncated: bool = False) -> ProductSummary:
    spec = product.spec
    ready = _condition(product.status.conditions, READY)
    data = _condition(product.status.conditions, DATA_HEALTHY)
    concern = data if ready is not None and ready.status is ConditionStatus.TRUE else ready
    return ProductSummary(
        id=product_id(product.namespace, product.name),
        namespace=product.namespace,
        name=product.name,
        domain=spec.domain,
        description=spec.description,
        owner_team=spec.owner.team,
        version=spec.version,
        lifecycle=spec.lifecycle.value,
        classification=spec.classification.value,
        discoverability=spec.discoverability,
        tags=list(spec.tags),
        ports=[port.name for port in spec.output_ports],
        columns=sorted({c.name for port in spec.output_ports for c in port.schema_}),
        health=health_of(product),
        health_reason=concern.reason if concern else ready.reason if ready else "",
        url=urls.product_url(product.namespace, product.name),
        api_url=urls.api_product_url(product.namespace, product.name),
        truncated=truncated,
    )


class Filters(View):
    """Search and filters of the index (and of the API list)."""

    q: str = ""
    domain: str = ""
    lifecycle: str = ""
    classification: str = ""
    health: str = ""

    def matches(self, summary: ProductSummary) -> bool:
        for field in ("domain", "lifecycle", "classification", "health"):
            wanted = getattr(self, field)
            if wanted and str(getattr(summary, field)) != wanted:
                return False
        words = self.q.lower().split()
        if not words:
            return True
        text = _search_text(summary)
        return all(word in text for word in words)


def _search_text(summary: ProductSummary) -> str:
    """What a search word may match: name, description, tags and column names."""
    return " ".join(
        [summary.name, summary.description, *summary.tags, *summary.columns, *summary.ports]
    ).lower()


class IndexView(View):
    """The index: the products found, and what the filters can choose from."""

    products: list[ProductSummary]
    total: int = Field(description="Products listed in the mesh before search and filters.")
    counts_per_domain: dict[str, int] = Field(description="Products found, per domain.")
    domains: list[str] = Field(description="Every domain with a listed product, or onboarded.")
    lifecycles: list[str]
    classifications: list[str]
    healths: list[str]
    truncated: bool = Field(
        default=False,
        description="The search spent its CPU budget before looking at every product: what it "
        "found so far.",
    )


Meter = Callable[[Iterable[ProductSummary]], Iterable[ProductSummary]]


def build_index(
    summaries: Sequence[ProductSummary],
    filters: Filters,
    *,
    domains: Iterable[str] = (),
    meter: Meter = iter,
) -> IndexView:
    """The index of ``summaries`` found by ``filters``; ``meter`` may stop the search
    (:class:`CpuBudgetSpentError`), which then answers what it found so far, marked truncated."""
    found: list[ProductSummary] = []
    truncated = False
    try:
        found.extend(s for s in meter(summaries) if filters.matches(s))
    except CpuBudgetSpentError:
        truncated = True
    found.sort(key=lambda s: (s.domain, s.name, s.namespace))
    return IndexView(
        products=found,
        total=len(summaries),
        counts_per_domain=dict(sorted(Counter(s.domain for s in found).items())),
        domains=sorted({s.domain for s in summaries} | set(domains)),
        lifecycles=[item.value for item in Lifecycle],
        classifications=[item.value for item in Classification],
        healths=[item.value for item in Health],
        truncated=truncated,
    )


class ColumnView(View):
    name: str
    type: str
    description: str | None
    required: bool
    unique: bool
    pii: bool
    classification: str | None


class SloState(StrEnum):
    FRESH = "fresh"
    STALE = "stale"
    UNKNOWN = "unknown"


class SloView(View):
    """One objective of a port and whether it is met now."""

    objective: str = Field(description="freshness or availability.")
    target: str
    state: SloState
    detail: str = Field(description="Why it is in that state, in words.")


class EndpointView(View):
    """Where a store port's table is: what a reader connects to (never a credential)."""

    store: str
    host: str
    port: int
    database: str
    schema_name: str
    table: str


class ReadCommand(View):
    """How one reader of a store port reads it: the Secret with its login (in the reader's
    namespace) and the psql line that uses it; for a Group or User, the role a DBA maps its
    logins onto."""

    reader: str = Field(description="Who reads: ServiceAccount namespace/name, Group or User.")
    secret: str | None = Field(description="namespace/name of the Secret with its login.")
    role: str | None = Field(description="The store role of a Group or User reader.")
    command: str


class PortHealthView(View):
    """What the last runs and the store say of a port's data."""

    rows: int | None
    size_bytes: int | None
    last_updated: str | None
    freshness: str = Field(description="Met, Stale or Unknown against the freshness SLO.")
    checks: str = Field(description="Passing, Failing or Unknown (the last run's checks).")
    failed_checks: list[str] = Field(description="Checks that failed in the last run.")


class PortView(View):
    name: str
    description: str | None
    format: str
    size: str
    claim_name: str | None = Field(description="The PersistentVolumeClaim, once created.")
    phase: str | None
    columns: list[ColumnView]
    slos: list[SloView]
    endpoint: EndpointView | None = Field(
        default=None, description="The table of a store port, once the operator placed it."
    )
    reads: list[ReadCommand] = Field(
        default_factory=list, description="How each reader granted on a store port reads it."
    )
    health: PortHealthView | None = Field(
        default=None, description="Rows, size, last update and checks, once the operator saw them."
    )
    contract_url: str = Field(
        default="", description="The port's ODCS contract alone, one YAML document."
    )


class ConditionView(View):
    type: str
    topic: str = Field(description="The condition's type in words.")
    ok: bool | None = Field(description="True, False, or None when unknown.")
    reason: str
    message: str
    since: str | None


class PipelineRunView(View):
    pipeline: str
    job: str
    result: str = Field(description="Running, Succeeded or Failed.")
    started: str | None
    finished: str | None


class PipelineView(View):
    name: str
    runs: str  # its image, or the built-in runner's transform
    schedule: str | None
    last_run_status: str
    last_successful_time: str | None
    last_failure_time: str | None
    rows_written: int | None = Field(default=None, description="Rows its last run published.")
    checks: str | None = Field(default=None, description="Its last run's checks, in words.")
    message: str | None = Field(default=None, description="Why its last run failed.")


class ReaderView(View):
    kind: str
    name: str
    namespace: str | None


class ContactView(View):
    name: str
    email: str | None


class LinkedProduct(View):
    """A product upstream or downstream of another, or a source outside the mesh."""

    label: str
    kind: str = Field(description="product, external or unlisted.")
    port: str = Field(description="The port or input the data flows through.")
    url: str | None
    health: Health


class ConnectionView(View):
    """Where a port's data is, as the connection ConfigMap tells readers."""

    name: str
    format: str
    claim_name: str
    mount_path: str


class Snippet(View):
    title: str
    command: str


class RequestAccessView(View):
    """How a consumer asks for access to the product (``spec.access.requests``): the ``dpo``
    command and the DataAccessRequest it applies, with placeholders the consumer replaces."""

    enabled: bool = Field(description="Whether the product takes access requests.")
    max_duration: str | None = Field(
        description="The longest access a request may ask for; None when requests are off."
    )
    ports: list[str] = Field(description="The ports one may ask for; none named: every port.")
    command: str | None = Field(description="The dpo access request line; None when off.")
    manifest: str | None = Field(
        description="The DataAccessRequest YAML the command applies; None when off."
    )


class GrantView(View):
    """An access granted by an approved request, as long as it lasts."""

    subject: str = Field(description="Who reads: ServiceAccount namespace/name, Group or User.")
    ports: list[str] = Field(description="The ports it reads; empty: every port.")
    purpose: str | None = Field(description="Why, as the requester wrote it.")
    expires_at: str | None = Field(description="When the access ends (RFC 3339).")
    expires_in: str | None = Field(
        description="How long until then (30d, 5h, 0s once passed); None when unreadable."
    )


class ProductAccessView(View):
    """Access requests of a product: how to ask, the grants in force and how many wait."""

    requests: RequestAccessView
    grant_count: int = Field(description="Grants of approved requests in force now.")
    grants: list[GrantView] | None = Field(
        description="Those grants with their subjects and purposes; None for a caller who may "
        "not see the product's namespace (it gets the count only)."
    )
    pending: int = Field(description="Requests waiting for the owners' decision.")
    grants_shortened: bool = Field(
        default=False,
        description="The catalog keeps the status's readers shortened: there are at least "
        "grantCount grants, perhaps more (the full object lists them all).",
    )
    pending_shortened: bool = Field(
        default=False,
        description="The same for the pending requests: at least pending, perhaps more.",
    )


class ProductDetail(View):
    """Everything the product page shows."""

    summary: ProductSummary
    contacts: list[ContactView]
    discoverability: str
    deletion_policy: str
    created: str | None
    ports: list[PortView]
    conditions: list[ConditionView]
    pipelines: list[PipelineView]
    runs: list[PipelineRunView] = Field(description=f"The last {RUNS_SHOWN} runs, newest first.")
    readers: list[ReaderView]
    access: ProductAccessView = Field(
        description="Access requests: how to ask, grants of approved ones, pending count."
    )
    connection: list[ConnectionView] | None = Field(
        description="The connection ConfigMap's output ports, once it exists."
    )
    connection_config_map: str
    upstream: list[LinkedProduct]
    downstream: list[LinkedProduct]
    snippets: list[Snippet]
    exports: dict[str, str] = Field(description="Export format -> API URL.")
    lineage_url: str = Field(description="The lineage graph around the product.")
    truncated: list[str] = Field(
        default_factory=list,
        description="Fields the catalog keeps shortened (texts end in …, lists cut); the "
        "full object is at fullObject.",
    )
    full_object: Snippet = Field(
        description="Where the full object is: its API server path, and the kubectl command."
    )


def _freshness(
    target: str,
    pipelines: Sequence[PipelineStatus],
    now: datetime,
    last_updated: str | None = None,
) -> SloView:
    """Whether the data is newer than ``target``: the port's last update (its last run's
    watermark) when the operator saw one, else the last successful run of any pipeline."""
    moment = parse_time(last_updated)
    if moment is not None:
        age = (now - moment).total_seconds()
        return SloView(
            objective="freshness",
            target=target,
            state=SloState.FRESH if age <= duration_seconds(target) else SloState.STALE,
            detail=f"Data last updated {describe_age(age)} ago ({last_updated}), "
            f"objective {target}",
        )
    successes = [p.last_successful_time for p in pipelines if p.last_successful_time]
    if not pipelines:
        return SloView(
            objective="freshness",
            target=target,
            state=SloState.UNKNOWN,
            detail="No pipeline writes this product; freshness is not observed",
        )
    if not successes:
        return SloView(
            objective="freshness",
            target=target,
            state=SloState.STALE,
            detail="No pipeline run has succeeded yet",
        )
    last = max(successes)
    moment = parse_time(last)
    if moment is None:
        return SloView(
            objective="freshness",
            target=target,
            state=SloState.UNKNOWN,
            detail=f"The last successful run's time cannot be read: {last!r}",
        )
    age = (now - moment).total_seconds()
    fresh = age <= duration_seconds(target)
    return SloView(
        objective="freshness",
        target=target,
        state=SloState.FRESH if fresh else SloState.STALE,
        detail=f"Last successful run {describe_age(age)} ago ({last}), objective {target}",
    )


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time of a status, or None when it is absent or unreadable (the status is
    anyone's with the right to write it; a page must not fail on it). Without a zone: UTC."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def describe_age(seconds: float) -> str:
    """An age in its largest whole unit: 90 -> ``1m``, 100000 -> ``1d``."""
    whole = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}"
    return f"{whole}s"


# The PG* variables of a reader Secret psql takes from the environment; host, port and database
# are on the command line, from the endpoint, so the line says where it connects.
_LOGIN_VARIABLES = ("PGUSER", "PGPASSWORD", "PGSSLMODE")


# What an endpoint's host, database, schema and table may hold for the page to offer a command
# with them: the DataStore's own patterns and the operator's names never hold more. A status
# holding anything else (written by hand) gets no command: a line a reader copies into a shell
# must not carry what a shell or psql would read as more than a name.
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.$-]*")


def _plain(*names: str | None) -> bool:
    return all(_PLAIN.fullmatch(name) for name in names if name is not None)


def _reads(endpoint: PortEndpoint, grants: list[PortGrant]) -> list[ReadCommand]:
    where = (endpoint.store, endpoint.host, endpoint.database, endpoint.schema_, endpoint.table)
    if not _plain(*where):
        return []
    return [
        _read_command(endpoint, grant)
        for grant in grants
        if _plain(grant.name, grant.namespace, grant.role)
    ]


def _select(endpoint: PortEndpoint) -> str:
    # Shown, never run; the operator's schema and table names are [a-z0-9_] only.
    return f"SELECT * FROM {endpoint.schema_}.{endpoint.table} LIMIT 10"  # noqa: S608


def _psql(endpoint: PortEndpoint) -> str:
    return (
        f'psql "host={endpoint.host} port={endpoint.port} dbname={endpoint.database}" '
        f"-c '{_select(endpoint)}'"
    )


def _read_command(endpoint: PortEndpoint, grant: PortGrant) -> ReadCommand:
    """The lines a reader runs: a ServiceAccount's login is in its Secret, whose PG* keys go to
    the environment (shown as the command that sets them, never their values); a Group or
    User reads through a login its DBA grants the role."""
    if grant.kind is ReaderKind.SERVICE_ACCOUNT and grant.namespace:
        secret = reader_secret_name(endpoint.store, grant.name)
        template = "".join(
            f'export {key}={{{{index .data "{key}" | base64decode}}}}{{{{"\\n"}}}}'
            for key in _LOGIN_VARIABLES
        )
        return ReadCommand(
            reader=f"ServiceAccount {grant.namespace}/{grant.name}",
            secret=f"{grant.namespace}/{secret}",
            role=None,
            command=(
                f'eval "$(kubectl get secret {secret} -n {grant.namespace} '
                f"-o go-template='{template}')\"\n{_psql(endpoint)}"
            ),
        )
    return ReadCommand(
        reader=f"{grant.kind.value} {grant.name}",
        secret=None,
        role=grant.role,
        command=f"-- as a login granted the role {grant.role}\n{_select(endpoint)};",
    )


def _endpoint_view(endpoint: PortEndpoint) -> EndpointView:
    return EndpointView(schema_name=endpoint.schema_, **endpoint.model_dump(exclude={"schema_"}))


def _port_view(product: DataProduct, port: OutputPort, now: datetime) -> PortView:
    status = next((p for p in product.status.output_ports if p.name == port.name), None)
    endpoint = status.endpoint if status else None
    slos: list[SloView] = []
    if port.slo is not None and port.slo.freshness is not None:
        updated = status.health.last_updated if status and status.health else None
        slos.append(_freshness(port.slo.freshness, product.status.pipelines, now, updated))
    if port.slo is not None and port.slo.availability is not None:
        slos.append(
            SloView(
                objective="availability",
                target=port.slo.availability,
                state=SloState.UNKNOWN,
                detail="Availability is promised, not measured by the operator",
            )
        )
    return PortView(
        name=port.name,
        description=port.description,
        format=port.format.value,
        size=port.volume.size,
        claim_name=status.claim_name if status else None,
        phase=status.phase if status else None,
        columns=[
            ColumnView(
                name=c.name,
                type=c.type,
                description=c.description,
                required=c.required,
                unique=c.unique,
                pii=c.pii,
                classification=c.classification.value if c.classification else None,
            )
            for c in port.schema_
        ],
        slos=slos,
        endpoint=_endpoint_view(endpoint) if endpoint else None,
        reads=_reads(endpoint, status.grants) if status and endpoint else [],
        health=_port_health_view(product, port.name, status.health)
        if status and status.health
        else None,
        contract_url=urls.api_port_contract_url(product.namespace, product.name, port.name),
    )


def _port_health_view(product: DataProduct, port: str, health: PortHealth) -> PortHealthView:
    runs = {p.name: p.last_run for p in product.status.pipelines}
    failed = sorted(
        {
            name
            for pipeline in writers(product, port)
            if (run := runs.get(pipeline)) is not None and run.checks is not None
            for name in run.checks.failed_names
        }
    )
    return PortHealthView(
        rows=health.rows,
        size_bytes=health.size_bytes,
        last_updated=health.last_updated,
        freshness=health.freshness.value,
        checks=health.checks.value,
        failed_checks=failed,
    )


def _condition_view(condition: Condition) -> ConditionView:
    ok = {ConditionStatus.TRUE: True, ConditionStatus.FALSE: False}.get(condition.status)
    return ConditionView(
        type=condition.type,
        topic=CONDITION_TOPICS.get(condition.type, condition.type),
        ok=ok,
        reason=condition.reason,
        message=condition.message,
        since=condition.last_transition_time,
    )


def _runs(jobs: Iterable[Mapping[str, Any]]) -> list[PipelineRunView]:
    runs = []
    for job in jobs:
        metadata = job.get("metadata") or {}
        state, when = job_state(dict(job))
        started = (job.get("status") or {}).get("startTime") or metadata.get("creationTimestamp")
        runs.append(
            PipelineRunView(
                pipeline=(metadata.get("labels") or {}).get(LABEL_PIPELINE, ""),
                job=metadata.get("name", ""),
                result=state.value,
                started=started,
                finished=None if state is RunStatus.RUNNING else when,
            )
        )
    runs.sort(key=lambda run: (run.started or "", run.job), reverse=True)
    return runs[:RUNS_SHOWN]


def _connection(config_map: Mapping[str, Any] | None) -> list[ConnectionView] | None:
    """The ports of the connection ConfigMap; entries not of the shape the operator writes
    (the namespace's editors can change the ConfigMap) are left out."""
    if config_map is None:
        return None
    text = (config_map.get("data") or {}).get(CONNECTION_KEY)
    try:
        ports = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(ports, list):
        return None
    fields = ("name", "format", "claimName", "mountPath")
    return [
        ConnectionView(
            name=port["name"],
            format=port["format"],
            claim_name=port["claimName"],
            mount_path=port["mountPath"],
        )
        for port in ports
        if isinstance(port, dict) and all(isinstance(port.get(f), str) for f in fields)
    ]


def _linked(graph: LineageGraph, node_id: str, *, upstream: bool) -> list[LinkedProduct]:
    nodes = {node.id: node for node in graph.nodes}
    linked = []
    for edge in graph.edges:
        if (edge.target if upstream else edge.source) != node_id:
            continue
        other = nodes[edge.source if upstream else edge.target]
        linked.append(
            LinkedProduct(
                label=other.label,
                kind=other.kind.value,
                port=edge.label,
                url=other.href,
                health=other.health,
            )
        )
    return sorted(linked, key=lambda item: (item.label, item.port))


def _snippets(product: DataProduct) -> list[Snippet]:
    namespace, name = product.namespace, product.name
    config_map = connection_config_map_name(name)
    return [
        Snippet(title="Show the product", command=f"kubectl get dataproduct {name} -n {namespace}"),
        Snippet(
            title="Read its connection details",
            command=f"kubectl get configmap {config_map} -n {namespace} "
            f"-o jsonpath='{{.data.{CONNECTION_KEY.replace('.', chr(92) + '.')}}}'",
        ),
        Snippet(
            title="Export its data contracts (ODCS)",
            command=f"dpo export --format odcs --namespace {namespace} --name {name}",
        ),
        Snippet(
            title="Export it as an ODPS data product",
            command=f"dpo export --format odps --namespace {namespace} --name {name}",
        ),
    ]


def without_unshown_inputs(product: DataProduct, shown: Callable[[str, str], bool]) -> DataProduct:
    """``product`` as the catalog may export it: inputs from products it does not show (by
    namespace and name; also those that do not exist) left out, so an export names nothing the
    catalog hides."""
    spec = product.spec
    kept = [
        item
        for item in spec.inputs
        if item.data_product is None
        or shown(item.data_product.namespace or product.namespace, item.data_product.name)
    ]
    if len(kept) == len(spec.inputs):
        return product
    return product.model_copy(update={"spec": spec.model_copy(update={"inputs": kept})})


def build_product_detail(
    product: DataProduct,
    *,
    graph: LineageGraph,
    jobs: Iterable[Mapping[str, Any]],
    connection: Mapping[str, Any] | None,
    export_formats: Iterable[str],
    now: datetime | None = None,
    truncated: Sequence[str] = (),
    subjects_shown: bool = True,
) -> ProductDetail:
    """The product page of ``product``; ``graph`` is the lineage the page may show (upstream
    and downstream come from it, with what may not be shown already unlisted);
    ``subjects_shown``: whether the caller may see who holds a requested grant, and why."""
    moment = now or datetime.now(UTC)
    spec = product.spec
    node_id = product_node_id(product.namespace, product.name)
    return ProductDetail(
        summary=summarize(product, truncated=bool(truncated)),
        contacts=[ContactView(name=c.name, email=c.email) for c in spec.owner.contacts],
        discoverability=spec.discoverability.value,
        deletion_policy=spec.deletion_policy.value,
        created=product.creation_timestamp,
        ports=[_port_view(product, port, moment) for port in spec.output_ports],
        conditions=[_condition_view(c) for c in product.status.conditions],
        pipelines=[_pipeline_view(product, p.name) for p in spec.pipelines],
        runs=_runs(jobs),
        readers=[
            ReaderView(kind=r.kind.value, name=r.name, namespace=r.namespace)
            for r in spec.access.readers
        ],
        access=build_access_view(
            product, now=moment, subjects_shown=subjects_shown, truncated=truncated
        ),
        connection=_connection(connection),
        connection_config_map=connection_config_map_name(product.name),
        upstream=_linked(graph, node_id, upstream=True),
        downstream=_linked(graph, node_id, upstream=False),
        snippets=_snippets(product),
        exports={
            name: urls.api_export_url(product.namespace, product.name, name)
            for name in export_formats
        },
        lineage_url=urls.lineage_url(focus=node_id, hops=LINEAGE_HOPS),
        truncated=list(truncated),
        full_object=_full_object(product),
    )


# Placeholders of the request a page shows: what the consumer replaces before running it.
YOUR_NAMESPACE = "<your-namespace>"
YOUR_SERVICE_ACCOUNT = "<serviceaccount>"
YOUR_PURPOSE = "<why you need the data>"
YOUR_USER_NAME = "<your user name>"
YOUR_REQUEST_NAME = "<request-name>"


def _request_command(product: DataProduct, ports: Sequence[str], duration: str) -> str:
    """The ``dpo access request`` line; every name in it is one the API server checked (the
    product's, its ports', the duration's patterns), so no quoting is needed but the purpose's."""
    lines = [f"dpo access request {product.namespace}/{product.name}"]
    lines += [f"--port {port}" for port in ports]
    lines += [
        f"--for serviceaccount:{YOUR_NAMESPACE}/{YOUR_SERVICE_ACCOUNT}",
        f'--purpose "{YOUR_PURPOSE}"',
        f"--duration {duration}",
    ]
    return " \\\n    ".join(lines)


def _request_manifest(product: DataProduct, ports: Sequence[str], duration: str) -> str:
    """The DataAccessRequest the command applies (``-o yaml`` of the CLI), for GitOps."""
    document = {
        "apiVersion": API_VERSION,
        "kind": ACCESS_REQUEST_KIND,
        "metadata": {"name": YOUR_REQUEST_NAME, "namespace": YOUR_NAMESPACE},
        "spec": {
            "product": {"namespace": product.namespace, "name": product.name},
            "ports": list(ports),
            "subject": {
                "kind": ReaderKind.SERVICE_ACCOUNT.value,
                "name": YOUR_SERVICE_ACCOUNT,
                "namespace": YOUR_NAMESPACE,
            },
            "purpose": YOUR_PURPOSE,
            "duration": duration,
            "requestedBy": YOUR_USER_NAME,
        },
    }
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def _request_access_view(product: DataProduct) -> RequestAccessView:
    requests = product.spec.access.requests
    ports = [port.name for port in product.spec.output_ports]
    if not requests.enabled:
        return RequestAccessView(
            enabled=False, max_duration=None, ports=ports, command=None, manifest=None
        )
    cap = requests.max_duration
    return RequestAccessView(
        enabled=True,
        max_duration=cap,
        ports=ports,
        command=_request_command(product, ports, cap),
        manifest=_request_manifest(product, ports, cap),
    )


def _subject(reader: EffectiveReader) -> str:
    if reader.kind is ReaderKind.SERVICE_ACCOUNT:
        return f"ServiceAccount {reader.namespace}/{reader.name}"
    return f"{reader.kind.value} {reader.name}"


def _grant_view(reader: EffectiveReader, now: datetime) -> GrantView:
    ends = parse_time(reader.expires_at)
    return GrantView(
        subject=_subject(reader),
        ports=list(reader.ports),
        purpose=reader.purpose,
        expires_at=reader.expires_at,
        expires_in=None if ends is None else describe_age((ends - now).total_seconds()),
    )


def build_access_view(
    product: DataProduct, *, now: datetime, subjects_shown: bool, truncated: Sequence[str] = ()
) -> ProductAccessView:
    """What the product page and API show of access requests: how to ask, and the grants of
    approved requests (``status.access.readers`` of source Request) soonest-ending first; their
    subjects and purposes only when ``subjects_shown``, else their number alone. ``truncated``:
    the fields the store shortened (a shortened list makes the counts lower bounds)."""
    status = product.status.access
    requested = [r for r in (status.readers if status else []) if r.source is AccessSource.REQUEST]
    grants = sorted(
        (_grant_view(reader, now) for reader in requested),
        key=lambda g: (g.expires_at or "", g.subject),
    )
    return ProductAccessView(
        requests=_request_access_view(product),
        grant_count=len(grants),
        grants=grants if subjects_shown else None,
        pending=len(status.pending) if status else 0,
        grants_shortened="status.access.readers" in truncated,
        pending_shortened="status.access.pending" in truncated,
    )


def _full_object(product: DataProduct) -> Snippet:
    namespace, name = product.namespace, product.name
    return Snippet(
        title=f"/apis/{API_VERSION}/namespaces/{namespace}/dataproducts/{name}",
        command=f"kubectl get dataproduct {name} -n {namespace} -o yaml",
    )


def _pipeline_view(product: DataProduct, name: str) -> PipelineView:
    pipeline = next(p for p in product.spec.pipelines if p.name == name)
    status = next((p for p in product.status.pipelines if p.name == name), None)
    last = status.last_run if status else None
    return PipelineView(
        name=name,
        runs=pipeline.what_runs,
        schedule=pipeline.schedule,
        last_run_status=(status.last_run_status if status else RunStatus.NEVER_RUN).value,
        last_successful_time=status.last_successful_time if status else None,
        last_failure_time=status.last_failure_time if status else None,
        rows_written=last.rows_written if last else None,
        checks=_checks_text(last.checks) if last and last.checks else None,
        message=last.message if last else None,
    )


def _checks_text(checks: RunChecks) -> str:
    """``3 passed, 1 failed: positive``."""
    failed = f": {', '.join(checks.failed_names)}" if checks.failed_names else ""
    return f"{checks.passed} passed, {checks.failed} failed{failed}"


class QuotaView(View):
    resource: str
    used: str
    hard: str
    percent: int | None = Field(description="Use as a percentage of the limit, when computable.")


class DomainSummary(View):
    name: str
    display_name: str
    description: str | None
    owner_team: str
    products: int = Field(description="Products shown in the catalog.")
    healthy: int
    url: str
    onboarded: bool = Field(description="A DataDomain exists for it.")


class DomainDetail(View):
    summary: DomainSummary
    namespace: str | None
    contacts: list[ContactView]
    cost_center: str | None
    allowed_consumers: list[str]
    quota: list[QuotaView]
    conditions: list[ConditionView]
    products: list[ProductSummary]


def _percent(used: str, hard: str) -> int | None:
    try:
        limit = parse_quantity(hard)
        return round(100 * parse_quantity(used) / limit) if limit else None
    except ValueError:  # a quantity the status should not hold
        return None


def summarize_domain(
    name: str, domain: DataDomain | None, products: Sequence[ProductSummary]
) -> DomainSummary:
    spec = domain.spec if domain else None
    return DomainSummary(
        name=name,
        display_name=(spec.display_name if spec else None) or name,
        description=spec.description if spec else None,
        owner_team=spec.owners.team if spec else "",
        products=len(products),
        healthy=sum(1 for p in products if p.health is Health.HEALTHY),
        url=urls.domain_url(name),
        onboarded=domain is not None,
    )


def build_domain_detail(
    name: str, domain: DataDomain | None, products: Sequence[ProductSummary]
) -> DomainDetail:
    spec, status = (domain.spec, domain.status) if domain else (None, None)
    return DomainDetail(
        summary=summarize_domain(name, domain, products),
        namespace=status.namespace if status else None,
        contacts=[ContactView(name=c.name, email=c.email) for c in spec.owners.contacts]
        if spec
        else [],
        cost_center=spec.cost_center if spec else None,
        allowed_consumers=list(spec.allowed_consumers) if spec else [],
        quota=[
            QuotaView(
                resource=q.resource, used=q.used, hard=q.hard, percent=_percent(q.used, q.hard)
            )
            for q in (status.quota if status else [])
        ],
        conditions=[_condition_view(c) for c in (status.conditions if status else [])],
        products=sorted(products, key=lambda p: (p.name, p.namespace)),
    )
