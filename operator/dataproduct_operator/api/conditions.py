"""Status conditions shared by every kind, and their vocabulary (layer ``api``, pure).

The shape follows ``metav1.Condition``: type, status, reason (CamelCase), message,
lastTransitionTime and observedGeneration, so kstatus-aware tools (Flux, Argo CD) read ``Ready``.
Every condition type and every reason the operator writes, and every Event reason it posts, is
named here once: the status builders, the runtime, the catalog and the tests use these names.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from dataproduct_operator.api.base import ApiModel


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One aspect of the object's state."""

    type: str = Field(description="What this condition is about, e.g. Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="One CamelCase word for the cause.")
    message: str = Field(default="", description="What happened, in words.")
    last_transition_time: str | None = Field(
        default=None, description="When the status last changed (RFC 3339)."
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this condition was computed for."
    )


# Condition types. Ready sums up the others of its kind (PolicyCompliant and Valid aside).
READY = "Ready"
STORAGE_READY = "StorageReady"  # DataProduct
PIPELINES_READY = "PipelinesReady"  # DataProduct
ACCESS_READY = "AccessReady"  # DataProduct, DataDomain
MONITORING_READY = "MonitoringReady"  # DataProduct
POLICY_COMPLIANT = "PolicyCompliant"  # DataProduct
# DataProduct: every input that is another product's port can be read by its pipelines, and
# every file input's claim is in the namespace
INPUTS_READY = "InputsReady"
# DataProduct: the data is fresh and its checks pass. Kept apart from Ready (provisioned): a
# product can be in place and its data stale. Re-evaluated on a timer as data ages.
DATA_HEALTHY = "DataHealthy"
NAMESPACE_READY = "NamespaceReady"  # DataDomain
QUOTA_READY = "QuotaReady"  # DataDomain
VALID = "Valid"  # MeshPolicy


class Reason(StrEnum):
    """Reasons of conditions and of Events, CamelCase as Kubernetes writes them."""

    # Ready, every kind
    RECONCILED = "Reconciled"
    INVALID_SPEC = "InvalidSpec"  # the models refuse the object (e.g. written under a looser CRD)
    RECONCILE_FAILED = "ReconcileFailed"  # an error about the object; retried with backoff
    FORBIDDEN = "Forbidden"  # the API server refused the operator; retried with backoff
    APPLY_FAILED = "ApplyFailed"  # a child could not be applied; retried with backoff
    DOMAIN_MISMATCH = "DomainMismatch"
    # A product whose namespace no DataDomain holds (or not yet onboarded): the operator may
    # not write there
    NAMESPACE_NOT_IN_MESH = "NamespaceNotInMesh"
    # A DataDomain naming a namespace that an older DataDomain holds
    NAMESPACE_TAKEN = "NamespaceTaken"
    DELETION_BLOCKED = "DeletionBlocked"
    # A child's name is taken by another product's object (Ready and the aspect of that child)
    NAME_CONFLICT = "NameConflict"
    # DataProduct aspects
    CLAIMS_BOUND = "ClaimsBound"
    CLAIMS_NOT_BOUND = "ClaimsNotBound"
    NO_PIPELINES = "NoPipelines"
    PIPELINES_SCHEDULED = "PipelinesScheduled"
    CRONJOB_MISSING = "CronJobMissing"
    # A sql pipeline whose output port is a volume: it writes tables only, so it never runs
    OUTPUT_NOT_A_TABLE = "OutputNotATable"
    ACCESS_GRANTED = "AccessGranted"
    ACCESS_MISSING = "AccessMissing"
    ALERTS_DISABLED = "AlertsDisabled"
    PROMETHEUS_OPERATOR_NOT_INSTALLED = "PrometheusOperatorNotInstalled"
    ALERT_RULES_MISSING = "AlertRulesMissing"
    ALERT_RULES_IN_PLACE = "AlertRulesInPlace"
    POLICY_VIOLATED = "PolicyViolated"
    COMPLIANT = "Compliant"
    # DataProduct ports in a DataStore (StorageReady) and its readers there (AccessReady)
    PORTS_PLACED = "PortsPlaced"
    STORE_UNAVAILABLE = "StoreUnavailable"  # the server is down or refused; retried with backoff
    STORE_NOT_FOUND = "StoreNotFound"
    STORE_NOT_ALLOWED = "StoreNotAllowed"  # the product's domain is not in allowedDomains
    # A column type change PostgreSQL cannot cast, or a change the store refuses
    SCHEMA_CHANGE_REFUSED = "SchemaChangeRefused"
    # A ServiceAccount reader in a namespace no DataDomain holds: no credentials can go there
    READER_OUTSIDE_MESH = "ReaderOutsideMesh"
    # InputsReady
    INPUTS_AVAILABLE = "InputsAvailable"
    NO_INPUTS = "NoInputs"
    UPSTREAM_NOT_FOUND = "UpstreamNotFound"
    ACCESS_NOT_GRANTED = "AccessNotGranted"
    # A file input on a claim the namespace does not hold (its pod would stay Pending)
    CLAIM_NOT_FOUND = "ClaimNotFound"
    # A file input on another product's output-port claim: that data is read through the
    # product's grants (an input of dataProduct), never by mounting its volume
    CLAIM_OF_ANOTHER_PRODUCT = "ClaimOfAnotherProduct"
    # DataHealthy
    DATA_HEALTHY = "Healthy"
    STALE = "Stale"  # a port's data is older than its slo.freshness
    CHECKS_FAILING = "ChecksFailing"  # an Error check of a port's last run failed
    RUNS_FAILING = "RunsFailing"  # the last run of a pipeline failed (not by its checks)
    NO_DATA_YET = "NoDataYet"  # Unknown: no run has published or checked a port yet
    # DataStore
    CONNECTED = "Connected"
    PRIVILEGE_MISSING = "PrivilegeMissing"
    AUTHENTICATION_FAILED = "AuthenticationFailed"
    CREDENTIALS_UNREADABLE = "CredentialsUnreadable"
    # DataDomain aspects
    NAMESPACE_MISSING = "NamespaceMissing"
    NAMESPACE_ACTIVE = "NamespaceActive"
    NAMESPACE_TERMINATING = "NamespaceTerminating"
    # A DataDomain naming a namespace that exists without the domain label: a platform admin
    # hands it over by labelling it; the operator labels only the namespaces it creates
    NAMESPACE_NOT_HANDED_OVER = "NamespaceNotHandedOver"
    NO_QUOTA = "NoQuota"
    QUOTA_MISSING = "QuotaMissing"
    QUOTA_PENDING = "QuotaPending"
    QUOTA_APPLIED = "QuotaApplied"
    ACCESS_APPLIED = "AccessApplied"
    # MeshPolicy
    COMPILED = "Compiled"
    COMPILE_ERROR = "CompileError"
    RULES_INVALID = "Invalid"  # Ready of a policy whose rules do not compile
    AUDITING = "Auditing"
    ENFORCED = "Enforced"
    ADMISSION_POLICY_MISSING = "AdmissionPolicyMissing"
    TYPE_CHECK_FAILED = "TypeCheckFailed"
    INVALID_EXPRESSION = "InvalidExpression"
    TYPE_CHECK_PENDING = "TypeCheckPending"
    NO_ADMISSION_SLOT = "NoAdmissionSlot"  # every name of the chart's pool is taken
    # DataAccessRequest (Ready) and the Events of its steps, on the request and the product
    AWAITING_DECISION = "AwaitingDecision"  # Pending: the owners have not decided yet
    GRANT_PENDING = "GrantPending"  # Approved: the grant is being made
    ACCESS_ENDED = "AccessEnded"  # Denied, Expired, Revoked or Withdrawn
    ACCESS_REQUESTED = "AccessRequested"
    ACCESS_APPROVED = "AccessApproved"
    ACCESS_DENIED = "AccessDenied"
    ACCESS_EXPIRING_SOON = "AccessExpiringSoon"
    ACCESS_EXPIRED = "AccessExpired"
    ACCESS_REVOKED = "AccessRevoked"
    ACCESS_WITHDRAWN = "AccessWithdrawn"
    # DataAccessDecision (Ready)
    DECISION_APPLIED = "DecisionApplied"
    REQUEST_NOT_FOUND = "RequestNotFound"  # no request with that namespace, name and uid
    NOT_THE_PRODUCTS_NAMESPACE = "NotTheProductsNamespace"  # the request's product is elsewhere
    ALREADY_DECIDED = "AlreadyDecided"  # another decision answered the request first
    # Events only
    APPLIED = "Applied"
    PRUNED = "Pruned"
    RETAINED = "Retained"
    RUN_SUCCEEDED = "RunSucceeded"
    # A run failed: an Event only; the condition that says so is DataHealthy (RunsFailing or
    # ChecksFailing), never PipelinesReady or Ready (provisioned)
    RUN_FAILED = "RunFailed"
    POLICY_VIOLATION = "PolicyViolation"
    CREDENTIALS_ROTATED = "CredentialsRotated"
    COLUMNS_KEPT = "ColumnsKept"  # columns removed from the spec stay in the table
    QUALITY_CHECK_FAILED = "QualityCheckFailed"  # a run's Error check failed: nothing published
    FRESHNESS_SLO_MISSED = "FreshnessSLOMissed"  # a port's data became older than its SLO
    RECOVERED = "Recovered"  # DataHealthy is True again
    RUN_REPORT_UNREADABLE = "RunReportUnreadable"  # a finished run's report is not a run report


# Reasons an aspect passes on to Ready as they are (instead of ``<Aspect>NotReady``): they need
# the user to change something, and Ready is what a user reads first.
READY_REPEATS = frozenset({Reason.NAME_CONFLICT, Reason.NAMESPACE_NOT_HANDED_OVER})


def not_ready_reason(condition_type: str) -> str:
    """Ready's reason when ``condition_type`` is the first aspect that is not True:
    StorageReady -> StorageNotReady."""
    return condition_type.removesuffix("Ready") + "NotReady"
