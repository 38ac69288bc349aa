"""Where the streams keep their state: one SQLite file (`<root>/stream.db`, WAL), beside the ledger.

    parts   (route, kind, hour) → the kind's records starting in that UTC hour, as Arrow IPC bytes
    meta    route → the stream's horizon, facts, dirty intervals and counters, as JSON
    home    (route, contact id) → agent and queue of every contact (the agents' home queues)

Everything `Stream.take` changes for one input is written in one transaction, so a `kill -9`
leaves the state before or after that input, never between. Records are read back through a
per-process cache of decoded partitions: the gateway is the only writer of its root.

This is the one engine today. The `Stream` uses only the methods below, so a shared engine
(PostgreSQL, for several gateway nodes on one stream) would implement the same few calls.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

HOUR_US = 3_600_000_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS parts (
    route TEXT NOT NULL, kind TEXT NOT NULL, hour INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (route, kind, hour)
);
CREATE TABLE IF NOT EXISTS meta (route TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS home (
    route TEXT NOT NULL, contact_id TEXT NOT NULL, agent_id TEXT, service_id TEXT,
    PRIMARY KEY (route, contact_id)
);
"""


class SqliteStore:
    """The stream state of every route of one gateway root."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # as the ledger: a kill -9 loses nothing
        self.db.executescript(SCHEMA)
        self._cache: dict[tuple[str, str, int], pl.DataFrame] = {}

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            self._cache.clear()  # what it held may be what the rollback undid
            raise
        self.db.execute("COMMIT")

    # -- meta

    def meta(self, route: str) -> dict:
        row = self.db.execute("SELECT data FROM meta WHERE route=?", (route,)).fetchone()
        return json.loads(row[0]) if row else {}

    def put_meta(self, route: str, data: dict) -> None:
        self.db.execute("INSERT INTO meta (route, data) VALUES (?, ?) "
                        "ON CONFLICT (route) DO UPDATE SET data=excluded.data",
                        (route, json.dumps(data, separators=(",", ":"))))

    # -- records

    def hours(self, route: str, kind: str) -> list[int]:
        return [h for (h,) in self.db.execute(
            "SELECT hour FROM parts WHERE route=? AND kind=? ORDER BY hour", (route, kind))]

    def part(self, route: str, kind: str, hour: int) -> pl.DataFrame | None:
        key = (route, kind, hour)
        if key not in self._cache:
            row = self.db.execute("SELECT data FROM parts WHERE route=? AND kind=? AND hour=?", key).fetchone()
            if row is None:
                return None
            self._cache[key] = pl.read_ipc(io.BytesIO(row[0]))
        return self._cache[key]

    def parts(self, route: str, kind: str, first_hour: int, last_hour: int) -> pl.DataFrame | None:
        """Every record of `kind` starting in the hours first..last, or None."""
        hours = [h for h in self.hours(route, kind) if first_hour <= h <= last_hour]
        frames = [f for h in hours if (f := self.part(route, kind, h)) is not None]
        return pl.concat(frames, how="vertical_relaxed") if frames else None

    def put_part(self, route: str, kind: str, hour: int, frame: pl.DataFrame) -> None:
        buf = io.BytesIO()
        frame.write_ipc(buf, compression="uncompressed")
        self.db.execute("INSERT INTO parts (route, kind, hour, data) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (route, kind, hour) DO UPDATE SET data=excluded.data",
                        (route, kind, hour, buf.getvalue()))
        self._cache[(route, kind, hour)] = frame

    def drop_before(self, route: str, hour: int) -> int:
        """Forget the records of `route` starting before `hour`; how many partitions went."""
        n = self.db.execute("DELETE FROM parts WHERE route=? AND hour<?", (route, hour)).rowcount
        for key in [k for k in self._cache if k[0] == route and k[2] < hour]:
            del self._cache[key]
        return n

    def size(self, route: str) -> int:
        """Bytes of records held for `route`."""
        return self.db.execute("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM parts WHERE route=?", (route,)).fetchone()[0]

    # -- home queues

    def put_home(self, route: str, contacts: pl.DataFrame) -> None:
        self.db.executemany(
            "INSERT INTO home (route, contact_id, agent_id, service_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (route, contact_id) DO UPDATE SET agent_id=excluded.agent_id, service_id=excluded.service_id",
            [(route, *row) for row in contacts.select("contact_id", "agent_id", "service_id").iter_rows()])

    def home(self, route: str) -> dict[str, str]:
        """Each agent's most frequent queue among the route's contacts (ties: the smallest queue id)."""
        rows = self.db.execute(
            "SELECT agent_id, service_id, COUNT(*) AS n FROM home WHERE route=? AND agent_id IS NOT NULL "
            "AND service_id IS NOT NULL GROUP BY agent_id, service_id ORDER BY agent_id, n DESC, service_id",
            (route,)).fetchall()
        out: dict[str, str] = {}
        for agent, service, _ in rows:
            out.setdefault(agent, service)
        return out


def us(t: datetime | None) -> int | None:
    """An instant as the state keeps it: µs since the epoch (integer arithmetic, no float rounding)."""
    return None if t is None else (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def at(us_: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us_))
