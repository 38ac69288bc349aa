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
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from gisgate.config import ConvertOptions, Report
from gisgate.errors import InputError, Problem
from gisgate.model import Batch
from gisgate.produced import WHIT_NAME
from gisgate.render import charts, render_template
from gisgate.report.quality import quality_issues, rejected_issue, unknown_issues
from gisgate.transform import clock
from gisgate.validate import expand

PAGE_SUFFIX = ".report.html"  # the gateway writes each input's page beside it: <input>.report.html
COLORS = {"offered": "#2563eb", "handled": "#16a34a", "abandoned": "#dc2626", "aht": "#7c3aed",
          "handling": "#2563eb", "ready": "#16a34a", "not_ready": "#f59e0b", "other": "#9ca3af"}


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
    issues = [rejected_issue(problems)] if problems else []
    issues += quality_issues(q, a, grid, options, settings, warnings)
    issues += unknown_issues(q, a, batch.state_events, options)
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
