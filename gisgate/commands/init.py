"""`gisgate init`: a commented example gisgate.toml and the gateway's folder tree."""

from __future__ import annotations

from pathlib import Path

from gisgate import durable
from gisgate.errors import ConfigError
from gisgate.gateway.setup import setup
from gisgate.render import templates_dir


def init(folder: str) -> list[str]:
    """Write a commented example `gisgate.toml` and the folder tree; never overwrites a config."""
    root = Path(folder).resolve()
    cfg = root / "gisgate.toml"
    if cfg.exists():
        raise ConfigError(f"{cfg} exists already; not overwritten")
    made = []
    try:
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("inbox", "work", "archive", "rejected", "outbox", "dataserver"):  # inbox/: as the built-in gateway
            (root / sub).mkdir(parents=True, exist_ok=True)
            made.append(str(root / sub))
    except OSError as e:
        raise ConfigError(f"{folder}: cannot create the gateway's folders there: {e.strerror or e}") from None
    durable.atomic_write(cfg, (templates_dir() / "gisgate.toml").read_bytes())
    setup(cfg)  # the example must itself be valid
    return [str(cfg), *made]
