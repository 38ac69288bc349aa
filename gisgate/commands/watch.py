"""`gisgate watch`: the unattended gateway. Inboxes in, converted files delivered, nothing lost."""

from __future__ import annotations

import logging
import signal

from gisgate import pipeline
from gisgate.gateway.conversions import Conversions
from gisgate.gateway.logs import setup_logging
from gisgate.gateway.runtime import Gateway
from gisgate.gateway.setup import setup
from gisgate.gateway.watcher import Watcher

log = logging.getLogger("gisgate.watch")
CONVERSIONS = Conversions(pipeline.convert_input, pipeline.parse_input, pipeline.render_intervals)


def run(config_path: str | None = None, root: str | None = None, *, settle: float | None = None,
        rescan: float | None = None, polling: bool | None = None, metrics: str | None = None,
        log_json: bool = False, verbose: bool = False, once: float | None = None, acd: dict | None = None) -> int:
    """Run the gateway until SIGTERM / SIGINT; in-flight work is finished before it returns.

    With `once` (seconds), return as soon as the inboxes are empty and every output was delivered,
    or `once` seconds after the inboxes emptied. Returns the number of outputs still waiting.
    """
    s = setup(config_path, root, acd)
    setup_logging(log_json, verbose, s)
    gateway = Gateway(s, CONVERSIONS)
    watcher = Watcher(gateway, settle=settle, rescan=rescan, polling=polling, metrics=metrics, once=once)

    def stop(signum, frame):
        log.info("received %s", signal.Signals(signum).name)
        watcher.stop.set()
        watcher.wake.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("gisgate watch: root %s, %d route(s), target(s): %s", s.root, len(s.config.route),
             ", ".join(s.config.target) or "none")
    watcher.run()
    return gateway.waiting()
