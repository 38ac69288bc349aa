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
still allows it). `deliver_many(batches)` does the same for many batches in one pipelined run, the
next batches' files uploading while one is checked and renamed (stream.py: the requests, and what a
failure in the middle of a run does); `deliver` is a run of one batch.

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
from pathlib import Path

import paramiko
from paramiko import sftp as proto

from gisgate.durable import TEMP_PREFIX, TEMP_SUFFIX  # the same temp names as local writes
from gisgate.errors import ConfigError, DeliveryError, PermanentDeliveryError
from gisgate.produced import parse_gis_name
from gisgate.targets import Receipt
from gisgate.targets.sftp.client import PipelinedSftp, Status, reason
from gisgate.targets.sftp.hostkeys import pinned_keys
from gisgate.targets.sftp.session import Session
from gisgate.targets.sftp.stream import Batch, Pipeline, Upload

log = logging.getLogger(__package__)

TEMPLATE_VARS = {"tenant", "user", "acd", "date"}


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
        outcome = self.deliver_many([batch], kind)[0]
        if isinstance(outcome, DeliveryError):
            raise outcome
        return outcome

    def deliver_many(self, batches: list[list[Path]], kind: str | None = None) -> list[Receipt | DeliveryError]:
        """Deliver several batches in one pipelined run (stream.py): each batch as `deliver` would,
        with files of the next batches in flight while one is renamed (`gisgate deliver`).

        Returns, in order, each tried batch's outcome: its Receipt, or the DeliveryError `deliver`
        would raise (`delivered` set). All batches are tried unless the connection fails: then the
        outcomes stop after the last batch that was in flight (at least one is returned), and the
        caller sends the rest again.
        """
        work: list[Batch | Receipt | DeliveryError] = []
        for batch in batches:
            try:
                uploads = self._plan([Path(p) for p in batch])
            except PermanentDeliveryError as e:
                work.append(e)
                continue
            work.append(Batch(uploads) if uploads else Receipt(self.name, []))
        live = [b for b in work if isinstance(b, Batch)]
        if live:
            try:
                with self._session.exclusive():
                    self._attempt(live)
            except DeliveryError as e:  # no time left to start
                live[0].error, live[0].started = e, True
        outcomes: list[Receipt | DeliveryError] = []
        for b in work:
            if isinstance(b, Batch):
                if not b.started:
                    break
                b = self._outcome(b)
            outcomes.append(b)
        return outcomes

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
    def _plan(self, batch: list[Path]) -> list[Upload]:
        plans = []
        for p in batch:
            try:
                size = p.stat().st_size
            except OSError as e:
                raise PermanentDeliveryError(f"{p}: cannot read it to deliver: {e.strerror or e}") from e
            temp = f"{TEMP_PREFIX}{uuid.uuid4().hex}{TEMP_SUFFIX}"
            plans.append(Upload(p, size, self._remote_dir(p.name), temp, p.name))
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

    # -- one run of batches ------------------------------------------------------------------------
    def _attempt(self, batches: list[Batch]) -> None:
        """Run the batches on the open connection or a new one; a reused connection that turns out
        dead is replaced once, when no batch has an outcome yet. A broken connection fails the
        batches in flight (a batch's own failure, e.g. a full disk, is its outcome: stream.py)."""
        s = self._session
        for attempt in (1, 2):
            fresh = s.stale()
            pipeline = None
            try:
                pipeline = Pipeline(self, s.connect() if fresh else s.sftp, batches, on_done=lambda _: s.rearm())
                pipeline.run()
                s.touch()
                return
            except Exception as e:  # noqa: BLE001 - the connection is unusable; translated per batch
                s.drop()
                if pipeline is not None:
                    pipeline.abandon()
                untouched = not any(b.delivered or b.error for b in batches)
                if attempt == 1 and not fresh and untouched and not s.expired:
                    log.info("%s: reused connection failed (%s); reconnecting", s.where, e)
                    for b in batches:
                        b.reset()
                    continue
                hit = [b for b in batches if b.started and b.error is None and b.renamed < len(b.uploads)]
                for b in hit or batches[:1]:
                    b.error, b.started = e, True
                return

    def _outcome(self, b: Batch) -> Receipt | DeliveryError:
        if b.error is None:
            dirs = sorted({u.remote_dir for u in b.uploads})
            return Receipt(self.name, b.delivered, detail=f"{self.spec.host}:{', '.join(dirs)}",
                           extra={"remote": [u.final_path for u in b.uploads], "bytes": sum(u.size for u in b.uploads)})
        err = self._session.failure(b.error)
        if err is b.error:  # a DeliveryError already; several batches may share it
            err = type(err)(*err.args)
        if b.delivered:
            err.args = (f"{err.args[0]} (already delivered: {', '.join(b.delivered)})",)
        err.delivered = list(b.delivered)
        err.__cause__ = b.error
        return err

    def _prepare_dir(self, sftp: PipelinedSftp, remote_dir: str) -> None:
        """Before a file goes to `remote_dir`: the directory exists (create_dirs) and was swept."""
        self._ensure_dir(sftp, remote_dir)
        self._sweep(sftp, remote_dir)

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
