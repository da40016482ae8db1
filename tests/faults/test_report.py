"""The fault suite's summary table itself (no cluster)."""

from __future__ import annotations

from tests.faults.report import FaultRow, render_table


def test_every_scenario_is_a_row_with_its_outcome_time_and_what_it_checked() -> None:
    done = FaultRow("2. etcd restarted", outcome="passed", duration_seconds=41.2)
    done.converged(12.34)
    done.check("the same operator process")
    done.check("RSS 88 MiB before, peak 94 MiB")
    failed = FaultRow("5. watches blackholed", outcome="failed", duration_seconds=145)

    lines = render_table([done, failed], width=120).splitlines()

    assert lines[0].split() == ["scenario", "outcome", "converged", "took", "checked"]
    assert "2. etcd restarted" in lines[2] and "passed" in lines[2] and "12.3 s" in lines[2]
    assert "41 s" in lines[2]
    assert "the same operator process; RSS 88 MiB before, peak 94 MiB" in lines[2]
    assert lines[3].split() == ["5.", "watches", "blackholed", "failed", "-", "145", "s", "-"]


def test_what_was_checked_wraps_under_its_own_column() -> None:
    row = FaultRow("1. paused", outcome="passed")
    row.checked = [f"check number {i}" for i in range(20)]

    lines = render_table([row], width=80).splitlines()

    indent = lines[2].index("check number 0")
    assert len(lines) > 3
    assert all(len(line) <= 80 for line in lines[2:])
    assert all(line[:indent].strip() == "" for line in lines[3:])
    assert "check number 19" in "\n".join(lines)
