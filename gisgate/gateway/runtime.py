"""One running gateway: its parts built from a `Setup`, the root lock, the delivery thread.

    Gateway(setup, convert)
      .ledger     the ledger (this thread's connection)
      .targets    every configured target, opened
      .worker     the outbox's delivery worker (its own thread and ledger connection)
      .claims     inputs through conversion to archive / rejected
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from gisgate.errors import ConfigError
from gisgate.gateway.claims import Claims
from gisgate.gateway.conversions import Conversions
from gisgate.gateway.delivery import Worker
from gisgate.gateway.faults import crashpoint
from gisgate.gateway.ledger import Ledger
from gisgate.gateway.outbox import depth
from gisgate.gateway.setup import Setup
from gisgate.gateway.streams import Streams
from gisgate.retry import Policy
from gisgate.targets import open_target


class Gateway:
    """Owns the gateway's parts for one root; `close()` releases the root for another gateway."""

    def __init__(self, s: Setup, conversions: Conversions, hook: Callable[[str], None] = crashpoint):
        self.setup = s
        self.cfg = s.config
        self.layout = s.layout
        self.root = s.root
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_root()
        self.ledger = Ledger(self.layout.ledger)
        self.lock = threading.Lock()  # staging and taking a batch never overlap
        self.targets = {name: open_target(name, spec) for name, spec in self.cfg.target.items()}
        p = self.cfg.outbox
        policy = Policy(p.backoff_seconds, p.backoff_max_seconds, p.max_attempts, p.breaker_failures, p.breaker_seconds)
        self.worker = Worker(self.layout.outbox, lambda: Ledger(self.layout.ledger), self.targets, policy, self.lock,
                             hook=hook)
        self.worker.outcome_seconds = p.outcome_seconds
        self.conversions = conversions
        self.streams = Streams(s, self.ledger, self.lock, self.worker.wake.set, hook, conversions.render,
                               conversions.events)
        self.claims = Claims(s, self.ledger, conversions, self.lock, self.worker.wake.set, hook, self.streams)
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

    def recover(self) -> int:
        """Finish what a previous run left half done (see `Claims.recover`), and send what the streams
        held back that is due by now."""
        touched = self.claims.recover()
        if self.streams.flush():
            self.worker.wake.set()
        return touched

    def waiting(self) -> int:
        """Outputs not yet delivered (pending or sending), over every target."""
        return sum(depth(self.layout.outbox).values())

    def snapshot(self) -> dict:
        """What the gateway holds right now, for metrics."""
        return {"claims": self.claims.snapshot(), "delivery": self.worker.snapshot(),
                "streams": self.streams.snapshot(),
                "outbox_depth": depth(self.layout.outbox),
                "oldest_pending_created": self.ledger.oldest_pending_created()}

    def close(self) -> None:
        self.streams.close()
        self.ledger.close()
        self._lockfile.close()
