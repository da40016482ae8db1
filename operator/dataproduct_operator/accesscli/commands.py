"""What ``dpo access`` asks of the API server, as the caller (layer ``cli``).

Every request goes through the ``k8s`` package's blocking client, with the caller's own
credentials and, for ``--as`` and ``--as-group``, kubectl's impersonation headers. Who the
caller is comes from the API server (a SelfSubjectReview), so ``requestedBy`` and
``decidedBy`` are what the admission policies compare them with. Each command returns a typed
result for the CLI to print; with ``-o yaml`` a writing command sends nothing but the reads it
needs (who am I, the request's uid). The API server's refusals become a :class:`UserError`
that says who may do it instead.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from dataproduct_operator.accesscli.documents import (
    SUFFIX_LENGTH,
    DecisionInput,
    ObjectRef,
    RequestInput,
    approvals_answering,
    build_decision,
    build_request,
    find_pending,
    object_name,
    parse_ref,
    request_namespace,
)
from dataproduct_operator.api.accessdecision import PLURAL as DECISIONS
from dataproduct_operator.api.accessdecision import DataAccessDecision
from dataproduct_operator.api.accessrequest import PLURAL as REQUESTS
from dataproduct_operator.api.accessrequest import DataAccessRequest, DecisionSource
from dataproduct_operator.api.dataproduct import PLURAL as PRODUCTS
from dataproduct_operator.api.dataproduct import DataProduct, PendingRequest, ReaderKind
from dataproduct_operator.api.kinds import (
    API_VERSION,
    DATA_ACCESS_DECISION,
    DATA_ACCESS_REQUEST,
    DATA_PRODUCT,
    GROUP,
)
from dataproduct_operator.errors import UserError
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.client import Headers
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.k8s.identity import SELF_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_REVIEWS
from dataproduct_operator.k8s.resources import resource_of
from dataproduct_operator.k8s.rest import ApiError

T = TypeVar("T")
FORBIDDEN = 403
NOT_FOUND = 404
CONFLICT = 409
SUFFIX_ALPHABET = string.ascii_lowercase + string.digits

_REQUESTS = resource_of(API_VERSION, DATA_ACCESS_REQUEST)
_DECISIONS = resource_of(API_VERSION, DATA_ACCESS_DECISION)
_PRODUCTS = resource_of(API_VERSION, DATA_PRODUCT)

# Who may do what, for a refusal's message: the domain editor role (manifests/rbac.py).
_WHO_MAY = {
    ("create", DECISIONS): "only the owning domain's team may answer requests for its products",
    ("delete", DECISIONS): "only the owning domain's team may revoke what it approved",
    ("create", REQUESTS): "only the team of the domain holding that namespace may ask from it: "
    "make the request in your team's namespace",
    ("delete", REQUESTS): "only the team of the domain holding that namespace may withdraw its "
    "requests",
}


@dataclass(frozen=True)
class Caller:
    """Who the commands act as: a kubeconfig's identity, or whom it impersonates."""

    kubeconfig: Path | None = None
    context: str | None = None
    user: str | None = None  # --as
    groups: tuple[str, ...] = ()  # --as-group

    def headers(self) -> Headers:
        if self.groups and not self.user:
            raise UserError("--as-group needs --as: name the user to act as")
        if self.user is None:
            return ()
        return (
            ("Impersonate-User", self.user),
            *(("Impersonate-Group", group) for group in self.groups),
        )


@dataclass(frozen=True)
class Written:
    """A document a command wrote, or (``-o yaml``) would write."""

    document: dict[str, Any]
    sent: bool


@dataclass(frozen=True)
class Deleted:
    """The objects a command deleted, or (``-o yaml``) would delete, as they were."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    sent: bool = True


class AccessApi:
    """The API calls of ``dpo access``, as one caller; use it as a context manager."""

    def __init__(self, caller: Caller) -> None:
        headers = caller.headers()
        self._credentials = Credentials.from_environment(caller.kubeconfig, context=caller.context)
        self._client = BlockingClient(self._credentials, headers=headers)
        self._username: str | None = None

    def __enter__(self) -> AccessApi:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    @property
    def context_namespace(self) -> str | None:
        """The kubeconfig context's namespace, if it names one."""
        return self._credentials.namespace

    def _call(self, call: Callable[[], T], *, verb: str, resource: str, where: str) -> T:
        """``call``, its refusal told as what to do instead."""
        try:
            return call()
        except ApiError as error:
            raise _explained(error, verb, resource, where) from None
        except (OSError, ValueError) as error:
            raise UserError(
                f"Cannot reach the API server at {self._credentials.server}: {error}"
            ) from None

    def whoami(self) -> str:
        """The caller's user name, as the API server authenticates (or impersonates) it."""
        if self._username is None:
            review = self._call(
                lambda: self._client.create(
                    SELF_SUBJECT_REVIEWS,
                    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
                ),
                verb="create",
                resource="selfsubjectreviews",
                where="the cluster",
            )
            username = ((review.get("status") or {}).get("userInfo") or {}).get("username")
            if not username:
                raise UserError("The API server did not say who you are (SelfSubjectReview)")
            self._username = str(username)
        return self._username

    def may(self, verb: str, resource: str, namespace: str) -> bool:
        """Whether the caller may ``verb`` ``resource`` of datamesh.dev in ``namespace``."""
        attributes = {"namespace": namespace, "group": GROUP, "resource": resource, "verb": verb}
        review = self._call(
            lambda: self._client.create(
                SELF_SUBJECT_ACCESS_REVIEWS,
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": attributes},
                },
            ),
            verb="create",
            resource="selfsubjectaccessreviews",
            where="the cluster",
        )
        return bool((review.get("status") or {}).get("allowed"))

    def read(self, path: str, *, resource: str, where: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            found: dict[str, Any] = self._client.get(path)
        except ApiError as error:
            if error.status == NOT_FOUND:
                return None
            raise _explained(error, "get", resource, where) from None
        except (OSError, ValueError) as error:
            raise UserError(
                f"Cannot reach the API server at {self._credentials.server}: {error}"
            ) from None
        return found

    def list(self, path: str, *, resource: str, where: str) -> list[dict[str, Any]]:
        """Every item of a collection (following continue tokens)."""
        items: list[dict[str, Any]] = []
        query: dict[str, str] = {"limit": "500"}
        while True:
            page = self._call(
                partial(self._client.get, path, query=dict(query)),
                verb="list",
                resource=resource,
                where=where,
            )
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            query["continue"] = token

    def create(self, document: dict[str, Any], resource: str) -> None:
        metadata = document["metadata"]
        path = resource_of(document["apiVersion"], document["kind"]).path(metadata["namespace"])
        self._call(
            lambda: self._client.create(path, document),
            verb="create",
            resource=resource,
            where=f"namespace {metadata['namespace']}",
        )

    def delete(self, path: str, uid: str, *, resource: str, where: str) -> bool:
        """Delete that very object (its uid a precondition); False when it was gone."""
        body = {"propagationPolicy": "Background", "preconditions": {"uid": uid}}
        try:
            self._client.delete(path, body)
        except ApiError as error:
            if error.status in (NOT_FOUND, CONFLICT):
                return False
            raise _explained(error, "delete", resource, where) from None
        return True


def _explained(error: ApiError, verb: str, resource: str, where: str) -> UserError:
    """The API server's refusal, and what to do about it."""
    said = error.message or error.reason or str(error.status)
    if error.status == FORBIDDEN and "impersonate" in said:
        return UserError(f"You may not act as another user (--as, --as-group): {said}")
    if error.status == FORBIDDEN:
        who = _WHO_MAY.get((verb, resource))
        return UserError(
            f"You may not {verb} {resource} in {where}"
            + (f": {who}" if who else "")
            + f" (the API server said: {said})"
        )
    if error.status == CONFLICT and verb == "create":
        return UserError(f"{said}: choose another --name")
    return UserError(f"The API server refused to {verb} {resource} in {where}: {said}")


def _parsed(model: Callable[[dict[str, Any]], T], obj: dict[str, Any], what: str) -> T:
    try:
        return model(obj)
    except ValidationError as error:
        raise UserError(f"{what} is not valid: {error}") from None


def _namespaced(namespace: str | None) -> str:
    return "every namespace" if namespace is None else f"namespace {namespace}"


# ``dpo access request``


def request_access(
    api: AccessApi,
    request: RequestInput,
    *,
    namespace: str | None,
    name: str | None,
    suffix: str,
    send: bool,
) -> Written:
    """Create the DataAccessRequest (or only build it: ``send`` false)."""
    if request.subject.kind is ReaderKind.SERVICE_ACCOUNT:
        where = request_namespace(request.subject, namespace)
    else:
        where = request_namespace(request.subject, namespace or api.context_namespace)
    document = build_request(
        request,
        namespace=where,
        name=name or object_name((request.product.name, request.subject.name), suffix),
        requested_by=api.whoami(),
    )
    if send:
        api.create(document, REQUESTS)
    return Written(document, send)


# ``dpo access approve`` and ``deny``


@dataclass(frozen=True)
class LocatedRequest:
    """What a decision needs of a request: its uid and its product's namespace."""

    uid: str
    product_namespace: str


def locate_request(api: AccessApi, ref: ObjectRef, product: ObjectRef | None) -> LocatedRequest:
    """The request as its namespace holds it; for an owner who may not read there, as the
    product's ``status.access.pending`` mirrors it."""
    try:
        found = api.read(
            _REQUESTS.path(ref.namespace, ref.name),
            resource=REQUESTS,
            where=f"namespace {ref.namespace}",
        )
    except UserError:
        found = None
        readable = False
    else:
        readable = True
    if found is not None:
        request = _parsed(DataAccessRequest.from_object, found, f"{DATA_ACCESS_REQUEST} {ref}")
        return LocatedRequest(request.uid, request.spec.product.namespace)
    if readable and product is None:
        raise UserError(
            f"{DATA_ACCESS_REQUEST} {ref} not found: check the name with "
            f"`dpo access list -n {ref.namespace}`"
        )
    try:
        candidates = _products(api, product)
    except UserError:
        if product is not None:
            raise
        candidates = []  # the caller may list no products: the message below says what to do
    pending = find_pending(candidates, ref)
    if pending is None:
        raise UserError(
            f"{DATA_ACCESS_REQUEST} {ref} is "
            + ("not found, " if readable else "not readable to you, ")
            + "and no DataProduct you can read lists it as pending: give --product "
            "NAMESPACE/PRODUCT, the product it asks for (its owners see a request in the "
            "product's status.access.pending once the operator has seen it)"
        )
    owner, entry = pending
    return LocatedRequest(entry.uid, owner.namespace)


def _products(api: AccessApi, product: ObjectRef | None) -> list[DataProduct]:
    """The product named, or every one the caller may list."""
    if product is not None:
        return [read_product(api, product)]
    return _listed_products(api, None)


def _listed_products(api: AccessApi, namespace: str | None) -> list[DataProduct]:
    """The products of ``namespace`` (None: of every namespace, or, for a caller who may not
    list them all, of the kubeconfig's namespace)."""
    try:
        items = api.list(_PRODUCTS.path(namespace), resource=PRODUCTS, where=_namespaced(namespace))
    except UserError:
        fallback = api.context_namespace
        if namespace is not None or fallback is None:
            raise
        items = api.list(_PRODUCTS.path(fallback), resource=PRODUCTS, where=_namespaced(fallback))
    return [_parsed(DataProduct.from_object, item, DATA_PRODUCT) for item in items]


def decide(
    api: AccessApi,
    decision: DecisionInput,
    *,
    product: ObjectRef | None,
    name: str | None,
    suffix: str,
    send: bool,
) -> Written:
    """Create the DataAccessDecision answering the request, in its product's namespace."""
    located = locate_request(api, decision.request, product)
    verdict = decision.verdict.value.lower()
    document = build_decision(
        decision,
        uid=located.uid,
        namespace=located.product_namespace,
        name=name or object_name((decision.request.name, verdict), suffix),
        decided_by=api.whoami(),
    )
    if send:
        api.create(document, DECISIONS)
    return Written(document, send)


# ``dpo access revoke`` and ``withdraw``


def _as_applied(obj: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """An object as one would have applied it: what a GitOps repository holds."""
    metadata = obj.get("metadata") or {}
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": metadata.get("name"), "namespace": metadata.get("namespace")},
        "spec": obj.get("spec") or {},
    }


def revoke(api: AccessApi, ref: ObjectRef, *, namespace: str | None, send: bool) -> Deleted:
    """Delete the Approve decisions answering the request ``ref``: the access ends."""
    found = None
    # An owner may not read the consumer's namespace: the decisions of its own then tell.
    with suppress(UserError):
        found = api.read(
            _REQUESTS.path(ref.namespace, ref.name),
            resource=REQUESTS,
            where=f"namespace {ref.namespace}",
        )
    uid: str | None = None
    named: set[str] = set()
    if found is not None:
        request = _parsed(DataAccessRequest.from_object, found, f"{DATA_ACCESS_REQUEST} {ref}")
        uid, producer = request.uid, request.spec.product.namespace
        recorded = request.status.decision
        if recorded and recorded.source is DecisionSource.DECISION and recorded.decision:
            named.add(recorded.decision)
    else:
        producer = namespace or api.context_namespace or ""
        if not producer:
            raise UserError(
                f"Cannot read {DATA_ACCESS_REQUEST} {ref}: give -n/--namespace, the product's "
                "namespace, where its decision lives"
            )
    items = api.list(_DECISIONS.path(producer), resource=DECISIONS, where=f"namespace {producer}")
    decisions = [
        _parsed(DataAccessDecision.from_object, item, DATA_ACCESS_DECISION) for item in items
    ]
    answering = {f"{d.namespace}/{d.name}": d for d in approvals_answering(decisions, ref, uid)}
    for key in sorted(named - answering.keys()):
        decision_ref = parse_ref(key, "a DataAccessDecision")
        other = api.read(
            _DECISIONS.path(decision_ref.namespace, decision_ref.name),
            resource=DECISIONS,
            where=f"namespace {decision_ref.namespace}",
        )
        if other is not None:
            answering[key] = _parsed(DataAccessDecision.from_object, other, DATA_ACCESS_DECISION)
    if not answering:
        raise UserError(
            f"No Approve {DATA_ACCESS_DECISION} in namespace {producer} answers "
            f"{DATA_ACCESS_REQUEST} {ref}: nothing to revoke (`dpo access list -n "
            f"{ref.namespace}` shows its phase)"
        )
    deleted = Deleted(sent=send)
    for decision in (answering[key] for key in sorted(answering)):
        if send and not api.delete(
            _DECISIONS.path(decision.namespace, decision.name),
            decision.uid,
            resource=DECISIONS,
            where=f"namespace {decision.namespace}",
        ):
            continue  # deleted meanwhile, by someone else
        deleted.documents.append(_decision_document(decision))
    return deleted


def _decision_document(decision: DataAccessDecision) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": DATA_ACCESS_DECISION,
        "metadata": {"name": decision.name, "namespace": decision.namespace},
        "spec": decision.spec.to_wire(),
    }


def withdraw(api: AccessApi, ref: ObjectRef, *, send: bool) -> Deleted:
    """Delete the request ``ref``: the requester's way to end it."""
    found = api.read(
        _REQUESTS.path(ref.namespace, ref.name),
        resource=REQUESTS,
        where=f"namespace {ref.namespace}",
    )
    if found is None:
        raise UserError(
            f"{DATA_ACCESS_REQUEST} {ref} not found: nothing to withdraw (`dpo access list -n "
            f"{ref.namespace}` shows the requests there)"
        )
    uid = str((found.get("metadata") or {}).get("uid", ""))
    if send and not api.delete(
        _REQUESTS.path(ref.namespace, ref.name),
        uid,
        resource=REQUESTS,
        where=f"namespace {ref.namespace}",
    ):
        raise UserError(f"{DATA_ACCESS_REQUEST} {ref} was deleted meanwhile")
    return Deleted([_as_applied(found, API_VERSION, DATA_ACCESS_REQUEST)], send)


# ``dpo access list`` and ``history``


def list_requests(api: AccessApi, namespace: str | None, *, mine: bool) -> list[DataAccessRequest]:
    """The requests of ``namespace`` (None: every namespace); ``mine``: the caller's own."""
    items = api.list(_REQUESTS.path(namespace), resource=REQUESTS, where=_namespaced(namespace))
    requests = [_parsed(DataAccessRequest.from_object, item, DATA_ACCESS_REQUEST) for item in items]
    if mine:
        me = api.whoami()
        requests = [r for r in requests if r.spec.requested_by == me]
    return sorted(requests, key=lambda r: (r.namespace, r.name))


def pending_decisions(
    api: AccessApi, namespace: str | None
) -> list[tuple[DataProduct, PendingRequest]]:
    """The pending requests of the products whose namespaces the caller may decide in."""
    products = _listed_products(api, namespace)
    deciding = {
        space: api.may("create", DECISIONS, space) for space in {p.namespace for p in products}
    }
    return [
        (product, entry)
        for product in sorted(products, key=lambda p: (p.namespace, p.name))
        if deciding[product.namespace] and product.status.access
        for entry in product.status.access.pending
    ]


def read_product(api: AccessApi, product: ObjectRef) -> DataProduct:
    """The product: its pending requests, its readers and the audit trail of its requests."""
    found = api.read(
        _PRODUCTS.path(product.namespace, product.name),
        resource=PRODUCTS,
        where=f"namespace {product.namespace}",
    )
    if found is None:
        raise UserError(f"{DATA_PRODUCT} {product} not found")
    return _parsed(DataProduct.from_object, found, f"{DATA_PRODUCT} {product}")


@contextmanager
def session(caller: Caller) -> Iterator[AccessApi]:
    """An :class:`AccessApi` for one command."""
    with AccessApi(caller) as api:
        yield api


def random_suffix() -> str:
    """Five random lowercase letters and digits: a generated name's unique part."""
    return "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(SUFFIX_LENGTH))
