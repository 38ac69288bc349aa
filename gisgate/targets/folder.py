"""`folder` target: a local folder or mounted share, e.g. the Data Server's `gis/<tenant>` folder.

Each file is written under a temp name that matches no GIS pattern (`.~gisgate-<uuid>.part`: no
`.AGENT`, `.SERVICE`, `CONTACT.` or `TEXTCONTACT`), fsynced, then renamed into place in the same
folder, so the Data Server never sees half a file. A file already there with the same bytes is left
alone, which makes the re-send after a crash between delivery and ledger commit harmless.
"""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path

from gisgate.errors import PermanentDeliveryError, TransientDeliveryError
from gisgate.targets import Receipt

# A human has to act on these; anything else (disk full, share gone, I/O error) may heal by itself.
PERMANENT = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG}


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False


class FolderTarget:
    """Delivers into `spec.path` (created if missing)."""

    def __init__(self, name: str, spec):
        self.name = name
        self.path = Path(os.path.expanduser(spec.path))

    def deliver(self, batch: list[Path]) -> Receipt:
        done = []
        for src in batch:
            try:
                self._put(src)
            except OSError as e:
                kind = PermanentDeliveryError if e.errno in PERMANENT else TransientDeliveryError
                raise kind(f"target {self.name!r}: cannot write {src.name} into {self.path}: "
                           f"{e.strerror or e}") from e
            done.append(src.name)
        return Receipt(self.name, done, detail=str(self.path))

    def _put(self, src: Path) -> None:
        data = src.read_bytes()
        dest = self.path / src.name
        if _same_bytes(dest, data):
            return
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".~gisgate-{uuid.uuid4().hex}.part"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        try:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass

    def close(self) -> None:
        return None
