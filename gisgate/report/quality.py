"""The data-quality findings of a report page: gaps, outliers, unknown IDs, rejected rows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

import polars as pl

from gisgate.config import ConvertOptions, Report
from gisgate.errors import Problem

MAX_ROWS = 200  # rows shown per data-quality table (the count is always complete)


def _local_expr(column: str, tz: str) -> pl.Expr:
    return pl.col(column).dt.convert_time_zone(tz).dt.strftime("%Y-%m-%d %H:%M %:z")


@dataclass
class Issue:
    """One data-quality finding: a category with a count and (the first MAX_ROWS of) its rows."""

    key: str
    title: str
    explanation: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    count: int = 0
    checked: bool = True  # False: could not be checked (e.g. no mapping table given)
    more: int = 0  # table rows left out (beyond MAX_ROWS)


def rejected_issue(problems: list[Problem]) -> Issue:
    rows = [[p.file, str(p.line), p.column, p.reason] for p in problems]
    return Issue("rejected", "Input rejected by convert",
                 "convert would refuse these inputs and write nothing; the problems below must be fixed first "
                 "(a key with two different values is a conflicting duplicate row).",
                 ["file", "line", "column", "reason"], rows[:MAX_ROWS], len(rows), more=max(len(rows) - MAX_ROWS, 0))


def _issue(key: str, title: str, explanation: str, frame: pl.DataFrame) -> Issue:
    return Issue(key, title, explanation, frame.columns,
                 [[_cell(v) for v in r] for r in frame.head(MAX_ROWS).iter_rows()], frame.height,
                 more=max(frame.height - MAX_ROWS, 0))


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".") if v != int(v) else f"{v:,.0f}"
    return "" if v is None else str(v)


def quality_issues(q, a, grid, options: ConvertOptions, settings: Report, warnings) -> list[Issue]:
    has_q = q is not None and not q.is_empty()
    has_a = a is not None and not a.is_empty()
    issues: list[Issue] = []
    if grid is not None:
        issues += _gaps(q if has_q else a, grid, options.tz, options.interval, per_queue=has_q)
    issues.append(_duplicates(q, a, options.tz, warnings))
    if has_q:
        issues += _queue_issues(q, options.tz, settings)
    if has_a:
        issues.append(_agent_issue(a, options.tz, options.interval * 60))
    return issues


def _duplicates(q, a, tz: str, warnings) -> Issue:
    dups = []
    for frame, keys, what in ((q, ["interval_start", "service_id"], "service"),
                              (a, ["interval_start", "agent_id", "service_id"], "agent")):
        if frame is None or frame.is_empty():
            continue
        values = [c for c in frame.columns if c not in keys]
        dups.append(
            frame.filter(pl.struct(keys).is_duplicated())
            .group_by(keys).agg(pl.len().alias("rows"), pl.struct(values).n_unique().alias("versions"))
            .select(pl.lit(what).alias("data"), _local_expr("interval_start", tz).alias("interval (local)"),
                    pl.concat_str([pl.col(k) for k in keys[1:]], separator=" / ").alias("key"), "rows",
                    pl.when(pl.col("versions") > 1).then(pl.lit("conflicting")).otherwise(pl.lit("identical"))
                    .alias("kind")))
    dup = pl.concat(dups) if dups else pl.DataFrame()
    dropped = [w for w in warnings if "duplicate" in w]
    issue = _issue("duplicates", "Duplicate or conflicting rows",
                   "Rows sharing a key (interval + service, or interval + agent + service)."
                   + (" Already dropped while reading: " + "; ".join(dropped) + "." if dropped else ""),
                   dup.sort("interval (local)") if dup.height else dup)
    issue.count += sum(int(m.group(1)) for w in dropped if (m := re.search(r"(\d+) identical", w)))
    return issue


def _queue_issues(q: pl.DataFrame, tz: str, settings: Report) -> list[Issue]:
    when = _local_expr("interval_start", tz).alias("interval (local)")
    checks = [
        (pl.col("handled") > pl.col("offered"), "handled > offered"),
        (pl.col("abandoned") > pl.col("offered"), "abandoned > offered"),
        (pl.col("answered") > pl.col("offered"), "answered > offered"),
        ((pl.col("handled") > 0) & (pl.col("talk_s") == 0), "handled > 0 with no talk time"),
    ]
    flagged = q.with_columns(pl.concat_list([pl.when(c).then(pl.lit(r)) for c, r in checks])
                             .list.drop_nulls().list.join("; ").alias("finding"))
    counts = _issue(
        "counts", "Service intervals with impossible counts",
        "Handled, abandoned or answered above offered (transfers and overflow can cause it), or handled "
        "contacts without talk time. The files are still valid; check the source's definitions.",
        flagged.filter(pl.col("finding") != "").sort("interval_start", "service_id")
        .select(when, "service_id", "offered", "handled", "answered", "abandoned", "talk_s", "finding"))
    aht = (pl.col("talk_s") + pl.col("hold_s") + pl.col("acw_s")) / pl.col("handled")
    outliers = _issue(
        "outliers", "Handle-time outliers",
        f"Average handle time ((talk + hold + ACW) / handled) below {settings.aht_min_s:g} s or above "
        f"{settings.aht_max_s:g} s ([report] aht_min_s / aht_max_s, --aht-min / --aht-max).",
        q.filter(pl.col("handled") > 0).with_columns(aht.alias("aht_s"))
        .filter((pl.col("aht_s") < settings.aht_min_s) | (pl.col("aht_s") > settings.aht_max_s))
        .sort("interval_start", "service_id")
        .select(when, "service_id", "handled", pl.col("aht_s").round(1)))
    return [counts, outliers]


def _agent_issue(a: pl.DataFrame, tz: str, length: int) -> Issue:
    per = a.group_by("interval_start", "agent_id").agg(
        pl.col("ready_s", "not_ready_s", "in_session_s").first(),
        (pl.col("reserved_s").sum() if "reserved_s" in a.columns else pl.lit(0.0)).alias("reserved_s"))
    finding = (pl.when(pl.col("in_session_s") > length + 1).then(pl.lit(f"in session > {length} s interval"))
               .when(pl.col("ready_s") + pl.col("not_ready_s") + pl.col("reserved_s") > pl.col("in_session_s") + 1)
               .then(pl.lit("ready + not ready + reserved > in session")))
    return _issue(
        "sessions", "Agent time that does not fit",
        "Logged-in time longer than the interval, or ready + not-ready + reserved time longer than the "
        "logged-in time (domain checks; the Data Server accepts the file).",
        per.with_columns(finding.alias("finding")).filter(pl.col("finding").is_not_null())
        .sort("interval_start", "agent_id")
        .select(_local_expr("interval_start", tz).alias("interval (local)"), "agent_id", "in_session_s",
                "ready_s", "not_ready_s", "reserved_s", "finding"))


def _gaps(frame: pl.DataFrame, grid: pl.DataFrame, tz: str, minutes: int, per_queue: bool) -> list[Issue]:
    present = frame.select("interval_start").unique()
    missing = grid.join(present, on="interval_start", how="anti").sort("i")
    issues = [_issue("gaps", "Missing intervals",
                     f"Intervals of the covered range (on the {tz} clock, {minutes}-minute intervals) with no "
                     "row at all: no data, which is not the same as zero contacts. Consecutive ones are grouped.",
                     _runs(missing, tz, minutes))]
    issues[0].count = missing.height
    if per_queue:
        queues = frame.select("service_id").unique()
        holes = (grid.join(present, on="interval_start", how="semi").join(queues, how="cross")
                 .join(frame.select("interval_start", "service_id"), on=["interval_start", "service_id"], how="anti"))
        runs = _runs(holes, tz, minutes, by="service_id")
        issue = _issue("queue_gaps", "Queues missing from an interval",
                       "Intervals where other queues have a row but this one has none (a queue should appear "
                       "in every interval the source covered, with zeros when nothing happened).", runs)
        issue.count = holes.height
        issues.append(issue)
    return issues


def _runs(missing: pl.DataFrame, tz: str, minutes: int, by: str | None = None) -> pl.DataFrame:
    """Consecutive missing grid intervals as one row: from, to (local), count."""
    keys = [by] if by else []
    step = timedelta(minutes=minutes)
    if missing.is_empty():
        return pl.DataFrame(schema={**({by: pl.String} if by else {}), "from (local)": pl.String,
                                    "until (local)": pl.String, "intervals": pl.UInt32})
    return (
        missing.sort(*keys, "i")
        .with_columns(((pl.col("i").diff().over(keys) if by else pl.col("i").diff()) != 1).fill_null(True)
                      .cum_sum().alias("_run"))
        .group_by(*keys, "_run", maintain_order=True)
        .agg(pl.col("interval_start").min().alias("a"), pl.col("interval_start").max().alias("b"),
             pl.len().alias("intervals"))
        .select(*keys, _local_expr("a", tz).alias("from (local)"),
                (pl.col("b") + step).dt.convert_time_zone(tz).dt.strftime("%Y-%m-%d %H:%M %:z").alias("until (local)"),
                "intervals")
    )


def unknown_issues(q, a, states, options: ConvertOptions) -> list[Issue]:
    m = options.mapping
    found = []
    agents = set(m.agents) | set(m.agents.values())
    services = set(m.services) | set(m.services.values()) | set(m.service_names)
    for key, what, frames, known in (("unknown_agents", "agents", [a], agents),
                                     ("unknown_queues", "queues", [q, a], services)):
        column = "agent_id" if what == "agents" else "service_id"
        ids = [f.select(column) for f in frames if f is not None and not f.is_empty()]
        if not known:
            found.append(Issue(key, f"Unknown {what}", f"Not checked: the configuration has no [mapping] table for "
                               f"{what} (pass --config with [mapping] {'agents' if what == 'agents' else 'services'}"
                               f"{'' if what == 'agents' else ' or service_names'}).", [column], checked=False))
            continue
        unknown = (pl.concat(ids).group_by(column).len("rows").filter(~pl.col(column).is_in(sorted(known)))
                   .sort(column) if ids else pl.DataFrame({column: [], "rows": []}))
        found.append(_issue(key, f"Unknown {what}",
                            f"IDs not in the [mapping] tables; the WFM system leaves data of unknown {what} "
                            "unattributed.", unknown))
    if states is not None and not states.is_empty():  # event sources: platform states vs [mapping] states
        if not m.states:
            found.append(Issue("unknown_states", "Unknown states", "Not checked: the configuration has no "
                               "[mapping] states table.", ["raw_state"], checked=False))
        else:
            unknown = (states.group_by("raw_state").len("events").filter(~pl.col("raw_state").is_in(sorted(m.states)))
                       .sort("raw_state"))
            found.append(_issue("unknown_states", "Unknown states", "Platform states not in [mapping] states "
                                "(mapped by the built-in defaults, if at all).", unknown))
    return found
