"""The run spec of a sql pipeline: what the built-in runner (``dpo pipeline run`` in the runner
image) reads from its environment, built from the product and what its store holds for it
(layer ``specs``, pure).

The spec names tables, columns, checks and where each source's login is in the environment;
it never holds a credential (those come from Secrets, as ``envFrom``). A sql pipeline gets no
run while its output port is not a table in a store yet, or while an input it reads is not
ready: such a run could only fail.

Sources: another product's port is read through the reader login the operator granted; an
external postgres input (``table`` and ``secretRef`` set) with the login its own Secret holds,
at the host, port and database of its ``uri`` (:func:`postgres_location`, variables of the pod);
a file input from its URL (the runner downloads it), or from the claim it is on, mounted
read-only at ``/sources/<claim>`` (:func:`file_reads`, :func:`source_mounts`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dataproduct_operator.api.dataproduct import (
    DataProduct,
    ExternalSource,
    OutputPort,
    Pipeline,
    PortCheck,
)
from dataproduct_operator.api.naming import (
    RUN_SPEC_VARIABLE,
    input_variable_prefix,
    source_mount_path,
    source_volume_name,
)
from dataproduct_operator.api.run_terms import FileFormat

__all__ = [
    "RUN_SPEC_VARIABLE",
    "ExternalRead",
    "FileRead",
    "build_run_spec",
    "duration_seconds",
    "external_reads",
    "file_reads",
    "postgres_location",
    "run_spec_json",
    "source_mounts",
]

POSTGRES_PORT = 5432


def _table(qualified: str) -> dict[str, str]:
    schema, _, name = qualified.partition(".")
    return {"schema": schema, "name": name}


def _check(check: PortCheck) -> dict[str, Any]:
    found: dict[str, Any] = {"name": check.name, "severity": check.severity.value}
    if check.sql is not None:
        found["sql"] = check.sql
    elif check.min_rows is not None:
        found["minRows"] = check.min_rows
    elif check.max_null_fraction is not None:
        found["maxNullFraction"] = {
            "column": check.max_null_fraction.column,
            "fraction": check.max_null_fraction.fraction,
        }
    elif check.freshness is not None:
        found["freshness"] = {
            "column": check.freshness.column,
            "maxAgeSeconds": duration_seconds(check.freshness.max_age),
        }
    return found


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(duration: str) -> int:
    """``30m`` -> 1800 (the API's DURATION: a positive number and one unit of s, m, h, d, w)."""
    return int(duration[:-1]) * _UNITS[duration[-1]]


def _output(port: OutputPort, table: str) -> dict[str, Any]:
    output: dict[str, Any] = {
        "port": port.name,
        "table": _table(table),
        "columns": [
            {"name": c.name, "type": c.type, "required": c.required, "unique": c.unique}
            for c in port.schema_
        ],
    }
    if port.slo is not None and port.slo.freshness_column:
        output["freshnessColumn"] = port.slo.freshness_column
    return output


def postgres_location(source: ExternalSource) -> dict[str, str]:
    """libpq's PGHOST, PGPORT and PGDATABASE of a postgres source's ``uri`` (checked at apply
    time to be postgresql://host[:port]/database)."""
    parts = urlsplit(source.uri)
    return {
        "PGHOST": parts.hostname or "",
        "PGPORT": str(parts.port or POSTGRES_PORT),
        "PGDATABASE": parts.path.lstrip("/"),
    }


@dataclass(frozen=True)
class ExternalRead:
    """An external postgres table a sql pipeline reads: the input's name, the table, the
    Secret with the login, and libpq's variables of where it is."""

    name: str
    table: str
    secret: str
    location: dict[str, str]


def external_reads(product: DataProduct, pipeline: Pipeline) -> list[ExternalRead]:
    """The external inputs a sql pipeline reads (postgres tables, each with its Secret)."""
    return [
        ExternalRead(
            source.name, external.table, external.secret_ref.name, postgres_location(external)
        )
        for source in product.spec.inputs
        if source.name in pipeline.sources
        and (external := source.external) is not None
        and external.table is not None
        and external.secret_ref is not None
        and external.type == "postgres"
    ]


@dataclass(frozen=True)
class FileRead:
    """A file a sql pipeline reads: the input's name, its format, where the runner finds it
    (an http(s) URL, or the absolute path in the pod), and the claim it is on (None: a URL)."""

    name: str
    format: FileFormat
    location: str
    claim: str | None = None


def file_reads(product: DataProduct, pipeline: Pipeline) -> list[FileRead]:
    """The file inputs a sql pipeline reads, in the order of ``spec.inputs``."""
    reads = []
    for source in product.spec.inputs:
        file = source.file
        if file is None or source.name not in pipeline.sources or pipeline.sql is None:
            continue
        if file.volume is not None:
            claim = file.volume.claim_name
            location = f"{source_mount_path(claim)}/{file.volume.path}"
            reads.append(FileRead(source.name, file.format, location, claim))
        elif file.url is not None:
            reads.append(FileRead(source.name, file.format, file.url))
    return reads


def source_mounts(reads: list[FileRead]) -> list[dict[str, Any]]:
    """The pod's read-only mounts of the claims ``reads`` are on: one per claim, sorted."""
    claims = sorted({read.claim for read in reads if read.claim is not None})
    return [
        {
            "volume": source_volume_name(claim),
            "path": source_mount_path(claim),
            "claim": claim,
            "read_only": True,
        }
        for claim in claims
    ]


def _quoted(table: str) -> str:
    return ".".join(f'"{part}"' for part in table.split("."))


def build_run_spec(
    product: DataProduct,
    pipeline: Pipeline,
    *,
    output_table: str | None,
    input_tables: dict[str, str],
    input_claims: frozenset[str] = frozenset(),
) -> dict[str, Any] | None:
    """The run spec of a sql pipeline (``output_table``: its output port's ``schema.table``, None
    while not placed; ``input_tables``: each ready input's; ``input_claims``: the claims of
    file inputs found in the namespace); None when no run can be made yet or the pipeline is
    not a sql one."""
    if pipeline.sql is None or pipeline.output is None or output_table is None:
        return None
    port = next(p for p in product.spec.output_ports if p.name == pipeline.output)
    external = {read.name: read for read in external_reads(product, pipeline)}
    files = {read.name: read for read in file_reads(product, pipeline)}
    sources: list[dict[str, Any]] = []
    for name in pipeline.sources:
        file = files.get(name)
        if file is not None:
            if file.claim is not None and file.claim not in input_claims:
                return None  # its claim is missing: the pod would wait for it forever
            sources.append({
                "name": name,
                "kind": "file",
                "format": file.format.value,
                "location": file.location,
            })  # fmt: skip
            continue
        read = external.get(name)
        if read is not None:
            sources.append({
                "name": name,
                "kind": "postgres",
                "query": f"SELECT * FROM {_quoted(read.table)}",  # noqa: S608 - checked name
                "envPrefix": input_variable_prefix(name),
            })  # fmt: skip
            continue
        table = input_tables.get(name)
        if table is None:
            return None  # an input not ready (or not another product's table): no run yet
        sources.append({
            "name": name,
            "kind": "product",
            "table": _table(table),
            "envPrefix": input_variable_prefix(name),
        })  # fmt: skip
    return {
        "product": {"namespace": product.namespace, "name": product.name},
        "pipeline": pipeline.name,
        "sql": pipeline.sql,
        "mode": pipeline.mode.value,
        "output": _output(port, output_table),
        "sources": sources,
        "checks": [_check(check) for check in port.checks],
    }


def run_spec_json(spec: dict[str, Any]) -> str:
    return json.dumps(spec, separators=(",", ":"), sort_keys=True)
