"""Checkers for produced files, used by `gisgate validate` and the tests.

Each checker module has `matches(path) -> bool` and `check(path, ...) -> list[Problem]`; the file
kind is told by name (GIS grammar, `CONTACT.*.csv`, `TEXTCONTACT.csv`, `rtstate-*.json`, `cwfm-*.json`) or
by the column line (WHIT).
"""

from __future__ import annotations

from pathlib import Path

from gisgate.errors import Problem
from gisgate.validate import bodies, contact, gis, whit


def validate(paths: list[Path], tz: str | None = None, interval: int = 15) -> list[Problem]:
    """Every problem of every file; an empty list means all files are valid."""
    problems: list[Problem] = []
    # Media and .txt bodies a CONTACT / TEXTCONTACT file references are checked with that file.
    attached = {m.resolve() for p in paths if p.is_file() and contact.matches(p) for m in contact.referenced(p)}
    for path in paths:
        if path.resolve() in attached:
            continue
        if not path.is_file():
            problems.append(Problem(str(path), 0, "", "no such file"))
        elif gis.matches(path) or path.suffix in (".AGENT", ".SERVICE"):
            problems += gis.check(path, tz, interval)
        elif whit.matches(path):
            problems += whit.check(path, interval)
        elif contact.matches(path):
            problems += contact.check(path)
        elif bodies.matches(path):
            problems += bodies.check(path)
        else:
            problems.append(Problem(str(path), 0, "", "not a GIS file name, not a CONTACT / TEXTCONTACT "
                                                      "file or media they reference, not a WHIT CSV "
                                                      "(no serviceNumber/period columns), and not an "
                                                      "rtstate-*.json / cwfm-*.json body"))
    return problems


def expand(paths: list[Path]) -> list[Path]:
    """Folders stand for the files directly inside them (sorted), hidden files excluded."""
    out = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        else:
            out.append(p)
    return out
