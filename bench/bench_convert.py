"""Benchmark `gisgate convert` as users run it, against the I/O floor, on a week of intervals.

    python bench/bench_convert.py [--shape whole|decimal] [--rows 4M|20M|N] [--repeat N]
                                  [--order time|agent] [--period iso|epoch]
                                  [--no-pandas] [--keep] [--data DIR] [--trace] [--digest]

Generates agents × 3 queues × 7 days of 15-minute agent rows (`--rows 4M`: 2,000 agents, 4.03 M
rows; `--rows 20M`: 10,000 agents, 20.2 M rows) and the matching service CSV into a temporary
folder (`--data DIR`, kept with `--keep`; never inside the repository), in one of two shapes:

  whole    whole-number metrics (counts, whole seconds), as most ACD exports hold;
  decimal  the metrics of the original benchmark, mostly with one decimal (the default).

Rows come in interval order (`--order time`, the GIS key order) or per agent and queue
(`--order agent`, as exports written per agent come; gisgate must sort them); `periodStart` is
ISO-8601 UTC (`--period iso`) or epoch seconds (`--period epoch`, which takes gisgate's slower
parsing path).

Then runs, each job in its own process, outputs to a RAM folder (/dev/shm):

  floor    `python -c` polars read_csv + write_csv of the same CSVs: the I/O floor;
  typed    the same, reading IDs as text and metrics as doubles (`TYPED_FLOOR`): the floor of a
           conversion that keeps `00123` as it is and takes decimals where they come;
  gisgate  `python -m gisgate convert agent.csv service.csv --tz America/New_York --out DIR -q`
           (this checkout's gisgate, the command as users run it);
  pandas   a straightforward pandas implementation of the same conversion (below), once.

Time is wall time around the child; memory is the child's own peak RSS (`os.wait4` in a tiny
wrapper process, see _child.py: without it every job would inherit the benchmark's own peak).
Each run also prints the share of CPU other processes took meanwhile; before each job the script
waits (up to `--patience`, 2 min) for the machine to be quiet, and a round during which other
processes took more than `--max-others` (15 %) of the CPU is run again (up to 3 times);
`--no-wait` skips both.
floor, typed and gisgate run in rounds, rotating which goes first; each round's ratios
gisgate / floor and gisgate / typed are printed, then the medians. `--trace` samples each child's RSS over time
(psutil) and prints a timeline; `--digest` prints a hash of gisgate's output files (names and
bytes), to check a product change leaves them byte-identical.

Targets: time <= 1.5x the floor on both shapes at 4 M and 20 M rows; peak RSS <= 1.2x
the floor's at 4 M rows and <= 3 GiB at 20 M rows.
"""

from __future__ import annotations

import argparse
import compileall
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _child  # noqa: E402

HERE = Path(__file__).resolve().parent
TZ = "America/New_York"
PRESETS = {"4M": 2000, "20M": 10000}  # agents, with 3 queues x 7 days x 96 intervals each

FLOOR = """
import sys, polars as pl
data, out = sys.argv[1], sys.argv[2]
for name in ("agent", "service"):
    pl.read_csv(f"{data}/{name}.csv").write_csv(f"{out}/{name}.csv")
"""


# The floor with the types a correct conversion must read: IDs as text (`00123` is not 123) and
# metrics as doubles (a value may have decimals). The plain floor lets polars infer integers for
# both, which is cheaper to parse and to print than any conversion that keeps IDs intact can be.
TYPED_FLOOR = """
import sys, polars as pl
data, out = sys.argv[1], sys.argv[2]
for name in ("agent", "service"):
    path = f"{data}/{name}.csv"
    header = open(path).readline().strip().split(",")
    types = {c: pl.String if c in ("periodStart", "acdAgentId", "acdServiceId") else pl.Float64 for c in header}
    pl.read_csv(path, schema_overrides=types).write_csv(f"{out}/{name}.csv")
"""


def gisgate_argv(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "gisgate", "convert", str(data / "agent.csv"), str(data / "service.csv"),
            "--tz", TZ, "--out", str(out), "-q"]


# A straightforward pandas conversion: read, check, name each interval on the local clock, write
# one file per interval with the GIS header and plain-decimal numbers.
PANDAS = """
import sys
import numpy as np
import pandas as pd
data, out = sys.argv[1], sys.argv[2]
TZ = "@TZ@"

def fmt(values, decimals):
    scaled = np.floor(values.to_numpy(dtype="float64") * 10**decimals + 0.5).astype("int64")
    whole, frac = scaled // 10**decimals, scaled % 10**decimals
    text = pd.Series(whole.astype(str))
    fr = pd.Series(frac.astype(str)).str.zfill(decimals).str.rstrip("0")
    return text.where(fr == "", text + "." + fr)

def convert(path, word, suffix, keys):
    df = pd.read_csv(path, dtype={"acdAgentId": str, "acdServiceId": str})
    metrics = [c for c in df.columns if c not in ("periodStart", "acdAgentId", "acdServiceId")]
    if (df[metrics] < 0).any().any() or df[metrics].isna().any().any():
        raise SystemExit(3)
    df["start"] = pd.to_datetime(df["periodStart"], utc=True, format="ISO8601")
    local = df["start"].dt.tz_convert(TZ)
    if ((local.dt.minute % 15) != 0).any():
        raise SystemExit(3)
    if df.duplicated(["start", *keys]).any():
        raise SystemExit(3)
    df = df.sort_values(["start", *keys])
    cols = [c for c in df.columns if c not in ("periodStart", "start")]
    text = pd.DataFrame({c: (df[c] if c in keys else fmt(df[c], 2 if c == "serviceLevelPercent" else 3))
                         for c in cols})
    text["start"] = df["start"].to_numpy()
    for start, group in text.groupby("start", sort=True):
        ts = pd.Timestamp(start).tz_convert(TZ)
        off = int(ts.utcoffset().total_seconds() // 60)
        sign, hh, mm = ("N" if off < 0 else "P"), abs(off) // 60, abs(off) % 60
        name = f"{ts:%Y%m%d%H%M}{sign}{hh:02d}{mm:02d}_1_{suffix}"
        header = (f"{word} DATE: {ts:%Y-%m-%d} INTERVAL: {ts:%H:%M} "
                  f"TZOFFSET: {'-' if off < 0 else '+'}{hh:02d}{mm:02d} ACD: 1")
        with open(f"{out}/{name}", "w", newline="") as f:
            f.write(header + "\\r\\n" + ",".join(cols) + "\\r\\n")
            group[cols].to_csv(f, header=False, index=False, lineterminator="\\r\\n")

convert(f"{data}/agent.csv", "AGENT", "AgentProductivity.AGENT", ["acdAgentId", "acdServiceId"])
convert(f"{data}/service.csv", "SERVICE", "ServiceHistorical.SERVICE", ["acdServiceId"])
""".replace("@TZ@", TZ)


def generate(data: Path, agents: int, days: int, shape: str, order: str = "time", period: str = "iso") -> None:
    """Write DATA/{agent,service}.csv with polars (vectorised: ~5 s for 4 M rows)."""
    import polars as pl

    data.mkdir(parents=True, exist_ok=True)
    start = pl.datetime(2024, 11, 1, 4, 0, time_zone="UTC")  # local midnight in New York, covers fall-back
    intervals = pl.int_range(0, days * 96, eager=True).alias("i")
    parts = {"i": pl.DataFrame(intervals), "a": pl.DataFrame({"a": range(agents)}), "q": pl.DataFrame({"q": range(3)})}
    # time order: interval, agent, queue (GIS key order); agent order: agent, queue, interval (an
    # export per agent, as many ACDs write them)
    first, *rest = [parts[k] for k in ("iaq" if order == "time" else "aqi")]
    frame = first.join(rest[0], how="cross").join(rest[1], how="cross")
    n = frame.height
    i, a, q = pl.col("i"), pl.col("a"), pl.col("q")
    h = (i * 7 + a * 13 + q * 29) % 101  # deterministic pseudo-variety
    periods = pl.select(start).item()
    start_at = pl.lit(periods) + pl.duration(minutes=i * 15)
    start_text = start_at.dt.strftime("%Y-%m-%dT%H:%M:%SZ") if period == "iso" else start_at.dt.epoch("s")
    keys = [
        start_text.alias("periodStart"),
        pl.format("{}", 10000 + a).alias("acdAgentId"),
        pl.format("{}", 9912300 + q).alias("acdServiceId"),
    ]
    # The unprorated values depend on the agent and interval only: they repeat on the agent's rows.
    if shape == "decimal":
        metrics = [
            (h % 5).cast(pl.Int64).alias("contactsHandled"),
            (h * 3.7).round(1).alias("totalTalkSeconds"),
            (h % 7 * 2.5).alias("totalHoldSeconds"),
            (h * 0.9).round(1).alias("totalAfterContactWorkSeconds"),
            (h * 4.1).round(1).alias("totalPeriodHandleTimeSeconds"),
            ((i + a) % 300).cast(pl.Float64).alias("totalUnproratedReadyWaitingSeconds"),
            ((i * 3 + a) % 120).cast(pl.Float64).alias("totalUnproratedNotReadyBusySeconds"),
            pl.lit(900.0).alias("totalUnproratedInSessionSeconds"),
        ]
    else:  # whole numbers: counts and whole seconds, as ACDs export them
        talk, hold, acw = (h * 37 + a) % 600, h % 7 * 9, h * 13 % 150
        metrics = [
            (h % 5).alias("contactsHandled"),
            talk.alias("totalTalkSeconds"),
            hold.alias("totalHoldSeconds"),
            acw.alias("totalAfterContactWorkSeconds"),
            pl.min_horizontal(talk + hold + acw, pl.lit(900)).alias("totalPeriodHandleTimeSeconds"),
            ((i + a) % 300).alias("totalUnproratedReadyWaitingSeconds"),
            ((i * 3 + a) % 120).alias("totalUnproratedNotReadyBusySeconds"),
            pl.lit(900).alias("totalUnproratedInSessionSeconds"),
        ]
    agent = frame.select(*keys, *[m.cast(pl.Int64) if shape == "whole" else m for m in metrics])
    del frame
    agent.write_csv(data / "agent.csv")
    service = agent.group_by("periodStart", "acdServiceId", maintain_order=True).agg(
        pl.col("contactsHandled").sum().alias("contactsHandled"),
        pl.col("totalTalkSeconds").sum(), pl.col("totalHoldSeconds").sum(),
        pl.col("totalAfterContactWorkSeconds").sum(),
    )
    del agent
    handled = pl.col("contactsHandled")
    sl = 100.0 * handled / (handled + 3)
    service = service.with_columns(
        (handled + 3).alias("contactsOffered"),
        handled.alias("contactsAnswered"),
        pl.lit(3).alias("contactsAbandoned"),
        (handled * 11 if shape == "whole" else handled * 11.5).alias("totalAnswerDelaySeconds"),
        (sl.round(0).cast(pl.Int64) if shape == "whole" else sl.round(2)).alias("serviceLevelPercent"),
    ).select("periodStart", "acdServiceId", "contactsOffered", "contactsHandled", "contactsAnswered",
             "contactsAbandoned", "totalTalkSeconds", "totalHoldSeconds", "totalAfterContactWorkSeconds",
             "totalAnswerDelaySeconds", "serviceLevelPercent")
    service.write_csv(data / "service.csv")
    size = (data / "agent.csv").stat().st_size / 1e6
    print(f"generated {n:,} agent rows ({size:.0f} MB, {shape} metrics, {order} order, {period} periodStart) and "
          f"{service.height:,} service rows in {data}")


def parse_rows(text: str, days: int) -> int:
    """`4M` / `20M` presets, or a row count (`3000000`, `6M`) → agents."""
    if text.upper() in PRESETS:
        return PRESETS[text.upper()]
    rows = float(text[:-1]) * 1e6 if text.upper().endswith("M") else float(text)
    return max(1, round(rows / (3 * 96 * days)))


def show(r: _child.Run) -> None:
    print(f"  {r.label:8s} {r.seconds:7.2f} s  {r.cpu:6.2f} CPU s   peak {r.peak / _child.GIB:6.2f} GiB   "
          f"{r.files} files   (other processes: {r.others:.0%} CPU)", flush=True)
    if r.trace:
        print(_child.timeline(r))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=["whole", "decimal"], default="decimal")
    parser.add_argument("--order", choices=["time", "agent"], default="time",
                        help="agent rows by interval (the GIS key order) or by agent, queue, interval")
    parser.add_argument("--period", choices=["iso", "epoch"], default="iso",
                        help="periodStart as 2024-11-01T04:00:00Z or as epoch seconds")
    parser.add_argument("--rows", default=None, help="4M (2,000 agents), 20M (10,000 agents) or a row count")
    parser.add_argument("--agents", type=int, default=2000, help="(when --rows is not given)")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--data", type=Path, default=None, help="input folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="reuse the input folder if present, and keep it")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of floor, typed floor and gisgate")
    parser.add_argument("--no-pandas", action="store_true", help="skip the (slow) pandas job")
    _child.add_round_options(parser)
    parser.add_argument("--digest", action="store_true", help="print a hash of gisgate's output files")
    args = parser.parse_args()
    agents = parse_rows(args.rows, args.days) if args.rows else args.agents
    data = args.data or (Path(tempfile.gettempdir())
                         / f"gisgate-bench-{args.shape}-{args.order}-{args.period}-{agents}x{args.days}")
    if not (args.keep and (data / "agent.csv").exists() and (data / "service.csv").exists()):
        generate(data, agents, args.days, args.shape, args.order, args.period)
    mb = (data / "agent.csv").stat().st_size / 1e6
    # An installed gisgate has its bytecode compiled (pip does it); so has this checkout's, before
    # timing (with PYTHONDONTWRITEBYTECODE set, every run would otherwise compile it again).
    compileall.compile_dir(_child.REPO / "gisgate", quiet=1)
    floor_argv = [sys.executable, "-c", FLOOR, str(data)]
    typed_argv = [sys.executable, "-c", TYPED_FLOOR, str(data)]
    jobs = {
        "floor": lambda out: floor_argv + [str(out)],
        "typed": lambda out: typed_argv + [str(out)],
        "gisgate": lambda out: gisgate_argv(data, out),
    }
    print(f"{args.shape} metrics, {args.order} order, {args.period} periodStart, {agents:,} agents x 3 queues x "
          f"{args.days} days, agent.csv {mb:.0f} MB; "
          f"outputs in {_child.RAM}")
    try:
        def run_one(label: str, k: int) -> _child.Run:
            out = _child.RAM / f"gisgate-bench-out-{label}"
            keep = args.digest and label == "gisgate" and k == 0
            r = _child.run(label, jobs[label](out), out, trace=args.trace, keep=keep)
            show(r)
            if keep:
                print(f"  gisgate output digest: {_child.digest(out)}")
                shutil.rmtree(out, ignore_errors=True)
            return r

        # alternate which job goes first, so a drift of the machine hits both alike
        labels = ("floor", "typed", "gisgate")
        runs = _child.rounds(args.repeat, lambda k: labels[k % 3:] + labels[:k % 3], run_one, wait=not args.no_wait,
                             max_others=args.max_others, patience=args.patience)
        pandas = None
        if not args.no_pandas:
            if not args.no_wait:
                _child.wait_quiet(patience=args.patience)
            out = _child.RAM / "gisgate-bench-out-pandas"
            pandas = _child.run("pandas", [sys.executable, "-c", PANDAS, str(data), str(out)], out,
                                trace=args.trace)
            show(pandas)
    finally:
        if not args.keep and args.data is None:
            shutil.rmtree(data, ignore_errors=True)
    report(runs, pandas)


def report(runs: dict[str, list[_child.Run]], pandas: _child.Run | None) -> None:
    f, t, g = runs["floor"], runs["typed"], runs["gisgate"]
    gib = _child.GIB
    print("round   floor s  typed s  gisgate s  time x  x typed   floor GiB  gisgate GiB  memory x")
    for k, (fr, tr, gr) in enumerate(zip(f, t, g, strict=True), start=1):
        print(f"{k:5d}  {fr.seconds:8.2f}  {tr.seconds:7.2f}  {gr.seconds:9.2f}  {gr.seconds / fr.seconds:6.2f}  "
              f"{gr.seconds / tr.seconds:7.2f}   {fr.peak / gib:9.2f}  {gr.peak / gib:11.2f}  {gr.peak / fr.peak:8.2f}")
    med = statistics.median
    ratio = med(gr.seconds / fr.seconds for fr, gr in zip(f, g, strict=True))
    typed = med(gr.seconds / tr.seconds for tr, gr in zip(t, g, strict=True))
    mr = med(gr.peak / fr.peak for fr, gr in zip(f, g, strict=True))
    seconds = [med(r.seconds for r in runs) for runs in (f, t, g)]
    print(f"median {seconds[0]:8.2f}  {seconds[1]:7.2f}  {seconds[2]:9.2f}  {ratio:6.2f}  {typed:7.2f}   "
          f"{med(r.peak for r in f) / gib:9.2f}  {med(r.peak for r in g) / gib:11.2f}  {mr:8.2f}")
    cpu = [med(gr.cpu / fr.cpu for fr, gr in zip(runs, g, strict=True)) for runs in (f, t)]
    print(f"CPU seconds, gisgate / floor: {cpu[0]:.2f}x; gisgate / typed floor: {cpu[1]:.2f}x")
    print(f"gisgate / floor: time {ratio:.2f}x (target <= 1.5x; against the typed floor {typed:.2f}x), memory "
          f"{mr:.2f}x (target <= 1.2x at 4 M rows; <= 3 GiB at 20 M rows: {med(r.peak for r in g) / gib:.2f} GiB)")
    if pandas is not None:
        print(f"pandas / gisgate time: {pandas.seconds / med(r.seconds for r in g):.2f}x (target >= 5x), "
              f"pandas peak {pandas.peak / gib:.2f} GiB")


if __name__ == "__main__":
    main()
