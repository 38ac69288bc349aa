"""A real OpenSSH `sshd` on a free loopback port, for tests and benchmarks.

Everything lives in one throwaway directory: per-run ed25519 host and client keys, an
`authorized_keys`, a dedicated `sshd_config` (no PAM, `StrictModes no`, `internal-sftp` starting
in the served directory), the log file and a `known_hosts` that pins the host key. sshd runs in
the foreground as the current user (root in CI) and is stopped by the PID we started — never by name.

    with Sshd.start(tmp_dir) as server:
        server.port, server.user, server.client_key, server.known_hosts, server.root

Relative SFTP paths resolve inside `server.root` (`internal-sftp -d`), so a target with
`path = "gis/acme"` writes to `server.root / "gis/acme"`.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")  # sshd -t refuses to run as root without it; created, never removed


def keygen(path: Path, kind: str = "ed25519") -> Path:
    """Make a passphrase-less key pair `path` + `path.pub`; returns the private key's path."""
    cmd = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "gisgate-test", "-f", str(path)]
    subprocess.run(cmd, check=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Sshd:
    base: Path  # the throwaway directory holding keys, config, log
    host: str = "127.0.0.1"
    port: int = 0
    user: str = field(default_factory=getpass.getuser)
    extra_config: str = ""  # appended to sshd_config, e.g. "MaxSessions 2"
    served: Path | None = None  # the directory SFTP sessions start in; default base/"root"
    proc: subprocess.Popen | None = None

    # -- paths ---------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """The served directory: relative SFTP paths land here."""
        return self.served or self.base / "root"

    @property
    def client_key(self) -> Path:
        return self.base / "client_ed25519"

    @property
    def host_key(self) -> Path:
        return self.base / "host_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.base / "known_hosts"

    @property
    def log(self) -> Path:
        return self.base / "sshd.log"

    @property
    def config(self) -> Path:
        return self.base / "sshd_config"

    @property
    def host_key_line(self) -> str:
        """The public host key as `type base64` (what a `host_key = ...` config entry holds)."""
        return " ".join(self.host_key.with_suffix(".pub").read_text().split()[:2])

    # -- lifecycle -------------------------------------------------------------------------------
    @classmethod
    def start(cls, base: Path, extra_config: str = "", timeout: float = 10.0, root: Path | None = None) -> Sshd:
        """Generate keys and config under `base`, start sshd on a free port, wait until it accepts.

        `root` serves an existing directory (e.g. a gateway inbox) instead of `base/root`.
        """
        server = cls(base=Path(base), extra_config=extra_config, served=Path(root) if root else None)
        server._prepare()
        server.run(timeout)
        server.write_known_hosts()
        return server

    def _prepare(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        keygen(self.host_key)
        keygen(self.client_key)
        shutil.copy(self.client_key.with_suffix(".pub"), self.base / "authorized_keys")
        if os.geteuid() == 0:
            PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)

    def _write_config(self) -> None:
        self.config.write_text(
            f"""\
Port {self.port}
ListenAddress {self.host}
HostKey {self.host_key}
PidFile {self.base}/sshd.pid
AuthorizedKeysFile {self.base}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
Subsystem sftp internal-sftp -d {self.root}
LogLevel VERBOSE
{self.extra_config}
"""
        )

    def run(self, timeout: float = 10.0) -> None:
        """(Re)start sshd; keeps the port it had, else picks a free one (retrying on a lost race)."""
        keep_port = bool(self.port)
        for _attempt in range(5):
            if not keep_port:
                self.port = free_port()
            self._write_config()
            check = subprocess.run([SSHD, "-t", "-f", str(self.config)], capture_output=True, text=True)
            if check.returncode != 0:
                raise RuntimeError(f"sshd -t rejected {self.config}:\n{check.stderr}")
            with self.log.open("a") as log:
                log.write(f"--- starting sshd on port {self.port}\n")
            # -D: stay in the foreground (so we own the PID); -E: log to a file
            self.proc = subprocess.Popen([SSHD, "-D", "-E", str(self.log), "-f", str(self.config)])
            if self._wait_accepting(timeout):
                return
            self.stop()
            if keep_port:
                break
        where = f"{self.host}:{self.port}"
        raise RuntimeError(f"sshd did not accept connections on {where}; its log:\n{self.log_text()}")

    def _wait_accepting(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.01)
        return False

    def stop(self) -> None:
        """Stop the listener we started (and, with it, nothing else of anybody's)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_tree(signal.SIGCONT)  # a frozen sshd cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def stop_all(self) -> None:
        """Stop the listener and every per-connection child it forked (a full server outage)."""
        children = self._children()
        self.stop()
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def freeze(self) -> None:
        """SIGSTOP the listener and its per-connection children: a server that accepts and never answers."""
        self._signal_tree(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_tree(signal.SIGCONT)

    def _children(self) -> list[int]:
        import psutil

        if self.proc is None:
            return []
        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _signal_tree(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for pid in [self.proc.pid, *self._children()]:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log written)"

    def new_host_key(self) -> None:
        """Replace the host key (a 'changed host key' / MITM simulation); restart to take effect."""
        for p in (self.host_key, self.host_key.with_suffix(".pub")):
            p.unlink()
        keygen(self.host_key)

    def write_known_hosts(self, path: Path | None = None) -> Path:
        """A known_hosts file pinning the current host key, in the `[host]:port` form."""
        path = path or self.known_hosts
        path.write_text(f"[{self.host}]:{self.port} {self.host_key_line}\n")
        return path

    def __enter__(self) -> Sshd:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
