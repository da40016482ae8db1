"""The fault suite's summary: one row per scenario run (scenario, outcome, time to converge,
what was checked), printed at the end of the run and written beside its temporary files.

A test records its row through the ``fault`` fixture (see conftest.py) as it goes, so a
scenario that fails still shows what it had checked before it failed.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field


@dataclass
class FaultRow:
    """What one scenario did: filled in by the test, its outcome by the report hook."""

    scenario: str
    converged_seconds: float | None = None
    checked: list[str] = field(default_factory=list)
    outcome: str = "not run"
    duration_seconds: float = 0.0

    def check(self, what: str) -> None:
        """Record one thing the scenario has verified."""
        self.checked.append(what)

    def converged(self, seconds: float) -> None:
        self.converged_seconds = seconds


def render_table(rows: list[FaultRow], *, width: int = 120) -> str:
    """A plain-text table; the "checked" column wraps within ``width``."""
    headers = ("scenario", "outcome", "converged", "took", "checked")
    cells = [
        (
            row.scenario,
            row.outcome,
            "-" if row.converged_seconds is None else f"{row.converged_seconds:.1f} s",
            f"{row.duration_seconds:.0f} s",
            "; ".join(row.checked) or "-",
        )
        for row in rows
    ]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers[:4])]
    left = sum(widths) + 2 * 4
    checked_width = max(30, width - left)
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, [*widths, 0], strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in [*widths, checked_width]))
    for cell in cells:
        wrapped = textwrap.wrap(cell[4], checked_width) or ["-"]
        fixed = "  ".join(c.ljust(w) for c, w in zip(cell[:4], widths, strict=True))
        lines.append(f"{fixed}  {wrapped[0]}")
        lines.extend(" " * (left) + more for more in wrapped[1:])
    return "\n".join(lines)
