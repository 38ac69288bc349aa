"""Fault injection for the recovery tests: die like `kill -9` at a named point of the gateway."""

from __future__ import annotations

import logging
import os
import signal

CRASH_ENV = "GISGATE_CRASH_AT"  # "after-claim", or "after-claim:3" for the third time

_hits: dict[str, int] = {}


def crashpoint(point: str) -> None:
    """Die like `kill -9` at `point` when GISGATE_CRASH_AT names it (optionally `point:N`, the N-th time)."""
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] >= int(nth or 1):
        for h in logging.getLogger().handlers:
            h.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def nohook(point: str) -> None:
    return None
