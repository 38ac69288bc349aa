"""One input file through the gateway: claim, convert, stage, archive or reject — crash-safe.

The conversion itself is passed in (`watch.convert_file`, which calls the pipeline), so this
module chains only the ledger, the outbox and the targets.

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
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from gisgate import config as cfgmod
from gisgate import durable, outbox
from gisgate import ledger as ledgermod
from gisgate.config import Config, ConvertOptions, Report, Route
from gisgate.errors import ConfigError
from gisgate.produced import travel_key
from gisgate.targets import open_target

log = logging.getLogger("gisgate.gateway")

DEFAULT_TARGET = "dataserver"
REPORT_SUFFIX = ".report.html"  # the report page written beside each archived input
CRASH_ENV = "GISGATE_CRASH_AT"  # fault injection for the recovery tests: "after-claim" or "after-claim:3"


# ---- fault injection -----------------------------------------------------------------------------

_crash_hits: dict[str, int] = {}


def crashpoint(point: str) -> None:
    """Die like `kill -9` at `point` when GISGATE_CRASH_AT names it (optionally `point:N`, the N-th time)."""
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _crash_hits[point] = _crash_hits.get(point, 0) + 1
    if _crash_hits[point] >= int(nth or 1):
        for h in logging.getLogger().handlers:
            h.flush()
        os.kill(os.getpid(), signal.SIGKILL)


# ---- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where everything lives under the gateway root."""

    root: Path

    @property
    def ledger(self) -> Path:
        return self.root / "gisgate.db"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    def work(self, route: str) -> Path:
        return self.root / "work" / route

    def archive(self, route: str, date: str) -> Path:
        return self.root / "archive" / route / date

    def rejected(self, route: str, date: str) -> Path:
        return self.root / "rejected" / route / date


@dataclass
class Setup:
    """A validated config with every path resolved against the gateway root."""

    config: Config
    root: Path
    inboxes: dict[str, Path] = field(default_factory=dict)  # route name -> inbox folder

    @property
    def layout(self) -> Layout:
        return Layout(self.root)

    def route(self, name: str) -> Route:
        for r in self.config.route:
            if r.name == name:
                return r
        raise ConfigError(f"no route named {name!r}; routes: {', '.join(r.name for r in self.config.route)}")


def default_config(root: Path) -> Config:
    """The embedded gateway: `inbox/` → generic route (format auto) → folder target `dataserver/`."""
    return cfgmod.parse(
        {
            "root": str(root),
            "route": [{"name": "generic", "inbox": "inbox", "format": "auto", "targets": [DEFAULT_TARGET]}],
            "target": {DEFAULT_TARGET: {"kind": "folder", "path": "dataserver"}},
        },
        "built-in defaults",
    )


def setup(config_path: str | Path | None = None, root: str | Path | None = None, acd: dict | None = None) -> Setup:
    """Load `config_path` (or `<root>/gisgate.toml`, or the built-in defaults) and resolve paths.

    `root` given on the command line wins over the file's `root`; relative paths in the file are
    relative to the file's folder, relative inboxes and folder targets to the root. `acd` overrides
    keys of the `[acd]` table (`--tz`, `--acd` on the command line).
    """
    if config_path is None and root is not None and (Path(root) / "gisgate.toml").is_file():
        config_path = Path(root) / "gisgate.toml"
    if config_path is not None:
        cfg = cfgmod.load(config_path)
        base = Path(config_path).resolve().parent
        resolved_root = Path(root).resolve() if root is not None else (base / os.path.expanduser(cfg.root)).resolve()
    else:
        resolved_root = Path(root if root is not None else ".").resolve()
        cfg = default_config(resolved_root)
    if not cfg.route:
        raise ConfigError(f"{config_path}: no [[route]] table: the gateway has nothing to watch")
    if acd:
        cfg = cfgmod.parse({**cfg.model_dump(exclude_unset=True), "acd": {**cfg.acd.model_dump(), **acd}},
                           "command line")
    targets = {}
    for name, spec in cfg.target.items():
        if spec.kind == "folder":
            spec = spec.model_copy(update={"path": str(resolved_root / os.path.expanduser(spec.path))})
        targets[name] = spec
    cfg = cfg.model_copy(update={"target": targets, "root": str(resolved_root)})
    inboxes = {r.name: resolved_root / os.path.expanduser(r.inbox or f"inbox/{r.name}") for r in cfg.route}
    return Setup(cfg, resolved_root, inboxes)


def convert_options(cfg: Config, route: Route, to: str) -> ConvertOptions:
    """What a conversion of `route`'s files into `to` needs: the route's format, `[acd]`, `[gis]`, `[mapping]`."""
    return cfgmod.convert_options(cfg, source=route.format, to=to)


# ---- conversion (in this process or in a converter process) -------------------------------------


@dataclass
class Job:
    """A claimed input waiting for its conversion."""

    input_id: int
    route: Route
    work: Path
    date: str
    options: list[ConvertOptions]
    report: Report | None = None  # `[report]` settings when the watcher writes a report per input


# ---- the gateway ---------------------------------------------------------------------------------


@dataclass
class Counters:
    seen: int = 0
    archived: int = 0
    rejected: int = 0
    duplicate: int = 0
    last_success: dict[str, float] = field(default_factory=dict)


class Gateway:
    """Processes claimed files of every route and runs the outbox worker thread."""

    def __init__(self, s: Setup, convert, hook=crashpoint):
        """`convert(path, options) -> (verdict, payload)` turns one input into outputs (see watch.convert_file)."""
        self.convert = convert
        self.setup = s
        self.cfg = s.config
        self.layout = s.layout
        self.hook = hook
        self.root = s.root
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_root()
        self.ledger = ledgermod.Ledger(self.layout.ledger)
        self.lock = threading.Lock()
        self.counters = Counters()
        self.targets = {name: open_target(name, spec) for name, spec in self.cfg.target.items()}
        p = self.cfg.outbox
        policy = outbox.Policy(p.backoff_seconds, p.backoff_max_seconds, p.max_attempts, p.breaker_failures,
                               p.breaker_seconds)
        self.worker = outbox.Worker(self.layout.outbox, lambda: ledgermod.Ledger(self.layout.ledger),
                                    self.targets, policy, self.lock, hook=hook)
        self.worker.outcome_seconds = p.outcome_seconds
        self._worker_thread: threading.Thread | None = None
        self.worker_stop = threading.Event()
        for name, inbox in s.inboxes.items():
            inbox.mkdir(parents=True, exist_ok=True)
            self.layout.work(name).mkdir(parents=True, exist_ok=True)

    def _lock_root(self) -> None:
        """One gateway per root: a second one would claim the same files."""
        self._lockfile = open(self.root / "gisgate.lock", "a+")
        try:
            import fcntl

            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # Windows: no advisory locks; run one gateway per root by hand
            return
        except OSError:
            self._lockfile.seek(0)
            other = self._lockfile.read().strip() or "?"
            raise ConfigError(f"another gisgate watch (pid {other}) is running on {self.root}; stop it first") from None
        self._lockfile.seek(0)
        self._lockfile.truncate()
        self._lockfile.write(f"{os.getpid()}\n")
        self._lockfile.flush()

    # -- worker thread

    def start_worker(self) -> None:
        self._worker_thread = threading.Thread(
            target=self.worker.run, args=(self.worker_stop, self.cfg.watch.stop_grace_seconds),
            name="gisgate-outbox", daemon=True)
        self._worker_thread.start()

    def stop_worker(self) -> None:
        self.worker_stop.set()
        self.worker.wake.set()
        if self._worker_thread is not None:
            self._worker_thread.join()

    def close(self) -> None:
        self.ledger.close()
        self._lockfile.close()

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
        return self.complete(job, self.convert(str(job.work), job.options))

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
        return self.complete(job, self.convert(str(job.work), job.options))

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
        options = [convert_options(self.cfg, route, kind) for kind in route.outputs]
        return Job(input_id, route, work, date, options, self.cfg.report if self.cfg.watch.reports else None)

    def complete(self, job: Job, result: tuple) -> str:
        """Stage the outputs of a converted job and archive its input, or reject it with the reason."""
        return self.complete_many([(job, result)])[0]

    def complete_many(self, items: list[tuple[Job, tuple]]) -> list[str]:
        """`complete` for several jobs, with one fsync round for all their staged files (group commit);
        each input still gets its own ledger transaction. Returns the final states in order."""
        states: list[str] = [""] * len(items)
        plans = []
        for i, (job, (verdict, payload)) in enumerate(items):
            if verdict == "ok":
                plans.append((i, job, payload))
            else:
                states[i] = self._refuse(job, verdict, payload)
        if not plans:
            return states
        done = []
        with self.lock:
            files, staged_per_job = [], []
            for _, job, outputs in plans:
                staged = []
                for out in outputs:
                    if out.kind == "report":  # written beside the archived input below, never delivered
                        continue
                    out_sha = hashlib.sha256(out.data).hexdigest()
                    key, seq = travel_key(out.name, out.kind)
                    batch = f"{job.input_id}:{key}"
                    interval = None if out.interval_start is None else str(out.interval_start)
                    targets = [t for t in job.route.targets if not self.ledger.has_delivery(t, out.name, out_sha)]
                    files += [(t, out.name, out.data) for t in targets]
                    for t in targets or [""]:  # "" records the output without queueing it anywhere
                        staged.append(ledgermod.StagedOutput(out.name, out.kind, interval, out_sha, len(out.data),
                                                             t, batch, seq))
                staged_per_job.append(staged)
            outbox.stage_many(self.layout.outbox, files)
            self.hook("after-stage")
            for (i, job, outputs), staged in zip(plans, staged_per_job, strict=True):
                dest = outbox.unique_path(self.layout.archive(job.route.name, job.date), job.work.name)
                for out in outputs:
                    if out.kind == "report":
                        durable.atomic_write(dest.with_name(dest.name + REPORT_SUFFIX), out.data)
                outputs = [o for o in outputs if o.kind != "report"]
                queued = self.ledger.record_outputs(job.input_id, staged, str(dest))
                done.append((i, job, dest, len(outputs), queued))
        self.worker.wake.set()
        for i, job, dest, n, queued in done:
            self.hook("after-commit")
            log.info("%s/%s: %d output(s), %d delivery(ies) queued", job.route.name, job.work.name, n, queued)
            states[i] = self._finish(job.input_id, job.route, job.work, dest, "archived")
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


def _hash(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size
