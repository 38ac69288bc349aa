"""Input formats: one module per format, each with

    detect(head: Head) -> bool                     does a file look like this format?
    read(paths, options: ConvertOptions) -> Batch  canonical frames (checked with model.check)

Only source modules open input files. The registry is a plain dict; modules load lazily.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from gisgate.errors import ConfigError, InputError
from gisgate.sources._io import Head, head

SOURCES: dict[str, str] = {
    "generic": "gisgate.sources.generic",
    "whit": "gisgate.sources.whit",
    "contacts": "gisgate.sources.contacts",  # CONTACT.* recordings (domain §3.1), media beside / in ZIPs
    "textcontacts": "gisgate.sources.textcontacts",  # TEXTCONTACT chats / e-mails (§3.5) + .txt bodies
    "gis": "gisgate.sources.gisfiles",  # produced GIS files read back (for reports)
    "talkdesk": "gisgate.sources.talkdesk",
    "linklive": "gisgate.sources.linklive",
    "livevox": "gisgate.sources.livevox",
    "cwfm": "gisgate.sources.cwfm",
}


def get(name: str) -> ModuleType:
    if name not in SOURCES:
        raise ConfigError(f"unknown input format {name!r}; known formats: auto, {', '.join(sorted(SOURCES))}")
    return importlib.import_module(SOURCES[name])


def detect(path: Path) -> str:
    """The name of the one format whose `detect` accepts `path`; an error when none or several do."""
    h = head(path)
    hits = [name for name in SOURCES if get(name).detect(h)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise InputError(
            f"cannot tell the input format from its columns/keys {sorted(h.keys)[:12]}; "
            f"pass --from with one of: {', '.join(sorted(SOURCES))}",
            str(path),
        )
    raise InputError(f"input matches several formats {hits}; pass --from to choose", str(path))


__all__ = ["SOURCES", "Head", "detect", "get"]
