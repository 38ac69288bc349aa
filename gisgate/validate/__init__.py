"""Checkers for produced files, used by `gisgate validate` and the tests.

Each checker module has `check(path, ...) -> list[Problem]`; which one runs is the file's kind as
`produced.kind_of` tells it (the one classifier of produced files). A name that is nearly one of
ours (wrong case, a GIS extension on a bad name) is checked as what it was meant to be, so the
problem is named exactly.
"""

from __future__ import annotations

from pathlib import Path

from gisgate.config import check_zone
from gisgate.errors import ConfigError, Problem
from gisgate.produced import kind_of, referenced_files
from gisgate.validate import bodies, contact, gis, whit


def validate(paths: list[Path], tz: str | None = None, interval: int = 15) -> list[Problem]:
    """Every problem of every file; an empty list means all files are valid. A bad `tz`: ConfigError."""
    if tz is not None:
        try:
            check_zone(tz)
        except ValueError as e:
            raise ConfigError(f"--tz: {e}") from None
    problems: list[Problem] = []
    # Media and .txt bodies a CONTACT / TEXTCONTACT file references are checked with that file.
    kinds = {p: _meant(p) if p.is_file() else "missing" for p in paths}
    attached = {(p.parent / m).resolve() for p, k in kinds.items() if k in ("contact", "textcontact")
                for m in referenced_files(p) if "/" not in m and "\\" not in m}
    for path in paths:
        kind = kinds[path]
        if path.resolve() in attached:
            continue
        if kind == "missing":
            problems.append(Problem(str(path), 0, "", "no such file"))
        elif kind == "gis":
            problems += gis.check(path, tz, interval)
        elif kind == "whit":
            problems += whit.check(path, interval)
        elif kind in ("contact", "textcontact"):
            problems += contact.check(path)
        elif kind in ("rtstate", "cwfm"):
            problems += bodies.check(path, kind)
        else:
            problems.append(Problem(str(path), 0, "", "not a GIS file name, not a CONTACT / TEXTCONTACT "
                                                      "file or media they reference, not a WHIT CSV "
                                                      "(no serviceNumber/period columns), and not an "
                                                      "rtstate-*.json / cwfm-*.json body"))
    return problems


def _meant(path: Path) -> str:
    """The file's kind, or the kind its name nearly has (then its check names what is wrong)."""
    kind = kind_of(path)
    if kind != "unknown":
        return kind
    name = path.name.upper()
    if path.suffix in (".AGENT", ".SERVICE"):
        return "gis"
    if name.startswith("TEXTCONTACT.") and name.endswith((".CSV", ".JSON")):
        return "textcontact"
    if name.startswith("CONTACT.") and name.endswith(".CSV"):
        return "contact"
    return kind


def expand(paths: list[Path]) -> list[Path]:
    """Folders stand for the files directly inside them (sorted), hidden files excluded."""
    out = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        else:
            out.append(p)
    return out
