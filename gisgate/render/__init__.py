"""Rendering: canonical frames → files' names and bytes. Pure: no clock, no file writes.

`RENDERERS` maps each output kind to its module (`get(kind)`), and every renderer module offers the
same four functions: `render(batch, options)` yields the outputs in sending order; `count(batch,
options)` says how many (for a progress bar); `missing(batch)` names what the batch lacks for this
output (None when nothing); `warnings(batch)` what the output cannot carry. Bulk-contact renderers
(`ROWS` names the batch frame they write row for row) also offer `fields(batch)`: the rows as the
import file will hold them, which the row rules in `validate.rows` check before anything is rendered.

File names and header lines come from jinja2 templates (`templates/`, shipped inside the package),
read through one environment built here on purpose: StrictUndefined (a missing value is an error,
never an empty string), no autoescaping, trailing newlines kept. Data lines are built by polars
expressions (`number`), because a Python loop per row would be the slowest part of a conversion.
"""

from __future__ import annotations

import functools
import importlib
import math
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import jinja2
import polars as pl

from gisgate.errors import ConfigError

RENDERERS = {
    "gis": "gisgate.render.gis",
    "whit": "gisgate.render.whit",
    "contact": "gisgate.render.contact",
    "textcontact": "gisgate.render.textcontact",
    "cwfm": "gisgate.render.cwfm",
    "rtstate": "gisgate.render.rtstate",
}
DECIMALS = {"count": 3, "seconds": 3, "percent": 2}
NEWLINES = {"crlf": "\r\n", "lf": "\n"}


def get(kind: str) -> ModuleType:
    """The renderer module of output `kind`."""
    if kind not in RENDERERS:
        raise ConfigError(f"unknown output {kind!r}; known outputs: {', '.join(RENDERERS)}")
    return importlib.import_module(RENDERERS[kind])


def templates_dir() -> Path:
    """`gisgate/templates` in an installed wheel; the repository's `templates/` in a checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"gisgate templates not found next to {here}")


def tzoffset(offset: timedelta) -> str:
    """`-0400`, `+0530`, `+0000` for the header's TZOFFSET."""
    minutes = int(offset.total_seconds()) // 60
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


FILTERS = {"tzoffset": tzoffset,
           "fmt": lambda value, pattern: value.strftime(pattern)}


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        newline_sequence="\n",  # templates are normalised to \n; callers choose CRLF or LF for files
        auto_reload=False,  # templates ship with the package; no stat() per rendered file name
    )
    env.filters.update(FILTERS)
    return env


def render_template(name: str, **context) -> str:
    return environment().get_template(name).render(**context)


def number(expr: pl.Expr, decimals: int, top: float = math.inf) -> pl.Expr:
    """A non-negative float as plain decimal text: no exponent, no grouping, no trailing zeros.

    `12.0` → `12`, `734.5` → `734.5`, `0.1 + 0.2` → `0.3`, `1e-7` → `0`. Rounds half away from
    zero at `decimals`. Only called on validated values (finite, ≥ 0). `top`, when the caller
    knows the largest value, spares the branches that only large values need.
    """
    rounded = expr.round(decimals, mode="half_away_from_zero")
    # Rounding scales by 10**decimals, which is exact only while the scaled value fits in a
    # double's 53-bit mantissa; a larger double has no digits left at that place to round.
    exact = 2**53 / 10**decimals
    if top >= exact:
        rounded = pl.when(expr < exact).then(rounded).otherwise(expr)
    rounded = rounded.abs()  # values are >= 0, but an input "-0" is -0.0, which would print as "-0"
    text = rounded.cast(pl.String).str.strip_suffix(".0")
    if top < 1e15:
        return text
    # From 1e15 polars would print exponent notation; a double that large shows no decimals (as
    # before): print its whole part, exactly.
    whole = rounded.round(0, mode="half_away_from_zero").cast(pl.Decimal(38, 0)).cast(pl.String)
    return pl.when(rounded >= 1e15).then(whole).otherwise(text)
