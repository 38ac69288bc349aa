"""When to try a failed call again: exponential backoff with 'equal jitter', the one retry rule of the
gateway's outbox, `gisgate deliver` and the platform sources."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Policy:
    backoff_seconds: float = 2.0
    backoff_max_seconds: float = 900.0
    max_attempts: int = 20
    breaker_failures: int = 5
    breaker_seconds: float = 60.0

    def delay(self, attempts: int, jitter: Callable[[], float] = random.random) -> float:
        """Seconds to wait after `attempts` failed attempts: half fixed, half random (gateways
        retrying together spread out)."""
        d = min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1))
        return d / 2 + jitter() * d / 2
