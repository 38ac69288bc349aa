"""An in-process asyncssh SFTP server with injectable faults, for what a real sshd cannot do on demand.

    with FaultySftpServer(tmp_path) as server:
        server.faults.no_posix_rename = True     # no posix-rename@openssh.com, plain rename only
        server.faults.disk_full = True           # every write fails: "No space left on device"
        server.faults.full_after_writes = 1      # ... every write after the first
        server.faults.drop_at = 40_000           # abort the connection once a write reaches this offset
        server.faults.short_at = 40_000          # acknowledge every write, store no byte from this offset on
        server.faults.deny = "locked"            # opening a path containing this: permission denied

Runs its own event loop in a thread on a free loopback port, serves `root` (chrooted), with an
ed25519 host key (`host_key_line` for a `host_key = ...` pin) and either a client key
(`client_key`, OpenSSH format) or a password.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path

import asyncssh
from asyncssh.sftp import SFTPServerHandler


@dataclass
class Faults:
    no_posix_rename: bool = False
    no_overwrite: bool = False  # posix-rename onto an existing name fails (as on some Windows servers)
    disk_full: bool = False
    full_after_writes: int | None = None  # the disk fills up after this many writes
    drop_at: int | None = None
    short_at: int | None = None  # writes report success, but each file keeps only its first short_at bytes
    deny: str | None = None
    writes: int = 0  # writes seen (all files)


class _Sftp(asyncssh.SFTPServer):
    def __init__(self, chan, root: Path, faults: Faults):
        super().__init__(chan, chroot=str(root))
        self.faults = faults

    def open(self, path, pflags, attrs):
        if self.faults.deny and self.faults.deny.encode() in path:
            raise asyncssh.SFTPPermissionDenied("Permission denied")
        return super().open(path, pflags, attrs)

    def write(self, file_obj, offset, data):
        self.faults.writes += 1
        full_after = self.faults.full_after_writes
        if self.faults.disk_full or (full_after is not None and self.faults.writes > full_after):
            raise asyncssh.SFTPFailure("No space left on device")
        if self.faults.drop_at is not None and offset + len(data) >= self.faults.drop_at:
            super().write(file_obj, offset, data[: max(0, self.faults.drop_at - offset)])
            self.channel.get_connection().abort()
            return None
        if self.faults.short_at is not None and offset + len(data) > self.faults.short_at:
            super().write(file_obj, offset, data[: max(0, self.faults.short_at - offset)])
            return None  # SSH_FX_OK: the client is told all of it was written
        return super().write(file_obj, offset, data)

    def posix_rename(self, oldpath, newpath):
        if self.faults.no_posix_rename:
            raise asyncssh.SFTPOpUnsupported("posix-rename not supported")
        if self.faults.no_overwrite and Path(self.map_path(newpath).decode()).exists():
            raise asyncssh.SFTPFailure("Failure")
        return super().posix_rename(oldpath, newpath)


class _Server(asyncssh.SSHServer):
    def __init__(self, password: str | None):
        self.password = password

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return self.password is not None

    def validate_password(self, username: str, password: str) -> bool:
        return password == self.password


class FaultySftpServer:
    def __init__(self, base: Path, password: str | None = None):
        self.base = Path(base)
        self.root = self.base / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.faults = Faults()
        self.password = password
        self.user = "gisgate"
        self.host = "127.0.0.1"
        self.port = 0
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_key_line = host_key.export_public_key("openssh").decode().split(" ")[0:2]
        self.host_key_line = " ".join(self.host_key_line)
        client = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = self.base / "client_ed25519"
        client.write_private_key(str(self.client_key), format_name="openssh")
        self._host_key = host_key
        self._authorized = asyncssh.import_authorized_keys(client.export_public_key("openssh").decode())
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._listener = None
        self._original_extensions = None

    def start(self) -> FaultySftpServer:
        self._thread.start()
        self._listener = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        self.port = self._listener.sockets[0].getsockname()[1]
        return self

    async def _listen(self):
        faults, root = self.faults, self.root
        return await asyncssh.listen(
            self.host, 0, server_host_keys=[self._host_key],
            authorized_client_keys=self._authorized if self.password is None else None,
            server_factory=lambda: _Server(self.password),
            sftp_factory=lambda chan: _Sftp(chan, root, faults),
            allow_scp=False,
        )

    async def _close(self) -> None:
        self._listener.close()  # asyncio servers must be closed from their own loop
        await self._listener.wait_closed()

    def advertise_posix_rename(self, on: bool) -> None:
        """Add or drop posix-rename@openssh.com from the extensions announced to new sessions."""
        if self._original_extensions is None:
            self._original_extensions = list(SFTPServerHandler._extensions)
        SFTPServerHandler._extensions = [
            e for e in self._original_extensions if on or e[0] != b"posix-rename@openssh.com"
        ]

    def stop(self) -> None:
        if self._original_extensions is not None:
            SFTPServerHandler._extensions = self._original_extensions
        if self._listener is not None:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> FaultySftpServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
