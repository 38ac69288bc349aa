"""The ACD's clock: every rule about local-clock intervals, in one place.

An interval is identified by its UTC start instant. Its boundaries are on the local clock of the
ACD's IANA zone, so in Asia/Kathmandu (+05:45) 10:00 local is 04:15 UTC, and on the fall-back day
in America/New_York there are two different 01:00 intervals (05:00Z and 06:00Z).

    floor_local(expr, tz, minutes)       the UTC start of the local interval holding each instant
    floor_for(tz, minutes, first, last)  the same, as a plain UTC truncation where the zone allows
    utc_residue(tz, minutes, first, last) the constant that truncation shifts by, when there is one
    is_aligned / misaligned(...)         whether starts are on a local boundary (and the row rule)
    offset_warning(texts, tz, what)      inputs whose own UTC offsets are not the zone's: a wrong --tz?
    grid(first, last, tz, minutes)       every interval start between two instants
    source_interval(...)                 the input's granularity: declared, told, or inferred
    roll_up_from(...)                    whether 15 → 30 minutes is needed (30 → 15 is refused)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from gisgate.errors import ConfigError, InputError
from gisgate.model import UTC_TIME


def floor_local(utc: pl.Expr, tz: str, minutes: int) -> pl.Expr:
    """The UTC start of the local-clock interval containing each instant.

    Subtracting the local minutes past the boundary (rather than flooring the local wall-clock
    time and converting back) keeps the repeated fall-back hour unambiguous: the offset is the
    same for the instant and its interval start, because DST changes happen on the hour (and on
    the half hour in Australia/Lord_Howe), which is always an interval boundary.
    """
    local = utc.dt.convert_time_zone(tz)
    past = (
        (local.dt.minute().cast(pl.Int64) % minutes) * 60_000_000
        + local.dt.second().cast(pl.Int64) * 1_000_000
        + local.dt.microsecond().cast(pl.Int64)
    )
    return utc - pl.duration(microseconds=past)


def floor_for(tz: str, minutes: int, first: datetime | None, last: datetime | None) -> Callable[[pl.Expr], pl.Expr]:
    """`floor_local` for instants between `first` and `last`, as a plain UTC truncation when it can be.

    The local interval start is t − ((t + offset) mod step). When the zone's offset is a multiple of
    15 minutes and the same modulo the interval over the whole range (New York's −4 h/−5 h, Kathmandu's
    +5:45, UTC...), that is truncate(t + c) − c with one constant c (`utc_residue`): no time-zone
    conversion per row. Otherwise (Lord Howe's half-hour DST with 30-minute intervals) the exact
    `floor_local` is used.
    """
    residue = utc_residue(tz, minutes, first, last)
    if residue is None:
        return lambda e: floor_local(e, tz, minutes)
    c = pl.duration(minutes=residue)
    return lambda e: (e + c).dt.truncate(f"{minutes}m") - c


def utc_residue(tz: str, minutes: int, first: datetime | None, last: datetime | None) -> int | None:
    """The zone's UTC offset modulo the interval, in minutes, when it is one constant from `first`
    to `last` (a day's margin each side); None when it is not, or a bound is missing. With it, the
    local interval of an instant t is t − ((t + c) mod step) on the UTC clock."""
    if first is None or last is None:
        return None
    day = timedelta(days=1)  # (whole days: the runs of one conversion ask once)
    return _residue(tz, minutes, first.replace(hour=0, minute=0, second=0, microsecond=0),
                    last.replace(hour=0, minute=0, second=0, microsecond=0) + day)


@functools.lru_cache(maxsize=64)
def _residue(tz: str, minutes: int, first: datetime, last: datetime) -> int | None:
    steps = pl.datetime_range(
        first - timedelta(days=1), last + timedelta(days=1), "15m", time_zone="UTC", eager=True
    ).dt.truncate("15m")
    offsets = (
        steps.dt.convert_time_zone(tz).dt.replace_time_zone(None) - steps.dt.replace_time_zone(None)
    ).dt.total_seconds() // 60
    residues = set((offsets % minutes).unique().to_list())
    if len(residues) != 1 or ((offsets % 15) != 0).any():
        return None
    return int(residues.pop())


def local_minute_of_day(utc: pl.Expr, tz: str) -> pl.Expr:
    local = utc.dt.convert_time_zone(tz)
    return local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute().cast(pl.Int32)


def is_aligned(utc: pl.Expr, tz: str, minutes: int) -> pl.Expr:
    """True where the instant is exactly on a local-clock interval boundary."""
    return floor_local(utc, tz, minutes) == utc


def misaligned(tz: str, minutes: int, shown: str) -> tuple[pl.Expr, str, pl.Expr]:
    """The row rule for `interval_start`: (is wrong, column shown, reason), as the sources' checks take it."""
    start = pl.col("interval_start")
    local = start.dt.convert_time_zone(tz).dt.strftime("%Y-%m-%d %H:%M:%S")
    return (
        ~is_aligned(start, tz, minutes), shown,
        pl.lit("interval start ") + local + pl.lit(f" is not on a {minutes}-minute boundary in {tz}"),
    )


OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})$")  # the UTC offset at the end of an ISO-8601 timestamp


def offset_warning(texts: Iterable[str | None], tz: str, what: str) -> str | None:
    """A warning when timestamps written with a UTC offset carry offsets that `tz` does not have at
    those instants: the input was written on another clock than the ACD zone's (a missing or wrong
    --tz). `texts`: the distinct timestamps as written (a few hundred; plain Python is quicker than
    a frame for so few). Zero offsets (`Z`, `+00:00`) are how UTC is written and say nothing of a
    zone: not compared; nor are texts that are no ISO-8601 timestamp (the source's checks say so)."""
    zone, found, wrong = ZoneInfo(tz), set(), []
    for text in texts:
        m = OFFSET.search(text.strip()) if text else None
        if m is None or m[2] + m[3] == "0000":
            continue
        try:
            instant = datetime.fromisoformat(text.strip())
        except ValueError:
            continue
        given = (-1 if m[1] == "-" else 1) * (int(m[2]) * 60 + int(m[3]))
        have = int(instant.astimezone(zone).utcoffset().total_seconds()) // 60
        found.add(instant)
        if given != have:
            wrong.append((instant, text.strip(), given, have))
    if not wrong:
        return None
    wrong.sort()
    instant, text, _, _ = wrong[0]
    local = instant.astimezone(zone)
    given = ", ".join(_offset_text(m) for m in sorted({w[2] for w in wrong}))
    have = ", ".join(_offset_text(m) for m in sorted({w[3] for w in wrong}))
    clock = ("the outputs use the UTC clock (the default without --tz or [acd] timezone); pass --tz with the ACD's "
             "zone" if tz == "UTC" else f"the outputs use the clock of {tz}; if that is not the ACD's zone, pass "
             "--tz with it")
    return (f"{what}: {len({w[0] for w in wrong})} of {len(found)} timestamps carry UTC offsets ({given}) that {tz} "
            f"does not have at those instants ({have}), e.g. {text} is {local:%Y-%m-%d %H:%M} "
            f"{_offset_text(int(local.utcoffset().total_seconds()) // 60)} in {tz}: {clock}")


def _offset_text(minutes: int) -> str:
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def grid(first: datetime, last: datetime, tz: str, minutes: int) -> pl.DataFrame:
    """Every local-clock interval start from the one holding `first` to the one holding `last`, in order.

    Walked in 15-minute UTC steps (every zone's offset is a multiple of 15 minutes) and kept where a
    step starts an interval on the local clock: a fall-back day has both 01:00 intervals, a
    spring-forward day no 02:00."""
    ends = pl.DataFrame({"t": [first, last]}, schema={"t": UTC_TIME}).select(floor_local(pl.col("t"), tz, minutes))["t"]
    steps = pl.datetime_range(ends[0], ends[1], "15m", eager=True, time_zone="UTC").cast(UTC_TIME)
    return pl.DataFrame({"interval_start": steps}).filter(is_aligned(pl.col("interval_start"), tz, minutes))


def infer_source_interval(frames: list[pl.DataFrame | None], tz: str) -> int | None:
    """15 when any interval starts at local :15 or :45; otherwise None (the data cannot tell).

    Gaps between starts prove nothing (a quiet queue has gaps), so 30-minute input is never
    guessed: it is declared with --source-interval 30.
    """
    # A few hundred distinct starts among millions of rows: test each once (zone lookups are dear).
    parts = [f.select(pl.col("interval_start").unique()) for f in frames if f is not None and not f.is_empty()]
    if not parts:
        return None
    off_half_hour = pl.concat(parts).select((~is_aligned(pl.col("interval_start"), tz, 30)).any()).item()
    return 15 if off_half_hour else None


def source_interval(frames: list[pl.DataFrame | None], tz: str, declared: int | None, told: int | None,
                    output: int, quarter: bool | None = None) -> int:
    """The input's interval length: `--source-interval`, else what the source says, else inferred
    (`quarter`, when the caller knows of rows at :15 / :45 in more data than `frames`), else the
    output's. 30-minute data must start on :00 / :30 local (InputError otherwise)."""
    inferred = infer_source_interval(frames, tz) if quarter is None else (15 if quarter else None)
    source = declared or told or inferred or output
    if source == 30:
        _aligned_to_half_hours(frames, tz)
    return source


def roll_up_from(source: int, output: int) -> bool:
    """True when `source`-minute data must be rolled up to `output` minutes; splitting is refused."""
    if source > output:
        raise ConfigError(
            f"the input has {source}-minute intervals; they cannot be split into {output}-minute "
            f"ones (pass --interval {source}, or re-export the data at {output} minutes)"
        )
    return source < output


def _aligned_to_half_hours(frames: list[pl.DataFrame | None], tz: str) -> None:
    """30-minute data (declared, or written as 30-minute files) must start on :00 / :30 local."""
    starts = [f.select(pl.col("interval_start").unique()) for f in frames if f is not None]
    starts = pl.concat(starts).unique().filter(~is_aligned(pl.col("interval_start"), tz, 30)).sort(
        "interval_start") if starts else None
    if starts is not None and starts.height:
        shown = ", ".join(t.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") for t in starts["interval_start"][:5])
        raise InputError(f"{starts.height} interval start(s) are not on a 30-minute boundary in {tz} ({shown}); "
                         "30-minute data starts at :00 and :30 (for 15-minute input leave out --source-interval 30)")
