"""The ``dpo`` command line (layer ``cli``: argument parsing and error presentation only).

A :class:`~dataproduct_operator.errors.UserError` becomes one message on stderr and a non-zero
exit; Ctrl-C exits 130 after the command has cleaned up after itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import click

from dataproduct_operator import __version__, interrupts
from dataproduct_operator.constants import (
    ADMISSION_SLOT_PREFIX,
    DEFAULT_ADMISSION_SLOTS,
    DEFAULT_EXPIRY_NOTICE,
    MAX_ADMISSION_SLOTS,
)
from dataproduct_operator.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


class _Group(click.Group):
    """Turns expected failures into a message instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserError as error:
            click.secho(f"Error: {error}", fg="red", err=True)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            interrupts.clear()
            click.echo("Interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dpo")
def main() -> None:
    """dataproduct-operator: Data Mesh data products as a Kubernetes API."""
    interrupts.install()


def _grant_seconds(value: str, option: str) -> int:
    """A duration option in minutes, hours or days, as seconds."""
    from dataproduct_operator.api.grants import grant_seconds

    try:
        return grant_seconds(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=option) from None


@contextmanager
def _local_cluster(command: str) -> Iterator[None]:
    """Imports of the local-cluster code, which the wheel and the image leave out."""
    try:
        yield
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("dataproduct_operator.cluster"):
            raise
        raise UserError(
            f"`dpo {command}` is not available in this installation: the local control plane "
            "ships with the source repository only, not with the wheel or the image. Run it "
            "from a checkout (make venv, then .venv/bin/dpo, or make dev)"
        ) from None


@main.group(cls=_Group)
def cluster() -> None:
    """A local Kubernetes control plane (etcd, kube-apiserver, controllers, kwok); source
    checkouts only."""


_NODE_OPTION = click.option(
    "--node",
    "node_mode",
    type=click.Choice(["auto", "real", "kwok"]),
    default="auto",
    show_default=True,
    help="Nodes beside kwok's simulated one: the real node (kubelet and containerd) when it "
    "can run here (auto), or else fail saying why (real), or none (kwok; `dpo dev` then runs "
    "no pipeline).",
)
_DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".cluster"),
    show_default=True,
    help="Directory holding the cluster's kubeconfig, logs, certificates and data.",
)


_KUBECONFIG_OPTION = click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Kubeconfig to use; default: $KUBECONFIG, ~/.kube/config, or in-cluster.",
)
_CONTEXT_OPTION = click.option(
    "--context",
    default=None,
    help="Kubeconfig context to use; default: the kubeconfig's current context.",
)


def _public_url(value: str | None) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http:// or https:// URL")
    return value or None


def _public_url_option(flag: str) -> Callable[[F], F]:
    return click.option(
        flag,
        "public_url",
        default=None,
        callback=lambda _ctx, _param, value: _public_url(value),
        help="The catalog's base URL as users reach it (e.g. https://catalog.example.com), for "
        "the links in exports; default: the URL each request was sent to.",
    )


CATALOG_LIMIT_OPTIONS = (
    (
        "search-cpu-ms",
        200,
        "Catalog: CPU time one search may take; then it answers what it found, marked truncated.",
    ),
    ("export-cpu-ms", 10000, "Catalog: CPU time one whole-mesh export may take; then 503."),
    (
        "mesh-exports",
        1,
        "Catalog: whole-mesh exports served at once; another one meanwhile answers 429 with "
        "Retry-After.",
    ),
)


def _catalog_limit_options(prefix: str) -> Callable[[F], F]:
    """What one request may cost the catalog (see docs/catalog.md, "Limits")."""

    def decorate(command: F) -> F:
        for name, default, text in CATALOG_LIMIT_OPTIONS:
            command = click.option(
                f"--{prefix}{name}",
                name.replace("-", "_"),
                type=click.IntRange(min=1),
                default=default,
                show_default=True,
                help=text,
            )(command)
        return command

    return decorate


def _catalog_limits(search_cpu_ms: int, export_cpu_ms: int, mesh_exports: int) -> Any:
    from dataproduct_operator.catalog.limits import CatalogLimits

    return CatalogLimits(
        search_cpu_seconds=search_cpu_ms / 1000,
        export_cpu_seconds=export_cpu_ms / 1000,
        mesh_exports_at_once=mesh_exports,
    )


def _auth_option(flag: str, help_text: str) -> Callable[[F], F]:
    return click.option(
        flag,
        type=click.Choice(["none", "kubernetes"]),
        default="none",
        show_default=True,
        help=help_text,
    )


def _auth_ttl_option(flag: str, default: float, review: str, stale: str) -> Callable[[F], F]:
    return click.option(
        flag,
        type=click.FloatRange(min=0, max=600),
        default=default,
        show_default=True,
        help=f"--auth kubernetes: seconds a {review}'s answer is kept ({stale}).",
    )


def _placement_checked(
    node_selector: tuple[str, ...], tolerations: tuple[str, ...], runner_image: str = ""
) -> Any:
    """The option's values as given, once they parse; else click's error with the reason."""
    from dataproduct_operator.specs.placement import pod_placement

    try:
        pod_placement(node_selector, tolerations, runner_image)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return node_selector or tolerations or runner_image


def _openlineage_checked(check: Callable[[str], str], value: str | None) -> str | None:
    """The option's value once the operator would accept it; else click's error with why."""
    from dataproduct_operator.openlineage.endpoint import OpenLineageSettingError

    if value is None:
        return None
    try:
        check(value)
    except OpenLineageSettingError as error:
        raise click.BadParameter(str(error)) from None
    return value


def _openlineage_url(value: str | None) -> str | None:
    from dataproduct_operator.openlineage.endpoint import check_url

    return _openlineage_checked(check_url, value or None)


def _openlineage_namespace(value: str) -> str:
    from dataproduct_operator.openlineage.endpoint import check_namespace

    return _openlineage_checked(check_namespace, value) or value


def _openlineage_namespace_option(help_text: str) -> Callable[[F], F]:
    return click.option(
        "--openlineage-namespace",
        default="dataproduct-operator",
        show_default=True,
        callback=lambda _c, _p, value: _openlineage_namespace(value),
        help=help_text,
    )


_SHOW_DOMAIN_PRODUCTS = click.option(
    "--show-domain-products",
    is_flag=True,
    help="Catalog: show products with discoverability Domain on their domain's page "
    "(never in the mesh-wide index, search or lineage).",
)


@cluster.command("up")
@_DIR_OPTION
@click.option(
    "--timeout",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds to wait for each component to become ready.",
)
@_NODE_OPTION
def cluster_up(directory: Path, timeout: float, node_mode: str) -> None:
    """Start a control plane and PostgreSQL, and a real node when it can run here; return
    when they are ready. Writes DIR/kubeconfig, and PostgreSQL's admin connection in
    DIR/postgres/admin.json."""
    with _local_cluster("cluster up"):
        from dataproduct_operator.cluster import controlplane
        from dataproduct_operator.cluster.node import NodeMode

    info = controlplane.up(directory, timeout=timeout, node_mode=NodeMode(node_mode))
    click.echo(f"  kubeconfig: {directory / 'kubeconfig'}", err=True)
    click.echo(f"  try: kubectl --kubeconfig {directory / 'kubeconfig'} get nodes", err=True)
    database = info.postgres
    click.echo(
        f"  postgres: {database.username}@{database.host}:{database.port}/{database.database} "
        f"(password in {directory / 'postgres' / 'admin.json'}, log in "
        f"{directory / 'logs' / 'postgres.log'})",
        err=True,
    )
    if database.pod_host:
        click.echo(
            f"  the real node's pods reach it at {database.pod_host}:{database.port} "
            "(the DataStore's host)",
            err=True,
        )
    click.echo(f"  stop: dpo cluster down --dir {directory}", err=True)


@cluster.command("down")
@_DIR_OPTION
def cluster_down(directory: Path) -> None:
    """Stop every process that `dpo cluster up --dir DIR` started."""
    with _local_cluster("cluster down"):
        from dataproduct_operator.cluster import controlplane

    controlplane.down(directory)


@cluster.command("status")
@_DIR_OPTION
def cluster_status(directory: Path) -> None:
    """Print the running components of DIR as JSON; exit 1 when none runs."""
    with _local_cluster("cluster status"):
        from dataproduct_operator.cluster import controlplane

    running = controlplane.running_components(directory)
    click.echo(json.dumps([{"name": p.name, "pid": p.pid} for p in running], indent=2))
    if not running:
        sys.exit(1)


@main.command("run")
@_KUBECONFIG_OPTION
@_CONTEXT_OPTION
@click.option(
    "--namespace", "-n", "namespaces", multiple=True, help="Watch only this namespace (repeatable)."
)
@click.option("--all-namespaces", "-A", is_flag=True, help="Watch every namespace (the default).")
@click.option(
    "--metrics-port",
    type=int,
    default=8000,
    show_default=True,
    help="Prometheus metrics port; 0 disables.",
)
@click.option(
    "--liveness-port",
    type=int,
    default=8080,
    show_default=True,
    help="Liveness probe port (/healthz); 0 disables.",
)
@click.option(
    "--drift-interval",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds between drift checks of each product.",
)
@click.option(
    "--concurrent-reconciles",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Products converged at once.",
)
@click.option(
    "--admission-policy-slots",
    type=click.IntRange(min=1, max=MAX_ADMISSION_SLOTS),
    default=DEFAULT_ADMISSION_SLOTS,
    show_default=True,
    help="MeshPolicies enforced at admission at once: the pool of admission-policy names "
    f"{ADMISSION_SLOT_PREFIX}000 and on that the operator's ClusterRole grants (the chart's "
    "policies.maxEnforced).",
)
@click.option(
    "--pipeline-node-selector",
    "pipeline_node_selector",
    multiple=True,
    metavar="KEY=VALUE",
    callback=lambda _c, _p, value: _placement_checked(value, ()),
    help="A label every pipeline pod's node must carry (repeatable; the chart's "
    "pipelines.nodeSelector), e.g. node-pool=data.",
)
@click.option(
    "--pipeline-toleration",
    "pipeline_tolerations",
    multiple=True,
    metavar="KEY[=VALUE][:EFFECT]",
    callback=lambda _c, _p, value: _placement_checked((), value),
    help="A taint every pipeline pod tolerates (repeatable; the chart's "
    "pipelines.tolerations), e.g. node-pool=data:NoSchedule; without VALUE any value, "
    "without EFFECT any effect.",
)
@click.option(
    "--runner-image",
    default="",
    metavar="IMAGE",
    callback=lambda _c, _p, value: _placement_checked((), (), value),
    help="The image sql pipelines run (the built-in runner; the chart's runner.image). "
    "Default: the project's runner image of this version.",
)
@click.option(
    "--catalog-port",
    type=click.IntRange(min=0, max=65535),
    default=0,
    show_default=True,
    help="Serve the catalog (web pages and JSON API) on this port; 0 disables.",
)
@click.option(
    "--catalog-host",
    default="0.0.0.0",  # noqa: S104 - in a pod the Service reaches every address
    show_default=True,
    help="Address the catalog listens on.",
)
@_SHOW_DOMAIN_PRODUCTS
@_public_url_option("--catalog-public-url")
@_catalog_limit_options("catalog-")
@_auth_option(
    "--catalog-auth",
    "As `dpo catalog --auth` (with its default TTLs); with kubernetes the operator's identity "
    "needs create on tokenreviews and subjectaccessreviews.",
)
@click.option(
    "--leader-election/--no-leader-election",
    default=True,
    show_default=True,
    help="Reconcile only while holding the leader Lease, so replicas can run side by side.",
)
@click.option(
    "--leader-election-namespace",
    default=None,
    help="Namespace of the leader Lease (default: the pod's namespace, else $POD_NAMESPACE, "
    "else default).",
)
@click.option(
    "--lease-name",
    default="dataproduct-operator",
    show_default=True,
    help="Name of the leader Lease; replicas that share it share the work.",
)
@click.option(
    "--leader-election-identity",
    default=None,
    help="Who holds the Lease (default: $POD_NAME, else <hostname>_<random>). The same "
    "identity takes its Lease back at once after a restart: never give two live processes one.",
)
@click.option(
    "--openlineage-url",
    default=None,
    metavar="URL",
    callback=lambda _c, _p, value: _openlineage_url(value),
    help="Send an OpenLineage run event (START, then COMPLETE or FAIL) for every pipeline run "
    "to this http(s) URL, e.g. http://marquez:5000 (a URL without a path posts to "
    "/api/v1/lineage; the chart's openlineage.url). Default: none are sent.",
)
@_openlineage_namespace_option(
    "The OpenLineage namespace of the operator's jobs (<namespace>/<product>/<pipeline>), "
    "e.g. the cluster's name; the catalog's OpenLineage export names the jobs in it too."
)
@click.option(
    "--openlineage-include-hidden",
    is_flag=True,
    help="Also report the runs of products whose discoverability is Hidden (by default their "
    "names never leave the cluster).",
)
@click.option(
    "--access-expiry-notice",
    default=DEFAULT_EXPIRY_NOTICE,
    show_default=True,
    metavar="DURATION",
    callback=lambda _c, _p, value: _grant_seconds(value, "--access-expiry-notice"),
    help="How long before it expires an active access request turns ExpiringSoon, with an "
    "Event: minutes, hours or days (12h, 3d); the chart's accessRequests.expiryNotice.",
)
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
def run(
    kubeconfig: Path | None,
    context: str | None,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    metrics_port: int,
    liveness_port: int,
    drift_interval: float,
    concurrent_reconciles: int,
    admission_policy_slots: int,
    pipeline_node_selector: tuple[str, ...],
    pipeline_tolerations: tuple[str, ...],
    runner_image: str,
    catalog_port: int,
    catalog_host: str,
    show_domain_products: bool,
    public_url: str | None,
    search_cpu_ms: int,
    export_cpu_ms: int,
    mesh_exports: int,
    catalog_auth: Literal["none", "kubernetes"],
    leader_election: bool,
    leader_election_namespace: str | None,
    lease_name: str,
    leader_election_identity: str | None,
    openlineage_url: str | None,
    openlineage_namespace: str,
    openlineage_include_hidden: bool,
    access_expiry_notice: int,
    verbose: bool,
) -> None:
    """Run the operator against the current cluster until interrupted."""
    import asyncio

    from dataproduct_operator.config import OperatorConfig
    from dataproduct_operator.handlers.operator import configure_logging, run_operator
    from dataproduct_operator.specs.placement import pod_placement

    if namespaces and all_namespaces:
        raise UserError("Use either --namespace or --all-namespaces, not both")
    configure_logging(verbose=verbose)
    config = OperatorConfig(
        kubeconfig=kubeconfig,
        context=context,
        namespaces=namespaces,
        metrics_port=metrics_port or None,
        liveness_port=liveness_port or None,
        drift_interval_seconds=drift_interval,
        concurrent_reconciles=concurrent_reconciles,
        admission_policy_slots=admission_policy_slots,
        pipeline_placement=pod_placement(
            pipeline_node_selector, pipeline_tolerations, runner_image
        ),
        catalog_port=catalog_port or None,
        catalog_host=catalog_host,
        catalog_show_domain_products=show_domain_products,
        catalog_public_url=public_url,
        catalog_limits=_catalog_limits(search_cpu_ms, export_cpu_ms, mesh_exports),
        catalog_auth=catalog_auth,
        leader_election=leader_election,
        leader_election_namespace=leader_election_namespace,
        lease_name=lease_name,
        lease_identity=leader_election_identity,
        openlineage_url=openlineage_url,
        openlineage_namespace=openlineage_namespace,
        openlineage_include_hidden=openlineage_include_hidden,
        access_expiry_notice_seconds=access_expiry_notice,
    )
    asyncio.run(run_operator(config))


@main.command("catalog")
@_KUBECONFIG_OPTION
@_CONTEXT_OPTION
@click.option(
    "--namespace", "-n", "namespaces", multiple=True, help="Show only this namespace (repeatable)."
)
@click.option(
    "--port",
    type=click.IntRange(min=1, max=65535),
    default=8090,
    show_default=True,
    help="Port to serve on.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 for every address, as in a pod).",
)
@_SHOW_DOMAIN_PRODUCTS
@_public_url_option("--public-url")
@_openlineage_namespace_option(
    "The OpenLineage namespace the operator's run events name the jobs in (its "
    "--openlineage-namespace): the OpenLineage export names them alike, so a lineage backend "
    "joins the two."
)
@_catalog_limit_options("")
@_auth_option(
    "--auth",
    "none: anyone who reaches the port sees what --show-domain-products allows (local use, or "
    "behind a proxy that checks). kubernetes: every request but /healthz needs "
    "'Authorization: Bearer <token>' the API server accepts (TokenReview), and shows only the "
    "products of namespaces where that user may list dataproducts (SubjectAccessReview).",
)
@click.option(
    "--auth-audience",
    "auth_audiences",
    multiple=True,
    help="--auth kubernetes: accept only tokens meant for this audience (repeatable); default: "
    "the API server's own audiences.",
)
@_auth_ttl_option(
    "--auth-token-ttl", 60.0, "TokenReview", "a revoked token works this much longer at most"
)
@_auth_ttl_option(
    "--auth-access-ttl", 30.0, "SubjectAccessReview", "a changed RoleBinding shows this much later"
)
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
def catalog(
    kubeconfig: Path | None,
    context: str | None,
    namespaces: tuple[str, ...],
    port: int,
    host: str,
    show_domain_products: bool,
    public_url: str | None,
    openlineage_namespace: str,
    search_cpu_ms: int,
    export_cpu_ms: int,
    mesh_exports: int,
    auth: Literal["none", "kubernetes"],
    auth_audiences: tuple[str, ...],
    auth_token_ttl: float,
    auth_access_ttl: float,
    verbose: bool,
) -> None:
    """Serve the data product catalog alone, against the current cluster, until interrupted.

    Pages, JSON API (/api/v1/, described at /api/v1/openapi.json), lineage and exports; read
    from watches of DataProducts and DataDomains, never one API call per page view.
    """
    import asyncio
    import logging

    from dataproduct_operator.catalog.auth import AuthMode, AuthSettings
    from dataproduct_operator.catalog.model import Visibility
    from dataproduct_operator.catalog.serve import serve_forever

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(
        serve_forever(
            kubeconfig=kubeconfig,
            context=context,
            namespaces=namespaces,
            host=host,
            port=port,
            visibility=Visibility(show_domain_products=show_domain_products),
            public_url=public_url,
            limits=_catalog_limits(search_cpu_ms, export_cpu_ms, mesh_exports),
            auth=AuthMode(auth),
            auth_settings=AuthSettings(
                audiences=auth_audiences,
                token_ttl_seconds=auth_token_ttl,
                access_ttl_seconds=auth_access_ttl,
            ),
            lineage_namespace=openlineage_namespace,
        )
    )


@main.command("dev")
@_DIR_OPTION
@click.option(
    "--examples",
    type=click.Path(exists=True, path_type=Path),
    default=Path("examples"),
    show_default=True,
    help="Manifest file or directory to apply (Namespaces and DataProducts).",
)
@click.option(
    "--metrics-port",
    type=int,
    default=8000,
    show_default=True,
    help="The operator's Prometheus metrics port; 0 disables.",
)
@click.option(
    "--catalog-port",
    type=click.IntRange(min=0, max=65535),
    default=8090,
    show_default=True,
    help="Port of the catalog served by the operator (on 127.0.0.1); 0 disables.",
)
@click.option(
    "--prometheus-port",
    type=click.IntRange(min=0, max=65535),
    default=9090,
    show_default=True,
    help="Port of the local Prometheus (on 127.0.0.1) that scrapes the operator and evaluates "
    "every product's alert rules; 0 (or --metrics-port 0) disables.",
)
@click.option(
    "--ready-timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds to wait for every product to become Ready before saying which are not.",
)
@click.option(
    "--drift-interval",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds between the operator's drift checks of each product.",
)
@_NODE_OPTION
def dev(
    directory: Path,
    examples: Path,
    metrics_port: int,
    catalog_port: int,
    prometheus_port: int,
    ready_timeout: float,
    drift_interval: float,
    node_mode: str,
) -> None:
    """Run the operator with the examples on a local control plane until Ctrl-C.

    Starts a control plane in DIR, installs the CRDs, starts the operator (as cluster admin),
    applies EXAMPLES and reports each product as it becomes Ready. Ctrl-C stops it all.
    """
    with _local_cluster("dev"):
        from dataproduct_operator.cluster.dev import DevSettings, run_dev
        from dataproduct_operator.cluster.node import NodeMode

    run_dev(
        DevSettings(
            directory=directory,
            examples=examples,
            metrics_port=metrics_port,
            catalog_port=catalog_port,
            prometheus_port=prometheus_port,
            ready_timeout=ready_timeout,
            drift_interval=drift_interval,
            node_mode=NodeMode(node_mode),
        )
    )


@main.group(cls=_Group)
def pipeline() -> None:
    """What runs inside a pipeline's pod."""


@pipeline.command("run")
def pipeline_run() -> None:
    """Run the SQL pipeline described by DPO_RUN_SPEC (JSON) with the logins in the environment
    (libpq's PG* variables; each source's under its envPrefix): read the sources, stage, check,
    publish; the run report goes to DPO_REPORT_PATH (default /dev/termination-log) and the last
    stdout line. Exits 0 when published, 1 when the run failed, 2 for a bad spec."""
    import os

    try:
        from dataproduct_operator.runner.engine import run_from_environment
    except ImportError as error:  # duckdb: the runner image and the dev virtualenv have it
        raise UserError(
            f"The SQL runner needs {error.name}: install the runner extra "
            "(requirements/runner.lock)"
        ) from None
    sys.exit(run_from_environment(os.environ, sys.stdout))


@main.command("render")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--namespace",
    "-n",
    default="default",
    show_default=True,
    help="Namespace for products that name none.",
)
def render(file: Path, namespace: str) -> None:
    """Print the children the operator would create for the DataProducts in FILE (no cluster)."""
    from dataproduct_operator.specs.stream import render_file

    click.echo(render_file(file, default_namespace=namespace), nl=False)


@main.command("export")
@click.option(
    "--format",
    "-f",
    "format_name",
    required=True,
    help="odps, odcs, backstage or openlineage.",
)
@click.argument(
    "manifest", required=False, type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
@click.option("--namespace", "-n", default=None, help="Namespace of the product in the cluster.")
@click.option("--name", default=None, help="Name of the product in the cluster.")
@click.option(
    "--port",
    "port_name",
    default=None,
    help="odcs only: the contract of this output port alone, as one YAML document (what "
    "datacontract-cli reads: `datacontract lint` and `datacontract test` refuse a stream); "
    "needs exactly one product.",
)
@_KUBECONFIG_OPTION
@_CONTEXT_OPTION
@click.option(
    "--catalog-url", default=None, help="The catalog's base URL, for links to the product's page."
)
@_openlineage_namespace_option(
    "openlineage only: the OpenLineage namespace the operator's run events name the jobs in "
    "(its --openlineage-namespace), so a lineage backend joins them to this export."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
def export(
    format_name: str,
    manifest: Path | None,
    namespace: str | None,
    name: str | None,
    port_name: str | None,
    kubeconfig: Path | None,
    context: str | None,
    catalog_url: str | None,
    openlineage_namespace: str,
    output: Path | None,
) -> None:
    """Export DataProducts to an open standard: from MANIFEST, or from the cluster.

    MANIFEST is a YAML file of DataProducts (DataDomains in it add their details); or give
    --namespace and --name to read the product, and its DataDomain, from the cluster. A store
    port's table is named by the endpoint in the product's status (host, port, database,
    schema, table): export from the cluster once the product is Ready.

    odcs writes one contract per output port, as a YAML stream: datacontract-cli reads one
    contract per file, so for it give --port.
    """
    from datetime import UTC, datetime

    from dataproduct_operator.catalog.exports import export_format
    from dataproduct_operator.catalog.exports.common import endpoints_of

    export_as = export_format(format_name)
    if manifest is not None and (namespace or name or kubeconfig or context):
        raise click.UsageError("Give either MANIFEST or --namespace and --name, not both")
    if manifest is not None:
        from dataproduct_operator.catalog.fetch import read_manifest

        items = read_manifest(manifest)
        upstream = endpoints_of(product for product, _ in items)
    elif namespace and name:
        from dataproduct_operator.catalog.fetch import read_from_cluster, read_upstream_endpoints

        items = [read_from_cluster(namespace, name, kubeconfig=kubeconfig, context=context)]
        upstream = read_upstream_endpoints(items[0][0], kubeconfig=kubeconfig, context=context)
    else:
        raise click.UsageError("Give a MANIFEST, or --namespace and --name of a DataProduct")
    if port_name is not None:
        if len(items) != 1:
            listed = ", ".join(f"{p.namespace}/{p.name}" for p, _ in items)
            raise click.UsageError(
                f"--port needs exactly one DataProduct; MANIFEST holds {len(items)} ({listed}): "
                "give a file with one, or --namespace and --name"
            )
        text = export_as.render_port(items[0][0], port_name)
    else:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        text = export_as.render_many(
            items,
            now,
            catalog_url=catalog_url,
            upstream=upstream,
            lineage_namespace=openlineage_namespace,
        )
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"Wrote {output}", err=True)


@main.group("import", cls=_Group)
def import_group() -> None:
    """Output ports from open standards."""


@import_group.command("odcs")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--product",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A DataProduct manifest: print it with the ports added (or replaced, by name).",
)
def import_odcs(file: Path, product: Path | None) -> None:
    """Print the output ports that the ODCS v3 contracts in FILE describe, as YAML.

    Without --product: items for a DataProduct's spec.outputPorts list.
    """
    import yaml

    from dataproduct_operator.catalog.imports import (
        contracts_from_yaml,
        output_port_from_odcs,
        port_manifest,
        with_port,
    )
    from dataproduct_operator.specs.stream import dump_stream, load_documents, parse_products

    ports = [output_port_from_odcs(c) for c in contracts_from_yaml(file.read_text(), str(file))]
    if product is None:
        manifests = [port_manifest(port) for port in ports]
        click.echo(yaml.safe_dump(manifests, sort_keys=False, allow_unicode=True), nl=False)
        return
    documents = load_documents(product)
    found = [d for d in documents if isinstance(d, dict) and d.get("kind") == "DataProduct"]
    if len(found) != 1:
        raise UserError(f"{product} must hold exactly one DataProduct; it holds {len(found)}")
    document = found[0]
    for port in ports:
        document = with_port(document, port)
    parse_products([document], default_namespace="default")  # the result must still be valid
    click.echo(dump_stream([document]), nl=False)


@main.group(cls=_Group)
def access() -> None:
    """Self-service access to data products: ask with a purpose, owners decide, grants
    expire, everything audited.

    Every command acts as your kubeconfig's user, or as --as (and --as-group) like kubectl;
    every command that writes prints, with -o yaml, the YAML it would apply instead (for
    GitOps), sending nothing but the reads it needs.
    """


def _access_identity_options(command: F) -> F:
    """kubectl's flags for who you are, on every ``dpo access`` command."""
    for option in reversed(
        (
            _KUBECONFIG_OPTION,
            _CONTEXT_OPTION,
            click.option(
                "--as",
                "as_user",
                default=None,
                help="Act as this user (impersonation, as kubectl's --as).",
            ),
            click.option(
                "--as-group",
                "as_groups",
                multiple=True,
                help="Act as a member of this group (repeatable; needs --as).",
            ),
        )
    ):
        command = option(command)
    return command


_ACCESS_OUTPUT_OPTION = click.option(
    "--output",
    "-o",
    "output",
    type=click.Choice(["yaml"]),
    default=None,
    help="Print the YAML this would apply instead of applying it.",
)


def _access_caller(
    kubeconfig: Path | None, context: str | None, as_user: str | None, as_groups: tuple[str, ...]
) -> Any:
    from dataproduct_operator.accesscli.commands import Caller

    return Caller(kubeconfig=kubeconfig, context=context, user=as_user, groups=as_groups)


@access.command("request")
@click.argument("product")
@click.option(
    "--for",
    "subject",
    required=True,
    help="Who is to read: serviceaccount:NAMESPACE/NAME, group:NAME or user:NAME.",
)
@click.option("--purpose", required=True, help="Why the data is needed (1 to 1024 characters).")
@click.option(
    "--port", "ports", multiple=True, help="An output port to read (repeatable); none: every port."
)
@click.option(
    "--duration",
    default=None,
    help="How long the access is to last from its approval (30m, 12h, 30d; 1m to 366d); "
    "default: the product's maximum.",
)
@click.option(
    "--name", default=None, help="Name of the request; default: <product>-<subject>-<random>."
)
@click.option("--renews", default=None, help="The request (same namespace) this one renews.")
@click.option(
    "--namespace",
    "-n",
    default=None,
    help="Where a Group or User subject's request lives (your team's namespace); default: "
    "the kubeconfig's namespace. A ServiceAccount's request lives in its own namespace.",
)
@_ACCESS_OUTPUT_OPTION
@_access_identity_options
def access_request(
    product: str,
    subject: str,
    purpose: str,
    ports: tuple[str, ...],
    duration: str | None,
    name: str | None,
    renews: str | None,
    namespace: str | None,
    output: str | None,
    **identity: Any,
) -> None:
    """Ask for read access to the data product PRODUCT (NAMESPACE/NAME)."""
    from dataproduct_operator.accesscli import commands, documents, printing

    wanted = documents.RequestInput(
        product=documents.parse_ref(product, "a data product"),
        subject=documents.parse_subject(subject),
        purpose=purpose,
        ports=ports,
        duration=duration,
        renews=renews,
    )
    with commands.session(_access_caller(**identity)) as api:
        written = commands.request_access(
            api,
            wanted,
            namespace=namespace,
            name=name,
            suffix=commands.random_suffix(),
            send=output is None,
        )
    _print_written(written, printing)


@access.command("approve")
@click.argument("request")
@click.option("--note", default=None, help="Why; shown to the requester (up to 1024 characters).")
@click.option(
    "--duration", default=None, help="A shorter duration than the request asks (30m, 12h, 30d)."
)
@click.option(
    "--name", default=None, help="Name of the decision; default: <request>-approve-<random>."
)
@click.option(
    "--product",
    default=None,
    help="NAMESPACE/NAME of the product asked for, when you may not read the request: its "
    "status.access.pending names the request's uid.",
)
@_ACCESS_OUTPUT_OPTION
@_access_identity_options
def access_approve(
    request: str,
    note: str | None,
    duration: str | None,
    name: str | None,
    product: str | None,
    output: str | None,
    **identity: Any,
) -> None:
    """Approve the access request REQUEST (NAMESPACE/NAME), as an owner of its product."""
    _access_decide(request, "Approve", note, duration, name, product, output, identity)


@access.command("deny")
@click.argument("request")
@click.option("--note", default=None, help="Why; shown to the requester (up to 1024 characters).")
@click.option(
    "--name", default=None, help="Name of the decision; default: <request>-deny-<random>."
)
@click.option(
    "--product",
    default=None,
    help="NAMESPACE/NAME of the product asked for, when you may not read the request.",
)
@_ACCESS_OUTPUT_OPTION
@_access_identity_options
def access_deny(
    request: str,
    note: str | None,
    name: str | None,
    product: str | None,
    output: str | None,
    **identity: Any,
) -> None:
    """Deny the access request REQUEST (NAMESPACE/NAME), as an owner of its product."""
    _access_decide(request, "Deny", note, None, name, product, output, identity)


def _access_decide(
    request: str,
    verdict: str,
    note: str | None,
    duration: str | None,
    name: str | None,
    product: str | None,
    output: str | None,
    identity: dict[str, Any],
) -> None:
    from dataproduct_operator.accesscli import commands, documents, printing
    from dataproduct_operator.api.accessdecision import Verdict

    decision = documents.DecisionInput(
        request=documents.parse_ref(request, "an access request"),
        verdict=Verdict(verdict),
        note=note,
        duration=duration,
    )
    product_ref = None if product is None else documents.parse_ref(product, "a data product")
    with commands.session(_access_caller(**identity)) as api:
        written = commands.decide(
            api,
            decision,
            product=product_ref,
            name=name,
            suffix=commands.random_suffix(),
            send=output is None,
        )
    _print_written(written, printing)


def _print_written(written: Any, printing: Any) -> None:
    if not written.sent:
        click.echo(printing.to_yaml(written.document), nl=False)
        return
    metadata, spec = written.document["metadata"], written.document["spec"]
    by = spec.get("requestedBy") or spec.get("decidedBy")
    click.echo(f"{written.document['kind']} {metadata['namespace']}/{metadata['name']} created "
               f"(by {by})")  # fmt: skip


@access.command("revoke")
@click.argument("request")
@click.option(
    "--namespace",
    "-n",
    default=None,
    help="The product's namespace, where its decisions live, when you may not read the "
    "request; default: the kubeconfig's namespace.",
)
@_ACCESS_OUTPUT_OPTION
@_access_identity_options
def access_revoke(request: str, namespace: str | None, output: str | None, **identity: Any) -> None:
    """End the access granted to REQUEST (NAMESPACE/NAME): delete the Approve decisions that
    answer it. With -o yaml: print them (delete them from your repository instead)."""
    from dataproduct_operator.accesscli import commands, documents, printing

    ref = documents.parse_ref(request, "an access request")
    with commands.session(_access_caller(**identity)) as api:
        deleted = commands.revoke(api, ref, namespace=namespace, send=output is None)
    _print_deleted(deleted, printing)


@access.command("withdraw")
@click.argument("request")
@_ACCESS_OUTPUT_OPTION
@_access_identity_options
def access_withdraw(request: str, output: str | None, **identity: Any) -> None:
    """Withdraw REQUEST (NAMESPACE/NAME): delete it, ending any access it granted. With
    -o yaml: print it (delete it from your repository instead)."""
    from dataproduct_operator.accesscli import commands, documents, printing

    ref = documents.parse_ref(request, "an access request")
    with commands.session(_access_caller(**identity)) as api:
        deleted = commands.withdraw(api, ref, send=output is None)
    _print_deleted(deleted, printing)


def _print_deleted(deleted: Any, printing: Any) -> None:
    if not deleted.sent:
        click.echo("# Delete these from your repository (nothing was deleted):", err=True)
        for document in deleted.documents:
            click.echo(printing.to_yaml(document), nl=False)
        return
    for document in deleted.documents:
        metadata = document["metadata"]
        click.echo(f"{document['kind']} {metadata['namespace']}/{metadata['name']} deleted")


@access.command("list")
@click.option("--mine", is_flag=True, help="Only the requests you made.")
@click.option(
    "--pending",
    is_flag=True,
    help="The requests waiting for your decision: pending on the products of namespaces "
    "where you may create DataAccessDecisions.",
)
@click.option("--namespace", "-n", default=None, help="Namespace; default: the kubeconfig's.")
@click.option("--all-namespaces", "-A", is_flag=True, help="Every namespace.")
@_access_identity_options
def access_list(
    mine: bool, pending: bool, namespace: str | None, all_namespaces: bool, **identity: Any
) -> None:
    """Access requests in a table (the consumer's side), or with --pending those waiting for
    your decision (the owners' side). --pending without -n looks at every product you may
    list."""
    from dataproduct_operator.accesscli import commands, printing

    if mine and pending:
        raise click.UsageError("Give either --mine or --pending, not both")
    if namespace and all_namespaces:
        raise click.UsageError("Give either --namespace or --all-namespaces, not both")
    with commands.session(_access_caller(**identity)) as api:
        if pending:
            click.echo(printing.pending_table(commands.pending_decisions(api, namespace)))
            return
        where = None if all_namespaces else namespace or api.context_namespace or "default"
        click.echo(printing.requests_table(commands.list_requests(api, where, mine=mine)))


@access.command("history")
@click.argument("product")
@_access_identity_options
def access_history(product: str, **identity: Any) -> None:
    """The audit trail of PRODUCT (NAMESPACE/NAME): who reads it now and why, and every step
    of its access requests (who asked, who decided, when, why, when it ended)."""
    from dataproduct_operator.accesscli import commands, documents, printing

    ref = documents.parse_ref(product, "a data product")
    with commands.session(_access_caller(**identity)) as api:
        click.echo(printing.history_text(commands.read_product(api, ref)))


@main.command("generate")
@click.option("--check", is_flag=True, help="Change nothing; fail if a generated file drifted.")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    show_default=True,
    help="Repository root.",
)
def generate(check: bool, root: Path) -> None:
    """Write the generated files (CRDs, the chart's generated files, docs/api/) from the package."""
    from dataproduct_operator.manifests.generate import drifted_files, write_generated

    if check:
        drifted = drifted_files(root)
        if drifted:
            raise UserError(
                "Generated files are out of date: "
                + ", ".join(drifted)
                + ". Run `make generate` and commit the result."
            )
        click.echo("Generated files are up to date", err=True)
        return
    for relative in write_generated(root):
        click.echo(f"Wrote {relative}", err=True)


@main.group(cls=_Group)
def tools() -> None:
    """The control-plane binaries, built from their Go modules into a cache; source checkouts
    only."""


@tools.command("build")
@click.option("--force", is_flag=True, help="Rebuild even when the cache is current.")
@click.argument("names", nargs=-1)
def tools_build(force: bool, names: tuple[str, ...]) -> None:
    """Build missing or outdated tools (all of them unless NAMES are given)."""
    with _local_cluster("tools build"):
        from dataproduct_operator.cluster import toolchain

    toolchain.build_tools(names or toolchain.ALL_TOOLS, force=force)


@tools.command("dir")
def tools_dir() -> None:
    """Print the directory the binaries are taken from."""
    with _local_cluster("tools dir"):
        from dataproduct_operator.cluster import toolchain

    click.echo(toolchain.binary_source().directory)


@main.group(cls=_Group)
def images() -> None:
    """Container images (pause, toolbox, runner, operator) built without a registry into a
    cache, as `docker save` archives for the local node; source checkouts only."""


@images.command("build")
@click.argument("names", nargs=-1)
def images_build(names: tuple[str, ...]) -> None:
    """Build the images whose archives are missing or outdated (all of them unless NAMES are
    given); runner and operator need root (debootstrap)."""
    with _local_cluster("images build"):
        from dataproduct_operator.cluster import images as local_images

    local_images.build_images(names or local_images.ALL_IMAGES, out=sys.stderr)


@images.command("list")
def images_list() -> None:
    """Each image's ref, archive and whether the archive is current."""
    with _local_cluster("images list"):
        from dataproduct_operator.cluster import images as local_images

    for status in local_images.list_images():
        state = "current" if status.current else ("outdated" if status.image_id else "missing")
        click.echo(f"{status.spec.ref}\t{state}\t{status.spec.archive}\t{status.image_id or '-'}")
