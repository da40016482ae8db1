"""The ``dpo`` command line (layer ``cli``: argument parsing and error presentation only).

A :class:`~dataproduct_operator.errors.UserError` becomes one message on stderr and a non-zero
exit; Ctrl-C exits 130 after the command has cleaned up after itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dataproduct_operator import __version__
from dataproduct_operator.errors import UserError


class _Group(click.Group):
    """Turns expected failures into a message instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserError as error:
            click.secho(f"Error: {error}", fg="red", err=True)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dpo")
def main() -> None:
    """dataproduct-operator: Data Mesh data products as a Kubernetes API."""


@main.group(cls=_Group)
def cluster() -> None:
    """A local Kubernetes control plane (etcd, kube-apiserver, controllers, kwok)."""


_DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".cluster"),
    show_default=True,
    help="Directory holding the cluster's kubeconfig, logs, certificates and data.",
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
def cluster_up(directory: Path, timeout: float) -> None:
    """Start a control plane; return when it is ready. Writes DIR/kubeconfig."""
    from dataproduct_operator.cluster import controlplane

    controlplane.up(directory, timeout=timeout)
    click.echo(f"  kubeconfig: {directory / 'kubeconfig'}", err=True)
    click.echo(f"  try: kubectl --kubeconfig {directory / 'kubeconfig'} get nodes", err=True)
    click.echo(f"  stop: dpo cluster down --dir {directory}", err=True)


@cluster.command("down")
@_DIR_OPTION
def cluster_down(directory: Path) -> None:
    """Stop every process that `dpo cluster up --dir DIR` started."""
    from dataproduct_operator.cluster import controlplane

    controlplane.down(directory)


@cluster.command("status")
@_DIR_OPTION
def cluster_status(directory: Path) -> None:
    """Print the running components of DIR as JSON; exit 1 when none runs."""
    from dataproduct_operator.cluster import controlplane

    running = controlplane.running_components(directory)
    click.echo(json.dumps([{"name": p.name, "pid": p.pid} for p in running], indent=2))
    if not running:
        sys.exit(1)


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
    """Write the generated files (CRDs, chart CRDs, RBAC, values schema) from the package."""
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
    """The control-plane binaries, built from their Go modules into a cache."""


@tools.command("build")
@click.option("--force", is_flag=True, help="Rebuild even when the cache is current.")
@click.argument("names", nargs=-1)
def tools_build(force: bool, names: tuple[str, ...]) -> None:
    """Build missing or outdated tools (all of them unless NAMES are given)."""
    from dataproduct_operator.cluster import toolchain

    toolchain.build_tools(names or toolchain.ALL_TOOLS, force=force)


@tools.command("dir")
def tools_dir() -> None:
    """Print the directory the binaries are taken from."""
    from dataproduct_operator.cluster import toolchain

    click.echo(toolchain.binary_source().directory)
