"""Opening input files: encoding, delimiter, CSV vs JSON. Shared by every source module.

Customer-edited exports arrive with a UTF-8 BOM, in cp1252, with `;` or tabs as delimiter, or as
JSON arrays / NDJSON / objects wrapping a list. These helpers turn all of that into a polars frame
of strings (or typed columns, when the caller gives a schema) plus the line number of each row.
"""

from __future__ import annotations

import csv
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


UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
NOT_TEXT = "not a text file: binary data (a NUL byte); export the data as CSV or JSON"


def utf16(raw: bytes) -> str | None:
    """The UTF-16 codec of `raw` (Excel's "Unicode text" and other Windows exports), or None.

    With a byte-order mark, "utf-16" (the mark tells the byte order); without one, ASCII text in
    UTF-16 shows as a NUL in every other byte, which no UTF-8 or cp1252 text does.
    """
    if raw.startswith(UTF16_BOMS):
        return "utf-16"
    sample = raw[:4096]
    half = len(sample) // 2
    if half < 4:
        return None
    even, odd = sample[0:2 * half:2].count(0), sample[1:2 * half:2].count(0)
    if odd >= 0.9 * half and even <= 0.1 * half:
        return "utf-16-le"
    if even >= 0.9 * half and odd <= 0.1 * half:
        return "utf-16-be"
    return None


def _refuse_binary(raw: bytes, file: str) -> None:
    """Text exports never hold a NUL byte; executables, images, archives and spreadsheets do."""
    at = raw.find(b"\x00")
    if at >= 0:
        line = raw.count(b"\n", 0, at) + 1
        raise InputError([Problem(file, line, "", NOT_TEXT)])


def _decode_head(raw: bytes, file: str = "") -> str:
    """The first bytes of a file as text (the last character may be cut); binary data is refused."""
    codec = utf16(raw)
    if codec is not None:
        return raw[: len(raw) // 2 * 2].decode(codec, errors="replace").removeprefix("\ufeff")
    raw = raw.removeprefix(UTF8_BOM)
    _refuse_binary(raw, file)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start > len(raw) - 4:  # cut in the middle of a multi-byte character
            return raw[: e.start].decode("utf-8")
        return raw.decode("cp1252", errors="replace")


def sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits the header line into the most fields (comma wins ties)."""
    return max(DELIMITERS, key=lambda d: (header_line.count(d), d == ","))


def header_fields(line: str, delimiter: str) -> list[str]:
    """The column names of a CSV header line, quotes removed as a CSV reader removes them."""
    fields = next(csv.reader([line], delimiter=delimiter), [])
    return [c.strip().strip('"').strip() for c in fields] or [""]


def first_char(path: Path) -> str:
    """The first character of a file after blanks and byte-order marks ("" when empty): `[` or `{`
    for JSON."""
    try:
        with open(path, "rb") as f:
            raw = f.read(4096)
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", str(path)) from e
    return _decode_head(raw, str(path)).lstrip(" \t\r\n\ufeff")[:1]


def head(path: Path) -> Head:
    try:
        with open(path, "rb") as f:
            raw = f.read(HEAD_BYTES)
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", str(path)) from e
    text = _decode_head(raw, str(path)).lstrip()
    if not text:
        raise InputError("file is empty", str(path))
    if text[0] in "[{":
        keys, wrapper = _json_head(path, text)
        return Head(path, "json", frozenset(keys), frozenset(wrapper))
    first = text.splitlines()[0]
    delim = sniff_delimiter(first)
    return Head(path, "csv", frozenset(header_fields(first, delim)), delimiter=delim)


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
    """The file as UTF-8 bytes without BOM, and warnings (UTF-16 read, cp1252 fallback).

    Binary data is refused; a file whose lines end in CR alone (classic Mac) gets LF endings."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", str(path)) from e
    return _as_utf8(raw, str(path))


def _as_utf8(raw: bytes, file: str) -> tuple[bytes, list[str]]:
    warnings = []
    codec = utf16(raw)
    if codec is not None:
        try:
            text = raw.decode(codec).removeprefix("\ufeff")
        except UnicodeDecodeError as e:
            line = raw[: e.start].decode(codec, errors="replace").count("\n") + 1
            raise InputError([Problem(file, line, "", f"not valid UTF-16 (byte {e.start}): the file is "
                                                      "damaged or cut off; export it again")]) from None
        raw, warnings = text.encode("utf-8"), [f"{file}: read as UTF-16"]
    raw = raw.removeprefix(UTF8_BOM)
    _refuse_binary(raw, file)
    if b"\r" in raw and b"\n" not in raw:
        raw = raw.replace(b"\r", b"\n")
    try:
        raw.decode("utf-8")
        return raw, warnings
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace").encode("utf-8"), [
            f"{file}: not valid UTF-8, read as cp1252 (Windows-1252); save exports as UTF-8 to be sure"
        ]


def _csv_source(path: Path) -> tuple[Path | io.BytesIO, bytes, list[str]]:
    """What polars reads a CSV from (the file itself, or its bytes decoded in memory), its first
    bytes, and the warnings of decoding it."""
    in_memory = not isinstance(path, Path)  # a ZIP member or other object that only offers read_bytes()
    if not in_memory:
        try:
            with open(path, "rb") as f:
                first_bytes = f.read(HEAD_BYTES)
        except OSError as e:
            raise InputError(f"cannot read: {e.strerror}", str(path)) from e
        # UTF-16, binary, or CR-only line ends: decoded and checked in memory
        in_memory = utf16(first_bytes) is not None or b"\x00" in first_bytes or (
            b"\r" in first_bytes and b"\n" not in first_bytes)
    if in_memory:
        data, warnings = read_bytes(path)
        return io.BytesIO(data), data[:HEAD_BYTES], warnings
    return path, first_bytes, []


def read_csv(path: Path, schema: dict[str, pl.DataType] | None = None) -> tuple[pl.DataFrame, list[str]]:
    """A CSV as a frame with a `_line` column. Columns in `schema` get that type, the rest are strings.

    Typed parsing straight from the file is the fast path; the file is only loaded into memory
    when it is not UTF-8 (cp1252 / UTF-16 fallback) or its lines end in CR alone. When a value does
    not parse as its type, the file is read again as strings so that the caller can say which line
    and column is wrong; a file polars cannot read at all is looked at line by line to say where.
    """
    source, first_bytes, warnings = _csv_source(path)
    if not first_bytes.strip():
        raise InputError("file is empty", str(path))
    first = _decode_head(first_bytes, str(path)).removeprefix("\ufeff").splitlines()[0]
    delim = sniff_delimiter(first)
    header = header_fields(first, delim)
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise InputError([Problem(str(path), 1, c, "column appears more than once") for c in dupes])
    typed = {c: (schema or {}).get(c, pl.String) for c in header}
    text = dict.fromkeys(header, pl.String)
    kw = _reader_options(delim, header)

    def attempt(overrides) -> pl.DataFrame | None:
        if isinstance(source, io.BytesIO):
            source.seek(0)
        try:
            return pl.read_csv(source, schema_overrides=overrides, **kw)
        except pl.exceptions.PolarsError as e:  # not UTF-8, a value of the wrong type, ragged lines, ...
            if "utf-8" in str(e).lower() and isinstance(source, Path):
                raise UnicodeError from e
            return None

    def typed_then_text() -> pl.DataFrame | None:
        frame = attempt(typed)
        if frame is None and schema is not None:
            frame = attempt(text)  # a value that is not a number: let the caller find and name it
        return frame

    try:  # (polars may find a value of the wrong type before a byte that is not UTF-8, or after)
        frame = typed_then_text()
    except UnicodeError:
        data, warnings = read_bytes(path)  # not UTF-8: decoded as cp1252, with a warning
        source = io.BytesIO(data)
        frame = typed_then_text()
    if frame is None:
        data = source.getvalue() if isinstance(source, io.BytesIO) else read_bytes(path)[0]
        raise InputError([_csv_error(str(path), data, delim)])
    return frame.with_columns(pl.col(LINE).cast(pl.Int64)), warnings


def scan_csv(path: Path) -> tuple[pl.LazyFrame, dict[str, str]] | None:
    """A plain CSV file as a lazy frame of strings with a `_line` column, as `read_csv` reads it, for
    a query that keeps compact columns only: collected with the streaming engine, the file's texts
    are never all in memory at once. Beside it, the first record's values by column (empty when
    the file's first bytes hold none whole), for a query that adapts to how the file spells things.

    None when the file needs `read_csv`'s care (not a file on disk, UTF-16, not UTF-8 in its first
    bytes, CR line ends, empty, a column twice). What polars meets while collecting (a byte that is
    not UTF-8 further on, a ragged line) raises a PolarsError: the caller then reads the file with
    `read_csv`, which copes or says where it is wrong.
    """
    if not isinstance(path, Path):
        return None
    source, first_bytes, _ = _csv_source(path)
    if not isinstance(source, Path) or not first_bytes.strip():
        return None
    try:
        lines = first_bytes.removeprefix(UTF8_BOM).decode("utf-8").splitlines()
    except UnicodeDecodeError:  # (or a character cut at the end of the head: rare, and read_csv copes)
        return None
    delim = sniff_delimiter(lines[0])
    header = header_fields(lines[0], delim)
    if len(set(header)) < len(header):
        return None
    record = next(csv.reader(lines[1:2], delimiter=delim), []) if len(lines) > 2 else []  # (a whole line)
    lf = pl.scan_csv(source, infer_schema=False, **_reader_options(delim, header))
    return lf.with_columns(pl.col(LINE).cast(pl.Int64)), dict(zip(header, record, strict=False))


def _reader_options(delim: str, header: list[str]) -> dict:
    """How `read_csv` and `scan_csv` both have polars read a CSV (the scan must read as the read does)."""
    return dict(separator=delim, has_header=True, new_columns=header, raise_if_empty=False,
                truncate_ragged_lines=False, row_index_name=LINE, row_index_offset=2)


def _csv_error(file: str, data: bytes, delim: str) -> Problem:
    """Where a CSV that polars refused goes wrong (polars does not say): the first record whose
    number of fields differs from the header's, or the first quote out of place."""
    text = data.decode("utf-8", errors="replace")
    shown = {",": "comma", ";": "semicolon", "\t": "tab", "|": "|"}[delim]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
    try:
        width = len(next(reader, []))
        for record in reader:
            if record and len(record) != width:
                return Problem(file, reader.line_num, "", f"has {len(record)} fields, the header (line 1) has "
                                                          f"{width} ({shown}-separated); every line needs as many "
                                                          "fields as the header")
    except csv.Error as e:
        return Problem(file, reader.line_num, "", f"not well-formed CSV: {e} (a quote out of place?)")
    for n, line in enumerate(text.splitlines(), start=1):
        if line.count('"') % 2:
            return Problem(file, n, "", "a quote (\") opens a field that does not end on this line")
    return Problem(file, 0, "", f"not a well-formed {shown}-separated CSV file")


def load_json(path: Path) -> object:
    """Parse a JSON document or NDJSON (one object per line)."""
    data, _ = read_bytes(path)
    text = data.decode("utf-8")
    try:
        return json.loads(text)
    except ValueError as e:  # JSONDecodeError, or an integer of more than 4300 digits
        records = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                if isinstance(e, json.JSONDecodeError):
                    raise InputError([Problem(str(path), e.lineno, "", f"not valid JSON: {e.msg} "
                                                                       f"(column {e.colno})")]) from None
                raise InputError(f"not valid JSON: {e}", str(path)) from None
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
