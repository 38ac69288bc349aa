"""A gateway's configuration with every path resolved: where each route's inbox, work, archive and
rejected folders, the outbox and the ledger live under the gateway root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gisgate import config as cfgmod
from gisgate.config import Config, ConvertOptions, Route
from gisgate.errors import ConfigError

DEFAULT_TARGET = "dataserver"


@dataclass(frozen=True)
class Layout:
    """Where everything lives under the gateway root."""

    root: Path

    @property
    def ledger(self) -> Path:
        return self.root / "gisgate.db"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    def work(self, route: str) -> Path:
        return self.root / "work" / route

    def archive(self, route: str, date: str) -> Path:
        return self.root / "archive" / route / date

    def rejected(self, route: str, date: str) -> Path:
        return self.root / "rejected" / route / date

    def users(self, source: str) -> Path:
        """The platform users a source fetched (for mapping agents by e-mail)."""
        return self.root / "mappings" / f"{source}-users.json"


@dataclass
class Setup:
    """A validated config with every path resolved against the gateway root."""

    config: Config
    root: Path
    inboxes: dict[str, Path] = field(default_factory=dict)  # route name -> inbox folder
    source: str = "built-in defaults"  # the config file it came from

    @property
    def layout(self) -> Layout:
        return Layout(self.root)

    def route(self, name: str) -> Route:
        for r in self.config.route:
            if r.name == name:
                return r
        raise ConfigError(f"no route named {name!r}; routes: {', '.join(r.name for r in self.config.route)}")

    def convert_options(self, route: Route, to: str) -> ConvertOptions:
        """What a conversion of `route`'s files into `to` needs: the route's format, `[acd]`, `[gis]`,
        `[mapping]` (with the users the sources fetched, once they have)."""
        fetched = [str(p) for p in self.fetched_users().values() if p.exists()]
        config = self.config
        if fetched:
            mapping = config.mapping.model_copy(update={"users_file": config.mapping.users_files() + fetched})
            config = config.model_copy(update={"mapping": mapping})
        return cfgmod.convert_options(config, source=route.format, to=to)

    def fetched_users(self) -> dict[str, Path]:
        """Source name -> where it keeps the platform's users: the sources that fetch them (only when
        `[mapping] agents_file` can match agents by e-mail)."""
        if not self.config.mapping.agents_file:
            return {}
        return {s.name: self.layout.users(s.name) for s in self.config.source if getattr(s, "users", False)}


def default_config(root: Path) -> Config:
    """The embedded gateway: `inbox/` → generic route (format auto) → folder target `dataserver/`."""
    return cfgmod.parse(
        {
            "root": str(root),
            "route": [{"name": "generic", "inbox": "inbox", "format": "auto", "targets": [DEFAULT_TARGET]}],
            "target": {DEFAULT_TARGET: {"kind": "folder", "path": "dataserver"}},
        },
        "built-in defaults",
    )


def setup(config_path: str | Path | None = None, root: str | Path | None = None, acd: dict | None = None) -> Setup:
    """Load `config_path` (or `<root>/gisgate.toml`, or the built-in defaults) and resolve paths.

    `root` given on the command line wins over the file's `root`; relative paths in the file are
    relative to the file's folder, relative inboxes and folder targets to the root. `acd` overrides
    keys of the `[acd]` table (`--tz`, `--acd` on the command line).
    """
    if config_path is None and root is not None and (Path(root) / "gisgate.toml").is_file():
        config_path = Path(root) / "gisgate.toml"
    if config_path is not None:
        cfg = cfgmod.load(config_path)
        base = Path(config_path).resolve().parent
        resolved_root = Path(root).resolve() if root is not None else (base / os.path.expanduser(cfg.root)).resolve()
    else:
        resolved_root = Path(root if root is not None else ".").resolve()
        cfg = default_config(resolved_root)
    if not cfg.route:
        raise ConfigError(f"{config_path}: no [[route]] table: the gateway has nothing to watch")
    if acd:
        cfg = cfgmod.parse({**cfg.model_dump(exclude_unset=True), "acd": {**cfg.acd.model_dump(), **acd}},
                           "command line")
    targets = {}
    for name, spec in cfg.target.items():
        if spec.kind == "folder":
            spec = spec.model_copy(update={"path": str(resolved_root / os.path.expanduser(spec.path))})
        targets[name] = spec
    cfg = cfg.model_copy(update={"target": targets, "root": str(resolved_root)})
    inboxes = {r.name: resolved_root / os.path.expanduser(r.inbox or f"inbox/{r.name}") for r in cfg.route}
    return Setup(cfg, resolved_root, inboxes, str(Path(config_path).resolve()) if config_path else "built-in defaults")
