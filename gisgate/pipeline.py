"""The arrows: read → check → transform → render → write. The only module that chains them.

    conversion = convert([path], options)      # reads and checks everything; raises InputError
    paths = write(conversion, out_dir)         # renders file by file, atomically; all or nothing
    verdict, payload = convert_input(path, [options], report)   # the gateway's: one input, never raises
"""

from __future__ import annotations

import os
import shutil
import tempfile
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from gisgate import durable, model, render, sources, transform
from gisgate import report as reports
from gisgate.config import ConvertOptions, Report
from gisgate.errors import ConfigError, InputError, Problem, TransientDeliveryError
from gisgate.model import Batch, Output
from gisgate.report.quality import unknown_issues
from gisgate.transform import clock, intervals
from gisgate.transform.facts import Facts, facts_of
from gisgate.validate import rows

# --- bulk contact import (domain §3): outputs with no intervals; media travel with their data file.
ROW_RULES = {"recordings": lambda strings, batch, o: rows.recordings(strings, batch),
             "text_contacts": lambda strings, batch, o: rows.text_contacts(strings, batch,
                                                                           o.contacts.text_format == "csv")}
CONTACT_SOURCES = ("contacts", "textcontacts")


@dataclass
class Conversion:
    """A checked conversion, ready to render. Rendering is lazy so large inputs stream to disk."""

    batch: Batch
    options: ConvertOptions
    inputs: list[Path]
    warnings: list[str] = field(default_factory=list)
    rejected: list[Problem] = field(default_factory=list)  # rows left out (only with options.rejects)

    def outputs(self) -> Iterator[Output]:
        """Every output, in sending order (a contact batch's media before its data file)."""
        yield from render.get(self.options.to).render(self.batch, self.options)

    def output_count(self) -> int:
        """How many files `outputs()` will yield (for a progress bar; nothing is rendered)."""
        return render.get(self.options.to).count(self.batch, self.options)

    def summary(self) -> dict:
        rows_of = getattr(render.get(self.options.to), "ROWS", None)
        if rows_of:  # bulk contact import: the batch holds the rows kept
            frame = getattr(self.batch, rows_of)
            return {"inputs": [str(p) for p in self.inputs], "to": self.options.to,
                    "contacts": 0 if frame is None else frame.height,
                    "rejected": len({(p.file, p.line) for p in self.rejected}),
                    "media": len(self.batch.media), "warnings": list(self.warnings)}
        q, a = self.batch.queue_intervals, self.batch.agent_intervals
        frames = [f for f in (q, a) if f is not None]
        starts = pl.concat([f.select("interval_start") for f in frames]) if frames else pl.DataFrame()
        out: dict = {
            "inputs": [str(p) for p in self.inputs],
            "to": self.options.to,
            "intervals": starts.n_unique() if frames else 0,
            "first_interval": str(starts["interval_start"].min()) if frames else None,
            "last_interval": str(starts["interval_start"].max()) if frames else None,
            "services": pl.concat([f.select("service_id") for f in frames]).n_unique() if frames else 0,
            "agents": a["agent_id"].n_unique() if a is not None else 0,
            "service_rows": q.height if q is not None else 0,
            "agent_rows": a.height if a is not None else 0,
        }
        if q is not None:
            out["service_totals"] = _totals(q, ["offered", "handled", "answered", "abandoned", "talk_s", "hold_s",
                                                "acw_s", "answer_delay_s"])
        if a is not None:
            out["agent_totals"] = _totals(a, ["handled", "talk_s", "hold_s", "acw_s", "period_handle_s"])
        if frames:  # the range as the ACD's clock shows it
            out["tz"] = self.options.tz
            out["first_local"], out["last_local"] = (_local(starts["interval_start"].min(), self.options.tz),
                                                     _local(starts["interval_start"].max(), self.options.tz))
        out["unknown"] = {i.key.removeprefix("unknown_"): [row[0] for row in i.rows] + ([f"... {i.more} more"]
                                                                                       if i.more else [])
                          for i in unknown_issues(q, a, self.batch.state_events, self.options)
                          if i.checked and i.count}
        out["warnings"] = list(self.warnings)
        return out


def _local(instant, tz: str) -> str:
    """An instant as ISO-8601 on the clock of `tz`, with the offset in force then."""
    return instant.astimezone(ZoneInfo(tz)).isoformat(timespec="minutes")


def _totals(frame: pl.DataFrame, columns: list[str]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in frame.select(pl.col(columns).sum()).row(0, named=True).items()}


def convert(paths: list[Path], options: ConvertOptions) -> Conversion:
    """Read every input, check it, derive and roll up intervals. Writes nothing.

    Raises InputError listing every problem of every input, ConfigError for impossible options.
    """
    renderer = render.get(options.to)
    batch = _read(paths, options)
    rows_of = getattr(renderer, "ROWS", None)
    if rows_of:
        return _row_conversion(batch, options, paths, renderer, rows_of)
    batch = transform.derive(batch, options)
    batch = _to_interval_length(batch, options)
    reason = renderer.missing(batch)
    if reason:
        raise InputError(reason, ", ".join(map(str, paths)))
    return Conversion(batch, options, list(paths), [*batch.warnings, *renderer.warnings(batch)])


def convert_input(path: str, options: list[ConvertOptions], report: Report | None = None) -> tuple[str, object]:
    """Convert one input into every requested output; never raises (the gateway's conversion).

    Returns ("ok", [Output...]), or ("input" | "config" | "bug", [reason lines]). Plain picklable
    values, so it runs the same in a converter process. With `report` settings, one more Output of
    kind "report" holds the `gisgate report` page of the input (interval data only).
    """
    return _verdict(_outputs, path, options, report)


class Outputs(list):
    """The outputs of one input, and what its conversions warned about (for the gateway's log)."""

    def __init__(self, items=(), warnings=()):
        super().__init__(items)
        self.warnings = list(warnings)


def _outputs(path: str, options: list[ConvertOptions], report: Report | None) -> Outputs:
    outputs = Outputs()
    for o in options:
        conversion = convert([Path(path)], o)
        outputs.extend(conversion.outputs())
        outputs.warnings += [w for w in conversion.warnings if w not in outputs.warnings]
        if report is not None and (conversion.batch.queue_intervals is not None
                                   or conversion.batch.agent_intervals is not None):
            page = reports.render(reports.build(conversion.batch, o, report, inputs=[Path(path)],
                                                warnings=conversion.warnings))
            outputs.append(Output(Path(path).name + reports.PAGE_SUFFIX, page.encode("utf-8"), "report"))
            report = None  # one page per input
    return outputs


def _verdict(work, path: str, options: list[ConvertOptions], report: Report | None) -> tuple[str, object]:
    """("ok", what `work` returns) or ("input" | "config" | "bug", [reason lines]): never raises."""
    try:
        return "ok", work(path, options, report)
    except InputError as e:
        return "input", [str(p) for p in e.problems]
    except ConfigError as e:
        return "config", [str(e)]
    except Exception as e:  # a bug must not stop the gateway: the file waits in rejected/
        return "bug", [f"gisgate failed unexpectedly: {type(e).__name__}: {e}",
                       *traceback.format_exc().splitlines()[-6:]]


# ---- the gateway's streams: inputs as records, intervals re-derived from what can touch them ----------


@dataclass
class Parsed:
    """One input as a stream takes it: its records per (source, kind), and what they say alone."""

    records: dict[tuple[str, str], pl.DataFrame]
    facts: Facts  # of this input alone, as a part of a stream
    told: int | None  # the interval length its source tells
    home: pl.DataFrame | None  # contact_id, agent_id, service_id of its contacts (for home queues)
    warnings: list[str] = field(default_factory=list)
    report: dict | None = None  # `report.build` of the input on its own (the gateway adds what it changed)


def parse_input(path: str, options: list[ConvertOptions], report: Report | None = None) -> tuple[str, object]:
    """`convert_input` for a stream: ("ok", Parsed) or ("input" | "config" | "bug", [reason lines])."""
    return _verdict(_parse, path, options, report)


def _parse(path: str, options: list[ConvertOptions], report: Report | None) -> Parsed:
    o = options[0]
    found, batches = {}, []
    for name, group in _groups([Path(path)], o).items():
        records, batch = sources.records(name, group, o)
        found.update({(name, kind): frame for kind, frame in records.items()})
        batches.append(batch)
    batch = _merge(batches)
    home = batch.contacts.select("contact_id", "agent_id", "service_id") if batch.contacts is not None else None
    parsed = Parsed(found, facts_of(batch, o, part=True), batch.source_interval, home, list(batch.warnings))
    if report is not None:
        parsed.report = _page_alone(batch, o, report, Path(path))
    return parsed


def _page_alone(batch: Batch, options: ConvertOptions, report: Report, path: Path) -> dict:
    """The report data of one stream input on its own; what it cannot derive alone (an agent whose
    home queue another input tells) is a warning here, not a reason to refuse it."""
    try:
        alone = _to_interval_length(transform.derive(batch, options), options)
        return reports.build(alone, options, report, inputs=[path], warnings=alone.warnings)
    except (ConfigError, InputError) as e:
        return reports.build(Batch(), options, report, inputs=[path],
                             warnings=[*batch.warnings, f"not derived on its own: {e}"])


def render_intervals(found: dict[tuple[str, str], pl.DataFrame], told: int | None, options: ConvertOptions,
                     facts: Facts, starts: list) -> list[Output]:
    """The outputs of the intervals `starts` (UTC), derived from the records `found` that can touch
    them and the stream's `facts`: what one conversion of all of the stream writes for them."""
    names = sorted({name for name, _ in found})
    batch = _merge([sources.assemble(name, {k: f for (s, k), f in found.items() if s == name}, options, told)
                    for name in names]) if names else Batch()
    batch = _to_interval_length(transform.derive(batch, options, facts), options, facts)
    keep = pl.Series("interval_start", starts, dtype=model.UTC_TIME)
    only = {k: f.filter(pl.col("interval_start").is_in(keep.implode())) for k in ("queue_intervals", "agent_intervals")
            if (f := getattr(batch, k)) is not None}
    batch = replace(batch, **only, in_key_order=[])
    renderer = render.get(options.to)
    if renderer.missing(batch):
        return []
    # a renderer that sends a stream's intervals differently from one file (Cloud Connect: each
    # interval's call volume on its own, the activity as it arrives) says so with `render_intervals`
    return list(getattr(renderer, "render_intervals", renderer.render)(batch, options))


def state_events(found: dict[tuple[str, str], pl.DataFrame], told: int | None,
                 options: ConvertOptions) -> pl.DataFrame | None:
    """The state events the records `found` assemble into (a stream's real-time states)."""
    names = sorted({name for name, _ in found})
    batches = [sources.assemble(name, {k: f for (s, k), f in found.items() if s == name}, options, told)
               for name in names]
    return _merge(batches).state_events if batches else None


def _row_conversion(batch: Batch, options: ConvertOptions, paths: list[Path], renderer, rows_of: str) -> Conversion:
    """Bulk contacts: check every row against every rule now; any problem rejects the input, unless
    --rejects keeps the good rows (the bad ones leave the batch here)."""
    reason = renderer.missing(batch)
    if reason:
        raise InputError(reason, ", ".join(map(str, paths)))
    frame = getattr(batch, rows_of)
    rejected = ROW_RULES[rows_of](renderer.fields(batch), batch, options)
    if rejected and options.rejects is None:
        raise InputError(rejected)
    if not rejected and frame.is_empty():
        raise InputError(f"no {renderer.NOUN} to import")
    warnings = list(batch.warnings)
    if rejected:
        bad = pl.DataFrame([(p.file, p.line) for p in rejected], schema={"origin_file": pl.String,
                           "origin_line": pl.Int64}, orient="row")
        batch = replace(batch, **{rows_of: frame.join(bad, on=["origin_file", "origin_line"], how="anti",
                                                         nulls_equal=True)})
        warnings.append(f"{len({(p.file, p.line) for p in rejected})} row(s) rejected, written to {options.rejects}")
    return Conversion(batch, options, list(paths), warnings, rejected)


def _read(paths: list[Path], options: ConvertOptions) -> Batch:
    """Group inputs by format (given or detected), read each group, merge the batches."""
    batches, problems = [], []
    for name, group in _groups(paths, options).items():
        try:
            batches.append(sources.get(name).read(group, options))
        except InputError as e:
            problems += e.problems
    if problems:
        raise InputError(problems)
    return _merge(batches)


def _groups(paths: list[Path], options: ConvertOptions) -> dict[str, list[Path]]:
    """Inputs by format, given or detected (media and ZIPs travel with a contacts data file)."""
    groups: dict[str, list[Path]] = defaultdict(list)
    problems = []
    undetected: dict[Path, list[Problem]] = {}  # media / ZIPs travel with a contacts data file
    for path in paths:
        try:
            groups[options.source if options.source != "auto" else sources.detect(path)].append(path)
        except InputError as e:
            undetected[path] = e.problems
    uploads = [g for g in CONTACT_SOURCES if g in groups]
    for path, found in undetected.items():
        if len(uploads) == 1 and path.suffix.lower() not in (".csv", ".json"):
            groups[uploads[0]].append(path)
        else:
            problems += found
    if problems:
        raise InputError(problems)
    return groups


def _merge(batches: list[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]

    def cat(name: str):
        frames = [getattr(b, name) for b in batches if getattr(b, name) is not None]
        return pl.concat(frames, how="diagonal_relaxed") if frames else None

    merged = Batch(
        queue_intervals=cat("queue_intervals"), agent_intervals=cat("agent_intervals"),
        state_events=cat("state_events"), contacts=cat("contacts"),
        source_interval=next((b.source_interval for b in batches if b.source_interval), None),
        warnings=[w for b in batches for w in b.warnings],
        recordings=cat("recordings"), text_contacts=cat("text_contacts"),
        media={k: m for b in batches for k, m in b.media.items()},
        row_problems=[p for b in batches for p in b.row_problems],
    )
    _no_key_in_two_inputs(merged.queue_intervals, ["interval_start", "service_id"], "service")
    _no_key_in_two_inputs(merged.agent_intervals, ["interval_start", "agent_id", "service_id"], "agent row")
    return merged


def _no_key_in_two_inputs(frame: pl.DataFrame | None, keys: list[str], what: str) -> None:
    """Inputs of different formats must not describe the same interval key twice."""
    if frame is None:
        return
    clash = frame.filter(pl.struct(keys).is_duplicated()).select(keys).unique().sort(keys).head(20)
    if clash.height:
        raise InputError([Problem("", 0, "", f"{what} {' / '.join(str(v) for v in row)} appears in more than "
                                             "one input; convert them separately or drop one")
                          for row in clash.iter_rows()])


def _to_interval_length(batch: Batch, options: ConvertOptions, facts: Facts | None = None) -> Batch:
    """Roll 15-minute data up to 30 minutes when asked; refuse 30 → 15."""
    frames = [batch.queue_intervals, batch.agent_intervals]
    source = clock.source_interval(frames, options.tz, options.source_interval, batch.source_interval,
                                   options.interval, facts.quarter if facts is not None else None)
    if not clock.roll_up_from(source, options.interval):
        return batch
    if batch.queue_intervals is not None:
        batch.queue_intervals = intervals.roll_up_queue(batch.queue_intervals, options.tz, options.interval)
    if batch.agent_intervals is not None:
        batch.agent_intervals = intervals.roll_up_agent(batch.agent_intervals, options.tz, options.interval)
    batch.warnings.append(f"rolled {source}-minute intervals up to {options.interval} minutes")
    return batch


def write(conversion: Conversion, out_dir: Path, *, fsync: bool = False,
          progress: Callable[[Output], None] | None = None,
          check: Callable[[list[str]], None] | None = None) -> list[Path]:
    """Render every output into a hidden staging folder inside `out_dir`, then rename each into place.

    Nothing appears under a final name until every output rendered: an error while rendering
    leaves `out_dir` as it was. With `fsync`, each file and the folder are flushed to disk before
    the renames (the gateway's outbox wants that; a one-shot convert does not pay for it).
    `progress`, when given, is called with each output once it is staged (for a progress bar);
    `check`, with the names of all outputs before the first is renamed into place (it may raise).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".gisgate-", suffix=".tmp", dir=out_dir))
    try:
        staged = []
        for output in conversion.outputs():
            path = stage / output.name
            with open(path, "wb") as f:
                f.write(output.data)
                if fsync:
                    f.flush()
                    os.fsync(f.fileno())
            staged.append(path)
            if progress is not None:
                progress(output)
        if check is not None:
            check([p.name for p in staged])
        final = []
        # bulk contact import: the Data Server knows one literal TEXTCONTACT name, so a batch still
        # pending there must not be replaced; the next batch waits until it was consumed.
        for path in staged:
            if path.name.startswith("TEXTCONTACT.") and (out_dir / path.name).exists():
                raise TransientDeliveryError(f"{out_dir / path.name}: a TEXTCONTACT batch is still pending; "
                                             "write the next one after the Data Server consumed it")
        for path in staged:
            target = out_dir / path.name
            os.replace(path, target)
            final.append(target)
        if fsync:
            durable.fsync_dir(out_dir)
        if conversion.rejected and conversion.options.rejects:
            write_rejects(conversion.rejected, Path(conversion.options.rejects))
        return final
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_rejects(problems: list, path: Path) -> None:
    """Every problem as CSV (file,line,column,reason), for people who fix inputs in a spreadsheet."""
    pl.DataFrame(
        {"file": [p.file for p in problems], "line": [p.line for p in problems],
         "column": [p.column for p in problems], "reason": [p.reason for p in problems]},
        schema={"file": pl.String, "line": pl.Int64, "column": pl.String, "reason": pl.String},
    ).write_csv(path)
