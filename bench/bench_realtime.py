"""Benchmark live agent states: from the LiveVox Agent Event Feed poll that returned a state change to the
Webex WFO POST that carries it, through a real `gisgate watch` (target: p95 <= 2 s).

    python bench/bench_realtime.py [--pushes 60] [--agents 50] [--gap 0.5] [--converters 0]

A fake LiveVox (long polls, as the real feed) and a fake Webex WFO (tests/fake_livevox.py, fake_wfm.py)
run on loopback; every `gap` seconds one state change for each of `agents` agents is added to the
feed. The gateway follows the feed (a livevox [[source]]), lands each page in the route's inbox, takes
it at once (a fetched page is landed whole: it does not wait the route's settle_seconds, 5 s here),
converts it to real-time states and POSTs them. Prints the count (each change must arrive once) and
p50 / p95 / max latency.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from realtime_run import run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pushes", type=int, default=60)
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--gap", type=float, default=0.5)
    ap.add_argument("--converters", type=int, default=0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gisgate-bench-rt-") as d:
        r = run(Path(d), a.pushes, a.agents, a.gap, a.converters)
    print(f"changes {r.changes}, received {r.sent} ({'each once' if r.sent == r.changes else 'NOT each once'})")
    print(f"latency poll -> POST: p50 {r.percentile(0.5):.3f} s, p95 {r.percentile(0.95):.3f} s, "
          f"max {max(r.latencies):.3f} s")
    sys.exit(0 if r.sent == r.changes and r.percentile(0.95) <= 2.0 else 1)


if __name__ == "__main__":
    main()
