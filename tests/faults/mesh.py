"""Products for the fault scenarios, made in bulk, and the checks that nothing was lost.

The checks read the cluster as it is (as cluster admin) and compare each product's children
with what ``dpo render`` builds for its current spec: a child more is a duplicate (or a stale
one never pruned), a child less is missing. Beside that: no object carrying our labels whose
product is gone (an orphan; a claim kept under ``Retain`` must have been released instead: no
``managed-by`` label, labelled ``datamesh.dev/retained=true``), and no object left with a
``deletionTimestamp``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dataproduct_operator.constants import (
    ANNOTATION_DESIRED_HASH,
    LABEL_MANAGED_BY,
    LABEL_PRODUCT,
    LABEL_RETAINED,
    OPERATOR_NAME,
)
from dataproduct_operator.errors import UserError
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.client import KubeClient, gather_limited
from dataproduct_operator.k8s.credentials import Credentials
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.dataproduct import CHILD_KINDS
from dataproduct_operator.specs.stream import render_documents
from tests.clusters import DOMAINS
from tests.helpers import wait_for
from tests.products import PRODUCTS, condition

CONCURRENCY = 16  # requests at once when creating or deleting in bulk (the operator's pool)
ALL_PRODUCTS = "/apis/datamesh.dev/v1alpha1/dataproducts"
NEVER = "0 3 1 1 *"  # a schedule that does not come up during a run: no Jobs as noise


def fault_product(
    namespace: str,
    name: str,
    *,
    ports: Iterable[str] = ("data",),
    deletion_policy: str = "Retain",
    pipeline: bool = True,
    reader: bool = True,
    storage_class: str | None = None,
    description: str = "Rows for the fault suite.",
) -> dict[str, Any]:
    """A product of the scenarios: a claim per port, a scheduled pipeline, one reader."""
    storage = {"size": "1Mi", **({"storageClassName": storage_class} if storage_class else {})}
    spec: dict[str, Any] = {
        "domain": namespace,
        "owner": {"team": f"{namespace}-data"},
        "description": description,
        "version": "1.0.0",
        "outputPorts": [
            {
                "name": port,
                "storage": storage,
                "schema": [{"name": "id", "type": "string", "required": True}],
            }
            for port in ports
        ],
        "deletionPolicy": deletion_policy,
    }
    if reader:
        spec["access"] = {"readers": [{"kind": "Group", "name": "analysts"}]}
    if pipeline:
        spec["pipelines"] = [{"name": "ingest", "image": "ghcr.io/acme/i:1", "schedule": NEVER}]
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


# --- in bulk -------------------------------------------------------------------------------------


async def _create_all(credentials: Credentials, documents: list[dict[str, Any]]) -> None:
    client = KubeClient(credentials, max_connections=CONCURRENCY)
    try:

        async def create(document: dict[str, Any]) -> None:
            path = PRODUCTS.format(namespace=document["metadata"]["namespace"])
            await client.request("POST", path, document)

        await gather_limited(CONCURRENCY, *(create(document) for document in documents))
    finally:
        await client.close()


def create_products(kube: BlockingClient, documents: list[dict[str, Any]]) -> None:
    """Create the products, CONCURRENCY at a time, as their owners would."""
    asyncio.run(_create_all(kube.credentials, documents))


async def _delete_all(credentials: Credentials, paths: list[str]) -> None:
    client = KubeClient(credentials, max_connections=CONCURRENCY)
    try:
        await gather_limited(CONCURRENCY, *(client.delete(path) for path in paths))
    finally:
        await client.close()


def delete_products(kube: BlockingClient, names: Iterable[tuple[str, str]]) -> None:
    """Delete the products (namespace, name), CONCURRENCY at a time."""
    paths = [f"{PRODUCTS.format(namespace=ns)}/{name}" for ns, name in names]
    asyncio.run(_delete_all(kube.credentials, paths))


# --- what only a drift pass repairs ------------------------------------------------------------


def connection_config_map(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps/{name}-connection"


def tamper(kube: BlockingClient, namespace: str, names: list[str]) -> None:
    """Change our hash on each product's connection ConfigMap: only a drift pass repairs that
    (the watch event of a changed child refreshes the status, it does not apply)."""
    for name in names:
        kube.merge_patch(
            connection_config_map(namespace, name),
            {"metadata": {"annotations": {ANNOTATION_DESIRED_HASH: "tampered"}}},
        )


def tampered(kube: BlockingClient, namespace: str, names: list[str]) -> list[str]:
    return [
        name
        for name in names
        if kube.get(connection_config_map(namespace, name))["metadata"]["annotations"].get(
            ANNOTATION_DESIRED_HASH
        )
        == "tampered"
    ]


def wait_drift_repairs(
    kube: BlockingClient, namespace: str, names: list[str], *, timeout: float
) -> None:
    """Tamper with the products and wait until a drift pass has repaired every one: the
    drift loop is alive."""
    tamper(kube, namespace, names)
    wait_for(
        lambda: not tampered(kube, namespace, names),
        timeout=timeout,
        description=f"a drift pass to repair the tampered hashes of {names}",
    )


# --- what is there -------------------------------------------------------------------------------


def is_ready(product: dict[str, Any]) -> bool:
    """Ready for the product's current generation."""
    found = condition(product, "Ready")
    observed = (product.get("status") or {}).get("observedGeneration")
    return bool(
        found and found["status"] == "True" and observed == product["metadata"]["generation"]
    )


def list_products(kube: BlockingClient, namespaces: Iterable[str]) -> dict[tuple[str, str], Any]:
    """Every product of the namespaces, by (namespace, name)."""
    wanted = set(namespaces)
    found = {}
    for product in _list_all(kube, ALL_PRODUCTS):
        metadata = product["metadata"]
        if metadata["namespace"] in wanted:
            found[(metadata["namespace"], metadata["name"])] = product
    return found


def _list_all(kube: BlockingClient, path: str, selector: str | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    query = {"limit": "500", **({"labelSelector": selector} if selector else {})}
    while True:
        page = kube.get(path, query=query)
        items += page["items"]
        token = page["metadata"].get("continue")
        if not token:
            return items
        query["continue"] = token


def rendered_children(product: dict[str, Any]) -> dict[str, set[str]]:
    """Names of the children ``dpo render`` builds for the product as it is, by kind (no
    PrometheusRule: the local cluster does not serve the kind); none for a body the model
    refuses, which ``dpo render`` refuses too."""
    kinds = {kind for _, kind in CHILD_KINDS}
    namespace = product["metadata"]["namespace"]
    children: dict[str, set[str]] = {}
    try:
        rendered = render_documents([product], default_namespace=namespace)
    except UserError:
        return children
    for child in rendered:
        if child["kind"] in kinds:
            children.setdefault(child["kind"], set()).add(child["metadata"]["name"])
    return children


@dataclass
class MeshState:
    """The products of some namespaces and every object carrying the product label there."""

    products: dict[tuple[str, str], dict[str, Any]]
    labelled: list[dict[str, Any]]  # objects of the child kinds with the product label
    domains: list[dict[str, Any]] = field(default_factory=list)

    def children(self) -> dict[tuple[str, str], dict[str, set[str]]]:
        """Our objects (managed-by the operator), by product and kind."""
        found: dict[tuple[str, str], dict[str, set[str]]] = {}
        for obj in self.labelled:
            metadata = obj["metadata"]
            labels = metadata.get("labels") or {}
            if labels.get(LABEL_MANAGED_BY) == OPERATOR_NAME:
                key = (metadata["namespace"], labels[LABEL_PRODUCT])
                found.setdefault(key, {}).setdefault(obj["kind"], set()).add(metadata["name"])
        return found

    def released_claims(self) -> list[dict[str, Any]]:
        return [
            obj
            for obj in self.labelled
            if obj["kind"] == "PersistentVolumeClaim"
            and (obj["metadata"].get("labels") or {}).get(LABEL_RETAINED) == "true"
            and LABEL_MANAGED_BY not in (obj["metadata"].get("labels") or {})
        ]

    def not_ready(self) -> list[str]:
        products = sorted(self.products.items())
        return [f"{ns}/{name}" for (ns, name), product in products if not is_ready(product)]

    def problems(self) -> list[str]:
        """Everything that is not as it must be once converged, one line each."""
        lines: list[str] = []
        children = self.children()
        for key, product in sorted(self.products.items()):
            actual = children.get(key, {})
            wanted = rendered_children(product)
            for kind in sorted(set(actual) | set(wanted)):
                extra = actual.get(kind, set()) - wanted.get(kind, set())
                missing = wanted.get(kind, set()) - actual.get(kind, set())
                if extra:
                    lines.append(f"{key[0]}/{key[1]}: {kind} not in dpo render: {sorted(extra)}")
                if missing:
                    lines.append(f"{key[0]}/{key[1]}: {kind} missing: {sorted(missing)}")
        for (namespace, name), kinds in sorted(children.items()):
            if (namespace, name) not in self.products:
                objects = sorted(f"{kind} {n}" for kind, names in kinds.items() for n in names)
                lines.append(f"{namespace}/{name} is gone but not its children: {objects}")
        for obj in self.labelled:
            labels = obj["metadata"].get("labels") or {}
            claim = obj["kind"] == "PersistentVolumeClaim"
            released = labels.get(LABEL_RETAINED) == "true"
            if claim and LABEL_MANAGED_BY not in labels and not released:
                lines.append(f"claim {obj['metadata']['name']} neither ours nor released")
        for obj in [*self.labelled, *self.products.values(), *self.domains]:
            metadata = obj["metadata"]
            if metadata.get("deletionTimestamp"):
                where = f"{metadata.get('namespace')}/" if metadata.get("namespace") else ""
                finalizers = metadata.get("finalizers")
                lines.append(f"{obj['kind']} {where}{metadata['name']} Terminating {finalizers}")
        return lines


def observe_mesh(
    kube: BlockingClient, namespaces: Iterable[str], domains: Iterable[str] = ()
) -> MeshState:
    """The products of the namespaces and every object of theirs, read now."""
    wanted = set(namespaces)
    labelled: list[dict[str, Any]] = []
    for api_version, kind in CHILD_KINDS:
        path = KNOWN_RESOURCES[(api_version, kind)].path()
        for obj in _list_all(kube, path, selector=LABEL_PRODUCT):
            if obj["metadata"]["namespace"] in wanted:
                obj["kind"] = kind
                labelled.append(obj)
    found_domains = []
    for name in domains:
        try:
            found_domains.append({**kube.get(f"{DOMAINS}/{name}"), "kind": "DataDomain"})
        except ApiError as error:
            if error.status != 404:
                raise
    return MeshState(list_products(kube, wanted), labelled, found_domains)


def transient(error: Exception) -> bool:
    """An answer that says "not now" (a connection refused or reset, 429, 5xx): a poll goes on.

    After etcd restarts, say, the API server answers 429 "storage is (re)initializing" for a
    while after /readyz is ok again."""
    return not isinstance(error, ApiError) or error.status == 429 or error.status >= 500


def wait_converged(
    kube: BlockingClient,
    namespaces: Iterable[str],
    *,
    timeout: float,
    domains: Iterable[str] = (),
    interval: float = 0.5,
    ready: bool = True,
) -> tuple[MeshState, float]:
    """Wait until every product is Ready (unless not ``ready``) and :meth:`MeshState.problems`
    finds nothing; the state then and the seconds it took. On timeout, fail with what was
    still wrong."""
    started = time.monotonic()
    wanted, domain_names = list(namespaces), list(domains)
    while True:
        try:
            state = observe_mesh(kube, wanted, domain_names)
        except (ApiError, OSError) as error:
            if not transient(error):
                raise
            wrong = [f"could not look: {error}"]
        else:
            waiting = state.not_ready() if ready else []
            wrong = [f"not Ready: {name}" for name in waiting] + state.problems()
            if not wrong:
                return state, time.monotonic() - started
        if time.monotonic() - started > timeout:
            shown = "\n  ".join(wrong[:25])
            more = f"\n  ... and {len(wrong) - 25} more" if len(wrong) > 25 else ""
            raise AssertionError(
                f"Not converged after {timeout:.0f}s ({len(wrong)} problems):\n  {shown}{more}"
            )
        time.sleep(interval)


def wait_all_ready(
    kube: BlockingClient, names: Iterable[tuple[str, str]], *, timeout: float
) -> float:
    """Seconds until every named product is Ready for its generation; fail naming the rest."""
    wanted = set(names)
    namespaces = {namespace for namespace, _ in wanted}
    started = time.monotonic()
    while True:
        try:
            products = list_products(kube, namespaces)
        except (ApiError, OSError) as error:
            if not transient(error):
                raise
            products = {}
        waiting = sorted(k for k in wanted if k not in products or not is_ready(products[k]))
        if not waiting:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            shown = ", ".join(f"{ns}/{name}" for ns, name in waiting[:20])
            raise AssertionError(
                f"{len(waiting)} of {len(wanted)} products not Ready after {timeout:.0f}s: {shown}"
            )
        time.sleep(0.2)
