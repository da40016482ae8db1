"""Run pytest on two sets of test tiers side by side, each with its own control plane (``make
test``): the first set's output live on the terminal, the second's in a log printed whole
once both are done, so the two never interleave. Exits with the first non-zero status.

Ctrl-C reaches both runs (they share the terminal's process group) and each stops its control
plane as usual; this waits for both before it returns.

    python -m tests.tiers --live "tests/unit tests/integration" --beside tests/faults -- -x
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def pytest_command(paths: str, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", *paths.split(), *extra]


def run(live: str, beside: str, extra: list[str], log: Path) -> int:
    started = time.monotonic()
    print(f"Running {beside} beside {live}: its output goes to {log}, shown at the end", flush=True)
    with log.open("wb") as output:
        background = subprocess.Popen(
            pytest_command(beside, extra), stdout=output, stderr=subprocess.STDOUT
        )
        try:
            foreground = subprocess.call(pytest_command(live, extra))
            live_seconds = time.monotonic() - started
            beside_status = background.wait()
        except KeyboardInterrupt:
            background.wait()  # it got the Ctrl-C too, and is stopping its control plane
            raise
    total = time.monotonic() - started
    print(f"\n{'=' * 30} {beside} (ran beside {live}) {'=' * 30}", flush=True)
    sys.stdout.buffer.write(log.read_bytes())
    print(
        f"\n{live}: exit {foreground} after {live_seconds / 60:.1f} min; "
        f"{beside}: exit {beside_status}; {total / 60:.1f} min in all",
        flush=True,
    )
    return foreground or beside_status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--live", required=True, help="test paths whose output is shown live")
    parser.add_argument("--beside", required=True, help="test paths run meanwhile, shown after")
    parser.add_argument("--log", type=Path, default=None, help="where the second run's output goes")
    parser.add_argument("pytest_args", nargs="*", help="passed to both runs (after --)")
    args = parser.parse_args(argv)
    if args.log is None:
        handle, name = tempfile.mkstemp(prefix=f"dpo-{Path(args.beside).name}-", suffix=".log")
        os.close(handle)
        args.log = Path(name)
    log: Path = args.log
    try:
        return run(args.live, args.beside, args.pytest_args, log)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
