"""Starting, finding and stopping component processes by pid (layer ``cluster``).

Components run in their own session, detached from the terminal, so ``dpo cluster up`` can
return while they keep running. They are stopped only by the pid recorded at start, and only if
that pid still runs the same executable: a recycled pid never gets a signal from us.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType


@dataclass(frozen=True)
class ComponentProcess:
    """A started component: enough to find it again from another process."""

    name: str
    pid: int
    executable: str


def start_process(name: str, argv: list[str], log_path: Path) -> ComponentProcess:
    """Start a component in a new session with its output appended to its log; return at once.

    ``posix_spawn`` rather than ``subprocess.Popen``: the component outlives the handle here
    (``dpo cluster up`` returns while it runs), so no ``Popen`` object is left to complain.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        pid = os.posix_spawn(
            argv[0],
            argv,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(log_fd)
    return ComponentProcess(name, pid, argv[0])


# Exit codes of children reaped here; a pid can be waited for only once.
_exit_codes: dict[int, int] = {}


def child_exit_code(pid: int) -> int | None:
    """The exit code of a child of this process once it has exited, else None.

    Also None for a process that is not our child (started by an earlier ``dpo`` run).
    """
    if pid in _exit_codes:
        return _exit_codes[pid]
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if reaped == 0:
        return None
    _exit_codes[pid] = os.waitstatus_to_exitcode(status)
    return _exit_codes[pid]


def is_running(component: ComponentProcess) -> bool:
    """True while the recorded pid is alive and still runs the recorded executable."""
    if child_exit_code(component.pid) is not None:
        return False
    proc = Path(f"/proc/{component.pid}")
    try:
        stat = (proc / "stat").read_text()
        executable = str((proc / "exe").readlink())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    # The state letter follows the parenthesised command name; Z is a zombie.
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return False
    return executable.removesuffix(" (deleted)") == str(Path(component.executable).resolve())


def stop_process(component: ComponentProcess, *, grace_seconds: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after the grace period. Returns whether it was running."""
    if not is_running(component):
        return False
    _terminate(component.pid, lambda: is_running(component), grace_seconds)
    return True


def stop_child(component: ComponentProcess, *, grace_seconds: float = 10.0) -> bool:
    """Stop a child of this process, whatever it runs now. Returns whether it was running."""
    if child_exit_code(component.pid) is not None:
        return False
    _terminate(component.pid, lambda: child_exit_code(component.pid) is None, grace_seconds)
    return True


def _terminate(pid: int, alive: Callable[[], bool], grace_seconds: float) -> None:
    for signal_number, wait_seconds in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_number)
        deadline = time.monotonic() + wait_seconds
        while alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not alive():
            return


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        with path.open(errors="replace") as log:
            return "".join(deque(log, maxlen=lines)).rstrip()
    except FileNotFoundError:
        return f"(no log at {path})"


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM cleans up like Ctrl-C does: it raises KeyboardInterrupt while inside."""

    def interrupt(_signal: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
