"""The benchmarks' reports: a table on stdout and the latest run in ``docs/benchmarks.md``.

The mesh benchmark (``make bench``) and the catalog's (``make bench-catalog``) each own a
section of the page between markers of their own, so neither run overwrites the other's.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# (key, what it is, goal on the 2-core machine or "")
ROWS = (
    ("n", "products", ""),
    ("children_per_product", "children per product (and Retain volume patches)", ""),
    ("t_raw_create_s", "baseline: create every object directly (s)", ""),
    ("t_raw_s", "baseline: ... and every claim Bound, T_raw (s)", ""),
    ("t_op_s", "operator: create products until all Ready, T_op (s)", ""),
    ("ratio", "T_op / T_raw", "≤ 1.5 at N = 1000"),
    ("w_raw", "baseline writes", ""),
    ("w_op", "operator writes to Ready", ""),
    ("writes_per_product", "operator writes per product", "≤ children + 3"),
    ("reads_per_product", "operator reads per product", ""),
    ("idle_writes", "operator writes while idle", "0"),
    ("idle_seconds", "idle phase (s)", ""),
    ("restart_writes", "operator writes after a restart", "0"),
    ("restart_idle_s", "restart: time until idle (s)", ""),
    ("update_s", "update storm: time to converge (s)", ""),
    ("update_writes_per_product", "update storm: writes per product", ""),
    ("p50_ready_s", "single product create->Ready p50 (s)", "≤ 1"),
    ("p95_ready_s", "single product create->Ready p95 (s)", ""),
    ("rss_mib", "operator RSS after N Ready (MiB)", "≤ 200 at N = 1000"),
    ("peak_rss_mib", "operator peak RSS (MiB)", ""),
    ("grow_to", "memory growth: products at the end", ""),
    ("rss_at_grow_to_mib", "operator RSS at that count (MiB)", ""),
    ("rss_growth_kib_per_product", "RSS growth per product (KiB)", "≤ 40 from 1000 to 3000"),
)
START = "<!-- latest-run:start (written by `make bench`) -->"
END = "<!-- latest-run:end -->"

Row = tuple[str, str, str]

# The catalog's figures (``make bench-catalog``); its routes get a table of their own.
CATALOG_ROWS: tuple[Row, ...] = (
    ("n", "products", ""),
    ("listed", "products listed in the mesh (Public)", ""),
    ("lineage_nodes", "lineage graph: nodes", ""),
    ("lineage_edges", "lineage graph: edges", ""),
    ("t_create_s", "products and ConfigMaps created (s)", ""),
    ("t_listening_s", "catalog: start to first HTTP answer (s)", ""),
    ("t_synced_s", "catalog: start to /healthz 200, mesh listed (s)", ""),
    ("sync_reads", "catalog: API requests to list and watch", ""),
    ("rss_synced_mib", "catalog RSS once listed (MiB)", ""),
    ("rss_after_views_mib", "catalog RSS after the page views (MiB)", ""),
    ("peak_rss_mib", "catalog peak RSS (MiB)", ""),
    ("views", "page views (sequential)", ""),
    ("views_s", "page views: duration (s)", ""),
    ("view_reads", "catalog reads from the API server during the views", "0"),
    ("view_writes", "catalog writes to the API server during the views", "0"),
    (
        "export_backstage_s",
        "the whole mesh as Backstage entities, /api/v1/export/backstage (s)",
        "",
    ),
    ("export_backstage_bytes", "... its size (bytes)", ""),
    ("export_backstage_page_max_ms", "... a product page meanwhile, max (ms)", ""),
    ("export_odps_s", "the whole mesh as ODPS, /api/v1/export/odps (s)", ""),
    ("export_odps_page_max_ms", "... a product page meanwhile, max (ms)", ""),
    ("freshness_p50_s", "description patched -> shown by the API, p50 (s)", ""),
    ("freshness_max_s", "description patched -> shown by the API, max (s)", ""),
    ("hostile_ready_p50_s", "operator + catalog, quiet: product create -> Ready, p50 (s)", ""),
    (
        "hostile_attack_ready_p50_s",
        "... under 50 concurrent 8 KB searches and 20 whole-mesh exports, p50 (s)",
        "<= 1",
    ),
    ("hostile_attack_ready_max_s", "... under attack, max (s)", ""),
    ("hostile_searches", "... searches answered during it (400, 200)", ""),
    ("hostile_exports", "... whole-mesh exports answered (200, 429 with Retry-After)", ""),
    ("hostile_peak_rss_mib", "... the operator's peak RSS (MiB)", "<= 256 (chart limit)"),
    ("grow_to", "memory growth: products at the end", ""),
    ("rss_at_grow_to_mib", "catalog RSS at that count (MiB)", ""),
    ("rss_growth_kib_per_product", "RSS growth per product (KiB)", ""),
)
CATALOG_START = "<!-- catalog-run:start (written by `make bench-catalog`) -->"
CATALOG_END = "<!-- catalog-run:end -->"
ROUTE_COLUMNS = (
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
    ("max_ms", "max ms"),
    ("bytes", "bytes"),
)


def _shown(value: Any) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def render_table(figures: dict[str, Any], rows: tuple[Row, ...] = ROWS) -> str:
    width = max(len(what) for _, what, _ in rows)
    lines = [f"{'figure':<{width}}  {'value':>14}  goal", "-" * (width + 30)]
    for key, what, goal in rows:
        if key in figures:
            lines.append(f"{what:<{width}}  {_shown(figures[key]):>14}  {goal}")
    return "\n".join(lines)


def render_markdown(
    figures: dict[str, Any],
    rows: tuple[Row, ...] = ROWS,
    *,
    markers: tuple[str, str] = (START, END),
    appendix: tuple[str, ...] = (),
) -> str:
    """The section between ``markers``: the run, its command, ``rows`` and each ``appendix``
    (a Markdown block) after the table."""
    machine = figures.get("machine", {})
    lines = [
        markers[0],
        f"Run of {figures.get('date')} at commit `{figures.get('commit')}`, Kubernetes "
        f"{figures.get('kubernetes')}, {machine.get('cpus')} CPUs ({machine.get('cpu_model')}), "
        f"{machine.get('memory_gib')} GiB, Python {machine.get('python')}:",
        "",
        "```console",
        f"$ {figures.get('command')}",
        "```",
        "",
        "| figure | value | goal |",
        "|---|---|---|",
    ]
    for key, what, goal in rows:
        if key in figures:
            lines.append(f"| {what} | {_shown(figures[key])} | {goal} |")
    for block in appendix:
        lines += ["", block]
    lines.append(markers[1])
    return "\n".join(lines)


def render_routes_table(routes: dict[str, dict[str, Any]]) -> str:
    """Latency and size per route: ``routes`` maps a request path to its figures."""
    width = max(len("route"), *(len(path) for path in routes))
    heads = "  ".join(f"{head:>9}" for _, head in ROUTE_COLUMNS)
    lines = [f"{'route':<{width}}  {heads}", "-" * (width + 2 + 11 * len(ROUTE_COLUMNS))]
    for path, figures in routes.items():
        values = "  ".join(f"{_shown(figures.get(key)):>9}" for key, _ in ROUTE_COLUMNS)
        lines.append(f"{path:<{width}}  {values}")
    return "\n".join(lines)


def render_routes_markdown(routes: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| route | " + " | ".join(head for _, head in ROUTE_COLUMNS) + " |",
        "|---|" + "---|" * len(ROUTE_COLUMNS),
    ]
    for path, figures in routes.items():
        values = " | ".join(_shown(figures.get(key)) for key, _ in ROUTE_COLUMNS)
        lines.append(f"| `{path}` | {values} |")
    return "\n".join(lines)


def update_docs(
    path: Path,
    figures: dict[str, Any],
    section: str,
    *,
    markers: tuple[str, str] = (START, END),
    heading: str = "Latest run",
) -> None:
    """Replace what lies between ``markers`` in ``path`` (created if missing; the markers are
    appended under ``heading`` if the page has none); the rest of the page stays."""
    start, end = markers
    text = path.read_text() if path.is_file() else f"# Benchmarks\n\n{start}\n{end}\n"
    if start not in text or end not in text:
        text = text.rstrip("\n") + f"\n\n## {heading}\n\n{start}\n{end}\n"
    before, _, rest = text.partition(start)
    _, _, after = rest.partition(end)
    path.write_text(before + section + after)


def publish(
    figures: dict[str, Any],
    rows: tuple[Row, ...],
    *,
    name: str,
    results_dir: Path,
    docs: Path,
    markers: tuple[str, str],
    heading: str,
) -> Path:
    """Print the table and the JSON line, write ``<results_dir>/<name>-<date>.json`` and the
    section between ``markers`` of ``docs``; the JSON file's path."""
    print(render_table(figures, rows))
    print(json.dumps(figures))
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}-{figures['date'].replace(':', '-')}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    section = render_markdown(figures, rows, markers=markers)
    update_docs(docs, figures, section, markers=markers, heading=heading)
    return path


def run_and_publish(
    args: Any,
    run: Callable[[Any], dict[str, Any]],
    rows: tuple[Row, ...],
    *,
    name: str,
    markers: tuple[str, str],
    heading: str,
) -> int:
    """A benchmark's ``main``: run it (``args.operator_log`` emptied first), time it, and
    :func:`publish` its figures; the exit code."""
    args.operator_log.unlink(missing_ok=True)
    started = time.monotonic()
    figures = run(args)
    figures["duration_s"] = round(time.monotonic() - started, 1)
    path = publish(
        figures,
        rows,
        name=name,
        results_dir=args.results_dir,
        docs=args.docs,
        markers=markers,
        heading=heading,
    )
    print(f"Wrote {path} and {args.docs}", file=sys.stderr, flush=True)
    return 0
