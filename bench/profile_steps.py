"""Where a `gisgate convert` spends its time and memory, step by step (diagnosis, not a benchmark).

    python bench/profile_steps.py [--every 0.005] [--min 0.02] [--step MODULE:FUNCTION]...
                                  -- convert IN... --tz ZONE --out DIR -q

Runs the CLI in this process with the functions of the generic and cwfm paths wrapped (`STEPS`):
for each call, the wall time, the RSS when it started and ended and the highest RSS sampled while
it ran (a thread reads /proc/self/statm every `--every` s; tracemalloc cannot see polars). Calls
are printed in order, nested; calls on other threads (the renderer's formatting pool) are summed
per function at the end. Generators (the renderer) are timed over the time spent inside them.
Calls shorter than `--min` s are left out of the listing (their time stays in their caller's).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's gisgate

STEPS = [
    "gisgate.pipeline:convert", "gisgate.pipeline:write", "gisgate.pipeline:_read",
    "gisgate.pipeline:_to_interval_length", "gisgate.pipeline:Conversion.output_count",
    "gisgate.pipeline:Conversion.summary",
    "gisgate.transform.intervals:infer_source_interval",
    # generic
    "gisgate.sources.generic:read", "gisgate.sources.generic:_read_one", "gisgate.sources.generic:read_csv",
    "gisgate.sources.generic:numbers", "gisgate.sources.generic:_check_rows", "gisgate.sources.generic:_iso_starts",
    "gisgate.sources.generic:_parse_periods", "gisgate.sources.generic:check",
    "gisgate.sources._checks:clean_ids", "gisgate.sources._checks:collect", "gisgate.sources._checks:duplicates",
    "gisgate.sources._checks:unprorated_consistency",
    # cwfm
    "gisgate.sources.cwfm:read", "gisgate.sources.cwfm:_activity", "gisgate.sources._platform:tables",
    "gisgate.sources._platform:read_csv", "gisgate.sources._platform:nulls", "gisgate.sources._platform:with_times",
    "gisgate.sources._platform:map_states", "gisgate.sources._platform:bad_ids",
    "gisgate.sources.cwfm:_activity_scanned", "gisgate.sources._platform:scanned_times",
    "gisgate.sources._platform:check_parsed", "gisgate.sources._platform:required", "gisgate.model:check",
    "gisgate.transform:derive", "gisgate.transform:state_seconds", "gisgate.transform:agent_rows",
    "gisgate.transform:sort_by_agent", "gisgate.transform:_home_queue",
    "gisgate.transform.states:spans", "gisgate.transform.states:sort_packed", "gisgate.transform.states:split",
    # rendering
    "gisgate.render.gis:render", "gisgate.render.gis:_lines", "gisgate.render.gis:_text_columns",
]

PAGE = os.sysconf("SC_PAGE_SIZE")
GIB = 1024**3
MAIN = threading.main_thread()


class Sampler(threading.Thread):
    def __init__(self, every: float) -> None:
        super().__init__(daemon=True)
        self.every, self.open, self.peak, self.stop = every, [], 0, threading.Event()
        self.fd = os.open("/proc/self/statm", os.O_RDONLY)

    def rss(self) -> int:
        return int(os.pread(self.fd, 64, 0).split()[1]) * PAGE

    def run(self) -> None:
        while not self.stop.is_set():
            r = self.rss()
            self.peak = max(self.peak, r)
            for rec in list(self.open):
                rec["peak"] = max(rec["peak"], r)
            time.sleep(self.every)


class Recorder:
    def __init__(self, sampler: Sampler) -> None:
        self.s, self.calls, self.depth, self.threaded = sampler, [], 0, {}
        self.t0 = time.perf_counter()

    def enter(self, name: str) -> dict:
        r = self.s.rss()
        rec = {"name": name, "depth": self.depth, "start": time.perf_counter() - self.t0, "rss0": r, "peak": r,
               "secs": 0.0}
        self.s.open.append(rec)
        self.calls.append(rec)
        self.depth += 1
        return rec

    def leave(self, rec: dict, secs: float) -> None:
        self.depth -= 1
        rec["secs"] += secs
        rec["rss1"] = self.s.rss()
        rec["peak"] = max(rec["peak"], rec["rss1"])
        if rec in self.s.open:
            self.s.open.remove(rec)


def wrap(rec: Recorder, name: str, fn):
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*a, **k):
            if threading.current_thread() is not MAIN:
                yield from fn(*a, **k)
                return
            entry = rec.enter(name + " (generator)")
            rec.depth -= 1  # its body runs interleaved with its consumer: do not nest under it
            it = fn(*a, **k)
            try:
                while True:
                    t = time.perf_counter()
                    try:
                        item = next(it)
                    except StopIteration:
                        entry["secs"] += time.perf_counter() - t
                        break
                    entry["secs"] += time.perf_counter() - t
                    yield item
            finally:
                rec.depth += 1
                rec.leave(entry, 0.0)
        return gen

    @functools.wraps(fn)
    def call(*a, **k):
        if threading.current_thread() is not MAIN:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                n, s = rec.threaded.get(name, (0, 0.0))
                rec.threaded[name] = (n + 1, s + time.perf_counter() - t)
        entry = rec.enter(name)
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            rec.leave(entry, time.perf_counter() - t)
    return call


def install(rec: Recorder) -> None:
    for step in STEPS:
        module_name, attr = step.split(":")
        module = importlib.import_module(module_name)
        owner, _, name = attr.rpartition(".")
        target = getattr(module, owner) if owner else module
        if not hasattr(target, name):
            continue
        short = f"{module_name.removeprefix('gisgate.')}.{attr}"
        setattr(target, name, wrap(rec, short, getattr(target, name)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--every", type=float, default=0.005)
    ap.add_argument("--min", type=float, default=0.02)
    ap.add_argument("--step", action="append", default=[], metavar="MODULE:FUNCTION",
                    help="also time this function (e.g. gisgate.model:check); repeatable")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    sampler = Sampler(a.every)
    import gisgate.cli  # (first: it sets polars' allocator up before polars loads, as the command does)

    # isort: split
    import polars  # noqa: F401  (imported before the clock starts, as every run imports it)

    base = sampler.rss()
    sampler.start()
    rec = Recorder(sampler)
    STEPS.extend(a.step)
    install(rec)
    t = time.perf_counter()
    try:
        gisgate.cli.main(args)
    except SystemExit as e:
        if e.code:
            raise
    total = time.perf_counter() - t
    sampler.stop.set()
    print(f"{'step':60s} {'at s':>6s} {'secs':>6s} {'RSS in':>7s} {'peak':>6s} {'out':>6s}  GiB")
    for c in rec.calls:
        if c["secs"] < a.min:
            continue
        label = "  " * c["depth"] + c["name"]
        print(f"{label:60s} {c['start']:6.2f} {c['secs']:6.2f} {c['rss0'] / GIB:7.2f} {c['peak'] / GIB:6.2f} "
              f"{c.get('rss1', 0) / GIB:6.2f}")
    for name, (n, s) in rec.threaded.items():
        print(f"on worker threads: {name}: {n} calls, {s:.2f} s in total")
    print(f"total {total:.2f} s; RSS after imports {base / GIB:.2f} GiB, peak {sampler.peak / GIB:.2f} GiB")


if __name__ == "__main__":
    main()
