"""The delivery worker: every target's due batches, oldest first, out of the outbox.

The ledger is the truth about what is due: the worker takes the oldest due batch of each target,
moves its files pending → sending, calls `target.deliver(files)`, then moves them to sent/ or back
to pending/ with a later `next_try`. Retries use the backoff of `retry.Policy` and survive restarts
(attempts and next try live in the ledger); each target has a circuit breaker so a dead endpoint
costs one probe per cool-down.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from gisgate.durable import atomic_write
from gisgate.errors import PermanentDeliveryError, TransientDeliveryError
from gisgate.gateway.faults import nohook
from gisgate.gateway.outbox import folder, move, sha256_file, today, unique_path
from gisgate.retry import Policy

log = logging.getLogger("gisgate.outbox")


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


class Worker:
    """Delivers every target's due batches, oldest first, until `stop` is set.

    `ledger_factory()` opens a ledger connection for the worker's thread; `targets` maps names to
    objects with `deliver(paths) -> Receipt`; `lock` is shared with staging so a batch is never
    taken while a newer version of one of its files is being staged.
    """

    def __init__(self, outbox: Path, ledger_factory, targets: dict, policy: Policy, lock: threading.Lock,
                 hook=nohook, now=time.time):
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

    def snapshot(self) -> dict:
        """Counts since start and the last turn of the loop, for metrics."""
        s = self.stats
        return {"sent": s.sent, "retried": s.retried, "failed": s.failed, "penalty": s.penalty, "unread": s.unread,
                "last_success": dict(s.last_success), "heartbeat": self.heartbeat}

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
