"""Names shared across layers: labels, annotations, the field manager."""

from __future__ import annotations

from dataproduct_operator.api.kinds import GROUP

FIELD_MANAGER = "dataproduct-operator"
OPERATOR_NAME = "dataproduct-operator"
# The built-in runner's image (sql pipelines): `dpo run --runner-image`, the chart's runner.image.
RUNNER_REPOSITORY = "ghcr.io/dataproduct-operator/dataproduct-operator-runner"

# Every child carries these labels; pruning and watching select children by them, never by name.
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PRODUCT = f"{GROUP}/data-product"
LABEL_DOMAIN = f"{GROUP}/domain"
LABEL_PORT = f"{GROUP}/output-port"
LABEL_PIPELINE = f"{GROUP}/pipeline"
LABEL_RUN = f"{GROUP}/run"
# The container of every pipeline pod: its termination message is the run report
PIPELINE_CONTAINER = "pipeline"
LABEL_RETAINED = f"{GROUP}/retained"

# The user sets this annotation on a DataProduct to run an on-demand pipeline:
# "<pipeline>" or "<pipeline>:<anything>" (change the suffix to run again).
ANNOTATION_RUN = f"{GROUP}/run"
# Hash of the desired object, stored on each child: equal hash, nothing to apply.
ANNOTATION_DESIRED_HASH = f"{GROUP}/desired-hash"
ANNOTATION_RETAINED_FROM = f"{GROUP}/retained-from-uid"
# The PersistentVolume of a Retain output port is labelled for exactly that port: its claim's
# namespace here, with LABEL_DOMAIN, LABEL_PRODUCT and LABEL_PORT; a product of the same
# namespace, domain, name and port binds it again (see specs.volumes).
LABEL_VOLUME_NAMESPACE = f"{GROUP}/claim-namespace"
# On a claim made to bind such a retained volume again: the volume's name (the claim's
# spec.volumeName is then the operator's, and stays in what it applies).
ANNOTATION_RETAINED_VOLUME = f"{GROUP}/retained-volume"
# Names the output ports whose data a change may delete (see manifests/admission.py).
ANNOTATION_CONFIRM_DATA_DELETION = f"{GROUP}/confirm-data-deletion"
# Any new value rotates the store passwords of a product's writer and its ServiceAccount readers.
ANNOTATION_ROTATE_CREDENTIALS = f"{GROUP}/rotate-credentials"
# On a reader login's Secret: the store and the ServiceAccount it is for.
LABEL_STORE = f"{GROUP}/store"
LABEL_SERVICE_ACCOUNT = f"{GROUP}/service-account"

KOPF_PREFIX = f"operator.{GROUP}"

# The ClusterRole a domain's owner team is bound to in the domain's namespace; the chart
# aggregates its rules (and those of the built-in "view") into it.
DOMAIN_EDITOR_ROLE = "datamesh-domain-editor"
LABEL_AGGREGATE_TO_DOMAIN_EDITOR = f"{GROUP}/aggregate-to-domain-editor"
# The operator's write powers in a namespace: a ClusterRole the chart never binds cluster-wide;
# the operator binds it to itself (a RoleBinding of this name) in each namespace a DataDomain
# holds, and admission policies of the chart refuse such a binding anywhere else.
NAMESPACE_WRITER_ROLE = "datamesh-operator-namespace-writer"
NAMESPACE_WRITER_BINDING = NAMESPACE_WRITER_ROLE
# Namespaces the operator never changes nor binds itself in, whatever the chart configures.
# The fixed pool of names the admission policies of MeshPolicies take: the chart's ClusterRole
# grants the operator these names only (by resourceNames), so it cannot touch an admission policy
# it did not make. The chart value policies.maxEnforced and `dpo run --admission-policy-slots`
# set the pool's size.
ADMISSION_SLOT_PREFIX = "datamesh-policy-"
ADMISSION_SLOT_DIGITS = 3  # datamesh-policy-000 ... datamesh-policy-255
DEFAULT_ADMISSION_SLOTS = 32
MAX_ADMISSION_SLOTS = 256


def admission_slot_names(count: int) -> tuple[str, ...]:
    """The pool of ``count`` names, in the order they are handed out."""
    return tuple(
        f"{ADMISSION_SLOT_PREFIX}{index:0{ADMISSION_SLOT_DIGITS}d}" for index in range(count)
    )


PROTECTED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "default")

COMPONENT_STORAGE = "storage"
COMPONENT_PIPELINE = "pipeline"
COMPONENT_PIPELINE_RUN = "pipeline-run"
COMPONENT_ACCESS = "access"
COMPONENT_MONITORING = "monitoring"

# An active access request turns ExpiringSoon (with an Event) this long before it ends.
DEFAULT_EXPIRY_NOTICE = "3d"
