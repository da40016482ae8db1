"""What the open-standard exports share (layer ``catalog``, pure).

The lifecycle-to-status mapping of the Bitol standards, the people to contact, the
``customProperties`` entries, the project's URL as the producer of metadata, and where a store
port's table is (its endpoint, from the product's status: the operator records it once the table
exists) and how a reader logs in to read it (never a password: the exports name the Secret).
A source URI is shown only through :func:`dataproduct_operator.catalog.lineage.redact_uri`, the
catalog's one redactor, so an export never shows more of it than the lineage graph does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dataproduct_operator.api.dataproduct import (
    DataProduct,
    FileSource,
    Lifecycle,
    Owner,
    Pipeline,
    PortEndpoint,
)
from dataproduct_operator.api.naming import reader_secret_name
from dataproduct_operator.catalog.lineage import file_location

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
    summary: dict[str, Any] = {"name": pipeline.name}
    if pipeline.image is not None:
        summary["image"] = pipeline.image
    else:  # the built-in runner: where it writes and what it reads, not the SQL itself
        summary["sql"] = {
            "output": pipeline.output,
            "mode": pipeline.mode.value,
            "sources": list(pipeline.sources),
        }
    summary["schedule"] = pipeline.schedule or "on demand"
    if pipeline.timeout_seconds is not None:
        summary["timeoutSeconds"] = pipeline.timeout_seconds
    summary["retries"] = pipeline.retries
    if pipeline.suspend:
        summary["suspended"] = True
    return summary


def port_endpoint(product: DataProduct, port_name: str) -> PortEndpoint | None:
    """The table of a store port, as the product's status records it; None for a volume port,
    or a store port not placed yet (a manifest without status)."""
    for port in product.status.output_ports:
        if port.name == port_name:
            return port.endpoint
    return None


def endpoint_properties(endpoint: PortEndpoint) -> dict[str, Any]:
    """An endpoint as the exports write it (the status's field names)."""
    return endpoint.model_dump(by_alias=True, mode="json")


def reader_login_note(endpoint: PortEndpoint) -> str:
    """How a reader logs in to a store port's table: the Secret, never a credential."""
    secret = reader_secret_name(endpoint.store, "<serviceaccount>")
    return (
        f"A reader's ServiceAccount logs in with the PG* variables (PGHOST, PGPORT, PGDATABASE, "
        f"PGUSER, PGPASSWORD, PGSSLMODE) of the Secret {secret} in its own namespace, written "
        f"by the operator once the product lists it among its readers; a Group or User reader "
        f"reads through the role its DBA maps it to."
    )


# (namespace, product, port) -> the endpoint of that port, when known: how one product's export
# names the tables of the products it reads, so lineage edges meet their upstream's dataset.
EndpointLookup = Callable[[str, str, str], PortEndpoint | None]


def no_endpoints(_namespace: str, _product: str, _port: str) -> PortEndpoint | None:
    return None


def endpoints_of(products: Iterable[DataProduct]) -> EndpointLookup:
    """The endpoints the statuses of ``products`` record."""
    found = {
        (product.namespace, product.name, port.name): port.endpoint
        for product in products
        for port in product.status.output_ports
        if port.endpoint is not None
    }
    return lambda namespace, product, port: found.get((namespace, product, port))


def file_input(namespace: str, name: str, file: FileSource) -> dict[str, str]:
    """A file input as the exports show it: its format and where it is (a URL as the catalog
    redacts it, or ``pvc://<namespace>/<claim>/<path>``)."""
    return {"name": name, "format": file.format.value, "location": file_location(namespace, file)}
