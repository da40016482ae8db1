"""The operator's runtime, assembled (layer ``runtime``).

:class:`OperatorRuntime` owns everything one operator process runs besides kopf's watches: the
mesh's informers (DataDomains, MeshPolicies) and the children cache, one
:class:`~.controller.Controller` per kind, the drift loops, the jobs that span many objects, and
leader election. The kopf handlers pass it every watch event (:meth:`OperatorRuntime.observe`);
it decides and does the rest. Only the leader's workers and drift passes run; a standby keeps
its caches warm and takes over when the lease is free.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from dataproduct_operator.api.kinds import (
    DATA_ACCESS_DECISION,
    DATA_ACCESS_REQUEST,
    DATA_DOMAIN,
    DATA_PRODUCT,
    DATA_PRODUCT_KIND,
    DATA_STORE,
    DATA_STORE_KIND,
    MESH_POLICY,
)
from dataproduct_operator.config import OperatorConfig
from dataproduct_operator.constants import (
    LABEL_MANAGED_BY,
    LABEL_PRODUCT,
    LABEL_VOLUME_NAMESPACE,
    OPERATOR_NAME,
    admission_slot_names,
)
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.identity import Identity
from dataproduct_operator.k8s.informer import ChildCache, WatchedObjects
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES
from dataproduct_operator.metrics import OperatorMetrics
from dataproduct_operator.openlineage.client import OpenLineageClient
from dataproduct_operator.reconcile.access import (
    AccessContext,
    AccessRegistry,
    decision_path,
    reconcile_access_decision,
    reconcile_access_request,
    request_path,
)
from dataproduct_operator.reconcile.datadomain import DomainContext, reconcile_data_domain
from dataproduct_operator.reconcile.dataproduct import (
    CHILD_KINDS,
    NAMED_KINDS,
    PERSISTENT_VOLUME,
    ProductContext,
)
from dataproduct_operator.reconcile.datastore import StoreContext, reconcile_data_store
from dataproduct_operator.reconcile.mesh import MeshState
from dataproduct_operator.reconcile.meshpolicy import PolicyContext, reconcile_mesh_policy
from dataproduct_operator.reconcile.outcome import FollowUp, Outcome, Want
from dataproduct_operator.reconcile.stores import StoreConnections
from dataproduct_operator.runtime.backoff import BackoffPolicy
from dataproduct_operator.runtime.clock import Clock, SystemClock
from dataproduct_operator.runtime.controller import Controller, Counters, RetryPolicies
from dataproduct_operator.runtime.jobs import Jobs
from dataproduct_operator.runtime.kinds import (
    DOMAIN_RESOURCE,
    POLICY_RESOURCE,
    DataProductWorker,
    PrometheusProbe,
    StoredKindWorker,
    WatchedKindWorker,
    domain_path,
    policy_path,
    store_path,
)
from dataproduct_operator.runtime.leader import LeaderElector, LeaseSettings
from dataproduct_operator.runtime.loops import LoopHealth, Loops

logger = logging.getLogger(__name__)

CHILD_EVENT_DELAY_SECONDS = 0.3  # child events of one product within this delay: one pass
# A run Job's updates come one at a time, a second or more apart (the Job controller batches
# them): the one that may tell a run ended is looked at at once, not after the delay above.
JOB_EVENT_DELAY_SECONDS = 0.02
MESH_CHANGE_DELAY_SECONDS = 0.3
DRIFT_PAGE = 100  # products listed (and kept in memory) at a time by the drift pass
PRODUCT_RESOURCE = KNOWN_RESOURCES[DATA_PRODUCT_KIND]
STORE_RESOURCE = KNOWN_RESOURCES[DATA_STORE_KIND]
DRIFT_LOOPS = {
    DATA_PRODUCT: "drift-dataproducts",
    DATA_DOMAIN: "drift-datadomains",
    MESH_POLICY: "drift-meshpolicies",
    DATA_STORE: "drift-datastores",
    DATA_ACCESS_REQUEST: "drift-dataaccessrequests",
}


class OperatorRuntime:
    """See the module docstring."""

    def __init__(
        self,
        client: KubeClient,
        config: OperatorConfig,
        *,
        clock: Clock | None = None,
        metrics: OperatorMetrics | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.clock = clock or SystemClock()
        self.metrics = metrics or OperatorMetrics()
        self.leading = asyncio.Event()
        self.mesh = MeshState(client, on_error=self.watch_failed)
        self.mesh.on_namespaces_moved = self._namespaces_moved
        self.mesh.on_rules_changed = self._rules_changed
        self.mesh.on_stores_changed = self._stores_changed
        self.store_connections = StoreConnections(client)
        self.access = AccessRegistry(
            client,
            on_request=self._request_changed,
            on_decision=self._decision_changed,
            on_error=self.watch_failed,
        )
        self.lineage = (
            OpenLineageClient(
                config.openlineage_url,
                namespace=config.openlineage_namespace,
                include_hidden=config.openlineage_include_hidden,
            )
            if config.openlineage_url
            else None
        )
        self.children = ChildCache(
            client,
            list(CHILD_KINDS),
            config.namespaces,
            on_change=self._child_changed,
            name_kinds=NAMED_KINDS,
            on_error=self.watch_failed,
        )
        # The PersistentVolumes the operator labelled for output ports (cluster-scoped).
        self.volumes = WatchedObjects(
            client,
            PERSISTENT_VOLUME,
            on_change=self._volume_changed,
            on_error=self.watch_failed,
            selector=LABEL_VOLUME_NAMESPACE,
        )
        self.jobs = Jobs(self.clock, on_error=lambda reason: self._count_error("Job", reason))
        self.loops = Loops(
            self.clock, on_error=lambda reason: self._count_error("DriftLoop", reason)
        )
        self.elector: LeaderElector | None = None
        self._election: asyncio.Task[None] | None = None
        self.products, self.domains, self.policies, self.stores = self._controllers()
        self.requests, self.decisions = self._access_controllers()
        self.controllers = {
            DATA_PRODUCT: self.products,
            DATA_DOMAIN: self.domains,
            MESH_POLICY: self.policies,
            DATA_STORE: self.stores,
            DATA_ACCESS_REQUEST: self.requests,
            DATA_ACCESS_DECISION: self.decisions,
        }
        interval = config.drift_interval_seconds
        self.loops.add(DRIFT_LOOPS[DATA_PRODUCT], interval, self._drift_products)
        self.loops.add(DRIFT_LOOPS[DATA_DOMAIN], interval, self._drift_domains)
        self.loops.add(DRIFT_LOOPS[MESH_POLICY], interval, self._drift_policies)
        self.loops.add(DRIFT_LOOPS[DATA_STORE], interval, self._drift_stores)
        self.loops.add(DRIFT_LOOPS[DATA_ACCESS_REQUEST], interval, self._drift_requests)
        self.metrics.count_policy_violations(self.mesh.violations.counts)
        self.metrics.count_loop_passes(self.loops.last_passes)
        self.metrics.count_store_statements(self.store_connections.counters)
        if self.lineage is not None:
            self.metrics.count_lineage_events(self.lineage.delivery_counts)
        self.metrics.count_access(self.access.phases)

    def _controllers(self) -> tuple[Controller, Controller, Controller, Controller]:
        config, client, clock, mesh = self.config, self.client, self.clock, self.mesh
        retry = RetryPolicies(
            quiet=BackoffPolicy(config.retry_quiet_base_seconds, config.retry_quiet_max_seconds),
            surfaced=BackoffPolicy(config.retry_base_seconds, config.drift_interval_seconds),
        )
        counters = Counters(
            error=self._count_error, applied=self._count_applied, passed=self._count_pass
        )
        common: dict[str, Any] = {
            "leading": self.leading,
            "retry": retry,
            "max_hold": config.max_status_hold_seconds,
            "follow": self._follow,
            "counters": counters,
        }
        probe = PrometheusProbe(client, config.prometheus_check_seconds, clock)
        product_context = ProductContext(
            client,
            mesh,
            probe.available,
            cache=self.children,
            volumes=self.volumes,
            observe_health=self.metrics.health.observe,
            forget_health=self.metrics.health.forget,
            stores=self.store_connections,
            placement=config.pipeline_placement,
            lineage=self.lineage,
            access=self.access,
        )
        self.name_waits = product_context.name_waits
        product_worker = DataProductWorker(product_context, clock)
        products = Controller(
            product_worker,
            client,
            clock,
            main_workers=config.concurrent_reconciles,
            fast_workers=config.concurrent_reconciles,
            **common,
        )
        product_worker.latest_version = products.latest_version
        domain_context = DomainContext(client, mesh, Identity(client), config.namespaces)
        policy_context = PolicyContext(
            client, mesh, slots=admission_slot_names(config.admission_policy_slots)
        )
        store_context = StoreContext(client, mesh, self.store_connections)
        stored = []
        for kind, store, path, reconcile in (
            (DATA_DOMAIN, mesh.domains, domain_path, partial(_domain, domain_context)),
            (MESH_POLICY, mesh.policies, policy_path, partial(_policy, policy_context)),
            (DATA_STORE, mesh.stores, store_path, partial(_store, store_context)),
        ):
            worker = StoredKindWorker(kind, store, client, clock, path, reconcile)
            stored.append(
                Controller(worker, client, clock, main_workers=2, fast_workers=1, **common)
            )
        domains, policies, stores = stored
        self._common = common
        return products, domains, policies, stores

    def _access_controllers(self) -> tuple[Controller, Controller]:
        """The controllers of access requests and decisions, fed by the access registry."""
        context = AccessContext(
            self.client,
            self.mesh,
            self.access,
            expiry_notice_seconds=self.config.access_expiry_notice_seconds,
        )
        made = []
        for kind, store, path, reconcile in (
            (DATA_ACCESS_REQUEST, self.access.requests, request_path,
             partial(_request, context)),
            (DATA_ACCESS_DECISION, self.access.decisions, decision_path,
             partial(_decision, context)),
        ):  # fmt: skip
            worker = WatchedKindWorker(kind, store, self.client, self.clock, path, reconcile)
            made.append(
                Controller(
                    worker, self.client, self.clock, main_workers=2, fast_workers=1, **self._common
                )
            )
        return made[0], made[1]

    # -- counting --------------------------------------------------------------------------

    def _count_error(self, kind: str, reason: str) -> None:
        self.metrics.errors.labels(kind, reason).inc()

    def watch_failed(self, reason: str) -> None:
        """A watch failed (it resumes by itself): counted."""
        self._count_error("Watch", reason)

    def _count_applied(self, kind: str) -> None:
        self.metrics.applies.labels(kind).inc()

    def _count_pass(self, kind: str, want: Want, seconds: float, ok: bool) -> None:
        if kind == DATA_PRODUCT and want & Want.RECONCILE:
            self.metrics.reconciles.labels("success" if ok else "error").inc()
            self.metrics.reconcile_seconds.observe(seconds)

    # -- events in -------------------------------------------------------------------------

    def observe(self, kind: str, event: str | None, body: dict[str, Any]) -> None:
        """A watch event of one of the operator's kinds (None: first listed)."""
        self.controllers[kind].observe(event, body)

    def _follow(self, follow_up: FollowUp) -> None:
        controller = self.controllers[follow_up.kind]
        key = (follow_up.namespace, follow_up.name)
        controller.submit(key, follow_up.want, after=follow_up.after)

    def _child_changed(self, event: str, child: dict[str, Any]) -> None:
        """A child changed: refresh its product's status; a child of ours deleted: reconcile."""
        if event == "LISTED":
            return  # the initial listing: every product is reconciled at start anyway
        metadata = child["metadata"]
        labels = metadata.get("labels") or {}
        namespace, name = metadata.get("namespace"), labels.get(LABEL_PRODUCT)
        if not (namespace and name):
            return
        ours = labels.get(LABEL_MANAGED_BY) == OPERATOR_NAME
        want = Want.RECONCILE if event == "DELETED" and ours else Want.REFRESH
        job_update = event == "MODIFIED" and child.get("kind") == "Job"
        delay = JOB_EVENT_DELAY_SECONDS if job_update else CHILD_EVENT_DELAY_SECONDS
        self.products.submit((namespace, name), want, after=delay)
        if event == "DELETED":  # a name another product waits for may be free now
            for waiting in self.name_waits.waiting_for(child["kind"], namespace, metadata["name"]):
                self.products.submit(waiting, Want.RECONCILE, after=CHILD_EVENT_DELAY_SECONDS)

    def _request_changed(self, event: str, request: dict[str, Any]) -> None:
        """A request came, changed or went: its pass decides; its product lists it (a request
        gone: the product ends what it granted, now)."""
        self.requests.observe(None if event == "LISTED" else event, request)
        product = (request.get("spec") or {}).get("product") or {}
        namespace, name = product.get("namespace"), product.get("name")
        if event == "LISTED" or not (namespace and name) or not self._watches(namespace):
            return
        want = Want.RECONCILE if event == "DELETED" else Want.REFRESH
        self.products.submit((namespace, name), want, after=CHILD_EVENT_DELAY_SECONDS)

    def _decision_changed(self, event: str, decision: dict[str, Any]) -> None:
        """A decision came, changed or went: it is checked, and the request it answers moves."""
        self.decisions.observe(None if event == "LISTED" else event, decision)
        answered = (decision.get("spec") or {}).get("request") or {}
        if answered.get("namespace") and answered.get("name"):
            self.requests.submit((answered["namespace"], answered["name"]), Want.RECONCILE)

    def _volume_changed(self, event: str, volume: dict[str, Any]) -> None:
        """A volume labelled for a port changed (its reclaim policy edited, its claim gone):
        the product of that port looks again (a refresh asks for a reconcile if need be)."""
        if event == "LISTED":
            return
        labels = volume["metadata"].get("labels") or {}
        namespace, name = labels.get(LABEL_VOLUME_NAMESPACE), labels.get(LABEL_PRODUCT)
        if namespace and name and self._watches(namespace):
            self.products.submit((namespace, name), Want.REFRESH, after=CHILD_EVENT_DELAY_SECONDS)

    def _watches(self, namespace: str) -> bool:
        return not self.config.namespaces or namespace in self.config.namespaces

    def _namespaces_moved(self, namespaces: set[str]) -> None:
        """The domain of these namespaces changed: every DataDomain naming one is reconciled
        (a NamespaceTaken may be over), and every product there (a DomainMismatch or
        NamespaceNotInMesh may be over, or begin)."""
        for namespace in sorted(namespaces):
            for domain in self.mesh.claimants(namespace):
                self.domains.submit(("", domain), Want.RECONCILE, after=MESH_CHANGE_DELAY_SECONDS)
        for namespace in sorted(ns for ns in namespaces if self._watches(ns)):

            async def reconcile_namespace(namespace: str = namespace) -> None:
                for body in await self.client.list(PRODUCT_RESOURCE.path(namespace)):
                    self.products.submit(_key(body), Want.RECONCILE, body)

            self.jobs.ask(
                f"domain-of-{namespace}", reconcile_namespace, after=MESH_CHANGE_DELAY_SECONDS
            )

    def _rules_changed(self) -> None:
        """A policy's rules changed: audit every product again (a status refresh audits)."""
        self.jobs.ask(
            "audit-every-product", self._audit_every_product, after=MESH_CHANGE_DELAY_SECONDS
        )

    def _stores_changed(self, store: str) -> None:
        """A DataStore came, went or changed (its connection, allowed domains, the default
        mark): every product is reconciled, since where its ports go may follow."""
        del store
        self.jobs.ask(
            "place-every-product", self._reconcile_every_product, after=MESH_CHANGE_DELAY_SECONDS
        )

    async def _reconcile_every_product(self) -> None:
        async for page in self._product_pages():
            await self.products.submit_and_wait(page, Want.RECONCILE)

    async def _audit_every_product(self) -> None:
        async for page in self._product_pages():
            await self.products.submit_and_wait(page, Want.REFRESH)
        for name in sorted(self.mesh.compiled_policies):
            self.policies.submit(("", name), Want.REFRESH)

    async def _product_pages(self) -> AsyncIterator[list[dict[str, Any]]]:
        paths = [PRODUCT_RESOURCE.path(ns) for ns in self.config.namespaces]
        for path in paths or [PRODUCT_RESOURCE.path()]:
            async for page in self.client.pages(path, limit=DRIFT_PAGE):
                yield page

    # -- drift passes ----------------------------------------------------------------------

    async def _drift_products(self) -> None:
        """Every product reconciled, the fields we set compared with the live children; then
        the children whose product is gone (deleted while no operator ran) let go."""
        if not self.leading.is_set():
            return
        present: set[tuple[str, str]] = set()
        async for page in self._product_pages():
            present.update(_key(body) for body in page)
            await self.products.submit_and_wait(page, Want.RECONCILE | Want.DRIFT)
        await self.children.wait_synced()
        for namespace, name in sorted(self.children.products(managed_by=OPERATOR_NAME) - present):
            body = {"metadata": {"namespace": namespace, "name": name}}
            self.products.submit((namespace, name), Want.LET_GO, body)

    async def _drift_domains(self) -> None:
        if self.leading.is_set():
            bodies = await self.client.list(DOMAIN_RESOURCE.path())
            await self.domains.submit_and_wait(bodies, Want.RECONCILE | Want.DRIFT)

    async def _drift_stores(self) -> None:
        if self.leading.is_set():
            bodies = await self.client.list(STORE_RESOURCE.path())
            await self.stores.submit_and_wait(bodies, Want.RECONCILE | Want.DRIFT)

    async def _drift_requests(self) -> None:
        """Every request and decision passed over again: a timer lost with a process or a
        missed event costs at most one drift interval."""
        if self.leading.is_set():
            await self.requests.submit_and_wait(self.access.requests.items(), Want.RECONCILE)
            await self.decisions.submit_and_wait(self.access.decisions.items(), Want.RECONCILE)

    async def _drift_policies(self) -> None:
        if self.leading.is_set():
            bodies = await self.client.list(POLICY_RESOURCE.path())
            await self.policies.submit_and_wait(bodies, Want.RECONCILE | Want.DRIFT)

    # -- life cycle ------------------------------------------------------------------------

    def start(self, lease: LeaseSettings | None) -> None:
        """Start watching and working; with ``lease``, work only while leading."""
        if self.lineage is not None:
            self.lineage.start()
        self.mesh.start()
        self.access.start()
        self.children.start()
        self.volumes.start()
        for controller in self.controllers.values():
            controller.start()
        self.loops.start()
        if lease is None:
            self._leading_changed(True)
            return
        self.elector = LeaderElector(self.client, lease, self.clock, self._leading_changed)
        self._election = asyncio.get_running_loop().create_task(self.elector.run())

    def _leading_changed(self, leading: bool) -> None:
        self.metrics.leader.set(1 if leading else 0)
        if leading:
            self.leading.set()
        else:
            self.leading.clear()

    async def stop(self) -> None:
        """Stop working (giving the lease up) and watching."""
        if self._election is not None:
            self._election.cancel()
            await asyncio.gather(self._election, return_exceptions=True)
        if self.elector is not None:
            await self.elector.release()
        self._leading_changed(False)
        await self.loops.stop()
        await self.jobs.stop()
        for controller in self.controllers.values():
            await controller.stop()
        await self.children.stop()
        await self.volumes.stop()
        await self.mesh.stop()
        await self.access.stop()
        await self.store_connections.close()
        if self.lineage is not None:  # last: the final reconciles' events get their chance
            await self.lineage.stop()

    def health(self) -> tuple[bool, list[LoopHealth]]:
        """Whether this process leads, and its drift loops' health (a standby has none)."""
        leading = self.leading.is_set()
        return leading, self.loops.health() if leading else []


async def _domain(context: DomainContext, body: dict[str, Any], want: Want, now: str) -> Outcome:
    return await reconcile_data_domain(context, body, want=want, now=now)


async def _policy(context: PolicyContext, body: dict[str, Any], want: Want, now: str) -> Outcome:
    return await reconcile_mesh_policy(context, body, want=want, now=now)


async def _store(context: StoreContext, body: dict[str, Any], want: Want, now: str) -> Outcome:
    return await reconcile_data_store(context, body, want=want, now=now)


async def _request(context: AccessContext, body: dict[str, Any], want: Want, now: str) -> Outcome:
    return await reconcile_access_request(context, body, want=want, now=now)


async def _decision(context: AccessContext, body: dict[str, Any], want: Want, now: str) -> Outcome:
    return await reconcile_access_decision(context, body, want=want, now=now)


def _key(body: dict[str, Any]) -> tuple[str, str]:
    metadata = body["metadata"]
    return metadata.get("namespace") or "", metadata["name"]
