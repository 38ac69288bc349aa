"""`gisgate watch`: the unattended gateway. Inboxes in, converted files delivered, nothing lost.

Pickup. watchdog events are only hints that wake the loop early; a full listing of every inbox
every `rescan_seconds` is the truth (inotify misses writes made on the server side of a network
share, and its thread can die silently). On cifs / nfs / fuse mounts the polling observer is used.
A file is taken when it is stable: not a temp name (`*.part`, `*.tmp`, `.*`, `~$*`), its done-file
present when the route asks for one, and its size and mtime unchanged across two looks `settle`
seconds apart, counted from when gisgate first saw it (SFTP clients preserve old mtimes). A file
still changing after `stuck_seconds` is reported, not taken. Files go oldest first, and at most
`queue_limit` are tracked at once: the inbox itself is the buffer.

Health. A canary file written into each inbox must come back as an event within a few seconds,
proving the watcher thread alive; otherwise the observer is restarted (the rescan carries on
regardless). `--metrics` exposes Prometheus text.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from gisgate import durable, outbox, pipeline
from gisgate import gateway as gw
from gisgate import ledger as ledgermod
from gisgate import report as reports
from gisgate.config import ConvertOptions, Report, Route
from gisgate.errors import ConfigError, InputError
from gisgate.model import Output

log = logging.getLogger("gisgate.watch")

TEMP_PATTERNS = ("*.part", "*.tmp", ".*", "~$*")
DONE_SUFFIX = ".done"
CANARY = ".gisgate-canary"
NETWORK_FS = {"cifs", "smb3", "smbfs", "nfs", "nfs4", "9p", "fuse", "fuseblk", "afs", "ceph", "glusterfs"}
LISTING_NOTE_SECONDS = 2.0  # a listing that takes longer logs its progress (start-up over a big backlog)


# ---- what is a candidate -------------------------------------------------------------------------


def is_candidate(name: str, route: Route) -> bool:
    """Whether `name` in `route`'s inbox is an input at all (temp names and done-files are not)."""
    if any(fnmatch.fnmatchcase(name, p) for p in TEMP_PATTERNS):
        return False
    if route.done_file and name.endswith(DONE_SUFFIX):
        return False
    if not any(fnmatch.fnmatchcase(name, p) for p in route.include):
        return False
    return not any(fnmatch.fnmatchcase(name, p) for p in route.exclude)


def filesystem_type(path: Path, mounts: str = "/proc/mounts") -> str:
    """The file system type of the mount holding `path` (longest mount point prefix), or ""."""
    try:
        lines = Path(mounts).read_text().splitlines()
    except OSError:
        return ""
    real = os.path.realpath(path)
    best, kind = "", ""
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, parts[2]
    return kind


def is_network(path: Path) -> bool:
    kind = filesystem_type(path)
    return kind in NETWORK_FS or kind.startswith("fuse.")


# ---- conversion (in this process or in converter processes) --------------------------------------


def convert_file(path: str, options: list[ConvertOptions], report: Report | None = None) -> tuple[str, object]:
    """Convert one input into every requested output; never raises.

    Returns ("ok", [Output...]), or ("input" | "config" | "bug", [reason lines]). Plain picklable
    values, so it runs the same in a converter process. With `report` settings, one more Output of
    kind "report" holds the `gisgate report` page of the input (interval data only).
    """
    try:
        outputs = []
        for o in options:
            conversion = pipeline.convert([Path(path)], o)
            outputs.extend(conversion.outputs())
            if report is not None and (conversion.batch.queue_intervals is not None
                                       or conversion.batch.agent_intervals is not None):
                page = reports.render(reports.build(conversion.batch, o, report, inputs=[Path(path)],
                                                    warnings=conversion.warnings))
                outputs.append(Output(Path(path).name + gw.REPORT_SUFFIX, page.encode("utf-8"), "report"))
                report = None  # one page per input
        return "ok", outputs
    except InputError as e:
        return "input", [str(p) for p in e.problems]
    except ConfigError as e:
        return "config", [str(e)]
    except Exception as e:  # a bug must not stop the gateway: the file waits in rejected/
        return "bug", [f"gisgate failed unexpectedly: {type(e).__name__}: {e}",
                       *traceback.format_exc().splitlines()[-6:]]


_SAMPLE = (
    "periodStart,acdServiceId,contactsOffered,contactsHandled,contactsAnswered,contactsAbandoned,totalTalkSeconds,"
    "totalHoldSeconds,totalAfterContactWorkSeconds,totalAnswerDelaySeconds,serviceLevelPercent\n"
    "2026-01-05T08:00:00Z,1,1,1,1,0,1,0,0,1,100\n"
)


def _warm_up() -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gisgate-warm-") as d:
        path = Path(d) / "warm.csv"
        path.write_text(_SAMPLE)
        convert_file(str(path), [ConvertOptions()])
    time.sleep(0.2)  # hold this worker so the next warm-up call lands on another process
    return os.getpid()


def _die_with_parent(gateway_pid: int) -> None:
    """Converter processes end when the gateway does, even after a kill -9 (Linux); Ctrl-C in a
    terminal reaches the whole process group, but only the gateway decides when to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != gateway_pid:  # the gateway died before the line above: nobody will stop us
        os._exit(1)


class Converters:
    """A pool of converter processes (CPU-bound polars work runs beside the gateway's file I/O)."""

    def __init__(self, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_die_with_parent, initargs=(os.getpid(),))
        self.workers = workers

    def warm(self) -> None:
        """Start every process and run one tiny conversion in each now (imports, polars' first
        query plans), so the first real file is not slower than the rest."""
        for f in [self.pool.submit(_warm_up) for _ in range(self.workers)]:
            f.result()

    def submit(self, job: gw.Job):
        return self.pool.submit(convert_file, str(job.work), job.options, job.report)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# ---- per-inbox tracking --------------------------------------------------------------------------


@dataclass
class Seen:
    size: int
    mtime_ns: int
    first_seen: float  # wall clock, for the ledger
    first_mono: float
    changed_mono: float
    stuck_reported: bool = False
    looks: int = 0


@dataclass
class Inbox:
    route: Route
    path: Path
    settle: float
    seen: dict[str, Seen] = field(default_factory=dict)
    canary_written: float = 0.0
    canary_seen: float = 0.0
    stuck: set[str] = field(default_factory=set)


class Hints:
    """watchdog events turned into 'look at this inbox soon' (the listing decides what is true)."""

    def __init__(self, wake: threading.Event, inboxes: list[Inbox]):
        self.wake = wake
        self.by_dir = {os.path.realpath(i.path): n for n, i in enumerate(inboxes)}
        self.inboxes = inboxes
        self.pending: dict[int, dict[str, tuple[float, float]]] = {}  # inbox -> name -> last event (mono, wall)
        self.lock = threading.Lock()
        self.events = 0

    def dispatch(self, event) -> None:  # watchdog's handler interface
        path = getattr(event, "dest_path", "") or event.src_path
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        n = self.by_dir.get(os.path.dirname(os.path.realpath(path)))
        if n is None:
            return
        self.events += 1
        if os.path.basename(path) == CANARY:
            self.inboxes[n].canary_seen = time.monotonic()
            return
        with self.lock:
            self.pending.setdefault(n, {})[os.path.basename(path)] = (time.monotonic(), time.time())
        self.wake.set()

    def take(self) -> dict[int, dict[str, tuple[float, float]]]:
        """The inboxes with events since the last call, with each named file's last event time."""
        with self.lock:
            taken, self.pending = self.pending, {}
        return taken


def _no_move_pairing_delay() -> None:
    """watchdog holds every IN_MOVED_FROM for 0.5 s to pair it with its IN_MOVED_TO, and the events
    queued behind it wait too. Each claim moves a file out of an inbox, so that would delay every
    hint by up to 0.5 s; events are only hints here, so moves need no pairing."""
    for module, cls in (("watchdog.observers.inotify_move_event_grouper", "InotifyMoveEventGrouper"),
                        ("watchdog.observers.inotify_buffer", "InotifyBuffer")):  # watchdog >= 6 / older
        try:
            getattr(__import__(module, fromlist=[cls]), cls).delay = 0.0
        except (ImportError, AttributeError):
            continue


# ---- the watcher ---------------------------------------------------------------------------------


class Watcher:
    """The main loop: list, look, process the stable files, keep the observers healthy."""

    def __init__(self, gateway: gw.Gateway, settle: float | None = None, rescan: float | None = None,
                 polling: bool | None = None, metrics: str | None = None, once: float | None = None):
        self.gateway = gateway
        # --once: stop when the inboxes are empty and the outbox has drained (or `once` seconds later)
        self.once = once
        self.idle_since: float | None = None
        s = gateway.setup
        w = s.config.watch
        self.rescan = rescan if rescan is not None else w.rescan_seconds
        self.polling = polling if polling is not None else w.polling
        self.queue_limit = w.queue_limit
        self.heartbeat_every = w.heartbeat_seconds
        self.inboxes = [
            Inbox(r, s.inboxes[r.name], settle if settle is not None else r.settle_seconds) for r in s.config.route
        ]
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.hints = Hints(self.wake, self.inboxes)
        self.observers: list = []
        self.metrics = Metrics(metrics, self) if metrics else None
        self.heartbeat = 0.0
        n = w.converters if w.converters is not None else (2 if (os.cpu_count() or 1) >= 2 else 0)
        self.converters = Converters(n) if n else None
        self.watcher_alive = 1
        self.restarts = 0

    # -- observers

    def start_observers(self) -> None:
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        _no_move_pairing_delay()
        native, polled = None, None
        for inbox in self.inboxes:
            use_polling = self.polling if self.polling is not None else is_network(inbox.path)
            if not use_polling:
                native = native or Observer()
                try:
                    native.schedule(self.hints, str(inbox.path), recursive=False)
                except OSError as e:  # out of inotify watches / instances: poll this inbox instead
                    log.error("cannot watch %s with inotify (%s); polling it instead", inbox.path, e)
                    use_polling = True
            if use_polling:
                polled = polled or PollingObserver(timeout=1.0)
                polled.schedule(self.hints, str(inbox.path), recursive=False)
            log.info("watching %s (route %s, %s, settle %.1f s)", inbox.path, inbox.route.name,
                     "polling" if use_polling else "events", inbox.settle)
        self.observers = [o for o in (native, polled) if o is not None]
        for o in self.observers:
            o.daemon = True
            o.start()

    def stop_observers(self) -> None:
        for o in self.observers:
            o.stop()
        for o in self.observers:
            o.join(timeout=5)
        self.observers = []

    def check_canary(self, now: float) -> None:
        """Write the canary; if the last one never came back as an event, restart the observers."""
        late = [i for i in self.inboxes if i.canary_written and i.canary_seen < i.canary_written
                and now - i.canary_written > 10.0]
        if late:
            self.watcher_alive = 0
            self.restarts += 1
            log.error("no file events from %s for the canary: restarting the watcher (the rescan every %.0f s "
                      "keeps files moving meanwhile)", ", ".join(str(i.path) for i in late), self.rescan)
            self.stop_observers()
            self.start_observers()
        elif all(i.canary_seen >= i.canary_written for i in self.inboxes):
            self.watcher_alive = 1
        for i in self.inboxes:
            if not i.canary_written or i.canary_seen >= i.canary_written or late:
                try:
                    (i.path / CANARY).write_text(f"{time.time():.3f}\n")
                    i.canary_written = now
                except OSError as e:
                    log.error("cannot write the canary into %s: %s", i.path, e.strerror)

    # -- looking at inboxes

    def list_inbox(self, inbox: Inbox, times: dict[str, tuple[float, float]] | None = None) -> None:
        """Start tracking new candidates, oldest first, up to the queue limit.

        A file's last change counts from its last file event when there was one (the loop may list
        the inbox a little later than the event), else from now."""
        times = times or {}
        room = self.queue_limit - sum(len(i.seen) for i in self.inboxes)
        fresh = []
        started = time.monotonic()
        next_note = started + LISTING_NOTE_SECONDS
        try:
            with os.scandir(inbox.path) as it:
                for e in it:
                    if time.monotonic() > next_note:  # a huge inbox (or a slow share): say it is being read
                        log.info("listing inbox %s: %d candidate file(s) so far", inbox.path, len(fresh))
                        next_note += LISTING_NOTE_SECONDS
                    if e.name in inbox.seen or not is_candidate(e.name, inbox.route):
                        continue
                    try:
                        if not e.is_file(follow_symlinks=False):
                            continue
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    fresh.append((st.st_mtime_ns, e.name, st.st_size))
        except FileNotFoundError:
            log.error("inbox %s is missing; creating it", inbox.path)
            inbox.path.mkdir(parents=True, exist_ok=True)
            return
        except OSError as e:
            log.error("cannot list inbox %s: %s", inbox.path, e.strerror)
            return
        took = time.monotonic() - started
        if took > LISTING_NOTE_SECONDS or len(fresh) > room:
            log.info("listed inbox %s in %.1f s: %d candidate file(s), %d taken into the queue (limit %d)",
                     inbox.path, took, len(fresh), max(0, min(room, len(fresh))), self.queue_limit)
        if room <= 0 or not fresh:
            return
        fresh.sort()
        now, wall = time.monotonic(), time.time()
        for mtime_ns, name, size in fresh[:room]:
            mono, at = times.get(name, (now, wall))
            inbox.seen[name] = Seen(size, mtime_ns, at, mono, mono)

    def look(self, inbox: Inbox, now: float) -> list[tuple[float, int, str]]:
        """Stat every tracked file; return the stable ones as (first seen, mtime, name)."""
        ready = []
        for name, s in list(inbox.seen.items()):
            try:
                st = os.stat(inbox.path / name)
            except OSError:
                del inbox.seen[name]
                inbox.stuck.discard(name)
                continue
            s.looks += 1
            if (st.st_size, st.st_mtime_ns) != (s.size, s.mtime_ns):
                s.size, s.mtime_ns, s.changed_mono = st.st_size, st.st_mtime_ns, now
            # stable: unchanged for `settle`, and confirmed by a look after the one that listed it
            if now - s.changed_mono >= inbox.settle and s.looks >= 2:
                if inbox.route.done_file and not (inbox.path / (name + DONE_SUFFIX)).exists():
                    continue
                ready.append((s.first_seen, s.mtime_ns, name))
            elif now - s.first_mono > inbox.route.stuck_seconds and not s.stuck_reported:
                s.stuck_reported = True
                inbox.stuck.add(name)
                log.error("%s/%s is still being written after %.0f s: not taken (a stuck upload?)",
                          inbox.route.name, name, now - s.first_mono)
        return ready

    def _until_next_look(self, tick: float) -> float:
        """Sleep until the next tracked file can be stable (not a whole tick later), at most a tick."""
        now = time.monotonic()
        wait = tick
        for inbox in self.inboxes:
            for s in inbox.seen.values():
                wait = min(wait, s.changed_mono + inbox.settle - now if s.looks >= 2 else 0.02)
        return max(0.005, wait)

    # -- processing: claims in order, conversions in the converter processes, completions in order

    def process(self, ready: list) -> None:
        g = self.gateway
        inflight: deque = deque()
        window = 4 * self.converters.workers if self.converters else 1
        budget = time.monotonic() + 1.0
        try:
            for _, _, name, inbox in ready:
                if self.stop.is_set() or time.monotonic() > budget:
                    break
                if len(inflight) >= window:
                    self._complete(inflight)
                marker = inbox.path / (name + DONE_SUFFIX) if inbox.route.done_file else None
                job = g.claim(inbox.route, inbox.path / name, inbox.seen.pop(name).first_seen, marker)
                if isinstance(job, gw.Job):
                    inflight.append((job, self.converters.submit(job) if self.converters else None))
        finally:
            while inflight:  # claimed files are always finished, also on SIGTERM
                self._complete(inflight)

    def _complete(self, inflight: deque) -> None:
        """Complete the oldest job and every later one already converted, as one group."""
        group = [inflight.popleft()]
        while inflight and inflight[0][1] is not None and inflight[0][1].done():
            group.append(inflight.popleft())
        self.gateway.complete_many([(job, self._result(job, future)) for job, future in group])

    def _result(self, job, future) -> tuple:
        if future is None:
            return convert_file(str(job.work), job.options, job.report)
        try:
            return future.result()
        except Exception as e:  # the converter process died (killed, out of memory): restart the pool
            log.error("converter process failed on %s: %s; restarting the converters", job.work.name, e)
            self.converters.close()
            self.converters = Converters(self.converters.workers)
            return convert_file(str(job.work), job.options, job.report)

    # -- the loop

    def _drained(self, now: float, ready: list) -> bool:
        """--once: every inbox listed and empty, and the outbox empty (or the drain deadline passed)."""
        if ready or any(i.seen for i in self.inboxes):
            self.idle_since = None
            return False
        self.idle_since = self.idle_since or now
        waiting = sum(outbox.depth(self.gateway.setup.layout.outbox).values())
        return waiting == 0 or now - self.idle_since > self.once

    def run(self) -> None:
        g = self.gateway
        tick = max(0.02, min(0.25, min(i.settle for i in self.inboxes) / 4))
        next_rescan = 0.0
        next_canary = time.monotonic() + min(5.0, self.heartbeat_every)
        next_metrics = 0.0
        next_prune = 0.0
        retention = g.cfg.archive
        try:
            recovered = g.recover()
            if recovered:
                log.info("recovered %d input(s) from the previous run", recovered)
            g.start_worker()
            if self.converters:
                self.converters.warm()
            self.start_observers()
            while not self.stop.is_set():
                self.wake.clear()  # before taking the hints: a hint arriving from here on wakes the wait below
                now = time.monotonic()
                self.heartbeat = time.time()
                hinted = self.hints.take()
                if now >= next_rescan:
                    hinted = {n: hinted.get(n, {}) for n in range(len(self.inboxes))}
                    next_rescan = now + self.rescan
                for n, times in hinted.items():
                    self.list_inbox(self.inboxes[n], times)
                ready = []
                for inbox in self.inboxes:
                    ready += [(first, mtime, name, inbox) for first, mtime, name in self.look(inbox, now)]
                ready.sort(key=lambda r: r[:3])
                self.process(ready)
                if now >= next_prune:
                    outbox.prune(g.root / "archive", retention.keep_days, retention.max_bytes)
                    next_prune = now + 3600
                if now >= next_canary:
                    self.check_canary(now)
                    next_canary = now + self.heartbeat_every
                if self.metrics and now >= next_metrics:
                    self.metrics.publish()
                    next_metrics = now + 2.0
                if self.once is not None and self._drained(now, ready):
                    break
                if not ready:
                    self.wake.wait(self._until_next_look(tick))
        finally:
            log.info("stopping: finishing deliveries in hand")
            self.stop_observers()
            if self.converters:
                self.converters.close()
            g.stop_worker()
            if self.metrics:
                self.metrics.publish()
                self.metrics.close()
            g.close()
            log.info("stopped")


# ---- metrics -------------------------------------------------------------------------------------


class Metrics:
    """Prometheus text, written atomically to a file (node_exporter textfile) or served on 127.0.0.1:PORT."""

    def __init__(self, where: str, watcher: Watcher):
        self.watcher = watcher
        self.server = None
        self.text = ""
        if where.isdigit():
            self._serve(int(where))
            self.path = None
        else:
            self.path = Path(where)

    def _serve(self, port: int) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                body = metrics.text.encode()
                self.send_response(200 if self.path in ("/", "/metrics") else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, name="gisgate-metrics", daemon=True).start()

    def render(self) -> str:
        w, g = self.watcher, self.watcher.gateway
        c, s = g.counters, g.worker.stats
        lines = []

        def metric(name, kind, help_, samples):
            lines.append(f"# HELP gisgate_{name} {help_}")
            lines.append(f"# TYPE gisgate_{name} {kind}")
            for labels, value in samples:
                lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
                lines.append(f"gisgate_{name}{{{lab}}} {value}" if lab else f"gisgate_{name} {value}")

        metric("files_seen_total", "counter", "Input files claimed from the inboxes.", [({}, c.seen)])
        metric("files_processed_total", "counter", "Inputs converted and archived.", [({}, c.archived)])
        metric("files_rejected_total", "counter", "Inputs rejected.", [({}, c.rejected)])
        metric("files_duplicate_total", "counter", "Inputs skipped as duplicates.", [({}, c.duplicate)])
        metric("files_stuck", "gauge", "Files still being written past stuck_seconds.",
               [({}, sum(len(i.stuck) for i in w.inboxes))])
        metric("files_tracked", "gauge", "Inbox files waiting to become stable.",
               [({}, sum(len(i.seen) for i in w.inboxes))])
        metric("deliveries_sent_total", "counter", "Files delivered.", [({}, s.sent)])
        metric("deliveries_failed_total", "counter", "Files given up (outbox failed/).", [({}, s.failed)])
        metric("penalty_box_total", "counter", "Delivered files the Data Server refused.", [({}, s.penalty)])
        metric("unread_total", "counter", "Delivered files left unread past the alert time.", [({}, s.unread)])
        depth = outbox.depth(g.layout.outbox)
        metric("outbox_depth", "gauge", "Files waiting for delivery per target.",
               [({"target": t}, n) for t, n in depth.items()])
        oldest = g.ledger.db.execute(
            "SELECT MIN(created_at) FROM deliveries WHERE state IN ('pending','sending')").fetchone()[0]
        metric("oldest_pending_age_seconds", "gauge", "Age of the oldest undelivered file.",
               [({}, round(time.time() - oldest, 3) if oldest else 0)])
        metric("last_success_timestamp_seconds", "gauge", "Last input archived per route.",
               [({"route": r}, round(t, 3)) for r, t in c.last_success.items()])
        metric("target_last_success_timestamp_seconds", "gauge", "Last delivery per target.",
               [({"target": t}, round(v, 3)) for t, v in s.last_success.items()])
        metric("heartbeat_timestamp_seconds", "gauge", "Last turn of the watcher loop.", [({}, round(w.heartbeat, 3))])
        metric("outbox_heartbeat_timestamp_seconds", "gauge", "Last turn of the delivery loop.",
               [({}, round(g.worker.heartbeat, 3))])
        metric("watcher_alive", "gauge", "1 when the last canary came back as a file event.", [({}, w.watcher_alive)])
        metric("watcher_restarts_total", "counter", "Observer restarts after a lost canary.", [({}, w.restarts)])
        return "\n".join(lines) + "\n"

    def publish(self) -> None:
        self.text = self.render()
        if self.path is not None:
            durable.atomic_write(self.path, self.text.encode(), fsync=False)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()


# ---- logging -------------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class Redact(logging.Filter):
    """Masks every secret value the config refers to, wherever it appears in a log line."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            for s in self.secrets:
                msg = msg.replace(s, "***")
            record.msg, record.args = msg, None
        return True


def secrets_of(s: gw.Setup) -> list[str]:
    """The values behind every `*_env` / `*_file` reference of the targets."""
    found = []
    for spec in s.config.target.values():
        for key, value in spec.model_dump().items():
            if not value:
                continue
            if key.endswith("_env"):
                found.append(os.environ.get(value, ""))
            elif key.endswith("_file") and key not in ("key_file", "ca_file"):
                try:
                    found.append(Path(os.path.expanduser(value)).read_text().strip())
                except OSError:
                    pass
    return found


def setup_logging(json_lines: bool, verbose: bool, secrets: list[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else
                         logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("watchdog", "paramiko", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# ---- entry points for the CLI --------------------------------------------------------------------


def run(config_path: str | None = None, root: str | None = None, *, settle: float | None = None,
        rescan: float | None = None, polling: bool | None = None, metrics: str | None = None,
        log_json: bool = False, verbose: bool = False, once: float | None = None, acd: dict | None = None) -> int:
    """Run the gateway until SIGTERM / SIGINT; in-flight work is finished before it returns.

    With `once` (seconds), return as soon as the inboxes are empty and every output was delivered,
    or `once` seconds after the inboxes emptied. Returns the number of outputs still waiting.
    """
    s = gw.setup(config_path, root, acd)
    setup_logging(log_json, verbose, secrets_of(s))
    watcher = Watcher(gw.Gateway(s, convert_file), settle=settle, rescan=rescan, polling=polling, metrics=metrics,
                      once=once)

    def stop(signum, frame):
        log.info("received %s", signal.Signals(signum).name)
        watcher.stop.set()
        watcher.wake.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("gisgate watch: root %s, %d route(s), target(s): %s", s.root, len(s.config.route),
             ", ".join(s.config.target) or "none")
    watcher.run()
    return sum(outbox.depth(s.layout.outbox).values())


def status(config_path: str | None = None, root: str | None = None) -> dict:
    """What the ledger says: counts per state, oldest pending delivery, last errors."""
    s = gw.setup(config_path, root)
    db = s.layout.ledger
    if not db.exists():
        raise ConfigError(f"{db}: no ledger here; is {s.root} the gateway root (see --root / --config)?")
    led = ledgermod.Ledger(db)
    try:
        out = led.status()
    finally:
        led.close()
    out["root"] = str(s.root)
    out["outbox_depth"] = outbox.depth(s.layout.outbox)
    latest = out.pop("last_archived", None)
    page = latest and Path(latest + gw.REPORT_SUFFIX)
    out["latest_report"] = page.as_uri() if page and page.is_file() else None
    return out


def retry(paths: list[str], all_rejected: bool = False, config_path: str | None = None,
          root: str | None = None) -> list[str]:
    """Send rejected inputs back to their inbox and failed outputs back to pending; what moved where."""
    s = gw.setup(config_path, root)
    led = ledgermod.Ledger(s.layout.ledger)
    moved = []
    try:
        files = [Path(p).resolve() for p in paths]
        if all_rejected:
            files += [p for p in sorted((s.root / "rejected").glob("*/*/*"))
                      if p.is_file() and not p.name.endswith((".error.txt", ".done"))]
        for f in files:
            moved.append(_retry_one(s, led, f))
    finally:
        led.close()
    return moved


def _retry_one(s: gw.Setup, led: ledgermod.Ledger, f: Path) -> str:
    if not f.is_file():
        raise ConfigError(f"{f}: no such file")
    rel = f.relative_to(s.root) if f.is_relative_to(s.root) else None
    parts = rel.parts if rel else ()
    if len(parts) == 4 and parts[0] == "rejected":
        row = led.input_by_dest(str(f))
        route = s.route(parts[1])
        name = row.name if row else f.name
        dest = s.inboxes[route.name] / name
        if dest.exists():
            raise ConfigError(f"{dest} exists already; move it away first")
        outbox.move(f, dest)
        if row:
            led.set_input(row.id, "retried")
        return f"{f} -> {dest}"
    if len(parts) == 4 and parts[0] == "outbox" and parts[2] == "failed":
        target = parts[1]
        failed = outbox.folder(s.layout.outbox, target, "failed")
        sha = outbox.sha256_file(f)
        rows = [r for r in led.deliveries_in("failed", target) if r.sha256 == sha and r.name == _unsuffixed(f.name)]
        if not rows:
            raise ConfigError(f"{f}: the ledger has no failed delivery of these bytes")
        # the whole batch goes back, so its files travel together again
        batch = [r for r in led.deliveries_in("failed", target) if r.batch == rows[-1].batch]
        by_content = {(_unsuffixed(p.name), outbox.sha256_file(p)): p for p in failed.iterdir()
                      if p.is_file() and not p.name.endswith(".reason.txt")}
        moved = []
        for r in batch:
            src = by_content.get((r.name, r.sha256))
            if src is not None:
                outbox.move(src, outbox.folder(s.layout.outbox, target, "pending") / r.name)
                moved.append(r)
        led.requeue([r.id for r in moved])
        return f"{f} -> {target} pending ({len(moved)} file(s) of its batch)"
    raise ConfigError(f"{f}: not under {s.root}/rejected/<route>/<date>/ or {s.root}/outbox/<target>/failed/")


def _unsuffixed(name: str) -> str:
    """`x~2.SERVICE` -> `x.SERVICE`: the name before `outbox.unique_path` made it unique."""
    return re.sub(r"~\d+(?=\.|$)", "", name, count=1)


def template_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("the templates folder is missing from this installation")


def init(folder: str) -> list[str]:
    """Write a commented example `gisgate.toml` and the folder tree; never overwrites a config."""
    root = Path(folder).resolve()
    cfg = root / "gisgate.toml"
    if cfg.exists():
        raise ConfigError(f"{cfg} exists already; not overwritten")
    root.mkdir(parents=True, exist_ok=True)
    made = []
    for sub in ("inbox/generic", "work", "archive", "rejected", "outbox", "dataserver"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        made.append(str(root / sub))
    durable.atomic_write(cfg, (template_dir() / "gisgate.toml").read_bytes())
    gw.setup(cfg)  # the example must itself be valid
    return [str(cfg), *made]


def format_status(report: dict) -> str:
    """`gisgate status` for a human."""

    def ago(ts):
        return "-" if not ts else f"{time.time() - ts:.0f} s ago"

    lines = [f"root: {report['root']}"]
    inputs = report["inputs"]
    lines.append("inputs: " + (", ".join(f"{k} {v}" for k, v in sorted(inputs.items())) or "none yet"))
    for target, states in sorted(report["deliveries"].items()):
        lines.append(f"target {target}: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
    o = report["oldest_pending"]
    if o:
        lines.append(f"oldest pending: {o['target']} {o['name']} since {ago(o['since'])}, {o['attempts']} attempt(s)"
                     + (f", last error: {o['last_error']}" if o["last_error"] else ""))
    for route, ts in sorted(report["last_success"].items()):
        lines.append(f"last success {route}: {ago(ts)}")
    if report.get("latest_report"):
        lines.append(f"latest report: {report['latest_report']}")
    for r in report["last_rejected"]:
        first = (r["error"] or "").splitlines()[0] if r["error"] else ""
        lines.append(f"rejected {r['route']}/{r['name']} ({ago(r['at'])}): {first}")
    for p in report.get("penalty_box", []):
        lines.append(f"refused by the Data Server (penalty box): {p['target']} {p['name']} ({ago(p['delivered_at'])})")
    for f in report["last_failed"]:
        lines.append(f"failed {f['target']} {f['name']} after {f['attempts']} attempt(s): {f['error']}")
    return "\n".join(lines)
