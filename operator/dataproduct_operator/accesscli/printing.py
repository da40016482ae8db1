"""What ``dpo access`` prints: tables of typed models, and YAML documents (layer ``cli``, pure).

Tables are laid out as kubectl lays out its own (upper-case headers, columns two spaces
apart); a free text (a purpose, a note) is put on one line and shortened, so that a row stays
a row; ``-`` marks what is not known yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from dataproduct_operator.api.accessrequest import DataAccessRequest
from dataproduct_operator.api.dataproduct import (
    DataProduct,
    EffectiveReader,
    PendingRequest,
    ReaderKind,
)

PURPOSE_WIDTH = 40
NOTE_WIDTH = 60
NONE = "-"
ALL_PORTS = "*"


def to_yaml(document: dict[str, Any]) -> str:
    """One YAML document, ready for ``kubectl apply -f -`` (keys in the order written)."""
    return "---\n" + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def shortened(text: str | None, width: int) -> str:
    """``text`` on one line, at most ``width`` characters (an ellipsis marks a cut)."""
    if not text:
        return NONE
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns as wide as their widest cell, two spaces apart; the last one not padded."""
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _ports(ports: Sequence[str]) -> str:
    return ",".join(ports) if ports else ALL_PORTS


def subject_text(kind: ReaderKind, name: str, namespace: str | None) -> str:
    """``serviceaccount:ns/name``, ``group:name``, ``user:name``: what ``--for`` takes."""
    if kind is ReaderKind.SERVICE_ACCOUNT:
        return f"serviceaccount:{namespace}/{name}"
    return f"{kind.value.lower()}:{name}"


REQUEST_HEADERS = (
    "NAMESPACE",
    "NAME",
    "PRODUCT",
    "SUBJECT",
    "PORTS",
    "PHASE",
    "EXPIRES",
    "PURPOSE",
)


def requests_table(requests: Iterable[DataAccessRequest]) -> str:
    """``dpo access list``: one row per request."""
    rows = [
        (
            request.namespace,
            request.name,
            f"{request.spec.product.namespace}/{request.spec.product.name}",
            str(request.spec.subject),
            _ports(request.spec.ports),
            request.status.phase.value,
            request.status.expires_at or NONE,
            shortened(request.spec.purpose, PURPOSE_WIDTH),
        )
        for request in requests
    ]
    if not rows:
        return "No access requests found"
    return table(REQUEST_HEADERS, rows)


PENDING_HEADERS = ("PRODUCT", "REQUEST", "SUBJECT", "PORTS", "DURATION", "REQUESTED-BY", "PURPOSE")


def pending_table(pending: Iterable[tuple[DataProduct, PendingRequest]]) -> str:
    """``dpo access list --pending``: the requests waiting for the caller's decision."""
    rows = [
        (
            f"{product.namespace}/{product.name}",
            entry.request,
            subject_text(entry.kind, entry.name, entry.namespace),
            _ports(entry.ports),
            entry.duration,
            entry.requested_by,
            shortened(entry.purpose, PURPOSE_WIDTH),
        )
        for product, entry in pending
    ]
    if not rows:
        return "No access requests are waiting for your decision"
    return table(PENDING_HEADERS, rows)


READER_HEADERS = ("SUBJECT", "SOURCE", "PORTS", "REQUEST", "EXPIRES", "PURPOSE")
HISTORY_HEADERS = ("TIME", "REQUEST", "SUBJECT", "PHASE", "BY", "NOTE")


def _reader_row(reader: EffectiveReader) -> tuple[str, ...]:
    return (
        subject_text(reader.kind, reader.name, reader.namespace),
        reader.source.value,
        _ports(reader.ports),
        reader.request or NONE,
        reader.expires_at or NONE,
        shortened(reader.purpose, PURPOSE_WIDTH),
    )


def history_text(product: DataProduct) -> str:
    """``dpo access history``: who reads the product now and why, then its audit trail."""
    access = product.status.access
    readers = access.readers if access else []
    history = access.history if access else []
    title = f"{product.namespace}/{product.name}"
    parts = [f"Readers of {title}:"]
    parts.append(table(READER_HEADERS, map(_reader_row, readers)) if readers else "  none")
    parts.append("")
    parts.append(f"Access requests of {title}, oldest first:")
    if history:
        rows = (
            (
                record.at,
                record.request,
                record.subject,
                record.phase.value,
                record.by or NONE,
                shortened(record.note, NOTE_WIDTH),
            )
            for record in history
        )
        parts.append(table(HISTORY_HEADERS, rows))
    else:
        parts.append("  none yet")
    return "\n".join(parts)
