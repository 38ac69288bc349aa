"""Where each source stands, kept in the gateway's ledger file (`gisgate.db`, table `source_cursors`):
one row per source and what it fetches. The cursor moves only after the file it covers has landed,
so a restart or a `kill -9` continues where it stopped: at worst one window is fetched twice.

    cursor        end of the last window landed (windowed sources), epoch seconds
    token         the feed token to continue from (event feeds)
    polled_at     end of the last successful poll (a feed's next file starts there)
    last_success  when a poll last succeeded; last_error / last_error_at: the latest failure (cleared by a success)
    gap_at        a feed had to start again (its token was too old): events before this may be missing
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, fields
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS source_cursors (
    source TEXT NOT NULL,
    what TEXT NOT NULL,
    cursor REAL,
    token TEXT,
    polled_at REAL,
    last_success REAL,
    last_error TEXT,
    last_error_at REAL,
    gap_at REAL,
    files INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source, what)
);
"""


@dataclass(frozen=True)
class Cursor:
    source: str
    what: str
    cursor: float | None = None
    token: str | None = None
    polled_at: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    gap_at: float | None = None
    files: int = 0


COLUMNS = ", ".join(f.name for f in fields(Cursor))


class Cursors:
    """A connection to the ledger file for cursors; one per thread."""

    def __init__(self, path: str | Path, now=time.time):
        self.now = now
        self.db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def get(self, source: str, what: str) -> Cursor:
        row = self.db.execute(f"SELECT {COLUMNS} FROM source_cursors WHERE source=? AND what=?",
                              (source, what)).fetchone()
        return Cursor(*row) if row else Cursor(source, what)

    def all(self) -> list[Cursor]:
        return [Cursor(*r) for r in self.db.execute(f"SELECT {COLUMNS} FROM source_cursors ORDER BY source, what")]

    def _ensure(self, source: str, what: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO source_cursors (source, what) VALUES (?, ?)", (source, what))

    def advance(self, source: str, what: str, *, cursor: float | None = None, token: str | None = None,
                files: int = 0, reset_token: bool = False) -> None:
        """A poll succeeded and its files landed: move the cursor (and/or token), clear the error."""
        now = self.now()
        self._ensure(source, what)
        self.db.execute(
            "UPDATE source_cursors SET cursor=COALESCE(?, cursor), "
            "token=CASE WHEN ? THEN ? ELSE COALESCE(?, token) END, polled_at=?, "
            "last_success=?, last_error=NULL, last_error_at=NULL, files=files+? WHERE source=? AND what=?",
            (cursor, reset_token, token, token, now, now, files, source, what))

    def failed(self, source: str, what: str, error: str) -> None:
        self._ensure(source, what)
        self.db.execute("UPDATE source_cursors SET last_error=?, last_error_at=? WHERE source=? AND what=?",
                        (error, self.now(), source, what))

    def gap(self, source: str, what: str) -> None:
        """The feed starts again without its token: say a gap may exist, from now on."""
        self._ensure(source, what)
        self.db.execute("UPDATE source_cursors SET gap_at=?, token=NULL WHERE source=? AND what=?",
                        (self.now(), source, what))

    def close(self) -> None:
        self.db.close()
