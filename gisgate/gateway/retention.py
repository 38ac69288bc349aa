"""Retention of `archive/`: the only deletion gisgate ever makes."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("gisgate.retention")


def prune(archive: Path, keep_days: float | None, max_bytes: int | None, now: float | None = None) -> list[Path]:
    """Delete archived inputs older than `keep_days` (by their `<date>` folder), then the oldest ones
    until the archive holds at most `max_bytes`. The only deletion gisgate ever makes."""
    if not archive.is_dir() or (keep_days is None and max_bytes is None):
        return []
    now = time.time() if now is None else now
    dated = []  # (date folder's day start, file)
    for day in archive.glob("*/*"):
        try:
            start = datetime.strptime(day.name, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue  # not ours
        dated += [(start, f) for f in day.iterdir() if f.is_file()]
    dated.sort()
    removed = []
    if keep_days is not None:
        limit = now - keep_days * 86400 - 86400  # a day folder is old once its whole day is
        while dated and dated[0][0] < limit:
            removed.append(dated.pop(0)[1])
    if max_bytes is not None:
        sizes = [f.stat().st_size for _, f in dated]
        total = sum(sizes)
        i = 0
        while total > max_bytes and i < len(dated):
            removed.append(dated[i][1])
            total -= sizes[i]
            i += 1
    for f in removed:
        f.unlink(missing_ok=True)
    for day in archive.glob("*/*"):
        if day.is_dir() and not any(day.iterdir()):
            day.rmdir()
    if removed:
        log.info("archive retention: removed %d file(s)", len(removed))
    return removed
