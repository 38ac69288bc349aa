"""`gisgate fetch SOURCE --since T`: a one-shot backfill of a configured source into a folder (or its
route's inbox), window by window, each answer landing as one file. The source's cursor in the ledger
is left as it is: the gateway's own schedule is not disturbed, and what the backfill lands twice the
stream counts once. Also the glue that runs the sources inside `gisgate watch`.
"""

from __future__ import annotations

import time
from pathlib import Path

from gisgate.connectors import open_connector
from gisgate.connectors.landing import file_name, land
from gisgate.connectors.runner import Runner
from gisgate.connectors.windows import windows
from gisgate.errors import ConfigError
from gisgate.gateway.faults import crashpoint
from gisgate.gateway.setup import Setup, setup
from gisgate.retry import Policy
from gisgate.sourcespec import instant, seconds


def when(text: str, now: float) -> float:
    """`2d` (that long ago) or an ISO-8601 instant with a zone, as epoch seconds."""
    try:
        return now - seconds(text)
    except ValueError:
        pass
    try:
        return instant(text).timestamp()
    except ValueError as e:
        raise ConfigError(f"{e}") from None


def source_spec(s: Setup, name: str):
    for spec in s.config.source:
        if spec.name == name:
            return spec
    known = ", ".join(spec.name for spec in s.config.source) or "none"
    raise ConfigError(f"no [[source]] named {name!r} in {s.source}; sources: {known}")


def fetch(name: str, since: str, until: str | None = None, out: str | None = None, config_path: str | None = None,
          root: str | None = None) -> list[Path]:
    """Fetch source `name` over [since, until) into `out` (default: its route's inbox); the files landed."""
    s = setup(config_path, root)
    spec = source_spec(s, name)
    now = time.time()
    start, end = when(since, now), when(until, now) if until else now
    if end <= start:
        raise ConfigError(f"--until ({until}) must be after --since ({since})")
    folder = Path(out) if out else s.inboxes[spec.route]
    connector = open_connector(spec)
    try:
        if not connector.windowed:
            raise ConfigError(f"source {name!r} ({spec.kind}) reads event feeds, which cannot be asked for a time "
                              "range (the platform keeps 24 h): gisgate watch follows them as they come")
        landed = []
        for window in windows(start, end, spec.max_window):
            for what in connector.whats:
                for n, (data, ext) in enumerate(connector.fetch(what, window), 1):
                    landed.append(land(folder, file_name(spec.name, what, window.label, ext, n), data))
        return landed
    finally:
        connector.close()


def runner(s: Setup) -> Runner | None:
    """The sources of a gateway, ready to start (None when it has none)."""
    if not s.config.source:
        return None

    def policy(spec) -> Policy:
        return Policy(spec.backoff_seconds, spec.backoff_max_seconds, 1, spec.breaker_failures, spec.breaker_seconds)

    return Runner(list(s.config.source), s.inboxes, s.layout.ledger, policy, hook=crashpoint, users=s.fetched_users())
