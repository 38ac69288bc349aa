"""WHIT CSV (WFM Historical Import Template, domain §2) → QUEUE_INTERVALS.

`date` + `period` are local time in the ACD zone (`--tz`), or UTC with `--whit-utc`. In the
repeated fall-back hour, the rows of one service for the same local time map to the first, then the
second occurrence, in file order; a local time that does not exist (spring-forward gap) is a row
error. Averages become totals by multiplying with `handledCalls` (§2.4).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from gisgate.config import ConvertOptions
from gisgate.errors import InputError, Problem
from gisgate.model import UTC_TIME, Batch, check
from gisgate.sources import _checks as chk
from gisgate.sources._io import LINE, TOO_LARGE, Head, numbers, read_csv
from gisgate.transform import clock

REQUIRED = ["serviceName", "serviceNumber", "date", "period", "receivedCalls", "handledCalls",
            "avgTalkTime", "avgACWTime"]
OPTIONAL = ["abandonedCalls", "ASA", "serviceLevel", "contactsInQueue", "occupancyRatio", "qtyOfAgents",
            "transferredCalls"]
TEXT = ["serviceName", "serviceNumber", "date", "period"]
METRICS = [c for c in REQUIRED + OPTIONAL if c not in TEXT]

# date patterns per --date-order: (regex, polars format)
DATE_FORMATS = {
    "ymd": [(r"^\d{4}-\d{2}-\d{2}$", "%Y-%m-%d"), (r"^\d{4}/\d{2}/\d{2}$", "%Y/%m/%d")],
    "mdy": [(r"^\d{1,2}/\d{1,2}/\d{4}$", "%m/%d/%Y")],
    "dmy": [(r"^\d{1,2}/\d{1,2}/\d{4}$", "%d/%m/%Y")],
}
DATE_HINT = {
    "ymd": "expected YYYY-MM-DD or YYYY/MM/DD (for MM/DD/YYYY or DD/MM/YYYY pass --date-order mdy|dmy)",
    "mdy": "expected MM/DD/YYYY (--date-order mdy)",
    "dmy": "expected DD/MM/YYYY (--date-order dmy)",
}


def detect(head: Head) -> bool:
    return {"serviceNumber", "period", "receivedCalls"} <= head.keys


def read(paths: list[Path], options: ConvertOptions) -> Batch:
    """Every row against every rule in one pass (see `generic.read`); raise one InputError."""
    files = [str(p) for p in paths]
    parts, bad_values, file_problems, warnings = [], [], [], []
    for index, path in enumerate(paths):
        try:
            frame, w, bad = _read_one(path, index)
        except InputError as e:
            file_problems += e.problems
            continue
        parts.append(frame)
        bad_values.append(bad)
        warnings += w
    found = pl.DataFrame(schema=chk.PROBLEM_SCHEMA)
    if parts:
        frame = pl.concat(parts, how="diagonal_relaxed")
        frame, bad = _to_utc(frame, options)
        found = pl.concat([*bad_values, bad])
        if not found.is_empty():  # duplicate keys among the rows that passed every other rule
            frame = frame.join(found.select(chk.FILE, LINE).unique(), on=[chk.FILE, LINE], how="anti")
        frame, bad, dropped = chk.duplicates(
            frame, ["interval_start", "service_id"], [c for c in METRICS if c in frame.columns],
            {"service_id": "serviceNumber"},
        )
        found = pl.concat([found, bad])
        if dropped:
            warnings.append(f"dropped {dropped} identical duplicate WHIT row(s)")
    if file_problems or not found.is_empty():
        order = {f: i for i, f in enumerate(files)}
        raise InputError(sorted(file_problems + chk.problems(found, files),
                                key=lambda p: (order.get(p.file, -1), p.line, p.column)))
    return Batch(queue_intervals=_to_queue_intervals(frame), warnings=warnings)


def _read_one(path: Path, index: int) -> tuple[pl.DataFrame, list[str], pl.DataFrame]:
    """One file as a frame (metrics as numbers, null where not one), and its metric problems."""
    file = str(path)
    frame, warnings = read_csv(path, {c: pl.Float64 for c in METRICS})
    problems = [Problem(file, 1, c, "required WHIT column is missing") for c in REQUIRED if c not in frame.columns]
    problems += [Problem(file, 1, c, "unknown WHIT column") for c in frame.columns
                 if c not in REQUIRED + OPTIONAL and c != LINE]
    if problems:
        raise InputError(problems)
    if frame.is_empty():
        raise InputError("no data rows", file)
    frame, bad = numbers(frame, [c for c in METRICS if c in frame.columns], file)
    checks_frame = frame.with_columns(pl.lit(index, pl.Int32).alias(chk.FILE))
    return (checks_frame.with_columns(pl.col(TEXT).cast(pl.String).str.strip_chars()), warnings,
            chk.problem_frame(bad, index))


def _to_utc(frame: pl.DataFrame, options: ConvertOptions) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parse date + period into the interval's UTC start; row problems for what cannot be placed."""
    date, period = pl.col("date"), pl.col("period")
    parsed = [pl.when(date.str.contains(rx)).then(date.str.to_date(fmt, strict=False))
              for rx, fmt in DATE_FORMATS[options.date_order]]
    frame = frame.with_columns(pl.coalesce(parsed).alias("_date"))
    period_ok = period.str.contains(r"^([01]\d|2[0-3]):[0-5]\d$")
    naive = (pl.col("_date").cast(pl.Datetime("us"))
             + pl.duration(hours=period.str.slice(0, 2).cast(pl.Int64, strict=False),
                           minutes=period.str.slice(3, 2).cast(pl.Int64, strict=False)))
    frame = frame.with_columns(pl.when(period_ok).then(naive).alias("_local"))
    if options.whit_utc:
        zone = "UTC"
        frame = frame.with_columns(pl.col("_local").dt.replace_time_zone("UTC").alias("interval_start"))
    else:
        zone = options.tz
        # Fall-back hour: the n-th row of a service at a repeated local time is its n-th occurrence.
        occurrence = pl.int_range(pl.len()).over("serviceNumber", "_local", order_by=[chk.FILE, LINE])
        early = pl.col("_local").dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
        late = pl.col("_local").dt.replace_time_zone(zone, ambiguous="latest", non_existent="null")
        frame = frame.with_columns(
            pl.when(occurrence == 0).then(early).otherwise(late).dt.convert_time_zone("UTC").alias("interval_start")
        )
    frame = frame.with_columns(pl.col("interval_start").cast(UTC_TIME))
    local_text = pl.col("date") + pl.lit(" ") + pl.col("period")
    checks = [
        (pl.col("_date").is_null(), "date", pl.lit("not a date: ") + date.fill_null("")
         + pl.lit(f"; {DATE_HINT[options.date_order]}")),
        (~period_ok | period.is_null(), "period", pl.lit("not a period HH:MM: ") + period.fill_null("")),
        (pl.col("_local").is_not_null() & pl.col("interval_start").is_null(), "period",
         pl.lit("local time ") + local_text + pl.lit(f" does not exist in {zone} (daylight-saving gap)")),
        ((pl.col("serviceLevel") > 100) & (pl.col("serviceLevel") < TOO_LARGE) if "serviceLevel" in frame.columns
         else pl.lit(False), "serviceLevel", pl.lit("greater than 100")),
        clock.misaligned(zone, 15, "period"),  # (no answer where the start is not known: not checked)
    ]
    checks += chk.id_checks([("serviceNumber", "serviceNumber")])
    return frame.rename({"serviceNumber": "service_id"}), chk.collect(checks, frame)


def _to_queue_intervals(frame: pl.DataFrame) -> pl.DataFrame:
    handled = pl.col("handledCalls")

    def optional(name: str) -> pl.Expr:
        return pl.col(name).fill_null(0.0) if name in frame.columns else pl.lit(0.0)

    out = frame.select(
        "interval_start", "service_id",
        pl.col("receivedCalls").alias("offered"),
        handled.alias("handled"),
        handled.alias("answered"),  # WHIT has no separate answered count
        optional("abandonedCalls").alias("abandoned"),
        (pl.col("avgTalkTime") * handled).alias("talk_s"),
        pl.lit(0.0).alias("hold_s"),  # WHIT folds hold into avgTalkTime
        (pl.col("avgACWTime") * handled).alias("acw_s"),
        (optional("ASA") * handled).alias("answer_delay_s"),
        optional("serviceLevel").alias("service_level_pct"),
        *([pl.col("contactsInQueue").fill_null(0.0).alias("max_in_queue")] if "contactsInQueue" in frame.columns
          else []),
    )
    return check(out, "QUEUE_INTERVALS", "whit")
