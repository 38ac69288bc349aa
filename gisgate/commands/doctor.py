"""`gisgate doctor`: check a gateway before trusting it with months of data.

Config (loads and validates), folders (exist or can be created, writable), free disk, and for every
target the same connection a delivery would open: reachability, TLS, host key, credentials, the
remote folder; for every source, a login and one small call to its platform API. Nothing is delivered
or fetched into an inbox, and no secret is printed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gisgate.errors import ConfigError, GisgateError
from gisgate.gateway.setup import Setup, setup
from gisgate.targets import open_target

MIN_FREE_BYTES = 1 << 30  # below 1 GiB (or 5 % of the disk) free, a burst of drops can fill it
MIN_FREE_SHARE = 0.05


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    detail: str
    exit_code: int = 0  # what a failure of this check means (2 config / folders, 4 a target)


def run(config_path: str | None = None, root: str | None = None, only: list[str] | None = None) -> list[Check]:
    """Every check, in order; a config that does not load is the only check then."""
    try:
        s = setup(config_path, root)
    except ConfigError as e:
        return [Check("config", False, str(e), 2)]
    checks = [Check("config", True, f"{s.source}: {len(s.config.route)} route(s), "
                                    f"{len(s.config.target)} target(s)")]
    checks += _folders(s)
    checks.append(_disk(s.root))
    for name, spec in s.config.target.items():
        if only and name not in only:
            continue
        checks.append(_target(name, spec))
    for spec in s.config.source:
        if not only or spec.name in only:
            checks.append(_source(spec))
    return checks


def _folders(s: Setup) -> list[Check]:
    out = []
    folders = [("root", s.root)] + [(f"inbox {name}", path) for name, path in s.inboxes.items()]
    for label, path in folders:
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".~gisgate-doctor-", suffix=".tmp"):
                pass
            out.append(Check(label, True, f"{path} is writable"))
        except OSError as e:
            out.append(Check(label, False, f"{path}: {e.strerror or e}", 2))
    return out


def _disk(root: Path) -> Check:
    try:
        usage = shutil.disk_usage(root)
    except OSError as e:  # the root could not be created (its check above says why)
        return Check("disk", False, f"{root}: {e.strerror or e}: cannot tell the free disk", 2)
    text = f"{usage.free / (1 << 30):.1f} GiB free of {usage.total / (1 << 30):.1f} GiB at {root}"
    low = usage.free < MIN_FREE_BYTES or usage.free < usage.total * MIN_FREE_SHARE
    return Check("disk", not low, text + (" (low: archives, outbox and ledger need room)" if low else ""), 2)


def _target(name: str, spec) -> Check:
    return _probe(f"target {name}", lambda: open_target(name, spec))


def _source(spec) -> Check:
    """Authenticate with the platform and make one small call, as a poll would."""
    from gisgate.connectors import open_connector

    return _probe(f"source {spec.name}", lambda: open_connector(spec))


def _probe(label: str, opened) -> Check:
    """Open a target or source (`opened()`), ask it to `probe()`, close it: one check."""
    try:
        thing = opened()
    except GisgateError as e:
        return Check(label, False, str(e), e.exit_code)
    try:
        return Check(label, True, thing.probe())
    except GisgateError as e:
        return Check(label, False, str(e), e.exit_code)
    finally:
        thing.close()


def exit_code(checks: list[Check]) -> int:
    """0 when every check passed, else the most severe failure's code (2 before 4)."""
    failed = [c.exit_code for c in checks if not c.ok]
    return min(failed) if failed else 0


def text(checks: list[Check]) -> str:
    width = max(len(c.what) for c in checks)
    return os.linesep.join(f"{'ok  ' if c.ok else 'FAIL'}  {c.what:<{width}}  {c.detail}" for c in checks)
