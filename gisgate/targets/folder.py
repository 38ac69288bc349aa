"""`folder` target: a local folder or mounted share, e.g. the Data Server's `gis/<tenant>` folder.

Each file is written under a temp name that matches no GIS pattern (`.~gisgate-<host>-<pid>-<uuid>.part`: no
`.AGENT`, `.SERVICE`, `CONTACT.` or `TEXTCONTACT`), fsynced, then renamed into place in the same
folder, so the Data Server never sees half a file. A file already there with the same bytes is left
alone, which makes the re-send after a crash between delivery and ledger commit harmless. Temp
files of a killed gisgate on this host are removed when the target opens again.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile
import time
from pathlib import Path

from gisgate.durable import TEMP_PREFIX, TEMP_SUFFIX, atomic_write, fsync_dir
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


STALE_SECONDS = 86400.0  # another host's temp file is only swept after a day


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class FolderTarget:
    """Delivers into `spec.path` (created if missing)."""

    name: str

    def __init__(self, name: str, spec):
        self.name = name
        self.path = Path(os.path.expanduser(spec.path))
        self.host = socket.gethostname().replace("-", "_")
        self.archives = getattr(spec, "archives", None)
        self.penalty_box = getattr(spec, "penalty_box", None)
        self.consume_alert = getattr(spec, "consume_alert_minutes", 15.0)
        self._sweep()

    def _sweep(self) -> None:
        """Remove temp files a killed gisgate left behind: `.~gisgate-<host>-<pid>-<uuid>.part`."""
        try:
            entries = list(os.scandir(self.path))
        except OSError:
            return
        for e in entries:
            if not (e.name.startswith(TEMP_PREFIX) and e.name.endswith(TEMP_SUFFIX)):
                continue
            parts = e.name[len(TEMP_PREFIX):].split("-")
            mine = len(parts) == 3 and parts[0] == self.host and parts[1].isdigit()
            try:
                stale = (mine and not _alive(int(parts[1]))) or time.time() - e.stat().st_mtime > STALE_SECONDS
                if stale:
                    os.unlink(e.path)
            except OSError:
                pass

    def deliver(self, batch: list[Path], kind: str | None = None) -> Receipt:
        """Write each file of `batch` into the folder, in order (any kind of file alike)."""
        done = []
        wrote = False
        for src in batch:
            try:
                wrote = self._put(src) or wrote
            except OSError as e:
                kind = PermanentDeliveryError if e.errno in PERMANENT else TransientDeliveryError
                raise kind(f"target {self.name!r}: cannot write {src.name} into {self.path}: "
                           f"{e.strerror or e}") from e
            done.append(src.name)
        if wrote:  # one folder fsync makes the whole batch's renames durable
            fsync_dir(self.path)
        return Receipt(self.name, done, detail=str(self.path))

    def _put(self, src: Path) -> bool:
        data = src.read_bytes()
        dest = self.path / src.name
        if _same_bytes(dest, data):
            return False
        atomic_write(dest, data, sync_dir=False, tag=f"{self.host}-{os.getpid()}-")
        return True

    def outcomes(self, sent: list[tuple[str, float]], now: float | None = None) -> dict[str, str]:
        """What the Data Server did with delivered files `(name, delivered_at)`, when the target is
        configured to look: "accepted" (found under `archives`), "penalty" (under `penalty_box`),
        "unread" (still in the folder after `consume_alert_minutes`). Files with no verdict yet are left out."""
        if not (self.archives or self.penalty_box):
            return {}
        now = time.time() if now is None else now
        accepted = self._names(self.archives)
        refused = self._names(self.penalty_box)
        out = {}
        for name, at in sent:
            if name in refused:
                out[name] = "penalty"
            elif name in accepted:
                out[name] = "accepted"
            elif (self.path / name).exists() and now - at > self.consume_alert * 60:
                out[name] = "unread"
        return out

    def _names(self, pattern: str | None) -> set[str]:
        """File names directly in the folders matching `pattern` (relative to the target folder)."""
        names: set[str] = set()
        if not pattern:
            return names
        for folder in self.path.glob(pattern) if not Path(pattern).is_absolute() else Path("/").glob(pattern[1:]):
            try:
                names.update(e.name for e in os.scandir(folder) if e.is_file())
            except OSError:
                continue
        return names

    def probe(self) -> str:
        """For `gisgate doctor`: the folder exists (or can be created) and takes a file."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.path, prefix=f"{TEMP_PREFIX}doctor-", suffix=TEMP_SUFFIX):
                pass
        except OSError as e:
            raise PermanentDeliveryError(f"folder target {self.name!r}: cannot write into {self.path}: "
                                         f"{e.strerror or e}") from e
        return f"folder target {self.name!r}: {self.path} is writable"

    def close(self) -> None:
        return None
