"""Opening input files: encoding, delimiter, CSV vs JSON. Shared by every source module.

Customer-edited exports arrive with a UTF-8 BOM, in cp1252, with `;` or tabs as delimiter, or as
JSON arrays / NDJSON / objects wrapping a list. These helpers turn all of that into a polars frame
of strings (or typed columns, when the caller gives a schema) plus the line number of each row.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from gisgate.errors import InputError, Problem

DELIMITERS = [",", ";", "\t", "|"]
LINE = "_line"  # column added to every frame read from a file: the row's physical line number
HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Head:
    """What the first bytes of a file say about it, for format detection."""

    path: Path
    kind: str  # csv | json
    keys: frozenset[str]  # CSV column names, or the keys of the first JSON record
    wrapper: frozenset[str] = field(default_factory=frozenset)  # top-level keys of a JSON object
    delimiter: str = ","


def _decode_head(raw: bytes) -> str:
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start > len(raw) - 4:  # cut in the middle of a multi-byte character
            return raw[: e.start].decode("utf-8")
        return raw.decode("cp1252", errors="replace")


def sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits the header line into the most fields (comma wins ties)."""
    return max(DELIMITERS, key=lambda d: (header_line.count(d), d == ","))


def head(path: Path) -> Head:
    try:
        with open(path, "rb") as f:
            raw = f.read(HEAD_BYTES)
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", str(path)) from e
    text = _decode_head(raw).lstrip()
    if not text:
        raise InputError("file is empty", str(path))
    if text[0] in "[{":
        keys, wrapper = _json_head(path, text)
        return Head(path, "json", frozenset(keys), frozenset(wrapper))
    first = text.splitlines()[0]
    delim = sniff_delimiter(first)
    cols = [c.strip().strip('"').strip() for c in first.split(delim)]
    return Head(path, "csv", frozenset(cols), delimiter=delim)


def _json_head(path: Path, text: str) -> tuple[set[str], set[str]]:
    """Keys of the first record and the wrapper object's keys, from a possibly truncated head."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        first_line = text.splitlines()[0]
        try:  # NDJSON
            data = json.loads(first_line)
            return set(data) if isinstance(data, dict) else set(), set()
        except json.JSONDecodeError:
            data = None
    if data is None:  # a large file cut off by HEAD_BYTES: parse it whole (detection is rare)
        data = load_json(path)
    if isinstance(data, list):
        return (set(data[0]) if data and isinstance(data[0], dict) else set()), set()
    if isinstance(data, dict):
        for v in data.values():
            if isinstance(v, list) and v and isinstance(v[0], dict):
                return set(v[0]), set(data)
        return set(data), set(data)
    return set(), set()


def read_bytes(path: Path) -> tuple[bytes, list[str]]:
    """The file as UTF-8 bytes without BOM, and warnings (cp1252 fallback)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", str(path)) from e
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16").encode("utf-8"), [f"{path}: read as UTF-16"]
    try:
        raw.decode("utf-8")
        return raw, []
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace").encode("utf-8"), [
            f"{path}: not valid UTF-8, read as cp1252 (Windows-1252); save exports as UTF-8 to be sure"
        ]


def read_csv(path: Path, schema: dict[str, pl.DataType] | None = None) -> tuple[pl.DataFrame, list[str]]:
    """A CSV as a frame with a `_line` column. Columns in `schema` get that type, the rest are strings.

    Typed parsing straight from the file is the fast path; the file is only loaded into memory
    when it is not UTF-8 (cp1252 / UTF-16 fallback). When a value does not parse as its type, the
    file is read again as strings so that the caller can say which line and column is wrong.
    """
    source: Path | io.BytesIO = path
    warnings: list[str] = []
    in_memory = not isinstance(path, Path)  # a ZIP member or other object that only offers read_bytes()
    if not in_memory:
        with open(path, "rb") as f:
            first_bytes = f.read(HEAD_BYTES)
        in_memory = first_bytes.startswith((b"\xff\xfe", b"\xfe\xff"))  # UTF-16
    if in_memory:
        data, warnings = read_bytes(path)
        source, first_bytes = io.BytesIO(data), data[:HEAD_BYTES]
    first = _decode_head(first_bytes).splitlines()[0] if first_bytes.strip() else ""
    delim = sniff_delimiter(first)
    header = [c.strip().strip('"').strip() for c in first.split(delim)]
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise InputError([Problem(str(path), 1, c, "column appears more than once") for c in dupes])
    typed = {c: (schema or {}).get(c, pl.String) for c in header}
    text = dict.fromkeys(header, pl.String)
    kw = dict(separator=delim, has_header=True, new_columns=header, raise_if_empty=False,
              truncate_ragged_lines=False, row_index_name=LINE, row_index_offset=2)

    def attempt(overrides) -> pl.DataFrame | None:
        if isinstance(source, io.BytesIO):
            source.seek(0)
        try:
            return pl.read_csv(source, schema_overrides=overrides, **kw)
        except pl.exceptions.ComputeError as e:
            if "utf-8" in str(e).lower() and isinstance(source, Path):
                raise UnicodeError from e
            return None

    try:
        frame = attempt(typed)
    except UnicodeError:
        data, warnings = read_bytes(path)  # not UTF-8: decoded as cp1252, with a warning
        source = io.BytesIO(data)
        frame = attempt(typed)
    if frame is None and schema is not None:
        frame = attempt(text)  # a value that is not a number: let the caller find and name it
    if frame is None:
        data = source.getvalue() if isinstance(source, io.BytesIO) else read_bytes(path)[0]
        raise InputError(_csv_error(path, data, delim), str(path))
    return frame.with_columns(pl.col(LINE).cast(pl.Int64)), warnings


def _csv_error(path: Path, data: bytes, delim: str) -> str:
    """Find the first line whose field count differs from the header's (polars does not say)."""
    lines = data.decode("utf-8", errors="replace").splitlines()
    width = len(lines[0].split(delim)) if lines else 0
    for n, line in enumerate(lines[1:], start=2):
        if line.strip() and '"' not in line and len(line.split(delim)) != width:
            return f"line {n} has {len(line.split(delim))} fields, the header has {width}"
    return "not a well-formed CSV file"


def load_json(path: Path) -> object:
    """Parse a JSON document or NDJSON (one object per line)."""
    data, _ = read_bytes(path)
    text = data.decode("utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        records = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise InputError(
                    [Problem(str(path), e.lineno, "", f"not valid JSON: {e.msg} (column {e.colno})")]
                ) from None
        return records


def json_records(path: Path, wrapper_key: str | None = None) -> list[dict]:
    """The list of records in a JSON file: a top-level array, NDJSON, or `{wrapper_key: [...]}`."""
    data = load_json(path)
    if isinstance(data, dict):
        if wrapper_key is not None and isinstance(data.get(wrapper_key), list):
            data = data[wrapper_key]
        else:
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InputError("expected a JSON array of objects (or one object per line)", str(path))
    return data


def json_frame(records: list[dict]) -> pl.DataFrame:
    """Records as a frame of strings (numbers kept exactly as written), with `_line` = record number.

    JSON has no line numbers per record that survive a parse; `_line` is the 1-based record index.
    """
    keys: dict[str, None] = {}
    for r in records:
        keys.update(dict.fromkeys(r))
    cols = {
        k: [None if (v := r.get(k)) is None else (json.dumps(v) if isinstance(v, (dict, list)) else
            ("true" if v is True else "false" if v is False else str(v))) for r in records]
        for k in keys
    }
    frame = pl.DataFrame(cols, schema=dict.fromkeys(keys, pl.String))
    return frame.with_row_index(LINE, offset=1).with_columns(pl.col(LINE).cast(pl.Int64))


def problems_from(frame: pl.DataFrame, file: str) -> list[Problem]:
    """Turn a frame of (`_line`, column, reason) rows into Problems (sorted by line)."""
    if frame.is_empty():
        return []
    rows = frame.sort(LINE, "column").iter_rows()
    return [Problem(file, line, column, reason) for line, column, reason in rows]


# No interval statistic comes near this (1e12 s is 31,000 years), but an epoch timestamp in
# milliseconds does; below it, rounding to three decimals is exact.
TOO_LARGE = 1e12


def numbers(frame: pl.DataFrame, columns: list[str], file: str) -> tuple[pl.DataFrame, list[Problem]]:
    """Cast `columns` to Float64; every empty, non-numeric, negative, non-finite or too large
    (`TOO_LARGE`) value is a Problem.

    The common case (every value fine) costs one vectorised pass; problem rows are only spelled
    out, cell by cell, for the rows that have one.
    """
    columns = [c for c in columns if c in frame.columns]
    if not columns:
        return frame, []
    nums = {c: pl.col(c) if frame.schema[c] == pl.Float64 else
            pl.col(c).str.strip_chars().cast(pl.Float64, strict=False) for c in columns}
    frame = frame.with_columns([pl.col(c).alias(f"_raw_{c}") for c in columns if frame.schema[c] != pl.Float64])
    frame = frame.with_columns([e.alias(c) for c, e in nums.items()])
    # (`< TOO_LARGE` is false for inf and for NaN, which polars orders above every number)
    ok = pl.all_horizontal([pl.col(c).is_not_null() & (pl.col(c) >= 0) & (pl.col(c) < TOO_LARGE) for c in columns])
    bad_rows = frame.filter(~ok)
    raw = [c for c in frame.columns if c.startswith("_raw_")]
    if bad_rows.is_empty():
        return frame.drop(raw), []
    checks = []
    for c in columns:
        src = pl.col(f"_raw_{c}") if f"_raw_{c}" in raw else pl.col(c)
        shown = src.cast(pl.String).str.strip_suffix(".0")  # a typed read has no text: -1.0 → -1
        num = pl.col(c)
        reason = (
            pl.when(src.is_null()).then(pl.lit("value is empty"))
            .when(num.is_null()).then(pl.lit("not a number: ") + shown)
            .when(~num.is_finite()).then(pl.lit("not a finite number"))
            .when(num < 0).then(pl.lit("negative value ") + shown)
            .when(num >= TOO_LARGE).then(pl.lit("too large: ") + shown
                                         + pl.lit(" (an epoch timestamp or an ID in a number column?)"))
        )
        checks.append(pl.struct(pl.col(LINE), pl.lit(c).alias("column"), reason.alias("reason")))
    bad = (
        bad_rows.select(pl.concat_list(checks).alias("p")).explode("p").unnest("p")
        .filter(pl.col("reason").is_not_null())
    )
    return frame.drop(raw), problems_from(bad, file)
