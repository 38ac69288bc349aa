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


def land(folder: Path, name: str, data: bytes) -> Path:
    """Write `data` as `folder/name`, whole or not at all (temp name, fsync, rename, fsync the folder)."""
    return durable.atomic_write(folder / name, data)
