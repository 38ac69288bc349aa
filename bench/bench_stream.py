"""Benchmark: a gateway route as a stream, fed one quarter-hour export at a time.

    python bench/bench_stream.py [--agents 2000] [--events 150] [--days 1] [--keep]

Generates `--days` of CommunityWFM AgentUpdates (`--agents` agents, about `--events` state events
each per day, shifts staggered over the day, New York time), cuts each day into 96 quarter-hour
drops (a drop reaches 5 minutes back into the previous quarter, as exports that overlap do), and
feeds them one by one to a real `gisgate watch` (folder target, default converter processes),
waiting for each drop's intervals to be delivered before the next. It reports:

- latency per drop: from the drop being taken (stable, claimed) to the last file it changed being in
  the folder target; p50 / p95 / max (target: p95 <= 0.5 s on 2 cores);
- the whole day's work: the gateway's CPU seconds (process + converter processes) over the day
  against one `gisgate convert` of the same day (target: <= 3x), and against the same gateway
  converting each drop on its own (`stream = false`, what it did before streams: the floor of
  handling 96 small files one by one), and the wall time of each;
- per day (with --days > 1): the gateway's RSS and the size of its stream state on disk (flat);
- that the folder equals one `gisgate convert` of all the data (byte for byte).

The data is generated into a temporary folder and never committed.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import psutil

REPO = Path(__file__).resolve().parents[1]
START = datetime(2024, 11, 4, 5, 0, tzinfo=UTC)  # 00:00 in New York
CONFIG = """
[acd]
timezone = "America/New_York"
[mapping]
default_service = "101"
[watch]
reports = false
[[route]]
name = "cw"
format = "cwfm"
targets = ["ds"]
settle_seconds = 0.05
stream_days = 2
[target.ds]
kind = "folder"
path = "dataserver"
"""
ACTIVITIES = np.array(["Ready", "OnCall", "WRAPUP", "Ready", "OnCall", "WRAPUP", "NotReady"], dtype="U16")


def events(agents: int, per_day: int, days: int, seed: int = 7) -> pl.DataFrame:
    """AgentId, EventTime (UTC), Activity: each agent works an 8-hour shift a day starting on a
    quarter hour spread over the day, with `per_day` events in it (login, states, logout)."""
    rng = np.random.default_rng(seed)
    frames = []
    for day in range(days):
        base = START + timedelta(days=day)
        shift = rng.integers(0, 16 * 4, agents) * 15 * 60  # shift starts over the first 16 hours
        n = per_day
        offsets = np.sort(rng.uniform(0, 8 * 3600, (agents, n - 2)), axis=1)
        times = np.concatenate([np.zeros((agents, 1)), offsets, np.full((agents, 1), 8 * 3600.0)], axis=1)
        times = times + shift[:, None]
        acts = ACTIVITIES[rng.integers(0, len(ACTIVITIES), (agents, n))]
        acts[:, 0], acts[:, -1] = "Ready", "LoggedOut"
        ids = np.repeat(np.arange(1000, 1000 + agents), n)
        frames.append(pl.DataFrame({
            "AgentId": ids.astype(str),
            "EventTime": pl.Series((times.ravel() * 1e6).astype(np.int64) + int(base.timestamp() * 1e6))
            .cast(pl.Datetime("us", "UTC")),
            "Activity": acts.ravel(),
        }))
    return pl.concat(frames).sort("EventTime", "AgentId")


def write(frame: pl.DataFrame, path: Path) -> None:
    frame.with_columns(pl.col("EventTime").dt.strftime("%Y-%m-%d %H:%M:%S"),
                       pl.lit("").alias("ReasonCode")).write_csv(path)


def drops(frame: pl.DataFrame, days: int) -> list[pl.DataFrame]:
    """Quarter-hour exports, each reaching 5 minutes back (the overlap re-sends records)."""
    out = []
    for q in range(96 * days):
        lo = START + timedelta(minutes=15 * q)
        hi = lo + timedelta(minutes=15)
        out.append(frame.filter((pl.col("EventTime") >= lo - timedelta(minutes=5)) & (pl.col("EventTime") < hi)))
    return out


def cpu(proc: psutil.Process) -> float:
    total = sum(proc.cpu_times()[:2])
    for child in proc.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


def delivered(db: Path, name: str) -> tuple[float, float] | None:
    """(claimed_at, last delivered_at of what it changed) once input `name` is archived and delivered."""
    con = sqlite3.connect(db, timeout=30)
    try:
        row = con.execute("SELECT id, claimed_at, state FROM inputs WHERE name=? ORDER BY id DESC", (name,)).fetchone()
        if row is None or row[2] != "archived":
            return None
        pending = con.execute("SELECT COUNT(*) FROM deliveries WHERE state IN ('pending','sending')").fetchone()[0]
        if pending:
            return None
        last = con.execute("SELECT MAX(d.delivered_at) FROM deliveries d JOIN outputs o ON o.id = d.output_id "
                           "WHERE o.input_id=?", (row[0],)).fetchone()[0]
        return row[1], (last or row[1])
    except sqlite3.OperationalError:
        return None
    finally:
        con.close()


def feed(root: Path, parts: list[pl.DataFrame], days: int, stream: bool = True) -> dict:
    root.mkdir()
    (root / "gisgate.toml").write_text(CONFIG if stream else CONFIG.replace("stream_days = 2", "stream = false"))
    inbox = root / "inbox" / "cw"
    inbox.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = open(root / "gateway.log", "wb")
    gate = subprocess.Popen([sys.executable, "-m", "gisgate", "watch", "--root", str(root)], stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    proc = psutil.Process(gate.pid)
    while not (root / "gisgate.db").exists():
        time.sleep(0.05)
    time.sleep(3.0)  # converter processes warm
    cpu0, wall0 = cpu(proc), time.monotonic()
    latencies, daily = [], []
    try:
        for n, part in enumerate(parts):
            name = f"drop-{n:04d}.csv"
            tmp = inbox / f".{name}.part"
            write(part, tmp)
            os.replace(tmp, inbox / name)
            while (done := delivered(root / "gisgate.db", name)) is None:
                if gate.poll() is not None:
                    raise SystemExit(f"the gateway stopped; see {root / 'gateway.log'}")
                time.sleep(0.01)
            latencies.append(done[1] - done[0])
            if (n + 1) % 96 == 0:
                daily.append((proc.memory_info().rss, (root / "stream.db").stat().st_size
                              + sum(p.stat().st_size for p in root.glob("stream.db-*"))))
        work = cpu(proc) - cpu0
        wall = time.monotonic() - wall0
    finally:
        gate.send_signal(signal.SIGTERM)
        gate.wait(60)
    return {"latencies": latencies, "cpu": work, "wall": wall, "daily": daily}


def convert(whole: Path, out: Path) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "gisgate", "convert", str(whole), "--from", "cwfm", "--tz",
                        "America/New_York", "--service", "101", "--out", str(out), "-q"], env=env,
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stderr)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)  # every child waited for so far
    return time.monotonic() - start, child.ru_utime + child.ru_stime


def same(a: Path, b: Path) -> bool:
    fa = {p.name: p.read_bytes() for p in a.iterdir()}
    fb = {p.name: p.read_bytes() for p in b.iterdir()}
    return fa == fb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=2000)
    ap.add_argument("--events", type=int, default=150)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--per-file", action="store_true", help="also time the gateway with stream = false")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gisgate-bench-stream-"))
    try:
        frame = events(a.agents, a.events, a.days)
        whole = tmp / "whole.csv"
        write(frame, whole)
        print(f"{frame.height:,} events of {a.agents} agents over {a.days} day(s), {96 * a.days} drops")
        day = tmp / "day.csv"
        write(frame.filter(pl.col("EventTime") < START + timedelta(days=1)), day)
        wall_d, cpu_d = convert(day, tmp / "convert-day")
        wall_c, cpu_c = convert(whole, tmp / "convert")
        cpu_c -= cpu_d  # getrusage adds up every child waited for
        print(f"gisgate convert of one day: {wall_d:.2f} s wall, {cpu_d:.2f} CPU-s; of it all: {wall_c:.2f} s wall, "
              f"{cpu_c:.2f} CPU-s")
        parts = drops(frame, a.days)
        if a.per_file:
            f = feed(tmp / "per-file", parts, a.days, stream=False)
            print(f"the gateway converting each drop on its own (stream = false): {f['cpu']:.2f} CPU-s, "
                  f"wall {f['wall']:.1f} s")
        r = feed(tmp / "gw", parts, a.days)
        lat = sorted(r["latencies"])
        p95 = lat[int(0.95 * (len(lat) - 1))]
        print(f"latency per drop (taken -> its last file in the folder): p50 {statistics.median(lat):.3f} s, "
              f"p95 {p95:.3f} s, max {lat[-1]:.3f} s  [target p95 <= 0.5 s]")
        per_day, convert_day = r["cpu"] / a.days, cpu_d
        print(f"gateway CPU over the stream: {r['cpu']:.2f} CPU-s ({per_day:.2f} per day) = "
              f"{per_day / convert_day:.2f}x one convert of a day [target <= 3x]; wall {r['wall']:.1f} s for "
              f"{96 * a.days} drops")
        if a.per_file:
            print(f"stream / each drop on its own: {r['cpu'] / f['cpu']:.2f}x CPU")
        for day, (rss, size) in enumerate(r["daily"], start=1):
            print(f"after day {day}: gateway RSS {rss / 2**20:.0f} MiB, stream state {size / 2**20:.1f} MiB")
        ok = same(tmp / "gw" / "dataserver", tmp / "convert")
        print(f"folder target equals one convert of all the data: {ok}")
    finally:
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
