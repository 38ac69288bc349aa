"""One input file through the gateway: claim, convert, stage, archive or reject — crash-safe.

The conversion itself is passed in (the pipeline's `convert_input`, run here or in a converter
process), so this module chains only the ledger, the outbox and the file moves.

    inbox/<route>/x.csv ─claim─► work/<route>/x.csv ─convert─► outputs staged in outbox/<target>/pending/
                                        │                       (ledger: outputs + deliveries, input `converted`)
                                        ├─► archive/<route>/<date>/x.csv            (input `archived`)
                                        └─► rejected/<route>/<date>/x.csv + x.csv.error.txt   (input `rejected`)

Every step is an atomic rename or a temp-write + fsync + rename, and the ledger records the
destination before the file moves there. After a `kill -9` anywhere, `recover()` finishes the job:
files left in `work/` are redone (same input → same outputs; outputs already queued or sent with
the same bytes are not queued twice) and rows whose file already reached its destination are closed.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from gisgate import durable
from gisgate import report as reports
from gisgate.config import ConvertOptions, Report, Route
from gisgate.errors import InputError
from gisgate.gateway import outbox
from gisgate.gateway.conversions import Conversions
from gisgate.gateway.ledger import Ledger
from gisgate.gateway.setup import Setup
from gisgate.gateway.staging import plan
from gisgate.gateway.streams import Streams
from gisgate.report import PAGE_SUFFIX

log = logging.getLogger("gisgate.gateway")


@dataclass
class Job:
    """A claimed input waiting for its conversion."""

    input_id: int
    route: Route
    work: Path
    date: str
    options: list[ConvertOptions]
    report: Report | None = None  # `[report]` settings when the conversion itself makes the page
    stream: bool = False  # the route is a stream: the input is parsed into records, not converted


@dataclass(frozen=True)
class Page:
    """A report page still to write beside an archived input. Pages are built off the delivery path,
    when the gateway has nothing else to do, from the archived input (see `Watcher`)."""

    route: str
    archived: Path
    options: list[ConvertOptions]
    report: Report
    stream: bool
    changed: tuple[str, ...] = ()  # a stream input: the intervals it could change (local time)

    @property
    def path(self) -> Path:
        return self.archived.with_name(self.archived.name + PAGE_SUFFIX)


@dataclass
class Counters:
    seen: int = 0
    archived: int = 0
    rejected: int = 0
    duplicate: int = 0
    last_success: dict[str, float] = field(default_factory=dict)
    # the latest rejections, `route/name: where the reason is` (for `watch --once`'s exit message)
    rejections: deque[str] = field(default_factory=lambda: deque(maxlen=20))


class Claims:
    """Takes claimed files of every route through conversion to archive or rejected."""

    def __init__(self, s: Setup, ledger: Ledger, conversions: Conversions, lock: threading.Lock,
                 wake: Callable[[], None], hook: Callable[[str], None], streams: Streams):
        """`conversions` turn one input into outputs (or, for a stream, records); `lock` is the
        outbox's (staging never overlaps a batch being taken); `wake()` tells the delivery worker
        that something was staged; `streams` take the stream routes' inputs."""
        self.setup = s
        self.cfg = s.config
        self.layout = s.layout
        self.root = s.root
        self.ledger = ledger
        self.conversions = conversions
        self.streams = streams
        self.lock = lock
        self.wake = wake
        self.hook = hook
        self.counters = Counters()
        self.pages: deque[Page] = deque()  # report pages of archived inputs, still to write

    def snapshot(self) -> dict:
        c = self.counters
        return {"seen": c.seen, "archived": c.archived, "rejected": c.rejected, "duplicate": c.duplicate,
                "last_success": dict(c.last_success)}

    # -- recovery

    def recover(self) -> int:
        """Finish what a previous run left half done. Returns how many inputs it touched."""
        touched = 0
        for sub in ("outbox", "archive", "rejected"):  # temp files of writes a kill -9 interrupted
            for tmp in (self.root / sub).rglob(f"{durable.TEMP_PREFIX}*{durable.TEMP_SUFFIX}"):
                tmp.unlink(missing_ok=True)
        for row in self.ledger.open_inputs():
            work = self.layout.work(row.route) / row.name
            if work.exists():
                continue  # redone below, from the file itself
            if row.dest and Path(row.dest).exists():
                final = "archived" if row.state == "converted" else (
                    "rejected" if "/rejected/" in Path(row.dest).as_posix() else "duplicate")
                self.ledger.set_input(row.id, final)
            else:
                self.ledger.set_input(row.id, "rejected", error="the file left work/ while the gateway was down")
            touched += 1
        for route in self.cfg.route:
            work = self.layout.work(route.name)
            if not work.is_dir():
                continue
            for path in sorted(work.iterdir(), key=lambda p: p.stat().st_mtime_ns):
                if path.is_file() and not path.name.startswith("."):
                    log.warning("recovering %s/%s left in work/ by an interrupted run", route.name, path.name)
                    self.process_work(route, path, path.stat().st_mtime)
                    touched += 1
        return touched

    # -- one file

    def process(self, route: Route, path: Path, first_seen: float, done_marker: Path | None = None) -> str | None:
        """Claim `path` from its inbox and take it through to archive or rejected; its final state."""
        job = self.claim(route, path, first_seen, done_marker)
        if not isinstance(job, Job):
            return job
        return self.complete(job, self.conversions.run(job))

    def claim(self, route: Route, path: Path, first_seen: float, done_marker: Path | None = None) -> Job | str | None:
        """Move `path` into work/ and open its ledger row: a Job to convert, or the final state when
        nothing needs converting (a duplicate), or None when the file went away."""
        work = self.layout.work(route.name) / path.name
        try:
            os.replace(path, work)
        except FileNotFoundError:
            return None  # gone since we looked (the partner took it back): nothing to do
        except OSError as e:
            if e.errno != errno.EXDEV:
                log.error("%s/%s: cannot take it from the inbox: %s", route.name, path.name, e.strerror)
                return None  # stays in the inbox; tried again at the next look
            # The inbox is another file system (a network share): copy, then remove the original.
            # A crash in between leaves both; the second is then found to be a duplicate.
            try:
                durable.copy_atomic(path, work)
            except FileNotFoundError:
                return None
            except OSError as e2:
                log.error("%s/%s: cannot copy it from the inbox: %s", route.name, path.name, e2.strerror)
                return None
            path.unlink(missing_ok=True)
        self.hook("after-claim")
        if done_marker is not None and done_marker.exists():
            outbox.move(done_marker, self.layout.work(route.name) / f".{done_marker.name}")
        self.counters.seen += 1
        return self.begin(route, work, first_seen)

    def process_work(self, route: Route, work: Path, first_seen: float) -> str:
        """Take a file already in work/ through to the end (start-up recovery)."""
        job = self.begin(route, work, first_seen)
        if not isinstance(job, Job):
            return job
        return self.complete(job, self.conversions.run(job))

    def begin(self, route: Route, work: Path, first_seen: float) -> Job | str:
        name = work.name
        data_sha, size = _hash(work)
        row = self.ledger.find_open_input(route.name, name, data_sha)
        if row is not None and row.state == "converted" and row.dest:
            return self._finish(row.id, route, work, Path(row.dest), "archived")
        input_id = row.id if row is not None else self.ledger.start_input(route.name, name, size, data_sha, first_seen)
        date = outbox.today()
        earlier = self.ledger.converted_before(route.name, data_sha, input_id)
        if earlier is not None:
            dest = outbox.unique_path(self.layout.archive(route.name, date), name)
            self.ledger.set_input(input_id, "processing", dest=str(dest), duplicate_of=earlier)
            log.info("%s/%s: same content as input #%d, archived as a duplicate", route.name, name, earlier)
            return self._finish(input_id, route, work, dest, "duplicate")
        options = [self.setup.convert_options(route, kind) for kind in route.outputs]
        return Job(input_id, route, work, date, options, None, route.name in self.streams.streams)

    def complete(self, job: Job, result: tuple) -> str:
        """Stage the outputs of a converted job and archive its input, or reject it with the reason."""
        return self.complete_many([(job, result)])[0]

    def complete_many(self, items: list[tuple[Job, tuple]]) -> list[str]:
        """`complete` for several jobs, with one fsync round for all their staged files (group commit);
        each input still gets its own ledger transaction. Returns the final states in order."""
        states: list[str] = [""] * len(items)
        plans = []
        taken = []
        for i, (job, (verdict, payload)) in enumerate(items):
            if verdict == "ok":
                for w in getattr(payload, "warnings", []):  # said on the report page too
                    log.warning("%s/%s: %s", job.route.name, job.work.name, w)
            if verdict == "ok" and job.stream:
                changed = self._take(job, payload)
                if changed is not None:
                    taken.append((i, job, changed))
                else:
                    states[i] = "rejected"
            elif verdict == "ok":
                plans.append((i, job, payload))
            else:
                states[i] = self._refuse(job, verdict, payload)
        if plans:
            for i, state in self._stage_and_archive(plans):
                states[i] = state
        if taken:
            staged = sum(self.streams.realtime(items[i][0].route, items[i][0].input_id, items[i][1][1])
                         for i, _, _ in taken)
            staged += self.streams.flush()  # what the inputs made due is staged before they are archived
            for i, job, changed in taken:
                dest = outbox.unique_path(self.layout.archive(job.route.name, job.date), job.work.name)
                self.ledger.record_outputs(job.input_id, [], str(dest))
                states[i] = self._finish(job.input_id, job.route, job.work, dest, "archived")
                self._page_later(job, dest, changed)
            if staged:
                self.wake()
        return states

    def _take(self, job: Job, parsed) -> tuple[str, ...] | None:
        """Merge a stream's input into its stream: the intervals it could change (local time, for its
        report page), or None when the stream refused it (it is rejected)."""
        try:
            changes = self.streams.take(job.route, job.input_id, parsed)
        except InputError as e:
            self._refuse(job, "input", [str(p) for p in e.problems])
            return None
        tz = ZoneInfo(job.options[0].tz)
        changed = tuple(t.astimezone(tz).strftime("%Y-%m-%d %H:%M %z") for t in changes.intervals)
        log.info("%s/%s: %d record(s) merged into the stream, %d interval(s) to render%s", job.route.name,
                 job.work.name, changes.records, len(changes.intervals),
                 " (the whole window: something decided from all of the data changed)" if changes.whole_window else "")
        self.hook("after-stream-take")
        return changed

    def _page_later(self, job: Job, archived: Path, changed: tuple[str, ...] = ()) -> None:
        if self.cfg.watch.reports:
            self.pages.append(Page(job.route.name, archived, job.options, self.cfg.report, job.stream, changed))

    def write_page(self, page: Page, result: tuple) -> bool:
        """Write `page` from its input's conversion again (`result`, as `Conversions.run` gives it, with
        the report settings); False when there is no page to write (the input is gone, or holds no
        interval data)."""
        verdict, payload = result
        if verdict != "ok":
            log.warning("%s/%s: no report page: %s", page.route, page.archived.name, payload[0] if payload else verdict)
            return False
        if page.stream:
            if payload.report is None:
                return False
            html = reports.render({**payload.report, "changed": list(page.changed)}).encode("utf-8")
        else:
            html = next((o.data for o in payload if o.kind == "report"), None)
            if html is None:
                return False
        durable.atomic_write(page.path, html)
        return True

    def _stage_and_archive(self, plans: list[tuple[int, Job, list]]) -> list[tuple[int, str]]:
        """Stage every job's outputs with one fsync round, record each job in its own transaction, then
        archive the inputs."""
        done = []
        with self.lock:
            planned = [plan(self.ledger, job.route.targets, outputs, str(job.input_id)) for _, job, outputs in plans]
            outbox.stage_many(self.layout.outbox, [f for files, _ in planned for f in files])
            self.hook("after-stage")
            for (i, job, outputs), (_, staged) in zip(plans, planned, strict=True):
                dest = outbox.unique_path(self.layout.archive(job.route.name, job.date), job.work.name)
                queued = self.ledger.record_outputs(job.input_id, staged, str(dest))
                done.append((i, job, dest, sum(o.kind != "report" for o in outputs), queued))
        self.wake()
        states = []
        for i, job, dest, n, queued in done:
            self.hook("after-commit")
            log.info("%s/%s: %d output(s), %d delivery(ies) queued", job.route.name, job.work.name, n, queued)
            states.append((i, self._finish(job.input_id, job.route, job.work, dest, "archived")))
            self._page_later(job, dest)
        return states

    def _refuse(self, job: Job, verdict: str, payload: list[str]) -> str:
        route, work, input_id, date = job.route, job.work, job.input_id, job.date
        if verdict == "input":
            return self._reject(input_id, route, work, date, payload,
                                "Correct the file (or the route's format / mapping in gisgate.toml), then drop "
                                "it into the inbox again or run: gisgate retry <this file>.")
        if verdict == "config":
            return self._reject(input_id, route, work, date, payload,
                                "Fix gisgate.toml for this route, then run: gisgate retry <this file>.")
        log.error("%s/%s: unexpected error: %s", route.name, work.name, "\n".join(payload))
        return self._reject(input_id, route, work, date, payload,
                            "This is a bug in gisgate; report it with this file. "
                            "After an upgrade run: gisgate retry <this file>.")

    def _reject(self, input_id: int, route: Route, work: Path, date: str, problems: list[str], todo: str) -> str:
        dest = outbox.unique_path(self.layout.rejected(route.name, date), work.name)
        where = str(work)
        lines = [p.replace(where, work.name) for p in problems]
        text = (f"{work.name} (route {route.name!r}) was rejected: nothing was produced from it.\n\n"
                "What is wrong, and where (file:line: column: reason):\n"
                + "".join(f"  {line}\n" for line in lines)
                + f"\nWhat to do: {todo}\n")
        self.ledger.set_input(input_id, "processing", dest=str(dest), error="\n".join(lines))
        durable.atomic_write(dest.with_name(dest.name + ".error.txt"), text.encode("utf-8"))
        log.warning("%s/%s rejected: %s", route.name, work.name, lines[0] if lines else "")
        self.counters.rejections.append(f"{route.name}/{work.name}: {_relative(dest, self.root)}.error.txt")
        return self._finish(input_id, route, work, dest, "rejected")

    def _finish(self, input_id: int, route: Route, work: Path, dest: Path, state: str) -> str:
        outbox.move(work, dest)
        marker = work.with_name(f".{work.name}.done")
        if marker.exists():
            outbox.move(marker, dest.with_name(dest.name + ".done"))
        # No folder fsync here: were this rename lost to a power cut, the file would be back in
        # work/ and its redo finds the same content converted: archived again as a duplicate.
        self.hook("after-archive")
        self.ledger.set_input(input_id, state)
        if state == "archived":
            self.counters.archived += 1
            self.counters.last_success[route.name] = time.time()
        elif state == "rejected":
            self.counters.rejected += 1
        else:
            self.counters.duplicate += 1
        return state



def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _hash(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size
