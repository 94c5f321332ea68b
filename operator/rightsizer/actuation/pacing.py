"""Write pacing: a token bucket that a 429 slows down (the clock and the sleep are given,
so tests drive it without waiting).

``rate`` writes per second on average, at most ``burst`` at once. A rejection (HTTP 429,
which API Priority and Fairness answers too) halves the rate, down to ``min_rate``, and
waits what the server asked (``Retry-After``) or a second; every success afterwards wins
back a little (additive increase, multiplicative decrease), up to the configured rate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

#: Each success raises a slowed-down rate by this fraction of the configured one.
RECOVERY_STEP = 0.05
DEFAULT_RETRY_AFTER_S = 1.0


@dataclass
class TokenBucket:
    rate: float
    burst: float
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    min_rate: float = 1.0
    current_rate: float = 0.0
    tokens: float = 0.0
    updated: float | None = None
    waited_s: float = 0.0
    """Seconds spent waiting for tokens or after rejections (for tests and metrics)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not self.rate > 0 or not self.burst >= 1:
            raise ValueError("the write rate must be positive and the burst at least 1")
        self.current_rate = self.rate
        self.tokens = self.burst
        self.min_rate = min(self.min_rate, self.rate)

    def _refill(self) -> None:
        now = self.clock()
        if self.updated is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.current_rate)
        self.updated = now

    def acquire(self) -> None:
        """Take one token, waiting for it when the bucket is empty."""
        with self._lock:
            self._refill()
            wait = 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.current_rate
            self.tokens -= 1
        if wait > 0:
            self.waited_s += wait
            self.sleep(wait)

    def rejected(self, retry_after_s: float | None) -> None:
        """The server said too many requests: slow down, and wait before the retry."""
        with self._lock:
            self.current_rate = max(self.min_rate, self.current_rate / 2)
            self.tokens = min(self.tokens, 0.0)
        wait = DEFAULT_RETRY_AFTER_S if retry_after_s is None else max(0.0, retry_after_s)
        self.waited_s += wait
        self.sleep(wait)

    def succeeded(self) -> None:
        with self._lock:
            self.current_rate = min(self.rate, self.current_rate + self.rate * RECOVERY_STEP)
