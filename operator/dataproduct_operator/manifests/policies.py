"""The starter MeshPolicies (layer ``manifests``, pure).

Shipped by the chart behind ``policies.enabled`` and applied by ``dpo dev``; each one a rule of
governance most meshes want from day one, written so that the message tells a domain engineer
what to change. Every one is enforced at admission (Deny) and audited, but
``allowed-registries``, which is only audited until the platform team has listed its registries
(the chart's ``policies.allowedRegistries``, rendered into the rule's CEL as a list literal).
"""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.kinds import GROUP, VERSION
from dataproduct_operator.api.meshpolicy import KIND

# Names of the ports (or pipelines) that break a rule, for the messages.
_PORTS_WITHOUT_FRESHNESS = (
    "object.spec.outputPorts.filter(p, !has(p.slo) || !has(p.slo.freshness))"
    ".map(p, p.name).join(', ')"
)
_PII = "has(p.schema) && p.schema.exists(c, has(c.pii) && c.pii)"
_SCHEDULED = "object.spec.pipelines.filter(p, has(p.schedule)).map(p, p.name).join(', ')"
# Every column of every port of the previous version is still there.
_NO_COLUMN_REMOVED = (
    "oldObject.spec.outputPorts.all(old, !has(old.schema) || "
    "object.spec.outputPorts.exists(p, p.name == old.name && "
    "old.schema.all(c, has(p.schema) && p.schema.exists(n, n.name == c.name))))"
)
_MAJOR_BUMPED = (
    "has(object.spec.version) && has(oldObject.spec.version) && "
    "int(object.spec.version.split('.')[0]) > int(oldObject.spec.version.split('.')[0])"
)


# The registry of an image reference, as container runtimes read it: the first part of the path
# when it names a host (a dot, a port or localhost), else Docker Hub.
_REGISTRY_HOST = "p.image.split('/')[0]"
_REGISTRY = (
    f"(p.image.contains('/') && ({_REGISTRY_HOST}.contains('.') || "
    f"{_REGISTRY_HOST}.contains(':') || {_REGISTRY_HOST} == 'localhost') ? "
    f"{_REGISTRY_HOST} : 'docker.io')"
)
DEFAULT_ALLOWED_REGISTRIES = ("ghcr.io",)
# Stands for the list of registries in the chart's template, where Helm writes the value's.
REGISTRIES_PLACEHOLDER = "ALLOWED_REGISTRIES_LIST"


def _cel_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


def allowed_registries_policy(registries: str) -> dict[str, Any]:
    """``allowed-registries``, Audit: every pipeline image comes from one of ``registries`` (a
    CEL list literal of registry hosts, such as ``['ghcr.io', 'registry.example.com:5000']``);
    sql pipelines, which run the operator's own runner image, have none to check."""
    return _policy(
        "allowed-registries",
        "Pipeline images come only from the registries the platform team trusts.",
        {
            "name": "images-from-allowed-registries",
            "expression": "!has(object.spec.pipelines) || "
            f"object.spec.pipelines.all(p, !has(p.image) || {_REGISTRY} in {registries})",
            "messageExpression": "'pipeline images come from the registries ' + "
            f"{registries}.join(', ') + '; move these to one of them: ' + "
            f"object.spec.pipelines.filter(p, has(p.image) && !({_REGISTRY} in {registries}))"
            ".map(p, p.name + ' (' + p.image + ')').join(', ')",
        },
        enforcement="Audit",
    )


def _policy(
    name: str,
    description: str,
    rule: dict[str, str],
    *,
    lifecycles: tuple[str, ...] = (),
    enforcement: str = "Deny",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"description": description, "enforcement": enforcement, "rules": [rule]}
    if lifecycles:
        spec["match"] = {"lifecycles": list(lifecycles)}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name},
        "spec": spec,
    }


STARTER_POLICIES: tuple[dict[str, Any], ...] = (
    _policy(
        "production-freshness",
        "Consumers of a Production product rely on how fresh its data is.",
        {
            "name": "freshness-on-every-port",
            "expression": "object.spec.outputPorts.all(p, has(p.slo) && has(p.slo.freshness))",
            "messageExpression": "'a Production data product declares slo.freshness on every "
            "output port; add it (e.g. slo: {freshness: 24h}) to: ' + " + _PORTS_WITHOUT_FRESHNESS,
        },
        lifecycles=("Production",),
    ),
    _policy(
        "pii-classification",
        "Personal data is never published as Public or Internal.",
        {
            "name": "pii-needs-confidential",
            "expression": f"!object.spec.outputPorts.exists(p, {_PII}) || "
            "object.spec.classification in ['Confidential', 'Restricted']",
            "messageExpression": "'output ports with pii columns (' + "
            f"object.spec.outputPorts.filter(p, {_PII}).map(p, p.name).join(', ') + "
            "') need spec.classification Confidential or Restricted, not ' + "
            "object.spec.classification",
        },
    ),
    _policy(
        "production-contacts",
        "Someone answers for every Production product.",
        {
            "name": "owner-contact",
            "expression": "has(object.spec.owner.contacts) && size(object.spec.owner.contacts) > 0",
            "message": "a Production data product names at least one owner contact: add "
            "spec.owner.contacts with a name and an email",
        },
        lifecycles=("Production",),
    ),
    _policy(
        "retired-no-schedules",
        "A Retired product no longer produces data.",
        {
            "name": "no-scheduled-pipelines",
            "expression": "!has(object.spec.pipelines) || "
            "object.spec.pipelines.all(p, !has(p.schedule))",
            "messageExpression": "'a Retired data product runs no scheduled pipelines; remove "
            "the schedule of: ' + " + _SCHEDULED,
        },
        lifecycles=("Retired",),
    ),
    _policy(
        "breaking-change-major-version",
        "Removing a column breaks consumers: it takes a new major version.",
        {
            "name": "column-removal-bumps-major",
            "expression": f"oldObject == null || {_NO_COLUMN_REMOVED} || ({_MAJOR_BUMPED})",
            "messageExpression": "'a column or output port of this Production product was "
            "removed: raise the major number of spec.version (now ' + "
            "(has(object.spec.version) ? object.spec.version : 'unset') + ')'",
        },
        lifecycles=("Production",),
    ),
    allowed_registries_policy(_cel_list(DEFAULT_ALLOWED_REGISTRIES)),
)
