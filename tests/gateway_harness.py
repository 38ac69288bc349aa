"""Running real `gisgate watch` processes on real folders, and reading what they did."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

HEADER = (
    "periodStart,acdServiceId,contactsOffered,contactsHandled,contactsAnswered,contactsAbandoned,"
    "totalTalkSeconds,totalHoldSeconds,totalAfterContactWorkSeconds,totalAnswerDelaySeconds,serviceLevelPercent\n"
)
BASE = datetime(2026, 11, 2, 8, 0, tzinfo=timezone(timedelta(hours=-5)))


def csv_rows(first: int, count: int = 1, service: int = 100, offered: int = 10) -> str:
    """`count` generic-CSV interval rows starting at interval number `first` (15 minutes apart)."""
    out = []
    for i in range(first, first + count):
        start = (BASE + timedelta(minutes=15 * i)).isoformat()
        out.append(f"{start},{service},{offered},{offered - 1},{offered - 1},1,1800,60,300,120,90\n")
    return "".join(out)


def csv_file(first: int, count: int = 1, **kw) -> bytes:
    return (HEADER + csv_rows(first, count, **kw)).encode()


def service_name(interval: int) -> str:
    """The GIS SERVICE file name the row of interval number `interval` turns into (ACD 1, UTC)."""
    utc = (BASE + timedelta(minutes=15 * interval)).astimezone(UTC)
    return f"{utc:%Y%m%d%H%M}P0000_1_ServiceHistorical.SERVICE"


def env(**extra) -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop(("GISGATE_CRASH_AT"), None)
    e.update(extra)
    return e


class Gate:
    """A `gisgate watch` subprocess on `root` (stderr goes to `root/../<name>.log`)."""

    def __init__(self, root: Path, *args: str, settle: float = 0.3, rescan: float = 1.0, crash: str | None = None,
                 log: str = "watch", extra_env: dict | None = None):
        self.root = root
        self.log = root.parent / f"{log}.log"
        extra = {"GISGATE_CRASH_AT": crash} if crash else {}
        extra.update(extra_env or {})
        cmd = [sys.executable, "-m", "gisgate", "watch", "--root", str(root), "--settle", str(settle),
               "--rescan", str(rescan), *args]
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env(**extra), stdout=f, stderr=f)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def wait_exit(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def wait_until(predicate, timeout: float = 30, every: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def query(root: Path, sql: str, *args) -> list[tuple]:
    db = root / "gisgate.db"
    if not db.exists():
        return []
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # schema not created yet
        return []
    finally:
        con.close()


def input_states(root: Path) -> dict[str, int]:
    return dict(query(root, "SELECT state, COUNT(*) FROM inputs GROUP BY state"))


def finished(root: Path) -> int:
    return sum(n for s, n in input_states(root).items() if s in ("archived", "rejected", "duplicate"))


def files(folder: Path) -> list[Path]:
    """Every regular file under `folder`, sorted; hidden ones and the report pages written beside archived
    inputs (tested on their own) excluded."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".report.html"))


def drop(inbox: Path, name: str, data: bytes) -> Path:
    """Write like a careful partner: temp name, then rename into the inbox."""
    inbox.mkdir(parents=True, exist_ok=True)
    tmp = inbox / f"{name}.part"
    tmp.write_bytes(data)
    return Path(os.replace(tmp, inbox / name) or inbox / name)
