"""Benchmark: platform exports → GIS files, against pandas and against a plain polars read + write.

    python bench/bench_platforms.py              # 2,000 agents × 150 state events/day × 7 days; 1 M contacts
    python bench/bench_platforms.py --scale 0.1  # a tenth of that, for a quick look
    python bench/bench_platforms.py --no-pandas --repeat 5

Two workloads, each timed three ways on the same input file:

    states    CommunityWFM AgentUpdates CSV (≈ 2.1 M events) → spans → AGENT files
    contacts  Talkdesk contacts CSV (1 M contacts)             → SERVICE + AGENT files

    gisgate   pipeline.convert + pipeline.write (adapter checks, transform, GIS rendering, atomic write)
    pandas    the same transform written with pandas/numpy (kept below), writing one CSV per interval
    floor     polars read_csv of the input + write_csv of it: the least any tool must spend
    least     the least polars transform (below): gisgate's arithmetic without its checks or file naming

Figures go to stdout. Targets: gisgate ≥ 5× faster than pandas, ≤ 2.5× the polars floor.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # time this checkout, not an installed copy

from gisgate import pipeline  # noqa: E402
from gisgate.config import ConvertOptions  # noqa: E402

TZ = "America/New_York"
STEP_US = 15 * 60 * 1_000_000
DAY0 = datetime(2024, 11, 1, tzinfo=UTC)  # the week spans the 2024-11-03 fall-back day
ACTIVITIES = np.array(["Ready", "OnCall", "Wrapup", "NotReady", "Hold"], dtype="U16")  # room for "LoggedOut"
ACTIVITY_STATE = {
    "loggedout": "LOGOUT",
    "notready": "NOT_READY",
    "ready": "READY",
    "oncall": "TALKING",
    "wrapup": "WORK_READY",
    "hold": "HOLD",
}


# --- input generation (vectorised) -----------------------------------------------------------------


def make_states(path: Path, agents: int, per_day: int, days: int, rng: np.random.Generator) -> int:
    shifts = agents * days
    login = (np.repeat(np.arange(days), agents) * 86_400 + 12 * 3600 + rng.integers(0, 4 * 3600, shifts)) * 1000
    gaps = rng.exponential(216_000, (shifts, per_day)).astype(np.int64) + 1000  # ms, ≈ 9 h per shift
    at = login[:, None] + np.cumsum(gaps, axis=1)
    act = ACTIVITIES[rng.integers(0, len(ACTIVITIES), (shifts, per_day))]
    act[:, -1] = "LoggedOut"
    agent = np.repeat(np.tile(np.arange(agents), days), per_day)
    frame = (
        pl.DataFrame(
            {
                "AgentId": agent.astype(str),
                "ms": at.ravel(),
                "Activity": act.ravel(),
            }
        )
        .with_columns(
            (pl.lit(DAY0) + pl.duration(milliseconds=pl.col("ms")))
            .dt.strftime("%Y-%m-%d %H:%M:%S%.3f")
            .alias("EventTime"),
            pl.when(pl.col("Activity") == "NotReady").then(pl.lit("Break")).otherwise(pl.lit("")).alias("ReasonCode"),
        )
        .select("AgentId", "EventTime", "Activity", "ReasonCode")
    )
    frame.write_csv(path)
    return frame.height


def make_contacts(path: Path, n: int, agents: int, days: int, rng: np.random.Generator) -> int:
    arrived = rng.integers(0, days * 86_400, n)
    outcome = rng.choice(np.array(["Answered", "Abandoned", "Short Abandoned"]), n, p=[0.85, 0.1, 0.05])
    answered = outcome == "Answered"
    wait = np.where(outcome == "Short Abandoned", rng.integers(1, 5, n), rng.integers(0, 120, n))
    talk = np.where(answered, rng.integers(30, 900, n), 0)
    hold = np.where(answered & (rng.random(n) < 0.2), rng.integers(5, 120, n), 0)
    acw = np.where(answered, rng.integers(0, 90, n), 0)
    finished = arrived + wait + talk + hold

    def stamp(seconds: pl.Expr) -> pl.Expr:
        return (pl.lit(DAY0) + pl.duration(seconds=seconds)).dt.strftime("%Y-%m-%d %H:%M:%S")

    frame = pl.DataFrame(
        {
            "id": np.arange(n),
            "arr": arrived,
            "wait": wait,
            "fin": finished,
            "answered": answered,
            "contact_type": outcome,
            "talk_time": talk,
            "hold_time": hold,
            "after_call_work_time": acw,
            "rg": rng.integers(0, 20, n),
            "agent": rng.integers(0, agents, n),
            "xfer": rng.random(n) < 0.05,
        }
    ).select(
        ("i" + pl.col("id").cast(pl.String)).alias("interaction_id"),
        ("c" + pl.col("id").cast(pl.String)).alias("contact_id"),
        pl.lit("IN").alias("direction"),
        "contact_type",
        stamp(pl.col("arr")).alias("started_at"),
        pl.when(pl.col("answered"))
        .then(stamp(pl.col("arr") + pl.col("wait")))
        .otherwise(pl.lit("None"))
        .alias("answered_at"),
        stamp(pl.col("fin")).alias("finished_at"),
        pl.col("wait").alias("wait_time"),
        "talk_time",
        "hold_time",
        "after_call_work_time",
        pl.when(pl.col("xfer")).then(pl.lit("Yes")).otherwise(pl.lit("No")).alias("transfer_out"),
        ("rg" + pl.col("rg").cast(pl.String)).alias("ring_groups"),
        pl.when(pl.col("answered"))
        .then("u" + pl.col("agent").cast(pl.String))
        .otherwise(pl.lit("None"))
        .alias("user_id"),
    )
    frame.write_csv(path)
    return frame.height


# --- pandas implementation of the same transforms ---------------------------------------------------


def pd_floor_local(utc: pd.Series) -> pd.Series:
    local = utc.dt.tz_convert(TZ)
    past = (local.dt.minute % 15) * 60_000_000 + local.dt.second * 1_000_000 + local.dt.microsecond
    return utc - pd.to_timedelta(past, unit="us")


def pd_split(frame: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    """One row per (span, interval), with the overlap in microseconds: numpy repeat, no Python loop."""
    frame = frame[frame[end] > frame[start]]
    first = pd_floor_local(frame[start])
    last = pd_floor_local(frame[end] - pd.Timedelta(microseconds=1))
    n = ((last - first) // pd.Timedelta(microseconds=STEP_US)).astype(np.int64).to_numpy() + 1
    rep = frame.loc[frame.index.repeat(n)].reset_index(drop=True)
    k = np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n)
    naive = np.repeat(first.dt.tz_convert(None).to_numpy().astype("datetime64[us]"), n)
    rep["interval_start"] = pd.Series(naive + (k * STEP_US).astype("timedelta64[us]")).dt.tz_localize("UTC")
    iv_end = rep["interval_start"] + pd.Timedelta(microseconds=STEP_US)
    piece = np.minimum(rep[end], iv_end) - np.maximum(rep[start], rep["interval_start"])
    rep["piece_us"] = piece.dt.total_seconds() * 1e6
    return rep


def pd_write_intervals(frame: pd.DataFrame, out: Path, suffix: str) -> int:
    files = 0
    for start, part in frame.groupby("interval_start", sort=True):
        part.drop(columns="interval_start").to_csv(out / f"{start:%Y%m%d%H%M}_{suffix}.csv", index=False)
        files += 1
    return files


def pandas_states(path: Path, out: Path, until: pd.Timestamp, service: str) -> int:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df["at"] = pd.to_datetime(df["EventTime"], format="%Y-%m-%d %H:%M:%S.%f").dt.tz_localize("UTC")
    key = df["Activity"].str.lower().str.replace(r"[\s_\-]", "", regex=True)
    df["state"] = key.map(ACTIVITY_STATE).fillna("NOT_READY")
    df = df[["AgentId", "at", "state", "ReasonCode"]].drop_duplicates()
    df = df.sort_values(["AgentId", "at", "state", "ReasonCode"]).reset_index(drop=True)
    df["end"] = df.groupby("AgentId")["at"].shift(-1).fillna(until).clip(upper=until)
    limit = pd.Timedelta(hours=12)
    df["end"] = df["end"].where(df["end"] - df["at"] <= limit, df["at"] + limit)
    df = df[df["state"] != "LOGOUT"]
    pieces = pd_split(df, "at", "end")
    pieces["ready"] = np.where(pieces["state"] == "READY", pieces["piece_us"], 0.0)
    pieces["not_ready"] = np.where(pieces["state"] == "NOT_READY", pieces["piece_us"], 0.0)
    agg = pieces.groupby(["interval_start", "AgentId"], sort=True)[["ready", "not_ready", "piece_us"]].sum() / 1e6
    agg = agg.rename(columns={"piece_us": "in_session"}).reset_index()
    agg.insert(2, "service_id", service)
    return pd_write_intervals(agg, out, "AGENT")


def pandas_contacts(path: Path, out: Path, sl: float) -> int:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for src, dst in (("started_at", "arrived"), ("answered_at", "answered"), ("finished_at", "ended")):
        df[dst] = pd.to_datetime(df[src].replace("None", None), format="%Y-%m-%d %H:%M:%S").dt.tz_localize("UTC")
    for c in ("wait_time", "talk_time", "hold_time", "after_call_work_time"):
        df[c] = pd.to_numeric(df[c])
    df["outcome"] = df["contact_type"].str.lower().str.replace(" ", "_")
    df["agent"] = df["user_id"].replace("None", None)
    df["service"] = df["ring_groups"]
    ans = df["outcome"] == "answered"
    offered = df[df["outcome"].isin(["answered", "abandoned"])].assign(iv=lambda d: pd_floor_local(d["arrived"]))
    offered["sl_n"] = ((offered["outcome"] == "answered") & (offered["wait_time"] <= sl)).astype(float)
    q1 = offered.groupby(["iv", "service"]).agg(offered=("contact_id", "size"), sl_n=("sl_n", "sum"))
    a = df[ans].assign(iv=lambda d: pd_floor_local(d["answered"]))
    q2 = a.groupby(["iv", "service"]).agg(answered=("contact_id", "size"), answer_delay=("wait_time", "sum"))
    e = df[ans].assign(iv=lambda d: pd_floor_local(d["ended"]))
    q3 = e.groupby(["iv", "service"]).agg(
        handled=("contact_id", "size"),
        talk=("talk_time", "sum"),
        hold=("hold_time", "sum"),
        acw=("after_call_work_time", "sum"),
    )
    ab = df[df["outcome"] == "abandoned"].assign(iv=lambda d: pd_floor_local(d["ended"]))
    q4 = ab.groupby(["iv", "service"]).agg(abandoned=("contact_id", "size"))
    q = pd.concat([q1, q2, q3, q4], axis=1).fillna(0.0)
    grid = pd.MultiIndex.from_product(
        [pd.date_range(q.index.levels[0].min(), q.index.levels[0].max(), freq="15min"), sorted(df["service"].unique())],
        names=["iv", "service"],
    )
    q = q.reindex(grid, fill_value=0.0)
    q["sl_pct"] = np.where(
        q["offered"] > 0, (100 * q["sl_n"] / q["offered"].where(q["offered"] > 0, 1)).clip(0, 100), 0
    )
    q = q.drop(columns="sl_n").reset_index().rename(columns={"iv": "interval_start"})
    files = pd_write_intervals(q, out, "SERVICE")
    # agents: whole-contact metrics by end interval, period handle time clipped to every interval
    ag = e.groupby(["iv", "agent", "service"]).agg(
        handled=("contact_id", "size"),
        talk=("talk_time", "sum"),
        hold=("hold_time", "sum"),
        acw=("after_call_work_time", "sum"),
        transferred_out=("transfer_out", lambda s: (s == "Yes").sum()),
    )
    work = df[ans].copy()
    work["h_end"] = work["answered"] + pd.to_timedelta(
        (work["talk_time"] + work["hold_time"] + work["after_call_work_time"]) * 1e6, unit="us"
    )
    pieces = pd_split(work[["agent", "service", "answered", "h_end"]], "answered", "h_end")
    ph = pieces.groupby(["interval_start", "agent", "service"])["piece_us"].sum() / 1e6
    ph.index = ph.index.set_names(["iv", "agent", "service"])
    ag = ag.join(ph.rename("period_handle"), how="outer").fillna(0.0).reset_index()
    return files + pd_write_intervals(ag.rename(columns={"iv": "interval_start"}), out, "AGENT")


# --- the least polars transform: how far below gisgate polars itself can go ---------------------------
# The same arithmetic as gisgate with nothing else: no input checks, no ID or state mapping tables,
# UTC-truncated intervals (right for New York, not for +05:45 zones), default float text and one
# CSV instead of a named file per interval. It shows what the floor leaves out (parsing,
# sorting, splitting, grouping), not a way to convert.

STEP = 900 * 1_000_000  # µs


def _pieces(lf: pl.LazyFrame, start: str, end: str) -> pl.LazyFrame:
    """[start, end) µs spans cut into one row per 15-minute interval (`iv`, overlap `p`)."""
    return (
        lf.filter(pl.col(end) > pl.col(start))
        .with_columns(pl.int_ranges(0, (pl.col(end) - 1) // STEP - pl.col(start) // STEP + 1).alias("k"))
        .explode("k")
        .with_columns((pl.col(start) // STEP * STEP + pl.col("k") * STEP).alias("iv"))
        .with_columns((pl.min_horizontal(pl.col(end), pl.col("iv") + STEP)
                       - pl.max_horizontal(pl.col(start), pl.col("iv"))).alias("p"))
    )


def least_states(path: Path, out: Path, until: datetime) -> None:
    codes = {"ready": 0, "notready": 1, "oncall": 2, "wrapup": 3, "hold": 4, "loggedout": 5}
    df = pl.read_csv(path, schema_overrides={"AgentId": pl.String, "ReasonCode": pl.String})
    df = df.with_columns(
        pl.col("EventTime").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us").dt.epoch("us").alias("t"),
        pl.col("AgentId").cast(pl.Categorical).to_physical().cast(pl.Int64).alias("a"),
        pl.col("Activity").str.to_lowercase().replace_strict(codes, default=6, return_dtype=pl.Int8).alias("s"),
    )
    t0, end = df["t"].min(), int(until.timestamp() * 1_000_000)
    df = df.sort(pl.col("a") * 2**42 + (pl.col("t") - t0))  # one packed key: agent, then time
    rows = (
        _pieces(df.lazy().with_columns(
            pl.when(pl.col("a") == pl.col("a").shift(-1)).then(pl.col("t").shift(-1)).otherwise(end).alias("e")
        ).filter(pl.col("s") != codes["loggedout"]), "t", "e")
        .with_columns((pl.col("a") * 2**32 + (pl.col("iv") - t0) // STEP).set_sorted().alias("key"),
                      pl.when(pl.col("s") == 0).then(pl.col("p")).otherwise(0).alias("r"),
                      pl.when(pl.col("s") == 1).then(pl.col("p")).otherwise(0).alias("n"))
        .group_by("key", maintain_order=True)
        .agg(pl.col("a").first(), pl.col("iv").first(), (pl.col("r").sum() / 1e6).alias("ready"),
             (pl.col("n").sum() / 1e6).alias("not_ready"), (pl.col("p").sum() / 1e6).alias("in_session"))
        .sort(pl.col("iv") * 4096 + pl.col("a"))
        .collect()
    )
    rows.write_csv(out / "agent.csv")


def least_contacts(path: Path, out: Path, threshold_s: float) -> None:
    def us(c: str) -> pl.Expr:
        return pl.col(c).str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us").dt.epoch("us")

    df = pl.read_csv(path, null_values=["None"]).filter(pl.col("contact_type") != "Short Abandoned").with_columns(
        us("started_at").alias("arr"), us("answered_at").alias("ans"), us("finished_at").alias("fin"),
    ).lazy()  # a short abandon is not an offered contact
    ans = pl.col("ans").is_not_null()
    by_end = df.group_by("ring_groups", (pl.col("fin") // STEP * STEP).alias("iv")).agg(
        ans.sum().alias("handled"), (~ans).sum().alias("abandoned"),
        pl.col("talk_time").sum(), pl.col("hold_time").sum(), pl.col("after_call_work_time").sum())
    by_arrival = df.group_by("ring_groups", (pl.col("arr") // STEP * STEP).alias("iv")).agg(pl.len().alias("offered"))
    by_answer = df.filter(ans).group_by("ring_groups", (pl.col("ans") // STEP * STEP).alias("iv")).agg(
        pl.len().alias("answered"), ((pl.col("ans") - pl.col("arr")) / 1e6).sum().alias("answer_delay"),
        ((pl.col("ans") - pl.col("arr")) <= threshold_s * 1e6).sum().alias("in_sl"))
    queue = (by_arrival.join(by_answer, on=["ring_groups", "iv"], how="full", coalesce=True)
             .join(by_end, on=["ring_groups", "iv"], how="full", coalesce=True).fill_null(0)
             .with_columns(pl.when(pl.col("offered") > 0).then(100 * pl.col("in_sl") / pl.col("offered"))
                           .otherwise(0.0).round(2).alias("sl")).sort("iv", "ring_groups"))
    handled = df.filter(ans).with_columns(
        (pl.col("ans") + (pl.col("talk_time") + pl.col("hold_time") + pl.col("after_call_work_time")) * 1_000_000)
        .alias("h_end"))
    metrics = handled.group_by("user_id", "ring_groups", (pl.col("fin") // STEP * STEP).alias("iv")).agg(
        pl.len().alias("handled"), pl.col("talk_time").sum(), pl.col("hold_time").sum(),
        pl.col("after_call_work_time").sum())
    period = _pieces(handled, "ans", "h_end").group_by("user_id", "ring_groups", "iv").agg(
        (pl.col("p").sum() / 1e6).alias("period_handle"))
    agent = metrics.join(period, on=["user_id", "ring_groups", "iv"], how="full", coalesce=True).fill_null(0)
    queue, agent = pl.collect_all([queue, agent.sort("iv", "user_id", "ring_groups")])
    queue.write_csv(out / "service.csv")
    agent.write_csv(out / "agent.csv")


# --- runs --------------------------------------------------------------------------------------------


def timed(fn):
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def floor(path: Path, out: Path) -> float:
    def run():
        pl.read_csv(path, infer_schema=False).write_csv(out / "copy.csv")

    return timed(run)[0]


def gisgate_run(path: Path, out: Path, options: ConvertOptions) -> tuple[float, int]:
    def run():
        conversion = pipeline.convert([path], options)
        return len(pipeline.write(conversion, out))

    return timed(run)


def report(name: str, rows: int, mb: float, g: tuple[float, int], p: tuple[float, int], f: float,
           least: float, paired: list[float]) -> None:
    print(f"{name}: {rows:,} rows, {mb:.0f} MB input")
    print(f"  gisgate  {g[0]:7.2f} s  ({g[1]} files)")
    print(f"  pandas   {p[0]:7.2f} s  ({p[1]} files)   gisgate is {p[0] / g[0]:.1f}x faster (target >= 5x)")
    print(f"  floor    {f:7.2f} s  (polars read + write)  gisgate is {g[0] / f:.2f}x the floor (target <= 2.5x)")
    print(f"           per round: {' '.join(f'{r:.2f}' for r in sorted(paired))}x")
    print(f"  least    {least:7.2f} s  (the least polars transform)  {least / f:.2f}x the floor; "
          f"gisgate is {g[0] / least:.2f}x it")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--only", choices=["states", "contacts"], default=None)
    ap.add_argument("--no-pandas", action="store_true", help="skip the (slow) pandas runs")
    ap.add_argument("--repeat", type=int, default=3, help="runs of gisgate and of the floor (alternating); "
                    "the best counts. pandas runs once.")
    a = ap.parse_args()
    rng = np.random.default_rng(42)
    # A RAM-backed folder when there is one, for inputs and outputs alike (see bench_convert.py: on
    # ext4, file creation right after many deletions times the cleanup, not the job).
    tmp = Path(tempfile.mkdtemp(prefix="gisgate-bench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))

    def fresh(name: str) -> Path:
        out = tmp / name
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        return out

    def measure(label, path, rows, gisgate_job, pandas_job, least_job):
        g, f, least = [], [], []
        for _ in range(a.repeat):  # alternate, so a slow spell hits all three
            g.append(gisgate_run(path, fresh("g"), gisgate_job))
            f.append(floor(path, fresh("f")))
            least.append(timed(lambda: least_job(path, fresh("l")))[0])
        p = (float("nan"), 0) if a.no_pandas else timed(lambda: pandas_job(path, fresh("p")))
        paired = [gr[0] / fr for gr, fr in zip(g, f, strict=True)]
        report(label, rows, path.stat().st_size / 1e6, min(g, key=lambda r: r[0]), p, min(f), min(least), paired)

    try:
        if a.only in (None, "states"):
            path = tmp / "agent_updates.csv"
            rows = make_states(path, int(2000 * a.scale), 150, 7, rng)
            until = datetime(2024, 11, 8, 12, tzinfo=UTC)
            opts = ConvertOptions(source="cwfm", tz=TZ, service="101", until=until.isoformat())
            measure("states → AGENT", path, rows, opts,
                    lambda p, out: pandas_states(p, out, pd.Timestamp(until), "101"),
                    lambda p, out: least_states(p, out, until))
        if a.only in (None, "contacts"):
            path = tmp / "contacts.csv"
            rows = make_contacts(path, int(1_000_000 * a.scale), 2000, 7, rng)
            opts = ConvertOptions(source="talkdesk", tz=TZ)
            measure("contacts → SERVICE + AGENT", path, rows, opts, lambda p, out: pandas_contacts(p, out, 20.0),
                    lambda p, out: least_contacts(p, out, 20.0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
