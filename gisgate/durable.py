"""Durable file writes: a file appears under its name whole or not at all, and survives a crash.

    atomic_write(path, data)   temp name in the same folder, fsync, rename, fsync the folder
    copy_atomic(src, dest)     the same for a copy (moves across file systems)
    fsync_dir(folder)          make renames in `folder` durable (one call for many files)

Temp names start with TEMP_PREFIX and end with TEMP_SUFFIX, so readers (the Data Server, the
gateway's own scans) can skip them and a crash's leftovers can be recognised and removed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

TEMP_PREFIX = ".~gisgate-"
TEMP_SUFFIX = ".part"


def temp_name(folder: Path, tag: str = "") -> Path:
    """A fresh hidden temp path in `folder`; `tag` (e.g. host and pid) tells who wrote it."""
    return folder / f"{TEMP_PREFIX}{tag}{uuid.uuid4().hex}{TEMP_SUFFIX}"


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (a no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, fsync: bool = True, sync_dir: bool = True, tag: str = "") -> Path:
    """Write `data` to `path` through a hidden temp name in the same folder: never half a file.

    `sync_dir=False` leaves the folder's fsync to the caller (one for many files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path.parent, tag)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync and sync_dir:
        fsync_dir(path.parent)
    return path


def copy_atomic(src: Path, dest: Path) -> Path:
    """Copy `src` to `dest` through a hidden temp name, fsynced: for moves across file systems."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dest.parent)
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            while chunk := fin.read(1 << 20):
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        shutil.copystat(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)
    return dest
