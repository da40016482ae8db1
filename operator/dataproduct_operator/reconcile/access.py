"""Access requests and decisions: watched, answered, followed in time (layer ``reconcile``).

:class:`AccessRegistry` watches every DataAccessRequest and DataAccessDecision into memory:
a product's pass reads the requests for it (its effective readers), a request's pass reads the
decisions answering it. Their changes are passed to the runtime through two callbacks.

:func:`reconcile_access_request` moves a request through its phases (see
:mod:`dataproduct_operator.status.access`): it reads the product asked for, the decision
answering the request and the consumer's domain, writes the status, announces each step as an
Event on the request, asks its product for a reconcile when what the product grants changes,
and looks again when time alone will move it (the expiry notice, the expiry): a restarted
operator finds the same times in the status. The grant itself is the product's: its pass grants
the subjects of the approved requests exactly as it grants ``spec.access.readers``.

:func:`reconcile_access_decision` tells the owners whether their decision answers a request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from dataproduct_operator.api.accessdecision import DataAccessDecision, DataAccessDecisionStatus
from dataproduct_operator.api.accessrequest import DataAccessRequest
from dataproduct_operator.api.conditions import ACCESS_READY, READY, Reason
from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.api.grants import AccessPhase
from dataproduct_operator.api.kinds import (
    DATA_ACCESS_DECISION,
    DATA_ACCESS_DECISION_KIND,
    DATA_ACCESS_REQUEST,
    DATA_ACCESS_REQUEST_KIND,
    DATA_PRODUCT,
    DATA_PRODUCT_KIND,
)
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.informer import OnChange, OnError, WatchedObjects
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.reconcile.mesh import MeshState
from dataproduct_operator.reconcile.outcome import (
    NORMAL,
    WARNING,
    FollowUp,
    Note,
    Outcome,
    Want,
    invalid_spec_outcome,
)
from dataproduct_operator.status.access import (
    DEFAULT_EXPIRY_NOTICE_SECONDS,
    STEP_REASONS,
    DecisionSeen,
    RequestFacts,
    compute_request,
    next_change_seconds,
    parse_stamp,
)
from dataproduct_operator.status.conditions import Aspect, Stamp, build_condition

logger = logging.getLogger(__name__)

PRODUCT_RESOURCE = KNOWN_RESOURCES[DATA_PRODUCT_KIND]
REQUEST_RESOURCE = KNOWN_RESOURCES[DATA_ACCESS_REQUEST_KIND]
DECISION_RESOURCE = KNOWN_RESOURCES[DATA_ACCESS_DECISION_KIND]
# A moment past a time the request waits for: its own stamps have whole seconds.
TIME_MARGIN_SECONDS = 0.5
# An approved request looks this often whether its product has granted it (then it is Active).
APPROVED_RECHECK_SECONDS = 2.0
WARNING_PHASES = frozenset({AccessPhase.DENIED, AccessPhase.EXPIRING_SOON})


def request_path(namespace: str, name: str) -> str:
    return REQUEST_RESOURCE.path(namespace, name)


def decision_path(namespace: str, name: str) -> str:
    return DECISION_RESOURCE.path(namespace, name)


class AccessRegistry:
    """See the module docstring."""

    def __init__(
        self,
        client: KubeClient,
        *,
        on_request: OnChange | None = None,
        on_decision: OnChange | None = None,
        on_error: OnError | None = None,
    ) -> None:
        self.requests = WatchedObjects(
            client, DATA_ACCESS_REQUEST_KIND, on_request, on_error=on_error
        )
        self.decisions = WatchedObjects(
            client, DATA_ACCESS_DECISION_KIND, on_decision, on_error=on_error
        )

    def start(self) -> None:
        self.requests.start()
        self.decisions.start()

    async def stop(self) -> None:
        await self.requests.stop()
        await self.decisions.stop()

    async def wait_synced(self) -> None:
        await self.requests.wait_synced()
        await self.decisions.wait_synced()

    def requests_for(self, namespace: str, name: str) -> list[DataAccessRequest]:
        """The requests for the product ``namespace/name`` (those the models refuse left out:
        their own pass reports them)."""
        found = []
        for body in self.requests.items():
            product = (body.get("spec") or {}).get("product") or {}
            if (product.get("namespace"), product.get("name")) != (namespace, name):
                continue
            try:
                found.append(DataAccessRequest.from_object(body))
            except ValidationError:
                continue
        return found

    def decisions_for(self, request: DataAccessRequest) -> list[DataAccessDecision]:
        """The decisions in the product's namespace answering ``request`` (by its uid), oldest
        first: the first one answers it."""
        namespace = request.spec.product.namespace
        found = []
        for body in self.decisions.items():
            metadata, spec = body["metadata"], body.get("spec") or {}
            answered = spec.get("request") or {}
            if metadata.get("namespace") != namespace or answered.get("uid") != request.uid:
                continue
            if (answered.get("namespace"), answered.get("name")) != (
                request.namespace,
                request.name,
            ):
                continue
            try:
                found.append(DataAccessDecision.from_object(body))
            except ValidationError:
                continue
        return sorted(found, key=lambda d: (d.creation_timestamp or "", d.name))

    def phases(self) -> list[AccessPhase]:
        """The phase of every request (for the metrics)."""
        phases = []
        for body in self.requests.items():
            value = (body.get("status") or {}).get("phase") or AccessPhase.PENDING.value
            try:
                phases.append(AccessPhase(value))
            except ValueError:
                continue
        return phases


@dataclass(frozen=True)
class AccessContext:
    client: KubeClient
    mesh: MeshState
    registry: AccessRegistry
    expiry_notice_seconds: int = DEFAULT_EXPIRY_NOTICE_SECONDS


def _granted_by(product_body: dict[str, Any] | None, request: DataAccessRequest) -> bool:
    """Whether the product's last status lists the request among its readers, with its access
    in place (AccessReady True)."""
    if product_body is None:
        return False
    status = product_body.get("status") or {}
    readers = (status.get("access") or {}).get("readers") or []
    listed = any(reader.get("request") == request.key for reader in readers)
    ready = any(
        c.get("type") == ACCESS_READY and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return listed and ready


def _decision_seen(decision: DataAccessDecision | None) -> DecisionSeen | None:
    if decision is None:
        return None
    spec = decision.spec
    return DecisionSeen(
        decision.namespace, decision.name, spec.decision, spec.decided_by, spec.note, spec.duration
    )


def _step_note(request: DataAccessRequest, phase: AccessPhase, by: str | None,
               note: str | None) -> Note:  # fmt: skip
    product = request.spec.product
    subject = str(request.spec.subject)
    message = f"{phase.value}: {subject} on DataProduct {product.namespace}/{product.name}"
    if by:
        message += f", by {by}"
    if note:
        message += f": {note}"
    kind = WARNING if phase in WARNING_PHASES else NORMAL
    return Note(kind, STEP_REASONS[phase], message, with_status=True)


async def reconcile_access_request(
    ctx: AccessContext, body: dict[str, Any], *, want: Want, now: str
) -> Outcome:
    """One pass over a request; see the module docstring."""
    del want  # every pass is the same: read, decide, write the status
    try:
        request = DataAccessRequest.from_object(body)
    except ValidationError as error:
        return invalid_spec_outcome(body, error, now=now)
    await ctx.registry.wait_synced()
    await ctx.mesh.wait_synced()
    wanted = request.spec.product
    product_body = await ctx.client.get(PRODUCT_RESOURCE.path(wanted.namespace, wanted.name))
    try:
        product = DataProduct.from_object(product_body) if product_body else None
    except ValidationError:
        product = None  # the product's own pass reports it; no grant while it cannot be read
    decisions = ctx.registry.decisions_for(request)
    moment = parse_stamp(now) or datetime.fromisoformat(now)
    facts = RequestFacts(
        product=product,
        decision=_decision_seen(decisions[0] if decisions else None),
        consumer_domain=ctx.mesh.domain_of(request.namespace),
        granted=_granted_by(product_body, request),
        expiry_notice_seconds=ctx.expiry_notice_seconds,
    )
    result = compute_request(request, facts, moment)
    notes = tuple(_step_note(request, e.phase, e.by, e.note) for e in result.entered)
    follow_ups: list[FollowUp] = []
    if result.entered:
        # The product grants or ends the grant, lists the step in its audit trail and tells
        # the owners; the decisions say whether they answer it.
        follow_ups.append(FollowUp(DATA_PRODUCT, wanted.namespace, wanted.name, Want.RECONCILE))
        follow_ups += [
            FollowUp(DATA_ACCESS_DECISION, d.namespace, d.name, Want.REFRESH) for d in decisions
        ]
    later = next_change_seconds(result.status, moment, ctx.expiry_notice_seconds)
    look_again, after = Want.NOTHING, None
    if later is not None:
        look_again, after = Want.RECONCILE, later + TIME_MARGIN_SECONDS
    if result.status.phase is AccessPhase.APPROVED:
        # Waiting for the product to grant: its status write does not come here by itself.
        look_again, after = Want.RECONCILE, min(after or APPROVED_RECHECK_SECONDS,
                                                APPROVED_RECHECK_SECONDS)  # fmt: skip
    return Outcome(
        subject=body,
        status=result.status,
        notes=notes,
        look_again=look_again,
        look_again_after=after,
        follow_ups=tuple(follow_ups),
    )


async def reconcile_access_decision(
    ctx: AccessContext, body: dict[str, Any], *, want: Want, now: str
) -> Outcome:
    """Whether the decision answers its request: Ready True, or False with the reason."""
    del want
    try:
        decision = DataAccessDecision.from_object(body)
    except ValidationError as error:
        return invalid_spec_outcome(body, error, now=now)
    await ctx.registry.wait_synced()
    answered = decision.spec.request
    request_body = ctx.registry.requests.get(f"{answered.namespace}/{answered.name}")
    aspect = _decision_aspect(decision, request_body)
    previous = {c.type: c for c in decision.status.conditions}
    condition = build_condition(READY, aspect, Stamp(decision.generation, previous, now))
    status = DataAccessDecisionStatus(
        observed_generation=decision.generation, conditions=[condition]
    )
    before = previous.get(READY)
    notes: tuple[Note, ...] = ()
    if not aspect.ok and (before is None or before.reason != aspect.reason):
        notes = (Note(WARNING, aspect.reason, aspect.message, with_status=True),)
    follow_ups = (FollowUp(DATA_ACCESS_REQUEST, answered.namespace, answered.name, Want.RECONCILE),)
    return Outcome(subject=body, status=status, notes=notes, follow_ups=follow_ups)


def _decision_aspect(decision: DataAccessDecision, request_body: dict[str, Any] | None) -> Aspect:
    answered = decision.spec.request
    where = f"DataAccessRequest {answered.namespace}/{answered.name}"
    if request_body is None or request_body["metadata"].get("uid") != answered.uid:
        return Aspect(
            False,
            Reason.REQUEST_NOT_FOUND,
            f"no {where} with uid {answered.uid}: it was deleted or made again; answer the "
            "request as it is now (dpo access approve fills the uid in)",
        )
    spec = request_body.get("spec") or {}
    product = spec.get("product") or {}
    if product.get("namespace") != decision.namespace:
        return Aspect(
            False,
            Reason.NOT_THE_PRODUCTS_NAMESPACE,
            f"{where} asks for DataProduct {product.get('namespace')}/{product.get('name')}: "
            f"only a decision in namespace {product.get('namespace')} answers it",
        )
    recorded = ((request_body.get("status") or {}).get("decision") or {}).get("decision")
    key = f"{decision.namespace}/{decision.name}"
    if recorded and recorded != key:
        return Aspect(
            False, Reason.ALREADY_DECIDED, f"{where} was answered by decision {recorded} first"
        )
    phase = (request_body.get("status") or {}).get("phase") or AccessPhase.PENDING.value
    if not recorded:
        return Aspect(None, Reason.AWAITING_DECISION, f"{where} has not taken it yet ({phase})")
    return Aspect(True, Reason.DECISION_APPLIED, f"{where} is {phase}")
