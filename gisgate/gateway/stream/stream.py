"""One route as a stream: every drop merged into the route's records, the intervals it can change
re-derived from the records that can touch them, so that the target ends up holding what one
conversion of all of the route's data would write.

    take(input_id, parsed)   merge one input's records; mark the intervals it can change dirty
    due(now)                 the dirty intervals whose hold has passed (their end + hold_minutes)
    render(starts)           their outputs, from the records that can touch them and the stream's facts
    done(starts)             they went out: clean, counted, and what left the window forgotten

Which intervals an input can change: an interval row its own interval; anything else (state
events, contacts, status spans) everything from its first record to the route's horizon, the
latest instant the route has seen (an agent's state lasts until its next event; open spans end at
the horizon), and a contact's handling past its end. When something decided from all of the data
changes (a new queue, a first Reserved state, an agent's home queue, ...), every interval of the
window is dirty. Records older than `stream_days` before the horizon leave the state; an input
reaching before that is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl

from gisgate import sources
from gisgate.config import ConvertOptions, Route
from gisgate.errors import InputError
from gisgate.gateway.stream import cloud
from gisgate.gateway.stream.store import HOUR_US, SqliteStore, at, us
from gisgate.model import Records
from gisgate.transform import clock
from gisgate.transform.facts import Facts

log = logging.getLogger("gisgate.stream")

META = ["_t0", "_t1", "_seq"]  # columns the stream adds to every record
SENT = Records("at")  # the state changes sent as real-time states
US = 1_000_000
MINUTE_US = 60 * US
UTC_US = pl.Datetime("us", "UTC")


@dataclass
class Changes:
    """What one `take` did, for the log and the input's report."""

    records: int = 0
    intervals: list[datetime] = field(default_factory=list)
    whole_window: bool = False


class Stream:
    """The state of one route's stream, in `store`."""

    def __init__(self, route: Route, options: ConvertOptions, store: SqliteStore, render):
        """`render(found, told, options, facts, starts)` is the pipeline's `render_intervals`."""
        self.route = route
        self.name = route.name
        self.options = options
        self.store = store
        self.render_intervals = render
        self.step = options.interval * MINUTE_US
        self.reach = int(options.max_span_hours * 3600 * US)  # how far an agent's state or a contact's handling reaches
        self.window = int(route.stream_days * 86400 * US)
        self.meta = store.meta(self.name) or {"seq": 0, "dirty": {}, "sent": [], "corrections": 0, "sources": {}}
        self._latest: dict[str, pl.DataFrame | None] = {}  # kind -> each entity's latest records

    # -- taking an input

    def take(self, input_id: int, parsed) -> Changes:
        """Merge one input (a `pipeline.Parsed`) into the state, in one transaction."""
        frames = {(s, k): _with_times(f, sources.record_kinds(s)[k])
                  for (s, k), f in parsed.records.items() if f is not None and f.height}
        changes = Changes(records=sum(f.height for f in frames.values()))
        if not frames:
            return changes
        self._refuse_before_window(frames)
        try:
            with self.store.transaction():
                dirty = self._take(input_id, parsed, frames, changes)
        except BaseException:  # the state is as it was: so is what this object holds of it
            self.meta = self.store.meta(self.name) or self.meta
            self._latest.clear()
            raise
        changes.intervals = sorted(at(s) for s in dirty)
        return changes

    def _take(self, input_id: int, parsed, frames: dict, changes: Changes) -> set[int]:
        old, old_horizon = self._facts(), self.meta.get("horizon")
        seq = self.meta["seq"] = self.meta["seq"] + 1
        dirty: set[int] = set()
        for (source, kind), frame in frames.items():
            self.meta["sources"][source] = parsed.told or self.meta["sources"].get(source)
            dirty |= self._merge(f"{source}.{kind}", sources.record_kinds(source)[kind], frame, seq)
        if parsed.home is not None:
            self.store.put_home(self.name, parsed.home)
        new = self._with_home(old.union(parsed.facts) if self.meta.get("facts") else parsed.facts)
        self._set_facts(new)
        last = max(int(f["_t1"].max()) for f in frames.values())
        horizon = self.meta["horizon"] = max(filter(None, [old_horizon, us(new.until), last]))
        dirty |= self._spans(frames, old_horizon, horizon)
        if self.meta.get("facts_ready") and _decisive(old) != _decisive(new):
            dirty |= self._window_starts(horizon)
            changes.whole_window = True
        self.meta["facts_ready"] = True
        for start in dirty:
            self.meta["dirty"][str(start)] = input_id
        self.store.put_meta(self.name, self.meta)
        return dirty

    def _refuse_before_window(self, frames: dict) -> None:
        horizon = self.meta.get("horizon")
        if horizon is None:
            return
        first = min(f["_t0"].min() for f in frames.values())
        if first < horizon - self.window:
            raise InputError(
                f"reaches back to {at(first):%Y-%m-%d %H:%M} UTC, before this route's stream window "
                f"({self.route.stream_days:g} day(s) before its latest record, {at(horizon):%Y-%m-%d %H:%M} UTC): "
                "those intervals are final here. To load older data on purpose, convert it with `gisgate convert` "
                "and send the files with `gisgate deliver`, or raise stream_days for this route.")

    def _merge(self, kind: str, spec: Records, frame: pl.DataFrame, seq: int) -> set[int]:
        """Put `frame` into the kind's hourly partitions: the latest record per identity (or each
        distinct record once). Returns the interval starts of interval rows (they touch nothing else)."""
        frame = _with_times(frame, spec).with_columns(pl.lit(seq, pl.Int64).alias("_seq"))
        touched: set[int] = set()
        if spec.identity and not spec.interval:
            touched |= self._drop_old_versions(kind, spec, frame)
        keys = list(spec.identity) or [c for c in frame.columns if c not in META]
        for (hour,), part in frame.with_columns((pl.col("_t0") // HOUR_US).alias("_h")).partition_by(
                "_h", as_dict=True, include_key=False).items():
            old = self.store.part(self.name, kind, hour)
            merged = part if old is None else pl.concat([old, part], how="vertical_relaxed")
            merged = merged.unique(keys, keep="last", maintain_order=True).sort("_t0", maintain_order=True)
            self.store.put_part(self.name, kind, hour, merged)
        if spec.interval:
            touched |= set(self._floor(frame["_t0"]).to_list())
        if spec.entity:
            old = self._latest_of(kind, spec)
            both = frame if old is None else pl.concat([old, frame], how="vertical_relaxed")
            self._latest[kind] = _last_per(both, list(spec.entity)).unique(maintain_order=True)
        return touched

    def _drop_old_versions(self, kind: str, spec: Records, frame: pl.DataFrame) -> set[int]:
        """A record whose identity comes again with other times leaves its old partition (and its old
        intervals are dirty)."""
        ids = frame.select(spec.identity).unique()
        touched: set[int] = set()
        for hour in self.store.hours(self.name, kind):
            old = self.store.part(self.name, kind, hour)
            gone = old.join(ids, on=list(spec.identity), how="semi")
            moved = gone.join(frame.select(*spec.identity, "_t0"), on=[*spec.identity, "_t0"], how="anti")
            if moved.height:
                self.store.put_part(self.name, kind, hour, old.join(moved.select(spec.identity),
                                                                    on=list(spec.identity), how="anti"))
                touched |= self._range(moved["_t0"].min(), moved["_t1"].max() + self.reach)
        return touched

    def _spans(self, frames: dict, old_horizon: int | None, horizon: int) -> set[int]:
        """Intervals an input of records other than interval rows can change (see the module doc): an
        agent's records up to the horizon, a contact's (or a call's) also `reach` past its end."""
        first, last = None, None
        for (source, kind), frame in frames.items():
            spec = sources.record_kinds(source)[kind]
            if spec.interval:
                continue
            lo = self._previous(f"{source}.{kind}", spec, frame) if spec.cumulative else int(frame["_t0"].min())
            hi = horizon if spec.entity else max(horizon, int(frame["_t1"].max())) + self.reach
            first, last = (lo, hi) if first is None else (min(first, lo), max(last, hi))
        if first is None:
            return set()
        if old_horizon is not None and horizon > old_horizon:
            first = min(first, old_horizon)
        return self._range(first, last)

    def _previous(self, kind: str, spec: Records, frame: pl.DataFrame) -> int:
        """The earliest start of the records just before each entity's first record in `frame`."""
        keys = list(spec.entity)
        firsts = frame.group_by(keys).agg(pl.col("_t0").min().alias("_first"))
        lo = int(firsts["_first"].min())
        last_hour = int(firsts["_first"].max()) // HOUR_US
        rows = self.store.parts(self.name, kind, (lo - self.reach) // HOUR_US - 1, last_hour)
        if rows is None:
            return lo
        before = (rows.join(firsts, on=keys).filter(pl.col("_t0") < pl.col("_first"))
                  .group_by(keys).agg(pl.col("_t0").max()))
        return min(lo, int(before["_t0"].min())) if before.height else lo

    def _range(self, first: int, last: int) -> set[int]:
        return set(self._grid(first, last))

    def _grid(self, first: int, last: int) -> list[int]:
        """Local-clock interval starts from the one holding `first` to the one holding `last` (as
        clock.grid, in plain Python: a stream asks for a few at a time)."""
        zone, step = ZoneInfo(self.options.tz), 15 * MINUTE_US
        out = []
        for t in range(first - first % step - self.step, last + 1, step):  # every zone offset is whole quarters
            local = at(t).astimezone(zone)
            if local.minute % self.options.interval == 0 and t + self.step > first:
                out.append(t)
        return out

    def _floor(self, t0: pl.Series) -> pl.Series:
        s = t0.cast(pl.Int64).cast(UTC_US).to_frame("t").select(clock.floor_local(pl.col("t"), self.options.tz,
                                                                                 self.options.interval))
        return s["t"].dt.epoch("us")

    def _window_starts(self, horizon: int) -> set[int]:
        return self._range(horizon - self.window, horizon + self.reach)

    # -- facts

    def _facts(self) -> Facts:
        f = self.meta.get("facts") or {}
        covered = f.get("covered")
        return Facts(until=at(f["until"]) if f.get("until") is not None else None,
                     covered=(at(covered[0]), at(covered[1])) if covered else None,
                     services=tuple(f.get("services", ())), events=f.get("events", False),
                     reserved=f.get("reserved", False), contacts=f.get("contacts", False),
                     handled=f.get("handled", False), home=f.get("home", {}), quarter=f.get("quarter", False))

    def _with_home(self, facts: Facts) -> Facts:
        return Facts(**{**facts.__dict__, "home": self.store.home(self.name)})

    def _set_facts(self, f: Facts) -> None:
        self.meta["facts"] = {
            "until": us(f.until), "covered": [us(f.covered[0]), us(f.covered[1])] if f.covered else None,
            "services": list(f.services), "events": f.events, "reserved": f.reserved, "contacts": f.contacts,
            "handled": f.handled, "home": f.home, "quarter": f.quarter}

    # -- rendering

    def due(self, now: float) -> list[int]:
        """Dirty interval starts whose end is `hold_minutes` past `now` (wall clock, seconds)."""
        hold = int(self.route.hold_minutes * MINUTE_US)
        limit = int(now * US)
        return sorted(int(s) for s in self.meta["dirty"] if int(s) + self.step + hold <= limit)

    def next_due(self) -> float | None:
        """When the next held interval comes due (wall clock, seconds), or None."""
        if not self.meta["dirty"]:
            return None
        hold = int(self.route.hold_minutes * MINUTE_US)
        return (min(int(s) for s in self.meta["dirty"]) + self.step + hold) / US

    def render(self, starts: list[int], options: list[ConvertOptions]) -> list:
        """The outputs of the intervals `starts`, for every output kind of the route."""
        out = []
        facts = self._facts()
        told = next((t for t in self.meta["sources"].values() if t), None)
        for first, last in _runs(starts, self.step):
            found = self._select(first, last + self.step)
            keep = [at(s) for s in starts if first <= s <= last]
            for o in options:
                out += self.render_intervals(found, told, o, facts, keep)
        return out

    def _select(self, t0: int, t1: int) -> dict[tuple[str, str], pl.DataFrame]:
        """The records of every kind that can touch [t0, t1), without the stream's columns."""
        found = {}
        for source in self.meta["sources"]:
            for kind, spec in sources.record_kinds(source).items():
                rows = self._select_kind(f"{source}.{kind}", spec, t0, t1)
                if rows is not None and rows.height:
                    found[(source, kind)] = rows.drop(META)
        return found

    def _select_kind(self, kind: str, spec: Records, t0: int, t1: int) -> pl.DataFrame | None:
        t0c, t1c = pl.col("_t0"), pl.col("_t1")
        if spec.interval:
            rows = self.store.parts(self.name, kind, t0 // HOUR_US, (t1 - 1) // HOUR_US)
            return None if rows is None else rows.filter((t0c >= t0) & (t0c < t1))
        if spec.entity:
            picked = self._entity_rows(kind, spec, t0, t1)
            if picked is None:
                return None
        else:
            rows = self.store.parts(self.name, kind, (t0 - self.reach) // HOUR_US - 1, (t1 - 1) // HOUR_US)
            if rows is None:
                return None
            picked = rows.filter((t0c < t1) & (t1c + self.reach >= t0))
        if spec.group:
            rows = self.store.parts(self.name, kind, (t0 - self.reach) // HOUR_US - 1, (t1 + self.reach) // HOUR_US)
            picked = rows.join(picked.select(spec.group).unique(), on=spec.group, how="semi")
        return picked.sort("_seq", maintain_order=True)

    def _entity_rows(self, kind: str, spec: Records, t0: int, t1: int) -> pl.DataFrame | None:
        """Each entity's records starting in [t0, t1), its last one before t0 (a span running at t0
        is that one) and its first one from t1 on. The last record of every entity is kept at hand,
        so only entities with records from t0 on are looked for in the partitions."""
        keys, t0c = list(spec.entity), pl.col("_t0")
        latest = self._latest_of(kind, spec)
        if latest is None:
            return None
        inside = self.store.parts(self.name, kind, t0 // HOUR_US, (t1 - 1) // HOUR_US)
        inside = [] if inside is None else [inside.filter((t0c >= t0) & (t0c < t1))]
        before = [latest.filter(t0c < t0)]
        later = latest.filter(t0c >= t0).select(keys).unique()
        hour = t0 // HOUR_US
        while later.height and hour >= (t0 - self.reach) // HOUR_US - 1:
            part = self.store.part(self.name, kind, hour)
            if part is not None:
                found = part.filter(t0c < t0).join(later, on=keys, how="semi")
                found = found.filter(t0c == t0c.max().over(keys))
                before.append(found)
                later = later.join(found.select(keys), on=keys, how="anti")
            hour -= 1
        after = []
        ahead = latest.filter(t0c >= t1).select(keys).unique()
        if ahead.height:
            rows = self.store.parts(self.name, kind, t1 // HOUR_US, (t1 + self.reach) // HOUR_US)
            if rows is not None:
                rows = rows.filter(t0c >= t1).join(ahead, on=keys, how="semi")
                after.append(rows.filter(t0c == t0c.min().over(keys)))
        return pl.concat([*before, *inside, *after], how="vertical_relaxed").unique(maintain_order=True)

    def _latest_of(self, kind: str, spec: Records) -> pl.DataFrame | None:
        """Every entity's latest records (all of them at its latest instant), from the partitions once,
        then kept up to date by `_merge`."""
        if kind not in self._latest:
            rows = self.store.parts(self.name, kind, 0, 2**62 // HOUR_US)
            self._latest[kind] = None if rows is None else _last_per(rows, list(spec.entity))
        return self._latest[kind]

    def unsent(self, events: pl.DataFrame, kind: str = "rtstate.sent") -> pl.DataFrame:
        """The state changes among `events` not yet sent as `kind` (each goes out once)."""
        keys = ["agent_id", "at", "state", "reason"]
        events = events.select(keys).unique(maintain_order=True)
        t0 = _with_times(events, SENT)
        sent = self.store.parts(self.name, kind, int(t0["_t0"].min()) // HOUR_US, int(t0["_t0"].max()) // HOUR_US)
        return events if sent is None else events.join(sent.select(keys), on=keys, how="anti", nulls_equal=True)

    def mark_sent(self, events: pl.DataFrame, kind: str = "rtstate.sent") -> None:
        """`events` went out as `kind`; the meta (what else was sent with them) is written with them."""
        with self.store.transaction():
            self._merge(kind, SENT, events, self.meta["seq"])
            self.store.put_meta(self.name, self.meta)

    def done(self, starts: list[int], corrections: int) -> None:
        """`starts` went out: no longer dirty; the records that left the window are forgotten."""
        sent = set(self.meta["sent"])
        with self.store.transaction():
            for s in starts:
                self.meta["dirty"].pop(str(s), None)
                sent.add(s)
            horizon = self.meta.get("horizon")
            if horizon is not None:
                edge = horizon - self.window - self.reach
                sent = {s for s in sent if s >= edge}
                cloud.forget_before(self.meta, edge)
                self.meta["dirty"] = {k: v for k, v in self.meta["dirty"].items() if int(k) >= edge}
                self.store.drop_before(self.name, edge // HOUR_US - 1)
            self.meta["sent"] = sorted(sent)
            self.meta["corrections"] += corrections
            self.store.put_meta(self.name, self.meta)

    def was_sent(self, start: int) -> bool:
        return start in set(self.meta["sent"])

    def snapshot(self) -> dict:
        """The stream's horizon (its latest record), intervals held (rendered when due), corrections sent."""
        horizon = self.meta.get("horizon")
        due = self.next_due()
        return {"horizon": at(horizon).isoformat() if horizon is not None else None,
                "held": len(self.meta["dirty"]), "next_due": due, "corrections": self.meta["corrections"],
                "sent": len(self.meta["sent"]), "state_bytes": self.store.size(self.name),
                "waiting": self.meta.get("blocked")}


def _decisive(f: Facts) -> tuple:
    """What of the facts, changed, can change intervals anywhere in the window."""
    return (f.services, f.events, f.reserved, f.contacts, f.handled, tuple(sorted(f.home.items())), f.quarter)


def _with_times(frame: pl.DataFrame, spec: Records) -> pl.DataFrame:
    if "_t0" in frame.columns:
        return frame
    t0 = pl.col(spec.start).dt.epoch("us")
    t1 = pl.col(spec.end).dt.epoch("us") if spec.end else t0
    return frame.with_columns(t0.alias("_t0"), pl.max_horizontal(t0, t1.fill_null(t0)).alias("_t1"))


def _last_per(rows: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return rows.filter(pl.col("_t0") == pl.col("_t0").max().over(keys))


def _runs(starts: list[int], step: int) -> list[tuple[int, int]]:
    """Consecutive interval starts (gaps under two hours join them) as (first, last) pairs."""
    runs: list[list[int]] = []
    for s in sorted(starts):
        if runs and s - runs[-1][1] <= 8 * step:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    return [(a, b) for a, b in runs]
