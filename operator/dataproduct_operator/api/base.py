"""Building blocks of the API models (layer ``api``, pure).

Every model is a frozen pydantic model whose JSON field names are camelCase, as Kubernetes API
conventions want. Extra fields coming from the API server are ignored, not rejected: the CRD
schema prunes unknown fields on the way in. CRD-only schema facts (CEL rules, list types,
int-or-string) ride along in ``json_schema_extra`` under their ``x-kubernetes-*`` keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticUndefined, core_schema

from dataproduct_operator.api.quantity import QuantityRange, ResourceRanges

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A Kubernetes label key (an optional DNS subdomain prefix, then a name) and a label value.
LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
QUANTITY = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]i?|Ki)?$"
# No quantity needs more; the API server needs the bound to price the CEL rules on quantities.
MAX_QUANTITY_LENGTH = 64


# Printer columns every kind ends with (Reason shown with -o wide).
READY_COLUMN: dict[str, Any] = {
    "name": "Ready",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
}
REASON_COLUMN: dict[str, Any] = {
    "name": "Reason",
    "type": "string",
    "priority": 1,
    "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
}
AGE_COLUMN: dict[str, Any] = {
    "name": "Age",
    "type": "date",
    "jsonPath": ".metadata.creationTimestamp",
}


class ApiModel(BaseModel):
    """Base of every API model: camelCase on the wire, immutable, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON form the API server stores: camelCase, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ClusterObject(ApiModel):
    """A whole cluster-scoped object as the operator reads it; subclasses add spec and status."""

    name: str
    generation: int = 1
    uid: str = ""

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> Self:
        """Parse an object from the API server (metadata + spec + status)."""
        metadata = obj.get("metadata") or {}
        return cls.model_validate(
            {
                "name": metadata.get("name"),
                "generation": metadata.get("generation", 1),
                "uid": metadata.get("uid", ""),
                "spec": obj.get("spec") or {},
                "status": obj.get("status") or {},
            }
        )


class NamespacedObject(ApiModel):
    """A whole namespaced object as the operator reads it; subclasses add spec and status."""

    name: str
    namespace: str
    uid: str = ""
    generation: int = 1
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> Self:
        """Parse an object from the API server (metadata + spec + status)."""
        metadata = obj.get("metadata") or {}
        return cls.model_validate(
            {
                "name": metadata.get("name"),
                "namespace": metadata.get("namespace"),
                "uid": metadata.get("uid", ""),
                "generation": metadata.get("generation", 1),
                "creation_timestamp": metadata.get("creationTimestamp"),
                "deletion_timestamp": metadata.get("deletionTimestamp"),
                "spec": obj.get("spec") or {},
                "status": obj.get("status") or {},
            }
        )

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"


def cel(rule: str, message: str, **extra: str) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry: the rule and the message that says what to fix."""
    return {"rule": rule, "message": message, **extra}


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` carrying CEL rules."""
    return {"x-kubernetes-validations": list(rules)}


def dns_label(description: str, *, max_length: int = 63, optional: bool = False) -> Any:
    """A DNS-1123 label field: lower case letters, digits and '-'."""
    return Field(
        default=None if optional else PydanticUndefined,
        description=description,
        min_length=1,
        max_length=max_length,
        pattern=DNS_LABEL,
    )


def keyed_by_name() -> dict[str, Any]:
    """``json_schema_extra`` of a list of objects keyed by ``name``.

    The API server rejects a duplicate name (``Duplicate value``, naming it) at no CEL cost,
    and server-side apply merges such lists item by item instead of replacing them whole.
    """
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}


# A Kubernetes quantity written as a number (cpu: 1) or a string (memory: 512Mi).
IntOrString = Annotated[
    int | str,
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY,
            "maxLength": MAX_QUANTITY_LENGTH,
        }
    ),
]


@dataclass(frozen=True)
class InRange:
    """Annotation of a quantity field (a string, or ``IntOrString``) bounded by ``bounds``.

    The model refuses a value out of range with the bounds' message (so does a body written
    under an older, looser CRD), and the CRD carries the same bounds as a CEL rule with the same
    message, so ``kubectl apply`` refuses it first. The CRD keeps its pattern too; the model
    needs none, as the bounds' check reads the value as the API server does.
    """

    bounds: QuantityRange

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def _check(self, value: str | int) -> str | int:
        self.bounds.check(value)
        return value

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        value = "string(self)" if json_schema.get("x-kubernetes-int-or-string") else "self"
        rules = [
            *json_schema.get("x-kubernetes-validations", []),
            cel(self.bounds.cel_rule(value), self.bounds.message),
        ]
        return {
            **json_schema,
            "pattern": QUANTITY,
            "maxLength": MAX_QUANTITY_LENGTH,
            "x-kubernetes-validations": rules,
        }


def resource_map(ranges: ResourceRanges) -> dict[str, Any]:
    """``json_schema_extra`` of a map of resources to quantities: one CEL rule per range."""
    return validations(*(cel(rule, message) for rule, message in ranges.cel_rules()))
