"""SFTP delivery (paramiko): the Data Server's GIS folder reached over SSH.

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
With `create_dirs = true` missing directories are created.

Connection: one SSH connection and one SFTP channel, opened on first use and reused across
files and batches (re-opened when it died or sat idle for `idle_s`). On the first use of a
directory per connection, our own temp files left there by an interrupted delivery and untouched
for `stale_temp_s` are removed.

Speed: TCP_NODELAY is set. Without it, Nagle's algorithm holds each file's last small write
until the server's delayed ACK (~40 ms on Linux): a plain paramiko `put()` loop spends ~30-40 ms
per small file idle (OpenSSH's client sets TCP_NODELAY). Requests are pipelined: the writes, the
size check, the close, the next file's open and the previous file's rename travel together,
coalesced into as few SSH packets as possible, so a file costs about one round trip. AES-GCM is
preferred because paramiko's default cipher + HMAC spends most of its CPU on the MAC.

Host keys must be pinned (`known_hosts` file or `host_key`); an unknown or changed key is
refused with both SHA256 fingerprints. Every blocking step has a timeout
(`timeout_s`: connect, banner, key exchange, auth, each channel read) and the whole delivery has
an outer deadline (`deadline_s`) after which the connection is torn down, so a frozen server
cannot hang the gateway. Failed connects are retried `connect_attempts` times with exponential
backoff (within the deadline).

Errors from paramiko, sockets, SFTP status codes and the OS are translated once, in
`_translate`: authentication and host-key refusals, permission denied and missing directories
are PermanentDeliveryError; refused connections, timeouts, dropped connections and generic SFTP
failures (OpenSSH's answer to a full disk) are TransientDeliveryError.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import logging
import posixpath
import socket
import string
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import paramiko
from paramiko import sftp as proto
from paramiko.message import Message

from gisgate.durable import TEMP_PREFIX, TEMP_SUFFIX  # the same temp names as local writes
from gisgate.errors import ConfigError, DeliveryError, PermanentDeliveryError, TransientDeliveryError
from gisgate.produced import parse_gis_name
from gisgate.targets import Receipt
from gisgate.targets.secrets import read_secret

log = logging.getLogger(__name__)

CHUNK = 32768  # bytes per SFTP write: the largest paramiko's channel carries in one packet
FLUSH_AT = 256 * 1024  # coalesced request bytes sent without waiting for a reply to be needed
MAX_IN_FLIGHT = 256  # requests outstanding before replies are drained (bounds memory on big files)
POSIX_RENAME = "posix-rename@openssh.com"
LIMITS = "limits@openssh.com"  # the server's request-size limits; OpenSSH takes 255 KiB writes
MAX_CHUNK = 255 * 1024
TEMPLATE_VARS = {"tenant", "user", "acd", "date"}

# SFTP status codes that retrying cannot fix.
PERMANENT_STATUS = {
    proto.SFTP_NO_SUCH_FILE: "no such file or directory",
    proto.SFTP_PERMISSION_DENIED: "permission denied",
    proto.SFTP_BAD_MESSAGE: "bad message",
    proto.SFTP_OP_UNSUPPORTED: "operation unsupported",
}


# -- host keys ---------------------------------------------------------------------------------


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of a public key: `SHA256:<base64 without padding>`."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_label(host: str, port: int) -> str:
    """How known_hosts names a host: `host` on port 22, else `[host]:port`."""
    return host if port == 22 else f"[{host}]:{port}"


def pinned_keys(spec) -> dict[str, paramiko.PKey]:
    """The pinned host keys of a target, by key type, from `host_key` and/or the `known_hosts` file."""
    keys: dict[str, paramiko.PKey] = {}
    if spec.host_key:
        parts = spec.host_key.split()
        try:
            key = paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1]))
        except (IndexError, ValueError, paramiko.SSHException) as e:
            raise ConfigError(f"host_key {spec.host_key[:40]!r}: not an OpenSSH public key ({e})") from None
        keys[key.get_name()] = key
    if spec.known_hosts:
        path = Path(spec.known_hosts).expanduser()
        try:
            hostkeys = paramiko.HostKeys(str(path))
        except OSError as e:
            raise ConfigError(f"known_hosts {path}: cannot read it ({e.strerror or e})") from None
        keys.update(hostkeys.lookup(host_label(spec.host, spec.port)) or {})
    return keys


@dataclass(frozen=True)
class HostKeyInfo:
    """A server's host key as offered, and how it compares with what the config pins."""

    host: str
    port: int
    key_type: str
    fingerprint: str
    known_hosts_line: str
    status: str  # "pinned" (matches), "unknown" (nothing pinned for this host), "changed" (differs)
    pinned: tuple[str, ...]  # fingerprints of the keys the config pins for this host

    def describe(self) -> str:
        """What `gisgate hostkey` prints: the key, how it compares, and a known_hosts line to approve."""
        verdict = {
            "pinned": "matches the pinned key",
            "unknown": "NOT pinned: nothing in the config pins a key for this host",
            "changed": f"DIFFERS from the pinned key(s): {', '.join(self.pinned)} (possible attack)",
        }[self.status]
        return (f"{host_label(self.host, self.port)} offers {self.key_type} {self.fingerprint}\n"
                f"status: {verdict}\n"
                f"known_hosts line (add it only after checking the fingerprint with the server's owner):\n"
                f"{self.known_hosts_line}")


def check_host_key(spec, key: paramiko.PKey) -> HostKeyInfo:
    """Compare an offered host key with the pinned ones (does not trust anything)."""
    pins = pinned_keys(spec)
    label = host_label(spec.host, spec.port)
    pinned = pins.get(key.get_name())
    if pinned is not None and pinned.asbytes() == key.asbytes():
        status = "pinned"
    else:
        status = "changed" if pins else "unknown"
    return HostKeyInfo(
        host=spec.host, port=spec.port, key_type=key.get_name(), fingerprint=fingerprint(key),
        known_hosts_line=f"{label} {key.get_name()} {key.get_base64()}", status=status,
        pinned=tuple(f"{k.get_name()} {fingerprint(k)}" for k in pins.values()),
    )


def _refusal(info: HostKeyInfo, spec) -> str:
    where = spec.known_hosts or "host_key"
    offered = f"{info.key_type} {info.fingerprint}"
    if info.status == "unknown":
        return (f"host key of {host_label(spec.host, spec.port)} is not pinned: the server offers {offered}, "
                f"{where} pins no key for it (expected: none). Check the fingerprint out of band "
                f"(`gisgate hostkey`), then add it to known_hosts or host_key. Refusing to connect.")
    return (f"HOST KEY CHANGED for {host_label(spec.host, spec.port)}: the server offers {offered}, "
            f"{where} pins {', '.join(info.pinned)}. This may be an attack (man in the middle) or a "
            f"re-installed server; verify out of band before updating the pin. Refusing to connect.")


# -- errors ------------------------------------------------------------------------------------


class _HostKeyRefused(Exception):
    pass


class _Status(Exception):
    """An SFTP status reply other than OK, with the operation and path it answered."""

    def __init__(self, code: int, message: str, op: str, path: str):
        self.code, self.op, self.path = code, op, path
        text = message or (proto.SFTP_DESC[code] if code < len(proto.SFTP_DESC) else f"status {code}")
        super().__init__(f"{op} {path}: {text}")


class _Mismatch(Exception):
    pass


class _DeadlineExpired(Exception):
    pass


def _translate(e: BaseException, where: str, deadline_hit: bool) -> DeliveryError:
    """The one place where paramiko / socket / SFTP / OS errors become delivery errors."""
    if isinstance(e, DeliveryError):
        return e
    if isinstance(e, ConfigError):
        return PermanentDeliveryError(f"{where}: {e}")
    if deadline_hit or isinstance(e, _DeadlineExpired):
        return TransientDeliveryError(f"{where}: deadline exceeded, connection abandoned ({e})")
    if isinstance(e, _HostKeyRefused):
        return PermanentDeliveryError(f"{where}: {e}")
    if isinstance(e, paramiko.BadAuthenticationType):
        return PermanentDeliveryError(f"{where}: the server does not accept this way of logging in "
                                      f"(it allows: {', '.join(e.allowed_types) or 'none'})")
    if isinstance(e, paramiko.AuthenticationException) and "timeout" in str(e):
        return TransientDeliveryError(f"{where}: the server did not answer the login in time ({e})")
    if isinstance(e, paramiko.AuthenticationException):
        return PermanentDeliveryError(f"{where}: authentication refused ({e}); check user and key/password")
    if isinstance(e, _Status):
        if e.code in PERMANENT_STATUS:
            return PermanentDeliveryError(f"{where}: {e}")
        return TransientDeliveryError(f"{where}: {e} (the server gave no reason; disk full is one cause)")
    if isinstance(e, _Mismatch):
        return TransientDeliveryError(f"{where}: {e}")
    if isinstance(e, paramiko.ChannelException):
        return TransientDeliveryError(f"{where}: the server refused an SFTP channel ({e}); too many sessions")
    if isinstance(e, (socket.timeout, TimeoutError)):
        return TransientDeliveryError(f"{where}: timed out ({e or 'no answer'})")
    if isinstance(e, paramiko.SSHException):
        text = str(e)
        if "Incompatible" in text or "no acceptable" in text or "Unable to agree" in text:
            return PermanentDeliveryError(f"{where}: SSH negotiation failed: {text}")
        return TransientDeliveryError(f"{where}: SSH connection failed: {text or type(e).__name__}")
    if isinstance(e, (EOFError, ConnectionError, socket.gaierror)):
        return TransientDeliveryError(f"{where}: connection lost or refused: {e or type(e).__name__}")
    if isinstance(e, OSError):
        if e.errno in (errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOTDIR):
            return PermanentDeliveryError(f"{where}: {e.strerror or e}")
        return TransientDeliveryError(f"{where}: {e.strerror or e}")
    return TransientDeliveryError(f"{where}: unexpected {type(e).__name__}: {e}")


# -- the SFTP session --------------------------------------------------------------------------


class _Replies:
    """Receives replies to pipelined requests: paramiko hands them to `_async_response`."""

    def __init__(self) -> None:
        self.got: dict[int, tuple[int, Message]] = {}

    def _async_response(self, t: int, msg: Message, num: int) -> None:
        self.got[num] = (t, msg)


class _Sftp(paramiko.SFTPClient):
    """paramiko's SFTP client plus the server's extension list and raw pipelined requests.

    Uses paramiko's request framing (`_async_request`, `_read_response`), stable since paramiko 1.x,
    because its public file API waits a round trip per call and drops errors of pipelined writes.
    Requests are coalesced: they collect in a buffer that goes out as few SSH packets as possible
    when a reply is awaited (a small file's rename, write, fstat, close and next open: 1-2 packets
    instead of 5, each of which costs encryption, a MAC, a syscall and a wake-up on both sides).
    """

    extensions: dict[str, bytes]
    _coalesce = False  # off while paramiko negotiates the SFTP version in __init__

    def _send_version(self) -> int:
        m = Message()
        m.add_int(3)
        self._send_packet(proto.CMD_INIT, m)
        t, data = self._read_packet()
        if t != proto.CMD_VERSION:
            raise paramiko.SSHException("incompatible SFTP protocol")
        msg = Message(data)
        version = msg.get_int()
        self.extensions = {}
        while len(msg.get_remainder()) >= 8:
            name = msg.get_text()
            self.extensions[name] = msg.get_binary()
        return version

    def setup(self) -> None:
        self.replies = _Replies()
        self._out = bytearray()
        self._coalesce = True

    def _write_all(self, out: bytes) -> None:
        if not self._coalesce:
            return super()._write_all(out)
        self._out += out
        if len(self._out) >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Send the coalesced requests."""
        if self._out:
            data = bytes(self._out)
            self._out.clear()
            super()._write_all(data)

    def _read_response(self, waitfor=None):
        self.flush()  # whoever waits for a reply must have sent its request
        return super()._read_response(waitfor)

    def send(self, t: int, *args) -> int:
        """Send a request without waiting; its reply is kept for `collect`."""
        num = self._async_request(self.replies, t, *args)
        while len(self._expecting) > MAX_IN_FLIGHT:  # paramiko's table of unanswered requests
            self._read_response()
        return num

    def collect(self, num: int) -> tuple[int, Message]:
        """Wait for the reply to request `num` (replies to other requests are kept)."""
        while num not in self.replies.got:
            self._read_response()
        return self.replies.got.pop(num)

    def status(self, num: int, op: str, path: str) -> None:
        t, msg = self.collect(num)
        if t != proto.CMD_STATUS:
            raise _Status(proto.SFTP_BAD_MESSAGE, f"unexpected reply type {t}", op, path)
        code = msg.get_int()
        if code != proto.SFTP_OK:
            raise _Status(code, msg.get_text() if msg.get_remainder() else "", op, path)

    def handle(self, num: int, path: str) -> bytes:
        t, msg = self.collect(num)
        if t == proto.CMD_STATUS:
            code = msg.get_int()
            raise _Status(code, msg.get_text() if msg.get_remainder() else "", "open", path)
        return msg.get_binary()

    def attrs(self, num: int, op: str, path: str) -> paramiko.SFTPAttributes:
        t, msg = self.collect(num)
        if t == proto.CMD_STATUS:
            code = msg.get_int()
            raise _Status(code, msg.get_text() if msg.get_remainder() else "", op, path)
        return paramiko.SFTPAttributes._from_msg(msg)

    def max_write(self) -> int:
        """The largest write the server accepts (limits@openssh.com), capped; CHUNK when it won't say."""
        t, msg = self.collect(self.send(proto.CMD_EXTENDED, LIMITS))
        if t != proto.CMD_EXTENDED_REPLY:
            return CHUNK
        _packet, _read, write = msg.get_int64(), msg.get_int64(), msg.get_int64()
        return min(write, MAX_CHUNK) if write >= CHUNK else CHUNK

    def drain(self) -> list[bytes]:
        """Read every outstanding reply (after a failure); returns handles opened meanwhile, to close."""
        while len(self._expecting):
            self._read_response()
        handles = [msg.get_binary() for t, msg in self.replies.got.values() if t == proto.CMD_HANDLE]
        self.replies.got.clear()
        return handles


class _Watchdog:
    """Calls `on_expire` when an armed deadline passes. One long-lived thread per target: a
    `threading.Timer` per batch would cost a thread start (~0.1 ms) for every delivery."""

    def __init__(self, on_expire):
        self._on_expire = on_expire
        self._cond = threading.Condition()
        self._due: float | None = None
        self._wakes_at = float("inf")  # when the thread will look again by itself
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> None:
        with self._cond:
            self._due = time.monotonic() + seconds
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gisgate-sftp-deadline", daemon=True)
                self._thread.start()
                self._wakes_at = self._due
            elif self._due < self._wakes_at:
                self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._due = None

    def stop(self) -> None:
        """End the thread (a later `arm` starts a new one)."""
        with self._cond:
            self._due = None
            self._thread = None
            self._cond.notify()

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                while self._due is None or self._due > time.monotonic():
                    if self._thread is not me:
                        return
                    self._wakes_at = float("inf") if self._due is None else self._due
                    self._cond.wait(None if self._due is None else self._due - time.monotonic())
                self._due = None
                self._wakes_at = float("inf")
                # under the lock: a delivery that ends now waits in disarm(), so the next one
                # cannot start and be torn down by this (stale) expiry
                self._on_expire()


@dataclass
class _Upload:
    local: Path
    size: int
    remote_dir: str
    temp: str
    final: str
    handle: bytes | None = None


# -- the target --------------------------------------------------------------------------------


class SftpTarget:
    """Deliver batches of files to one SFTP server directory (see the module docstring)."""

    name: str

    def __init__(self, name: str, spec):
        self.name = name
        self.spec = spec
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
        self._fields = fields
        self._lock = threading.Lock()  # one delivery at a time on the one connection
        self._transport: paramiko.Transport | None = None
        self._sftp: _Sftp | None = None
        self._known_dirs: set[str] = set()
        self._swept: set[str] = set()  # directories cleared of stale temp files on this connection
        self._expired = threading.Event()  # set by the outer deadline
        self._watchdog = _Watchdog(self._expire)
        self._deadline_at = float("inf")
        self._last_used = float("inf")
        self.posix_rename = True  # probed per connection
        self.chunk = CHUNK  # bytes per write, probed per connection
        pinned_keys(spec)  # a bad host_key / unreadable known_hosts is a config error, found now
        self.connections = 0  # how many SSH connections were opened (tests, doctor)

    # -- public -----------------------------------------------------------------------------------
    def deliver(self, batch: list[Path], kind: str | None = None) -> Receipt:
        """Upload `batch` in order (any kind of file alike); each file appears under its final name
        complete, or not at all.

        On failure the DeliveryError's `delivered` attribute lists the files of the batch that were
        already made visible (in order), so a retry can skip them.
        """
        uploads = self._plan([Path(p) for p in batch])
        delivered: list[str] = []
        if not uploads:
            return Receipt(self.name, [])
        where = f"sftp target {self.name!r} ({self.spec.user}@{host_label(self.spec.host, self.spec.port)})"
        with self._lock, self._deadline():
            for attempt in (1, 2):
                idle = time.monotonic() - self._last_used > self.spec.idle_s  # firewalls forget quiet links
                fresh = self._sftp is None or idle or not self._alive()
                try:
                    sftp = self._connect_with_backoff() if fresh else self._sftp
                    self._send(sftp, uploads, delivered)
                    self._last_used = time.monotonic()
                    break
                except Exception as e:  # noqa: BLE001 - translated once, below
                    broken = not isinstance(e, (_Status, _Mismatch, DeliveryError))  # connection unusable
                    if broken or self._expired.is_set():
                        self._drop()
                    else:
                        self._cleanup(uploads)
                    # a reused connection may have died while idle: retry once on a new one,
                    # but only when nothing of the batch was made visible yet
                    if attempt == 1 and not fresh and broken and not delivered and not self._expired.is_set():
                        log.info("%s: reused connection failed (%s); reconnecting", where, e)
                        continue
                    err = _translate(e, where, self._expired.is_set())
                    if delivered:
                        err.args = (f"{err.args[0]} (already delivered: {', '.join(delivered)})",)
                    err.delivered = list(delivered)
                    raise err from e
        dirs = sorted({u.remote_dir for u in uploads})
        return Receipt(self.name, delivered, detail=f"{self.spec.host}:{', '.join(dirs)}",
                       extra={"remote": [posixpath.join(u.remote_dir, u.final) for u in uploads],
                              "bytes": sum(u.size for u in uploads)})

    def probe(self) -> str:
        """For `gisgate doctor`: connect (host key verified, authenticated) and look at the remote folder."""
        where = f"sftp target {self.name!r} ({self.spec.user}@{host_label(self.spec.host, self.spec.port)})"
        with self._lock, self._deadline():
            try:
                sftp = self._connect_with_backoff()
                folder = self.spec.path if not self._fields else self.spec.path.split("{")[0].rstrip("/") or "."
                sftp.attrs(sftp.send(proto.CMD_STAT, folder), "stat", folder)
            except Exception as e:  # noqa: BLE001 - translated once, here
                self._drop()
                raise _translate(e, where, self._expired.is_set()) from e
        return (f"{where}: host key pinned, logged in, {folder!r} exists"
                f"{'' if self.posix_rename else ' (no posix-rename: replacing files removes them first)'}")

    def outcomes(self, sent: list[tuple[str, float]]) -> dict[str, str]:
        """Nothing to report: an SFTP server does not say what became of delivered files."""
        return {}

    def close(self) -> None:
        """Close the connection (the next delivery opens a new one)."""
        with self._lock:
            self._drop()
            self._watchdog.stop()

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

    # -- connection -------------------------------------------------------------------------------
    def _alive(self) -> bool:
        return self._transport is not None and self._transport.is_active() and not self._sftp.sock.closed

    def _connect_with_backoff(self) -> _Sftp:
        self._drop()
        attempts = max(1, self.spec.connect_attempts)
        for attempt in range(1, attempts + 1):
            if self._expired.is_set():
                raise _DeadlineExpired("before connecting")
            try:
                return self._connect()
            except (_HostKeyRefused, paramiko.AuthenticationException, DeliveryError, ConfigError):
                raise
            except Exception as e:
                self._drop()
                if attempt == attempts or self._expired.is_set():
                    raise
                pause = self.spec.backoff_s * 2 ** (attempt - 1)
                log.info("sftp target %r: connect attempt %d failed (%s); retrying in %.1f s",
                         self.name, attempt, e, pause)
                self._expired.wait(pause)
        raise AssertionError("unreachable")

    def _connect(self) -> _Sftp:
        spec, t = self.spec, self.spec.timeout_s
        transport = open_transport(spec, self._register, max(0.1, self._deadline_at - time.monotonic()))
        key = transport.get_remote_server_key()
        info = check_host_key(spec, key)
        if info.status != "pinned":
            raise _HostKeyRefused(_refusal(info, spec))
        if spec.key_file:
            try:
                pkey = paramiko.PKey.from_path(Path(spec.key_file).expanduser())
            except (OSError, paramiko.SSHException) as e:
                raise PermanentDeliveryError(f"sftp target {self.name!r}: cannot load key_file "
                                             f"{spec.key_file}: {e}") from e
        try:
            if spec.key_file:
                transport.auth_publickey(spec.user, pkey)
            else:
                transport.auth_password(spec.user, read_secret(self.name, spec), fallback=False)
        except paramiko.AuthenticationException:
            if not transport.is_active():  # paramiko reports a connection lost during auth as a refusal
                raise EOFError("connection closed during authentication") from None
            raise
        chan = transport.open_session(timeout=t)
        chan.settimeout(t)
        chan.invoke_subsystem("sftp")
        sftp = _Sftp(chan)
        sftp.setup()
        self._sftp = sftp
        self.connections += 1
        self._known_dirs.clear()
        self._swept: set[str] = set()
        self.posix_rename = POSIX_RENAME in sftp.extensions
        self.chunk = sftp.max_write() if LIMITS in sftp.extensions else CHUNK
        if not self.posix_rename:
            log.warning("sftp target %r: server lacks %s; replacing an existing file will remove it first "
                        "(a short window without the file)", self.name, POSIX_RENAME)
        log.debug("sftp target %r: connected to %s (extensions: %s)", self.name,
                  host_label(spec.host, spec.port), ", ".join(sorted(sftp.extensions)))
        return sftp

    def _register(self, transport: paramiko.Transport) -> None:
        """Make a connection in progress reachable by the deadline, which tears it down when it passes."""
        self._transport = transport
        if self._expired.is_set():
            transport.close()

    def _drop(self) -> None:
        if self._transport is not None:
            try:
                self._transport.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail any way it likes
                pass
        self._transport = None
        self._sftp = None

    @contextlib.contextmanager
    def _deadline(self):
        """The outer deadline: when it passes, the connection is torn down under whatever waits on it."""
        self._expired.clear()
        self._deadline_at = time.monotonic() + self.spec.deadline_s
        self._watchdog.arm(self.spec.deadline_s)
        try:
            yield
        finally:
            self._watchdog.disarm()

    def _expire(self) -> None:
        self._expired.set()
        log.warning("sftp target %r: deadline of %.1f s exceeded; abandoning the connection",
                    self.name, self.spec.deadline_s)
        transport = self._transport
        if transport is not None:
            transport.close()

    # -- transfer ---------------------------------------------------------------------------------
    def _ensure_dir(self, sftp: _Sftp, remote_dir: str) -> None:
        if not self.spec.create_dirs or remote_dir in self._known_dirs or remote_dir in ("", "."):
            return
        path = ""
        for part in remote_dir.split("/"):
            path = posixpath.join(path, part) if path else (part or "/")
            if path in self._known_dirs or part in ("", "."):
                continue
            t, msg = sftp.collect(sftp.send(proto.CMD_STAT, path))
            if t == proto.CMD_STATUS:
                code = msg.get_int()
                if code != proto.SFTP_NO_SUCH_FILE:
                    raise _Status(code, msg.get_text() if msg.get_remainder() else "", "stat", path)
                sftp.status(sftp.send(proto.CMD_MKDIR, path, paramiko.SFTPAttributes()), "mkdir", path)
            self._known_dirs.add(path)
        self._known_dirs.add(remote_dir)

    def _open(self, sftp: _Sftp, u: _Upload) -> int:
        self._ensure_dir(sftp, u.remote_dir)
        flags = proto.SFTP_FLAG_WRITE | proto.SFTP_FLAG_CREATE | proto.SFTP_FLAG_EXCL
        return sftp.send(proto.CMD_OPEN, self._temp_path(u), flags, paramiko.SFTPAttributes())

    def _sweep(self, sftp: _Sftp, remote_dir: str) -> None:
        """Once per directory and connection: remove temp files an interrupted delivery left behind.

        Only our own temp names, and only when untouched for `stale_temp_s` (a live upload keeps
        its file's mtime fresh). Best effort: a directory that cannot be listed is left alone.
        """
        if not self.spec.stale_temp_s or remote_dir in self._swept:
            return
        self._swept.add(remote_dir)
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
            except _Status as e:
                log.info("sftp target %r: could not remove stale temp file (%s)", self.name, e)

    def _send(self, sftp: _Sftp, uploads: list[_Upload], delivered: list[str]) -> None:
        """Pipelined: per round, [rename previous, writes + fstat + close of this one, open of next]."""
        if not uploads:
            return
        for remote_dir in dict.fromkeys(u.remote_dir for u in uploads):
            self._ensure_dir(sftp, remote_dir)
            self._sweep(sftp, remote_dir)
        opened = self._open(sftp, uploads[0])
        uploads[0].handle = sftp.handle(opened, self._temp_path(uploads[0]))
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
            temp = self._temp_path(u)
            for num in writes:
                sftp.status(num, "write", temp)
            size = sftp.attrs(fstat, "fstat", temp).st_size
            sftp.status(closed, "close", temp)
            u.handle = None
            if size != u.size:
                raise _Mismatch(f"{temp}: the server holds {size} bytes of {u.local.name}, expected {u.size}")
            if nxt:
                nxt.handle = sftp.handle(opened, self._temp_path(nxt))
            previous = u
        self._finish_rename(sftp, previous, self._send_rename(sftp, previous))
        delivered.append(previous.final)
        log.debug("sftp target %r: delivered %d file(s)", self.name, len(uploads))

    @staticmethod
    def _temp_path(u: _Upload) -> str:
        return posixpath.join(u.remote_dir, u.temp)

    def _send_writes(self, sftp: _Sftp, u: _Upload) -> list[int]:
        nums, offset = [], 0
        for chunk in _chunks(u.local, self.chunk):
            nums.append(sftp.send(proto.CMD_WRITE, u.handle, proto.int64(offset), chunk))
            offset += len(chunk)
        if offset != u.size:
            raise PermanentDeliveryError(f"{u.local}: changed size during delivery ({u.size} -> {offset})")
        return nums

    def _send_rename(self, sftp: _Sftp, u: _Upload) -> int:
        src, dst = self._temp_path(u), posixpath.join(u.remote_dir, u.final)
        if self.posix_rename:
            return sftp.send(proto.CMD_EXTENDED, POSIX_RENAME, src, dst)
        return sftp.send(proto.CMD_RENAME, src, dst)

    def _finish_rename(self, sftp: _Sftp, u: _Upload, num: int) -> None:
        src, dst = self._temp_path(u), posixpath.join(u.remote_dir, u.final)
        try:
            sftp.status(num, "rename", f"{src} -> {dst}")
            return
        except _Status as e:
            if self.posix_rename and e.code == proto.SFTP_OP_UNSUPPORTED:
                log.warning("sftp target %r: the server announces %s but refuses it; using plain rename",
                            self.name, POSIX_RENAME)
                self.posix_rename = False
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
        sftp = self._sftp
        if sftp is None:
            return
        try:
            handles = sftp.drain() + [u.handle for u in uploads if u.handle]
            nums = [sftp.send(proto.CMD_CLOSE, h) for h in handles]
            nums += [sftp.send(proto.CMD_REMOVE, self._temp_path(u)) for u in uploads]
            for num in nums:
                sftp.collect(num)
        except Exception as e:  # noqa: BLE001 - best effort; the temp names match no GIS pattern
            log.info("sftp target %r: could not remove temp files (%s)", self.name, e)
            self._drop()
        for u in uploads:
            u.handle = None


def _chunks(path: Path, size: int):
    """The file's bytes in write-sized chunks; a local read error is not the server's fault."""
    try:
        with path.open("rb") as f:
            while chunk := f.read(size):
                yield chunk
    except OSError as e:
        raise PermanentDeliveryError(f"{path}: cannot read the file to deliver ({e.strerror or e})") from e


def open_transport(spec, register=None, time_left: float = float("inf")) -> paramiko.Transport:
    """TCP connect (TCP_NODELAY) and SSH key exchange, every step under `timeout_s`; no auth yet.

    `register(transport)` is called before the key exchange, so an outer deadline can close it.
    Prefers the host-key types the config pins, so a server with several keys offers the pinned one.
    """
    t = spec.timeout_s
    sock = socket.create_connection((spec.host, spec.port), timeout=min(t, time_left))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock)
    if register is not None:
        register(transport)
    transport.banner_timeout = t
    transport.handshake_timeout = t
    transport.auth_timeout = t
    transport.channel_timeout = t
    try:
        pins = list(pinned_keys(spec))
    except ConfigError:
        pins = []
    options = transport.get_security_options()
    supported = list(options.key_types)
    options.key_types = [k for k in pins if k in supported] + [k for k in supported if k not in pins]
    # AES-GCM authenticates as it encrypts; paramiko's default aes-ctr + hmac-sha2-256 spends more
    # CPU on the MAC than on the cipher. The other ciphers stay offered after it.
    gcm = [c for c in options.ciphers if c.startswith("aes") and c.endswith("-gcm@openssh.com")]
    options.ciphers = gcm + [c for c in options.ciphers if c not in gcm]
    try:
        transport.start_client(timeout=t)
    except BaseException:
        transport.close()
        raise
    return transport


def host_key_of(config_path: str | Path | None, name: str) -> HostKeyInfo:
    """`gisgate hostkey NAME`: the configured sftp target's server key, fetched and compared, not trusted."""
    from gisgate import config

    cfg = config.load(config_path)
    spec = cfg.target.get(name)
    if spec is None or spec.kind != "sftp":
        sftp_targets = sorted(k for k, t in cfg.target.items() if t.kind == "sftp")
        known = ", ".join(sftp_targets) or "none"
        raise ConfigError(f"{config_path}: no sftp target {name!r}; sftp targets: {known}")
    return fetch_host_key(spec, name)


def fetch_host_key(spec, name: str = "") -> HostKeyInfo:
    """Connect to the target's server and report its host key and how it compares with the pin.

    Does not authenticate and trusts nothing: a human compares the fingerprint out of band and then
    pins it (known_hosts line or `host_key`).
    """
    where = f"sftp target {name!r} ({host_label(spec.host, spec.port)})"
    transport = None
    try:
        transport = open_transport(spec)
        return check_host_key(spec, transport.get_remote_server_key())
    except ConfigError:
        raise
    except Exception as e:
        raise _translate(e, where, False) from e
    finally:
        if transport is not None:
            transport.close()
