"""Pipelined uploads: the files of many batches through one SFTP connection, several files in flight.

Each file takes three steps, each a set of requests sent without waiting and answered later:

    open    OPEN of its temp name (create, exclusive)           -> a handle
    check   its WRITEs, then FSTAT and CLOSE of the handle      -> every write OK, the size the server holds
    rename  posix-rename (or rename) onto its final name        -> visible

Up to WINDOW_FILES files (and WINDOW_BYTES bytes) are between their OPEN and their rename at once,
whatever batch they belong to, so the server stores one file while the client reads and sends the
next, and a batch of one file does not wait for its own round trips before the next batch starts.
What one batch at a time guaranteed still holds for each batch:

  * a file is renamed only once its size was checked, and only after the previous file of its batch
    was renamed (one rename per batch in flight): a batch's files become visible in order, none after
    one that failed (a CONTACT csv after its media);
  * a file that fails (an SFTP error status, a size short of the local one, an unreadable local file)
    fails its batch only: the batch's later files are not renamed and its temp files are removed
    (their replies are awaited, so nothing is left behind when the call returns); other batches go on;
  * a broken connection (or the deadline) ends the run: the batches in flight fail, the batches not
    started yet are left for the caller (`started` says which).

Events are handled in the order their requests were sent, which is the order OpenSSH answers them;
replies are matched by request id, so a server answering out of order is handled too.
"""

from __future__ import annotations

import logging
import posixpath
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from paramiko import sftp as proto

from gisgate.errors import PermanentDeliveryError
from gisgate.targets.sftp.client import (
    POSIX_RENAME,
    Mismatch,
    PipelinedSftp,
    Status,
    expect_attrs,
    expect_handle,
    expect_status,
)

log = logging.getLogger(__package__)

WINDOW_FILES = 16  # files between OPEN and rename at once
WINDOW_BYTES = 4 * 1024 * 1024  # ... and their bytes (a big file is alone in flight)
OPEN_FLAGS = proto.SFTP_FLAG_WRITE | proto.SFTP_FLAG_CREATE | proto.SFTP_FLAG_EXCL
BATCH_FAILURES = (Status, Mismatch, PermanentDeliveryError)  # fail one batch; the connection is fine


@dataclass(eq=False)
class Upload:
    """One file of a batch: where it goes, and its requests in flight."""

    local: Path
    size: int
    remote_dir: str
    temp: str
    final: str
    batch: Batch | None = None
    handle: bytes | None = None
    checked: bool = False  # written and its size confirmed
    created: bool = False  # the server opened (created) its temp file
    temp_path: str = ""
    final_path: str = ""

    def __post_init__(self) -> None:
        self.temp_path = posixpath.join(self.remote_dir, self.temp)
        self.final_path = posixpath.join(self.remote_dir, self.final)


@dataclass(eq=False)
class Batch:
    """A batch's uploads and what became of them."""

    uploads: list[Upload]
    delivered: list[str] = field(default_factory=list)  # final names made visible, in order
    error: BaseException | None = None  # the first failure
    renamed: int = 0  # uploads renamed so far (the next one to rename is uploads[renamed])
    renaming: bool = False  # a rename of this batch is in flight
    outstanding: int = 0  # events of this batch not handled yet
    started: bool = False  # a request of this batch was sent

    def __post_init__(self) -> None:
        for u in self.uploads:
            u.batch = self

    def reset(self) -> None:
        """Forget a run on a connection that died before anything of it was answered."""
        self.delivered, self.error, self.started = [], None, False
        self.renamed, self.renaming, self.outstanding = 0, False, 0
        for u in self.uploads:
            u.handle, u.checked, u.created = None, False, False

    @property
    def done(self) -> bool:
        return self.outstanding == 0 and (self.error is not None or self.renamed == len(self.uploads))


class Pipeline:
    """Runs the uploads of `batches` on `sftp` (see the module docstring). `target` provides the
    directory checks (`_prepare_dir`), the rename fallbacks' knowledge (`_session`) and logging;
    `on_done(batch)` is called as each batch ends (the target re-arms its deadline)."""

    def __init__(self, target, sftp: PipelinedSftp, batches: list[Batch], on_done=None):
        self.t, self.sftp, self.batches = target, sftp, batches
        self.files = [u for b in batches for u in b.uploads]
        self.events: deque[tuple[str, Upload, list[int]]] = deque()
        self.next = 0  # the next file to open
        self.live: set[Upload] = set()  # files in the window
        self.live_bytes = 0
        self.on_done = on_done or (lambda batch: None)
        self.chunk = target._session.chunk

    def run(self) -> None:
        """Until every batch is done; a connection failure propagates (batches keep their state)."""
        for b in self.batches:
            if not b.uploads:
                b.started = True
                self.on_done(b)
        self._fill()
        while self.events:
            stage, u, nums = self.events.popleft()
            u.batch.outstanding -= 1
            replies = [self.sftp.collect(n) for n in nums]
            try:
                if u.batch.error is None:
                    getattr(self, f"_{stage}")(u, replies)
                else:
                    self._after_failure(stage, u, replies)
            except BATCH_FAILURES as e:
                self._fail(u, e)
            if u.batch.done:
                self.on_done(u.batch)
            self._fill()

    # -- the steps of one file ----------------------------------------------------------------------
    def _fill(self) -> None:
        """Open files while the window has room (always at least one)."""
        while self.next < len(self.files) and (not self.live or (
                len(self.live) < WINDOW_FILES and self.live_bytes + self.files[self.next].size <= WINDOW_BYTES)):
            u = self.files[self.next]
            self.next += 1
            b = u.batch
            if b.error is not None:
                continue
            b.started = True
            try:
                self.t._prepare_dir(self.sftp, u.remote_dir)
            except BATCH_FAILURES as e:
                self._fail(u, e)
                if b.done:
                    self.on_done(b)
                continue
            self.live.add(u)
            self.live_bytes += u.size
            self._push("open", u, [self.sftp.send(proto.CMD_OPEN, u.temp_path, OPEN_FLAGS, paramiko.SFTPAttributes())])

    def _push(self, stage: str, u: Upload, nums: list[int]) -> None:
        self.events.append((stage, u, nums))
        u.batch.outstanding += 1

    def _open(self, u: Upload, replies) -> None:
        u.handle = expect_handle(replies[0], u.temp_path)
        u.created = True
        nums: list[int] = []
        try:
            offset = 0
            for chunk in _chunks(u.local, self.chunk):
                nums.append(self.sftp.send(proto.CMD_WRITE, u.handle, proto.int64(offset), chunk))
                offset += len(chunk)
            if offset != u.size:
                raise PermanentDeliveryError(f"{u.local}: changed size during delivery ({u.size} -> {offset})")
        except PermanentDeliveryError:
            self._push("discard", u, nums)  # the writes sent: their replies are awaited
            raise
        nums.append(self.sftp.send(proto.CMD_FSTAT, u.handle))
        nums.append(self.sftp.send(proto.CMD_CLOSE, u.handle))
        u.handle = None  # closed, as far as the next requests are concerned
        self._push("check", u, nums)

    def _check(self, u: Upload, replies) -> None:
        *writes, fstat, close = replies
        for reply in writes:
            expect_status(reply, "write", u.temp_path)
        size = expect_attrs(fstat, "fstat", u.temp_path).st_size
        expect_status(close, "close", u.temp_path)
        if size != u.size:
            raise Mismatch(f"{u.temp_path}: the server holds {size} bytes of {u.local.name}, expected {u.size}")
        u.checked = True
        self._rename_next(u.batch)

    def _rename_next(self, b: Batch) -> None:
        """Send the rename of the batch's next file, when it is checked and no rename of the batch is in flight."""
        if b.renaming or b.renamed == len(b.uploads) or not b.uploads[b.renamed].checked:
            return
        u = b.uploads[b.renamed]
        b.renaming = True
        posix = self.t._session.posix_rename
        self._push("posix_rename" if posix else "rename", u, [self._send_rename(u, posix)])

    def _send_rename(self, u: Upload, posix: bool) -> int:
        if posix:
            return self.sftp.send(proto.CMD_EXTENDED, POSIX_RENAME, u.temp_path, u.final_path)
        return self.sftp.send(proto.CMD_RENAME, u.temp_path, u.final_path)

    def _posix_rename(self, u: Upload, replies) -> None:
        self._renamed(u, replies[0], posix=True)

    def _rename(self, u: Upload, replies) -> None:
        self._renamed(u, replies[0], posix=False)

    def _renamed(self, u: Upload, reply, posix: bool) -> None:
        b = u.batch
        b.renaming = False
        try:
            expect_status(reply, "rename", f"{u.temp_path} -> {u.final_path}")
        except Status as e:
            self._rename_fallback(u, e, posix)
        b.renamed += 1
        b.delivered.append(u.final)
        u.created = u.checked = False  # no temp file any more: nothing to undo
        self._leave(u)
        self._rename_next(b)

    def _rename_fallback(self, u: Upload, e: Status, posix: bool) -> None:
        """A refused rename: posix-rename announced but refused -> plain rename; a name that exists and
        cannot be renamed over (plain rename; posix-rename on some Windows servers) -> remove it first."""
        sftp, src, dst, name = self.sftp, u.temp_path, u.final_path, self.t.name
        if posix and e.code == proto.SFTP_OP_UNSUPPORTED:
            if self.t._session.posix_rename:
                log.warning("sftp target %r: the server announces %s but refuses it; using plain rename",
                            name, POSIX_RENAME)
                self.t._session.posix_rename = False
            try:
                return expect_status(sftp.collect(self._send_rename(u, False)), "rename", f"{src} -> {dst}")
            except Status as plain:
                return self._rename_fallback(u, plain, False)
        if e.code in (proto.SFTP_NO_SUCH_FILE, proto.SFTP_PERMISSION_DENIED):
            raise e
        t, _ = sftp.collect(sftp.send(proto.CMD_STAT, dst))
        if t != proto.CMD_ATTRS:
            raise e
        log.warning("sftp target %r: %s exists and the server cannot rename over it; removing it first",
                    name, dst)
        sftp.status(sftp.send(proto.CMD_REMOVE, dst), "remove", dst)
        sftp.status(self._send_rename(u, self.t._session.posix_rename), "rename", f"{src} -> {dst}")

    # -- failures -----------------------------------------------------------------------------------
    def _fail(self, u: Upload, e: BaseException) -> None:
        """`u` failed: its batch fails (first error kept); its temp files go, once their requests are answered."""
        b = u.batch
        if b.error is None:
            b.error = e
            for other in b.uploads:  # checked files not renamed (yet): their temp files go too
                if other is not u and other.checked:
                    self._discard(other)
        self._discard(u)

    def _after_failure(self, stage: str, u: Upload, replies) -> None:
        """An event of a batch that already failed: what the request did, undone."""
        b = u.batch
        if stage == "open":
            try:
                u.handle = expect_handle(replies[0], u.temp_path)
                u.created = True
            except Status:
                pass
        elif stage in ("rename", "posix_rename"):
            b.renaming = False
            try:
                expect_status(replies[0], "rename", u.temp_path)
                b.renamed += 1
                b.delivered.append(u.final)  # it did become visible
                u.created = u.checked = False
            except Status:
                pass
        elif stage == "discard":
            self._leave(u)
            return
        self._discard(u)

    def _discard(self, u: Upload) -> None:
        """Close `u`'s handle and remove its temp file; the replies are awaited as a `discard` event."""
        if any(e is u and stage != "discard" for stage, e, _ in self.events):
            return  # its request in flight is answered first, then comes back here
        nums = []
        if u.handle is not None:
            nums.append(self.sftp.send(proto.CMD_CLOSE, u.handle))
            u.handle = None
        if u.created:
            nums.append(self.sftp.send(proto.CMD_REMOVE, u.temp_path))
            u.created = False
        u.checked = False
        self._push("discard", u, nums)

    def _leave(self, u: Upload) -> None:
        if u in self.live:
            self.live.remove(u)
            self.live_bytes -= u.size

    def abandon(self) -> None:
        """After a connection failure: forget what was in flight (the connection is gone)."""
        for _, u, _ in self.events:
            u.batch.outstanding = 0
            u.handle = None
        self.events.clear()


def _chunks(path: Path, size: int):
    """The file's bytes in write-sized chunks; a local read error is not the server's fault."""
    try:
        with path.open("rb") as f:
            while chunk := f.read(size):
                yield chunk
    except OSError as e:
        raise PermanentDeliveryError(f"{path}: cannot read the file to deliver ({e.strerror or e})") from e
