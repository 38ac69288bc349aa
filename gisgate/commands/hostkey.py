"""`gisgate hostkey TARGET`: the host key an sftp target's server offers, for a human to approve."""

from __future__ import annotations

from pathlib import Path

from gisgate import config
from gisgate.errors import ConfigError


def host_key(config_path: str | Path | None, name: str):
    """The configured sftp target's server key, fetched and compared with the pin, not trusted."""
    from gisgate.targets.sftp import fetch_host_key  # paramiko only when needed

    cfg = config.load(config_path)
    spec = cfg.target.get(name)
    if spec is None or spec.kind != "sftp":
        sftp_targets = sorted(k for k, t in cfg.target.items() if t.kind == "sftp")
        known = ", ".join(sftp_targets) or "none"
        raise ConfigError(f"{config_path}: no sftp target {name!r}; sftp targets: {known}")
    return fetch_host_key(spec, name)
