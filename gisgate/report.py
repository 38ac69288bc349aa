"""`gisgate report`: one self-contained HTML page showing what gisgate read or wrote.

    data = build(batch, options, settings)          # polars: per-queue series, agent shares, data quality
    html = render(data)                             # templates/report/report.html.j2 + inline SVG
    write_report(conversion, path, settings)        # the two above, written atomically (the watcher's entry)

Missing intervals are found on the ACD's local clock: the covered range is walked in UTC in
15-minute steps and only the instants that start an interval on the local clock are kept, so a
fall-back day has its two 01:00 intervals and a spring-forward day has no 02:00 at all.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from gisgate.config import ConvertOptions, Report
from gisgate.errors import InputError, Problem
from gisgate.model import Batch
from gisgate.produced import WHIT_NAME
from gisgate.render import charts, render_template
from gisgate.transform import clock
from gisgate.validate import expand

PAGE_SUFFIX = ".report.html"  # the gateway writes each input's page beside it: <input>.report.html
MAX_ROWS = 200  # rows shown per data-quality table (the count is always complete)
COLORS = {"offered": "#2563eb", "handled": "#16a34a", "abandoned": "#dc2626", "aht": "#7c3aed",
          "handling": "#2563eb", "ready": "#16a34a", "not_ready": "#f59e0b", "other": "#9ca3af"}


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


@dataclass
class ReportResult:
    path: Path
    issues: int  # data-quality findings
    problems: list[Problem]  # why convert would reject the input (empty: accepted)
    intervals: int = 0
    queues: int = 0
    agents: int = 0

    def summary(self) -> str:
        if self.problems:
            return f"wrote {self.path}: the input would be rejected ({len(self.problems)} problem(s), listed in it)"
        return (f"wrote {self.path}: {self.intervals} interval(s), {self.queues} queue(s), {self.agents} agent(s), "
                f"{self.issues} data-quality finding(s)")


def report_paths(paths: list[Path], options: ConvertOptions, settings: Report, out: Path,
                 convert: Callable) -> ReportResult:
    """Read PATHs (inputs, or produced GIS / WHIT files; folders expand to their files) with
    `convert` (pipeline.convert, injected: the two modules sit on the same layer) and write the report.

    An input convert rejects still gets a report: it lists every problem, and the result carries them.
    """
    files = [p for p in expand(paths) if p.suffix.lower() != ".html" and p.resolve() != out.resolve()]
    if not files:
        raise InputError("no files to report on", ", ".join(map(str, paths)))
    if not options.whit_utc and any(WHIT_NAME.match(p.name) for p in files):
        options = options.model_copy(update={"whit_utc": True})  # gisgate writes WHIT in UTC
    try:
        conversion = convert(files, options)
    except InputError as e:
        data = build(Batch(), options, settings, inputs=files, problems=e.problems)
        _write(out, render(data))
        return ReportResult(out, len(e.problems), e.problems)
    data = build(conversion.batch, conversion.options, settings, inputs=files, warnings=conversion.warnings)
    _write(out, render(data))
    return ReportResult(out, data["issue_total"], [], data["interval_count"], len(data["queues"]),
                        data["agents"]["count"] if data["agents"] else 0)


def write_report(source, path: Path, settings: Report | None = None,
                 options: ConvertOptions | None = None) -> Path:
    """Write the report of a `pipeline.Conversion` (or of a `model.Batch` with `options`) to `path`.

    For the watcher: one report per processed input. Written through a temporary file and a rename.
    """
    settings = settings or Report()
    if isinstance(source, Batch):
        batch, warnings, inputs = source, list(source.warnings), []
        options = options or ConvertOptions()
    else:
        batch, warnings, inputs = source.batch, list(source.warnings), list(source.inputs)
        options = options or source.options
    _write(Path(path), render(build(batch, options, settings, inputs=inputs, warnings=warnings)))
    return Path(path)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render(data: dict) -> str:
    """The HTML page of `build`'s data."""
    return render_template("report/report.html.j2", **data)


# --- computing the report ----------------------------------------------------------------------------

def build(batch: Batch, options: ConvertOptions, settings: Report, *, inputs: list[Path] = (),
          warnings: list[str] = (), problems: list[Problem] = ()) -> dict:
    """Everything the template shows, computed with polars from the canonical frames."""
    q, a = batch.queue_intervals, batch.agent_intervals
    tz, minutes = options.tz, options.interval
    frames = [f for f in (q, a) if f is not None and not f.is_empty()]
    notes = []
    if frames and minutes == 15 and options.source_interval is None and clock.infer_source_interval(frames, tz) is None:
        # Not one start at :15 or :45: 30-minute data (e.g. produced 30-minute GIS files); a 15-minute
        # grid would call every :15 and :45 missing. --source-interval 15 says otherwise.
        minutes = 30
        options = options.model_copy(update={"interval": 30})
        notes.append("no interval starts at :15 or :45, so intervals are taken as 30 minutes long "
                     "(pass --source-interval 15 if they are 15)")
    grid = _grid(frames[0] if q is None or q.is_empty() else q, tz, minutes) if frames else None
    issues = [_rejected(problems)] if problems else []
    issues += _quality(q, a, grid, options, settings, warnings)
    issues += _unknown(q, a, batch.state_events, options)
    starts = pl.concat([f.select("interval_start") for f in frames])["interval_start"] if frames else None
    return {
        "title": settings.title,
        "inputs": [str(p) for p in inputs],
        "tz": tz, "interval": minutes, "acd": options.acd,
        "first": _local(starts.min(), tz) if starts is not None else "",
        "last": _local(starts.max(), tz) if starts is not None else "",
        "interval_count": starts.n_unique() if starts is not None else 0,
        "queues": _queues(q, grid, tz, options, settings) if q is not None and not q.is_empty() else [],
        "agents": _agents(a, settings) if a is not None and not a.is_empty() else None,
        "issues": issues,
        "issue_total": sum(i.count for i in issues),
        "warnings": list(warnings),
        "notes": notes,
        "settings": settings,
    }


def _local(instant: datetime, tz: str) -> str:
    return instant.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %z")


def _local_expr(column: str, tz: str) -> pl.Expr:
    return pl.col(column).dt.convert_time_zone(tz).dt.strftime("%Y-%m-%d %H:%M %:z")


def _grid(frame: pl.DataFrame, tz: str, minutes: int) -> pl.DataFrame:
    """Every interval start of the covered range on the local clock, in order, with its index `i`."""
    return clock.grid(frame["interval_start"].min(), frame["interval_start"].max(), tz, minutes).with_row_index("i")


def _ticks(grid: pl.DataFrame, tz: str) -> list[tuple[float, str]]:
    """x-axis labels at local full hours, at most ~12 of them; the offset is shown where it changes."""
    local = grid.select(pl.col("interval_start"), pl.col("interval_start").dt.convert_time_zone(tz).alias("l"))
    hours = local.filter(pl.col("l").dt.minute() == 0)
    if hours.is_empty():
        hours = local.head(1)
    stride = max(1, -(-hours.height // 12))
    out, last_day, last_offset = [], None, None
    for utc, loc in hours.gather_every(stride).iter_rows():
        day, offset = loc.date(), loc.utcoffset()
        label = loc.strftime("%H:%M") if day == last_day else loc.strftime("%b %d %H:%M")
        if last_offset is not None and offset != last_offset:
            label += loc.strftime(" %z")[:-2]
        out.append((utc.timestamp(), label))
        last_day, last_offset = day, offset
    return out


def _bands(missing: pl.DataFrame, minutes: int) -> list[tuple[float, float]]:
    return [(s.timestamp(), (s + timedelta(minutes=minutes)).timestamp())
            for s in missing["interval_start"].to_list()]


def _queues(q: pl.DataFrame, grid: pl.DataFrame, tz: str, options: ConvertOptions, settings: Report) -> list[dict]:
    names = options.mapping.service_names
    handle = pl.col("talk_s") + pl.col("hold_s") + pl.col("acw_s")
    totals = (
        q.group_by("service_id").agg(
            pl.col("offered", "handled", "answered", "abandoned").sum(), handle.sum().alias("handle_s"),
            pl.col("answer_delay_s").sum(), (pl.col("service_level_pct") * pl.col("offered")).sum().alias("_sl"),
            pl.len().alias("rows"))
        .with_columns(
            pl.when(pl.col("handled") > 0).then(pl.col("handle_s") / pl.col("handled")).alias("aht"),
            pl.when(pl.col("answered") > 0).then(pl.col("answer_delay_s") / pl.col("answered")).alias("asa"),
            pl.when(pl.col("offered") > 0).then(pl.col("_sl") / pl.col("offered")).alias("sl"))
        .sort("service_id")
    )
    ticks = _ticks(grid, tz)
    xs = [s.timestamp() for s in grid["interval_start"].to_list()]
    out = []
    for row in totals.iter_rows(named=True):
        sid = row["service_id"]
        series = (
            grid.join(q.filter(pl.col("service_id") == sid)
                      .select("interval_start", "offered", "handled", "abandoned",
                              pl.when(pl.col("handled") > 0).then(handle / pl.col("handled")).alias("aht"))
                      .unique("interval_start", keep="first", maintain_order=True),  # duplicates: listed apart
                      on="interval_start", how="left")
            .sort("i")
        )
        missing = series.filter(pl.col("offered").is_null())
        bands = _bands(missing, options.interval)
        volume = charts.line_chart(
            xs, [charts.Series(m, COLORS[m], series[m].to_list()) for m in ("offered", "handled", "abandoned")],
            ticks, bands=bands, data={"queue": sid, "chart": "volume"},
            title=f"Queue {sid}: contacts offered, handled, abandoned per interval")
        aht = charts.line_chart(
            xs, [charts.Series("average handle time (s)", COLORS["aht"], series["aht"].to_list())], ticks,
            bands=bands, height=160, unit=" s", data={"queue": sid, "chart": "aht"},
            guides=[(settings.aht_max_s, f"outlier above {settings.aht_max_s:g} s")]
            if settings.aht_max_s <= 2 * (series["aht"].max() or 0) else [],
            title=f"Queue {sid}: average handle time per interval")
        out.append({**row, "name": names.get(sid, ""), "volume_svg": volume, "aht_svg": aht,
                    "missing": missing.height})
    return out


def _agents(a: pl.DataFrame, settings: Report) -> dict:
    per_interval = a.group_by("interval_start", "agent_id").agg(
        pl.col("ready_s", "not_ready_s", "in_session_s").first(),  # agent-level: repeated on each row
        pl.col("period_handle_s").sum(), pl.col("handled").sum(),
        (pl.col("reserved_s").sum() if "reserved_s" in a.columns else pl.lit(0.0)).alias("reserved_s"))
    per_agent = (
        per_interval.group_by("agent_id")
        .agg(pl.col("ready_s", "not_ready_s", "in_session_s", "period_handle_s", "handled", "reserved_s").sum(),
             pl.len().alias("intervals"))
        .with_columns((pl.col("in_session_s") - pl.col("ready_s") - pl.col("not_ready_s")
                       - pl.col("period_handle_s") - pl.col("reserved_s")).clip(lower_bound=0).alias("other_s"))
        .with_columns((pl.col("ready_s") + pl.col("not_ready_s") + pl.col("period_handle_s")
                       + pl.col("reserved_s") + pl.col("other_s")).alias("_total"))
        .with_columns([(pl.col(c) / pl.col("_total") * 100).fill_nan(0).alias(f"{c}_pct")
                       for c in ("period_handle_s", "ready_s", "not_ready_s", "reserved_s", "other_s")])
        .sort(["in_session_s", "agent_id"], descending=[True, False])
    )
    charted = per_agent.head(settings.max_agents)
    parts = [("handling", COLORS["handling"]), ("ready", COLORS["ready"]), ("not ready", COLORS["not_ready"]),
             ("reserved / other", COLORS["other"])]
    bars = charts.share_bars(
        [(r["agent_id"], [r["period_handle_s"], r["ready_s"], r["not_ready_s"], r["reserved_s"] + r["other_s"]])
         for r in charted.iter_rows(named=True)], parts)
    return {"count": per_agent.height, "charted": charted.height, "svg": bars,
            "rows": per_agent.drop("_total").to_dicts()}


# --- data quality ------------------------------------------------------------------------------------

def _rejected(problems: list[Problem]) -> Issue:
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


def _quality(q, a, grid, options: ConvertOptions, settings: Report, warnings) -> list[Issue]:
    tz, length = options.tz, options.interval * 60
    issues: list[Issue] = []
    has_q = q is not None and not q.is_empty()
    has_a = a is not None and not a.is_empty()
    if grid is not None:
        issues += _gaps(q if has_q else a, grid, tz, options.interval, per_queue=has_q)
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
    issues.append(issue)
    if has_q:
        when = _local_expr("interval_start", tz).alias("interval (local)")
        checks = [
            (pl.col("handled") > pl.col("offered"), "handled > offered"),
            (pl.col("abandoned") > pl.col("offered"), "abandoned > offered"),
            (pl.col("answered") > pl.col("offered"), "answered > offered"),
            ((pl.col("handled") > 0) & (pl.col("talk_s") == 0), "handled > 0 with no talk time"),
        ]
        flagged = q.with_columns(pl.concat_list([pl.when(c).then(pl.lit(r)) for c, r in checks])
                                 .list.drop_nulls().list.join("; ").alias("finding"))
        issues.append(_issue(
            "counts", "Service intervals with impossible counts",
            "Handled, abandoned or answered above offered (transfers and overflow can cause it), or handled "
            "contacts without talk time. The files are still valid; check the source's definitions.",
            flagged.filter(pl.col("finding") != "").sort("interval_start", "service_id")
            .select(when, "service_id", "offered", "handled", "answered", "abandoned", "talk_s", "finding")))
        aht = (pl.col("talk_s") + pl.col("hold_s") + pl.col("acw_s")) / pl.col("handled")
        issues.append(_issue(
            "outliers", "Handle-time outliers",
            f"Average handle time ((talk + hold + ACW) / handled) below {settings.aht_min_s:g} s or above "
            f"{settings.aht_max_s:g} s ([report] aht_min_s / aht_max_s, --aht-min / --aht-max).",
            q.filter(pl.col("handled") > 0).with_columns(aht.alias("aht_s"))
            .filter((pl.col("aht_s") < settings.aht_min_s) | (pl.col("aht_s") > settings.aht_max_s))
            .sort("interval_start", "service_id")
            .select(when, "service_id", "handled", pl.col("aht_s").round(1))))
    if has_a:
        per = a.group_by("interval_start", "agent_id").agg(
            pl.col("ready_s", "not_ready_s", "in_session_s").first(),
            (pl.col("reserved_s").sum() if "reserved_s" in a.columns else pl.lit(0.0)).alias("reserved_s"))
        finding = (pl.when(pl.col("in_session_s") > length + 1).then(pl.lit(f"in session > {length} s interval"))
                   .when(pl.col("ready_s") + pl.col("not_ready_s") + pl.col("reserved_s") > pl.col("in_session_s") + 1)
                   .then(pl.lit("ready + not ready + reserved > in session")))
        issues.append(_issue(
            "sessions", "Agent time that does not fit",
            "Logged-in time longer than the interval, or ready + not-ready + reserved time longer than the "
            "logged-in time (domain checks; the Data Server accepts the file).",
            per.with_columns(finding.alias("finding")).filter(pl.col("finding").is_not_null())
            .sort("interval_start", "agent_id")
            .select(_local_expr("interval_start", tz).alias("interval (local)"), "agent_id", "in_session_s",
                    "ready_s", "not_ready_s", "reserved_s", "finding")))
    return issues


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


def _unknown(q, a, states, options: ConvertOptions) -> list[Issue]:
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
