"""Where an access request stands, and who reads a product because of one (layer ``status``,
pure: every function takes the time as an argument).

:func:`compute_request` is the phase machine of a ``DataAccessRequest``::

    Pending ──(decision Approve, or autoApprove)──> Approved ──(grant in place)──> Active
       │                                               │                            │
       ├──(decision Deny, or refused)──> Denied        │      (notice before expiry) v
       │                                               │                      ExpiringSoon
       │                      (decision deleted, product deleted) ──> Revoked        │
       │                                                    (expiresAt reached) ──> Expired

Denied, Expired, Revoked and Withdrawn are final (withdrawn: the request was deleted; the
product's audit trail records it, see :func:`compute_product_access`). A request the operator
must refuse (no such product or port, a Hidden product of another namespace, requests disabled,
a duration above the product's cap) is Denied with the reason, by the operator. Every step is
appended to ``status.history``; the state lives in the objects only, so a restarted operator
carries on where the last one stopped, and :func:`next_change_seconds` says when time alone
will move the request next (the expiry notice, the expiry).

:func:`compute_product_access` is the product's side: its effective readers (the spec's and
the approved requests' until they expire), the pending requests the owners are to answer, and
the newest steps of its requests as an audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dataproduct_operator.api.accessdecision import Verdict
from dataproduct_operator.api.accessrequest import (
    MAX_HISTORY,
    DataAccessRequest,
    DataAccessRequestStatus,
    DecisionSource,
    HistoryEntry,
    RecordedDecision,
)
from dataproduct_operator.api.conditions import READY, Condition, Reason
from dataproduct_operator.api.dataproduct import (
    MAX_ACCESS_HISTORY,
    AccessRecord,
    AccessSource,
    DataProduct,
    Discoverability,
    EffectiveReader,
    PendingRequest,
    ProductAccessStatus,
)
from dataproduct_operator.api.grants import AccessPhase, grant_seconds
from dataproduct_operator.constants import DEFAULT_EXPIRY_NOTICE
from dataproduct_operator.status.conditions import Aspect, Stamp, build_condition

OPERATOR = "dataproduct-operator"
DEFAULT_EXPIRY_NOTICE_SECONDS = grant_seconds(DEFAULT_EXPIRY_NOTICE)


def stamp(moment: datetime) -> str:
    """``2026-11-30T08:00:00Z``: Kubernetes' form of a time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class DecisionSeen:
    """A DataAccessDecision that answers the request: in the product's namespace, naming the
    request's uid."""

    namespace: str
    name: str
    verdict: Verdict
    decided_by: str
    note: str | None = None
    duration: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class RequestFacts:
    """What the phase machine needs to know besides the request and the time."""

    product: DataProduct | None  # None: it does not exist
    decision: DecisionSeen | None  # the decision answering the request, if any
    consumer_domain: str | None  # the DataDomain holding the request's namespace
    granted: bool = False  # the product's status lists the request among its readers
    expiry_notice_seconds: int = DEFAULT_EXPIRY_NOTICE_SECONDS


@dataclass(frozen=True)
class RequestResult:
    """The request's new status, the steps it took in this pass (each an Event), and the
    reason of its Ready condition."""

    status: DataAccessRequestStatus
    entered: tuple[HistoryEntry, ...] = ()


@dataclass
class _Machine:
    request: DataAccessRequest
    facts: RequestFacts
    now: datetime
    phase: AccessPhase = AccessPhase.PENDING
    decision: RecordedDecision | None = None
    granted_at: str | None = None
    expires_at: str | None = None
    entered: list[HistoryEntry] = field(default_factory=list)

    def enter(self, phase: AccessPhase, by: str | None, note: str | None) -> None:
        self.phase = phase
        self.entered.append(HistoryEntry(phase=phase, at=stamp(self.now), by=by, note=note))


def _where(request: DataAccessRequest) -> str:
    product = request.spec.product
    return f"DataProduct {product.namespace}/{product.name}"


def refusal(request: DataAccessRequest, product: DataProduct | None) -> str | None:
    """Why the operator must deny the request before anyone decides, or None."""
    where = _where(request)
    hidden = (
        product is not None
        and product.spec.discoverability is Discoverability.HIDDEN
        and request.namespace != product.namespace
    )
    if product is None or hidden:
        # A Hidden product is not told apart from a missing one outside its namespace.
        return f"{where} does not exist: check spec.product"
    settings = product.spec.access.requests
    if not settings.enabled:
        return f"{where} takes no access requests (spec.access.requests.enabled is false)"
    ports = {port.name for port in product.spec.output_ports}
    missing = sorted(set(request.spec.ports) - ports)
    if missing:
        return (
            f"{where} has no output port {', '.join(missing)} (it has "
            f"{', '.join(sorted(ports)) or 'none'}): fix spec.ports"
        )
    asked = request.spec.duration
    if asked is not None and grant_seconds(asked) > grant_seconds(settings.max_duration):
        return (
            f"the duration {asked} is above the product's cap of {settings.max_duration} "
            "(spec.access.requests.maxDuration): ask for less"
        )
    return None


def granted_duration(request: DataAccessRequest, product: DataProduct, shorter: str | None) -> str:
    """How long an approval lasts: as asked (or the product's cap), shortened by the decision."""
    cap = product.spec.access.requests.max_duration
    chosen = request.spec.duration or cap
    if grant_seconds(chosen) > grant_seconds(cap):
        chosen = cap
    if shorter is not None and grant_seconds(shorter) < grant_seconds(chosen):
        chosen = shorter
    return chosen


def _approve(machine: _Machine, product: DataProduct, recorded: RecordedDecision,
             shorter: str | None) -> None:  # fmt: skip
    duration = granted_duration(machine.request, product, shorter)
    machine.decision = recorded
    machine.granted_at = stamp(machine.now)
    machine.expires_at = stamp(machine.now + timedelta(seconds=grant_seconds(duration)))
    machine.enter(AccessPhase.APPROVED, recorded.by, f"{recorded.note or 'approved'} ({duration})")


def _answer(machine: _Machine) -> None:
    """A pending request: refused, decided, auto-approved, or still pending."""
    request, facts, now = machine.request, machine.facts, stamp(machine.now)
    product = facts.product
    refused = refusal(request, product)
    if refused is not None or product is None:
        machine.decision = RecordedDecision(
            by=OPERATOR, at=now, note=refused, source=DecisionSource.OPERATOR
        )
        machine.enter(AccessPhase.DENIED, OPERATOR, refused)
        return
    decision = facts.decision
    if decision is not None:
        recorded = RecordedDecision(
            by=decision.decided_by,
            at=now,
            note=decision.note,
            source=DecisionSource.DECISION,
            decision=decision.key,
        )
        if decision.verdict is Verdict.DENY:
            machine.decision = recorded
            machine.enter(AccessPhase.DENIED, decision.decided_by, decision.note or "denied")
        else:
            _approve(machine, product, recorded, decision.duration)
        return
    domains = product.spec.access.requests.auto_approve.domains
    if facts.consumer_domain is not None and facts.consumer_domain in domains:
        note = f"approved for domain {facts.consumer_domain} (spec.access.requests.autoApprove)"
        recorded = RecordedDecision(
            by=OPERATOR, at=now, note=note, source=DecisionSource.AUTO_APPROVE
        )
        _approve(machine, product, recorded, None)


def _follow(machine: _Machine) -> None:
    """An approved request: revoked, expired, in place, or close to its end."""
    facts, recorded = machine.facts, machine.decision
    if (
        recorded is not None
        and recorded.source is DecisionSource.DECISION
        and facts.decision is None
    ):
        machine.enter(AccessPhase.REVOKED, "owners", f"decision {recorded.decision} deleted")
        return
    if facts.product is None:
        machine.enter(AccessPhase.REVOKED, OPERATOR, f"{_where(machine.request)} was deleted")
        return
    expires = parse_stamp(machine.expires_at)
    if expires is None or machine.now >= expires:
        machine.enter(AccessPhase.EXPIRED, OPERATOR, f"expired at {machine.expires_at}")
        return
    if machine.phase is AccessPhase.APPROVED and facts.granted:
        machine.enter(AccessPhase.ACTIVE, OPERATOR, "the grant is in place")
    notice = timedelta(seconds=facts.expiry_notice_seconds)
    if machine.phase is AccessPhase.ACTIVE and machine.now >= expires - notice:
        machine.enter(AccessPhase.EXPIRING_SOON, OPERATOR, f"expires at {machine.expires_at}")


def compute_request(
    request: DataAccessRequest, facts: RequestFacts, now: datetime
) -> RequestResult:
    """The request's status after this pass; see the module docstring."""
    before = request.status
    machine = _Machine(
        request,
        facts,
        now,
        phase=before.phase,
        decision=before.decision,
        granted_at=before.granted_at,
        expires_at=before.expires_at,
    )
    if not before.history:
        machine.entered.append(
            HistoryEntry(
                phase=AccessPhase.PENDING,
                at=request.creation_timestamp or stamp(now),
                by=request.spec.requested_by,
                note=request.spec.purpose,
            )
        )
    if not machine.phase.final:
        if machine.phase is AccessPhase.PENDING:
            _answer(machine)
        if machine.phase.granted:
            _follow(machine)
    history = [*before.history, *machine.entered][-MAX_HISTORY:]
    status = DataAccessRequestStatus(
        observed_generation=request.generation,
        conditions=[_ready(request, machine)],
        phase=machine.phase,
        decision=machine.decision,
        granted_at=machine.granted_at,
        expires_at=machine.expires_at,
        history=history,
    )
    # The first entry (Pending) is the request itself, not a step to announce.
    steps = tuple(
        e for e in machine.entered if before.history or e.phase is not AccessPhase.PENDING
    )
    return RequestResult(status, steps)


def _ready(request: DataAccessRequest, machine: _Machine) -> Condition:
    previous = {c.type: c for c in request.status.conditions}
    now = stamp(machine.now)
    phase = machine.phase
    if phase is AccessPhase.PENDING:
        aspect = Aspect(
            False, Reason.AWAITING_DECISION, f"waiting for the owners of {_where(request)}"
        )
    elif phase is AccessPhase.APPROVED:
        aspect = Aspect(False, Reason.GRANT_PENDING, "approved: the grant is being made")
    elif phase.granted:
        aspect = Aspect(True, Reason.ACCESS_GRANTED, f"access until {machine.expires_at}")
    else:
        note = machine.entered[-1].note if machine.entered else _last_note(request)
        aspect = Aspect(True, Reason.ACCESS_ENDED, f"{phase.value}: {note or ''}".rstrip(": "))
    return build_condition(READY, aspect, Stamp(request.generation, previous, now))


def _last_note(request: DataAccessRequest) -> str | None:
    history = request.status.history
    return history[-1].note if history else None


def next_change_seconds(
    status: DataAccessRequestStatus, now: datetime, notice_seconds: int
) -> float | None:
    """Seconds until time alone moves the request on (its expiry notice, its expiry)."""
    if not status.phase.granted:
        return None
    expires = parse_stamp(status.expires_at)
    if expires is None:
        return None
    moments = [expires]
    if status.phase is not AccessPhase.EXPIRING_SOON:
        moments.append(expires - timedelta(seconds=notice_seconds))
    ahead = [(m - now).total_seconds() for m in moments if m > now]
    return min(ahead) if ahead else 0.0


# -- the product's side ------------------------------------------------------------------------


def active_grants(
    product: DataProduct, requests: Iterable[DataAccessRequest], now: datetime
) -> list[DataAccessRequest]:
    """The requests for ``product`` whose subject is to read it now: approved (or active), for
    this very product (its uid unchanged since the approval is not checked: a product made
    again is a new product only to its name), not expired."""
    granted = []
    for request in requests:
        status = request.status
        expires = parse_stamp(status.expires_at)
        if (
            request.spec.product.namespace == product.namespace
            and request.spec.product.name == product.name
            and status.phase.granted
            and expires is not None
            and now < expires
            and request.deletion_timestamp is None
        ):
            granted.append(request)
    return sorted(granted, key=lambda r: (r.namespace, r.name))


def compute_product_access(
    product: DataProduct, requests: Sequence[DataAccessRequest], now: datetime
) -> ProductAccessStatus:
    """The product's ``status.access``: effective readers, pending requests, audit trail."""
    readers = [
        EffectiveReader(
            kind=reader.kind, name=reader.name, namespace=reader.namespace, source=AccessSource.SPEC
        )
        for reader in product.spec.access.readers
    ]
    for request in active_grants(product, requests, now):
        subject = request.spec.subject
        readers.append(
            EffectiveReader(
                kind=subject.kind,
                name=subject.name,
                namespace=subject.namespace,
                ports=list(request.spec.ports),
                source=AccessSource.REQUEST,
                request=request.key,
                purpose=request.spec.purpose,
                expires_at=request.status.expires_at,
            )
        )
    mine = [
        r
        for r in requests
        if (r.spec.product.namespace, r.spec.product.name) == (product.namespace, product.name)
    ]
    pending = [
        PendingRequest(
            request=r.key,
            uid=r.uid,
            kind=r.spec.subject.kind,
            name=r.spec.subject.name,
            namespace=r.spec.subject.namespace,
            ports=list(r.spec.ports),
            purpose=r.spec.purpose,
            requested_by=r.spec.requested_by,
            duration=r.spec.duration or product.spec.access.requests.max_duration,
            requested_at=r.creation_timestamp,
        )
        for r in sorted(mine, key=lambda r: (r.namespace, r.name))
        if r.status.phase is AccessPhase.PENDING and r.deletion_timestamp is None
    ]
    return ProductAccessStatus(readers=readers, pending=pending, history=_audit(product, mine, now))


def _audit(
    product: DataProduct, mine: Sequence[DataAccessRequest], now: datetime
) -> list[AccessRecord]:
    """The product's audit trail: what it recorded before, the steps its requests took since,
    and a Withdrawn step for each request it knew that is gone."""
    before = product.status.access
    records = list(before.history) if before is not None else []
    seen = {(r.request, r.phase, r.at) for r in records}
    live = {r.key for r in mine}
    for request in mine:
        for entry in request.status.history:
            key = (request.key, entry.phase, entry.at)
            if key not in seen:
                seen.add(key)
                records.append(
                    AccessRecord(
                        request=request.key,
                        subject=str(request.spec.subject),
                        phase=entry.phase,
                        at=entry.at,
                        by=entry.by,
                        note=entry.note,
                    )
                )
    ended = {r.request for r in records if r.phase.final}
    for gone, subject in _known_requests(records):
        if gone not in live and gone not in ended:
            records.append(
                AccessRecord(
                    request=gone,
                    subject=subject,
                    phase=AccessPhase.WITHDRAWN,
                    at=stamp(now),
                    by="requester",
                    note="the request was deleted",
                )
            )
    records.sort(key=lambda r: r.at)
    return records[-MAX_ACCESS_HISTORY:]


def _known_requests(records: Sequence[AccessRecord]) -> list[tuple[str, str]]:
    known: dict[str, str] = {}
    for record in records:
        known.setdefault(record.request, record.subject)
    return list(known.items())


# The Event each step is announced with, on the request and on the product.
STEP_REASONS = {
    AccessPhase.PENDING: Reason.ACCESS_REQUESTED,
    AccessPhase.APPROVED: Reason.ACCESS_APPROVED,
    AccessPhase.DENIED: Reason.ACCESS_DENIED,
    AccessPhase.ACTIVE: Reason.ACCESS_GRANTED,
    AccessPhase.EXPIRING_SOON: Reason.ACCESS_EXPIRING_SOON,
    AccessPhase.EXPIRED: Reason.ACCESS_EXPIRED,
    AccessPhase.REVOKED: Reason.ACCESS_REVOKED,
    AccessPhase.WITHDRAWN: Reason.ACCESS_WITHDRAWN,
}


def new_records(
    before: ProductAccessStatus | None, after: ProductAccessStatus
) -> list[AccessRecord]:
    """The audit records this pass added (each an Event on the product)."""
    known = {(r.request, r.phase, r.at) for r in (before.history if before else [])}
    return [r for r in after.history if (r.request, r.phase, r.at) not in known]


def next_expiry_seconds(access: ProductAccessStatus, now: datetime) -> float | None:
    """Seconds until the first request's grant of the product ends."""
    moments = [parse_stamp(r.expires_at) for r in access.readers if r.expires_at]
    ahead = [(m - now).total_seconds() for m in moments if m is not None]
    return max(0.0, min(ahead)) if ahead else None
