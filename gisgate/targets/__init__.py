"""Delivery targets: one module per kind (`TARGETS`), each a class that satisfies `Target`.

What callers use of a target (the outbox worker, `gisgate deliver`, `gisgate doctor`):

    name                  the config name, for messages and receipts
    deliver(batch, kind)  send one batch; returns a Receipt or raises a DeliveryError
    probe()               for `doctor`: reach the server and log in, without delivering anything
    outcomes(sent)        what the receiving side did with files already delivered
    close()               release the connection or session (the next delivery opens a new one)
    time_left             optional: a function giving the seconds left before the caller's deadline
                          (`gisgate deliver` sets it): no request waits longer; none left, none is sent
    deliver_many(batches, kind)  optional (sftp): several batches in one pipelined run; returns each
                          tried batch's Receipt or DeliveryError, in order (`gisgate deliver` uses it)

A batch is the list of files that must travel together, in sending order: an interval's AGENT and
SERVICE files; a contact batch's media first and its CONTACT CSV last. `kind` is the output kind of
the batch when the caller knows it (REST targets choose the endpoint by it and refuse kinds they
cannot take; folder and sftp place any file alike). Each target translates its library's errors
once into TransientDeliveryError (retry later) or PermanentDeliveryError (a human must act), raised
`from` the library's exception. Secrets (`*_env`, `*_file`) are read and kept out of logs by
`targets.secrets`. Targets never import the config module: they receive their config table.
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
    """Everything callers use of a target (see the module docstring)."""

    name: str

    def deliver(self, batch: list[Path], kind: str | None = None) -> Receipt:
        """Send `batch` in order; on failure the error's `delivered` may list the files already visible."""
        ...

    def probe(self) -> str:
        """Reach the server (and log in) without delivering; a line saying what was checked."""
        ...

    def outcomes(self, sent: list[tuple[str, float]]) -> dict[str, str]:
        """Verdicts on delivered files `(name, delivered_at)` the receiving side has acted on:
        "accepted", "penalty" (refused), "unread" (not picked up in time). Files with no verdict, and
        every file of a target that cannot look (all but a folder watching the Data Server's
        archives and penaltyBox), are left out: `{}` means "nothing to report"."""
        ...

    def close(self) -> None:
        """Release the connection or session; the next delivery opens a new one."""
        ...


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
