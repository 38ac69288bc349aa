"""Sources on their schedule: one thread per source, each poll fetching every window (or feed page)
up to now, landing each answer in the route's inbox, then moving the cursor in the ledger.

A failed poll moves nothing: the next one, after a backoff with jitter (or the Retry-After the
platform asked for, if longer), asks for the same window again. After `breaker_failures` failed polls
in a row the source's breaker opens: no call for `breaker_seconds`, then one poll to probe.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gisgate import durable
from gisgate.connectors import open_connector
from gisgate.connectors.cursors import Cursors
from gisgate.connectors.landing import file_name, land, sweep
from gisgate.connectors.windows import plan, stamp
from gisgate.errors import FetchError, GisgateError

log = logging.getLogger("gisgate.fetch")
SNAPSHOT_EVERY = 900  # seconds: statistics snapshots at each quarter hour


@dataclass
class State:
    """What one source's last polls did, for metrics (the ledger keeps the same for `status`)."""

    last_success: float | None = None
    cursor: float | None = None  # oldest cursor of its `what`s (feeds: the last poll)
    last_error: str | None = None
    failures: int = 0  # failed polls in a row
    errors: int = 0
    files: int = 0
    gap: bool = False
    breaker_open_until: float = 0.0


class Poller:
    """One source: `poll()` brings every `what` up to now once."""

    def __init__(self, spec, inbox: Path, ledger: Path, stop: threading.Event, clock: Callable[[], float] = time.time,
                 connector=None, hook: Callable[[str], None] = lambda point: None,
                 landed: Callable[[Path], None] = lambda path: None):
        self.spec, self.inbox, self.ledger, self.stop, self.clock = spec, inbox, ledger, stop, clock
        self.hook = hook  # crash points of the recovery tests (gateway.faults.crashpoint)
        self.landed = landed  # told of each file landed whole (the watcher takes it without settling)
        self.users_file: Path | None = None  # where the platform's users go, when agents are mapped by e-mail
        self._users_at: float | None = None
        self.connector = connector or open_connector(spec, self.sleep)
        self.state = State()

    def sleep(self, seconds: float) -> bool:
        """Wait, unless the gateway is stopping; True when the wait ran its course."""
        return not self.stop.wait(max(0.0, seconds))

    def poll(self) -> int:
        """Every `what` of the source up to now; the files landed. Raises FetchError (cursors untouched)."""
        self._users()  # first: the data fetched next is mapped with them
        cursors = Cursors(self.ledger, self.clock)
        try:
            landed = 0
            for what in self.connector.whats:
                try:
                    landed += self._windows(cursors, what) if self.connector.windowed else \
                        self._snapshot(cursors, what) if what in getattr(self.connector, "snapshots", ()) else \
                        self._feed(cursors, what)
                except FetchError as e:
                    cursors.failed(self.spec.name, what, str(e))
                    raise
            self._summarize(cursors)
            return landed
        finally:
            cursors.close()

    def _windows(self, cursors: Cursors, what: str) -> int:
        landed = 0
        while not self.stop.is_set():
            now = self.clock()
            window = plan(cursors.get(self.spec.name, what).cursor, now, self.spec)
            if window is None:
                break
            pages = self.connector.fetch(what, window)
            for n, (data, ext) in enumerate(pages, 1):
                self.landed(land(self.inbox, file_name(self.spec.name, what, window.label, ext, n), data,
                                 self.spec.name))
            self.hook("fetch-landed")  # landed, the cursor not moved yet: the window is fetched again
            cursors.advance(self.spec.name, what, cursor=window.end, files=len(pages))
            landed += len(pages)
            log.info("source %s: %s %s landed (%d file(s))", self.spec.name, what, window.label, len(pages))
            if window.end >= int(now):
                break
        return landed

    def _feed(self, cursors: Cursors, what: str) -> int:
        landed = 0
        while not self.stop.is_set():
            row = cursors.get(self.spec.name, what)
            since = row.polled_at or self.clock()
            page = self.connector.feed(what, row.token)
            if page.reset:
                cursors.gap(self.spec.name, what)
                log.warning("source %s: the %s feed's token was too old; a new feed started: events since %s may "
                            "be missing", self.spec.name, what, stamp(since))
            if page.count:  # numbered by the feed's pages landed so far: one poll may bring several in a second
                label = f"{stamp(since)}-{stamp(self.clock())}"
                name = file_name(self.spec.name, what, label, "json", row.files + 1)
                self.landed(land(self.inbox, name, page.data, self.spec.name))
                landed += 1
            self.hook("fetch-landed")
            cursors.advance(self.spec.name, what, token=page.token, files=1 if page.count else 0, reset_token=True)
            if not page.more:
                break
        return landed

    def _snapshot(self, cursors: Cursors, what: str) -> int:
        """A snapshot once each quarter hour (the first poll after the boundary), landed under the
        time it was taken (its window is that instant)."""
        now = self.clock()
        last = cursors.get(self.spec.name, what).cursor
        if last is not None and last >= now - now % SNAPSHOT_EVERY:
            return 0
        data = self.connector.snapshot(what)
        self.landed(land(self.inbox, file_name(self.spec.name, what, f"{stamp(now)}-{stamp(now)}", "json"), data,
                         self.spec.name))
        self.hook("fetch-landed")
        cursors.advance(self.spec.name, what, cursor=now, files=1)
        return 1

    def _users(self) -> None:
        """The platform's users (ID and e-mail only), every `users_every`, into `users_file`: the mapping
        matches agents by e-mail through them. A failure keeps the users fetched before (logged)."""
        now = self.clock()
        if self.users_file is None or (self._users_at is not None and now - self._users_at < self.spec.users_every):
            return
        self._users_at = now
        try:
            users = self.connector.users()
        except FetchError as e:
            log.warning("%s; the users fetched before stay in use for the mapping", e)
            return
        rows = [{"id": str(u.get("id")), "email": u.get("email")} for u in users if u.get("id") and u.get("email")]
        self.users_file.parent.mkdir(parents=True, exist_ok=True)
        durable.atomic_write(self.users_file, json.dumps({"users": rows}, indent=0).encode())
        log.info("source %s: %d user(s) with an e-mail fetched for the mapping", self.spec.name, len(rows))

    def _summarize(self, cursors: Cursors) -> None:
        rows = [cursors.get(self.spec.name, w) for w in self.connector.whats]
        marks = [r.cursor if self.connector.windowed else r.polled_at for r in rows]
        self.state.cursor = min((m for m in marks if m is not None), default=None)
        self.state.gap = any(r.gap_at for r in rows)

    def close(self) -> None:
        self.connector.close()


class Runner:
    """Every source of a gateway, each in its own thread; `stop()` ends them."""

    def __init__(self, specs: list, inboxes: dict[str, Path], ledger: Path, policy: Callable,
                 clock: Callable[[], float] = time.time, hook: Callable[[str], None] = lambda point: None,
                 users: dict[str, Path] | None = None):
        """`users`: source name -> where it keeps the platform's users (the sources that fetch them)."""
        self.stop_event = threading.Event()
        self.policy = policy  # spec -> an object with delay(attempts) (retry.Policy)
        self.clock = clock
        self.on_landed: Callable[[Path], None] = lambda path: None  # the watcher's Hints.landed, once it runs
        self.pollers = [Poller(s, inboxes[s.route], ledger, self.stop_event, clock, hook=hook,
                               landed=lambda path: self.on_landed(path)) for s in specs]
        for p in self.pollers:
            p.users_file = (users or {}).get(p.spec.name)
        for p in self.pollers:
            if sweep(p.inbox, p.spec.name):
                log.info("source %s: removed the temp files of a fetch killed in the previous run", p.spec.name)
        self.threads: list[threading.Thread] = []

    def catch_up(self) -> int:
        """One poll of every source, here and now (`gisgate watch --once`); failures are logged."""
        before = sum(p.state.files for p in self.pollers)
        for p in self.pollers:
            self._attempt(p)
        return sum(p.state.files for p in self.pollers) - before

    def start(self) -> None:
        for p in self.pollers:
            t = threading.Thread(target=self._loop, args=(p,), name=f"gisgate-source-{p.spec.name}", daemon=True)
            t.start()
            self.threads.append(t)

    def _attempt(self, p: Poller) -> float:
        """One poll of `p`; the seconds until its next one (its period, or a backoff after a failure)."""
        s = p.state
        try:
            landed = p.poll()
        except FetchError as e:
            s.failures += 1
            s.errors += 1
            s.last_error = str(e)
            log.error("%s (failed poll %d in a row)", e, s.failures)
            retry = self.policy(p.spec).delay(s.failures)
            if s.failures >= p.spec.breaker_failures:
                s.breaker_open_until = self.clock() + p.spec.breaker_seconds
                log.error("source %s: breaker open for %.0f s after %d failed polls", p.spec.name,
                          p.spec.breaker_seconds, s.failures)
                retry = p.spec.breaker_seconds
            return max(retry, e.retry_after or 0.0)
        except GisgateError as e:
            s.failures += 1
            s.errors += 1
            s.last_error = str(e)
            log.error("source %s: %s", p.spec.name, e)
            return p.spec.breaker_seconds
        s.failures, s.last_error, s.breaker_open_until = 0, None, 0.0
        s.last_success = self.clock()
        s.files += landed
        return p.spec.every

    def _loop(self, p: Poller) -> None:
        while not self.stop_event.is_set():
            try:
                wait = self._attempt(p)
            except Exception:  # a bug: say so, keep the source alive
                log.exception("source %s: unexpected error (a bug in gisgate)", p.spec.name)
                wait = p.spec.breaker_seconds
            self.stop_event.wait(wait)

    def stop(self) -> None:
        """Stop polling: a poll in a call is given 5 s; one still waiting on the platform (a long poll) is
        left to end with the process (its cursor moves only after its file landed, so nothing is lost)."""
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=5.0)
        busy = {t.name for t in self.threads if t.is_alive()}
        for p in self.pollers:
            if f"gisgate-source-{p.spec.name}" not in busy:
                p.close()

    def snapshot(self) -> dict:
        now = self.clock()
        return {p.spec.name: {"kind": p.spec.kind, "last_success": p.state.last_success,
                              "lag": None if p.state.cursor is None else round(now - p.state.cursor, 3),
                              "errors": p.state.errors, "files": p.state.files, "gap": p.state.gap,
                              "breaker_open": p.state.breaker_open_until > now, "last_error": p.state.last_error}
                for p in self.pollers}
