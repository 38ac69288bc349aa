"""Gateway speed: latency from a file becoming stable to its output in the folder target, and
end-to-end throughput for many small files. Runs a real `gisgate watch` process.

    python bench/bench_watch.py [--drops 200] [--bulk 2000] [--settle 1.0] [--no-reports]

By default the gateway writes a report page beside every archived input, as it does out of the box;
`--no-reports` measures it with `[watch] reports = false`. The route converts each file on its own
(`stream = false`): the 2,000 files span 20 days and arrive in any order, which a stream route would
refuse beyond its `stream_days` window; `bench_stream.py` measures streams.

Targets: p95 latency <= settle + 500 ms; >= 100 small files/s end to end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADER = (
    "periodStart,acdServiceId,contactsOffered,contactsHandled,contactsAnswered,contactsAbandoned,"
    "totalTalkSeconds,totalHoldSeconds,totalAfterContactWorkSeconds,totalAnswerDelaySeconds,serviceLevelPercent\n"
)
BASE = datetime(2026, 1, 5, 8, 0, tzinfo=timezone(timedelta(hours=-5)))


def csv(i: int) -> bytes:
    start = (BASE + timedelta(minutes=15 * i)).isoformat()
    return (HEADER + f"{start},100,10,9,9,1,1800,60,300,120,90\n").encode()


def out_name(i: int) -> str:
    utc = (BASE + timedelta(minutes=15 * i)).astimezone(UTC)
    return f"{utc:%Y%m%d%H%M}P0000_1_ServiceHistorical.SERVICE"


CONFIG = """
[watch]
reports = {reports}

[[route]]
name = "generic"
inbox = "inbox"
targets = ["dataserver"]
stream = false   # each file on its own: bench_stream.py measures streams

[target.dataserver]
kind = "folder"
path = "dataserver"
"""
REPORTS = True


def start(root: Path, settle: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    root.mkdir(parents=True, exist_ok=True)
    (root / "gisgate.toml").write_text(CONFIG.format(reports="true" if REPORTS else "false"))
    log = open(root.parent / f"{root.name}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "gisgate", "watch", "--root", str(root), "--settle", str(settle)],
                            cwd=REPO, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while not (root / "gisgate.db").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


def drop(inbox: Path, name: str, data: bytes) -> None:
    tmp = inbox / (name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, inbox / name)


def latency(work: Path, drops: int, settle: float) -> list[float]:
    """Drop files one by one (50 ms apart); an inotify watch on the folder target stamps each output's
    arrival (the bench must not steal the CPU it measures by polling)."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    root = work / "latency"
    (root / "inbox").mkdir(parents=True)
    out = root / "dataserver"
    out.mkdir()
    arrived: dict[str, float] = {}

    class Stamp(FileSystemEventHandler):
        def on_any_event(self, event):
            name = os.path.basename(getattr(event, "dest_path", "") or event.src_path)
            if name.endswith(".SERVICE"):
                arrived.setdefault(name, time.time())

    observer = Observer()
    observer.schedule(Stamp(), str(out), recursive=False)
    observer.start()
    proc = start(root, settle)
    dropped = {}
    try:
        for i in range(drops):
            drop(root / "inbox", f"l{i:04}.csv", csv(i))
            dropped[i] = time.time()  # unchanged from now on: stable `settle` later
            time.sleep(0.05)
        deadline = time.monotonic() + 60
        while len(arrived) < drops and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop(proc)
        observer.stop()
        observer.join()
    assert len(arrived) == drops, f"only {len(arrived)} of {drops} outputs arrived"
    import sqlite3

    con = sqlite3.connect(root / "gisgate.db")
    rows = con.execute(
        "SELECT i.name, i.first_seen, i.claimed_at, MAX(d.delivered_at) FROM inputs i "
        "JOIN outputs o ON o.input_id = i.id JOIN deliveries d ON d.output_id = o.id GROUP BY i.id").fetchall()
    con.close()
    seen = sorted(first - dropped[int(name[1:5])] for name, first, _, _ in rows)
    wait = sorted(claimed - first - settle for _, first, claimed, _ in rows)
    work_ = sorted(sent - claimed for _, _, claimed, sent in rows)

    def p(xs, q):
        return xs[int(q * (len(xs) - 1))] * 1000

    print(f"  inside: drop -> first seen p50 {p(seen, .5):.0f} / p95 {p(seen, .95):.0f} ms; "
          f"seen + settle -> claimed p50 {p(wait, .5):.0f} / p95 {p(wait, .95):.0f} ms; "
          f"claimed -> delivered p50 {p(work_, .5):.0f} / p95 {p(work_, .95):.0f} ms")
    return [arrived[out_name(i)] - (dropped[i] + settle) for i in range(drops)]


def cpu_seconds(proc: subprocess.Popen) -> tuple[float, float]:
    """CPU (user + system) used so far by the gateway process and by its converter processes."""
    import psutil

    p = psutil.Process(proc.pid)
    own = sum(p.cpu_times()[:2])
    children = 0.0
    for c in p.children(recursive=True):
        try:
            children += sum(c.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return own, children


def throughput(work: Path, n: int, settle: float) -> tuple[float, float, float, float]:
    root = work / "bulk"
    (root / "inbox").mkdir(parents=True)
    staging = work / "bulk-staging"
    staging.mkdir()
    for i in range(n):
        (staging / f"b{i:05}.csv").write_bytes(csv(10000 + i))
    proc = start(root, settle)
    out = root / "dataserver"
    try:
        own0, kids0 = cpu_seconds(proc)
        t0 = time.monotonic()
        for p in staging.iterdir():
            os.replace(p, root / "inbox" / p.name)
        t_dropped = time.monotonic()
        deadline = t_dropped + 600
        while time.monotonic() < deadline:
            if out.is_dir() and len(os.listdir(out)) >= n:
                break
            time.sleep(0.02)
        t_done = time.monotonic()
        own1, kids1 = cpu_seconds(proc)
    finally:
        stop(proc)
    assert len(os.listdir(out)) == n
    total = t_done - t0
    return n / total, n / (total - settle), (own1 - own0) / n, (kids1 - kids0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--drops", type=int, default=200)
    ap.add_argument("--bulk", type=int, default=2000)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--no-reports", action="store_true", help="run the gateway with [watch] reports = false")
    args = ap.parse_args()
    global REPORTS
    REPORTS = not args.no_reports
    work = Path(tempfile.mkdtemp(prefix="gisgate-bench-"))
    try:
        lat = sorted(latency(work, args.drops, args.settle))
        p50 = statistics.median(lat)
        p95 = lat[int(0.95 * (len(lat) - 1))]
        print(f"latency from stable to delivered over {args.drops} drops (settle {args.settle} s): "
              f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms "
              f"(i.e. p95 = settle + {p95 * 1000:.0f} ms; target <= settle + 500 ms)")
        rate, rate_after_settle, own, kids = throughput(work, args.bulk, args.settle)
        print(f"throughput, {args.bulk} small files dropped at once, drop to last output delivered: "
              f"{rate:.0f} files/s ({rate_after_settle:.0f} files/s not counting the {args.settle} s settle; "
              f"target >= 100)")
        print(f"CPU per file: gateway process {own * 1000:.1f} ms, converter processes {kids * 1000:.1f} ms "
              f"(machine load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
