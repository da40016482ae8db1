"""An output port as a Bitol Open Data Contract Standard v3 contract (layer ``catalog``, pure).

One contract per output port, one schema object (the port) whose properties are the columns.
Where our fields land, so that :mod:`dataproduct_operator.catalog.imports` reads them back:

- a column's free-form ``type``: ``logicalType`` when it names one of ODCS's logical types (or a
  common alias of one), else ``logicalType: string``; ``physicalType`` keeps the original
  whenever it differs from the logical type;
- ``pii``: the property tag ``pii``; a column's ``classification``: the property's
  ``classification``, lower case as in ODCS's examples;
- ``required`` and ``unique``: the property flags, and also library quality rules
  (``nullValues`` and ``duplicateValues`` must be 0) for tools that check quality rules only;
- the SLO: ``slaProperties`` ``latency`` (freshness) and ``availability``;
- the volume: a ``local`` server (the volume is mounted where readers read it) with the
  format and mount path, and the claim, size, class and access mode as its customProperties.
"""

from __future__ import annotations

import re
from typing import Any

from dataproduct_operator.api.dataproduct import Column, DataProduct, Format, OutputPort, Slo
from dataproduct_operator.api.naming import (
    claim_name,
    connection_config_map_name,
    port_mount_path,
)
from dataproduct_operator.catalog.exports.common import (
    bitol_status,
    custom_property,
    support_channels,
    team_members,
    version_of,
)
from dataproduct_operator.catalog.exports.ids import contract_id, product_id
from dataproduct_operator.errors import UserError

# The newest ODCS v3 the open_data_contract_standard package's schema accepts (a test checks).
ODCS_API_VERSION = "v3.2.0"

# ODCS's logical types for scalar properties, and the usual spellings of each in our free-form
# column types. Object, array, map and vector need nested definitions a column does not have.
LOGICAL_TYPES = ("string", "date", "timestamp", "time", "number", "integer", "boolean")
_LOGICAL_ALIASES = {
    "string": ("string", "str", "text", "varchar", "char", "uuid"),
    "integer": ("integer", "int", "bigint", "smallint", "long", "int32", "int64"),
    "number": ("number", "float", "double", "decimal", "numeric", "real"),
    "boolean": ("boolean", "bool"),
    "date": ("date",),
    "timestamp": ("timestamp", "datetime", "timestamptz"),
    "time": ("time",),
}
LOGICAL_TYPE_OF = {alias: logical for logical, names in _LOGICAL_ALIASES.items() for alias in names}

PII_TAG = "pii"
FRESHNESS_PROPERTY = "latency"
AVAILABILITY_PROPERTY = "availability"
DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
FILE_FORMATS = (Format.PARQUET, Format.CSV, Format.JSONL)

# customProperties the import reads back.
PORT_PROPERTY = "outputPort"
CLAIM_PROPERTY = "persistentVolumeClaim"
SIZE_PROPERTY = "storageSize"
CLASS_PROPERTY = "storageClassName"
ACCESS_MODE_PROPERTY = "accessMode"

_DURATION = re.compile(r"^([1-9][0-9]*)([smhdw])$")


def logical_type(column_type: str) -> str:
    """The ODCS logical type of one of our free-form column types; unknown ones are strings."""
    return LOGICAL_TYPE_OF.get(column_type.strip().lower(), "string")


def _property(column: Column) -> dict[str, Any]:
    logical = logical_type(column.type)
    entry: dict[str, Any] = {"name": column.name, "logicalType": logical}
    if column.type != logical:
        entry["physicalType"] = column.type
    if column.description:
        entry["description"] = column.description
    if column.required:
        entry["required"] = True
    if column.unique:
        entry["unique"] = True
    if column.classification is not None:
        entry["classification"] = column.classification.value.lower()
    if column.pii:
        entry["tags"] = [PII_TAG]
    quality = []
    if column.required:
        quality.append(
            {
                "metric": "nullValues",
                "mustBe": 0,
                "dimension": "completeness",
                "description": f"{column.name} is never null.",
            }
        )
    if column.unique:
        quality.append(
            {
                "metric": "duplicateValues",
                "mustBe": 0,
                "dimension": "uniqueness",
                "description": f"No two rows share the same {column.name}.",
            }
        )
    if quality:
        entry["quality"] = quality
    return entry


def _availability_value(percent: str) -> int | float | str:
    """``99.9%`` as the number 99.9, unless a number would not read back as the same text."""
    text = percent.removesuffix("%")
    if text.isdigit():
        return int(text)
    number = float(text)
    return number if repr(number) == text else text


def _sla_properties(slo: Slo | None) -> list[dict[str, Any]]:
    if slo is None:
        return []
    properties = []
    if slo.freshness:
        match = _DURATION.match(slo.freshness)
        if match is None:  # the CRD's CEL rule rejects such a value; a parsed model may not have
            raise UserError(f"slo.freshness {slo.freshness!r} is not a duration such as 24h")
        properties.append(
            {
                "property": FRESHNESS_PROPERTY,
                "value": int(match.group(1)),
                "unit": DURATION_UNITS[match.group(2)],
                "description": f"Data is at most {slo.freshness} old.",
            }
        )
    if slo.availability:
        properties.append(
            {
                "property": AVAILABILITY_PROPERTY,
                "value": _availability_value(slo.availability),
                "unit": "%",
                "description": f"The data can be read {slo.availability} of the time.",
            }
        )
    return properties


def _server(product: DataProduct, port: OutputPort) -> dict[str, Any]:
    claim = claim_name(product.name, port.name)
    path = port_mount_path(port.name)
    storage = port.volume
    properties = [
        custom_property(CLAIM_PROPERTY, claim),
        custom_property("namespace", product.namespace),
        custom_property(SIZE_PROPERTY, storage.size),
        custom_property(ACCESS_MODE_PROPERTY, storage.access_mode.value),
    ]
    if storage.storage_class_name:
        properties.append(custom_property(CLASS_PROPERTY, storage.storage_class_name))
    properties.append(
        custom_property("connectionConfigMap", connection_config_map_name(product.name))
    )
    return {
        "server": claim,
        # A volume of files is what ODCS calls a local server; other formats have no fitting
        # server type that needs no host.
        "type": "local" if port.format in FILE_FORMATS else "custom",
        "description": (
            f"The PersistentVolumeClaim {claim} in namespace {product.namespace}, "
            f"mounted at {path} in the pods that read it."
        ),
        "path": path,
        "format": port.format.value,
        "customProperties": properties,
    }


def find_port(product: DataProduct, port_name: str) -> OutputPort:
    for port in product.spec.output_ports:
        if port.name == port_name:
            return port
    names = ", ".join(port.name for port in product.spec.output_ports)
    raise UserError(
        f"DataProduct {product.namespace}/{product.name} has no output port {port_name}; "
        f"its ports: {names}"
    )


def build_odcs(product: DataProduct, port_name: str) -> dict[str, Any]:
    """The ODCS contract of the output port ``port_name`` of ``product``."""
    spec = product.spec
    port = find_port(product, port_name)
    schema_object: dict[str, Any] = {"name": port.name, "logicalType": "object"}
    if port.description:
        schema_object["description"] = port.description
    schema_object["properties"] = [_property(column) for column in port.schema_]
    contract: dict[str, Any] = {
        "apiVersion": ODCS_API_VERSION,
        "kind": "DataContract",
        "id": contract_id(product.namespace, product.name, port.name),
        "name": port.name,
        "version": version_of(product),
        "status": bitol_status(spec.lifecycle),
        "domain": spec.domain,
        "dataProduct": product.name,
        "description": {"purpose": spec.description},
    }
    if spec.tags:
        contract["tags"] = list(spec.tags)
    contract["schema"] = [schema_object]
    contract["servers"] = [_server(product, port)]
    sla = _sla_properties(port.slo)
    if sla:
        contract["slaProperties"] = sla
    team: dict[str, Any] = {"name": spec.owner.team}
    members = team_members(spec.owner)
    if members:
        team["members"] = members
    contract["team"] = team
    support = support_channels(spec.owner)
    if support:
        contract["support"] = support
    contract["customProperties"] = [
        custom_property(PORT_PROPERTY, port.name),
        custom_property("dataProductId", product_id(product.namespace, product.name)),
        custom_property("kubernetesNamespace", product.namespace),
        custom_property("lifecycle", spec.lifecycle.value),
        custom_property("classification", spec.classification.value),
    ]
    if product.creation_timestamp:
        contract["contractCreatedTs"] = product.creation_timestamp
    return contract


def build_odcs_contracts(product: DataProduct) -> list[dict[str, Any]]:
    """One contract per output port, in the order of the spec."""
    return [build_odcs(product, port.name) for port in product.spec.output_ports]
