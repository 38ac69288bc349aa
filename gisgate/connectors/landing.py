"""A fetched answer lands in a route's inbox as one file, exactly as the API returned it: written
under a temp name the watcher ignores, fsynced, then renamed to

    <source>-<what>-<window start>-<window end>[-p<page>].<ext>
    e.g. ll-userStates-20241103T040000Z-20241103T100000Z.json

The name carries no secret: only the source's name, what was asked for and the window.
"""

from __future__ import annotations

import re
from pathlib import Path

from gisgate import durable

SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def file_name(source: str, what: str, label: str, ext: str, page: int = 1) -> str:
    suffix = f"-p{page}" if page > 1 else ""
    return f"{SAFE.sub('_', source)}-{SAFE.sub('_', what)}-{label}{suffix}.{ext}"


def _tag(source: str) -> str:
    return f"fetch-{SAFE.sub('_', source)}-"


def land(folder: Path, name: str, data: bytes, source: str = "") -> Path:
    """Write `data` as `folder/name`, whole or not at all (temp name, fsync, rename, fsync the folder)."""
    return durable.atomic_write(folder / name, data, tag=_tag(source))


def sweep(folder: Path, source: str) -> int:
    """Remove the temp files a killed fetch of `source` left in `folder` (one gateway per root: none is ours
    in flight when this runs at start-up)."""
    stale = list(folder.glob(f"{durable.TEMP_PREFIX}{_tag(source)}*{durable.TEMP_SUFFIX}")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)
