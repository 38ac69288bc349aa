"""The outbox: staged files per target, in folders that are their delivery state, and the worker
that delivers them.

    outbox/<target>/pending/          staged (temp write, fsync, rename), waiting for delivery
    outbox/<target>/sending/          handed to the target right now
    outbox/<target>/sent/<date>/      delivered (kept as the record of what went out)
    outbox/<target>/failed/           given up: `<name>.reason.txt` beside each says why

The ledger (passed in, never imported: siblings stay independent) is the truth about what is due:
the worker takes the oldest due batch of each target, moves its files pending → sending, calls
`target.deliver(files)`, then moves them to sent/ or back to pending/ with a later `next_try`.
Retries use exponential backoff with jitter and survive restarts (attempts and next try live in the
ledger); each target has a circuit breaker so a dead endpoint costs one probe per cool-down.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gisgate.durable import atomic_write, fsync_dir, temp_name
from gisgate.errors import PermanentDeliveryError, TransientDeliveryError

log = logging.getLogger("gisgate.outbox")

STATES = ("pending", "sending", "sent", "failed")


def unique_path(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/stem~2.ext`, `~3`… when taken: archives never overwrite."""
    candidate = folder / name
    if not candidate.exists():
        return candidate
    stem, dot, ext = name.partition(".")
    for n in range(2, 100000):
        candidate = folder / (f"{stem}~{n}{dot}{ext}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"{folder}: too many files named like {name}")


def move(src: Path, dest: Path) -> Path:
    """Atomic rename (same file system), creating the destination folder."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
    return dest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


# ---- staging -------------------------------------------------------------------------------------


def folder(outbox: Path, target: str, state: str) -> Path:
    return outbox / target / state


def stage(outbox: Path, target: str, name: str, data: bytes) -> Path:
    """Put one output into `outbox/<target>/pending/` atomically (replacing an older pending version).

    The file is fsynced; the caller fsyncs the pending folder once after staging a whole input."""
    return atomic_write(folder(outbox, target, "pending") / name, data, sync_dir=False)


def stage_many(outbox: Path, files: list[tuple[str, str, bytes]]) -> list[Path]:
    """Stage many outputs `(target, name, data)` at once: write every temp file, then fsync them all
    (the first fsync's journal commit carries the others: far cheaper than write-fsync pairs), then
    rename each into `pending/` and fsync each pending folder once."""
    handles = []
    try:
        for target, name, data in files:
            pending = folder(outbox, target, "pending")
            pending.mkdir(parents=True, exist_ok=True)
            tmp = temp_name(pending)
            f = open(tmp, "wb")
            handles.append((f, tmp, pending / name))
            f.write(data)
            f.flush()
        for f, _, _ in handles:
            os.fsync(f.fileno())
    except BaseException:
        for f, tmp, _ in handles:
            f.close()
            tmp.unlink(missing_ok=True)
        raise
    for f, _, _ in handles:
        f.close()
    for _, tmp, path in handles:
        os.replace(tmp, path)
    for d in {path.parent for _, _, path in handles}:
        fsync_dir(d)
    return [path for _, _, path in handles]


def depth(outbox: Path) -> dict[str, int]:
    """Files waiting per target (pending + sending), for metrics."""
    out = {}
    if outbox.is_dir():
        for t in sorted(p for p in outbox.iterdir() if p.is_dir()):
            out[t.name] = sum(
                1 for s in ("pending", "sending") if (t / s).is_dir() for e in os.scandir(t / s)
                if not e.name.startswith(".")
            )
    return out


# ---- the worker ----------------------------------------------------------------------------------


@dataclass
class Policy:
    backoff_seconds: float = 2.0
    backoff_max_seconds: float = 900.0
    max_attempts: int = 20
    breaker_failures: int = 5
    breaker_seconds: float = 60.0

    def delay(self, attempts: int) -> float:
        """Exponential backoff with 'equal jitter': half fixed, half random."""
        d = min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1))
        return d / 2 + random.uniform(0, d / 2)


@dataclass
class Breaker:
    failures: int = 0
    open_until: float = 0.0

    def allows(self, now: float) -> bool:
        return now >= self.open_until


@dataclass
class Stats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    penalty: int = 0
    unread: int = 0
    last_success: dict[str, float] = field(default_factory=dict)


def _nohook(point: str) -> None:
    return None


class Worker:
    """Delivers every target's due batches, oldest first, until `stop` is set.

    `ledger_factory()` opens a ledger connection for the worker's thread; `targets` maps names to
    objects with `deliver(paths) -> Receipt`; `lock` is shared with staging so a batch is never
    taken while a newer version of one of its files is being staged.
    """

    def __init__(self, outbox: Path, ledger_factory, targets: dict, policy: Policy, lock: threading.Lock,
                 hook=_nohook, now=time.time):
        self.outbox = outbox
        self.ledger_factory = ledger_factory
        self.targets = targets
        self.policy = policy
        self.lock = lock
        self.hook = hook
        self.now = now
        self.breakers = {name: Breaker() for name in targets}
        self.wake = threading.Event()
        self.stats = Stats()
        self.heartbeat = 0.0
        self.outcome_seconds = 10.0
        self._unread_reported: set[int] = set()

    # -- recovery

    def recover(self, ledger) -> int:
        """After a crash: batches left in `sending` go back to `pending` (their target may have them;
        the targets make a re-send of identical bytes harmless)."""
        # Every file in sending/ is put where the ledger says it belongs: sent/ when its delivery was
        # committed (killed before the move), else back to pending/ (killed before or during the
        # delivery; also before the `sending` commit). A newer staged version in pending/ wins.
        for name in self.targets:
            sending = folder(self.outbox, name, "sending")
            if not sending.is_dir():
                continue
            for src in sending.iterdir():
                if src.name.startswith("."):
                    continue
                state = ledger.delivery_state(name, src.name, sha256_file(src))
                dest = folder(self.outbox, name, "pending") / src.name
                if state == "sent":
                    move(src, unique_path(folder(self.outbox, name, "sent") / today(), src.name))
                elif dest.exists():
                    stale = move(src, unique_path(folder(self.outbox, name, "failed"), src.name))
                    atomic_write(stale.with_name(stale.name + ".reason.txt"),
                                 b"interrupted while sending; a newer version was staged and is delivered instead\n")
                else:
                    move(src, dest)
        rows = ledger.deliveries_in("sending")
        if rows:
            ledger.set_deliveries([r.id for r in rows], "pending")
            log.warning("recovered %d delivery(ies) interrupted while sending", len(rows))
        return len(rows)

    # -- the loop

    def run(self, stop: threading.Event, grace: float = 10.0) -> None:
        ledger = self.ledger_factory()
        try:
            self.recover(ledger)
            next_outcomes = 0.0
            while not stop.is_set():
                self.heartbeat = self.now()
                self.wake.clear()  # before looking: a wake from here on ends the wait below at once
                if time.monotonic() >= next_outcomes:
                    self.check_outcomes(ledger)
                    next_outcomes = time.monotonic() + self.outcome_seconds
                if not self.run_once(ledger):
                    self.wake.wait(self._idle_wait(ledger))
            # Draining: staged files still due get `grace` seconds to go out before we exit.
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and self.run_once(ledger):
                pass
        finally:
            for t in self.targets.values():
                try:
                    t.close()
                except Exception:  # closing must not hide the reason we stopped
                    log.exception("closing target failed")
            ledger.close()

    def check_outcomes(self, ledger) -> None:
        """Ask targets that can tell (a folder watching the Data Server's archives / penaltyBox) what
        became of the files sent in the last two days; a refused file is an error for a human."""
        since = self.now() - 2 * 86400
        for name, target in self.targets.items():
            if not hasattr(target, "outcomes"):
                continue
            rows = ledger.awaiting_outcome(name, since)
            if not rows:
                continue
            try:
                verdicts = target.outcomes([(n, at) for _, n, at in rows])
            except Exception:  # looking must never stop deliveries
                log.exception("%s: cannot read the receiving side's outcome folders", name)
                continue
            for i, fname, _ in rows:
                verdict = verdicts.get(fname)
                if verdict is None:
                    continue
                if verdict == "unread":
                    if i not in self._unread_reported:
                        self._unread_reported.add(i)
                        self.stats.unread += 1
                        log.warning("%s: %s is still waiting in the folder: is the Data Server reading it?",
                                    name, fname)
                    continue
                ledger.set_outcome([i], verdict)
                if verdict == "penalty":
                    self.stats.penalty += 1
                    log.error("%s: the Data Server refused %s (penalty box); it will not retry it: check the file "
                              "(our copy is in the outbox's sent/ folder) and resend a corrected one", name, fname)
                else:
                    log.info("%s: %s imported by the Data Server", name, fname)

    def _idle_wait(self, ledger) -> float:
        now = self.now()
        wait = 1.0
        for name in self.targets:
            due = ledger.next_due(name)
            if due is not None:
                wait = min(wait, max(0.01, max(due, self.breakers[name].open_until) - now))
        return wait

    def run_once(self, ledger) -> bool:
        """Deliver at most one due batch per target; True if anything was attempted."""
        did = False
        for name, target in self.targets.items():
            now = self.now()
            if not self.breakers[name].allows(now):
                continue
            rows = ledger.next_batch(name, now)
            if rows:
                self.deliver_batch(ledger, name, target, rows[0].batch)
                did = True
        return did

    def deliver_batch(self, ledger, name: str, target, batch: str) -> None:
        with self.lock:
            rows = ledger.batch_rows(name, batch, ("pending",))
            if not rows:
                return
            files, missing = [], []
            for r in rows:
                src = folder(self.outbox, name, "pending") / r.name
                if src.exists() and sha256_file(src) == r.sha256:
                    files.append(move(src, folder(self.outbox, name, "sending") / r.name))
                else:
                    missing.append(r)
            if missing:
                # The staged bytes are gone or changed under us: deliver nothing of this batch.
                for f in files:
                    move(f, folder(self.outbox, name, "pending") / f.name)
                ledger.set_deliveries([r.id for r in rows], "failed",
                                      error=f"staged file missing or changed: {', '.join(r.name for r in missing)}")
                log.error("%s: batch %s failed: staged file missing or changed", name, batch)
                self.stats.failed += len(rows)
                return
            self.hook("before-sending-commit")
            ledger.set_deliveries([r.id for r in rows], "sending")
        self.hook("after-sending")
        ids = [r.id for r in rows]
        attempts = max(r.attempts for r in rows) + 1
        try:
            receipt = target.deliver(files)
        except PermanentDeliveryError as e:
            self._fail(ledger, name, rows, files, str(e))
            return
        except TransientDeliveryError as e:
            self._retry(ledger, name, rows, files, attempts, str(e))
            return
        except Exception as e:  # a bug in a target must not stop the gateway: retry, loudly
            log.exception("%s: unexpected error delivering %s", name, [f.name for f in files])
            self._retry(ledger, name, rows, files, attempts, f"{type(e).__name__}: {e}")
            return
        self.hook("after-deliver")
        ledger.set_deliveries(ids, "sent", attempt=True, detail=getattr(receipt, "detail", "") or None)
        self.hook("after-sent-commit")
        sent = folder(self.outbox, name, "sent") / today()
        for f in files:
            move(f, unique_path(sent, f.name))
        self.breakers[name] = Breaker()
        self.stats.sent += len(files)
        self.stats.last_success[name] = self.now()
        log.info("%s: delivered %s", name, ", ".join(f.name for f in files))

    def _retry(self, ledger, name: str, rows, files: list[Path], attempts: int, error: str) -> None:
        if attempts >= self.policy.max_attempts:
            self._fail(ledger, name, rows, files, f"gave up after {attempts} attempts; last error: {error}")
            return
        delay = self.policy.delay(attempts)
        for f in files:
            move(f, folder(self.outbox, name, "pending") / f.name)
        ledger.set_deliveries([r.id for r in rows], "pending", error=error, next_try=self.now() + delay, attempt=True)
        self.stats.retried += len(rows)
        b = self.breakers[name]
        b.failures += 1
        if b.failures >= self.policy.breaker_failures:
            b.open_until = self.now() + self.policy.breaker_seconds
            log.error("%s: %d failures in a row, pausing deliveries for %.0f s (circuit open): %s",
                      name, b.failures, self.policy.breaker_seconds, error)
        else:
            log.warning("%s: delivery failed (attempt %d), retry in %.1f s: %s", name, attempts, delay, error)

    def _fail(self, ledger, name: str, rows, files: list[Path], error: str) -> None:
        failed = folder(self.outbox, name, "failed")
        for f in files:
            dest = move(f, unique_path(failed, f.name))
            atomic_write(dest.with_name(dest.name + ".reason.txt"),
                         (f"{dest.name} was not delivered to target {name!r}.\n{error}\n"
                          f"Fix the cause, then run: gisgate retry {dest}\n").encode())
        ledger.set_deliveries([r.id for r in rows], "failed", error=error, attempt=True)
        self.stats.failed += len(rows)
        log.error("%s: delivery failed for good: %s: %s", name, ", ".join(f.name for f in files), error)


# ---- archive retention ---------------------------------------------------------------------------


def prune(archive: Path, keep_days: float | None, max_bytes: int | None, now: float | None = None) -> list[Path]:
    """Delete archived inputs older than `keep_days` (by their `<date>` folder), then the oldest ones
    until the archive holds at most `max_bytes`. The only deletion gisgate ever makes."""
    if not archive.is_dir() or (keep_days is None and max_bytes is None):
        return []
    now = time.time() if now is None else now
    dated = []  # (date folder's day start, file)
    for day in archive.glob("*/*"):
        try:
            start = datetime.strptime(day.name, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue  # not ours
        dated += [(start, f) for f in day.iterdir() if f.is_file()]
    dated.sort()
    removed = []
    if keep_days is not None:
        limit = now - keep_days * 86400 - 86400  # a day folder is old once its whole day is
        while dated and dated[0][0] < limit:
            removed.append(dated.pop(0)[1])
    if max_bytes is not None:
        sizes = [f.stat().st_size for _, f in dated]
        total = sum(sizes)
        i = 0
        while total > max_bytes and i < len(dated):
            removed.append(dated[i][1])
            total -= sizes[i]
            i += 1
    for f in removed:
        f.unlink(missing_ok=True)
    for day in archive.glob("*/*"):
        if day.is_dir() and not any(day.iterdir()):
            day.rmdir()
    if removed:
        log.info("archive retention: removed %d file(s)", len(removed))
    return removed
