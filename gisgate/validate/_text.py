"""The bytes-level checks every produced text file gets: no byte-order mark, valid UTF-8."""

from __future__ import annotations

from pathlib import Path

from gisgate.errors import Problem

BOM = b"\xef\xbb\xbf"


def utf8_text(path: Path) -> tuple[str | None, list[Problem]]:
    """The file's text (BOM removed) and its problems; text is None when it is not UTF-8."""
    file = str(path)
    raw = path.read_bytes()
    problems = []
    if raw.startswith(BOM):
        problems.append(Problem(file, 1, "", "starts with a UTF-8 byte-order mark; write UTF-8 without BOM"))
        raw = raw[len(BOM):]
    try:
        return raw.decode("utf-8"), problems
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        return None, [*problems, Problem(file, line, "", f"not valid UTF-8 (byte {e.start})")]
