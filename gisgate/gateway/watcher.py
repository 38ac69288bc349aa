"""`gisgate watch`'s main loop: list the inboxes, take the stable files, convert, complete in order.

Conversions run in converter processes (claims in order, conversions in parallel, completions in
claim order); deliveries run in the gateway's worker thread. Report pages of archived inputs are
built off that path: only in turns with no input ready, in all converters but one. Housekeeping rides
on the same loop: archive retention every hour, the observers' canary every `heartbeat_seconds`,
metrics every 2 s.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable

from gisgate.gateway.claims import Job, Page
from gisgate.gateway.converters import Converters
from gisgate.gateway.metrics import Metrics
from gisgate.gateway.observers import Observers
from gisgate.gateway.pickup import DONE_SUFFIX, Hints, Inbox, folder_name, unwatched
from gisgate.gateway.retention import prune
from gisgate.gateway.runtime import Gateway

log = logging.getLogger("gisgate.watch")


class Watcher:
    """The main loop: list, look, process the stable files, keep the observers healthy."""

    def __init__(self, gateway: Gateway, settle: float | None = None, rescan: float | None = None,
                 polling: bool | None = None, metrics: str | None = None, once: float | None = None,
                 sources: Callable[[], dict] | None = None):
        self.gateway = gateway
        self.sources = sources  # the platform sources' snapshot, when the gateway fetches
        self.conversions = gateway.conversions
        # --once: stop when the inboxes are empty and the outbox has drained (or `once` seconds later)
        self.once = once
        self.idle_since: float | None = None
        s = gateway.setup
        w = s.config.watch
        self.rescan = rescan if rescan is not None else w.rescan_seconds
        self.queue_limit = w.queue_limit
        self.heartbeat_every = w.heartbeat_seconds
        self.inboxes = [
            Inbox(r, s.inboxes[r.name], settle if settle is not None else r.settle_seconds) for r in s.config.route
        ]
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.hints = Hints(self.wake, self.inboxes)
        self.observers = Observers(self.inboxes, self.hints, polling if polling is not None else w.polling, self.rescan)
        self.metrics = Metrics(metrics, self.snapshot) if metrics else None
        self.heartbeat = 0.0
        self.unwatched: set = set()  # files where no route looks, each warned about once
        self.pages: deque[tuple[Page, object]] = deque()  # report pages being built: (page, future)
        n = w.converters if w.converters is not None else (2 if (os.cpu_count() or 1) >= 2 else 0)
        self.converters = Converters(n, self.conversions) if n else None

    def snapshot(self) -> dict:
        """The gateway's parts and this loop, for metrics."""
        return {**self.gateway.snapshot(), "heartbeat": self.heartbeat,
                "tracked": sum(len(i.seen) for i in self.inboxes), "stuck": sum(len(i.stuck) for i in self.inboxes),
                "unwatched": len(self.unwatched),
                "watcher_alive": self.observers.alive, "watcher_restarts": self.observers.restarts,
                "sources": self.sources() if self.sources else {}}

    # -- looking at inboxes

    def _list(self, hinted: dict[int, dict[str, tuple[float, float]]]) -> None:
        for n, times in hinted.items():
            self.inboxes[n].scan(self.queue_limit - sum(len(i.seen) for i in self.inboxes), times,
                                 self.hints.take_whole(n))

    def _look_around(self) -> None:
        """Warn once about each file sitting in `<root>/inbox/` where no route looks."""
        root = self.gateway.root
        found = set(unwatched(root, [i.path for i in self.inboxes]))
        for path in sorted(found - self.unwatched):
            log.warning("%s: no route watches %s, so this file is ignored; move it into a route's inbox (%s) "
                        "or add a route for that folder", path.relative_to(root), folder_name(path.parent, root),
                        ", ".join(folder_name(i.path, root) for i in self.inboxes))
        self.unwatched = found

    def _ready(self, now: float) -> list:
        """The stable files of every inbox, first seen first."""
        ready = [(first, mtime, name, inbox) for inbox in self.inboxes for first, mtime, name in inbox.look(now)]
        ready.sort(key=lambda r: r[:3])
        return ready

    def _until_next_look(self, tick: float) -> float:
        """Sleep until the next tracked file can be stable (not a whole tick later), at most a tick."""
        now = time.monotonic()
        wait = tick
        for inbox in self.inboxes:
            for s in inbox.seen.values():
                wait = min(wait, 0.0 if s.whole else s.changed_mono + inbox.settle - now if s.looks >= 2 else 0.02)
        return max(0.005, wait)

    # -- processing: claims in order, conversions in the converter processes, completions in order

    def process(self, ready: list) -> None:
        claims = self.gateway.claims
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
                job = claims.claim(inbox.route, inbox.path / name, inbox.seen.pop(name).first_seen, marker)
                if isinstance(job, Job):
                    inflight.append((job, self.converters.submit(job) if self.converters else None))
        finally:
            while inflight:  # claimed files are always finished, also on SIGTERM
                self._complete(inflight)

    def _complete(self, inflight: deque) -> None:
        """Complete the oldest job and every later one already converted, as one group."""
        group = [inflight.popleft()]
        while inflight and inflight[0][1] is not None and inflight[0][1].done():
            group.append(inflight.popleft())
        self.gateway.claims.complete_many([(job, self._result(job, future)) for job, future in group])

    def _result(self, job, future) -> tuple:
        if future is None:
            return self.conversions.run(job)
        try:
            return future.result()
        except Exception as e:  # the converter process died (killed, out of memory): restart the pool
            log.error("converter process failed on %s: %s; restarting the converters", job.work.name, e)
            self.converters.close()
            self.converters = Converters(self.converters.workers, self.conversions)
            return self.conversions.run(job)

    # -- report pages, off the delivery path

    def _build_pages(self, idle: bool) -> None:
        """Write the pages built since the last turn; in a turn with no input ready, start more (in all
        converters but one, which stays free for the next input; in-process: for up to 50 ms)."""
        claims = self.gateway.claims
        while self.pages and self.pages[0][1].done():
            self._page_built(*self.pages.popleft())
        if not idle or not claims.pages:
            return
        if self.converters is None:
            until = time.monotonic() + 0.05
            while claims.pages and time.monotonic() < until:
                page = claims.pages.popleft()
                claims.write_page(page, self.conversions.page(page))
            if claims.pages:
                self.wake.set()  # more to build: the next turn comes at once, inputs first
            return
        while claims.pages and len(self.pages) < max(1, self.converters.workers - 1):
            page = claims.pages.popleft()
            future = self.converters.submit_page(page)
            future.add_done_callback(lambda _: self.wake.set())
            self.pages.append((page, future))

    def _page_built(self, page: Page, future) -> None:
        try:
            result = future.result()
        except Exception as e:  # the converter process died: restart the pool, as for an input
            log.error("converter process failed on the report page of %s/%s: %s; restarting the converters",
                      page.route, page.archived.name, e)
            self.pages.clear()
            self.converters.close()
            self.converters = Converters(self.converters.workers, self.conversions)
            return
        self.gateway.claims.write_page(page, result)

    # -- the loop

    def _drained(self, now: float, ready: list) -> bool:
        """--once: every inbox listed and empty, and the outbox empty (or the drain deadline passed)."""
        if ready or any(i.seen for i in self.inboxes):
            self.idle_since = None
            return False
        if self.pages or self.gateway.claims.pages:
            return False  # every page written before exiting
        self.idle_since = self.idle_since or now
        return self.gateway.waiting() == 0 or now - self.idle_since > self.once

    def _start(self) -> None:
        recovered = self.gateway.recover()
        if recovered:
            log.info("recovered %d input(s) from the previous run", recovered)
        self.gateway.start_worker()
        if self.converters:
            self.converters.warm()
        self.observers.start()

    def _stop(self) -> None:
        log.info("stopping: finishing deliveries in hand")
        self.observers.stop()
        self.observers.remove_canaries()
        if self.converters:
            self.converters.close()  # pages being built are finished, the ones waiting cancelled
        built = [(p, f) for p, f in self.pages if f.done() and not f.cancelled() and f.exception() is None]
        for page, future in built:
            self.gateway.claims.write_page(page, future.result())
        left = len(self.gateway.claims.pages) + len(self.pages) - len(built)
        if left:
            log.info("%d report page(s) not written: stopped before the gateway was idle", left)
        self.gateway.stop_worker()
        if self.metrics:
            self.metrics.publish()
            self.metrics.close()
        self.gateway.close()
        log.info("stopped")

    def run(self) -> None:
        tick = max(0.02, min(0.25, min(i.settle for i in self.inboxes) / 4))
        due = {"rescan": 0.0, "prune": 0.0, "metrics": 0.0, "canary": time.monotonic() + min(5.0, self.heartbeat_every)}
        try:
            self._start()
            while not self.stop.is_set():
                self.wake.clear()  # before taking the hints: a hint arriving from here on wakes the wait below
                now = time.monotonic()
                self.heartbeat = time.time()
                hinted = self.hints.take()
                if now >= due["rescan"]:
                    hinted = {n: hinted.get(n, {}) for n in range(len(self.inboxes))}
                    due["rescan"] = now + self.rescan
                    self._look_around()
                self._list(hinted)
                ready = self._ready(now)
                self.process(ready)
                self._build_pages(idle=not ready)
                self._housekeeping(now, due)
                if self.once is not None and self._drained(now, ready):
                    break
                if not ready:
                    self.wake.wait(self._until_next_look(tick))
        finally:
            self._stop()

    def _housekeeping(self, now: float, due: dict[str, float]) -> None:
        held = self.gateway.streams.next_due()
        if held is not None and held <= time.time() and self.gateway.streams.flush():
            self.gateway.worker.wake.set()  # intervals held back until their end + hold_minutes
        if now >= due["prune"]:
            retention = self.gateway.cfg.archive
            prune(self.gateway.root / "archive", retention.keep_days, retention.max_bytes)
            due["prune"] = now + 3600
        if now >= due["canary"]:
            self.observers.check_canary(now)
            due["canary"] = now + self.heartbeat_every
        if self.metrics and now >= due["metrics"]:
            self.metrics.publish()
            due["metrics"] = now + 2.0
