"""paramiko's SFTP client with pipelined, coalesced requests, and the SFTP-level failures it reports.

Requests are pipelined: the writes, size checks, closes, opens and renames of several files travel
together, coalesced into as few SSH packets as possible, without waiting for each other's replies
(stream.py decides what to send and when; this module sends and collects).
"""

from __future__ import annotations

import paramiko
from paramiko import sftp as proto
from paramiko.message import Message

CHUNK = 32768  # bytes per SFTP write: the largest paramiko's channel carries in one packet
FLUSH_AT = 256 * 1024  # coalesced request bytes sent without waiting for a reply to be needed
MAX_IN_FLIGHT = 256  # requests outstanding before replies are drained (bounds memory on big files)
POSIX_RENAME = "posix-rename@openssh.com"
LIMITS = "limits@openssh.com"  # the server's request-size limits; OpenSSH takes 255 KiB writes
MAX_CHUNK = 255 * 1024


class Status(Exception):
    """An SFTP status reply other than OK, with the operation and path it answered."""

    def __init__(self, code: int, message: str, op: str, path: str):
        self.code, self.op, self.path = code, op, path
        text = message or (proto.SFTP_DESC[code] if code < len(proto.SFTP_DESC) else f"status {code}")
        super().__init__(f"{op} {path}: {text}")


def reason(msg: Message) -> str:
    """The text of a status reply after its code (optional in SFTP v3)."""
    return msg.get_text() if msg.get_remainder() else ""


class Mismatch(Exception):
    """The server holds another number of bytes than were sent."""


def expect_status(reply: tuple[int, Message], op: str, path: str) -> None:
    """Raise Status unless `reply` is an OK status."""
    t, msg = reply
    if t != proto.CMD_STATUS:
        raise Status(proto.SFTP_BAD_MESSAGE, f"unexpected reply type {t}", op, path)
    code = msg.get_int()
    if code != proto.SFTP_OK:
        raise Status(code, reason(msg), op, path)


def expect_handle(reply: tuple[int, Message], path: str) -> bytes:
    t, msg = reply
    if t == proto.CMD_STATUS:
        raise Status(msg.get_int(), reason(msg), "open", path)
    return msg.get_binary()


def expect_attrs(reply: tuple[int, Message], op: str, path: str) -> paramiko.SFTPAttributes:
    t, msg = reply
    if t == proto.CMD_STATUS:
        raise Status(msg.get_int(), reason(msg), op, path)
    return paramiko.SFTPAttributes._from_msg(msg)


class _Replies:
    """Receives replies to pipelined requests: paramiko hands them to `_async_response`."""

    def __init__(self) -> None:
        self.got: dict[int, tuple[int, Message]] = {}

    def _async_response(self, t: int, msg: Message, num: int) -> None:
        self.got[num] = (t, msg)


class PipelinedSftp(paramiko.SFTPClient):
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

    _inbox = b""  # received bytes not parsed yet (from `_at` on)
    _at = 0

    def _read_all(self, n: int) -> bytes:
        """`n` bytes of the channel, read in blocks of whatever has arrived: a reply's header and body,
        and the replies that arrived together, cost one channel read (paramiko's reads one each)."""
        while len(self._inbox) - self._at < n:
            data = self.sock.recv(max(n - len(self._inbox) + self._at, 65536))
            if not data:
                raise EOFError()
            self._inbox, self._at = self._inbox[self._at:] + data, 0
        out = self._inbox[self._at:self._at + n]
        self._at += n
        return out

    def setup(self) -> None:
        self.replies = _Replies()
        self._out = bytearray()
        self._held: int | None = None  # the first request whose bytes wait in `_out`
        self._coalesce = True

    def _write_all(self, out: bytes) -> None:
        if not self._coalesce:
            return super()._write_all(out)
        self._out += out
        if len(self._out) >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Send the coalesced requests."""
        self._held = None
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
        if self._out and self._held is None:
            self._held = num
        while len(self._expecting) > MAX_IN_FLIGHT:  # paramiko's table of unanswered requests
            self._read_response()
        return num

    def collect(self, num: int) -> tuple[int, Message]:
        """Wait for the reply to request `num` (replies to other requests are kept).

        The coalesced requests are sent only when `num` is among them: while earlier requests keep
        the server busy, the requests made meanwhile gather into one send (a send per reply awaited
        would cost both sides a packet, a syscall and a wake-up each time)."""
        while num not in self.replies.got:
            if self._held is not None and num >= self._held:
                self.flush()
            paramiko.SFTPClient._read_response(self)  # one reply; no flush
        return self.replies.got.pop(num)

    def status(self, num: int, op: str, path: str) -> None:
        expect_status(self.collect(num), op, path)

    def attrs(self, num: int, op: str, path: str) -> paramiko.SFTPAttributes:
        return expect_attrs(self.collect(num), op, path)

    def max_write(self) -> int:
        """The largest write the server accepts (limits@openssh.com), capped; CHUNK when it won't say."""
        if LIMITS not in self.extensions:
            return CHUNK
        t, msg = self.collect(self.send(proto.CMD_EXTENDED, LIMITS))
        if t != proto.CMD_EXTENDED_REPLY:
            return CHUNK
        _packet, _read, write = msg.get_int64(), msg.get_int64(), msg.get_int64()
        return min(write, MAX_CHUNK) if write >= CHUNK else CHUNK
