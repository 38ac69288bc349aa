"""Benchmark agent states → AGENT files: `gisgate convert --from cwfm` against DuckDB, end to end.

    python bench/bench_states.py [--events 2M] [--repeat 3] [--pandas] [--trace] [--check-only]

Generates CommunityWFM AgentUpdates CSV (AgentId, EventTime, Activity, ReasonCode; 2,000 agents,
~143 events per agent and day, 7 days spanning the New York fall-back day: 2.0 M events) into a
temporary folder, then runs, each job in its own process, outputs to a RAM folder (/dev/shm):

  floor    polars read_csv + write_csv of the input: the least any tool must spend;
  gisgate  `python -m gisgate convert agent_updates.csv --from cwfm --tz America/New_York
           --service 101 --until 2024-11-08T12:00:00+00:00 --out DIR -q` (this checkout);
  duckdb   the same transform as DuckDB SQL (`DUCKDB_STATES` below): events → spans per agent
           ending at the agent's next event or the export end → cut at 15-minute local-clock
           boundaries → per agent × interval ready / not-ready / in-session seconds → one CSV;
  pandas   (with --pandas, once) bench_platforms.pandas_states, one CSV per interval.

Time is wall time around the child, beside the child's own CPU seconds (user + system, steadier
on a shared machine); memory is the child's own peak RSS (`os.wait4` in a tiny wrapper, see
_child.py). The jobs run in rounds, the order rotating each round, each after waiting
for a quiet machine; a round during which other processes took more than 15 % of the CPU is run
again (`--no-wait` skips both). Per-round ratios and medians are printed.

Before timing, a small run (`--check-events`, default 50,000, plus exact duplicates, tied events,
other spellings, an unknown state and a span past the 12-hour cut) compares DuckDB's rows with
gisgate's AGENT files row by row (agent × interval: ready, not-ready, in-session seconds) and their
totals, so that the comparison is between equal results. `--check-only` stops after that.

Target: gisgate at least as fast as DuckDB, with peak memory <= DuckDB's.
"""

from __future__ import annotations

import argparse
import compileall
import shutil
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _child  # noqa: E402  (stdlib only: a job's process imports nothing it does not use)

TZ = "America/New_York"
SERVICE = "101"
UNTIL = datetime(2024, 11, 8, 12, tzinfo=UTC)
MAX_SPAN_HOURS = 12.0
MINUTES = 15

# gisgate's state ranks (model.STATES order): ties of one agent's events at one instant are broken
# by rank, then reason and raw text, as gisgate does; LOGOUT = 0 ends a session. State texts match
# case-insensitively with blanks, `_` and `-` ignored; the regular expression only runs on a text
# that is not a plain spelling (lower case of a plain key has none of those characters).
# Exact duplicate events need no DISTINCT: the first of two equal events gets a zero-length span,
# which is dropped like any other, so the seconds are those of the events counted once.
STATE_CASE = """CASE {text}
    WHEN 'loggedout' THEN 0 WHEN 'logout' THEN 0 WHEN 'notready' THEN 1 WHEN 'ready' THEN 2
    WHEN 'oncall' THEN 3 WHEN 'wrapup' THEN 5 WHEN 'aftercallwork' THEN 5 WHEN 'hold' THEN 6
    ELSE {otherwise} END"""
DUCKDB_STATES = """
WITH events AS (
    SELECT AgentId AS agent, epoch_us(EventTime) AS t, ReasonCode AS reason, Activity AS raw_state,
           STATE_CASE_PLACEHOLDER AS s
    FROM read_csv($path, header = true,
                  columns = {'AgentId': 'VARCHAR', 'EventTime': 'TIMESTAMP', 'Activity': 'VARCHAR',
                             'ReasonCode': 'VARCHAR'})
),
spans AS (
    SELECT agent, s, t AS t0,
           least(coalesce(lead(t) OVER (PARTITION BY agent ORDER BY t, s, reason NULLS LAST, raw_state NULLS LAST),
                          $until), $until) AS t1
    FROM events
),
open AS (  -- in session (not LOGOUT), longer than nothing, cut at the longest plausible span
    SELECT agent, s, t0, CASE WHEN t1 - t0 > $limit THEN t0 + $limit ELSE t1 END AS t1
    FROM spans WHERE t1 > t0 AND s <> 0
),
pieces AS (  -- one row per span and local-clock interval it touches
    SELECT agent, s, t0, t1,
           unnest(range(($c + t0) // $step * $step - $c, t1, $step)) AS iv
    FROM open
)
SELECT iv, agent,
       sum(least(t1, iv + $step) - greatest(t0, iv)) FILTER (WHERE s = 2) AS ready_us,
       sum(least(t1, iv + $step) - greatest(t0, iv)) FILTER (WHERE s = 1) AS not_ready_us,
       sum(least(t1, iv + $step) - greatest(t0, iv)) AS in_session_us
FROM pieces
GROUP BY iv, agent
""".replace("STATE_CASE_PLACEHOLDER", STATE_CASE.format(
    text="lower(Activity)",
    otherwise=STATE_CASE.format(text="lower(regexp_replace(Activity, '[\\s_\\-]', '', 'g'))", otherwise="1"),
))

# The AGENT columns gisgate writes for state-only input: contact metrics are 0.
DUCKDB_OUT = """
COPY (
    SELECT strftime(make_timestamp(iv), '%Y-%m-%dT%H:%M:%SZ') AS intervalStart,
           agent AS acdAgentId, $service AS acdServiceId,
           0 AS contactsHandled, 0 AS totalTalkSeconds, 0 AS totalHoldSeconds,
           0 AS totalAfterContactWorkSeconds, 0 AS totalPeriodHandleTimeSeconds,
           round(coalesce(ready_us, 0) / 1e6, 3) AS totalUnproratedReadyWaitingSeconds,
           round(coalesce(not_ready_us, 0) / 1e6, 3) AS totalUnproratedNotReadyBusySeconds,
           round(in_session_us / 1e6, 3) AS totalUnproratedInSessionSeconds
    FROM agent_intervals ORDER BY iv, agent
) TO '{out}' (FORMAT csv, HEADER true)
"""


def local_shift(tz: str, minutes: int, first: datetime, last: datetime) -> int:
    """µs c such that the local interval start of t is (t + c) // step * step - c over [first, last]:
    the zone's offset modulo the interval, when it is one constant there (New York: 0, Kathmandu:
    45 min with 60-minute steps...), as gisgate's `split.floor_for` finds it."""
    from zoneinfo import ZoneInfo

    zone, residues = ZoneInfo(tz), set()
    t = first - timedelta(days=1)
    while t <= last + timedelta(days=1):
        residues.add(int(t.astimezone(zone).utcoffset().total_seconds() // 60) % minutes)
        t += timedelta(hours=1)  # every offset in force for an hour or more is seen
    if len(residues) != 1:
        raise SystemExit(f"{tz}: offset changes modulo {minutes} minutes; the DuckDB job handles constant ones")
    return residues.pop() * 60_000_000


def duckdb_states(path: Path, out: Path, until: datetime = UNTIL, service: str = SERVICE) -> None:
    import duckdb

    step = MINUTES * 60 * 1_000_000
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # The offset residue is checked over the year before `until` (no extra pass over the input to
    # find its first event); the result's first interval must then lie inside that year.
    first = until - timedelta(days=366)
    c = local_shift(TZ, MINUTES, first, until)
    params = {"path": str(path), "until": int(until.timestamp() * 1_000_000), "limit": int(MAX_SPAN_HOURS * 3600e6),
              "step": step, "c": c}
    con.execute("CREATE TEMP TABLE agent_intervals AS " + DUCKDB_STATES, params)
    earliest = con.execute("SELECT min(iv) FROM agent_intervals").fetchone()[0]
    if earliest is not None and earliest < first.timestamp() * 1_000_000:
        raise SystemExit("events older than a year before --until: check the zone's offsets over them")
    con.execute(DUCKDB_OUT.format(out=out / "agent.csv"), {"service": service})


FLOOR = """
import sys, polars as pl
pl.read_csv(sys.argv[1], infer_schema=False).write_csv(sys.argv[2] + "/copy.csv")
"""


def gisgate_argv(path: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "gisgate", "convert", str(path), "--from", "cwfm", "--tz", TZ,
            "--service", SERVICE, "--until", UNTIL.isoformat(), "--out", str(out), "-q"]


def job(name: str, path: Path, out: Path) -> None:
    """Run inside a child process (`--job NAME IN OUT`)."""
    if name == "duckdb":
        duckdb_states(path, out)
    elif name == "pandas":
        import pandas as pd
        from bench_platforms import pandas_states

        pandas_states(path, out, pd.Timestamp(UNTIL), SERVICE)
    else:
        raise SystemExit(f"unknown job {name}")


def generate(path: Path, events: int, days: int = 7, agents: int = 2000) -> int:
    import numpy as np
    from bench_platforms import make_states

    per_day = max(2, round(events / (agents * days)))
    return make_states(path, agents, per_day, days, np.random.default_rng(42))


# --- honesty check: DuckDB's rows against gisgate's files -------------------------------------------


def gis_agent_rows(folder: Path):
    """Every AGENT file of `folder` as one frame with the UTC interval start from the file name."""
    import polars as pl

    frames = []
    for p in sorted(folder.glob("*_AgentProductivity.AGENT")):
        stamp, sign, hh, mm = p.name[:12], p.name[12], int(p.name[13:15]), int(p.name[15:17])
        local = datetime.strptime(stamp, "%Y%m%d%H%M")
        offset = (hh * 60 + mm) * (-1 if sign == "N" else 1)
        start = local.replace(tzinfo=UTC).timestamp() - offset * 60
        frames.append(pl.read_csv(p, skip_rows=1, schema_overrides={"acdAgentId": pl.String, "acdServiceId": pl.String})
                      .with_columns(pl.lit(int(start * 1_000_000)).alias("iv")))
    return pl.concat(frames, how="diagonal_relaxed")


def check(data: Path, events: int) -> None:
    import polars as pl

    path = data / "check_updates.csv"
    generate(path, events, agents=max(10, events // 1000))
    # The awkward cases too: exact duplicates, two states of one agent at one instant, other
    # spellings and an unknown state, and a Ready span that runs past the 12-hour cut.
    frame = pl.read_csv(path, infer_schema=False)
    spelled = {"Ready": "READY", "NotReady": "Not Ready", "OnCall": "on_call", "Wrapup": "Wrap-Up", "Hold": "Training"}
    odd = frame.gather_every(7).with_columns(pl.col("Activity").replace(spelled))
    tied = frame.gather_every(11, offset=3).with_columns(pl.lit("Hold").alias("Activity"))
    lonely = pl.DataFrame({"AgentId": ["lonely"] * 2,
                           "EventTime": ["2024-11-02 20:00:00.000", "2024-11-04 09:30:00.000"],
                           "Activity": ["Ready", "LoggedOut"], "ReasonCode": [None, None]})
    frame = pl.concat([frame.filter(pl.int_range(pl.len()) % 7 != 0), odd, frame.gather_every(13), tied, lonely])
    frame.sample(fraction=1.0, shuffle=True, seed=1).write_csv(path)
    rows = frame.height
    g_out, d_out = _child.fresh("check-gisgate"), _child.fresh("check-duckdb")
    _child.run("gisgate", gisgate_argv(path, g_out), g_out, keep=True)
    duckdb_states(path, d_out)
    g = gis_agent_rows(g_out)
    d = pl.read_csv(d_out / "agent.csv", schema_overrides={"acdAgentId": pl.String, "acdServiceId": pl.String})
    d = d.with_columns(pl.col("intervalStart").str.to_datetime(time_zone="UTC").dt.epoch("us").alias("iv"))
    cols = ["totalUnproratedReadyWaitingSeconds", "totalUnproratedNotReadyBusySeconds",
            "totalUnproratedInSessionSeconds"]
    both = g.join(d, on=["iv", "acdAgentId"], how="full", suffix="_d", coalesce=True)
    unmatched = both.filter(pl.col(cols[0]).is_null() | pl.col(cols[0] + "_d").is_null()).height
    worst = both.select(pl.max_horizontal((pl.col(c) - pl.col(c + "_d")).abs().max() for c in cols)).item()
    gt, dt = g.select(pl.col(cols).sum()).row(0), d.select(pl.col(cols).sum()).row(0)
    print(f"check on {rows:,} events: gisgate {g.height:,} AGENT rows, duckdb {d.height:,}; unmatched {unmatched}; "
          f"largest difference {worst:.6f} s")
    for c, a, b in zip(["ready", "not ready", "in session"], gt, dt, strict=True):
        print(f"  {c:10s} gisgate {a:16,.3f} s   duckdb {b:16,.3f} s   difference {a - b:+.3f} s")
    for f in (g_out, d_out):
        shutil.rmtree(f, ignore_errors=True)
    path.unlink()
    if unmatched or worst > 0.0011 or any(abs(a - b) > 0.001 * g.height for a, b in zip(gt, dt, strict=True)):
        raise SystemExit("DuckDB and gisgate disagree: the comparison would not be honest")


# --- runs ------------------------------------------------------------------------------------------------


def parse_count(text: str) -> int:
    return int(float(text[:-1]) * 1e6) if text.upper().endswith("M") else int(float(text))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--job", nargs=3, metavar=("NAME", "IN", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--events", default="2M", help="state events to generate (default 2M)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of floor, gisgate and duckdb")
    ap.add_argument("--pandas", action="store_true", help="also run the pandas implementation once (slow)")
    _child.add_round_options(ap)
    ap.add_argument("--check-events", default="50000", help="events of the DuckDB-vs-gisgate check run")
    ap.add_argument("--check-only", action="store_true")
    a = ap.parse_args()
    if a.job:
        job(a.job[0], Path(a.job[1]), Path(a.job[2]))
        return
    compileall.compile_dir(_child.REPO / "gisgate", quiet=1)
    data = Path(tempfile.mkdtemp(prefix="gisgate-bench-states-"))
    try:
        check(data, parse_count(a.check_events))
        if a.check_only:
            return
        path = data / "agent_updates.csv"
        rows = generate(path, parse_count(a.events))
        print(f"{rows:,} events, {path.stat().st_size / 1e6:.0f} MB; outputs in {_child.RAM}")
        me = [sys.executable, str(Path(__file__).resolve())]
        jobs = {
            "floor": lambda out: [sys.executable, "-c", FLOOR, str(path), str(out)],
            "gisgate": lambda out: gisgate_argv(path, out),
            "duckdb": lambda out: [*me, "--job", "duckdb", str(path), str(out)],
        }
        names = list(jobs)
        def run_one(name: str, k: int) -> _child.Run:
            out = _child.RAM / f"gisgate-bench-out-{name}"
            r = _child.run(name, jobs[name](out), out, trace=a.trace)
            print(f"  {name:8s} {r.seconds:7.2f} s  {r.cpu:6.2f} CPU s   peak {r.peak / _child.GIB:6.2f} GiB   "
                  f"{r.files} files   "
                  f"(other processes: {r.others:.0%} CPU)", flush=True)
            if r.trace:
                print(_child.timeline(r))
            return r

        # rotate who goes first
        runs = _child.rounds(a.repeat, lambda k: names[k % 3:] + names[:k % 3], run_one, wait=not a.no_wait,
                             max_others=a.max_others, patience=a.patience)
        pandas = None
        if a.pandas:
            out = _child.RAM / "gisgate-bench-out-pandas"
            pandas = _child.run("pandas", [*me, "--job", "pandas", str(path), str(out)], out)
            print(f"  pandas   {pandas.seconds:7.2f} s   peak {pandas.peak / _child.GIB:6.2f} GiB   "
                  f"{pandas.files} files")
    finally:
        shutil.rmtree(data, ignore_errors=True)
    report(runs, pandas)


def report(runs: dict[str, list[_child.Run]], pandas: _child.Run | None) -> None:
    med, gib = statistics.median, _child.GIB
    f, g, d = runs["floor"], runs["gisgate"], runs["duckdb"]
    print("round   floor s  gisgate s  duckdb s  gisgate/duckdb  gisgate/floor   floor GiB  gisgate GiB  duckdb GiB  "
          "gisgate/duckdb")
    for k, (fr, gr, dr) in enumerate(zip(f, g, d, strict=True), start=1):
        print(f"{k:5d}  {fr.seconds:8.2f}  {gr.seconds:9.2f}  {dr.seconds:8.2f}  {gr.seconds / dr.seconds:14.2f}  "
              f"{gr.seconds / fr.seconds:13.2f}   {fr.peak / gib:9.2f}  {gr.peak / gib:11.2f}  {dr.peak / gib:10.2f}  "
              f"{gr.peak / dr.peak:14.2f}")
    td = med(gr.seconds / dr.seconds for gr, dr in zip(g, d, strict=True))
    tf = med(gr.seconds / fr.seconds for gr, fr in zip(g, f, strict=True))
    md = med(gr.peak / dr.peak for gr, dr in zip(g, d, strict=True))
    t = [med(r.seconds for r in rs) for rs in (f, g, d)]
    print(f"median {t[0]:8.2f}  {t[1]:9.2f}  {t[2]:8.2f}  "
          f"{td:14.2f}  {tf:13.2f}   {med(r.peak for r in f) / gib:9.2f}  {med(r.peak for r in g) / gib:11.2f}  "
          f"{med(r.peak for r in d) / gib:10.2f}  {md:14.2f}")
    cd = med(gr.cpu / dr.cpu for gr, dr in zip(g, d, strict=True))
    print(f"CPU seconds, gisgate / duckdb: {cd:.2f}x "
          f"(medians {med(r.cpu for r in g):.2f} and {med(r.cpu for r in d):.2f})")
    print(f"gisgate / duckdb: time {td:.2f}x (target <= 1.0x), memory {md:.2f}x (target <= 1.0x)")
    if pandas is not None:
        print(f"pandas / gisgate time: {pandas.seconds / med(r.seconds for r in g):.1f}x")


if __name__ == "__main__":
    main()
