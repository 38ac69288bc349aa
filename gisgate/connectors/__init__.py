"""Platform connectors: sources that fetch from a contact-center platform's REST API on a schedule
and land each answer, exactly as returned, in a route's inbox (the gateway's ordinary path takes it
from there). Configured by `[[source]]` tables (`gisgate.sourcespec`).

    open_connector(spec, sleep)   the connector of a source's `kind`:
        .whats                    what it fetches (report types, endpoints, feeds)
        .windowed                 True: .fetch(what, window) -> [(bytes, ext)] per page
                                  False (event feeds): .feed(what, token) -> FeedPage
        .probe()                  authenticate and make one small call (gisgate doctor)
        .close()
    runner.Runner                 the sources of `gisgate watch`, each on its own thread
    cursors.Cursors               where each source stands, in the ledger file
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

KINDS = {"talkdesk": "gisgate.connectors.talkdesk:Talkdesk", "linklive": "gisgate.connectors.linklive:LinkLive",
         "livevox": "gisgate.connectors.livevox:LiveVox"}


def open_connector(spec, sleep: Callable[[float], bool] | None = None):
    """The connector for `spec` (a [[source]] table); a missing secret is a ConfigError."""
    module, name = KINDS[spec.kind].split(":")
    return getattr(import_module(module), name)(spec, sleep)
