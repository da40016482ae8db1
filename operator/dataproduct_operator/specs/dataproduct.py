"""Desired children of a DataProduct (layer ``specs``, pure).

``build_children`` returns every object the product should have, each labelled so it can be
found and pruned by label, owned by the product (except claims kept under ``Retain``), and
stamped with the hash of its own content so an unchanged child is never applied again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dataproduct_operator.api.dataproduct import (
    KIND,
    DataProduct,
    DeletionPolicy,
    EffectiveReader,
    OutputPort,
    Pipeline,
    PortEndpoint,
    Reader,
    ReaderKind,
)
from dataproduct_operator.api.kinds import GROUP
from dataproduct_operator.api.naming import (
    claim_name,
    connection_config_map_name,
    cronjob_name,
    input_variable_prefix,
    output_table_variable,
    owner_role_name,
    port_mount_path,
    port_path_variable,
    prometheus_rule_name,
    reader_role_name,
    run_job_name,
    service_account_name,
)
from dataproduct_operator.api.quantity import larger_quantity
from dataproduct_operator.constants import (
    ANNOTATION_RETAINED_VOLUME,
    ANNOTATION_RUN,
    COMPONENT_ACCESS,
    COMPONENT_MONITORING,
    COMPONENT_PIPELINE,
    COMPONENT_PIPELINE_RUN,
    COMPONENT_STORAGE,
    LABEL_COMPONENT,
    LABEL_DOMAIN,
    LABEL_MANAGED_BY,
    LABEL_PART_OF,
    LABEL_PIPELINE,
    LABEL_PORT,
    LABEL_PRODUCT,
    LABEL_RUN,
    OPERATOR_NAME,
    PIPELINE_CONTAINER,
)
from dataproduct_operator.specs.alerts import build_alert_rules, rule_group_name
from dataproduct_operator.specs.hashing import stamp_hash
from dataproduct_operator.specs.ownership import controller_reference
from dataproduct_operator.specs.placement import PodPlacement
from dataproduct_operator.specs.render import render
from dataproduct_operator.specs.runner import (
    RUN_SPEC_VARIABLE,
    build_run_spec,
    external_reads,
    file_reads,
    run_spec_json,
    source_mounts,
)

CONNECTION_KEY = "output-ports.json"

ANYWHERE = PodPlacement()  # pipeline pods without a node selector or tolerations


@dataclass(frozen=True)
class InputWiring:
    """An input from another product's store port its pipelines can read: the table, and the
    reader Secret (in this namespace) with this product's login."""

    name: str
    table: str  # schema.table
    secret: str


@dataclass(frozen=True)
class StoreWiring:
    """What the product's store holds for it: which ports live in a store (they get no
    volume), the endpoint of each placed one, the Secret with its writer login once written,
    the inputs ready to read, and the claims of file inputs found in the namespace."""

    store_ports: frozenset[str] = frozenset()
    endpoints: Mapping[str, PortEndpoint] = field(default_factory=dict)
    writer_secret: str | None = None
    inputs: tuple[InputWiring, ...] = ()
    claims: frozenset[str] = frozenset()

    def in_store(self, port: str) -> bool:
        return port in self.store_ports

    def volume_ports(self, product: DataProduct) -> list[OutputPort]:
        return [p for p in product.spec.output_ports if p.name not in self.store_ports]


def qualified_table(endpoint: PortEndpoint) -> str:
    return f"{endpoint.schema_}.{endpoint.table}"


@dataclass(frozen=True)
class RunRequest:
    """An on-demand run asked for by the ``datamesh.dev/run`` annotation."""

    pipeline: str
    run_id: str


def parse_run_request(value: str | None) -> RunRequest | None:
    """``"backfill"`` or ``"backfill:2026-11-23"`` -> the pipeline and a short id of the value."""
    if not value or not value.strip():
        return None
    pipeline = value.strip().split(":", 1)[0]
    run_id = hashlib.sha256(value.strip().encode()).hexdigest()[:6]
    return RunRequest(pipeline, run_id)


def product_labels(product: DataProduct) -> dict[str, str]:
    """Labels that identify the product; pods and CronJob-made Jobs carry these."""
    return {
        LABEL_PART_OF: product.name,
        LABEL_PRODUCT: product.name,
        LABEL_DOMAIN: product.spec.domain,
    }


def selector_labels(product_name: str) -> dict[str, str]:
    """Labels that select every child the operator manages for one product."""
    return {LABEL_MANAGED_BY: OPERATOR_NAME, LABEL_PRODUCT: product_name}


def owner_reference(product: DataProduct) -> dict[str, Any]:
    return controller_reference(KIND, product.name, product.uid)


def _metadata(
    product: DataProduct,
    name: str,
    component: str,
    *,
    extra_labels: dict[str, str] | None = None,
    owned: bool = True,
) -> dict[str, Any]:
    labels = {
        LABEL_MANAGED_BY: OPERATOR_NAME,
        **product_labels(product),
        LABEL_COMPONENT: component,
        **(extra_labels or {}),
    }
    metadata: dict[str, Any] = {"name": name, "namespace": product.namespace, "labels": labels}
    # Without a uid (rendering a file, no cluster) the operator adds the reference on apply.
    if owned and product.uid:
        metadata["ownerReferences"] = [owner_reference(product)]
    return metadata


def build_service_account(product: DataProduct) -> dict[str, Any]:
    """The identity pipeline pods run as."""
    return render(
        "serviceaccount.yaml.j2",
        metadata=_metadata(product, service_account_name(product.name), COMPONENT_PIPELINE),
    )


def build_claim(
    product: DataProduct,
    port: OutputPort,
    observed_size: str | None,
    volume_name: str | None = None,
) -> dict[str, Any]:
    """The volume of one output port; never smaller than what already exists. ``volume_name``:
    the retained volume it binds again (see :mod:`.volumes`), named in an annotation too, so
    that every later build keeps ``spec.volumeName`` (immutable once set)."""
    retain = product.spec.deletion_policy is DeletionPolicy.RETAIN
    claim = render(
        "persistentvolumeclaim.yaml.j2",
        metadata=_metadata(
            product,
            claim_name(product.name, port.name),
            COMPONENT_STORAGE,
            extra_labels={LABEL_PORT: port.name},
            owned=not retain,
        ),
        port=port,
        size=larger_quantity(port.volume.size, observed_size),
        volume_name=volume_name,
    )
    if volume_name:
        claim["metadata"]["annotations"] = {ANNOTATION_RETAINED_VOLUME: volume_name}
    return claim


def _pod_context(
    product: DataProduct, pipeline: Pipeline, wiring: StoreWiring, placement: PodPlacement
) -> dict[str, Any] | None:
    """Environment and volumes of a pipeline's pods: each volume port mounted; each placed
    store port's table, and the writer login (the PG* variables of libpq) from its Secret;
    each ready input's table and the reader login, prefixed with ``INPUT_<NAME>_``; the
    operator's node selector and tolerations for pipelines. A sql pipeline runs the runner
    image with its run spec, the claims of its file inputs mounted read-only; None while it
    cannot run yet (see :mod:`.runner`)."""
    volume_ports = wiring.volume_ports(product)
    env: list[dict[str, Any]] = [
        {"name": "DATAPRODUCT_NAME", "value": product.name},
        {"name": "DATAPRODUCT_NAMESPACE", "value": product.namespace},
        {"name": "DATAPRODUCT_DOMAIN", "value": product.spec.domain},
        {"name": "DATAPRODUCT_PIPELINE", "value": pipeline.name},
    ]
    env += [
        {"name": port_path_variable(port.name), "value": port_mount_path(port.name)}
        for port in volume_ports
    ]
    env += [
        {"name": output_table_variable(port), "value": qualified_table(endpoint)}
        for port, endpoint in sorted(wiring.endpoints.items())
    ]
    env += [
        {"name": f"{input_variable_prefix(source.name)}TABLE", "value": source.table}
        for source in wiring.inputs
    ]
    env += [variable.to_wire() for variable in pipeline.env]
    env_from: list[dict[str, Any]] = []
    if wiring.writer_secret:
        env_from.append({"secretRef": {"name": wiring.writer_secret}})
    env_from += [
        {"prefix": input_variable_prefix(source.name), "secretRef": {"name": source.secret}}
        for source in wiring.inputs
    ]
    mounts = [
        {
            "volume": f"port-{port.name}",
            "path": port_mount_path(port.name),
            "claim": claim_name(product.name, port.name),
            "read_only": False,
        }
        for port in volume_ports
    ]
    resources = pipeline.resources.to_wire() if pipeline.resources else None
    image = pipeline.image
    if pipeline.sql is not None:  # the built-in runner, its run spec in the environment
        image = placement.runner
        # External postgres sources: where from the uri, the login from the input's Secret
        # (a variable of env wins over one of envFrom: the uri says where, not the Secret).
        for read in external_reads(product, pipeline):
            prefix = input_variable_prefix(read.name)
            env += [{"name": prefix + key, "value": value} for key, value in read.location.items()]
            env_from.append({"prefix": prefix, "secretRef": {"name": read.secret}})
        mounts += source_mounts(file_reads(product, pipeline))
        endpoint = wiring.endpoints.get(pipeline.output or "")
        spec = build_run_spec(
            product,
            pipeline,
            output_table=qualified_table(endpoint) if endpoint else None,
            input_tables={source.name: source.table for source in wiring.inputs},
            input_claims=wiring.claims,
        )
        if spec is None:
            return None
        env.append({"name": RUN_SPEC_VARIABLE, "value": run_spec_json(spec)})
    return {
        "pipeline": pipeline,
        "container": PIPELINE_CONTAINER,
        "image": image,
        "pod_labels": {**product_labels(product), LABEL_PIPELINE: pipeline.name},
        "service_account": service_account_name(product.name),
        "env": env,
        "env_from": env_from,
        "mounts": mounts,
        "resources": resources or None,
        "node_selector": dict(placement.node_selector) or None,
        "tolerations": [toleration.to_wire() for toleration in placement.tolerations] or None,
    }


def build_cronjob(
    product: DataProduct,
    pipeline: Pipeline,
    wiring: StoreWiring | None = None,
    placement: PodPlacement = ANYWHERE,
) -> dict[str, Any] | None:
    """A CronJob for a scheduled pipeline; None for an on-demand one."""
    if pipeline.schedule is None:
        return None
    context = _pod_context(product, pipeline, wiring or StoreWiring(), placement)
    if context is None:
        return None
    return render(
        "cronjob.yaml.j2",
        metadata=_metadata(
            product,
            cronjob_name(product.name, pipeline.name),
            COMPONENT_PIPELINE,
            extra_labels={LABEL_PIPELINE: pipeline.name},
        ),
        **context,
    )


def build_run_job(
    product: DataProduct,
    request: RunRequest | None,
    wiring: StoreWiring | None = None,
    placement: PodPlacement = ANYWHERE,
) -> dict[str, Any] | None:
    """The Job of an on-demand run, when the run annotation names an unscheduled pipeline
    and that request has not started a run yet (see ``PipelineStatus.last_run_id``)."""
    if request is None:
        return None
    pipeline = next((p for p in product.spec.pipelines if p.name == request.pipeline), None)
    if pipeline is None or pipeline.schedule is not None:
        return None
    started = next((p for p in product.status.pipelines if p.name == pipeline.name), None)
    if started is not None and started.last_run_id == request.run_id:
        return None  # started already: its Job, even deleted, is not made again
    context = _pod_context(product, pipeline, wiring or StoreWiring(), placement)
    if context is None:
        return None
    return render(
        "job.yaml.j2",
        metadata=_metadata(
            product,
            run_job_name(product.name, request.pipeline, request.run_id),
            COMPONENT_PIPELINE_RUN,
            extra_labels={LABEL_PIPELINE: pipeline.name, LABEL_RUN: request.run_id},
        ),
        **context,
    )


def mounted_claims(obj: dict[str, Any]) -> set[str]:
    """The claims the pods of a desired CronJob or Job mount (none for other kinds)."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    if obj.get("kind") not in ("CronJob", "Job"):
        return set()
    volumes = ((spec.get("template") or {}).get("spec") or {}).get("volumes") or []
    return {
        volume["persistentVolumeClaim"]["claimName"]
        for volume in volumes
        if volume.get("persistentVolumeClaim")
    }


def _reader_subjects(
    product: DataProduct, readers: Sequence[Reader | EffectiveReader] | None = None
) -> list[dict[str, str]]:
    subjects: list[dict[str, str]] = []
    for reader in product.spec.access.readers if readers is None else readers:
        if reader.kind is ReaderKind.SERVICE_ACCOUNT:
            subject = {"kind": "ServiceAccount", "name": reader.name}
            subject["namespace"] = reader.namespace or product.namespace
        else:
            subject = {
                "kind": reader.kind.value,
                "name": reader.name,
                "apiGroup": "rbac.authorization.k8s.io",
            }
        if subject not in subjects:
            subjects.append(subject)
    return subjects


def reader_rules(product_name: str) -> list[dict[str, Any]]:
    """What a reader may do: see the product, its connection details and its data."""
    return [
        {
            "apiGroups": [GROUP],
            "resources": ["dataproducts"],
            "resourceNames": [product_name],
            "verbs": ["get", "list", "watch"],
        },
        {
            # A virtual subresource: data gateways ask a SubjectAccessReview for it.
            "apiGroups": [GROUP],
            "resources": ["dataproducts/data"],
            "resourceNames": [product_name],
            "verbs": ["get"],
        },
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [connection_config_map_name(product_name)],
            "verbs": ["get"],
        },
    ]


def referenced_secrets(product: DataProduct) -> list[str]:
    """The Secrets the product's pipelines and inputs name, sorted; each starts with
    ``<product>-`` (the CRD refuses any other)."""
    names = {
        variable.value_from.secret_key_ref.name
        for pipeline in product.spec.pipelines
        for variable in pipeline.env
        if variable.value_from and variable.value_from.secret_key_ref
    }
    names |= {
        source.external.secret_ref.name
        for source in product.spec.inputs
        if source.external and source.external.secret_ref
    }
    return sorted(names)


def owner_rules(product_name: str, secrets: list[str] | None = None) -> list[dict[str, Any]]:
    """What the owning team may do with its product and see of its children, and the Secrets
    its spec references: read and change those, by name (it creates them through the domain
    editor role, which cannot read any). No rule at all without Secrets: a rule whose
    resourceNames is empty would cover every Secret of the namespace."""
    own_secrets = (
        [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": list(secrets),
                "verbs": ["get", "update", "patch"],
            }
        ]
        if secrets
        else []
    )
    return [
        {
            "apiGroups": [GROUP],
            "resources": ["dataproducts"],
            "resourceNames": [product_name],
            "verbs": ["get", "list", "watch", "update", "patch"],
        },
        *reader_rules(product_name)[1:],
        {
            "apiGroups": [""],
            "resources": ["persistentvolumeclaims"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["batch"],
            "resources": ["cronjobs", "jobs"],
            "verbs": ["get", "list", "watch"],
        },
        *own_secrets,
    ]


def build_access(
    product: DataProduct,
    writer_secret: str | None = None,
    readers: Sequence[Reader | EffectiveReader] | None = None,
) -> list[dict[str, Any]]:
    """Reader and owner Roles with their bindings (no reader binding without readers). The
    owner team may read the Secrets the spec names and the writer login's (``writer_secret``).
    ``readers``: the effective readers (the spec's and approved access requests'); None: the
    spec's."""
    objects = []
    secrets = sorted({*referenced_secrets(product), *([writer_secret] if writer_secret else [])})
    for role, rules, subjects in (
        (
            reader_role_name(product.name),
            reader_rules(product.name),
            _reader_subjects(product, readers),
        ),
        (
            owner_role_name(product.name),
            owner_rules(product.name, secrets),
            [
                {
                    "kind": "Group",
                    "name": product.spec.owner.team,
                    "apiGroup": "rbac.authorization.k8s.io",
                }
            ],
        ),
    ):
        metadata = _metadata(product, role, COMPONENT_ACCESS)
        objects.append(render("role.yaml.j2", metadata=metadata, rules=rules))
        if subjects:
            objects.append(
                render("rolebinding.yaml.j2", metadata=metadata, role=role, subjects=subjects)
            )
    return objects


def _where(product: DataProduct, port: OutputPort, wiring: StoreWiring) -> dict[str, Any]:
    if not wiring.in_store(port.name):
        return {
            "claimName": claim_name(product.name, port.name),
            "mountPath": port_mount_path(port.name),
        }
    endpoint = wiring.endpoints.get(port.name)
    return {"endpoint": endpoint.to_wire()} if endpoint else {}


def connection_details(
    product: DataProduct, wiring: StoreWiring | None = None
) -> list[dict[str, Any]]:
    """What a consumer needs to find each output port's data: the table of a store port (once
    placed), the claim of a volume port."""
    wiring = wiring or StoreWiring()
    return [
        {
            "name": port.name,
            "format": port.format.value,
            **_where(product, port, wiring),
            "schema": [column.to_wire() for column in port.schema_],
            **({"slo": port.slo.to_wire()} if port.slo else {}),
        }
        for port in product.spec.output_ports
    ]


def build_connection_config_map(
    product: DataProduct, wiring: StoreWiring | None = None
) -> dict[str, Any]:
    """The ConfigMap that tells consumers where the data is."""
    data = {
        "dataProduct": product.name,
        "namespace": product.namespace,
        "domain": product.spec.domain,
        CONNECTION_KEY: json.dumps(connection_details(product, wiring), indent=2, sort_keys=True),
    }
    return render(
        "configmap.yaml.j2",
        metadata=_metadata(product, connection_config_map_name(product.name), COMPONENT_ACCESS),
        data=data,
    )


def build_prometheus_rule(product: DataProduct) -> dict[str, Any] | None:
    """The product's alerts (stale ports, failing checks, failed runs; see :mod:`.alerts`) as
    a PrometheusRule. None when alerts are disabled or there is nothing to alert on."""
    rules = build_alert_rules(product)
    if not rules:
        return None
    return render(
        "prometheusrule.yaml.j2",
        metadata=_metadata(product, prometheus_rule_name(product.name), COMPONENT_MONITORING),
        group=rule_group_name(product),
        rules=rules,
    )


def build_children(
    product: DataProduct,
    *,
    observed_claim_sizes: dict[str, str] | None = None,
    prometheus_available: bool = True,
    volume_names: dict[str, str] | None = None,
    wiring: StoreWiring | None = None,
    placement: PodPlacement = ANYWHERE,
    readers: Sequence[Reader | EffectiveReader] | None = None,
) -> list[dict[str, Any]]:
    """Every child the product should have right now, hash-stamped, in apply order.
    ``volume_names``: port -> the retained volume its claim binds (see :mod:`.volumes`);
    ``wiring``: what the product's store holds for it (no store ports when None);
    ``placement``: where its pipeline pods run; ``readers``: its effective readers (None: the
    spec's)."""
    sizes, volumes = observed_claim_sizes or {}, volume_names or {}
    wiring = wiring or StoreWiring()
    children: list[dict[str, Any] | None] = [build_service_account(product)]
    children += [
        build_claim(product, port, sizes.get(port.name), volumes.get(port.name))
        for port in wiring.volume_ports(product)
    ]
    children.append(build_connection_config_map(product, wiring))
    children += build_access(product, wiring.writer_secret, readers)
    children += [
        build_cronjob(product, pipeline, wiring, placement) for pipeline in product.spec.pipelines
    ]
    run = parse_run_request(product.annotations.get(ANNOTATION_RUN))
    children.append(build_run_job(product, run, wiring, placement))
    if prometheus_available:
        children.append(build_prometheus_rule(product))
    return [stamp_hash(child) for child in children if child is not None]
