"""``dpo render``: DataProduct manifests in, desired children out as a YAML stream (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dataproduct_operator.api.dataproduct import KIND, DataProduct
from dataproduct_operator.api.kinds import GROUP, VERSION
from dataproduct_operator.errors import UserError
from dataproduct_operator.specs.dataproduct import build_children

# libyaml's emitter when PyYAML has it (some ten times faster over a mesh's exports); the
# output is the same.
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _LiteralDumper(_SafeDumper):  # type: ignore[misc,valid-type]
    """Multi-line strings (the connection details) as readable literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _represent_str)


def dump_stream(objects: list[dict[str, Any]]) -> str:
    return yaml.dump_all(
        objects, Dumper=_LiteralDumper, sort_keys=False, explicit_start=True, allow_unicode=True
    )


def _validation_message(source: str, error: ValidationError) -> str:
    lines = [f"{source} is not a valid DataProduct:"]
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"])
        lines.append(f"  {location}: {problem['msg']}")
    return "\n".join(lines)


def parse_products(documents: list[Any], *, default_namespace: str) -> list[DataProduct]:
    """Every DataProduct document, parsed; other documents are skipped."""
    products: list[DataProduct] = []
    for index, document in enumerate(documents):
        if not isinstance(document, dict) or document.get("kind") != KIND:
            continue
        if document.get("apiVersion") != f"{GROUP}/{VERSION}":
            raise UserError(f"Document {index + 1}: apiVersion must be {GROUP}/{VERSION}")
        metadata = {"namespace": default_namespace, **(document.get("metadata") or {})}
        name = metadata.get("name", f"document {index + 1}")
        try:
            products.append(DataProduct.from_object({**document, "metadata": metadata}))
        except ValidationError as error:
            raise UserError(_validation_message(f"DataProduct {name}", error)) from error
    return products


def render_documents(documents: list[Any], *, default_namespace: str) -> list[dict[str, Any]]:
    """Children of every DataProduct document; other documents are skipped."""
    products = parse_products(documents, default_namespace=default_namespace)
    return [child for product in products for child in build_children(product)]


def load_documents(path: Path) -> list[Any]:
    """The documents of a YAML file, or a UserError that says why it cannot be read."""
    try:
        return list(yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {error}") from error


def render_file(path: Path, *, default_namespace: str) -> str:
    documents = load_documents(path)
    children = render_documents(documents, default_namespace=default_namespace)
    if not children:
        raise UserError(f"{path} holds no {KIND} of {GROUP}/{VERSION}")
    return dump_stream(children)
