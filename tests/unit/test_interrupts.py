"""Ctrl-C is never lost, even when it arrives inside a finalizer that swallows it."""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataproduct_operator import interrupts
from dataproduct_operator.cluster.components import Layout
from dataproduct_operator.cluster.controlplane import _Starter, _wait_until


@pytest.fixture
def swallowed(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    """What Python reported as "Exception ignored in ...": raised where nothing can catch it."""
    seen: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda report: seen.append(report.exc_value))
    return seen


@pytest.fixture
def sigint_recorded() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGINT)
    interrupts.install()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupts.clear()


class _InterruptedWhileCollected:
    """An object whose finalizer is running when Ctrl-C arrives."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        # The handler runs at the next bytecode boundary, still inside this finalizer.
        for _ in range(1000):
            pass


@pytest.mark.usefixtures("sigint_recorded")
def test_an_interrupt_swallowed_by_a_finalizer_is_raised_at_the_next_check(
    swallowed: list[BaseException | None],
) -> None:
    interrupts.raise_if_interrupted()  # nothing asked for yet

    _InterruptedWhileCollected()
    gc.collect()

    assert [type(e) for e in swallowed] == [KeyboardInterrupt]
    with pytest.raises(KeyboardInterrupt):
        interrupts.raise_if_interrupted()
    interrupts.clear()
    interrupts.raise_if_interrupted()


@pytest.mark.usefixtures("sigint_recorded")
def test_a_component_wait_stops_at_a_swallowed_interrupt(
    tmp_path: Path, swallowed: list[BaseException | None]
) -> None:
    _InterruptedWhileCollected()
    gc.collect()
    assert swallowed
    waited: list[int] = []

    def never_ready() -> bool:
        waited.append(1)
        return False

    starter = _Starter(Layout(tmp_path), {"components": []})
    with pytest.raises(KeyboardInterrupt):
        _wait_until(starter, never_ready, "something never ready", "etcd", timeout=30)
    assert waited == []


def test_sigterm_is_an_interrupt_only_inside() -> None:
    before = signal.getsignal(signal.SIGTERM)
    try:
        with interrupts.sigterm_as_interrupt(), pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
        assert signal.getsignal(signal.SIGTERM) is before
        with pytest.raises(KeyboardInterrupt):
            interrupts.raise_if_interrupted()
    finally:
        interrupts.clear()
