"""SftpTarget: where each file goes on the server, and how a batch is uploaded and made visible.

What one `deliver(batch)` does, for each file in the given order:

1. upload it to a temporary name in the destination directory, `.~gisgate-<uuid>.part`, which
   matches no GIS or contact pattern (no `.AGENT`, `.SERVICE`, `CONTACT.`, `TEXTCONTACT`), so the
   Data Server never picks up half a file;
2. check the size the server reports for the open temp file equals the local size;
3. rename it onto its final name with `posix-rename@openssh.com` (atomic, overwrites). The
   extension is probed from the server's SFTP version reply (and dropped if the server refuses
   it); without it the file is renamed with plain SFTP `rename`. When a rename is refused because
   the name exists (plain rename; posix-rename on some Windows servers), the old file is removed
   first — a short window without the file, logged as a warning.

A file is renamed only after the previous one's rename succeeded, so files become visible in
batch order; a failure stops the batch and removes the temp files it left (when the connection
still allows it).

Remote path template (`path` in the config), expanded per file with `str.format`:

    {tenant}  the target's `tenant` setting
    {user}    the login user
    {acd}     the ACD number in a GIS file name (`..._<acd>_AgentProductivity.AGENT`)
    {date}    the interval date in a GIS file name, `YYYYMMDD`

e.g. `gis/{tenant}` or `gis/{tenant}/{acd}`. Relative paths start in the login directory.
With `create_dirs = true` missing directories are created. On the first use of a directory per
connection, our own temp files left there by an interrupted delivery and untouched for
`stale_temp_s` are removed.
"""

from __future__ import annotations

import logging
import posixpath
import string
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import paramiko
from paramiko import sftp as proto

from gisgate.durable import TEMP_PREFIX, TEMP_SUFFIX  # the same temp names as local writes
from gisgate.errors import ConfigError, DeliveryError, PermanentDeliveryError
from gisgate.produced import parse_gis_name
from gisgate.targets import Receipt
from gisgate.targets.sftp.client import POSIX_RENAME, Mismatch, PipelinedSftp, Status, reason
from gisgate.targets.sftp.hostkeys import pinned_keys
from gisgate.targets.sftp.session import Session

log = logging.getLogger(__package__)

TEMPLATE_VARS = {"tenant", "user", "acd", "date"}


@dataclass
class _Upload:
    local: Path
    size: int
    remote_dir: str
    temp: str
    final: str
    handle: bytes | None = None

    @property
    def temp_path(self) -> str:
        return posixpath.join(self.remote_dir, self.temp)

    @property
    def final_path(self) -> str:
        return posixpath.join(self.remote_dir, self.final)


def _path_fields(name: str, spec) -> set[str]:
    """The variables the target's path template uses; a config that cannot work is refused now."""
    if not (spec.known_hosts or spec.host_key):
        raise ConfigError(f"target {name!r}: set known_hosts or host_key; gisgate never trusts an "
                          f"unknown host key (run `gisgate hostkey {name}` to see the server's)")
    if not (spec.key_file or spec.password_env or spec.password_file):
        raise ConfigError(f"target {name!r}: set key_file, password_env or password_file")
    fields = {f for _, f, _, _ in string.Formatter().parse(spec.path) if f is not None}
    unknown = fields - TEMPLATE_VARS
    if unknown:
        raise ConfigError(f"target {name!r}: path {spec.path!r} uses unknown variable(s) "
                          f"{sorted(unknown)}; known: {sorted(TEMPLATE_VARS)}")
    if "tenant" in fields and not spec.tenant:
        raise ConfigError(f"target {name!r}: path {spec.path!r} uses {{tenant}}; set tenant")
    return fields


def _chunks(path: Path, size: int):
    """The file's bytes in write-sized chunks; a local read error is not the server's fault."""
    try:
        with path.open("rb") as f:
            while chunk := f.read(size):
                yield chunk
    except OSError as e:
        raise PermanentDeliveryError(f"{path}: cannot read the file to deliver ({e.strerror or e})") from e


class SftpTarget:
    """Deliver batches of files to one SFTP server directory (see the module docstring)."""

    name: str

    def __init__(self, name: str, spec):
        self.name = name
        self._fields = _path_fields(name, spec)
        pinned_keys(spec)  # a bad host_key / unreadable known_hosts is a config error, found now
        self._session = Session(name, spec)

    @property
    def spec(self):
        return self._session.spec

    @spec.setter
    def spec(self, spec) -> None:  # takes effect from the next delivery (a test tightens the deadline)
        self._session.spec = spec

    @property
    def time_left(self):
        return self._session.time_left

    @time_left.setter
    def time_left(self, time_left) -> None:  # a caller's deadline (see targets.Target)
        self._session.time_left = time_left

    @property
    def connections(self) -> int:
        """How many SSH connections were opened (tests, doctor)."""
        return self._session.connections

    @property
    def _transport(self) -> paramiko.Transport | None:
        return self._session.transport

    # -- public -----------------------------------------------------------------------------------
    def deliver(self, batch: list[Path], kind: str | None = None) -> Receipt:
        """Upload `batch` in order (any kind of file alike); each file appears under its final name
        complete, or not at all.

        On failure the DeliveryError's `delivered` attribute lists the files of the batch that were
        already made visible (in order), so a retry can skip them.
        """
        uploads = self._plan([Path(p) for p in batch])
        if not uploads:
            return Receipt(self.name, [])
        delivered: list[str] = []
        with self._session.exclusive():
            self._attempt(uploads, delivered)
        dirs = sorted({u.remote_dir for u in uploads})
        return Receipt(self.name, delivered, detail=f"{self.spec.host}:{', '.join(dirs)}",
                       extra={"remote": [u.final_path for u in uploads], "bytes": sum(u.size for u in uploads)})

    def probe(self) -> str:
        """For `gisgate doctor`: connect (host key verified, authenticated) and look at the remote folder."""
        s = self._session
        with s.exclusive():
            try:
                sftp = s.connect()
                folder = self.spec.path if not self._fields else self.spec.path.split("{")[0].rstrip("/") or "."
                sftp.attrs(sftp.send(proto.CMD_STAT, folder), "stat", folder)
            except Exception as e:  # noqa: BLE001 - translated once, here
                s.drop()
                raise s.failure(e) from e
        return (f"{s.where}: host key pinned, logged in, {folder!r} exists"
                f"{'' if s.posix_rename else ' (no posix-rename: replacing files removes them first)'}")

    def outcomes(self, sent: list[tuple[str, float]]) -> dict[str, str]:
        """Nothing to report: an SFTP server does not say what became of delivered files."""
        return {}

    def close(self) -> None:
        """Close the connection (the next delivery opens a new one)."""
        self._session.close()

    # -- planning ---------------------------------------------------------------------------------
    def _plan(self, batch: list[Path]) -> list[_Upload]:
        plans = []
        for p in batch:
            try:
                size = p.stat().st_size
            except OSError as e:
                raise PermanentDeliveryError(f"{p}: cannot read it to deliver: {e.strerror or e}") from e
            temp = f"{TEMP_PREFIX}{uuid.uuid4().hex}{TEMP_SUFFIX}"
            plans.append(_Upload(p, size, self._remote_dir(p.name), temp, p.name))
        return plans

    def _remote_dir(self, name: str) -> str:
        values = {"tenant": self.spec.tenant or "", "user": self.spec.user}
        if self._fields & {"acd", "date"}:
            gis = parse_gis_name(name)
            if gis is None:
                raise PermanentDeliveryError(f"{name}: path {self.spec.path!r} needs the ACD and date of "
                                             f"a GIS file name, and this is not one")
            values.update(acd=str(int(gis.acd)), date=gis.date)
        return self.spec.path.format(**values)

    # -- one delivery -------------------------------------------------------------------------------
    def _attempt(self, uploads: list[_Upload], delivered: list[str]) -> None:
        """Send on the open connection or a new one; a reused connection that turns out dead is
        replaced once, when nothing of the batch was made visible yet."""
        s = self._session
        for attempt in (1, 2):
            fresh = s.stale()
            try:
                self._send(s.connect() if fresh else s.sftp, uploads, delivered)
                s.touch()
                return
            except Exception as e:  # noqa: BLE001 - translated once, below
                broken = not isinstance(e, (Status, Mismatch, DeliveryError))  # connection unusable
                if broken or s.expired:
                    s.drop()
                else:
                    self._cleanup(uploads)
                if attempt == 1 and not fresh and broken and not delivered and not s.expired:
                    log.info("%s: reused connection failed (%s); reconnecting", s.where, e)
                    continue
                err = s.failure(e)
                if delivered:
                    err.args = (f"{err.args[0]} (already delivered: {', '.join(delivered)})",)
                err.delivered = list(delivered)
                raise err from e

    def _send(self, sftp: PipelinedSftp, uploads: list[_Upload], delivered: list[str]) -> None:
        """Pipelined: per round, [rename previous, writes + fstat + close of this one, open of next]."""
        for remote_dir in dict.fromkeys(u.remote_dir for u in uploads):
            self._ensure_dir(sftp, remote_dir)
            self._sweep(sftp, remote_dir)
        uploads[0].handle = sftp.handle(self._open(sftp, uploads[0]), uploads[0].temp_path)
        previous: _Upload | None = None
        for i, u in enumerate(uploads):
            nxt = uploads[i + 1] if i + 1 < len(uploads) else None
            renamed = self._send_rename(sftp, previous) if previous else None
            writes = self._send_writes(sftp, u)
            fstat = sftp.send(proto.CMD_FSTAT, u.handle)
            closed = sftp.send(proto.CMD_CLOSE, u.handle)
            opened = self._open(sftp, nxt) if nxt else None
            if previous:
                self._finish_rename(sftp, previous, renamed)
                delivered.append(previous.final)
            for num in writes:
                sftp.status(num, "write", u.temp_path)
            size = sftp.attrs(fstat, "fstat", u.temp_path).st_size
            sftp.status(closed, "close", u.temp_path)
            u.handle = None
            if size != u.size:
                raise Mismatch(f"{u.temp_path}: the server holds {size} bytes of {u.local.name}, expected {u.size}")
            if nxt:
                nxt.handle = sftp.handle(opened, nxt.temp_path)
            previous = u
        self._finish_rename(sftp, previous, self._send_rename(sftp, previous))
        delivered.append(previous.final)
        log.debug("sftp target %r: delivered %d file(s)", self.name, len(uploads))

    def _ensure_dir(self, sftp: PipelinedSftp, remote_dir: str) -> None:
        known = self._session.known_dirs
        if not self.spec.create_dirs or remote_dir in known or remote_dir in ("", "."):
            return
        path = ""
        for part in remote_dir.split("/"):
            path = posixpath.join(path, part) if path else (part or "/")
            if path in known or part in ("", "."):
                continue
            t, msg = sftp.collect(sftp.send(proto.CMD_STAT, path))
            if t == proto.CMD_STATUS:
                code = msg.get_int()
                if code != proto.SFTP_NO_SUCH_FILE:
                    raise Status(code, reason(msg), "stat", path)
                sftp.status(sftp.send(proto.CMD_MKDIR, path, paramiko.SFTPAttributes()), "mkdir", path)
            known.add(path)
        known.add(remote_dir)

    def _sweep(self, sftp: PipelinedSftp, remote_dir: str) -> None:
        """Once per directory and connection: remove temp files an interrupted delivery left behind.

        Only our own temp names, and only when untouched for `stale_temp_s` (a live upload keeps
        its file's mtime fresh). Best effort: a directory that cannot be listed is left alone.
        """
        if not self.spec.stale_temp_s or remote_dir in self._session.swept:
            return
        self._session.swept.add(remote_dir)
        try:
            entries = sftp.listdir_attr(remote_dir or ".")
        except OSError as e:
            if isinstance(e, (TimeoutError, ConnectionError)):
                raise
            log.info("sftp target %r: cannot list %s to remove stale temp files (%s)", self.name, remote_dir, e)
            return
        cutoff = time.time() - self.spec.stale_temp_s
        stale = [posixpath.join(remote_dir, e.filename) for e in entries
                 if e.filename.startswith(TEMP_PREFIX) and e.filename.endswith(TEMP_SUFFIX)
                 and (e.st_mtime or 0) < cutoff]
        for path, num in [(p, sftp.send(proto.CMD_REMOVE, p)) for p in stale]:
            try:
                sftp.status(num, "remove", path)
                log.info("sftp target %r: removed stale temp file %s", self.name, path)
            except Status as e:
                log.info("sftp target %r: could not remove stale temp file (%s)", self.name, e)

    def _open(self, sftp: PipelinedSftp, u: _Upload) -> int:
        self._ensure_dir(sftp, u.remote_dir)
        flags = proto.SFTP_FLAG_WRITE | proto.SFTP_FLAG_CREATE | proto.SFTP_FLAG_EXCL
        return sftp.send(proto.CMD_OPEN, u.temp_path, flags, paramiko.SFTPAttributes())

    def _send_writes(self, sftp: PipelinedSftp, u: _Upload) -> list[int]:
        nums, offset = [], 0
        for chunk in _chunks(u.local, self._session.chunk):
            nums.append(sftp.send(proto.CMD_WRITE, u.handle, proto.int64(offset), chunk))
            offset += len(chunk)
        if offset != u.size:
            raise PermanentDeliveryError(f"{u.local}: changed size during delivery ({u.size} -> {offset})")
        return nums

    def _send_rename(self, sftp: PipelinedSftp, u: _Upload) -> int:
        if self._session.posix_rename:
            return sftp.send(proto.CMD_EXTENDED, POSIX_RENAME, u.temp_path, u.final_path)
        return sftp.send(proto.CMD_RENAME, u.temp_path, u.final_path)

    def _finish_rename(self, sftp: PipelinedSftp, u: _Upload, num: int) -> None:
        src, dst = u.temp_path, u.final_path
        try:
            sftp.status(num, "rename", f"{src} -> {dst}")
            return
        except Status as e:
            if self._session.posix_rename and e.code == proto.SFTP_OP_UNSUPPORTED:
                log.warning("sftp target %r: the server announces %s but refuses it; using plain rename",
                            self.name, POSIX_RENAME)
                self._session.posix_rename = False
                return self._finish_rename(sftp, u, sftp.send(proto.CMD_RENAME, src, dst))
            if e.code in (proto.SFTP_NO_SUCH_FILE, proto.SFTP_PERMISSION_DENIED):
                raise
            # plain rename (and posix-rename on some Windows servers) refuses to replace an existing
            # name: remove it, then rename (not atomic)
            t, _ = sftp.collect(sftp.send(proto.CMD_STAT, dst))
            if t != proto.CMD_ATTRS:
                raise
        log.warning("sftp target %r: %s exists and the server cannot rename over it; removing it first",
                    self.name, dst)
        sftp.status(sftp.send(proto.CMD_REMOVE, dst), "remove", dst)
        sftp.status(self._send_rename(sftp, u), "rename", f"{src} -> {dst}")

    def _cleanup(self, uploads: list[_Upload]) -> None:
        """After an SFTP-level failure on a live connection: close handles, remove temp files."""
        sftp = self._session.sftp
        if sftp is None:
            return
        try:
            handles = sftp.drain() + [u.handle for u in uploads if u.handle]
            nums = [sftp.send(proto.CMD_CLOSE, h) for h in handles]
            nums += [sftp.send(proto.CMD_REMOVE, u.temp_path) for u in uploads]
            for num in nums:
                sftp.collect(num)
        except Exception as e:  # noqa: BLE001 - best effort; the temp names match no GIS pattern
            log.info("sftp target %r: could not remove temp files (%s)", self.name, e)
            self._session.drop()
        for u in uploads:
            u.handle = None
