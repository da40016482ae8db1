"""The benchmark's report: a table on stdout and the latest run in ``docs/benchmarks.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# (key, what it is, goal on the 2-core machine or "")
ROWS = (
    ("n", "products", ""),
    ("children_per_product", "children per product", ""),
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


def _shown(value: Any) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def render_table(figures: dict[str, Any]) -> str:
    width = max(len(what) for _, what, _ in ROWS)
    lines = [f"{'figure':<{width}}  {'value':>14}  goal", "-" * (width + 30)]
    for key, what, goal in ROWS:
        if key in figures:
            lines.append(f"{what:<{width}}  {_shown(figures[key]):>14}  {goal}")
    return "\n".join(lines)


def render_markdown(figures: dict[str, Any]) -> str:
    machine = figures.get("machine", {})
    lines = [
        START,
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
    for key, what, goal in ROWS:
        if key in figures:
            lines.append(f"| {what} | {_shown(figures[key])} | {goal} |")
    lines.append(END)
    return "\n".join(lines)


def update_docs(path: Path, figures: dict[str, Any], section: str) -> None:
    """Replace the latest-run section of ``path`` (created if missing)."""
    text = path.read_text() if path.is_file() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n## Latest run\n\n{START}\n{END}\n"
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    path.write_text(before + section + after)
