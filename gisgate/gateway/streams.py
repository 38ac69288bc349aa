"""The stream routes of one gateway: their inputs merged into the state, their due intervals
rendered and staged for delivery (see stream/stream.py for what a stream promises).

A route is a stream when `stream = true` (the default) and its outputs are GIS, WHIT, real-time
states or Cloud Connect bodies; bulk contact imports go file by file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

import polars as pl

from gisgate.config import Route
from gisgate.errors import ConfigError, InputError
from gisgate.gateway import outbox
from gisgate.gateway.ledger import Ledger
from gisgate.gateway.setup import Setup
from gisgate.gateway.staging import plan
from gisgate.gateway.stream import cloud
from gisgate.gateway.stream.store import SqliteStore, at, us
from gisgate.gateway.stream.stream import Changes, Stream
from gisgate.model import Batch, Output
from gisgate.produced import gis_name
from gisgate.render import cwfm, rtstate

log = logging.getLogger("gisgate.stream")

STREAMED = {"gis", "whit", "rtstate", "cwfm"}
INTERVALS = {"gis", "whit", "cwfm"}  # rendered from the intervals (Cloud Connect: its call volume)
EVENTS = {"rtstate": "rtstate.sent", "cwfm": cloud.SENT_KIND}  # state changes sent as they arrive, each once


def streams(route: Route) -> bool:
    """Whether `route` converts as one stream."""
    return route.stream and bool(route.outputs) and set(route.outputs) <= STREAMED


class Streams:
    """Every stream route's `Stream`, and the staging of what they render."""

    def __init__(self, s: Setup, ledger: Ledger, lock: threading.Lock, wake: Callable[[], None],
                 hook: Callable[[str], None], render: Callable, events: Callable | None = None):
        """`render` and `events` are the pipeline's `render_intervals` and `state_events`; `lock`, `wake`
        and `hook` are the outbox's."""
        self.events = events
        self.setup = s
        self.ledger = ledger
        self.lock = lock
        self.wake = wake
        self.hook = hook
        self.store = SqliteStore(s.layout.root / "stream.db")
        self.streams = {r.name: Stream(r, s.convert_options(r, r.outputs[0]), self.store, render)
                        for r in s.config.route if streams(r)}
        self.flushes = 0

    def options(self, route: Route) -> list:
        """The route's conversion options, now: mapping files changed since are read again."""
        return [self.setup.convert_options(route, k) for k in route.outputs] if route.name in self.streams else []

    def take(self, route: Route, input_id: int, parsed) -> Changes:
        """Merge one parsed input into its route's stream (InputError: refused, nothing changed)."""
        return self.streams[route.name].take(input_id, parsed)

    def realtime(self, route: Route, input_id: int, parsed) -> int:
        """Stage the input's state changes not sent before, as real-time states and as Cloud Connect
        agent activity (each change once per output, at once: no hold). Staged first, then marked
        sent: a crash in between stages the same files again under the same names, which the outbox
        takes as already queued."""
        wanted = [o for o in self.options(route) if o.to in EVENTS]
        found = {k: f for k, f in parsed.records.items() if f is not None and f.height}
        if not wanted or self.events is None or not found:
            return 0
        stream = self.streams[route.name]
        events = self.events(found, parsed.told, wanted[0])
        if events is None or events.is_empty():
            return 0
        staged = 0
        for o in wanted:
            fresh = stream.unsent(events, EVENTS[o.to])
            if fresh.is_empty():
                continue
            outputs, pending = self._event_outputs(stream, o, input_id, fresh)
            with self.lock:
                files, rows = plan(self.ledger, route.targets, outputs, f"{route.name}~rt{input_id}")
                outbox.stage_many(self.setup.layout.outbox, files)
                self.ledger.record_outputs(input_id, rows, None)
            self.hook("after-realtime-stage")
            if pending is not None:
                cloud.remember(stream.meta, pending)
            stream.mark_sent(fresh, EVENTS[o.to])
            log.info("%s: %d state change(s) sent as %s", route.name, fresh.height,
                     "real-time states" if o.to == "rtstate" else "Cloud Connect agent activity")
            staged += len(files)
        return staged

    @staticmethod
    def _event_outputs(stream: Stream, o, input_id: int, fresh: pl.DataFrame) -> tuple[list[Output], dict | None]:
        if o.to == "cwfm":
            return cloud.pick(stream.meta, list(cwfm.render_events(fresh, o, f"{input_id:08d}")))[:2]
        batch = Batch(state_events=fresh.with_columns(pl.lit(None, pl.String).alias("raw_state")))
        return [Output(f"rtstate-{input_id:08d}-{r.name.removeprefix('rtstate-')}", r.data, r.kind)
                for r in rtstate.render(batch, o)], None

    def flush(self, now: float | None = None) -> int:
        """Render every stream's due intervals and stage the files whose bytes changed. Returns how
        many files were staged (the caller wakes the delivery worker)."""
        now = time.time() if now is None else now
        staged = 0
        for stream in self.streams.values():
            starts = stream.due(now)
            if starts:
                staged += self._flush(stream, starts)
        return staged

    def _flush(self, stream: Stream, starts: list[int]) -> int:
        route = stream.route
        try:
            outputs = stream.render(starts, [o for o in self.options(route) if o.to in INTERVALS])
        except (ConfigError, InputError) as e:  # e.g. an agent's home queue is not known yet
            if stream.meta.get("blocked") != str(e):
                log.error("%s: %d interval(s) wait: %s", route.name, len(starts), e)
                stream.meta["blocked"] = str(e)
            return 0
        stream.meta.pop("blocked", None)
        self._emptied(stream, starts, {o.name for o in outputs})
        outputs, pending, corrected = cloud.pick(stream.meta, outputs, route.corrections)
        corrections = corrected + sum(1 for o in outputs for t in route.targets if self.ledger.delivered_before(
            t, o.name) and not self.ledger.has_delivery(t, o.name, _sha(o.data)))
        self.flushes += 1
        by_input: dict[int, list] = {}
        firsts = stream.meta["dirty"]
        for o in outputs:
            key = str(us(o.interval_start)) if o.interval_start is not None else None
            by_input.setdefault(int(firsts.get(key) or max(firsts.values())), []).append(o)
        queued = 0
        with self.lock:
            planned = {i: plan(self.ledger, route.targets, outs, f"{route.name}~{self.flushes}", route.corrections,
                               unchanged=False) for i, outs in by_input.items()}
            outbox.stage_many(self.setup.layout.outbox, [f for files, _ in planned.values() for f in files])
            self.hook("after-stage")
            for i, (files, staged) in planned.items():
                self.ledger.record_outputs(i, staged, None)
                queued += len(files)
        self.hook("after-commit")
        cloud.remember(stream.meta, pending)
        stream.done(starts, corrections)
        if corrections:
            log.warning("%s: %d file(s) or record(s) of %d interval(s) changed after they were sent: %s", route.name,
                        corrections,
                        len(starts), "sent again as corrections" if route.corrections else
                        "NOT sent again (corrections = false)")
        log.info("%s: %d interval(s) rendered, %d file(s) queued", route.name, len(starts), queued)
        return queued

    def _emptied(self, stream: Stream, starts: list[int], names: set[str]) -> None:
        """An interval whose AGENT file went out before and that now has no agent in session (a logout
        that arrived late) cannot be emptied at the Data Server: no file says "nobody". Said, loudly."""
        route = stream.route
        if "gis" not in route.outputs:
            return
        o = stream.options
        zone = ZoneInfo(o.tz)
        for s in starts:
            local = at(s).astimezone(zone)
            name = gis_name(local, local.utcoffset(), o.acd, "agent", o.utc_offset_token)
            if name not in names and any(self.ledger.delivered_before(t, name) for t in route.targets):
                log.warning("%s: %s now holds no agent in session, but it was sent with agents before; the "
                            "Data Server keeps that version (a file without agents cannot replace it)",
                            route.name, name)

    def next_due(self) -> float | None:
        times = [t for s in self.streams.values() if (t := s.next_due()) is not None]
        return min(times) if times else None

    def snapshot(self) -> dict:
        return {name: s.snapshot() for name, s in self.streams.items()}

    def close(self) -> None:
        self.store.close()


def describe(s: Setup) -> dict:
    """Each stream route's snapshot, read from the root's stream state (for `gisgate status`)."""
    path = s.layout.root / "stream.db"
    routes = [r for r in s.config.route if streams(r)]
    if not routes or not path.exists():
        return {r.name: {"horizon": None, "held": 0, "next_due": None, "corrections": 0, "sent": 0,
                         "state_bytes": 0, "waiting": None} for r in routes}
    store = SqliteStore(path)
    try:
        return {r.name: Stream(r, s.convert_options(r, r.outputs[0]), store, None).snapshot() for r in routes}
    finally:
        store.close()


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
