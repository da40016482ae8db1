"""What the open-standard exports share (layer ``catalog``, pure).

The lifecycle-to-status mapping of the Bitol standards, the people to contact, the
``customProperties`` entries and the project's URL as the producer of metadata. A source URI is
shown only through :func:`dataproduct_operator.catalog.lineage.redact_uri`, the catalog's one
redactor, so an export never shows more of it than the lineage graph does.
"""

from __future__ import annotations

from typing import Any

from dataproduct_operator.api.dataproduct import DataProduct, Lifecycle, Owner, Pipeline

# The producer of every exported document; OpenLineage wants a URI it can show.
PROJECT_URL = "https://github.com/datamesh-dev/dataproduct-operator"

# Bitol's statuses (ODPS and ODCS list the same examples) are proposed, draft, active,
# deprecated and retired. Experimental becomes "proposed": offered to consumers to try and
# comment on, without the promises of "active". The exact stage rides along as the
# customProperty "lifecycle", so nothing is lost.
BITOL_STATUS = {
    Lifecycle.DRAFT: "draft",
    Lifecycle.EXPERIMENTAL: "proposed",
    Lifecycle.PRODUCTION: "active",
    Lifecycle.DEPRECATED: "deprecated",
    Lifecycle.RETIRED: "retired",
}

# A product without spec.version has published no release yet; the standards need a version.
UNRELEASED_VERSION = "0.0.0"


def bitol_status(lifecycle: Lifecycle) -> str:
    return BITOL_STATUS[lifecycle]


def version_of(product: DataProduct) -> str:
    return product.spec.version or UNRELEASED_VERSION


def custom_property(name: str, value: Any) -> dict[str, Any]:
    """One ``customProperties`` entry, the same shape in ODPS and ODCS."""
    return {"property": name, "value": value}


def support_channels(owner: Owner) -> list[dict[str, str]]:
    """An email channel per contact with an address (both standards need a URL)."""
    return [
        {
            "channel": contact.name,
            "url": f"mailto:{contact.email}",
            "tool": "email",
            "scope": "interactive",
        }
        for contact in owner.contacts
        if contact.email
    ]


def team_members(owner: Owner) -> list[dict[str, str]]:
    """The owner's contacts as team members; the username is the email where there is one."""
    return [
        {"username": contact.email or contact.name, "name": contact.name, "role": "contact"}
        for contact in owner.contacts
    ]


def pipeline_summary(pipeline: Pipeline) -> dict[str, Any]:
    """What a pipeline is, without its command, arguments or environment.

    Those are implementation, and literal values in them may be sensitive.
    """
    summary: dict[str, Any] = {"name": pipeline.name, "image": pipeline.image}
    summary["schedule"] = pipeline.schedule or "on demand"
    if pipeline.timeout_seconds is not None:
        summary["timeoutSeconds"] = pipeline.timeout_seconds
    summary["retries"] = pipeline.retries
    if pipeline.suspend:
        summary["suspended"] = True
    return summary
