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
ACTIVITIES = np.array(["Ready", "OnCall", "Wrapup", "NotReady", "Hold"])
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


def report(name: str, rows: int, mb: float, g: tuple[float, int], p: tuple[float, int], f: float) -> None:
    print(f"{name}: {rows:,} rows, {mb:.0f} MB input")
    print(f"  gisgate  {g[0]:7.2f} s  ({g[1]} files)")
    print(f"  pandas   {p[0]:7.2f} s  ({p[1]} files)   gisgate is {p[0] / g[0]:.1f}x faster (target >= 5x)")
    print(f"  floor    {f:7.2f} s  (polars read + write)  gisgate is {g[0] / f:.2f}x the floor (target <= 2.5x)")


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

    def measure(label, path, rows, gisgate_job, pandas_job):
        g, f = [], []
        for _ in range(a.repeat):  # alternate, so a slow spell hits both
            g.append(gisgate_run(path, fresh("g"), gisgate_job))
            f.append(floor(path, fresh("f")))
        p = (float("nan"), 0) if a.no_pandas else timed(lambda: pandas_job(path, fresh("p")))
        report(label, rows, path.stat().st_size / 1e6, min(g, key=lambda r: r[0]), p, min(f))

    try:
        if a.only in (None, "states"):
            path = tmp / "agent_updates.csv"
            rows = make_states(path, int(2000 * a.scale), 150, 7, rng)
            until = datetime(2024, 11, 8, 12, tzinfo=UTC)
            opts = ConvertOptions(source="cwfm", tz=TZ, service="101", until=until.isoformat())
            measure("states → AGENT", path, rows, opts,
                    lambda p, out: pandas_states(p, out, pd.Timestamp(until), "101"))
        if a.only in (None, "contacts"):
            path = tmp / "contacts.csv"
            rows = make_contacts(path, int(1_000_000 * a.scale), 2000, 7, rng)
            opts = ConvertOptions(source="talkdesk", tz=TZ)
            measure("contacts → SERVICE + AGENT", path, rows, opts, lambda p, out: pandas_contacts(p, out, 20.0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
