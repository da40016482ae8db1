"""Validation of OpenLineage run events against the vendored spec and facet schemas
(``tests/schemas/openlineage-run/``, see its README), for the unit tests of the builder and the
sink of the client's integration test.

:func:`run_event_errors` lists what is wrong with an event: against the core spec (the whole
document's ``oneOf`` and the ``RunEvent`` its ``schemaURL`` names), and each facet against the
facet schema its ``_schemaURL`` names, under the key that schema defines. A facet whose schema
is not vendored is an error, so no facet goes out unchecked.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parent / "schemas" / "openlineage-run"
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _format_checker() -> FormatChecker:
    """The formats the standards' schemas use, each checked here (jsonschema checks some of
    them only when optional packages are installed); the export tests use it too."""
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def is_date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        return bool(_RFC3339.fullmatch(value)) and bool(datetime.fromisoformat(value))

    @checker.checks("uri")
    def is_uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme) and bool(parts.netloc or parts.path) and " " not in value

    @checker.checks("uuid", raises=ValueError)
    def is_uuid(value: object) -> bool:
        return not isinstance(value, str) or bool(uuid.UUID(value))

    return checker


FORMATS = _format_checker()


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def core() -> dict[str, Any]:
    return load(SCHEMAS / "OpenLineage.json")


@cache
def facet_schemas() -> dict[str, dict[str, Any]]:
    """The vendored facet schemas by ``$id``."""
    schemas = [load(path) for path in sorted((SCHEMAS / "facets").glob("*.json"))]
    return {schema["$id"]: schema for schema in schemas}


@cache
def _registry() -> Registry[Any]:
    pairs = [(schema["$id"], Resource.from_contents(schema)) for schema in facet_schemas().values()]
    spec = core()
    return Registry().with_resources([(spec["$id"], Resource.from_contents(spec)), *pairs])


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, registry=_registry(), format_checker=FORMATS)


def _errors(validator: Draft202012Validator, document: Any, where: str) -> list[str]:
    return [
        f"{where}/{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


# Where a facet may stand, by the spec's facet type it extends. The data quality assertions
# extend InputDatasetFacet, yet their documentation attaches them to a dataset's own facets.
PLACES = {
    "RunFacet": {"run"},
    "JobFacet": {"job"},
    "DatasetFacet": {"facets"},
    "InputDatasetFacet": {"inputFacets", "facets"},
    "OutputDatasetFacet": {"outputFacets"},
}


def facets_of(event: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(where, place, key, facet) of every facet in ``event``; place is run, job, or the
    dataset's facets, inputFacets or outputFacets."""
    found = [
        (f"{place}/facets/{key}", place, key, facet)
        for place in ("run", "job")
        for key, facet in (event.get(place, {}).get("facets") or {}).items()
    ]
    for side in ("inputs", "outputs"):
        for index, dataset in enumerate(event.get(side) or []):
            for group in ("facets", "inputFacets", "outputFacets"):
                for key, facet in (dataset.get(group) or {}).items():
                    found.append((f"{side}/{index}/{group}/{key}", group, key, facet))
    return found


def _facet_type(schema: dict[str, Any], name: str) -> str:
    """The spec's facet type that the facet ``name`` of ``schema`` extends (RunFacet, ...)."""
    (base, *_) = schema["$defs"][name]["allOf"]
    return str(base["$ref"]).rpartition("/")[2]


def run_event_errors(event: dict[str, Any]) -> list[str]:
    """What is wrong with ``event`` as an OpenLineage RunEvent; [] when it is valid."""
    errors = _errors(_validator(core()), event, "")
    schema_url = event.get("schemaURL", "")
    if not str(schema_url).endswith("#/$defs/RunEvent"):
        errors.append(f"schemaURL {schema_url!r} does not name the spec's RunEvent")
    else:
        errors += _errors(_validator({"$ref": schema_url}), event, "")
    for where, place, key, facet in facets_of(event):
        url = str(facet.get("_schemaURL", ""))
        schema = facet_schemas().get(url.partition("#")[0])
        if schema is None:
            errors.append(f"{where}: the facet schema {url!r} is not vendored")
            continue
        if key not in schema.get("properties", {}):
            errors.append(f"{where}: {url} defines the facet under another key")
        facet_type = _facet_type(schema, url.rpartition("/")[2])
        if place not in PLACES[facet_type]:
            errors.append(f"{where}: a {facet_type} belongs in {sorted(PLACES[facet_type])}")
        errors += _errors(_validator({"$ref": url}), facet, where)
    return errors
