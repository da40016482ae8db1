"""An output port from an ODCS v3 data contract (layer ``catalog``, pure).

The reverse of :mod:`dataproduct_operator.catalog.exports.odcs`: what it writes, this reads
back, so exporting a port and importing the contract gives the same port. Contracts written by
other tools are read as far as they say what a port needs. The ODCS package is only a test
dependency, so the structure is checked here, field by field, and every error names the path
of the field that is wrong (``schema[0].properties[2]: logicalType must be ...``).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from dataproduct_operator.api.base import DNS_LABEL
from dataproduct_operator.api.dataproduct import (
    Classification,
    Column,
    Format,
    OutputPort,
    Slo,
    Storage,
    StoreRef,
)
from dataproduct_operator.catalog.exports.odcs import (
    ACCESS_MODE_PROPERTY,
    AVAILABILITY_PROPERTY,
    CLAIM_PROPERTY,
    CLASS_PROPERTY,
    COLUMN_TYPE_PROPERTY,
    FRESHNESS_PROPERTY,
    PII_TAG,
    SIZE_PROPERTY,
    STORE_PROPERTY,
)
from dataproduct_operator.errors import UserError

# ODCS v3's logical types of a schema property.
ODCS_LOGICAL_TYPES = (
    "string", "date", "timestamp", "time", "number", "integer", "object", "array", "boolean",
    "map", "vector",
)  # fmt: skip
_UNITS = {
    "s": ("s", "sec", "second", "seconds"),
    "m": ("m", "min", "minute", "minutes"),
    "h": ("h", "hr", "hour", "hours"),
    "d": ("d", "day", "days"),
    "w": ("w", "wk", "week", "weeks"),
}
DURATION_UNIT = {alias: unit for unit, aliases in _UNITS.items() for alias in aliases}
FRESHNESS_PROPERTIES = (FRESHNESS_PROPERTY, "freshness")

M = TypeVar("M", bound=BaseModel)
_TYPE_NAMES = {str: "a string", bool: "true or false", list: "a list", dict: "a mapping"}


class ContractError(UserError):
    """An ODCS contract that cannot be read as an output port."""


def _fail(where: str, message: str) -> ContractError:
    return ContractError(f"{where}: {message}" if where else message)


def _typed(value: Any, kind: type, where: str, field: str) -> Any:
    if value is None:
        return None
    # bool is an int in Python, and "yes" is not a boolean in a contract.
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise _fail(where, f"{field} must be {_TYPE_NAMES[kind]}, got {value!r}")
    return value


def _field(mapping: dict[str, Any], key: str, kind: type, where: str) -> Any:
    return _typed(mapping.get(key), kind, where, key)


def _items(mapping: dict[str, Any], key: str, where: str) -> list[tuple[str, dict[str, Any]]]:
    """The entries of a list of mappings, each with its path."""
    entries = _field(mapping, key, list, where) or []
    located = []
    for index, entry in enumerate(entries):
        path = f"{where + '.' if where else ''}{key}[{index}]"
        located.append((path, _typed(entry, dict, path, "each entry")))
    return located


def _custom_properties(mapping: dict[str, Any], where: str) -> dict[str, Any]:
    properties = {}
    for path, entry in _items(mapping, "customProperties", where):
        name = _field(entry, "property", str, path)
        if name is None:
            raise _fail(path, "property must name the custom property")
        properties[name] = entry.get("value")
    return properties


def _model(model: type[M], data: dict[str, Any], where: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"])
        raise _fail(where, f"{field}: {problem['msg']}") from error


def validate_contract(contract: object) -> dict[str, Any]:
    """Check the envelope of an ODCS v3 contract: the contract, or a :class:`UserError`."""
    document: dict[str, Any] | None = _typed(contract, dict, "", "an ODCS contract")
    if document is None:
        raise _fail("", "an ODCS contract must be a mapping, got nothing")
    api_version = _field(document, "apiVersion", str, "")
    if api_version is None or not api_version.startswith("v3."):
        raise _fail(
            "", f"apiVersion must be an ODCS v3 version such as v3.2.0, got {api_version!r}"
        )
    kind = _field(document, "kind", str, "")
    if kind not in (None, "DataContract"):
        raise _fail("", f"kind must be DataContract, got {kind!r}")
    objects = _items(document, "schema", "")
    if len(objects) != 1:
        raise _fail(
            "",
            f"schema must hold exactly one object, the output port; got {len(objects)}"
            + (": import a contract per port" if objects else ""),
        )
    path, schema_object = objects[0]
    _items(schema_object, "properties", path)  # a list of mappings; their fields are read later
    return document


def _port_name(schema_object: dict[str, Any], where: str) -> str:
    name: str | None = _field(schema_object, "name", str, where)
    if name is None:
        raise _fail(where, "name must name the output port")
    if len(name) > 63 or not re.match(DNS_LABEL, name):
        raise _fail(
            where,
            f"name must be a valid output port name (at most 63 lower case letters, digits "
            f"and '-', starting and ending with a letter or digit), got {name!r}",
        )
    return name


def _classification(value: Any, where: str) -> Classification | None:
    text = _typed(value, str, where, "classification")
    if text is None:
        return None
    for classification in Classification:
        if classification.value.lower() == text.strip().lower():
            return classification
    allowed = ", ".join(c.value.lower() for c in Classification)
    raise _fail(where, f"classification must be one of {allowed} (any case), got {text!r}")


def _column(entry: dict[str, Any], where: str, *, in_table: bool = False) -> Column:
    """One column; ``in_table``: the contract's server is a store's table, whose
    ``physicalType`` is the SQL type (our type is ``columnType``, else the logical one)."""
    name = _field(entry, "name", str, where)
    if name is None:
        raise _fail(where, "name must name the column")
    logical = _field(entry, "logicalType", str, where)
    if logical is not None and logical not in ODCS_LOGICAL_TYPES:
        raise _fail(
            where, f"logicalType must be one of {', '.join(ODCS_LOGICAL_TYPES)}, got {logical!r}"
        )
    custom = _custom_properties(entry, where)
    physical = _field(entry, "physicalType", str, where)
    column_type = (
        _typed(custom.get(COLUMN_TYPE_PROPERTY), str, where, COLUMN_TYPE_PROPERTY)
        or (None if in_table else physical)
        or logical
    )
    if column_type is None:
        raise _fail(where, "needs a logicalType or a physicalType")
    tags = [_typed(tag, str, where, "each tag") for tag in _field(entry, "tags", list, where) or []]
    pii = any(tag.lower() == PII_TAG for tag in tags) or custom.get(PII_TAG) is True
    return _model(
        Column,
        {
            "name": name,
            "type": column_type,
            "description": _field(entry, "description", str, where),
            "required": bool(_field(entry, "required", bool, where)),
            "unique": bool(_field(entry, "unique", bool, where)),
            "pii": pii,
            "classification": _classification(entry.get("classification"), where),
        },
        where,
    )


def _freshness(entry: dict[str, Any], where: str) -> str:
    value = entry.get("value")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(where, f"value must be a whole number of {entry.get('unit')}, got {value!r}")
    unit = _field(entry, "unit", str, where)
    letter = DURATION_UNIT.get((unit or "").strip().lower())
    if letter is None:
        raise _fail(where, f"unit must be seconds, minutes, hours, days or weeks, got {unit!r}")
    return f"{value}{letter}"


def _availability(entry: dict[str, Any], where: str) -> str:
    value = entry.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(where, f"value must be a percentage such as 99.9, got {value!r}")
    text = repr(value) if isinstance(value, float) else str(value)
    return text.strip().removesuffix("%") + "%"


def _slo(contract: dict[str, Any]) -> Slo | None:
    found: dict[str, Any] = {}
    where = "slaProperties"
    for path, entry in _items(contract, "slaProperties", ""):
        name = _field(entry, "property", str, path)
        if name in FRESHNESS_PROPERTIES:
            found["freshness"] = _freshness(entry, path)
            where = path
        elif name == AVAILABILITY_PROPERTY:
            found["availability"] = _availability(entry, path)
            where = path
    return _model(Slo, found, where) if found else None


def _server(contract: dict[str, Any]) -> tuple[Format, Storage | None, StoreRef | None]:
    """The port's format, and its volume when the contract asks for more than the defaults, or
    the DataStore its table is in (both None: the port goes where a port naming neither store
    nor volume goes)."""
    servers = _items(contract, "servers", "")
    if not servers:
        return Format.PARQUET, None, None
    # The volume's or the store's server, where there are several; else the first one.
    chosen = next(
        (
            (path, s)
            for path, s in servers
            if {CLAIM_PROPERTY, STORE_PROPERTY} & _custom_properties(s, path).keys()
        ),
        servers[0],
    )
    path, server = chosen
    # A postgres server holds a table, with no file format to declare: the port's format says so.
    implied = Format.POSTGRES if server.get("type") == "postgres" else Format.PARQUET
    declared = (_field(server, "format", str, path) or implied.value).strip().lower()
    port_format = Format(declared) if declared in set(Format) else Format.OTHER
    custom = _custom_properties(server, path)
    if custom.get(STORE_PROPERTY) is not None:
        store = _typed(custom[STORE_PROPERTY], str, f"{path}.customProperties", STORE_PROPERTY)
        return port_format, None, _model(StoreRef, {"name": store}, f"{path}.customProperties")
    storage: dict[str, Any] = {}
    for key, field in (
        (SIZE_PROPERTY, "size"),
        (CLASS_PROPERTY, "storage_class_name"),
        (ACCESS_MODE_PROPERTY, "access_mode"),
    ):
        if custom.get(key) is not None:
            storage[field] = _typed(custom[key], str, f"{path}.customProperties", key)
    volume = _model(Storage, storage, f"{path}.customProperties")
    return port_format, None if volume == Storage() else volume, None


def output_port_from_odcs(contract: dict[str, Any]) -> OutputPort:
    """The output port an ODCS v3 contract describes, or a :class:`UserError` naming the field."""
    document = validate_contract(contract)
    identity = document.get("id") or document.get("name")
    try:
        ((where, schema_object),) = _items(document, "schema", "")
        name = _port_name(schema_object, where)
        port_format, storage, store = _server(document)
        columns = [
            _column(entry, path, in_table=store is not None)
            for path, entry in _items(schema_object, "properties", where)
        ]
        return _model(
            OutputPort,
            {
                "name": name,
                "description": _field(schema_object, "description", str, where),
                "format": port_format,
                "storage": storage,
                "store": store,
                "schema": columns,
                "slo": _slo(document),
            },
            where,
        )
    except ContractError as error:
        if identity:
            raise ContractError(f"ODCS contract {identity}: {error}") from error
        raise


def contracts_from_yaml(text: str, source: str) -> list[dict[str, Any]]:
    """The contracts of a YAML stream (one document per contract); empty documents are skipped."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        raise UserError(f"{source} is not valid YAML: {error}") from error
    if not documents:
        raise UserError(f"{source} holds no ODCS contract")
    return documents


def port_manifest(port: OutputPort) -> dict[str, Any]:
    """The port as an item of a DataProduct's ``spec.outputPorts``, without default values."""
    return port.model_dump(by_alias=True, exclude_defaults=True, mode="json")


def with_port(document: dict[str, Any], port: OutputPort) -> dict[str, Any]:
    """A DataProduct document with ``port`` added, or replacing the port of the same name."""
    spec = dict(document.get("spec") or {})
    ports = [dict(p) for p in spec.get("outputPorts") or [] if isinstance(p, dict)]
    item = port_manifest(port)
    names = [p.get("name") for p in ports]
    if port.name in names:
        ports[names.index(port.name)] = item
    else:
        ports.append(item)
    spec["outputPorts"] = ports
    return {**document, "spec": spec}
