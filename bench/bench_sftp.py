"""SFTP delivery speed: gisgate's SftpTarget against OpenSSH's `sftp -b`, same files, same server, same run.

    python bench/bench_sftp.py [--files 1000] [--kib 40] [--rounds 3]

Generates GIS-like files (AGENT + SERVICE per 15-minute interval, ~40 KB each), starts a real
OpenSSH sshd on a free loopback port (tests/sshd.py), then per round times
  * OpenSSH: one `sftp -b` session putting every file (process start, connect and auth included);
  * gisgate: a new SftpTarget (connect and auth included) delivering the files interval by interval,
    AGENT + SERVICE as one batch, as the gateway sends them;
  * gisgate, one run: the same interval batches in one pipelined `deliver_many`, as `gisgate deliver`
    sends them (bench_deliver.py times that command end to end);
  * gisgate, one batch: the same files as a single batch.
With --rtt-ms (default 20) the same comparison runs on --rtt-files files through a loopback proxy
that delays each direction by half that round-trip time, to count round trips per file.
Then a plain paramiko `put()` loop on 100 of the files, with and without TCP_NODELAY, shows the
cause of the classic ~30 ms per small file (Nagle's algorithm meeting the peer's delayed ACK).
Each into its own empty directory; every delivered file is compared byte for byte. Prints the
median of the rounds and the ratios to OpenSSH (target: <= 1.5), and the CPU time of each client
and of the sshd sessions serving it (useful when other work shares the machine and skews wall time).
"""

from __future__ import annotations

import argparse
import os
import queue
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from sshd import Sshd  # noqa: E402

from gisgate import config  # noqa: E402
from gisgate.targets import Receipt  # noqa: E402
from gisgate.targets.sftp import SftpTarget  # noqa: E402


def make_files(folder: Path, count: int, size: int) -> list[Path]:
    """`count` GIS-like files (pairs per interval) of about `size` bytes, CRLF lines."""
    folder.mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 11, 2, 0, 0)
    files = []
    for i in range(count):
        interval = start + timedelta(minutes=15 * (i // 2))
        stamp = interval.strftime("%Y%m%d%H%M")
        if i % 2 == 0:
            name = f"{stamp}P0000_1_AgentProductivity.AGENT"
            head = f"ACD: 1 {stamp}P0000 15\r\nacdAgentId,acdServiceId,handled,talk,hold,acw\r\n"
            row = "{n:05d},100{q},12,3600.0,120.0,300.0\r\n"
        else:
            name = f"{stamp}P0000_1_ServiceHistorical.SERVICE"
            head = f"ACD: 1 {stamp}P0000 15\r\nacdServiceId,offered,handled,abandoned,talk,answerDelay\r\n"
            row = "{n:05d}{q},120,115,5,36000.0,820.0\r\n"
        lines, n = [head], 0
        total = len(head)
        while total < size:
            line = row.format(n=n, q=n % 10)
            lines.append(line)
            total += len(line)
            n += 1
        path = folder / name
        path.write_bytes("".join(lines).encode("ascii"))
        files.append(path)
    return files


def server_cpu(server: Sshd) -> float:
    """CPU seconds of the sshd sessions that have ended so far (the listener reaps them)."""
    import psutil

    deadline = time.monotonic() + 5
    listener = psutil.Process(server.proc.pid)
    while listener.children() and time.monotonic() < deadline:  # wait until the session is reaped
        time.sleep(0.02)
    t = listener.cpu_times()
    return t.children_user + t.children_system


def own_cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def time_openssh(server: Sshd | SimpleNamespace, files: list[Path], remote_dir: str, work: Path) -> float:
    batch = work / "batch.txt"
    batch.write_text("".join(f'put "{p}" {remote_dir}/\n' for p in files))
    return sftp_batch(server, batch)


def sftp_batch(server, batch: Path) -> float:
    """OpenSSH's `sftp -b batch` against `server` (key auth, host key checked): seconds taken."""
    cmd = ["sftp", "-q", "-b", str(batch), "-i", str(server.client_key), "-P", str(server.port),
           "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "StrictHostKeyChecking=yes",
           "-o", "BatchMode=yes", f"{server.user}@{server.host}"]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def time_gisgate(server: Sshd | SimpleNamespace, files: list[Path], remote_dir: str, label: str) -> float:
    """`gisgate`: one `deliver` per interval batch (as the gateway sends them); `gisgate_run`: the same
    batches in one pipelined `deliver_many` (as `gisgate deliver` sends them); `gisgate_one_batch`:
    every file in one batch."""
    spec = config.SftpTarget(kind="sftp", host=server.host, port=server.port, user=server.user,
                             path=remote_dir, known_hosts=str(server.known_hosts),
                             key_file=str(server.client_key))
    started = time.perf_counter()
    target = SftpTarget("bench", spec)
    batches = [files] if label == "gisgate_one_batch" else [files[i:i + 2] for i in range(0, len(files), 2)]
    if label == "gisgate_run":
        assert all(isinstance(o, Receipt) for o in target.deliver_many(batches))
    else:
        for batch in batches:
            target.deliver(batch)
    target.close()
    return time.perf_counter() - started


def time_paramiko_loop(server: Sshd, files: list[Path], remote_dir: str, nodelay: bool) -> float:
    """The straightforward loop: one connection, `sftp.put` per file; optionally with TCP_NODELAY."""
    import socket

    import paramiko

    sock = socket.create_connection((server.host, server.port))
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = paramiko.SSHClient()
    client.load_host_keys(str(server.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(server.host, server.port, server.user, key_filename=str(server.client_key), sock=sock,
                   look_for_keys=False, allow_agent=False)
    try:
        sftp = client.open_sftp()
        started = time.perf_counter()
        for p in files:
            sftp.put(str(p), f"{remote_dir}/{p.name}")
        return time.perf_counter() - started
    finally:
        client.close()


class DelayProxy:
    """A TCP proxy on loopback that delays every byte by `one_way_s` in each direction (a WAN link)."""

    def __init__(self, target_port: int, one_way_s: float):
        self.target_port, self.delay = target_port, one_way_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pipe(client, upstream)
            self._pipe(upstream, client)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        q: queue.Queue = queue.Queue()

        def read() -> None:
            while True:
                try:
                    data = src.recv(1 << 16)
                except OSError:
                    data = b""
                q.put((time.monotonic() + self.delay, data))
                if not data:
                    return

        def write() -> None:
            while True:
                due, data = q.get()
                time.sleep(max(0.0, due - time.monotonic()))
                try:
                    if not data:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    dst.sendall(data)
                except OSError:
                    return

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()

    def close(self) -> None:
        self.listener.close()


def through_proxy(server: Sshd, proxy: DelayProxy, work: Path) -> SimpleNamespace:
    """The server as seen through the proxy: same user and keys, the proxy's port pinned in known_hosts."""
    known = work / f"known_hosts_{proxy.port}"
    known.write_text(f"[{server.host}]:{proxy.port} {server.host_key_line}\n")
    return SimpleNamespace(host=server.host, port=proxy.port, user=server.user, client_key=server.client_key,
                           known_hosts=known)


def check(files: list[Path], folder: Path) -> None:
    names = sorted(os.listdir(folder))
    assert names == sorted(p.name for p in files), f"{folder}: unexpected names (temp files left?)"
    for p in files:
        assert (folder / p.name).read_bytes() == p.read_bytes(), f"{folder / p.name}: bytes differ"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--kib", type=float, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rtt-ms", type=float, default=20, help="also time --rtt-files files through a delay proxy "
                    "adding this round-trip time (0: skip)")
    ap.add_argument("--rtt-files", type=int, default=100)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-sftp-"))
    try:
        files = make_files(work / "files", args.files, int(args.kib * 1000))
        mean_kb = sum(p.stat().st_size for p in files) / len(files) / 1000
        print(f"{len(files)} files, {mean_kb:.1f} KB on average; {os.cpu_count()} CPUs; loopback sshd")
        runs: dict[str, list[float]] = {"openssh": [], "gisgate": [], "gisgate_run": [], "gisgate_one_batch": []}
        cpu: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
        with Sshd.start(work / "sshd") as server:
            for r in range(args.rounds):
                for label in runs:
                    remote = f"r{r}-{label}"
                    (server.root / remote).mkdir()
                    who = resource.RUSAGE_CHILDREN if label == "openssh" else resource.RUSAGE_SELF
                    client0, server0 = own_cpu(who), server_cpu(server)
                    if label == "openssh":
                        secs = time_openssh(server, files, remote, work)
                    else:
                        secs = time_gisgate(server, files, remote, label)
                    cpu[label].append((own_cpu(who) - client0, server_cpu(server) - server0))
                    check(files, server.root / remote)
                    runs[label].append(secs)
                    shutil.rmtree(server.root / remote)
                print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in runs.items()))
            sample = files[:100]
            for nodelay in (False, True):
                remote = f"loop-{nodelay}"
                (server.root / remote).mkdir()
                secs = time_paramiko_loop(server, sample, remote, nodelay)
                print(f"why a plain paramiko put() loop is slow: {len(sample)} files, TCP_NODELAY "
                      f"{'on ' if nodelay else 'off'}: {secs:.2f} s = {secs / len(sample) * 1000:.1f} ms per file")
            if args.rtt_ms:
                proxy = DelayProxy(server.port, args.rtt_ms / 2000)
                far, sample = through_proxy(server, proxy, work), files[: args.rtt_files]
                for label in runs:
                    remote = f"rtt-{label}"
                    (server.root / remote).mkdir()
                    if label == "openssh":
                        secs = time_openssh(far, sample, remote, work)
                    else:
                        secs = time_gisgate(far, sample, remote, label)
                    check(sample, server.root / remote)
                    rtts = secs / (args.rtt_ms / 1000) / len(sample)
                    print(f"{args.rtt_ms:g} ms RTT, {len(sample)} files: {label} {secs:.2f} s "
                          f"({rtts:.1f} round trips per file, connecting included)")
                proxy.close()
        med = {k: statistics.median(v) for k, v in runs.items()}
        for label, values in cpu.items():
            client = statistics.median(c for c, _ in values)
            serv = statistics.median(s for _, s in values)
            print(f"CPU, median: {label}: client {client:.2f} s, sshd {serv:.2f} s")
        print(f"median of {args.rounds}: OpenSSH sftp -b {med['openssh']:.2f} s; "
              f"gisgate per interval (2 files/batch) {med['gisgate']:.2f} s; "
              f"the same batches in one pipelined run {med['gisgate_run']:.2f} s; "
              f"gisgate one batch {med['gisgate_one_batch']:.2f} s")
        print(f"ratio to OpenSSH: per interval {med['gisgate'] / med['openssh']:.2f}x, "
              f"one run {med['gisgate_run'] / med['openssh']:.2f}x, "
              f"one batch {med['gisgate_one_batch'] / med['openssh']:.2f}x (target <= 1.5x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
