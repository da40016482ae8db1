"""Ctrl-C and SIGTERM that are never lost (used by the ``dpo`` commands that start processes).

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when the signal
arrives. If that is a finalizer (an object's ``__del__``, a weakref callback), Python prints
"Exception ignored in ..." and goes on as if nothing happened: a ``dpo cluster up`` interrupted
at that moment would finish starting the cluster and exit 0. So the handler here also records
the interrupt, and long work calls :func:`raise_if_interrupted` between its steps.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class _Record:
    """Whether an interrupt arrived that no command has handled yet."""

    interrupted = False


def _interrupt(_signal: int, _frame: FrameType | None) -> None:
    _Record.interrupted = True
    raise KeyboardInterrupt


def install() -> None:
    """Ctrl-C raises KeyboardInterrupt and is recorded, even when this process inherited SIGINT
    ignored (a background job of a script does): Python then installs no handler of its own."""
    signal.signal(signal.SIGINT, _interrupt)


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if one was asked for and swallowed where it arrived."""
    if _Record.interrupted:
        raise KeyboardInterrupt


def clear() -> None:
    """Forget an interrupt that was handled (the command that saw it has cleaned up)."""
    _Record.interrupted = False


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM cleans up like Ctrl-C does: it raises KeyboardInterrupt while inside."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
