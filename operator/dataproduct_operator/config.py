"""Operator configuration: every knob of ``dpo run`` in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dataproduct_operator.catalog.limits import CatalogLimits
from dataproduct_operator.constants import DEFAULT_ADMISSION_SLOTS
from dataproduct_operator.openlineage.endpoint import DEFAULT_NAMESPACE as OPENLINEAGE_NAMESPACE
from dataproduct_operator.specs.placement import PodPlacement


@dataclass(frozen=True)
class OperatorConfig:
    """How one operator process runs."""

    kubeconfig: Path | None = None
    context: str | None = None  # of the kubeconfig; None: its current context
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    metrics_port: int | None = 8000
    liveness_port: int | None = 8080
    drift_interval_seconds: float = 300.0
    retry_base_seconds: float = 5.0  # first retry of an object about which an error surfaced
    retry_quiet_base_seconds: float = 0.5  # first retry after the API server was away or busy
    retry_quiet_max_seconds: float = 10.0  # such retries never wait longer
    max_status_hold_seconds: float = 30.0  # a first status waits this long at most for claims
    workers: int = 100
    concurrent_reconciles: int = 16  # products converged at once
    # MeshPolicies enforced at admission at once: the pool of names the chart grants
    admission_policy_slots: int = DEFAULT_ADMISSION_SLOTS
    # where pipeline pods run: a node selector and tolerations (none: anywhere)
    pipeline_placement: PodPlacement = field(default_factory=PodPlacement)
    prometheus_check_seconds: float = 60.0
    catalog_port: int | None = None  # None: the catalog is not served by this process
    catalog_host: str = "0.0.0.0"  # noqa: S104 - a Service in front of the pod needs every address
    catalog_show_domain_products: bool = False
    catalog_public_url: str | None = None  # the catalog's URL as users reach it, for export links
    catalog_limits: CatalogLimits = field(default_factory=CatalogLimits)  # what a request may cost
    # kubernetes: bearer tokens checked, callers shown what they may list (catalog/auth.py)
    catalog_auth: Literal["none", "kubernetes"] = "none"
    leader_election: bool = True  # only the holder of the lease reconciles
    leader_election_namespace: str | None = None  # None: the pod's namespace (see runtime.leader)
    lease_name: str = "dataproduct-operator"
    lease_identity: str | None = None  # None: $POD_NAME, else <hostname>_<random>
    # Where OpenLineage run events go (None: nowhere) and the namespace of the operator's jobs
    openlineage_url: str | None = None
    openlineage_namespace: str = OPENLINEAGE_NAMESPACE
    openlineage_include_hidden: bool = False  # Hidden products' runs are reported too
    # An access request turns ExpiringSoon (with an Event) this long before it expires
    access_expiry_notice_seconds: int = 3 * 86400  # DEFAULT_EXPIRY_NOTICE
