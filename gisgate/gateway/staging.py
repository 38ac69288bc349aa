"""What of some outputs goes into the outbox, and the ledger rows that say so."""

from __future__ import annotations

import hashlib

from gisgate.gateway.ledger import Ledger, StagedOutput
from gisgate.produced import travel_key


def plan(ledger: Ledger, targets: list[str], outputs: list, batch: str, corrections: bool = True,
         unchanged: bool = True) -> tuple[list[tuple[str, str, bytes]], list[StagedOutput]]:
    """The files to stage `(target, name, bytes)` and the ledger rows of `outputs`, batched under
    `batch`. An output its target already has (same name, same bytes) is not queued again, and only
    recorded when `unchanged` says so (a stream renders unchanged intervals again and again);
    without `corrections`, a new version of a file the target already got is not queued either."""
    files, staged = [], []
    for out in outputs:
        if out.kind == "report":  # written beside the archived input, never delivered
            continue
        sha = hashlib.sha256(out.data).hexdigest()
        key, seq = travel_key(out.name, out.kind)
        interval = None if out.interval_start is None else str(out.interval_start)
        due = [t for t in targets if not ledger.has_delivery(t, out.name, sha)
               and (corrections or not ledger.delivered_before(t, out.name))]
        files += [(t, out.name, out.data) for t in due]
        if not due and not unchanged:
            continue
        for t in due or [""]:  # "" records the output without queueing it anywhere
            staged.append(StagedOutput(out.name, out.kind, interval, sha, len(out.data), t, f"{batch}:{key}", seq))
    return files, staged
