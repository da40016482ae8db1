"""The Helm chart's values: one model, the source of ``values.yaml`` and ``values.schema.json``.

Every knob has its default and its description here; ``make generate`` writes the commented
``values.yaml`` and the JSON schema Helm validates values against (layer ``manifests``, pure).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from dataproduct_operator.api.base import DNS_LABEL, LABEL_KEY, LABEL_VALUE
from dataproduct_operator.api.grants import GRANT_DURATION
from dataproduct_operator.constants import (
    ADMISSION_SLOT_PREFIX,
    DEFAULT_ADMISSION_SLOTS,
    DEFAULT_EXPIRY_NOTICE,
    MAX_ADMISSION_SLOTS,
    RUNNER_REPOSITORY,
)
from dataproduct_operator.manifests.crd import structural_schema
from dataproduct_operator.manifests.policies import DEFAULT_ALLOWED_REGISTRIES
from dataproduct_operator.openlineage.endpoint import DEFAULT_NAMESPACE as OPENLINEAGE_NAMESPACE
from dataproduct_operator.openlineage.endpoint import (
    MAX_NAMESPACE_LENGTH as MAX_OPENLINEAGE_NAMESPACE,
)
from dataproduct_operator.openlineage.endpoint import MAX_URL_LENGTH as MAX_OPENLINEAGE_URL
from dataproduct_operator.openlineage.endpoint import NAMESPACE as OPENLINEAGE_NAMESPACE_PATTERN

# A registry host and optional port; nothing else can reach the CEL it is written into.
REGISTRY_HOST = r"^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]{1,5})?$"


class _Values(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


FreeForm = dict[str, Any]


class Image(_Values):
    """The operator's container image."""

    repository: str = Field(
        default="ghcr.io/dataproduct-operator/dataproduct-operator",
        min_length=1,
        description="Image of the operator, built from operator/Dockerfile.",
    )
    tag: str = Field(default="", description="Image tag; empty means the chart's appVersion.")
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="When the kubelet pulls the image."
    )


class Crds(_Values):
    """The CustomResourceDefinitions: DataProduct, DataDomain, MeshPolicy."""

    enabled: bool = Field(
        default=True,
        description="Install the CustomResourceDefinitions with the chart. Turn off when "
        "they are managed elsewhere (kubectl apply -f crds/, a GitOps tool).",
    )
    keep: bool = Field(
        default=True,
        description="Annotate the CRDs with helm.sh/resource-policy: keep, so `helm "
        "uninstall` leaves them, and with them every DataProduct.",
    )


class ServiceAccount(_Values):
    """The identity the operator runs as."""

    create: bool = Field(default=True, description="Create the operator's ServiceAccount.")
    name: str = Field(
        default="", description="Name of the ServiceAccount; empty means the release's full name."
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations of the ServiceAccount."
    )


class Rbac(_Values):
    """The operator's permissions."""

    create: bool = Field(
        default=True,
        description="Create the operator's ClusterRoles, its bindings and the admission "
        "policies that fence it in (least privilege: every verb named, no wildcards, no "
        "escalate; write powers only in the namespaces of DataDomains). See the chart's README.",
    )


class Policies(_Values):
    """The starter MeshPolicies."""

    enabled: bool = Field(
        default=False,
        description="Install the starter MeshPolicies: production-freshness, "
        "pii-classification, production-contacts, retired-no-schedules, "
        "breaking-change-major-version (Deny) and allowed-registries (Audit). Needs "
        "crds.enabled or the CRDs installed beforehand.",
    )
    allowed_registries: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_REGISTRIES),
        max_length=64,
        description="Registries (host[:port]) the starter policy allowed-registries accepts "
        "pipeline images from; an image without a registry host is from docker.io. Audit "
        "only: the policy's status lists the products that use others.",
        json_schema_extra={"items": {"type": "string", "pattern": REGISTRY_HOST, "maxLength": 253}},
    )
    max_enforced: int = Field(
        default=DEFAULT_ADMISSION_SLOTS,
        ge=1,
        le=MAX_ADMISSION_SLOTS,
        description="MeshPolicies enforced at admission (Deny, Warn) at once, starter or not. "
        "Each takes one name of a pool the operator's ClusterRole grants by name "
        f"({ADMISSION_SLOT_PREFIX}000 and on), so it cannot touch any other admission policy; "
        "one more is Ready=False, reason NoAdmissionSlot, until one is deleted or set to Audit.",
    )


class ServiceMonitor(_Values):
    """A ServiceMonitor for the Prometheus operator."""

    enabled: bool = Field(
        default=False,
        description="Create a ServiceMonitor (needs the Prometheus operator's CRDs).",
    )
    interval: str = Field(
        default="30s", pattern=r"^[0-9]+(ms|s|m|h)$", description="Scrape interval."
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Extra labels, e.g. the release label your Prometheus selects.",
    )


class Metrics(_Values):
    """Prometheus metrics of the operator (reconciles, per-product readiness, staleness)."""

    enabled: bool = Field(
        default=True, description="Serve Prometheus metrics and a Service for them."
    )
    port: int = Field(default=8000, ge=1, le=65535, description="Port of the metrics endpoint.")
    service_monitor: ServiceMonitor = Field(default_factory=ServiceMonitor)


class GrafanaDashboard(_Values):
    """The Grafana dashboard of the data products (freshness, rows, size, checks, runs)."""

    enabled: bool = Field(
        default=True,
        description="Create the ConfigMap <release>-dashboard holding the dashboard's JSON, for "
        "Grafana's dashboard sidecar to load (docs/monitoring.md).",
    )
    labels: dict[str, str] = Field(
        default_factory=lambda: {"grafana_dashboard": "1"},
        description="Labels of the ConfigMap: the label Grafana's dashboard sidecar looks for.",
    )
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotations of the ConfigMap, e.g. grafana_folder for the sidecar's folder.",
    )


class Grafana(_Values):
    """Grafana: the dashboard of the data products."""

    dashboard: GrafanaDashboard = Field(default_factory=GrafanaDashboard)


class ArgoCdHealthChecks(_Values):
    """Argo CD health checks (Lua) of DataProduct, DataDomain and MeshPolicy."""

    enabled: bool = Field(
        default=True,
        description="Create the ConfigMap <release>-argocd-health-checks with the scripts under "
        "the argocd-cm keys resource.customizations.health.datamesh.dev_<Kind>, to merge into "
        "Argo CD's argocd-cm (docs/monitoring.md). Argo CD reads only its own argocd-cm: this "
        "ConfigMap does nothing by itself.",
    )


class ArgoCd(_Values):
    """Argo CD: how it tells whether the operator's objects are healthy."""

    health_checks: ArgoCdHealthChecks = Field(default_factory=ArgoCdHealthChecks)


class CatalogService(_Values):
    """The Service in front of the catalog."""

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="Service type; expose it further with an Ingress."
    )
    port: int = Field(default=80, ge=1, le=65535, description="Port of the Service.")


class CatalogLimitValues(_Values):
    """What one request may cost the catalog (docs/catalog.md, "Limits")."""

    search_cpu_ms: int = Field(
        default=200,
        ge=1,
        description="CPU time one search may take; then it answers what it found, marked "
        "truncated.",
    )
    export_cpu_ms: int = Field(
        default=10000,
        ge=1,
        description="CPU time one whole-mesh export may take; then it answers 503.",
    )
    mesh_exports: int = Field(
        default=1,
        ge=1,
        description="Whole-mesh exports served at once per process; another one meanwhile "
        "answers 429 with Retry-After.",
    )


class Catalog(_Values):
    """The data product catalog: web pages, JSON API (/api/v1/), lineage graph and exports."""

    enabled: bool = Field(
        default=True, description="Serve the catalog, with a Service named <release>-catalog."
    )
    standalone: bool = Field(
        default=False,
        description="Run it as its own Deployment with its own read-only identity (list and "
        "watch DataProducts, DataDomains, ConfigMaps and Jobs, cluster-wide: RBAC cannot narrow "
        "to the connection ConfigMaps it reads) instead of in the operator's process; scale it "
        "with replicas.",
    )
    port: int = Field(default=8090, ge=1, le=65535, description="Container port of the catalog.")
    show_domain_products: bool = Field(
        default=False,
        description="Show products with discoverability Domain on their domain's page (never in "
        "the mesh-wide index, search or lineage). Hidden products are never shown.",
    )
    public_url: str = Field(
        default="",
        pattern=r"^(https?://.+)?$",
        description="The catalog's URL as users reach it (an Ingress), for the links in exports; "
        "empty: the URL each request was sent to.",
    )
    auth: Literal["none", "kubernetes"] = Field(
        default="kubernetes",
        description="Who may read the catalog. kubernetes: every request but /healthz needs "
        "'Authorization: Bearer <token>' that the API server accepts (TokenReview), and shows "
        "only the products of namespaces where that user may list dataproducts "
        "(SubjectAccessReview; answers kept 60 s and 30 s); the catalog's identity gets create "
        "on tokenreviews and subjectaccessreviews. Browsers sign in with a token at /login, or "
        "go through a proxy that sends the user's token (docs/catalog.md). none: anyone who "
        "reaches the Service sees every product the visibility settings show.",
    )
    replicas: int = Field(default=1, ge=1, description="Replicas of the standalone catalog.")
    resources: FreeForm = Field(
        default_factory=lambda: {
            "requests": {"cpu": "50m", "memory": "96Mi"},
            "limits": {"memory": "256Mi"},
        },
        description="Resources of the standalone catalog's container.",
    )
    service: CatalogService = Field(default_factory=CatalogService)
    limits: CatalogLimitValues = Field(default_factory=CatalogLimitValues)


class NetworkPolicy(_Values):
    """NetworkPolicies for the ingress of the operator's and the standalone catalog's pods
    (egress is left open: the API server and the data stores are reached from them)."""

    enabled: bool = Field(
        default=True,
        description="Create them. The health port stays open to every source: kubelet probes "
        "come from the node, which most network plugins let through anyway.",
    )
    metrics_namespaces: list[str] = Field(
        default_factory=lambda: ["monitoring"],
        description="Namespaces (by kubernetes.io/metadata.name) from which the metrics port "
        "may be scraped; empty: from nowhere.",
        json_schema_extra={"items": {"type": "string", "pattern": DNS_LABEL}},
    )
    catalog_from: list[FreeForm] = Field(
        default_factory=list,
        description="NetworkPolicyPeers (namespaceSelector, podSelector, ipBlock) from which "
        "the catalog's port may be reached, e.g. the ingress controller's namespace; empty: "
        "from every source (with catalog.auth kubernetes the catalog checks every caller).",
    )


class PipelineToleration(_Values):
    """A taint the pipeline pods tolerate."""

    key: str = Field(pattern=LABEL_KEY, max_length=253, description="The taint's key.")
    value: str = Field(
        default="", pattern=LABEL_VALUE, description="The taint's value; empty: any value."
    )
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        default="", description="The taint's effect; empty: any effect."
    )


class RunnerImage(_Values):
    """The built-in runner's image, which sql pipelines run."""

    repository: str = Field(
        default=RUNNER_REPOSITORY,
        min_length=1,
        description="Image of the runner (`dpo pipeline run`), built with the operator's.",
    )
    tag: str = Field(default="", description="Image tag; empty means the chart's appVersion.")


class Pipelines(_Values):
    """Where the products' pipeline pods run (scheduled and on-demand runs alike): a node pool
    kept for data work, say; and the image sql pipelines run."""

    runner_image: RunnerImage = Field(default_factory=RunnerImage)
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="Labels the pipeline pods' nodes must carry (`dpo run "
        "--pipeline-node-selector`).",
    )
    tolerations: list[PipelineToleration] = Field(
        default_factory=list,
        description="Taints the pipeline pods tolerate (`dpo run --pipeline-toleration`).",
    )


class OpenLineage(_Values):
    """OpenLineage run events: START, then COMPLETE or FAIL, for every pipeline run the operator
    observes (docs/pipelines.md, "OpenLineage run events")."""

    url: str = Field(
        default="",
        max_length=MAX_OPENLINEAGE_URL,
        pattern=r"^(https?://[^\s@#]+)?$",
        description="Where the events go (`dpo run --openlineage-url`), e.g. "
        "http://marquez.lineage:5000 (a URL without a path posts to /api/v1/lineage); http or "
        "https, without credentials. Empty: no events are sent.",
    )
    namespace: str = Field(
        default=OPENLINEAGE_NAMESPACE,
        min_length=1,
        max_length=MAX_OPENLINEAGE_NAMESPACE,
        pattern=f"^{OPENLINEAGE_NAMESPACE_PATTERN.pattern}$",
        description="The OpenLineage namespace of the operator's jobs "
        "(<namespace>/<product>/<pipeline>), e.g. the cluster's name "
        "(`dpo run --openlineage-namespace`); the catalog's OpenLineage export names the jobs "
        "there too.",
    )
    include_hidden: bool = Field(
        default=False,
        description="Also report the runs of Hidden products, naming them and their tables to "
        "the lineage backend (`dpo run --openlineage-include-hidden`).",
    )


class AccessRequestValues(_Values):
    """Access requests (DataAccessRequest, docs/access.md)."""

    expiry_notice: str = Field(
        default=DEFAULT_EXPIRY_NOTICE,
        max_length=8,
        pattern=GRANT_DURATION,
        description="How long before its expiry an active request turns ExpiringSoon, with an "
        "Event in both namespaces (`dpo run --access-expiry-notice`): minutes, hours or days, "
        "such as 12h or 3d.",
    )


class LeaderElection(_Values):
    """Which replica reconciles: the holder of a coordination.k8s.io Lease."""

    enabled: bool = Field(
        default=True,
        description="Reconcile only while holding the Lease <release> in the release's "
        "namespace (taken over within about 12 s when its holder dies, at once when it stops). "
        "Turn off only with replicas: 1.",
    )


class PodDisruptionBudget(_Values):
    """A PodDisruptionBudget for the operator, created when replicas is more than 1."""

    enabled: bool = Field(default=True, description="Create the PodDisruptionBudget.")
    min_available: int = Field(
        default=1, ge=0, description="Operator pods kept through voluntary disruptions."
    )


class ChartValues(_Values):
    """Values of the dataproduct-operator chart."""

    image: Image = Field(default_factory=Image)
    replicas: int = Field(
        default=2,
        ge=1,
        description="Replicas of the operator. One leads (see leaderElection); the others watch "
        "and take over when it goes.",
    )
    leader_election: LeaderElection = Field(default_factory=LeaderElection)
    pipelines: Pipelines = Field(default_factory=Pipelines)
    openlineage: OpenLineage = Field(default_factory=OpenLineage)
    access_requests: AccessRequestValues = Field(default_factory=AccessRequestValues)
    pod_disruption_budget: PodDisruptionBudget = Field(default_factory=PodDisruptionBudget)
    image_pull_secrets: list[FreeForm] = Field(
        default_factory=list, description="Secrets for pulling the image: [{name: ...}]."
    )
    watch_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces whose DataProducts the operator handles; empty means all.",
        json_schema_extra={"items": {"type": "string", "pattern": DNS_LABEL}},
    )
    protected_namespaces: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Namespaces no DataDomain may use and in which the operator never binds "
        "itself or changes the namespace, besides kube-system, kube-public, kube-node-lease, "
        "default and the release's namespace (always protected), e.g. your monitoring and "
        "ingress namespaces.",
        json_schema_extra={"items": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63}},
    )
    drift_interval_seconds: int = Field(
        default=300,
        ge=10,
        description="Seconds between drift checks of each product (children changed by "
        "hand are also repaired at once, through watches).",
    )
    concurrent_reconciles: int = Field(
        default=16,
        ge=1,
        description="Products converged at once; more uses more memory and API server capacity "
        "under a burst of changes.",
    )
    log_level: Literal["info", "debug"] = Field(default="info", description="Log level.")
    crds: Crds = Field(default_factory=Crds)
    service_account: ServiceAccount = Field(default_factory=ServiceAccount)
    rbac: Rbac = Field(default_factory=Rbac)
    policies: Policies = Field(default_factory=Policies)
    metrics: Metrics = Field(default_factory=Metrics)
    grafana: Grafana = Field(default_factory=Grafana)
    argocd: ArgoCd = Field(default_factory=ArgoCd)
    catalog: Catalog = Field(default_factory=Catalog)
    network_policy: NetworkPolicy = Field(default_factory=NetworkPolicy)
    liveness_port: int = Field(
        default=8080, ge=1, le=65535, description="Port of the liveness endpoint (/healthz)."
    )
    resources: FreeForm = Field(
        default_factory=lambda: {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        },
        description="Resources of the operator container.",
    )
    pod_annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations of the operator pod."
    )
    pod_labels: dict[str, str] = Field(
        default_factory=dict, description="Extra labels of the operator pod."
    )
    priority_class_name: str = Field(default="", description="PriorityClass of the operator pod.")
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node selector of the operator pod."
    )
    tolerations: list[FreeForm] = Field(
        default_factory=list, description="Tolerations of the operator pod."
    )
    affinity: FreeForm = Field(default_factory=dict, description="Affinity of the operator pod.")


def build_values_schema() -> dict[str, Any]:
    """The JSON schema of the values (``values.schema.json``): unknown keys are errors."""
    schema = structural_schema(ChartValues)
    return {"$schema": "https://json-schema.org/draft-07/schema#", **schema}


def render_values_yaml() -> str:
    """``values.yaml``: every default, each under the comment that explains it."""
    lines: list[str] = []
    _render_model(ChartValues(), lines, indent="")
    return "\n".join(lines) + "\n"


def values_table() -> list[tuple[str, str, str]]:
    """(dotted key, default, description) of every leaf value, in ``values.yaml`` order."""
    rows: list[tuple[str, str, str]] = []

    def walk(values: BaseModel, prefix: str) -> None:
        for name, field in type(values).model_fields.items():
            key = prefix + (field.alias or name)
            value = getattr(values, name)
            if isinstance(value, BaseModel):
                walk(value, key + ".")
            else:
                rows.append((key, _flow(value), field.description or ""))

    walk(ChartValues(), "")
    return rows


def _render_model(values: BaseModel, lines: list[str], indent: str) -> None:
    for name, field in type(values).model_fields.items():
        key = field.alias or name
        value = getattr(values, name)
        description = field.description or (
            (type(value).__doc__ or "").strip() if isinstance(value, BaseModel) else ""
        )
        if description and not indent and lines:
            lines.append("")
        for line in _wrap(description, width=96 - len(indent)):
            lines.append(f"{indent}# {line}")
        if isinstance(value, BaseModel):
            lines.append(f"{indent}{key}:")
            _render_model(value, lines, indent + "  ")
        else:
            lines.append(f"{indent}{key}: {_flow(value)}")


def _flow(value: Any) -> str:
    """A value in YAML flow style on one line (strings quoted only when needed)."""
    if isinstance(value, str):
        return json.dumps(value) if value == "" else yaml.safe_dump(value).split("\n")[0]
    return yaml.safe_dump(value, default_flow_style=True, width=1000).split("\n")[0]


def _wrap(text: str, width: int) -> list[str]:
    words, lines, current = text.split(), [], ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    return [*lines, current] if current else lines
