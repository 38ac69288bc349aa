"""The outbox: staged files per target, in folders that are their delivery state.

    outbox/<target>/pending/          staged (temp write, fsync, rename), waiting for delivery
    outbox/<target>/sending/          handed to the target right now
    outbox/<target>/sent/<date>/      delivered (kept as the record of what went out)
    outbox/<target>/failed/           given up: `<name>.reason.txt` beside each says why

The ledger is the truth about what is due; `delivery.Worker` moves the files between the folders.
"""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from gisgate.durable import atomic_write, fsync_dir, temp_name

log = logging.getLogger("gisgate.outbox")

STATES = ("pending", "sending", "sent", "failed")


def unique_path(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/stem~2.ext`, `~3`… when taken: archives never overwrite."""
    candidate = folder / name
    if not candidate.exists():
        return candidate
    stem, dot, ext = name.partition(".")
    for n in range(2, 100000):
        candidate = folder / (f"{stem}~{n}{dot}{ext}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"{folder}: too many files named like {name}")


def move(src: Path, dest: Path) -> Path:
    """Atomic rename (same file system), creating the destination folder."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
    return dest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


# ---- staging -------------------------------------------------------------------------------------


def folder(outbox: Path, target: str, state: str) -> Path:
    return outbox / target / state


def stage(outbox: Path, target: str, name: str, data: bytes) -> Path:
    """Put one output into `outbox/<target>/pending/` atomically (replacing an older pending version).

    The file is fsynced; the caller fsyncs the pending folder once after staging a whole input."""
    return atomic_write(folder(outbox, target, "pending") / name, data, sync_dir=False)


def stage_many(outbox: Path, files: list[tuple[str, str, bytes]]) -> list[Path]:
    """Stage many outputs `(target, name, data)` at once: write every temp file, then fsync them all
    (the first fsync's journal commit carries the others: far cheaper than write-fsync pairs), then
    rename each into `pending/` and fsync each pending folder once."""
    handles = []
    try:
        for target, name, data in files:
            pending = folder(outbox, target, "pending")
            pending.mkdir(parents=True, exist_ok=True)
            tmp = temp_name(pending)
            f = open(tmp, "wb")
            handles.append((f, tmp, pending / name))
            f.write(data)
            f.flush()
        for f, _, _ in handles:
            os.fsync(f.fileno())
    except BaseException:
        for f, tmp, _ in handles:
            f.close()
            tmp.unlink(missing_ok=True)
        raise
    for f, _, _ in handles:
        f.close()
    for _, tmp, path in handles:
        os.replace(tmp, path)
    for d in {path.parent for _, _, path in handles}:
        fsync_dir(d)
    return [path for _, _, path in handles]


def depth(outbox: Path) -> dict[str, int]:
    """Files waiting per target (pending + sending), for metrics."""
    out = {}
    if outbox.is_dir():
        for t in sorted(p for p in outbox.iterdir() if p.is_dir()):
            out[t.name] = sum(
                1 for s in ("pending", "sending") if (t / s).is_dir() for e in os.scandir(t / s)
                if not e.name.startswith(".")
            )
    return out
