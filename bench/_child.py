"""Run one benchmark job in its own process: wall time and that process's own peak RSS.

Each job is started by a tiny wrapper process (`WRAP`), which spawns it, waits for it with
`os.wait4` (the resource usage of exactly that child) and reports its `ru_maxrss` and wall time.
The wrapper is needed: Linux carries a process's peak RSS over into the program it `exec`s, and
with `vfork` (which `subprocess` and `posix_spawn` use) that is the peak of the *parent* — a
benchmark that generated a 4 M-row input in-process would see every job peak at least at its own
peak (a 20 MB `python -c pass` reads 2 GiB after a 2 GiB parent). The wrapper's own peak is a
few MB. RSS counts anonymous memory and the pages of files the job mapped (polars memory-maps its
CSV input), as `/usr/bin/time -v` would show.

With `trace`, the child's RSS is also sampled every `every` seconds (psutil), for a memory
timeline; the sampling costs the job nothing measurable but is off by default.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Outputs go to a RAM-backed folder when there is one: on ext4, creating files right after deleting
# many (the previous run's) is slowed by the kernel's recently-deleted-inode scan.
RAM = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
GIB = 1024**3


@dataclass
class Run:
    label: str
    seconds: float
    peak: int  # bytes
    files: int = 0
    others: float = 0.0  # share of the machine's CPU time other processes used during the run
    cpu: float = 0.0  # the job's own CPU seconds (user + system): steadier than wall time on a shared machine
    trace: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, RSS bytes)


def _cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])
    return (total - idle) / hz, total / hz


def busy(seconds: float = 0.5) -> float:
    """Share of the machine's CPU in use over the next `seconds`."""
    b0, t0 = _cpu()
    time.sleep(seconds)
    b1, t1 = _cpu()
    return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def add_round_options(parser) -> None:
    """The options of `rounds` and `run` every job benchmark takes: --trace, --max-others, --patience, --no-wait."""
    parser.add_argument("--trace", action="store_true", help="sample each job's RSS over time (psutil)")
    parser.add_argument("--max-others", type=float, default=0.15,
                        help="rerun a round when other processes took more of the CPU (default 0.15)")
    parser.add_argument("--patience", type=float, default=120.0, help="seconds to wait for a quiet machine")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine before each job")


def wait_quiet(limit: float = 0.15, patience: float = 120.0) -> None:
    """Wait (at most `patience` seconds) until other processes use less than `limit` of the CPU: on
    a shared machine, a test suite running beside the benchmark slows one job of a pair only."""
    deadline = time.monotonic() + patience
    said = False
    while (load := busy()) > limit and time.monotonic() < deadline:
        if not said:
            print(f"  (machine {load:.0%} busy: waiting for quiet)", flush=True)
            said = True
        time.sleep(2.0)


# argv: result file, then the job's argv. Writes "<maxrss KiB> <seconds> <exit code>" to the file.
WRAP = """
import os, sys, time
t = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - t
with open(sys.argv[1], "w") as f:
    f.write(f"{usage.ru_maxrss} {elapsed} {os.waitstatus_to_exitcode(status)} {usage.ru_utime + usage.ru_stime}")
"""


def env() -> dict[str, str]:
    """The environment of a job: this checkout's gisgate first on the path (an editable install of
    another worktree must not be timed instead)."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [e.get("PYTHONPATH")])])
    return e


def fresh(name: str) -> Path:
    out = RAM / f"gisgate-bench-out-{name}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    return out


def run(label: str, argv: list[str], out: Path, *, trace: bool = False, every: float = 0.02,
        keep: bool = False) -> Run:
    """Run `argv` (cwd = the checkout), wait for it, and return its time and peak RSS.

    `out` is emptied before (untimed) and, unless `keep`, after the run."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    samples: list[tuple[float, int]] = []
    with tempfile.TemporaryFile() as log, tempfile.NamedTemporaryFile("r", suffix=".rusage") as result:
        cpu0 = _cpu()
        wrapper = subprocess.Popen([sys.executable, "-c", WRAP, result.name, *argv], cwd=REPO, env=env(),
                                   stdout=log, stderr=subprocess.STDOUT)
        stop = threading.Event()
        sampler = None
        if trace:
            import psutil

            def sample() -> None:
                t0 = time.perf_counter()
                try:
                    w = psutil.Process(wrapper.pid)
                    while not (kids := w.children()) and w.is_running() and w.status() != psutil.STATUS_ZOMBIE:
                        time.sleep(0.001)
                    p = kids[0]
                except (psutil.Error, IndexError):
                    return
                while not stop.is_set():
                    try:
                        rss = p.memory_info().rss
                        if rss:  # 0 once the child exited (a zombie has no memory)
                            samples.append((time.perf_counter() - t0, rss))
                    except psutil.Error:
                        return
                    stop.wait(every)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
        wrapper.wait()
        cpu1 = _cpu()
        stop.set()
        if sampler is not None:
            sampler.join()
        fields = result.read().split()
        if wrapper.returncode or not fields or int(fields[2]):
            log.seek(0)
            raise SystemExit(f"{label} failed:\n{log.read().decode(errors='replace')[-4000:]}")
    maxrss_kib, elapsed, own = int(fields[0]), float(fields[1]), float(fields[3])
    files = sum(1 for _ in out.rglob("*") if _.is_file())
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    span = cpu1[1] - cpu0[1]
    others = max(0.0, (cpu1[0] - cpu0[0] - own) / span) if span > 0 else 0.0
    return Run(label, elapsed, maxrss_kib * 1024, files, others, own, samples)  # ru_maxrss: KiB on Linux


def rounds(repeat: int, order, run_one, *, wait: bool = True, max_others: float = 0.15,
           retries: int = 3, patience: float = 120.0) -> dict[str, list[Run]]:
    """`repeat` rounds of jobs; round k runs the labels `order(k)` through `run_one(label, k)`.

    With `wait`, each job waits for a quiet machine first, and a round in which other processes
    took more than `max_others` of the CPU during one of its jobs is run again (up to `retries`
    times; the last attempt counts whatever happened), so noisy pairs do not enter the medians.
    """
    runs: dict[str, list[Run]] = {}
    for k in range(repeat):
        for attempt in range(retries + 1):
            print(f"round {k + 1}" + (f" (attempt {attempt + 1})" if attempt else ""), flush=True)
            got = {}
            for label in order(k):
                if wait:
                    wait_quiet(patience=patience)
                got[label] = run_one(label, k)
            noisy = max(r.others for r in got.values())
            if not wait or noisy <= max_others or attempt == retries:
                break
            print(f"  other processes took {noisy:.0%} of the CPU during this round: running it again")
        for label, r in got.items():
            runs.setdefault(label, []).append(r)
    return runs


def timeline(r: Run, marks: int = 24) -> str:
    """The sampled RSS as a short text line: RSS (GiB) at evenly spaced moments of the run."""
    if not r.trace:
        return ""
    out, j = [], 0
    for k in range(1, marks + 1):
        t = r.seconds * k / marks
        while j + 1 < len(r.trace) and r.trace[j + 1][0] <= t:
            j += 1
        out.append(f"{r.trace[j][1] / GIB:.2f}")
    return f"  RSS every {r.seconds / marks:.2f} s (GiB): " + " ".join(out)


def digest(folder: Path) -> str:
    """sha256 over the sorted file names and contents of `folder` (to check outputs stay identical)."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        h.update(p.name.encode() + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()[:16]
