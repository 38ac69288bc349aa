"""Pinned host keys. Host keys must be pinned (a `known_hosts` file or `host_key`); an unknown or
changed key is refused with both SHA256 fingerprints, and `gisgate hostkey` shows a server's key
for a human to check out of band (`fetch_host_key`, in session.py, connects to fetch it).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

import paramiko

from gisgate.errors import ConfigError


class HostKeyRefused(Exception):
    """The server's host key is not the pinned one (the message is `refusal`'s)."""


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


def refusal(info: HostKeyInfo, spec) -> str:
    """Why a connection is refused: both fingerprints, and what a human should do."""
    where = spec.known_hosts or "host_key"
    offered = f"{info.key_type} {info.fingerprint}"
    if info.status == "unknown":
        return (f"host key of {host_label(spec.host, spec.port)} is not pinned: the server offers {offered}, "
                f"{where} pins no key for it (expected: none). Check the fingerprint out of band "
                f"(`gisgate hostkey`), then add it to known_hosts or host_key. Refusing to connect.")
    return (f"HOST KEY CHANGED for {host_label(spec.host, spec.port)}: the server offers {offered}, "
            f"{where} pins {', '.join(info.pinned)}. This may be an attack (man in the middle) or a "
            f"re-installed server; verify out of band before updating the pin. Refusing to connect.")


def verify(spec, transport: paramiko.Transport) -> None:
    """Refuse (HostKeyRefused) a server whose host key is not the pinned one."""
    info = check_host_key(spec, transport.get_remote_server_key())
    if info.status != "pinned":
        raise HostKeyRefused(refusal(info, spec))
