"""The documents ``dpo access`` writes, and the references it reads (layer ``cli``, pure).

Every input of the command line is checked here, before anything is sent, with a message that
names the flag to change; the documents are then validated by the same models the CRDs are
generated from, so what passes here is what the API server accepts (the admission policies'
``requestedBy`` and ``decidedBy`` come from the API server itself: see :mod:`.commands`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from dataproduct_operator.api.accessdecision import (
    DataAccessDecision,
    DataAccessDecisionSpec,
    Verdict,
)
from dataproduct_operator.api.accessrequest import (
    MAX_NOTE,
    MAX_PORTS,
    MAX_PURPOSE,
    AccessSubject,
    DataAccessRequestSpec,
)
from dataproduct_operator.api.base import DNS_LABEL
from dataproduct_operator.api.dataproduct import (
    SYSTEM_PREFIX,
    SYSTEM_SUBJECT_REASON,
    DataProduct,
    PendingRequest,
    ReaderKind,
)
from dataproduct_operator.api.grants import checked_grant_duration, grant_seconds
from dataproduct_operator.api.kinds import API_VERSION, DATA_ACCESS_DECISION, DATA_ACCESS_REQUEST
from dataproduct_operator.errors import UserError

MAX_NAME = 63  # both kinds' names are DNS labels (their CRDs say so)
SUFFIX_LENGTH = 5
SUBJECT_FORMS = "serviceaccount:NAMESPACE/NAME, group:NAME or user:NAME"
_SUBJECT_KINDS = {
    "serviceaccount": ReaderKind.SERVICE_ACCOUNT,
    "group": ReaderKind.GROUP,
    "user": ReaderKind.USER,
}


@dataclass(frozen=True)
class ObjectRef:
    """``NAMESPACE/NAME`` of a namespaced object, as the command line names it."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def parse_ref(text: str, what: str) -> ObjectRef:
    """``"sales/orders"`` -> ObjectRef; UserError naming the form otherwise."""
    namespace, slash, name = text.partition("/")
    if not slash or not _is_dns_label(namespace) or not _is_dns_label(name):
        raise UserError(
            f"{text!r} is not NAMESPACE/NAME of {what}: write both as lowercase DNS labels, "
            "such as sales/orders"
        )
    return ObjectRef(namespace, name)


def _is_dns_label(text: str) -> bool:
    return len(text) <= MAX_NAME and re.fullmatch(DNS_LABEL, text) is not None


def parse_subject(text: str) -> AccessSubject:
    """``--for``: ``serviceaccount:NS/NAME``, ``group:NAME`` or ``user:NAME``."""
    kind_text, colon, rest = text.partition(":")
    kind = _SUBJECT_KINDS.get(kind_text.lower())
    if not colon or kind is None or not rest:
        raise UserError(f"--for {text!r} is not a subject: write {SUBJECT_FORMS}")
    if kind is ReaderKind.SERVICE_ACCOUNT:
        namespace, slash, name = rest.partition("/")
        if not slash or not _is_dns_label(namespace) or not name:
            raise UserError(
                f"--for {text!r} is not a subject: a ServiceAccount is named with its "
                f"namespace; write {SUBJECT_FORMS}"
            )
        account = ObjectRef(namespace, name)
        return _subject(kind, account.name, account.namespace, text)
    if rest.startswith(SYSTEM_PREFIX):  # the CRD's rule, told before anything is sent
        raise UserError(f"--for {text!r}: a Group or User subject {SYSTEM_SUBJECT_REASON}")
    return _subject(kind, rest, None, text)


def _subject(kind: ReaderKind, name: str, namespace: str | None, text: str) -> AccessSubject:
    try:
        return AccessSubject(kind=kind, name=name, namespace=namespace)
    except ValidationError as error:
        raise UserError(f"--for {text!r}: {_first_error(error)}") from None


def request_namespace(subject: AccessSubject, namespace: str | None) -> str:
    """Where a request for ``subject`` lives: a ServiceAccount's own namespace (the admission
    policy insists); for a Group or User, ``namespace`` (``-n`` or the kubeconfig's)."""
    if subject.kind is ReaderKind.SERVICE_ACCOUNT:
        own = subject.namespace or ""  # always set: the model requires it of a ServiceAccount
        if namespace is not None and namespace != own:
            raise UserError(
                f"A request for {subject} lives in that ServiceAccount's namespace "
                f"{own}, not {namespace}: drop -n/--namespace"
            )
        return own
    if namespace is None:
        raise UserError(
            f"A request for {subject} needs a namespace to live in: give -n/--namespace "
            "(your team's namespace)"
        )
    return namespace


def object_name(parts: Sequence[str], suffix: str) -> str:
    """A DNS label of at most 63 characters from ``parts`` and a random ``suffix``: readable
    and unique (``orders-reporting-x7k2p``)."""
    words = "-".join(re.sub(r"[^a-z0-9]+", "-", part.lower()).strip("-") for part in parts)
    stem = re.sub(r"-+", "-", words)[: MAX_NAME - len(suffix) - 1].strip("-")
    return f"{stem}-{suffix}" if stem else suffix


def checked_name(name: str, flag: str = "--name") -> str:
    if not _is_dns_label(name):
        raise UserError(
            f"{flag} {name!r} is not a valid name: use at most {MAX_NAME} lowercase letters, "
            "digits and '-', starting and ending with a letter or digit"
        )
    return name


def checked_duration(duration: str | None, flag: str = "--duration") -> str | None:
    if duration is None:
        return None
    try:
        grant_seconds(duration)
        return checked_grant_duration(duration)
    except ValueError as error:
        raise UserError(f"{flag}: {error} (1m to 366d)") from None


def _checked_text(text: str | None, flag: str, maximum: int, *, required: bool) -> str | None:
    if text is None or not text.strip():
        if required:
            raise UserError(f"{flag} must say something: why the data is needed")
        return None
    if len(text) > maximum:
        raise UserError(f"{flag} is {len(text)} characters long: shorten it to {maximum}")
    return text


def _checked_ports(ports: Sequence[str]) -> list[str]:
    if len(ports) > MAX_PORTS:
        raise UserError(
            f"{len(ports)} --port flags: a request names at most {MAX_PORTS} ports "
            "(none: every port)"
        )
    for port in ports:
        if not _is_dns_label(port):
            raise UserError(f"--port {port!r} is not a port name: ports are lowercase DNS labels")
    return list(dict.fromkeys(ports))  # a set on the API server: a repeat would be refused


@dataclass(frozen=True)
class RequestInput:
    """What ``dpo access request`` was asked for."""

    product: ObjectRef
    subject: AccessSubject
    purpose: str
    ports: tuple[str, ...] = ()
    duration: str | None = None
    renews: str | None = None


def build_request(
    request: RequestInput, *, namespace: str, name: str, requested_by: str
) -> dict[str, Any]:
    """The DataAccessRequest document for ``request``, in ``namespace``."""
    spec: dict[str, Any] = {
        "product": {"namespace": request.product.namespace, "name": request.product.name},
        "ports": _checked_ports(request.ports),
        "subject": request.subject.to_wire(),
        "purpose": _checked_text(request.purpose, "--purpose", MAX_PURPOSE, required=True),
        "duration": checked_duration(request.duration),
        "requestedBy": requested_by,
        "renews": None
        if request.renews is None
        else {"name": checked_name(request.renews, "--renews")},
    }
    return _document(
        DATA_ACCESS_REQUEST, namespace, checked_name(name), spec, DataAccessRequestSpec
    )


@dataclass(frozen=True)
class DecisionInput:
    """What ``dpo access approve`` or ``deny`` was asked for."""

    request: ObjectRef
    verdict: Verdict
    note: str | None = None
    duration: str | None = None


def build_decision(
    decision: DecisionInput, *, uid: str, namespace: str, name: str, decided_by: str
) -> dict[str, Any]:
    """The DataAccessDecision document answering the request ``uid``, in the product's
    ``namespace``."""
    if decision.duration is not None and decision.verdict is not Verdict.APPROVE:
        raise UserError("--duration is for approve only: a denial grants nothing")
    spec: dict[str, Any] = {
        "request": {
            "namespace": decision.request.namespace,
            "name": decision.request.name,
            "uid": uid,
        },
        "decision": decision.verdict.value,
        "note": _checked_text(decision.note, "--note", MAX_NOTE, required=False),
        "decidedBy": decided_by,
        "duration": checked_duration(decision.duration),
    }
    return _document(
        DATA_ACCESS_DECISION, namespace, checked_name(name), spec, DataAccessDecisionSpec
    )


def _document(
    kind: str,
    namespace: str,
    name: str,
    spec: dict[str, Any],
    model: type[DataAccessRequestSpec] | type[DataAccessDecisionSpec],
) -> dict[str, Any]:
    """The whole document, its spec as the model writes it (a last check of every bound)."""
    try:
        wire = model.model_validate({k: v for k, v in spec.items() if v is not None}).to_wire()
    except ValidationError as error:
        raise UserError(f"The {kind} would be refused: {_first_error(error)}") from None
    if not wire.get("ports"):
        wire.pop("ports", None)  # every port: as a user would write it
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": wire,
    }


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def find_pending(
    products: Iterable[DataProduct], request: ObjectRef
) -> tuple[DataProduct, PendingRequest] | None:
    """The product whose owners are asked by ``request``, and its pending entry (what an
    owner who may not read the consumer's namespace learns of the request)."""
    wanted = str(request)
    for product in products:
        access = product.status.access
        for pending in access.pending if access else ():
            if pending.request == wanted:
                return product, pending
    return None


def approvals_answering(
    decisions: Iterable[DataAccessDecision], request: ObjectRef, uid: str | None
) -> list[DataAccessDecision]:
    """The Approve decisions answering ``request`` (that very request when its ``uid`` is
    known; any request of that name otherwise): deleting them revokes."""
    return [
        decision
        for decision in decisions
        if decision.spec.decision is Verdict.APPROVE
        and decision.spec.request.namespace == request.namespace
        and decision.spec.request.name == request.name
        and (uid is None or decision.spec.request.uid == uid)
    ]
