"""Starting, finding, pausing and stopping component processes by pid (layer ``cluster``).

Components run in their own session, detached from the terminal, so ``dpo cluster up`` can
return while they keep running. They get signals only by the pid recorded at start, and only if
that pid still runs the same executable: a recycled pid never gets a signal from us.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ComponentProcess:
    """A started component: enough to find it again from another process."""

    name: str
    pid: int
    executable: str


def start_process(
    name: str, argv: list[str], log_path: Path, *, environment: Mapping[str, str] | None = None
) -> ComponentProcess:
    """Start a component in a new session with its output appended to its log; return at once.
    ``environment``: variables set for it on top of this process's.

    ``posix_spawn`` rather than ``subprocess.Popen``: the component outlives the handle here
    (``dpo cluster up`` returns while it runs), so no ``Popen`` object is left to complain.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        pid = os.posix_spawn(
            argv[0],
            argv,
            {**os.environ, **(environment or {})},
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
    try:
        executable = str(Path(f"/proc/{component.pid}/exe").readlink())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    if _state(component.pid) in (None, "Z"):  # Z: a zombie
        return False
    return executable.removesuffix(" (deleted)") == str(Path(component.executable).resolve())


def _state(pid: int) -> str | None:
    """The state letter of a process (R, S, T for stopped, Z, ...), or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The state letter follows the parenthesised command name, which may hold any character.
    return stat.rsplit(")", 1)[1].split()[0]


def _signal_running(component: ComponentProcess, signal_number: int) -> None:
    if not is_running(component):
        raise ProcessLookupError(f"{component.name} (pid {component.pid}) is not running")
    os.kill(component.pid, signal_number)


def pause_process(component: ComponentProcess, *, timeout: float = 5.0) -> None:
    """SIGSTOP, returning once the process is stopped: it keeps its memory and its sockets
    open (the kernel still accepts connections for it) but runs no instruction until
    :func:`resume_process`."""
    _signal_running(component, signal.SIGSTOP)
    _wait_state(component, paused=True, timeout=timeout)


def resume_process(component: ComponentProcess, *, timeout: float = 5.0) -> None:
    """SIGCONT, returning once the paused process runs again."""
    _signal_running(component, signal.SIGCONT)
    _wait_state(component, paused=False, timeout=timeout)


def _wait_state(component: ComponentProcess, *, paused: bool, timeout: float) -> None:
    """A signal is delivered a moment after it is sent: wait until it has taken effect."""
    deadline = time.monotonic() + timeout
    while is_paused(component) != paused:
        if time.monotonic() > deadline:
            state = "paused" if paused else "running again"
            raise TimeoutError(f"{component.name} (pid {component.pid}) is not {state}")
        time.sleep(0.01)


def is_paused(component: ComponentProcess) -> bool:
    """True while the process is stopped by a signal."""
    return is_running(component) and _state(component.pid) == "T"


def command_line(component: ComponentProcess) -> list[str]:
    """The argv the running process was started with."""
    if not is_running(component):
        raise ProcessLookupError(f"{component.name} (pid {component.pid}) is not running")
    raw = Path(f"/proc/{component.pid}/cmdline").read_bytes()
    return [argument.decode() for argument in raw.split(b"\0")[:-1]]


def stop_process(
    component: ComponentProcess,
    *,
    grace_seconds: float = 10.0,
    first_signal: signal.Signals = signal.SIGTERM,
) -> bool:
    """``first_signal`` (SIGTERM), then SIGKILL after the grace period. Returns whether it
    was running."""
    if not is_running(component):
        return False
    _terminate(component.pid, lambda: is_running(component), grace_seconds, first_signal)
    return True


def stop_child(
    component: ComponentProcess,
    *,
    grace_seconds: float = 10.0,
    first_signal: signal.Signals = signal.SIGTERM,
) -> bool:
    """Stop a child of this process, whatever it runs now. Returns whether it was running."""
    if child_exit_code(component.pid) is not None:
        return False
    _terminate(
        component.pid, lambda: child_exit_code(component.pid) is None, grace_seconds, first_signal
    )
    return True


def _terminate(
    pid: int, alive: Callable[[], bool], grace_seconds: float, first_signal: signal.Signals
) -> None:
    for signal_number, wait_seconds in ((first_signal, grace_seconds), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_number)
            # A paused process acts on SIGTERM only once it runs again.
            os.kill(pid, signal.SIGCONT)
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
