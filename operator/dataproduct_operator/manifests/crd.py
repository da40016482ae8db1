"""CustomResourceDefinitions from the pydantic models (layer ``manifests``, pure).

pydantic's JSON schema uses ``$ref``, ``anyOf`` with ``null`` for optional fields and titles;
a CRD needs a *structural* schema: every node typed, references inlined, no ``null``. This
module converts one into the other and wraps it into a CRD with status subresource, printer
columns, short names and categories.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from dataproduct_operator.api import (
    accessdecision,
    accessrequest,
    datadomain,
    dataproduct,
    datastore,
    meshpolicy,
)
from dataproduct_operator.api.kinds import GROUP, VERSION

DROPPED_KEYS = frozenset({"title"})
MAX_OBJECT_NAME = 253


@dataclass(frozen=True)
class KindDefinition:
    """Everything that makes one kind's CRD."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    scope: str
    short_names: tuple[str, ...]
    categories: tuple[str, ...]
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    description: str
    root_validations: tuple[dict[str, str], ...]
    printer_columns: tuple[dict[str, Any], ...]
    spec_required: bool = True


def _definition(
    api: ModuleType,
    *,
    scope: str,
    spec_model: type[BaseModel],
    status_model: type[BaseModel],
    description: str,
) -> KindDefinition:
    """A kind of the ``datamesh.dev`` group, from its ``api`` module's names."""
    return KindDefinition(
        group=GROUP,
        version=VERSION,
        kind=api.KIND,
        plural=api.PLURAL,
        singular=api.SINGULAR,
        scope=scope,
        short_names=api.SHORT_NAMES,
        categories=dataproduct.CATEGORIES,
        spec_model=spec_model,
        status_model=status_model,
        description=description,
        root_validations=api.ROOT_VALIDATIONS,
        printer_columns=api.PRINTER_COLUMNS,
    )


DATA_PRODUCT = _definition(
    dataproduct,
    scope="Namespaced",
    spec_model=dataproduct.DataProductSpec,
    status_model=dataproduct.DataProductStatus,
    description="A data product of a Data Mesh domain: its output ports (storage), pipelines, "
    "readers and monitoring, provisioned and kept converged by dataproduct-operator.",
)
DATA_DOMAIN = _definition(
    datadomain,
    scope="Cluster",
    spec_model=datadomain.DataDomainSpec,
    status_model=datadomain.DataDomainStatus,
    description="A domain of the Data Mesh: the namespace of its data products, its quota, "
    "Pod Security level, owners and allowed consumers, onboarded by dataproduct-operator.",
)

MESH_POLICY = _definition(
    meshpolicy,
    scope="Cluster",
    spec_model=meshpolicy.MeshPolicySpec,
    status_model=meshpolicy.MeshPolicyStatus,
    description="A rule of the Data Mesh's federated governance: CEL over DataProducts, "
    "enforced by the API server (Deny, Warn) and audited by dataproduct-operator.",
)

DATA_STORE = _definition(
    datastore,
    scope="Cluster",
    spec_model=datastore.DataStoreSpec,
    status_model=datastore.DataStoreStatus,
    description="A data store output ports live in (PostgreSQL first), with the credentials of "
    "a login that may create roles and schemas, registered by the platform team: "
    "dataproduct-operator places ports, grants readers and checks the login's privileges.",
)

DATA_ACCESS_REQUEST = _definition(
    accessrequest,
    scope="Namespaced",
    spec_model=accessrequest.DataAccessRequestSpec,
    status_model=accessrequest.DataAccessRequestStatus,
    description="A consumer's request for read access to a data product, with a purpose and a "
    "duration, in the consumer's namespace: answered by the product's owners with a "
    "DataAccessDecision, granted and ended on time by dataproduct-operator.",
)

DATA_ACCESS_DECISION = _definition(
    accessdecision,
    scope="Namespaced",
    spec_model=accessdecision.DataAccessDecisionSpec,
    status_model=accessdecision.DataAccessDecisionStatus,
    description="The owners' answer to a DataAccessRequest, in the product's namespace: "
    "Approve (perhaps for less time than asked) or Deny, with a note; deleting an Approve "
    "decision revokes the access.",
)

KINDS = (DATA_PRODUCT, DATA_DOMAIN, MESH_POLICY, DATA_STORE, DATA_ACCESS_REQUEST,
         DATA_ACCESS_DECISION)  # fmt: skip


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema as a structural OpenAPI v3 schema for a CRD."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.pop("$defs", {})
    return _convert(schema, definitions)


def _convert(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    node = copy.deepcopy(node)
    if "$ref" in node:
        target = definitions[node.pop("$ref").rsplit("/", 1)[-1]]
        # Keys beside the reference (the field's description, default) win over the type's.
        node = {**copy.deepcopy(target), **node}
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        branches = [b for b in node.pop("anyOf") if b != {"type": "null"}]
        if len(branches) != 1:
            raise ValueError(f"A CRD schema cannot express a union of {branches}")
        node = {**_convert(branches[0], definitions), **node}
    if "default" in node and node["default"] is None:
        del node["default"]
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROPPED_KEYS:
            continue
        if key == "properties":
            result[key] = {name: _convert(sub, definitions) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            result[key] = _convert(value, definitions)
        else:
            result[key] = value
    if "type" not in result and not result.get("x-kubernetes-int-or-string"):
        raise ValueError(f"Schema node without a type: {node}")
    return _ordered(result)


_KEY_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "required",
    "properties",
    "items",
    "additionalProperties",
)


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """Stable, readable key order in the generated YAML."""
    known = {key: node[key] for key in _KEY_ORDER if key in node}
    rest = {key: node[key] for key in sorted(node) if key not in known}
    return {**known, **rest}


def build_crd(definition: KindDefinition) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    spec = structural_schema(definition.spec_model)
    status = structural_schema(definition.status_model)
    root: dict[str, Any] = {
        "description": definition.description,
        "type": "object",
        "required": ["spec"] if definition.spec_required else [],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            # Kubernetes' own bound of a name, told to the API server so it can price the CEL
            # rules that read the name (unbounded, it would price them at the request size).
            "metadata": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": MAX_OBJECT_NAME}},
            },
            "spec": spec,
            "status": status,
        },
    }
    if definition.root_validations:
        root["x-kubernetes-validations"] = list(definition.root_validations)
    names: dict[str, Any] = {
        "kind": definition.kind,
        "listKind": f"{definition.kind}List",
        "plural": definition.plural,
        "singular": definition.singular,
        "shortNames": list(definition.short_names),
        "categories": list(definition.categories),
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{definition.plural}.{definition.group}",
            "labels": {"app.kubernetes.io/part-of": "dataproduct-operator"},
        },
        "spec": {
            "group": definition.group,
            "scope": definition.scope,
            "names": names,
            "versions": [
                {
                    "name": definition.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(definition.printer_columns),
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }
