"""Capped exponential backoff per object (layer ``runtime``).

An object that keeps failing is retried after ``base``, ``2 base``, ``4 base``, ... seconds, never
more than ``cap``; a pass without failure forgets its count. Transient failures (the API server
away, throttling) start small and stay below a short cap, so that everything converges within
seconds once the cause is gone; failures about the object itself start at a few seconds and grow
to the drift interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K")


@dataclass(frozen=True)
class BackoffPolicy:
    base: float
    cap: float

    def delay(self, attempt: int) -> float:
        """The delay before retry number ``attempt`` (0 for the first)."""
        return float(min(self.cap, self.base * 2 ** min(attempt, 32)))


@dataclass
class Backoff(Generic[K]):
    """Attempts per key, turned into delays by a policy."""

    _attempts: dict[K, int] = field(default_factory=dict)

    def next_delay(self, key: K, policy: BackoffPolicy, *, at_least: float = 0.0) -> float:
        attempt = self._attempts.get(key, 0)
        self._attempts[key] = attempt + 1
        return max(policy.delay(attempt), at_least)

    def attempts(self, key: K) -> int:
        return self._attempts.get(key, 0)

    def forget(self, key: K) -> None:
        self._attempts.pop(key, None)
