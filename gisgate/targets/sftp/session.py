"""The connection of an sftp target: opening it, keeping it, bounding it in time, and translating its errors.

One SSH connection and one SFTP channel, opened on first use and reused across files and batches
(re-opened when it died or sat idle for `idle_s`). Every blocking step has a timeout (`timeout_s`:
connect, banner, key exchange, auth, each channel read) and the whole delivery has an outer
deadline (`deadline_s`) after which the connection is torn down, so a frozen server cannot hang
the gateway. Failed connects are retried `connect_attempts` times with exponential backoff (within
the deadline); a refused host key or login, or a config problem, is not retried.

Speed: TCP_NODELAY is set. Without it, Nagle's algorithm holds each file's last small write until
the server's delayed ACK (~40 ms on Linux): a plain paramiko `put()` loop spends ~30-40 ms per small
file idle (OpenSSH's client sets TCP_NODELAY). AES-GCM is preferred because paramiko's default
cipher + HMAC spends most of its CPU on the MAC.

Errors from paramiko, sockets, SFTP status codes and the OS are translated once, in `translate`:
authentication and host-key refusals, permission denied and missing directories are
PermanentDeliveryError; refused connections, timeouts, dropped connections and generic SFTP
failures (OpenSSH's answer to a full disk) are TransientDeliveryError.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
from pathlib import Path

import paramiko
from paramiko import sftp as proto

from gisgate.errors import ConfigError, DeliveryError, PermanentDeliveryError, TransientDeliveryError
from gisgate.targets.secrets import read_secret
from gisgate.targets.sftp.client import CHUNK, POSIX_RENAME, Mismatch, PipelinedSftp, Status
from gisgate.targets.sftp.hostkeys import HostKeyInfo, HostKeyRefused, check_host_key, host_label, pinned_keys, verify

log = logging.getLogger(__package__)

# SFTP status codes that retrying cannot fix.
PERMANENT_STATUS = {
    proto.SFTP_NO_SUCH_FILE: "no such file or directory",
    proto.SFTP_PERMISSION_DENIED: "permission denied",
    proto.SFTP_BAD_MESSAGE: "bad message",
    proto.SFTP_OP_UNSUPPORTED: "operation unsupported",
}


class DeadlineExpired(Exception):
    pass


def translate(e: BaseException, where: str, deadline_hit: bool) -> DeliveryError:
    """The one place where paramiko / socket / SFTP / OS errors become delivery errors."""
    if isinstance(e, DeliveryError):
        return e
    if isinstance(e, ConfigError):
        return PermanentDeliveryError(f"{where}: {e}")
    if deadline_hit or isinstance(e, DeadlineExpired):
        return TransientDeliveryError(f"{where}: deadline exceeded, connection abandoned ({e})")
    if isinstance(e, HostKeyRefused):
        return PermanentDeliveryError(f"{where}: {e}")
    if isinstance(e, paramiko.BadAuthenticationType):
        return PermanentDeliveryError(f"{where}: the server does not accept this way of logging in "
                                      f"(it allows: {', '.join(e.allowed_types) or 'none'})")
    if isinstance(e, paramiko.AuthenticationException) and "timeout" in str(e):
        return TransientDeliveryError(f"{where}: the server did not answer the login in time ({e})")
    if isinstance(e, paramiko.AuthenticationException):
        return PermanentDeliveryError(f"{where}: authentication refused ({e}); check user and key/password")
    if isinstance(e, Status):
        if e.code in PERMANENT_STATUS:
            return PermanentDeliveryError(f"{where}: {e}")
        return TransientDeliveryError(f"{where}: {e} (the server gave no reason; disk full is one cause)")
    if isinstance(e, Mismatch):
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


def fetch_host_key(spec, name: str = "") -> HostKeyInfo:
    """Connect to an sftp target's server (its config table `spec`) and report its host key and how
    it compares with the pin: what `gisgate hostkey NAME` shows.

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
        raise translate(e, where, False) from e
    finally:
        if transport is not None:
            transport.close()


class Session:
    """The one connection of a target (see the module docstring), and what it learnt of the server:
    `posix_rename` and the write size `chunk` are probed per connection; `known_dirs` and `swept`
    are the directories it has made sure of and cleared of stale temp files."""

    def __init__(self, name: str, spec):
        self.name, self.spec = name, spec
        self.transport: paramiko.Transport | None = None
        self.sftp: PipelinedSftp | None = None
        self.connections = 0  # how many SSH connections were opened (tests, doctor)
        self.posix_rename = True
        self.chunk = CHUNK  # bytes per write
        self.known_dirs: set[str] = set()
        self.swept: set[str] = set()
        self._lock = threading.Lock()  # one delivery at a time on the one connection
        self._expired = threading.Event()  # set by the outer deadline
        self._watchdog = _Watchdog(self._expire)
        self._deadline_at = float("inf")
        self._last_used = float("inf")
        self.time_left = None  # a caller's deadline, seconds left (see targets.Target): cuts deadline_s

    @property
    def where(self) -> str:
        """How messages name the target: `sftp target 'ds' (user@host)`."""
        return f"sftp target {self.name!r} ({self.spec.user}@{host_label(self.spec.host, self.spec.port)})"

    @property
    def expired(self) -> bool:
        return self._expired.is_set()

    def failure(self, e: BaseException) -> DeliveryError:
        """The delivery error for `e` (a deadline that passed is said so, whatever broke)."""
        return translate(e, self.where, self.expired)

    @contextlib.contextmanager
    def exclusive(self):
        """One user of the connection at a time, under the outer deadline: when it passes, the
        connection is torn down under whatever waits on it."""
        with self._lock:
            self._expired.clear()
            limit = self.spec.deadline_s if self.time_left is None else min(self.spec.deadline_s, self.time_left())
            if limit <= 0:
                raise TransientDeliveryError(f"{self.where}: not sent: the deadline was reached")
            self._deadline_at = time.monotonic() + limit
            self._watchdog.arm(limit)
            try:
                yield
            finally:
                self._watchdog.disarm()

    def rearm(self) -> None:
        """A batch of a run ended: the outer deadline starts again for the next one (it bounds each
        delivery, and a run of many batches is many deliveries), cut to the caller's time left."""
        limit = self.spec.deadline_s if self.time_left is None else min(self.spec.deadline_s, self.time_left())
        self._deadline_at = time.monotonic() + max(0.0, limit)
        self._watchdog.arm(max(0.0, limit))

    def stale(self) -> bool:
        """No connection to reuse: none yet, a dead one, or one idle too long (firewalls forget quiet links)."""
        idle = time.monotonic() - self._last_used > self.spec.idle_s
        return self.sftp is None or idle or not self._alive()

    def touch(self) -> None:
        self._last_used = time.monotonic()

    def connect(self) -> PipelinedSftp:
        """A new connection, retried with exponential backoff; refusals are not retried."""
        self.drop()
        attempts = max(1, self.spec.connect_attempts)
        for attempt in range(1, attempts + 1):
            if self.expired:
                raise DeadlineExpired("before connecting")
            try:
                return self._connect()
            except (HostKeyRefused, paramiko.AuthenticationException, DeliveryError, ConfigError):
                raise
            except Exception as e:
                self.drop()
                if attempt == attempts or self.expired:
                    raise
                pause = self.spec.backoff_s * 2 ** (attempt - 1)
                log.info("sftp target %r: connect attempt %d failed (%s); retrying in %.1f s",
                         self.name, attempt, e, pause)
                self._expired.wait(pause)
        raise AssertionError("unreachable")

    def drop(self) -> None:
        """Forget the connection, closing it if it is still open."""
        if self.transport is not None:
            try:
                self.transport.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail any way it likes
                pass
        self.transport = None
        self.sftp = None

    def close(self) -> None:
        with self._lock:
            self.drop()
            self._watchdog.stop()

    def _alive(self) -> bool:
        return self.transport is not None and self.transport.is_active() and not self.sftp.sock.closed

    def _connect(self) -> PipelinedSftp:
        spec = self.spec
        transport = open_transport(spec, self._register, max(0.1, self._deadline_at - time.monotonic()))
        verify(spec, transport)
        self._login(transport)
        chan = transport.open_session(timeout=spec.timeout_s)
        chan.settimeout(spec.timeout_s)
        chan.invoke_subsystem("sftp")
        sftp = PipelinedSftp(chan)
        sftp.setup()
        self.sftp = sftp
        self.connections += 1
        self.known_dirs.clear()
        self.swept.clear()
        self.posix_rename = POSIX_RENAME in sftp.extensions
        self.chunk = sftp.max_write()
        if not self.posix_rename:
            log.warning("sftp target %r: server lacks %s; replacing an existing file will remove it first "
                        "(a short window without the file)", self.name, POSIX_RENAME)
        log.debug("sftp target %r: connected to %s (extensions: %s)", self.name,
                  host_label(spec.host, spec.port), ", ".join(sorted(sftp.extensions)))
        return sftp

    def _login(self, transport: paramiko.Transport) -> None:
        spec = self.spec
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

    def _register(self, transport: paramiko.Transport) -> None:
        """Make a connection in progress reachable by the deadline, which tears it down when it passes."""
        self.transport = transport
        if self.expired:
            transport.close()

    def _expire(self) -> None:
        self._expired.set()
        log.warning("sftp target %r: deadline of %.1f s exceeded; abandoning the connection",
                    self.name, self.spec.deadline_s)
        transport = self.transport
        if transport is not None:
            transport.close()
