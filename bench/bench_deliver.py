"""`gisgate deliver` to SFTP as users run it, end to end, against OpenSSH's `sftp -b` with `put *`.

    python bench/bench_deliver.py [--files 1000] [--kib 40] [--rounds 7]

Generates `--files` AGENT files of about `--kib` KB, one per 15-minute interval (so every file is a
batch of its own, as `gisgate deliver out/*.AGENT` sends them), with valid GIS names and contents
(a sample checked with `gisgate validate`). Starts its own OpenSSH sshd on a free loopback port
(tests/sshd.py: per-run host and client keys, the host key pinned in a known_hosts file), then
times, alternating which goes first each round:

  * gisgate: `python -m gisgate deliver FILES --target bench --config gisgate.toml`, a new process
    as a user starts it (interpreter start-up, imports, config, connect, host key check, key auth,
    upload, exit), the target an sftp target with `known_hosts` and `key_file`; gisgate runs from
    bytecode, as an installed package does (`gisgate_env`);
  * OpenSSH: `sftp -b batch` with `lcd FILES` / `cd DIR` / `put *` (same key, same known_hosts,
    StrictHostKeyChecking=yes), a new process too.

and the same for a one-file call of each (the fixed cost: start-up, connect, auth). Every delivered
folder is compared byte for byte with the files sent and must hold no temp file. Prints per round,
then medians, best-of, the ratios (also with the one-file cost taken off both, and within each
round) and the load average (the machine's other work skews wall time: compare ratios of the same
run, not seconds across runs), and the CPU time of each client (with its children) and of the sshd
session serving it, which other work on the machine skews less.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from bench_sftp import sftp_batch  # noqa: E402
from sshd import Sshd  # noqa: E402

from gisgate.produced import gis_name  # noqa: E402

COLUMNS = ("acdAgentId,acdServiceId,contactsHandled,totalTalkSeconds,totalHoldSeconds,totalAfterContactWorkSeconds,"
           "totalPeriodHandleTimeSeconds,totalUnproratedReadyWaitingSeconds,totalUnproratedNotReadyBusySeconds,"
           "totalUnproratedInSessionSeconds,contactsTransferredOut")


def agent_file(folder: Path, start: datetime, size: int, acd: int = 1) -> Path:
    """One AGENT file of interval `start` (UTC), rows of agents x services until about `size` bytes."""
    head = f"AGENT DATE: {start:%Y-%m-%d} INTERVAL: {start:%H:%M} TZOFFSET: +0000 ACD: {acd}\r\n{COLUMNS}\r\n"
    lines, total, n = [head], len(head), 0
    while total < size:
        agent, service = divmod(n, 3)
        handled = (n * 7 + start.minute) % 20 + 1
        talk = handled * 190.5
        line = (f"ag-{agent:05d},{501 + service},{handled},{talk:.1f},{handled * 12.2:.1f},{handled * 41.3:.1f},"
                f"{talk + handled * 53.5:.1f},{(agent * 13) % 300},{(agent * 11) % 120},900,{n % 3}\r\n")
        lines.append(line)
        total += len(line)
        n += 1
    path = folder / gis_name(start, timedelta(0), acd, "agent")
    path.write_bytes("".join(lines).encode("ascii"))
    return path


def make_files(folder: Path, count: int, size: int) -> list[Path]:
    folder.mkdir(parents=True)
    start = datetime(2026, 11, 2)
    return [agent_file(folder, start + timedelta(minutes=15 * i), size) for i in range(count)]


def write_config(path: Path, server: Sshd, remote: str) -> Path:
    path.write_text(
        f'[acd]\nnumber = 1\n\n[target.bench]\nkind = "sftp"\nhost = "{server.host}"\nport = {server.port}\n'
        f'user = "{server.user}"\npath = "{remote}"\nknown_hosts = "{server.known_hosts}"\n'
        f'key_file = "{server.client_key}"\n'
    )
    return path


def gisgate_env(work: Path, repo: Path = REPO) -> dict[str, str]:
    """This worktree's gisgate, run from bytecode as an installed package is (pip compiles it at install):
    where PYTHONDONTWRITEBYTECODE is set, the bytecode is kept in a throwaway folder of the run instead."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def run_gisgate(files: Path, names: list[str], config: Path, repo: Path = REPO) -> float:
    """`gisgate deliver` of `names` (in folder `files`) as a new process; this worktree's gisgate
    (or the one in `repo`)."""
    env = gisgate_env(config.parent, repo)
    cmd = [sys.executable, "-m", "gisgate", "deliver", *names, "--target", "bench", "--config", str(config)]
    started = time.perf_counter()
    subprocess.run(cmd, cwd=files, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def run_openssh(server: Sshd, files: Path, pattern: str, remote: str, work: Path) -> float:
    batch = work / "batch.txt"
    batch.write_text(f'lcd "{files}"\ncd "{remote}"\nput {pattern}\n')
    return sftp_batch(server, batch)


def children_cpu() -> float:
    """CPU seconds of this process's ended children (the command, and what it waited for: sftp's ssh)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def sshd_cpu(server: Sshd) -> float:
    """CPU seconds of the sshd sessions that have ended so far (the listener reaps them)."""
    import psutil

    listener = psutil.Process(server.proc.pid)
    deadline = time.monotonic() + 5
    while listener.children() and time.monotonic() < deadline:  # wait until the session is reaped
        time.sleep(0.01)
    t = listener.cpu_times()
    return t.children_user + t.children_system


def check(sent: list[Path], folder: Path) -> None:
    names = sorted(os.listdir(folder))
    assert names == sorted(p.name for p in sent), f"{folder}: unexpected names (temp files left?)"
    for p in sent:
        assert (folder / p.name).read_bytes() == p.read_bytes(), f"{folder / p.name}: bytes differ"


def fresh(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()


def summary(label: str, gis: list[float], ssh: list[float], cpu: dict[str, list[tuple[float, float]]],
            keys: tuple[str, str]) -> tuple[float, float]:
    mg, ms = statistics.median(gis), statistics.median(ssh)
    print(f"{label}: gisgate deliver median {mg:.3f} s (best {min(gis):.3f}); OpenSSH sftp -b median {ms:.3f} s "
          f"(best {min(ssh):.3f}); ratio of medians {mg / ms:.2f}x, of bests {min(gis) / min(ssh):.2f}x")
    client = [statistics.median(c for c, _ in cpu[k]) for k in keys]
    server = [statistics.median(s for _, s in cpu[k]) for k in keys]
    print(f"  CPU, median: gisgate {client[0]:.3f} s + sshd {server[0]:.3f} s; "
          f"OpenSSH sftp+ssh {client[1]:.3f} s + sshd {server[1]:.3f} s")
    return mg, ms


def time_rounds(jobs: dict, rounds: int, server: Sshd, target: Path) -> tuple[dict, dict]:
    """Run every job once per round, alternating which goes first; wall and CPU times per job."""
    runs: dict[str, list[float]] = {k: [] for k in jobs}
    cpu: dict[str, list[tuple[float, float]]] = {k: [] for k in jobs}
    for label in ("gisgate_one", "also"):  # warm-up: writes the bytecode, fills the page cache
        if label in jobs:
            fresh(target)
            jobs[label][0]()
    order = list(jobs)
    for r in range(rounds):
        for label in order if r % 2 == 0 else order[::-1]:
            job, sent = jobs[label]
            fresh(target)
            client0, server0 = children_cpu(), sshd_cpu(server)
            runs[label].append(job())
            cpu[label].append((children_cpu() - client0, sshd_cpu(server) - server0))
            check(sent, target)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in runs.items()), flush=True)
    return runs, cpu


def report(runs: dict, cpu: dict, files: int, also: Path | None) -> None:
    load = os.getloadavg()
    print(f"median and best of {len(runs['gisgate'])} rounds "
          f"(load average after: {' '.join(f'{x:.2f}' for x in load)}):")
    mg, ms = summary(f"{files} files", runs["gisgate"], runs["openssh"], cpu, ("gisgate", "openssh"))
    og, os1 = summary("1 file", runs["gisgate_one"], runs["openssh_one"], cpu, ("gisgate_one", "openssh_one"))
    if mg > og and ms > os1:
        print(f"with the one-file call taken off both: gisgate {mg - og:.3f} s, OpenSSH {ms - os1:.3f} s: "
              f"{(mg - og) / (ms - os1):.2f}x")
    within = [g / o for g, o in zip(runs["gisgate"], runs["openssh"], strict=True)]
    print(f"ratio within each round (the two ran back to back): {' '.join(f'{r:.2f}' for r in within)}; "
          f"median {statistics.median(within):.2f}x")
    if also:
        ma = statistics.median(runs["also"])
        print(f"{also}: gisgate deliver median {ma:.3f} s (best {min(runs['also']):.3f}): "
              f"{ma / ms:.2f}x OpenSSH's median; CPU median {statistics.median(c for c, _ in cpu['also']):.3f} s "
              f"+ sshd {statistics.median(s for _, s in cpu['also']):.3f} s")
    print(f"RESULT ratio of medians {mg / ms:.2f}x (target <= 1.2x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--kib", type=float, default=40, help="size of each file, in thousands of bytes")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-validate", action="store_true", help="skip checking the files with gisgate validate")
    ap.add_argument("--also", type=Path, help="also time the gisgate of this checkout (e.g. one of main, made with "
                    "`git archive`), all the files, in the same rounds")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-deliver-"))
    try:
        files = make_files(work / "files", args.files, int(args.kib * 1000))
        one = files[0]
        if not args.no_validate:
            subprocess.run([sys.executable, "-m", "gisgate", "validate", "-q", *map(str, files[:20])],
                           cwd=REPO, check=True)  # a sample: every file is made the same way
        mean_kb = sum(p.stat().st_size for p in files) / len(files) / 1000
        print(f"{len(files)} AGENT files ({len(files)} intervals, one batch each), {mean_kb:.1f} KB on average; "
              f"{os.cpu_count()} CPUs; loopback OpenSSH sshd; load average before: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        with Sshd.start(work / "sshd") as server:
            config = write_config(work / "gisgate.toml", server, "in")
            names = [p.name for p in files]
            jobs = {
                "gisgate": (lambda: run_gisgate(one.parent, names, config), files),
                "openssh": (lambda: run_openssh(server, one.parent, "*", "in", work), files),
                "gisgate_one": (lambda: run_gisgate(one.parent, [one.name], config), [one]),
                "openssh_one": (lambda: run_openssh(server, one.parent, one.name, "in", work), [one]),
            }
            if args.also:  # another checkout's gisgate (e.g. before a change), in the same rounds
                jobs["also"] = (lambda: run_gisgate(one.parent, names, config, args.also), files)
            runs, cpu = time_rounds(jobs, args.rounds, server, server.root / "in")
        report(runs, cpu, len(files), args.also)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
