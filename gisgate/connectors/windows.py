"""Which time window a source asks for next, and what the file it lands is called.

A window is [start, end) in whole UTC seconds. The first one begins at the source's `start`; each
later one reaches back `overlap` before the cursor (the end of the last window landed), to catch
records the platform reported late, and is never longer than the API allows (`max_window`) nor
reaches past now. A doubled window is harmless: the stream counts a record once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Window:
    start: int
    end: int

    def iso(self, at: int) -> str:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def label(self) -> str:
        return f"{stamp(self.start)}-{stamp(self.end)}"


def stamp(at: float) -> str:
    """A UTC instant as it appears in file names: 20241103T043000Z."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y%m%dT%H%M%SZ")


def plan(cursor: float | None, now: float, spec) -> Window | None:
    """The next window of a source (`spec`: first_start, overlap, max_window), or None when it is caught up."""
    now_s = math.floor(now)
    if cursor is None:
        start = math.floor(spec.first_start(now))
    else:
        start = math.floor(cursor - spec.overlap)
    end = min(start + math.floor(spec.max_window), now_s)
    if end <= start or (cursor is not None and end <= cursor):
        return None
    return Window(start, end)


def windows(since: float, until: float, max_window: float) -> list[Window]:
    """[since, until) cut into windows no longer than `max_window` (a backfill: no overlap needed)."""
    out, start = [], math.floor(since)
    until = math.ceil(until)
    while start < until:
        end = min(start + math.floor(max_window), until)
        out.append(Window(start, end))
        start = end
    return out
