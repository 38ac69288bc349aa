"""STATE_EVENTS → state spans → per agent × interval state seconds (domain-spec §1.9, §5.7).

A span lasts from an agent's event until the agent's next event. Exact duplicate events are
dropped; events are ordered per agent by time (ties broken by the other columns, so the result
never depends on input order). The last span of each agent ends at the export's end (`until`),
never later; a span longer than `max_span_hours` is cut there and reported, because an agent who
stays Ready for a whole weekend is a missing logout, not a worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import polars as pl

from gisgate import model
from gisgate.transform.clock import utc_residue
from gisgate.transform.split import US, seconds, split

IN_SESSION = ["NOT_READY", "READY", "TALKING", "WORK_NOT_READY", "WORK_READY", "HOLD", "RESERVED"]
HANDLING = ["TALKING", "WORK_NOT_READY", "WORK_READY", "HOLD"]
RANK = {s: i for i, s in enumerate(model.STATES)}  # 8 states: fits in 3 bits
SUMS = ("ready_s", "not_ready_s", "in_session_s", "reserved_s", "handling_s")  # per agent × interval


def spans(events: pl.DataFrame | pl.LazyFrame, until: datetime, max_span_hours: float) -> tuple[pl.LazyFrame, int]:
    """Spans (agent_id, state, reason, start, end) and how many were cut at `max_span_hours`."""
    limit = int(max_span_hours * 3600 * US)
    keys = ["agent_id", "at", "state", "reason", "raw_state"]
    frame = events.lazy().select(keys).collect()
    # Sort by an integer code of the agent (its order only groups an agent's events together), then
    # time and state. Only when events of one agent share time and state are reason and raw text
    # added as tie-breaks, so the result never depends on input order.
    frame = (
        frame.with_columns(
            pl.col("agent_id").cast(pl.Categorical).to_physical().alias("_a"),
            # time and state in one integer key (µs × 8 + state rank): two integer keys sort fastest
            pl.col("state").replace_strict(RANK, default=7, return_dtype=pl.UInt8).alias("_s"),
        )
        .with_columns((pl.col("at").dt.epoch("us") * 8 + pl.col("_s").cast(pl.Int64)).alias("_t"))
    )
    frame = sort_packed(frame, [pl.col("_a"), pl.col("_t")])
    tied = pl.all_horizontal(pl.col(k).eq_missing(pl.col(k).shift(1)) for k in ("_a", "_t"))
    if frame.select(tied.any()).item():
        frame = frame.sort("_a", "_t", "reason", "raw_state", nulls_last=True)
        # exact duplicates are neighbours once sorted: cheaper than hashing every row
        same = pl.all_horizontal(pl.col(k).eq_missing(pl.col(k).shift(1)) for k in keys)
        frame = frame.filter(~same.fill_null(False))
    agent_changes = pl.col("_a").ne_missing(pl.col("_a").shift(-1))
    frame = (
        frame.with_columns(pl.when(agent_changes).then(None).otherwise(pl.col("at").shift(-1)).alias("end"))
        .with_columns(pl.min_horizontal(pl.col("end").fill_null(until), pl.lit(until)).alias("end"))
        .rename({"at": "start"})
        .filter(pl.col("end") > pl.col("start"))
    )
    too_long = (pl.col("end") - pl.col("start")).dt.total_microseconds() > limit
    cut = frame.select(too_long.sum()).item()
    frame = frame.with_columns(
        pl.when(too_long).then(pl.col("start") + pl.duration(microseconds=limit)).otherwise(pl.col("end")).alias("end")
    )
    return frame.lazy(), int(cut or 0)


def sort_packed(frame: pl.DataFrame, keys: list[pl.Expr]) -> pl.DataFrame:
    """`frame` sorted by the integer `keys` (most significant first), stable.

    When the keys' ranges fit in 63 bits together (weeks of microseconds and thousands of agents
    do), they are packed into one integer: a one-key sort is several times faster than a many-key
    one. Otherwise the keys are sorted as they are.
    """
    if frame.height < 2:
        return frame
    names = [f"_sort{i}" for i in range(len(keys))]
    keyed = frame.with_columns(k.cast(pl.Int64).alias(n) for k, n in zip(keys, names, strict=True))
    bounds = keyed.select(*[pl.col(n).min().alias(f"lo{n}") for n in names],
                          *[pl.col(n).max().alias(f"hi{n}") for n in names]).row(0)
    lows, highs = bounds[:len(names)], bounds[len(names):]
    if None in lows:  # a key that is all null: nothing to pack
        return keyed.sort(names, maintain_order=True).drop(names)
    bits = [max(hi - lo, 1).bit_length() for lo, hi in zip(lows, highs, strict=True)]
    if sum(bits) > 63:
        return keyed.sort(names, maintain_order=True).drop(names)
    packed, shift = pl.lit(0, pl.Int64), sum(bits)
    for name, low, width in zip(names, lows, bits, strict=True):
        shift -= width
        packed = packed + (pl.col(name) - low) * 2**shift
    return keyed.sort(packed, maintain_order=True).drop(names)


def state_seconds(
    events: pl.DataFrame | pl.LazyFrame, tz: str, minutes: int, until: datetime, max_span_hours: float = 12.0
) -> tuple[pl.DataFrame, list[str]]:
    """Per agent × interval: ready_s, not_ready_s, in_session_s, reserved_s, handling_s, sorted by
    interval start and agent ID (`sort_by_agent`'s order).

    Only intervals where the agent was in session (any state but LOGOUT) get a row.

    The spans are those of `spans`, built from integer codes alone (see `_sorted_codes`), a few
    agents at a time (`_runs`): an agent's spans and intervals depend on its own events only, and
    the pieces of millions of spans would otherwise all be in memory at once.
    """
    names, pairs = _sorted_codes(events)
    epoch = datetime(1970, 1, 1, tzinfo=UTC if until.tzinfo else None)
    until_us = (until - epoch) // timedelta(microseconds=1)  # (exact: no float on the way)
    limit = int(max_span_hours * 3600 * US)
    parts, cut = [], 0
    for a, t in pairs:
        core, n = _coded_spans(a, t, until_us, limit)
        cut += n
        parts.append(_interval_seconds(core, tz, minutes))
    # agent code `_a` is the rank of its ID in `names`: sorting by codes sorts by IDs, and the IDs
    # are gathered once, in that order (a compact frame's IDs are categorical: strings out)
    grouped = sort_packed(pl.concat(parts), [pl.col("interval_start").dt.epoch("us"), pl.col("_a")])
    agent_id = names["agent_id"].cast(pl.String).gather(grouped["_a"])
    out = grouped.select("interval_start", pl.lit(agent_id).alias("agent_id"), *SUMS)
    warnings = []
    if cut:
        warnings.append(
            f"{cut} state span(s) longer than {max_span_hours:g} h were cut at {max_span_hours:g} h (a missing logout?)"
        )
    return out, warnings


def _interval_seconds(core: pl.DataFrame, tz: str, minutes: int) -> pl.DataFrame:
    """Per agent code × interval (in no order), the seconds of each kind of state, from the spans
    `core` (agent code `_a`, state rank `_s`, start and end in µs).

    When the zone's offset is one constant modulo the interval over the spans (`clock.utc_residue`),
    intervals are whole steps on the UTC clock shifted by it, and the spans are cut in integers.
    Otherwise (Lord Howe's half-hour DST with 30-minute intervals) `split` cuts them on the local
    clock. (A hashed group-by, in no order, is twice as fast as one keeping the pieces' order.)
    """
    p = pl.col("piece_us")
    rank = pl.col("_s")
    kinds = {
        "ready_s": pl.when(rank == RANK["READY"]).then(p).otherwise(0),
        "not_ready_s": pl.when(rank == RANK["NOT_READY"]).then(p).otherwise(0),
        "in_session_s": p,
        "reserved_s": pl.when(rank == RANK["RESERVED"]).then(p).otherwise(0),
        "handling_s": pl.when(rank.is_in([RANK[s] for s in HANDLING])).then(p).otherwise(0),
    }
    bounds = core.select(pl.col("start").min(), pl.col("end").max()).row(0)
    at = datetime(1970, 1, 1, tzinfo=UTC)
    residue = None if None in bounds else utc_residue(tz, minutes, *(at + timedelta(microseconds=b) for b in bounds))
    start, end, iv = pl.col("start"), pl.col("end"), pl.col("interval_start")
    if residue is None:
        pieces = split(core.with_columns(start.cast(model.UTC_TIME), end.cast(model.UTC_TIME)), "start", "end", tz,
                       minutes)
    else:
        step, c = minutes * 60 * US, residue * 60 * US
        number = (start + c) // step  # of the interval a span begins in; it touches `_more` after it
        pieces = (
            core.lazy()
            .with_columns((number * step - c).alias("_first"), ((end - 1 + c) // step - number).alias("_more"))
            .with_columns(pl.int_ranges(0, pl.col("_more") + 1, dtype=pl.Int64).alias("_k"))
            .explode("_k")
            .with_columns((pl.col("_first") + pl.col("_k") * step).alias("interval_start"))
            .select("_a", "_s", "interval_start",
                    (pl.min_horizontal(end, iv + step) - pl.max_horizontal(start, iv)).alias("piece_us"))
        )
    return (
        pieces.group_by("_a", "interval_start")
        .agg(e.sum().alias(name) for name, e in kinds.items())
        .with_columns(*[seconds(pl.col(c)) for c in SUMS], iv.cast(model.UTC_TIME))
        .collect()
    )


CHUNK = 1 << 18  # events per round of span → interval work: its temporaries stay a few MB


def _sorted_codes(events: pl.DataFrame | pl.LazyFrame) -> tuple[pl.DataFrame, Iterator[tuple[pl.Series, pl.Series]]]:
    """The agent ID of each agent code `_a`, and the events as (agent code, µs × 8 + state rank)
    pairs sorted by both, in runs of about `CHUNK` events that never split an agent.

    The few distinct IDs get a code each: their rank (so that codes sort as IDs do). When
    both ranges fit in 63 bits together (thousands of agents and weeks of µs × 8 do), each event is
    one packed integer: one plain integer sort, no row of texts gathered, and the runs are decoded
    one at a time. Events of one agent that tie on time and state differ at most in reason or raw
    text, which no second counts: all but the last of them last no time at all (as exact duplicates
    do), so no tie-break is needed.
    """
    frame = events.lazy().select("agent_id", "at", "state").collect()
    names = (
        frame.select(pl.col("agent_id").unique())
        .sort(pl.col("agent_id").cast(pl.String), nulls_last=True)
        .with_row_index("_a")
        .with_columns(pl.col("_a").cast(pl.Int64))
    )
    null_code = names.filter(pl.col("agent_id").is_null())["_a"]  # (a missing ID is one agent, as before)
    a = _lookup(frame, "agent_id", names["agent_id"].drop_nulls(), names.drop_nulls()["_a"],
                null_code[0] if null_code.len() else None)
    rank = _lookup(frame, "state", pl.Series(list(RANK)), pl.Series(list(RANK.values())), 7)
    t = pl.col("at").dt.epoch("us") * 8 + rank
    # bounds of t from those of the times (so that no column of t is made to find them)
    us = pl.col("at").dt.epoch("us")
    lo_t, hi_t, nulls = frame.select((us.min() * 8).alias("lo"), (us.max() * 8 + 7).alias("hi"),
                                     us.null_count().alias("n")).row(0)
    bits = max((hi_t or 0) - (lo_t or 0), 1).bit_length()
    if frame.height < 2 or nulls or max(names.height - 1, 1).bit_length() + bits > 63:
        pairs = frame.select(a.alias("a"), t.alias("t")).sort("a", "t", nulls_last=False)
        del frame
        sa, st = pairs["a"], pairs["t"]
        return names, _runs(sa.len(), lambda i: sa[i], lambda agent: sa.search_sorted(agent),
                            lambda i, n: (sa.slice(i, n), st.slice(i, n)))
    # packed a slice at a time: the whole columns of the expression's steps are never all alive
    packed = pl.concat([frame.slice(i, CHUNK).select((a * 2**bits + (t - lo_t)).alias("p"))["p"]
                        for i in range(0, frame.height, CHUNK)])
    del frame
    packed = packed.sort()
    return names, _runs(packed.len(), lambda i: packed[i] >> bits, lambda agent: packed.search_sorted(agent << bits),
                        lambda i, n: (packed.slice(i, n) // 2**bits, packed.slice(i, n) % 2**bits + lo_t))


def _lookup(frame: pl.DataFrame, column: str, keys: pl.Series, codes: pl.Series, default: int | None) -> pl.Expr:
    """`column`'s values through `keys` → `codes` (Int64; `default` for any other value, null too).
    A categorical column is looked up by its categories' codes in an array: no text is hashed,
    five times faster on millions of rows."""
    dtype = frame.schema[column]
    if not isinstance(dtype, pl.Categorical):
        return pl.col(column).replace_strict(keys, codes, default=default, return_dtype=pl.Int64)
    physical = keys.cast(dtype).to_physical()
    size = max(frame[column].to_physical().max() or 0, physical.max() or 0) + 1
    table = pl.repeat(default, size, dtype=pl.Int64, eager=True).scatter(physical, codes.cast(pl.Int64))
    found = pl.lit(table).gather(pl.col(column).to_physical())
    return found if default is None else found.fill_null(default)


def _runs(height: int, agent_at, first_row_of, take) -> Iterator[tuple[pl.Series, pl.Series]]:
    """`take(i, n)` for runs of rows of about `CHUNK`, cut where an agent's rows begin (rows are
    sorted by agent code: `agent_at(row)`, `first_row_of(agent)`). At least one run, maybe empty."""
    i, last = 0, agent_at(height - 1) if height else None
    while True:
        agent = agent_at(i + CHUNK - 1) if i + CHUNK < height else last
        j = height if agent == last else first_row_of(agent + 1)
        yield take(i, j - i)
        if j >= height:
            return
        i = j


def _coded_spans(a: pl.Series, t: pl.Series, until_us: int, limit: int) -> tuple[pl.DataFrame, int]:
    """The in-session spans of sorted events (agent code `a`, µs × 8 + state rank `t`) as (agent code
    `_a`, state rank `_s`, start, end in µs), and how many were cut at `limit` µs: a span lasts until the
    agent's next event, the last one until `until_us`."""
    start = t // 8
    same_agent = a.eq_missing(a.shift(-1))
    spans_ = (
        pl.DataFrame({"_a": a, "_s": (t % 8).cast(pl.UInt8), "start": start})
        .with_columns(
            pl.when(same_agent).then(pl.min_horizontal(start.shift(-1), pl.lit(until_us))).otherwise(pl.lit(until_us))
            .alias("end")
        )
        .filter(pl.col("end") > pl.col("start"))
    )
    too_long = (pl.col("end") - pl.col("start")) > limit
    cut = spans_.select(too_long.sum()).item()
    core = spans_.filter(pl.col("_s") != RANK["LOGOUT"]).select(
        "_a", "_s", "start", pl.when(too_long).then(pl.col("start") + limit).otherwise(pl.col("end")).alias("end"),
    )
    return core, int(cut or 0)


def sort_by_agent(frame: pl.DataFrame, *more: str) -> pl.DataFrame:
    """Sort by interval, agent ID (and the text columns `more`): the few distinct IDs are ranked
    once, so that the big sort compares integers, not strings."""
    ranks = []
    for column in ["agent_id", *more]:
        values = frame[column].unique().sort(nulls_last=True).to_list()
        ranks.append(pl.col(column).replace_strict(values, list(range(len(values))), return_dtype=pl.Int64))
    return sort_packed(frame, [pl.col("interval_start").dt.epoch("us"), *ranks])
