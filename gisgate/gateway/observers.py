"""The watchdog observers of every inbox, and the canary that proves them alive.

A canary file written into each inbox must come back as an event within a few seconds; otherwise
the observers are restarted (the periodic rescan keeps files moving meanwhile).
"""

from __future__ import annotations

import logging
import time

from gisgate.gateway.pickup import CANARY, Hints, Inbox, is_network, no_move_pairing_delay

log = logging.getLogger("gisgate.watch")


class Observers:
    """inotify for local inboxes, polling for network shares (or as configured)."""

    def __init__(self, inboxes: list[Inbox], hints: Hints, polling: bool | None, rescan: float):
        self.inboxes = inboxes
        self.hints = hints
        self.polling = polling
        self.rescan = rescan
        self.running: list = []
        self.alive = 1  # 1 when the last canary came back as a file event
        self.restarts = 0

    def start(self) -> None:
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        no_move_pairing_delay()
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
        self.running = [o for o in (native, polled) if o is not None]
        for o in self.running:
            o.daemon = True
            o.start()

    def stop(self) -> None:
        for o in self.running:
            o.stop()
        for o in self.running:
            o.join(timeout=5)
        self.running = []

    def remove_canaries(self) -> None:
        """On the way out: an inbox holds no file of ours once the gateway stopped."""
        for i in self.inboxes:
            (i.path / CANARY).unlink(missing_ok=True)

    def check_canary(self, now: float) -> None:
        """Write the canary; if the last one never came back as an event, restart the observers."""
        late = [i for i in self.inboxes if i.canary_written and i.canary_seen < i.canary_written
                and now - i.canary_written > 10.0]
        if late:
            self.alive = 0
            self.restarts += 1
            log.error("no file events from %s for the canary: restarting the watcher (the rescan every %.0f s "
                      "keeps files moving meanwhile)", ", ".join(str(i.path) for i in late), self.rescan)
            self.stop()
            self.start()
        elif all(i.canary_seen >= i.canary_written for i in self.inboxes):
            self.alive = 1
        for i in self.inboxes:
            if not i.canary_written or i.canary_seen >= i.canary_written or late:
                try:
                    (i.path / CANARY).write_text(f"{time.time():.3f}\n")
                    i.canary_written = now
                except OSError as e:
                    log.error("cannot write the canary into %s: %s", i.path, e.strerror)
