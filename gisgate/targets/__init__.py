"""Delivery targets: one module per kind, each a class with `deliver(batch) -> Receipt` and `close()`.

A batch is the list of files that must travel together, in sending order: an interval's AGENT and
SERVICE files; a contact batch's media first and its CONTACT CSV last. Each target translates its
library's errors once into TransientDeliveryError (retry later) or PermanentDeliveryError (a human
must act), raised `from` the library's exception.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gisgate.errors import ConfigError

TARGETS: dict[str, str] = {
    "folder": "gisgate.targets.folder:FolderTarget",
    "sftp": "gisgate.targets.sftp:SftpTarget",
    "webex": "gisgate.targets.webex:WebexTarget",
    "cwfm": "gisgate.targets.cwfm:CwfmTarget",
}


@dataclass(frozen=True)
class Receipt:
    target: str
    delivered: list[str]  # file names, in the order they were made visible to the WFM side
    detail: str = ""  # e.g. the remote path or the server's answer (never a secret)
    extra: dict = field(default_factory=dict)


class Target(Protocol):
    name: str

    def deliver(self, batch: list[Path]) -> Receipt: ...

    def close(self) -> None: ...


def identity(path: Path) -> tuple[str, int, int]:
    """Same path, size and modification time: the same file (to resume a partly sent one on retry)."""
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def open_target(name: str, spec) -> Target:
    """Build the target called `name` from its config table (`config.Target`)."""
    if spec.kind not in TARGETS:
        raise ConfigError(f"target {name!r}: unknown kind {spec.kind!r}; known kinds: {', '.join(TARGETS)}")
    module, _, cls = TARGETS[spec.kind].partition(":")
    return getattr(importlib.import_module(module), cls)(name, spec)
