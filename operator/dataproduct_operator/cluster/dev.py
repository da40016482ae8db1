"""``dpo dev``: the operator and the example mesh on an embedded control plane (layer ``cluster``).

One command for a first look: a local control plane, the CRDs, the local PostgreSQL registered
as the default DataStore ``local-postgres`` (its admin Secret in the operator's namespace), the
operator as a process of the cluster, the starter MeshPolicies, and the manifests of
``examples/`` applied in two steps:
first the cluster-scoped ones (the DataDomains, which onboard their namespaces), and once every
domain and policy is Ready, the DataProducts; progress is printed as each becomes Ready (the
store first: the examples' ports become its tables). Before the products, the examples' external
PostgreSQL sources are seeded in the local PostgreSQL and the products applied pointing at it;
once they are Ready, each example pipeline runs once on the real node and the mesh's rows and
data health are printed (see ``dev_flow``; with ``--node kwok`` no pod runs, and it says so).
Once the mesh is up, it prints how to look
at it, and two psql commands with a consumer's reader login (see ``store_hints``): a SELECT of
its upstream's table that works, and an INSERT that PostgreSQL refuses.
The local Prometheus (:mod:`~dataproduct_operator.cluster.prometheus`) scrapes the operator and
evaluates every product's alert rules, which this command keeps current while it runs; its
alerts page is printed with the rest.
Ctrl-C (or SIGTERM) stops the operator and the control plane, and nothing of them is left
running. The operator is recorded with the cluster's components, so if this command is killed
outright, ``dpo cluster down --dir DIR`` still stops everything.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from dataproduct_operator import interrupts
from dataproduct_operator.api import datastore
from dataproduct_operator.api.conditions import READY
from dataproduct_operator.api.kinds import API_VERSION
from dataproduct_operator.cluster import controlplane, dev_flow, images, prometheus
from dataproduct_operator.cluster.components import Layout
from dataproduct_operator.cluster.node import NodeMode
from dataproduct_operator.cluster.node_config import NODE_TYPE_LABEL, REAL_NODE_TYPE
from dataproduct_operator.cluster.postgres import NAME as POSTGRES
from dataproduct_operator.cluster.postgres import LocalPostgres, admin_file, find_binaries
from dataproduct_operator.cluster.process import ComponentProcess, child_exit_code, tail
from dataproduct_operator.cluster.store_hints import (
    build_access_demo,
    build_read_hints,
    find_access_demo,
    find_granted_read,
)
from dataproduct_operator.errors import UserError
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.resources import KNOWN_RESOURCES, object_path
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.manifests.access_admission import build_access_policies
from dataproduct_operator.manifests.admission import build_data_deletion_policy
from dataproduct_operator.manifests.crd import KINDS, build_crd
from dataproduct_operator.manifests.policies import STARTER_POLICIES
from dataproduct_operator.manifests.rbac import build_domain_cluster_roles

FIELD_MANAGER = "dpo-dev"
OPERATOR_COMPONENT = "dataproduct-operator"
CRD_ESTABLISHED_SECONDS = 30.0
POLL_SECONDS = 0.25
CATALOG_READY_SECONDS = 30.0
RULES_SYNC_SECONDS = 10.0  # how soon a product's changed alert rules reach the local Prometheus
# The operator's own namespace in `dpo dev`: the one the chart's install instructions use. The
# operator process is told so (POD_NAMESPACE) and the store's admin Secret lives there.
OPERATOR_NAMESPACE = "dataproduct-system"
LOCAL_STORE = "local-postgres"
LOCAL_STORE_SECRET = f"{LOCAL_STORE}-admin"


@dataclass(frozen=True)
class DevSettings:
    """Every knob of ``dpo dev``."""

    directory: Path
    examples: Path
    metrics_port: int = 8000
    catalog_port: int = 8090
    prometheus_port: int = 9090  # the local Prometheus; 0: none
    ready_timeout: float = 60.0
    drift_interval: float = 300.0
    node_mode: NodeMode = NodeMode.AUTO


def _documents(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        documents = list(yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {error}") from error
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        where = f"{path}, document {index}"
        if not isinstance(document, dict) or not (document.get("metadata") or {}).get("name"):
            raise UserError(f"{where}: not a Kubernetes object with metadata.name")
        key = (document.get("apiVersion"), document.get("kind"))
        if key not in KNOWN_RESOURCES:
            supported = ", ".join(sorted({kind for _, kind in KNOWN_RESOURCES}))
            raise UserError(
                f"{where}: {key[1]} of {key[0]} is not a kind dpo dev applies ({supported})"
            )
        yield where, document


def load_manifests(source: Path) -> list[dict[str, Any]]:
    """The objects of a manifest file, or of every ``*.yaml``/``*.yml`` in a directory.

    Cluster-scoped objects (the Namespaces) come first, so namespaced ones have a home.
    """
    if source.is_dir():
        files = sorted([*source.glob("*.yaml"), *source.glob("*.yml")])
    elif source.is_file():
        files = [source]
    else:
        raise UserError(f"{source} does not exist")
    objects = [document for path in files for _, document in _documents(path)]
    if not objects:
        raise UserError(f"{source} holds no manifests")
    return sorted(
        objects,
        key=lambda obj: KNOWN_RESOURCES[(obj["apiVersion"], obj["kind"])].namespaced,
    )


def build_local_store(postgres: LocalPostgres) -> list[dict[str, Any]]:
    """The operator's namespace, the admin Secret in it, and the default DataStore
    ``local-postgres`` for the local cluster's PostgreSQL (pure), at the host pipeline pods
    reach (the real node's gateway when it runs) and so does the operator."""

    def encoded(value: str) -> str:
        return base64.b64encode(value.encode()).decode()

    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": LOCAL_STORE_SECRET, "namespace": OPERATOR_NAMESPACE},
            "type": "kubernetes.io/basic-auth",
            "data": {
                datastore.USERNAME_KEY: encoded(postgres.username),
                datastore.PASSWORD_KEY: encoded(postgres.password),
            },
        },
        {
            "apiVersion": API_VERSION,
            "kind": datastore.KIND,
            "metadata": {
                "name": LOCAL_STORE,
                "annotations": {datastore.DEFAULT_STORE_ANNOTATION: "true"},
            },
            "spec": {
                "type": datastore.StoreType.POSTGRES.value,
                "postgres": {
                    "host": postgres.store_host,
                    "port": postgres.port,
                    "database": postgres.database,
                    # Loopback to a server on this machine: nothing to encrypt against.
                    "sslMode": datastore.SslMode.DISABLE.value,
                },
                "credentialsSecretRef": {
                    "namespace": OPERATOR_NAMESPACE,
                    "name": LOCAL_STORE_SECRET,
                },
            },
        },
    ]


def _established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def install_crds(client: BlockingClient, out: TextIO) -> None:
    """Apply the CRDs built from the package (always the running code's) and wait until served."""
    for definition in KINDS:
        crd = build_crd(definition)
        path = object_path(crd)
        client.apply(path, crd, field_manager=FIELD_MANAGER)
        deadline = time.monotonic() + CRD_ESTABLISHED_SECONDS
        while not _established(client.get(path)):
            if time.monotonic() > deadline:
                raise UserError(f"CRD {crd['metadata']['name']} was not established in time")
            time.sleep(POLL_SECONDS)
        print(f"  CRD {crd['metadata']['name']} established", file=out, flush=True)


def _name(obj: dict[str, Any]) -> str:
    """``namespace/name``, or ``name`` for a cluster-scoped object."""
    metadata = obj["metadata"]
    return "/".join(filter(None, (metadata.get("namespace"), metadata["name"])))


def _kind(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["apiVersion"], obj["kind"]


def _described(obj: dict[str, Any]) -> str:
    return f"{obj['kind']} {_name(obj)}"


def apply_manifests(client: BlockingClient, objects: list[dict[str, Any]], out: TextIO) -> None:
    """Server-side apply each object; the API server's refusal becomes the error shown."""
    for obj in objects:
        try:
            client.apply(object_path(obj), obj, field_manager=FIELD_MANAGER)
        except ApiError as error:
            raise UserError(f"Applying {_described(obj)} failed: {error}") from error
        print(f"  applied {_described(obj)}", file=out, flush=True)


def _ready(obj: dict[str, Any]) -> tuple[bool, str]:
    """Whether the operator reports the current generation Ready, and what it says."""
    status = obj.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition["type"] == READY:
            current = status.get("observedGeneration") == obj["metadata"].get("generation")
            return condition["status"] == "True" and current, condition.get("message", "")
    return False, "no status yet"


def wait_until_ready(
    client: BlockingClient,
    objects: list[dict[str, Any]],
    *,
    what: str,
    timeout: float,
    out: TextIO,
    check_alive: Callable[[], None],
) -> dict[str, str]:
    """Print each object as it becomes Ready; return those that did not, with their message.

    ``what``: the objects in the summary line, e.g. "products".
    """
    started = time.monotonic()
    pending = {_name(obj): object_path(obj) for obj in objects}
    messages: dict[str, str] = {}
    while pending:
        check_alive()
        for name, path in list(pending.items()):
            ready, messages[name] = _ready(client.get(path))
            if ready:
                print(
                    f"  {name} Ready after {time.monotonic() - started:.1f}s", file=out, flush=True
                )
                del pending[name]
        if pending and time.monotonic() - started > timeout:
            return {name: messages[name] for name in pending}
        time.sleep(POLL_SECONDS)
    print(
        f"All {len(objects)} {what} Ready {time.monotonic() - started:.1f}s after apply",
        file=out,
        flush=True,
    )
    return {}


def _apply_and_wait(
    client: BlockingClient,
    objects: list[dict[str, Any]],
    *,
    what: str,
    settings: DevSettings,
    out: TextIO,
    check_alive: Callable[[], None],
) -> None:
    """Apply ``objects``, then report how each becomes Ready (or why not, at the timeout)."""
    if not objects:
        return
    apply_manifests(client, objects, out)
    timeout = settings.ready_timeout
    not_ready = wait_until_ready(
        client, objects, what=what, timeout=timeout, out=out, check_alive=check_alive
    )
    for name, message in not_ready.items():
        print(f"  {name} not Ready after {timeout:.0f}s: {message}", file=out, flush=True)


def operator_command(
    kubeconfig: Path, settings: DevSettings, *, real_node: bool = False
) -> list[str]:
    """``dpo run`` with this interpreter, against the embedded cluster, as cluster admin; with
    the real node, every pipeline pod placed there and sql pipelines run by the runner image
    imported into it."""
    placement = [
        f"--pipeline-node-selector={NODE_TYPE_LABEL}={REAL_NODE_TYPE}",
        f"--pipeline-toleration={NODE_TYPE_LABEL}={REAL_NODE_TYPE}:NoSchedule",
        f"--runner-image={images.image_spec('runner').ref}",
    ]
    return [
        sys.executable,
        "-m",
        "dataproduct_operator",
        "run",
        f"--kubeconfig={kubeconfig}",
        f"--metrics-port={settings.metrics_port}",
        "--liveness-port=0",
        f"--catalog-port={settings.catalog_port}",
        "--catalog-host=127.0.0.1",
        f"--drift-interval={settings.drift_interval}",
        *(placement if real_node else []),
    ]


def _alive_check(process: ComponentProcess, log: Path) -> Callable[[], None]:
    def check() -> None:
        interrupts.raise_if_interrupted()
        code = child_exit_code(process.pid)
        if code is not None:
            raise UserError(
                f"The operator exited with code {code}; last lines of {log}:\n{tail(log)}"
            )

    return check


def run_dev(settings: DevSettings, *, out: TextIO = sys.stderr) -> None:
    """Bring everything up, report readiness, then wait for Ctrl-C and stop it all."""
    manifests = load_manifests(settings.examples)
    cluster_wide = [m for m in manifests if not KNOWN_RESOURCES[_kind(m)].namespaced]
    namespaced = [m for m in manifests if KNOWN_RESOURCES[_kind(m)].namespaced]
    directory = settings.directory
    started = time.monotonic()
    with interrupts.sigterm_as_interrupt():
        info = controlplane.up(directory, out=out, node_mode=settings.node_mode)
        try:
            with BlockingClient.from_kubeconfig(info.kubeconfig) as client:
                install_crds(client, out)
                # As the chart does: changes that delete data need their confirmation.
                apply_manifests(client, build_data_deletion_policy(), out)
                apply_manifests(client, build_access_policies(), out)
                # As the chart does: the roles the operator binds each domain's team to, so
                # the teams may manage their products, and ask for and decide on access.
                apply_manifests(client, build_domain_cluster_roles(), out)
                *store_home, store = build_local_store(info.postgres)
                apply_manifests(client, store_home, out)
                # Before the operator, so that Ctrl-C and `down` stop the operator first.
                monitor = _start_prometheus(settings, out)
                log = Layout(info.directory).log(OPERATOR_COMPONENT)
                real_node = info.real_node is not None
                command = operator_command(info.kubeconfig, settings, real_node=real_node)
                operator = controlplane.start_attached(
                    directory,
                    OPERATOR_COMPONENT,
                    command,
                    environment={"POD_NAMESPACE": OPERATOR_NAMESPACE},
                )
                print(f"  operator started (pid {operator.pid}), log: {log}", file=out, flush=True)
                check_alive = _alive_check(operator, log)
                steps = {
                    f"Registering the local PostgreSQL as the default DataStore {LOCAL_STORE}": (
                        [store],
                        "stores",
                    ),
                    "Applying the starter MeshPolicies": (list(STARTER_POLICIES), "policies"),
                    f"Onboarding the domains of {settings.examples}": (cluster_wide, "domains"),
                    f"Applying the products of {settings.examples}": (namespaced, "products"),
                }
                for title, (listed, what) in steps.items():
                    objects = listed
                    if what == "products":  # their sources first, once the namespaces exist
                        objects = namespaced = _seed_example_sources(
                            client, info.postgres, listed, out
                        )
                    print(title, file=out, flush=True)
                    _apply_and_wait(
                        client,
                        objects,
                        what=what,
                        settings=settings,
                        out=out,
                        check_alive=check_alive,
                    )
                products = [client.get(object_path(product)) for product in namespaced]
                if monitor is not None:
                    prometheus.sync_rules(
                        client, prometheus.PrometheusLayout.of(directory), monitor
                    )
                run_examples(client, namespaced, real_node=real_node, out=out,
                              check_alive=check_alive)  # fmt: skip
            if settings.catalog_port:
                _wait_for_catalog(settings.catalog_port, check_alive)
            print(
                f"The example mesh is up, its data shown, {time.monotonic() - started:.0f}s "
                "after start",
                file=out,
                flush=True,
            )
            domains = [m for m in cluster_wide if _kind(m)[1] == "DataDomain"]
            _print_hints(
                info.kubeconfig, directory, settings, log, products, domains=domains, out=out
            )
            _serve(info.kubeconfig, directory, monitor, check_alive)
        finally:
            print("Stopping the operator and the control plane", file=out, flush=True)
            controlplane.down(directory, out=out)


def _seed_example_sources(
    client: BlockingClient,
    postgres: LocalPostgres,
    manifests: list[dict[str, Any]],
    out: TextIO,
) -> list[dict[str, Any]]:
    """Seed the examples' external PostgreSQL sources in the local server, put their login in
    the Secrets the examples name, and return the manifests pointing at the local server as
    pods reach it (``dev_flow``)."""
    dataset = dev_flow.build_dataset()
    started = time.monotonic()
    print("Seeding the examples' external sources in the local PostgreSQL", file=out, flush=True)
    password = dev_flow.seed_sources(postgres, dataset)
    for table in dataset:
        print(
            f"  {table.database}.public.{table.table}: {len(table.rows)} rows",
            file=out,
            flush=True,
        )
    apply_manifests(client, dev_flow.build_source_secrets(manifests, dataset, password), out)
    print(f"  seeded in {time.monotonic() - started:.1f}s", file=out, flush=True)
    return dev_flow.point_sources_at(manifests, dataset, postgres.store_host, postgres.port)


def run_examples(
    client: BlockingClient,
    manifests: list[dict[str, Any]],
    *,
    real_node: bool,
    out: TextIO,
    check_alive: Callable[[], None],
) -> None:
    """Run each example pipeline once on the real node and print the mesh's data health; say
    why not without the real node."""
    products = [m for m in manifests if m["kind"] == "DataProduct"]
    if not real_node:
        print(
            "Pipelines not run: no real node in this cluster (--node kwok, or it cannot run "
            "here: see above), and kwok's simulated node runs no pod; the products stay "
            "DataHealthy=Unknown NoDataYet",
            file=out,
            flush=True,
        )
        return
    if not images.built("runner"):  # the node imports only an image of this very code
        print(
            f"Pipelines not run: the runner image {images.image_spec('runner').ref} is not "
            "built from this code, so the real node has none; run `make images` (make dev "
            "does), then make dev again",
            file=out,
            flush=True,
        )
        return
    started = time.monotonic()
    print("Running each example pipeline once on the real node", file=out, flush=True)
    dev_flow.run_example_pipelines(client, products, out=out, check_alive=check_alive)
    dev_flow.print_mesh_health(client, products, out=out, check_alive=check_alive)
    print(f"Pipelines run in {time.monotonic() - started:.1f}s", file=out, flush=True)


def _start_prometheus(settings: DevSettings, out: TextIO) -> ComponentProcess | None:
    """The local Prometheus, scraping the operator (which starts next; the products' rules come
    once they are applied); None when either port is 0."""
    if not (settings.prometheus_port and settings.metrics_port):
        return None
    started = time.monotonic()
    process = prometheus.start(
        settings.directory,
        port=settings.prometheus_port,
        metrics_port=settings.metrics_port,
        products=[],
    )
    print(
        f"  prometheus ready after {time.monotonic() - started:.1f}s (pid {process.pid})",
        file=out,
        flush=True,
    )
    return process


def _serve(
    kubeconfig: Path,
    directory: Path,
    monitor: ComponentProcess | None,
    check_alive: Callable[[], None],
) -> None:
    """Until Ctrl-C: watch the operator, and keep Prometheus' rules those of the products as
    they are now (a product applied, changed or deleted by hand)."""
    layout = prometheus.PrometheusLayout.of(directory)
    synced = time.monotonic()
    with BlockingClient.from_kubeconfig(kubeconfig) as client:
        while True:
            check_alive()
            if monitor is not None and time.monotonic() - synced > RULES_SYNC_SECONDS:
                # The API server busy: the next pass tries again.
                with contextlib.suppress(OSError, ApiError):
                    prometheus.sync_rules(client, layout, monitor)
                synced = time.monotonic()
            time.sleep(1.0)


def _wait_for_catalog(port: int, check_alive: Callable[[], None]) -> None:
    """Return once the catalog answers with the mesh listed, so the URL printed works."""
    url = f"http://127.0.0.1:{port}/healthz"
    deadline = time.monotonic() + CATALOG_READY_SECONDS
    while True:
        check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass  # not listening yet, or 503 while it lists the mesh
        if time.monotonic() > deadline:
            raise UserError(f"The catalog did not answer at {url} within {CATALOG_READY_SECONDS}s")
        time.sleep(POLL_SECONDS)


def _print_hints(
    kubeconfig: Path,
    directory: Path,
    settings: DevSettings,
    log: Path,
    products: list[dict[str, Any]],
    *,
    domains: list[dict[str, Any]],
    out: TextIO,
) -> None:
    """What to look at and try, ``products`` as the operator reported them once Ready, and
    ``domains`` as the examples declare them."""
    shown = _shown(kubeconfig)
    lines = [
        "",
        "Look at the data products, the domains and the policies:",
        f"  kubectl --kubeconfig {shown} get dataproducts -A",
        f"  kubectl --kubeconfig {shown} get datadomains,meshpolicies",
        f"  kubectl --kubeconfig {shown} get pvc,cronjobs,configmaps,roles,rolebindings -A "
        "-l app.kubernetes.io/managed-by=dataproduct-operator",
        "The store the ports are tables in (Ready: connected, its privileges checked):",
        f"  kubectl --kubeconfig {shown} get dst",
        *_read_hints(shown, products),
        *_access_demo(shown, products, domains),
        "Try a product that breaks a policy (the API server refuses it, saying why):",
        f"  kubectl --kubeconfig {shown} -n sales patch dataproduct orders --type=merge "
        """-p '{"spec":{"classification":"Public"}}'""",
        f"Operator metrics: http://127.0.0.1:{settings.metrics_port}/metrics"
        if settings.metrics_port
        else "Operator metrics: disabled",
        f"Catalog (products, domains, lineage, exports): http://127.0.0.1:{settings.catalog_port}/"
        if settings.catalog_port
        else "Catalog: disabled",
        f"Prometheus (the operator's metrics, every product's alerts): "
        f"{prometheus.url(settings.prometheus_port)}{prometheus.ALERTS_PAGE}"
        if settings.prometheus_port and settings.metrics_port
        else "Prometheus: disabled",
        f"PostgreSQL (the default DataStore {LOCAL_STORE}): its admin's connection in "
        f"{admin_file(directory)}, its log in {Layout(directory).log(POSTGRES)}",
        f"Operator log: {log}",
        f"Ctrl-C stops the operator and the control plane in {directory}.",
    ]
    print("\n".join(lines), file=out, flush=True)


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is under it: shorter to copy."""
    here = Path.cwd()
    return path.relative_to(here) if path.is_relative_to(here) else path


def _psql() -> Path:
    psql = find_binaries().psql
    if not psql.exists():  # the server without its client: the one on the PATH, if any
        psql = Path(shutil.which("psql") or "psql")
    return psql


def _access_demo(
    kubeconfig: Path, products: list[dict[str, Any]], domains: list[dict[str, Any]]
) -> list[str]:
    """The two commands of an access request (ask, approve) and the read that then works."""
    demo = find_access_demo(products, domains)
    if demo is None:
        return ["No two domains to show an access request between"]
    dpo = Path(sys.executable).parent / "dpo"
    return build_access_demo(
        demo, kubeconfig, _shown(dpo) if dpo.exists() else Path("dpo"), _psql()
    )


def _read_hints(kubeconfig: Path, products: list[dict[str, Any]]) -> list[str]:
    """The read that works and the write that is refused, with a consumer's reader login; a
    line saying why not when no consumer's input is ready in a store."""
    read = find_granted_read(products)
    if read is None:
        return [
            "No product reads another's table (an input from a product in a store, "
            "InputsReady): no psql command to show"
        ]
    return build_read_hints(read, kubeconfig, _psql())
