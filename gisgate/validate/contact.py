"""Checks of bulk contact import files: `CONTACT.<batch>.csv` and `TEXTCONTACT.csv` / `.json`.

    check(path) -> list[Problem]       every problem, with file:line: field: reason

The same §3.1 / §3.5 row rules as a conversion (`rows.contact_rows`, `rows.text_rows`), plus what
only a finished file can get wrong: the exact name
(upper-case `CONTACT.` prefix), the header, field counts per line, UTF-8, and every referenced
media file or `.txt` body present beside the data file (bodies must be UTF-8 too).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl

from gisgate import model
from gisgate.errors import Problem
from gisgate.produced import TEXTCONTACT_NAMES, is_contact_name
from gisgate.validate import rows
from gisgate.validate._text import utf8_text


def _is_text(path: Path) -> bool:
    return path.name.upper().startswith("TEXTCONTACT")


def check(path: Path) -> list[Problem]:
    """Every problem of one CONTACT or TEXTCONTACT file and of the files it references."""
    where = str(path)
    problems: list[Problem] = []
    if _is_text(path):
        if path.name not in TEXTCONTACT_NAMES:
            problems.append(Problem(where, 0, "", "the Data Server only reads the exact name TEXTCONTACT.csv"))
    elif not is_contact_name(path.name):
        problems.append(Problem(where, 0, "", "the name must start with upper-case 'CONTACT.' and end in '.csv' "
                                              "(the Data Server matches it case-sensitively)"))
    text, found = utf8_text(path)
    problems += found
    if text is None:
        return problems
    if path.suffix.lower() == ".json":
        frame, found = _json_frame(where, text)
    else:
        frame, found = _csv_frame(where, text, model.TEXT_CONTACT_FIELDS if _is_text(path) else None)
    problems += found
    if frame is None:
        return problems
    frame = model.blank_to_null(frame)
    if _is_text(path):
        problems += rows.problems(rows.text_rows(frame), where)
        problems += _bodies(path, frame)
    else:
        available = {p.name for p in path.parent.iterdir() if p.is_file()}
        problems += rows.problems(rows.contact_rows(frame), where)
        problems += rows.problems(rows.missing_media(frame, available), where)
    return sorted(problems)


def _csv_frame(where: str, text: str, text_fields: list[str] | None) -> tuple[pl.DataFrame | None, list[Problem]]:
    """The rows as strings with `_line`; header and field-count problems."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return None, [Problem(where, 0, "", "file is empty")]
    problems = []
    for c in sorted({c for c in header if header.count(c) > 1}):
        problems.append(Problem(where, 1, c, "column appears more than once"))
    known = set(text_fields or model.CONTACT_FIELDS)
    hints = {"TimeZone": "write ClientTimeZone", "Called": "write CalledAddress", "Calling": "write CallingAddress"}
    for c in header:
        if c not in known and (text_fields or not c.startswith(model.METADATA_PREFIX)):
            problems.append(Problem(where, 1, c, f"not a field of this file ({hints.get(c, 'unknown column')})"))
    required = ("textType", "filename", "time", "username") if text_fields else ("AgentId", "Recording1")
    problems += [Problem(where, 1, c, "required column is missing") for c in required if c not in header]
    rows, lines = [], []
    try:
        for row in reader:
            if row == [] or row == [""]:
                problems.append(Problem(where, reader.line_num, "", "empty line"))
            elif len(row) != len(header):
                problems.append(Problem(where, reader.line_num, "",
                                        f"{len(row)} fields, the header has {len(header)}"))
            else:
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as e:
        problems.append(Problem(where, reader.line_num, "", f"not well-formed CSV: {e}"))
    if not rows and not problems:
        problems.append(Problem(where, 0, "", "no contacts: the file has a header only"))
    names = list(dict.fromkeys(header))
    frame = pl.DataFrame([[r[header.index(c)] for c in names] for r in rows], schema=dict.fromkeys(names, pl.String),
                         orient="row")
    return frame.with_columns(pl.Series("_line", lines, pl.Int64)), problems


def _json_frame(where: str, text: str) -> tuple[pl.DataFrame | None, list[Problem]]:
    """TEXTCONTACT.json records as strings (lists checked for shape), `_line` = record number."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        return None, [Problem(where, e.lineno, "", f"not valid JSON: {e.msg}")]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        return None, [Problem(where, 0, "", "expected a JSON array of text-contact objects")]
    problems = []
    for n, r in enumerate(data, start=1):
        for key in ("receiver", "references"):
            if key in r and not (isinstance(r[key], list) and all(isinstance(x, str) for x in r[key])):
                problems.append(Problem(where, n, key, "must be an array of strings"))
        if "metadata" in r and not isinstance(r["metadata"], dict):
            problems.append(Problem(where, n, "metadata", "must be an object of name: value"))
        if "time" in r and not isinstance(r["time"], int):
            problems.append(Problem(where, n, "time", "must be a number (epoch milliseconds)"))
    fields = ("textType", "filename", "time", "username")
    cols = {f: [None if r.get(f) is None else str(r[f]) for r in data] for f in fields}
    frame = pl.DataFrame(cols, schema=dict.fromkeys(fields, pl.String))
    return frame.with_row_index("_line", offset=1).with_columns(pl.col("_line").cast(pl.Int64)), problems


def _bodies(path: Path, frame: pl.DataFrame) -> list[Problem]:
    problems = []
    for line, name in frame.select("_line", "filename").drop_nulls().iter_rows():
        body = path.parent / name
        if "/" in name or "\\" in name or not body.is_file():
            problems.append(Problem(str(path), line, "filename", f"'{name}' is not beside the data file"))
            continue
        try:
            body.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            problems.append(Problem(str(path), line, "filename", f"'{name}' is not valid UTF-8"))
    return problems


validate_file = check  # the name the task brief used
