"""The gateway's durable memory: one SQLite file (stdlib sqlite3, WAL) in the gateway root.

    inputs      one row per file taken from an inbox: route, name, size, sha256, first seen, state
                processing → converted → archived | rejected | duplicate   (retried: sent back by hand)
    outputs     one row per produced file: name, kind, interval, sha256
    deliveries  one row per output × target: batch, order in batch, state, attempts, next try, result
                pending → sending → sent | failed   (superseded: a newer file of the same name replaced it)

Each thread opens its own `Ledger` (sqlite3 connections are not shared between threads). Every
state change is one transaction, so a `kill -9` leaves the ledger at a step boundary that the
start-up recovery knows how to finish.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, fields
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS inputs (
    id INTEGER PRIMARY KEY,
    route TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    first_seen REAL NOT NULL,
    claimed_at REAL NOT NULL,
    finished_at REAL,
    state TEXT NOT NULL,
    dest TEXT,
    error TEXT,
    duplicate_of INTEGER
);
CREATE INDEX IF NOT EXISTS inputs_by_content ON inputs (route, sha256, state);
CREATE INDEX IF NOT EXISTS inputs_by_state ON inputs (state);
CREATE TABLE IF NOT EXISTS outputs (
    id INTEGER PRIMARY KEY,
    input_id INTEGER NOT NULL REFERENCES inputs (id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    interval_start TEXT,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outputs_by_input ON outputs (input_id);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    output_id INTEGER NOT NULL REFERENCES outputs (id),
    target TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    batch TEXT NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    delivered_at REAL,
    detail TEXT,
    outcome TEXT  -- what the receiving side did with it, where it tells: accepted | penalty | unread
);
CREATE INDEX IF NOT EXISTS deliveries_by_state ON deliveries (target, state, id);
CREATE INDEX IF NOT EXISTS deliveries_by_name ON deliveries (target, name, state);
CREATE INDEX IF NOT EXISTS deliveries_by_batch ON deliveries (target, batch);
"""

INPUT_STATES = ("processing", "converted", "archived", "rejected", "duplicate", "retried")
DELIVERY_STATES = ("pending", "sending", "sent", "failed", "superseded")


@dataclass(frozen=True)
class InputRow:
    id: int
    route: str
    name: str
    size: int
    sha256: str
    state: str
    dest: str | None
    error: str | None


@dataclass(frozen=True)
class StagedOutput:
    """One output staged for one target, as `record_outputs` stores it."""

    name: str
    kind: str
    interval_start: str | None
    sha256: str
    size: int
    target: str
    batch: str
    seq: int


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    target: str
    name: str
    sha256: str
    batch: str
    seq: int
    state: str
    attempts: int
    next_try: float


# The SELECT lists that fill those rows, in their field order.
INPUT_COLUMNS = ", ".join(f.name for f in fields(InputRow))
DELIVERY_COLUMNS = ", ".join(f.name for f in fields(DeliveryRow))


class Ledger:
    """A connection to `<root>/gisgate.db`. Use one per thread; close it when done."""

    def __init__(self, path: str | Path, now=time.time):
        self.path = Path(path)
        self.now = now
        self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=True)
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a process crash (kill -9) loses nothing; a power cut may lose the last
        # transactions but never corrupts the file. The redo-from-work/ recovery covers both.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def _tx(self):
        return _Transaction(self.db)

    # ---- inputs -------------------------------------------------------------------------------

    def find_open_input(self, route: str, name: str, sha256: str) -> InputRow | None:
        """The unfinished row (processing / converted) for this file, left by an interrupted run."""
        row = self.db.execute(
            f"SELECT {INPUT_COLUMNS} FROM inputs "
            "WHERE route=? AND name=? AND sha256=? AND state IN ('processing','converted') ORDER BY id DESC",
            (route, name, sha256),
        ).fetchone()
        return InputRow(*row) if row else None

    def open_inputs(self) -> list[InputRow]:
        rows = self.db.execute(
            f"SELECT {INPUT_COLUMNS} FROM inputs "
            "WHERE state IN ('processing','converted') ORDER BY id"
        ).fetchall()
        return [InputRow(*r) for r in rows]

    def converted_before(self, route: str, sha256: str, exclude_id: int) -> int | None:
        """The id of an earlier input of `route` with this content that converted, if any."""
        row = self.db.execute(
            "SELECT id FROM inputs WHERE route=? AND sha256=? AND state IN ('converted','archived') AND id<>? "
            "ORDER BY id LIMIT 1",
            (route, sha256, exclude_id),
        ).fetchone()
        return row[0] if row else None

    def start_input(self, route: str, name: str, size: int, sha256: str, first_seen: float) -> int:
        with self._tx():
            cur = self.db.execute(
                "INSERT INTO inputs (route, name, size, sha256, first_seen, claimed_at, state) "
                "VALUES (?,?,?,?,?,?,'processing')",
                (route, name, size, sha256, first_seen, self.now()),
            )
            return cur.lastrowid

    def set_input(self, input_id: int, state: str, dest: str | None = None, error: str | None = None,
                  duplicate_of: int | None = None) -> None:
        assert state in INPUT_STATES, state
        finished = self.now() if state in ("archived", "rejected", "duplicate") else None
        with self._tx():
            self.db.execute(
                "UPDATE inputs SET state=?, dest=COALESCE(?, dest), error=COALESCE(?, error), "
                "duplicate_of=COALESCE(?, duplicate_of), finished_at=COALESCE(?, finished_at) WHERE id=?",
                (state, dest, error, duplicate_of, finished, input_id),
            )

    def input_by_dest(self, dest: str) -> InputRow | None:
        row = self.db.execute(
            f"SELECT {INPUT_COLUMNS} FROM inputs WHERE dest=? ORDER BY id DESC",
            (dest,),
        ).fetchone()
        return InputRow(*row) if row else None

    # ---- outputs and deliveries ---------------------------------------------------------------

    def has_delivery(self, target: str, name: str, sha256: str) -> bool:
        """True when this exact file (same name, same bytes) is the version of `name` that `target` got or
        is about to get: the latest one sent or queued. An older version that a later one replaced does not
        count (a stream's interval corrected, then corrected back, must be sent again)."""
        row = self.db.execute(
            "SELECT sha256 FROM deliveries WHERE target=? AND name=? AND state IN ('sent','sending','pending') "
            "ORDER BY id DESC LIMIT 1",
            (target, name),
        ).fetchone()
        return row is not None and row[0] == sha256

    def delivered_before(self, target: str, name: str) -> bool:
        """True when some version of file `name` went (or is going) to `target`: a new one corrects it."""
        row = self.db.execute(
            "SELECT 1 FROM deliveries WHERE target=? AND name=? AND state IN ('sent','sending','pending') LIMIT 1",
            (target, name),
        ).fetchone()
        return row is not None

    def record_outputs(self, input_id: int, staged: list[StagedOutput], dest: str | None) -> int:
        """In one transaction: the outputs, their deliveries, and the input marked `converted` (when
        `dest` says where it is archived; a stream's later outputs leave their input as it is).

        A pending delivery of the same name to the same target is superseded (its staged file was
        just replaced by the newer one). Returns how many deliveries were queued.
        """
        now = self.now()
        queued = 0
        with self._tx():
            ids: dict[tuple[str, str], int] = {}
            for s in staged:
                key = (s.name, s.sha256)
                if key not in ids:
                    cur = self.db.execute(
                        "INSERT INTO outputs (input_id, name, kind, interval_start, sha256, size, created_at) "
                        "VALUES (?,?,?,?,?,?,?)",
                        (input_id, s.name, s.kind, s.interval_start, s.sha256, s.size, now),
                    )
                    ids[key] = cur.lastrowid
                if not s.target:
                    continue
                self.db.execute(
                    "UPDATE deliveries SET state='superseded' WHERE target=? AND name=? AND state='pending'",
                    (s.target, s.name),
                )
                self.db.execute(
                    "INSERT INTO deliveries (output_id, target, name, sha256, batch, seq, state, created_at) "
                    "VALUES (?,?,?,?,?,?,'pending',?)",
                    (ids[key], s.target, s.name, s.sha256, s.batch, s.seq, now),
                )
                queued += 1
            if dest is not None:
                self.db.execute("UPDATE inputs SET state='converted', dest=? WHERE id=?", (dest, input_id))
        return queued

    def next_batch(self, target: str, now: float | None = None) -> list[DeliveryRow]:
        """The oldest batch of `target` whose rows are all pending and due, in sending order."""
        now = self.now() if now is None else now
        # The rows of a batch are staged, retried and delivered together, so they share next_try:
        # the oldest due row names the oldest due batch (an index walk, not a scan of the queue).
        row = self.db.execute(
            "SELECT batch FROM deliveries WHERE target=? AND state='pending' AND next_try <= ? ORDER BY id LIMIT 1",
            (target, now),
        ).fetchone()
        if row is None:
            return []
        rows = self.batch_rows(target, row[0], ("pending",))
        return rows if all(r.next_try <= now for r in rows) else []

    def batch_rows(self, target: str, batch: str, states: tuple[str, ...]) -> list[DeliveryRow]:
        marks = ",".join("?" * len(states))
        rows = self.db.execute(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries "
            f"WHERE target=? AND batch=? AND state IN ({marks}) ORDER BY seq, id",
            (target, batch, *states),
        ).fetchall()
        return [DeliveryRow(*r) for r in rows]

    def deliveries_in(self, state: str, target: str | None = None) -> list[DeliveryRow]:
        sql = f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state=?"
        args: tuple = (state,)
        if target is not None:
            sql += " AND target=?"
            args += (target,)
        return [DeliveryRow(*r) for r in self.db.execute(sql + " ORDER BY id", args).fetchall()]

    def delivery_state(self, target: str, name: str, sha256: str) -> str | None:
        """State of the latest delivery of these exact bytes under this name to `target`."""
        row = self.db.execute(
            "SELECT state FROM deliveries WHERE target=? AND name=? AND sha256=? ORDER BY id DESC LIMIT 1",
            (target, name, sha256),
        ).fetchone()
        return row[0] if row else None

    def next_due(self, target: str) -> float | None:
        row = self.db.execute(
            "SELECT MIN(next_try) FROM deliveries WHERE target=? AND state='pending'", (target,)
        ).fetchone()
        return row[0]

    def set_deliveries(self, ids: list[int], state: str, *, error: str | None = None, next_try: float | None = None,
                       attempt: bool = False, detail: str | None = None) -> None:
        assert state in DELIVERY_STATES, state
        delivered = self.now() if state == "sent" else None
        with self._tx():
            self.db.executemany(
                "UPDATE deliveries SET state=?, last_error=COALESCE(?, last_error), "
                "next_try=COALESCE(?, next_try), attempts=attempts+?, delivered_at=COALESCE(?, delivered_at), "
                "detail=COALESCE(?, detail) WHERE id=?",
                [(state, error, next_try, 1 if attempt else 0, delivered, detail, i) for i in ids],
            )

    def requeue(self, ids: list[int]) -> None:
        """Failed deliveries back to pending, attempts reset (after a human fixed the cause)."""
        with self._tx():
            self.db.executemany("UPDATE deliveries SET state='pending', attempts=0, next_try=0, last_error=NULL "
                                "WHERE id=?", [(i,) for i in ids])

    def awaiting_outcome(self, target: str, since: float) -> list[tuple[int, str, float]]:
        """Sent deliveries of `target` since `since` with no final outcome yet: (id, name, delivered_at)."""
        return self.db.execute(
            "SELECT id, name, delivered_at FROM deliveries WHERE target=? AND state='sent' AND delivered_at>=? "
            "AND (outcome IS NULL OR outcome='unread') ORDER BY id",
            (target, since),
        ).fetchall()

    def set_outcome(self, ids: list[int], outcome: str) -> None:
        with self._tx():
            self.db.executemany("UPDATE deliveries SET outcome=? WHERE id=?", [(outcome, i) for i in ids])

    # ---- reporting ----------------------------------------------------------------------------

    def oldest_pending_created(self) -> float | None:
        """When the oldest undelivered output (pending or sending) was staged."""
        return self.db.execute(
            "SELECT MIN(created_at) FROM deliveries WHERE state IN ('pending','sending')").fetchone()[0]

    def status(self) -> dict:
        """Counts per state, the oldest pending delivery and the last errors, for `gisgate status`."""
        inputs = dict(self.db.execute("SELECT state, COUNT(*) FROM inputs GROUP BY state").fetchall())
        per_target: dict[str, dict[str, int]] = {}
        for target, state, n in self.db.execute(
            "SELECT target, state, COUNT(*) FROM deliveries GROUP BY target, state"
        ).fetchall():
            per_target.setdefault(target, {})[state] = n
        oldest = self.db.execute(
            "SELECT target, name, created_at, attempts, last_error FROM deliveries "
            "WHERE state IN ('pending','sending') ORDER BY created_at LIMIT 1"
        ).fetchone()
        errors = self.db.execute(
            "SELECT route, name, finished_at, error FROM inputs WHERE state='rejected' ORDER BY id DESC LIMIT 5"
        ).fetchall()
        failed = self.db.execute(
            "SELECT target, name, attempts, last_error FROM deliveries WHERE state='failed' ORDER BY id DESC LIMIT 5"
        ).fetchall()
        refused = self.db.execute(
            "SELECT target, name, delivered_at FROM deliveries WHERE outcome='penalty' ORDER BY id DESC LIMIT 5"
        ).fetchall()
        last_ok = dict(
            self.db.execute("SELECT route, MAX(finished_at) FROM inputs WHERE state='archived' GROUP BY route")
        )
        archived = self.db.execute(
            "SELECT dest FROM inputs WHERE state='archived' AND dest IS NOT NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return {
            "inputs": inputs,
            "deliveries": per_target,
            "oldest_pending": None
            if oldest is None
            else {"target": oldest[0], "name": oldest[1], "since": oldest[2], "attempts": oldest[3],
                  "last_error": oldest[4]},
            "last_rejected": [{"route": r, "name": n, "at": at, "error": e} for r, n, at, e in errors],
            "last_failed": [{"target": t, "name": n, "attempts": a, "error": e} for t, n, a, e in failed],
            "last_success": last_ok,
            "last_archived": archived[0] if archived else None,
            "penalty_box": [{"target": t, "name": n, "delivered_at": at} for t, n, at in refused],
        }


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
