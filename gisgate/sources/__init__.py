"""Input formats: one module per format, each with

    detect(head: Head) -> bool                     does a file look like this format?
    read(paths, options: ConvertOptions) -> Batch  canonical frames (checked with model.check)

and, for the gateway's streams, optionally `RECORDS` (kind → model.Records), `parse(paths, options)
-> (records, warnings)` and `assemble(records, options, warnings) -> Batch`, with `read` the two
together: a source whose batch is not the union of its files' batches (Talkdesk statuses, LiveVox
calls and counters) streams what it parses. Any other source streams its canonical frames
(`model.CANONICAL_RECORDS`); `records` and `assemble` below hide the difference.

Only source modules open input files. The registry is a plain dict; modules load lazily.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import polars as pl

from gisgate import model
from gisgate.config import ConvertOptions
from gisgate.errors import ConfigError, InputError
from gisgate.model import CANONICAL_RECORDS, Batch, Records
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


def record_kinds(name: str) -> dict[str, Records]:
    """The record kinds source `name` streams."""
    return getattr(get(name), "RECORDS", CANONICAL_RECORDS)


def records(name: str, paths: list[Path], options: ConvertOptions) -> tuple[dict[str, pl.DataFrame], Batch]:
    """What the stream keeps of `paths`: records per kind, and the batch they assemble into (its
    warnings and the interval length it tells)."""
    module = get(name)
    if hasattr(module, "RECORDS"):
        found, warnings = module.parse(paths, options)
        return found, module.assemble(found, options, list(warnings))
    batch = module.read(paths, options)
    # (the stream's store keeps strings: a compact frame's categoricals are cast back)
    return {k: model.strings(getattr(batch, k)) for k in CANONICAL_RECORDS if getattr(batch, k) is not None}, batch


def assemble(name: str, found: dict[str, pl.DataFrame], options: ConvertOptions, told: int | None) -> Batch:
    """The batch of records `found` (every kind of source `name`), as `read` would give it."""
    module = get(name)
    if hasattr(module, "RECORDS"):
        return module.assemble(found, options, [])
    return Batch(**{k: found.get(k) for k in CANONICAL_RECORDS}, source_interval=told)


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
