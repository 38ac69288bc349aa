"""Interval arithmetic on the ACD's local clock.

An interval is identified by its UTC start instant. Its boundaries are on the local clock of the
ACD's IANA zone, so in Asia/Kathmandu (+05:45) 10:00 local is 04:15 UTC, and on the fall-back day
in America/New_York there are two different 01:00 intervals (05:00Z and 06:00Z).
"""

from __future__ import annotations

import polars as pl


def local_minute_of_day(utc: pl.Expr, tz: str) -> pl.Expr:
    local = utc.dt.convert_time_zone(tz)
    return local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute().cast(pl.Int32)


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


def is_aligned(utc: pl.Expr, tz: str, minutes: int) -> pl.Expr:
    """True where the instant is exactly on a local-clock interval boundary."""
    return floor_local(utc, tz, minutes) == utc
