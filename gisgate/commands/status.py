"""`gisgate status`: what the gateway holds, from its ledger and outbox folders."""

from __future__ import annotations

import time
from pathlib import Path

from gisgate.errors import ConfigError
from gisgate.gateway.ledger import Ledger
from gisgate.gateway.outbox import depth
from gisgate.gateway.pickup import folder_name, unwatched
from gisgate.gateway.setup import setup
from gisgate.gateway.streams import describe
from gisgate.report import PAGE_SUFFIX


def status(config_path: str | None = None, root: str | None = None) -> dict:
    """What the ledger says: counts per state, oldest pending delivery, last errors. A root the gateway
    has not run on yet (made by `gisgate init`, or holding a config or an inbox) is an empty gateway."""
    s = setup(config_path, root)
    db = s.layout.ledger
    fresh = not db.exists()
    if fresh and s.source == "built-in defaults" and not any(p.is_dir() for p in s.inboxes.values()):
        raise ConfigError(f"{db}: no ledger here; is {s.root} the gateway root (see --root / --config)?")
    led = Ledger(":memory:" if fresh else db)  # an empty ledger in memory: status creates no file
    try:
        out = led.status()
    finally:
        led.close()
    out["root"] = str(s.root)
    out["not_run_yet"] = fresh
    strays = unwatched(s.root, list(s.inboxes.values()))
    out["unwatched"] = [str(p.relative_to(s.root)) for p in strays]
    out["watched"] = [folder_name(p, s.root) for p in s.inboxes.values()]
    out["outbox_depth"] = depth(s.layout.outbox)
    out["streams"] = describe(s)
    out["sources"] = sources(s, None if fresh else db)
    latest = out.pop("last_archived", None)
    page = latest and Path(latest + PAGE_SUFFIX)
    out["latest_report"] = page.as_uri() if page and page.is_file() else None
    return out


def sources(s, db: Path | None) -> dict:
    """Per [[source]]: last success, lag (now - cursor: the end of what it has landed), last error, and
    since when a gap may exist (a feed that had to start again)."""
    from gisgate.connectors.cursors import Cursors

    rows = []
    if db is not None:
        cursors = Cursors(db)
        try:
            rows = cursors.all()
        finally:
            cursors.close()
    now = time.time()
    out = {}
    for spec in s.config.source:
        mine = [r for r in rows if r.source == spec.name]
        marks = [r.cursor if r.cursor is not None else r.polled_at for r in mine]
        marks = [m for m in marks if m is not None]
        errors = sorted((r.last_error_at, r.what, r.last_error) for r in mine if r.last_error)
        out[spec.name] = {
            "kind": spec.kind, "route": spec.route,
            "last_success": max((r.last_success for r in mine if r.last_success), default=None),
            "lag": round(now - min(marks), 1) if marks and len(marks) == len(mine) else None,
            "last_error": f"{errors[-1][1]}: {errors[-1][2]}" if errors else None,
            "gap_since": max((r.gap_at for r in mine if r.gap_at), default=None),
            "files": sum(r.files for r in mine),
        }
    return out


def _when(ts: float) -> str:
    left = ts - time.time()
    return "now" if left <= 0 else f"in {left / 60:.0f} min"


def format_status(report: dict) -> str:
    """`gisgate status` for a human."""

    def ago(ts):
        return "-" if not ts else f"{time.time() - ts:.0f} s ago"

    lines = [f"root: {report['root']}"]
    if report.get("not_run_yet"):
        lines.append("the gateway has not run here yet (no ledger): start it with gisgate watch")
    inputs = report["inputs"]
    lines.append("inputs: " + (", ".join(f"{k} {v}" for k, v in sorted(inputs.items())) or "none yet"))
    for target, states in sorted(report["deliveries"].items()):
        lines.append(f"target {target}: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
    o = report["oldest_pending"]
    if o:
        lines.append(f"oldest pending: {o['target']} {o['name']} since {ago(o['since'])}, {o['attempts']} attempt(s)"
                     + (f", last error: {o['last_error']}" if o["last_error"] else ""))
    for route, st in sorted(report.get("streams", {}).items()):
        due = "" if not st["next_due"] else f", next due {_when(st['next_due'])}"
        lines.append(f"stream {route}: horizon {st['horizon'] or '-'} (latest record), {st['held']} interval(s) held"
                     f"{due}, {st['sent']} rendered, {st['corrections']} correction(s), "
                     f"state {st['state_bytes']:,} bytes")
        if st.get("waiting"):
            lines.append(f"stream {route} waits: {st['waiting']}")
    for name, src in sorted(report.get("sources", {}).items()):
        lag = "never fetched yet" if src["lag"] is None else f"lag {src['lag']:.0f} s"
        lines.append(f"source {name} ({src['kind']} → route {src['route']}): last success {ago(src['last_success'])}, "
                     f"{lag}, {src['files']} file(s)")
        if src["gap_since"]:
            lines.append(f"source {name}: a feed started again {ago(src['gap_since'])}: events before may be missing")
        if src["last_error"]:
            lines.append(f"source {name} last error: {src['last_error']}")
    for route, ts in sorted(report["last_success"].items()):
        lines.append(f"last success {route}: {ago(ts)}")
    if report.get("latest_report"):
        lines.append(f"latest report: {report['latest_report']}")
    for r in report["last_rejected"]:
        first = (r["error"] or "").splitlines()[0] if r["error"] else ""
        lines.append(f"rejected {r['route']}/{r['name']} ({ago(r['at'])}): {first}")
    for p in report.get("penalty_box", []):
        lines.append(f"refused by the Data Server (penalty box): {p['target']} {p['name']} ({ago(p['delivered_at'])})")
    for f in report["last_failed"]:
        lines.append(f"failed {f['target']} {f['name']} after {f['attempts']} attempt(s): {f['error']}")
    strays = report.get("unwatched", [])
    if strays:
        shown = ", ".join(strays[:10]) + (f" ... ({len(strays) - 10} more)" if len(strays) > 10 else "")
        lines.append(f"not watched: {len(strays)} file(s) where no route looks, ignored: {shown}; "
                     f"the routes watch {', '.join(report['watched'])}")
    return "\n".join(lines)
