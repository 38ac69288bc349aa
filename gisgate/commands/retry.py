"""`gisgate retry`: rejected inputs back to their inbox, failed outputs (with their batch) back to pending."""

from __future__ import annotations

import re
from pathlib import Path

from gisgate.errors import ConfigError
from gisgate.gateway import outbox
from gisgate.gateway.ledger import Ledger
from gisgate.gateway.setup import Setup, setup


def retry(paths: list[str], all_rejected: bool = False, config_path: str | None = None,
          root: str | None = None) -> list[str]:
    """Send rejected inputs back to their inbox and failed outputs back to pending; what moved where."""
    s = setup(config_path, root)
    if not s.layout.ledger.is_file():
        raise ConfigError(f"{s.root}: no gateway has run here (no gisgate.db): nothing to retry "
                          "(see --root / --config)")
    led = Ledger(s.layout.ledger)
    moved = []
    try:
        files = [Path(p).resolve() for p in paths]
        if all_rejected:
            files += [p for p in sorted((s.root / "rejected").glob("*/*/*"))
                      if p.is_file() and not p.name.endswith((".error.txt", ".done"))]
        for f in files:
            moved.append(_retry_one(s, led, f))
    finally:
        led.close()
    return moved


def _retry_one(s: Setup, led: Ledger, f: Path) -> str:
    if not f.is_file():
        raise ConfigError(f"{f}: no such file")
    rel = f.relative_to(s.root) if f.is_relative_to(s.root) else None
    parts = rel.parts if rel else ()
    if len(parts) == 4 and parts[0] == "rejected":
        row = led.input_by_dest(str(f))
        route = s.route(parts[1])
        name = row.name if row else f.name
        dest = s.inboxes[route.name] / name
        if dest.exists():
            raise ConfigError(f"{dest} exists already; move it away first")
        outbox.move(f, dest)
        if row:
            led.set_input(row.id, "retried")
        return f"{f} -> {dest}"
    if len(parts) == 4 and parts[0] == "outbox" and parts[2] == "failed":
        target = parts[1]
        failed = outbox.folder(s.layout.outbox, target, "failed")
        sha = outbox.sha256_file(f)
        rows = [r for r in led.deliveries_in("failed", target) if r.sha256 == sha and r.name == _unsuffixed(f.name)]
        if not rows:
            raise ConfigError(f"{f}: the ledger has no failed delivery of these bytes")
        # the whole batch goes back, so its files travel together again
        batch = [r for r in led.deliveries_in("failed", target) if r.batch == rows[-1].batch]
        by_content = {(_unsuffixed(p.name), outbox.sha256_file(p)): p for p in failed.iterdir()
                      if p.is_file() and not p.name.endswith(".reason.txt")}
        moved = []
        for r in batch:
            src = by_content.get((r.name, r.sha256))
            if src is not None:
                outbox.move(src, outbox.folder(s.layout.outbox, target, "pending") / r.name)
                moved.append(r)
        led.requeue([r.id for r in moved])
        return f"{f} -> {target} pending ({len(moved)} file(s) of its batch)"
    raise ConfigError(f"{f}: not under {s.root}/rejected/<route>/<date>/ or {s.root}/outbox/<target>/failed/")


def _unsuffixed(name: str) -> str:
    """`x~2.SERVICE` -> `x.SERVICE`: the name before `outbox.unique_path` made it unique."""
    return re.sub(r"~\d+(?=\.|$)", "", name, count=1)
