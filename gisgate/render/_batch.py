"""What the CONTACT and TEXTCONTACT renderers share: batch names, per-batch file names for media,
and splitting rows into good and rejected ones.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime

import polars as pl

from gisgate.config import ConvertOptions
from gisgate.model import Batch, Media

MAX_KEY = 128  # §3.1: recording keys are at most 128 characters


def batch_id(strings: pl.DataFrame, media: dict[str, Media], first: datetime | None,
             options: ConvertOptions, default_source: str) -> str:
    """`gisgate-<source>-<first contact start, UTC>-<digest>`, or `[contacts] batch` when set.

    Deterministic: the same rows and media give the same name, so a re-run stages the same files
    (no clock is read). The digest covers every rendered value and every media file's name and size.
    """
    if options.contacts.batch:
        return options.contacts.batch
    h = hashlib.sha256(strings.write_csv().encode("utf-8"))
    for key in sorted(media):
        h.update(f"\n{key}\t{media[key].size}".encode())
    source = options.source if options.source not in ("auto", "") else default_source
    stamp = f"{first:%Y%m%d%H%M%S}-" if first is not None else ""
    return f"gisgate-{source}-{stamp}{h.hexdigest()[:10]}"


def rename_media(keys: list[str], batch: str) -> dict[str, str]:
    """Original key -> `<batch>-<key>`, unique within the batch, safe on any file system, ≤ 128 chars.

    Characters other than letters, digits, `.`, `_` and `-` become `_`; a name that would collide
    (case-insensitively) or be too long becomes `<batch>-<n>.<ext>`.
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for n, key in enumerate(sorted(set(keys)), start=1):
        name = f"{batch}-{re.sub(r'[^A-Za-z0-9._-]', '_', key)}"
        if len(name) > MAX_KEY or name.casefold() in taken:
            ext = key.rsplit(".", 1)[-1] if "." in key else "bin"
            name = f"{batch}-{n:05d}.{ext}"
        taken.add(name.casefold())
        out[key] = name
    return out


def drop_empty(frame: pl.DataFrame, keep: list[str]) -> pl.DataFrame:
    """Drop optional columns no row has a value in (the CONTACT column set is variable, §3.2)."""
    counts = frame.select(pl.all().is_not_null().sum()).row(0, named=True) if not frame.is_empty() else {}
    return frame.select([c for c in frame.columns if c in keep or c.startswith("_") or counts.get(c, 0) > 0])


def row_output(rows: str, absent: str) -> tuple[Callable, Callable, Callable]:
    """`count`, `missing` and `warnings` of a bulk-contact renderer writing the batch frame `rows`."""

    def count(batch: Batch, options: ConvertOptions) -> int:
        return 1 + len(batch.media)  # the data file and, at most, every media file or body

    def missing(batch: Batch) -> str | None:
        return absent if getattr(batch, rows) is None else None

    def warnings(batch: Batch) -> list[str]:
        return []

    return count, missing, warnings
