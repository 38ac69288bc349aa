"""Prometheus text about the running gateway, written atomically to a file (node_exporter's textfile
collector) or served on 127.0.0.1:PORT. Built from the parts' `snapshot()`s; it reads nothing else."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from gisgate import durable


def render(snap: dict, now: float | None = None) -> str:
    """The Prometheus text of one snapshot (see `Watcher.snapshot`)."""
    now = time.time() if now is None else now
    c, d = snap["claims"], snap["delivery"]
    oldest = snap["oldest_pending_created"]
    lines: list[str] = []

    def metric(name, kind, help_, samples):
        lines.append(f"# HELP gisgate_{name} {help_}")
        lines.append(f"# TYPE gisgate_{name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
            lines.append(f"gisgate_{name}{{{lab}}} {value}" if lab else f"gisgate_{name} {value}")

    metric("files_seen_total", "counter", "Input files claimed from the inboxes.", [({}, c["seen"])])
    metric("files_processed_total", "counter", "Inputs converted and archived.", [({}, c["archived"])])
    metric("files_rejected_total", "counter", "Inputs rejected.", [({}, c["rejected"])])
    metric("files_duplicate_total", "counter", "Inputs skipped as duplicates.", [({}, c["duplicate"])])
    metric("files_stuck", "gauge", "Files still being written past stuck_seconds.", [({}, snap["stuck"])])
    metric("files_tracked", "gauge", "Inbox files waiting to become stable.", [({}, snap["tracked"])])
    metric("files_unwatched", "gauge", "Files in <root>/inbox/ where no route looks (ignored).",
           [({}, snap.get("unwatched", 0))])
    metric("deliveries_sent_total", "counter", "Files delivered.", [({}, d["sent"])])
    metric("deliveries_failed_total", "counter", "Files given up (outbox failed/).", [({}, d["failed"])])
    metric("penalty_box_total", "counter", "Delivered files the Data Server refused.", [({}, d["penalty"])])
    metric("unread_total", "counter", "Delivered files left unread past the alert time.", [({}, d["unread"])])
    metric("outbox_depth", "gauge", "Files waiting for delivery per target.",
           [({"target": t}, n) for t, n in snap["outbox_depth"].items()])
    metric("oldest_pending_age_seconds", "gauge", "Age of the oldest undelivered file.",
           [({}, round(now - oldest, 3) if oldest else 0)])
    metric("last_success_timestamp_seconds", "gauge", "Last input archived per route.",
           [({"route": r}, round(t, 3)) for r, t in c["last_success"].items()])
    metric("target_last_success_timestamp_seconds", "gauge", "Last delivery per target.",
           [({"target": t}, round(v, 3)) for t, v in d["last_success"].items()])
    streams = snap.get("streams", {})
    metric("stream_intervals_held", "gauge", "Intervals a stream holds until their end + hold_minutes.",
           [({"route": r}, s["held"]) for r, s in streams.items()])
    metric("stream_corrections_total", "counter", "Files sent again because their interval changed.",
           [({"route": r}, s["corrections"]) for r, s in streams.items()])
    metric("stream_state_bytes", "gauge", "Records a stream keeps to re-derive its intervals.",
           [({"route": r}, s["state_bytes"]) for r, s in streams.items()])
    _sources(metric, snap.get("sources", {}))
    metric("heartbeat_timestamp_seconds", "gauge", "Last turn of the watcher loop.",
           [({}, round(snap["heartbeat"], 3))])
    metric("outbox_heartbeat_timestamp_seconds", "gauge", "Last turn of the delivery loop.",
           [({}, round(d["heartbeat"], 3))])
    metric("watcher_alive", "gauge", "1 when the last canary came back as a file event.", [({}, snap["watcher_alive"])])
    metric("watcher_restarts_total", "counter", "Observer restarts after a lost canary.",
           [({}, snap["watcher_restarts"])])
    return "\n".join(lines) + "\n"


def _sources(metric, sources: dict) -> None:
    """The platform sources' lines (see connectors.runner.Runner.snapshot)."""
    metric("source_last_success_timestamp_seconds", "gauge", "Last successful poll per platform source.",
           [({"source": n}, round(x["last_success"], 3)) for n, x in sources.items() if x["last_success"]])
    metric("source_lag_seconds", "gauge", "Now minus the source's cursor (the end of what it has landed).",
           [({"source": n}, x["lag"]) for n, x in sources.items() if x["lag"] is not None])
    metric("source_errors_total", "counter", "Failed polls per source.", [({"source": n}, x["errors"])
                                                                         for n, x in sources.items()])
    metric("source_files_total", "counter", "Files a source landed in its route's inbox.",
           [({"source": n}, x["files"]) for n, x in sources.items()])
    metric("source_gap", "gauge", "1 when a feed had to start again: events may be missing.",
           [({"source": n}, int(x["gap"])) for n, x in sources.items()])
    metric("source_breaker_open", "gauge", "1 while the source's breaker holds its calls back.",
           [({"source": n}, int(x["breaker_open"])) for n, x in sources.items()])


class Metrics:
    """Publishes `render(snapshot())` to a file path or to a loopback HTTP port (`where` all digits)."""

    def __init__(self, where: str, snapshot: Callable[[], dict]):
        self.snapshot = snapshot
        self.server = None
        self.text = ""
        if where.isdigit():
            self._serve(int(where))
            self.path = None
        else:
            self.path = Path(where)

    def _serve(self, port: int) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                body = metrics.text.encode()
                self.send_response(200 if self.path in ("/", "/metrics") else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, name="gisgate-metrics", daemon=True).start()

    def publish(self) -> None:
        self.text = render(self.snapshot())
        if self.path is not None:
            durable.atomic_write(self.path, self.text.encode(), fsync=False)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
