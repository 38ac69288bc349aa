"""What bulk contact sources share: sorting an upload into data files and media, finding the media
(given as inputs, inside ZIPs, or lying beside the data file), renaming columns, parsing instants.

An upload is the list of input paths: one or more data files (`.csv`, `.json`, `.ndjson`) plus
media (`.wav`, `.opus`, `.txt` bodies, …) and ZIP containers of media. When no media or ZIP is
given, the files beside each data file are the media (that is how a Data Server folder looks).
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from gisgate.config import ConvertOptions
from gisgate.errors import ConfigError, InputError, Problem
from gisgate.model import Media
from gisgate.sources import _zip

DATA_SUFFIXES = (".csv", ".json", ".ndjson", ".jsonl")
_DIGITS = re.compile(r"^\d{1,18}$")


@dataclass(frozen=True)
class Member:
    """A data file inside a ZIP upload, standing in for a Path where the readers need one
    (they only call `read_bytes()` and use `name`, `suffix` and `str()`)."""

    zip: Path
    info: zipfile.ZipInfo

    @property
    def name(self) -> str:
        return re.split(r"[\\/]", self.info.filename)[-1]

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix

    def read_bytes(self) -> bytes:
        return _zip.read_member(self.zip, self.info)

    def __str__(self) -> str:
        return f"{self.zip}!{self.info.filename}"


def split_inputs(paths: list[Path], options: ConvertOptions) -> tuple[list, list[Path], list[Path]]:
    """(data files, ZIP containers, media files) among the inputs, each in the given order.

    When no data file is given, the data files inside the ZIPs are used (a single-ZIP upload).
    """
    data: list = [p for p in paths if p.suffix.lower() in DATA_SUFFIXES]
    zips = [p for p in paths if p.suffix.lower() == ".zip"]
    media = [p for p in paths if p not in data and p not in zips]
    if not data:
        data = [Member(z, info) for z in zips for name, info in sorted(_zip.members(z, limits(options)).items())
                if name.lower().endswith(DATA_SUFFIXES)]
    if not data:
        raise InputError(
            f"no contact data file among the inputs (a {', '.join(DATA_SUFFIXES)} file listing the contacts)",
            ", ".join(str(p) for p in paths),
        )
    return data, zips, media


def _file_media(path: Path) -> Media:
    def load() -> bytes:
        try:
            return path.read_bytes()
        except OSError as e:  # removed or unreadable since the upload was read
            raise InputError(f"cannot read media file: {e.strerror}", str(path)) from e

    return Media(path.name, path.stat().st_size, str(path), load)


def limits(options: ConvertOptions) -> _zip.Limits:
    c = options.contacts
    return _zip.Limits(max_bytes=c.zip_max_bytes, max_ratio=c.zip_max_ratio, max_members=c.zip_max_members)


def collect_media(data: list, zips: list[Path], files: list[Path], options: ConvertOptions,
                  suffixes: tuple[str, ...]) -> dict[str, Media]:
    """Every media file of the upload by key (flattened file name).

    Explicit: the media and ZIP inputs. Otherwise: the files with one of `suffixes` beside the data
    files. Two media with the same key (compared case-insensitively) are refused.
    """
    found: dict[str, Media] = {}
    folded: dict[str, str] = {}  # casefolded key -> key: names must differ on Windows too
    problems: list[Problem] = []

    def add(m: Media) -> None:
        clash = folded.get(m.name.casefold())
        if clash is not None:
            problems.append(Problem(m.origin, 0, "", f"same media file name as {found[clash].origin}"))
        else:
            found[m.name] = m
            folded[m.name.casefold()] = m.name

    for z in zips:
        for name, info in sorted(_zip.members(z, limits(options)).items()):
            if name.lower().endswith(DATA_SUFFIXES):
                if not any(isinstance(d, Member) and (d.zip, d.info.filename) == (z, info.filename) for d in data):
                    problems.append(Problem(str(z), 0, info.filename, "a data file inside a ZIP is read only "
                                                                      "when no data file is given as an input"))
                continue
            add(Media(name, info.file_size, f"{z}!{info.filename}",
                      lambda z=z, info=info: _zip.read_member(z, info)))
    for f in files:
        if not f.is_file():
            problems.append(Problem(str(f), 0, "", "media file not found"))
        else:
            add(_file_media(f))
    if not (zips or files):
        seen: set[Path] = set()
        for d in sorted({p.resolve().parent for p in data if isinstance(p, Path)}):
            for entry in sorted(os.scandir(d), key=lambda e: e.name):
                p = Path(entry.path)
                if entry.is_file() and p.suffix.lower() in suffixes and p not in seen:
                    seen.add(p)
                    add(_file_media(p))
    if problems:
        raise InputError(problems)
    return found


def beside(data: list, names: set[str], found: dict[str, Media]) -> dict[str, Media]:
    """Referenced files lying beside a data file that `collect_media` skipped (any extension).

    Only for uploads without explicit media: a wrongly typed file (`a.mp3`) is then reported for
    its type rather than as missing.
    """
    extra: dict[str, Media] = {}
    known = {k.casefold() for k in found}
    for d in sorted({p.resolve().parent for p in data if isinstance(p, Path)}):
        for name in sorted(names):
            p = d / name
            if name.casefold() not in known and name not in extra and Path(name).name == name and p.is_file():
                extra[name] = _file_media(p)
    return extra


def rename(frame: pl.DataFrame, fields: list[str], aliases: dict[str, str], mapping: dict[str, str],
           where: str, keep_prefix: str | None = None) -> tuple[pl.DataFrame, list[str]]:
    """Columns renamed to field names (exact, case-insensitive, alias, or config mapping); others dropped.

    Returns the frame (with `_line`) and a warning per dropped column.
    """
    lookup = {f.casefold(): f for f in fields} | {a.casefold(): f for a, f in aliases.items()}
    wrong = sorted(t for t in mapping.values() if t not in fields and not (keep_prefix and t.startswith(keep_prefix)))
    if wrong:
        raise ConfigError(f"[contacts] column mapping names unknown field(s) {wrong}; fields: {', '.join(fields)}"
                          + (f", {keep_prefix}<name>" if keep_prefix else ""))
    names: dict[str, str] = {}
    dropped: list[str] = []
    for c in frame.columns:
        if c == "_line":
            continue
        target = mapping.get(c) or lookup.get(c.casefold())
        if target is None and keep_prefix and c.casefold().startswith(keep_prefix.casefold()):
            target = keep_prefix + c[len(keep_prefix):]
        if target is None:
            dropped.append(c)
        elif target in names.values():
            first = next(k for k, v in names.items() if v == target)
            raise InputError([Problem(where, 1, c, f"gives {target} like column {first!r}; keep one of them")])
        else:
            names[c] = target
    frame = frame.select(["_line", *names]).rename(names)
    return frame, [f"column {c!r} is not a known field; ignored (map it in [contacts] columns)" for c in dropped]


def strip(frame: pl.DataFrame) -> pl.DataFrame:
    """Trim spaces and turn blank or null-marker values into null (string columns)."""
    return frame.with_columns(
        pl.when(pl.col(c).str.strip_chars().is_in(["", "None", "null", "NULL", "N/A"]).not_())
        .then(pl.col(c).str.strip_chars()).alias(c)
        for c, t in frame.schema.items() if t == pl.String
    )


def instant(column: str, naive_tz: str) -> tuple[pl.Expr, pl.Expr]:
    """(UTC instant, problem text) for a column holding epoch ms or ISO-8601 (naive = `naive_tz`)."""
    s = pl.col(column)
    digits = s.str.contains(_DIGITS.pattern)
    aware = s.str.to_datetime("%+", strict=False, time_zone="UTC", time_unit="us")
    naive = (s.str.replace(" ", "T").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
             .dt.replace_time_zone(naive_tz, ambiguous="earliest", non_existent="null")
             .dt.convert_time_zone("UTC"))
    from_ms = pl.from_epoch(s.cast(pl.Int64, strict=False), time_unit="ms").dt.replace_time_zone("UTC")
    value = (pl.when(digits).then(from_ms).otherwise(pl.coalesce(aware, naive))).cast(pl.Datetime("us", "UTC"))
    problem = (
        pl.when(s.is_null()).then(None)
        .when(s.str.contains(r"^\d+(\.\d+)?[eE]\+?\d+$"))
        .then(pl.lit("'") + s + pl.lit("' is Excel scientific notation: the milliseconds are lost; "
                                        "export the column as a whole number"))
        .when(value.is_null())
        .then(pl.lit("'") + s + pl.lit("' is neither epoch milliseconds nor an ISO-8601 time"))
    )
    return value, problem


def file_problems(frame: pl.DataFrame, file: str) -> list[Problem]:
    """Problems from a (`_line`, column, reason) frame of one file."""
    return [Problem(file, line, col, reason) for line, col, reason in frame.sort("_line", "column").iter_rows()]


def checks(frame: pl.DataFrame, rules: dict[str, pl.Expr]) -> pl.DataFrame:
    """Evaluate per-column problem expressions; one (`_line`, column, reason) row per problem."""
    empty = pl.DataFrame(schema={"_line": pl.Int64, "column": pl.String, "reason": pl.String})
    if not rules or frame.is_empty():
        return empty
    structs = [pl.struct(pl.lit(c).alias("column"), r.cast(pl.String).alias("reason")) for c, r in rules.items()]
    out = (frame.select(pl.col("_line"), pl.concat_list(structs).alias("p")).explode("p").unnest("p")
           .filter(pl.col("reason").is_not_null()))
    return out.select(empty.columns)
