"""Rendering templates into Kubernetes objects (layer ``specs``, pure).

Templates are jinja2 with ``StrictUndefined`` (a missing value is an error, never an empty
string). Every value is inserted through the ``json`` filter, which puts a quoted placeholder in
the text and keeps the value aside; the text is parsed by PyYAML's safe loader (libyaml's C
implementation when present) and each placeholder is then replaced by its value, as JSON would
carry it. User input so never reaches the YAML parser and can never change the structure, and
the parser reads only the templates' own skeleton: every reconcile renders each child, and
parsing the values as YAML took most of the operator's rendering time.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

TEMPLATES = Path(__file__).parent / "templates"
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - YAML, not HTML; values go through the json filter
        keep_trailing_newline=True,
    )
    environment.filters["json"] = jinja2.pass_context(_set_aside)
    return environment


PLACEHOLDER = "\u2063dpo-value-"  # an invisible separator starts it: no template text does
VALUES = "_values_set_aside"  # the context variable holding one rendering's values


def _set_aside(context: jinja2.runtime.Context, value: Any) -> str:
    """The ``json`` filter: a placeholder for ``value``, which is kept as JSON would carry it."""
    values: list[Any] = context[VALUES]
    values.append(json.loads(json.dumps(value)))  # also a copy of its own for every use
    return json.dumps(f"{PLACEHOLDER}{len(values) - 1}")


def _put_back(node: Any, values: list[Any]) -> Any:
    if isinstance(node, dict):
        return {_put_back(key, values): _put_back(item, values) for key, item in node.items()}
    if isinstance(node, list):
        return [_put_back(item, values) for item in node]
    if isinstance(node, str) and node.startswith(PLACEHOLDER):
        return values[int(node[len(PLACEHOLDER) :])]
    return node


def render(template: str, **context: Any) -> dict[str, Any]:
    """Render ``templates/<template>`` and parse it into one object."""
    values: list[Any] = []
    text = _environment().get_template(template).render(**context, **{VALUES: values})
    document = _put_back(yaml.load(text, Loader=SAFE_LOADER), values)  # noqa: S506 - safe
    if not isinstance(document, dict):
        raise ValueError(f"Template {template} did not render an object:\n{text}")
    return document
