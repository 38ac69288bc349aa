"""`gisgate watch`: the unattended gateway. Inboxes in, converted files delivered, nothing lost."""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass

from gisgate import pipeline
from gisgate.commands.fetch import runner as sources
from gisgate.errors import DeliveryError, InputError
from gisgate.gateway.conversions import Conversions
from gisgate.gateway.logs import setup_logging
from gisgate.gateway.runtime import Gateway
from gisgate.gateway.setup import setup
from gisgate.gateway.watcher import Watcher

log = logging.getLogger("gisgate.watch")
CONVERSIONS = Conversions(pipeline.convert_input, pipeline.parse_input, pipeline.render_intervals,
                          pipeline.state_events)


@dataclass(frozen=True)
class Outcome:
    """What one run of the gateway left behind."""

    waiting: int  # outputs not yet delivered (pending or sending), over every target
    rejected: int  # inputs rejected during the run
    rejections: tuple[str, ...] = ()  # the latest of them: `route/name: where the reason is`

    def check(self) -> None:
        """`--once`'s verdict for scripts: InputError (exit 3) when an input of the run was rejected,
        DeliveryError (exit 4) when outputs are still waiting; each message also says the other.
        Intervals a stream route holds until their end + hold_minutes are not waiting outputs."""
        waiting = (f"{self.waiting} output(s) are still waiting in the outbox; run again to retry them "
                   "(see gisgate status)") if self.waiting else ""
        if self.rejected:
            shown = list(self.rejections)[-5:]
            more = self.rejected - len(shown)
            lines = [f"{self.rejected} input(s) rejected in this run (the rest was delivered); fix them, then "
                     "gisgate retry FILE or drop them again:", *(f"  {r}" for r in shown)]
            lines += [f"  ... and {more} more (see gisgate status)"] if more > 0 else []
            raise InputError("\n".join(lines + ([f"also: {waiting}"] if waiting else [])))
        if waiting:
            raise DeliveryError(waiting)


def run(config_path: str | None = None, root: str | None = None, *, settle: float | None = None,
        rescan: float | None = None, polling: bool | None = None, metrics: str | None = None,
        log_json: bool = False, verbose: bool = False, once: float | None = None,
        acd: dict | None = None) -> Outcome:
    """Run the gateway until SIGTERM / SIGINT; in-flight work is finished before it returns.

    With `once` (seconds), return as soon as the inboxes are empty and every output was delivered,
    or `once` seconds after the inboxes emptied. Returns what the run left behind.
    """
    s = setup(config_path, root, acd)
    setup_logging(log_json, verbose, s)
    gateway = Gateway(s, CONVERSIONS)
    fetching = sources(s)
    watcher = Watcher(gateway, settle=settle, rescan=rescan, polling=polling, metrics=metrics, once=once,
                      sources=fetching.snapshot if fetching else None)
    if fetching:
        fetching.on_landed = watcher.hints.landed  # fetched files are whole: taken without settling

    def stop(signum, frame):
        log.info("received %s", signal.Signals(signum).name)
        watcher.stop.set()
        watcher.wake.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("gisgate watch: root %s, %d route(s), target(s): %s%s", s.root, len(s.config.route),
             ", ".join(s.config.target) or "none",
             f", source(s): {', '.join(x.name for x in s.config.source)}" if s.config.source else "")
    if fetching and once is not None:
        fetching.catch_up()  # --once: every source brought up to now, then its files converted
    elif fetching:
        fetching.start()
    try:
        watcher.run()
    finally:
        if fetching:
            fetching.stop()
    counters = gateway.claims.counters
    return Outcome(gateway.waiting(), counters.rejected, tuple(counters.rejections))
