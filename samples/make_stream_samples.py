"""Write the stream sample cases (samples/stream-<case>/) from the shipped samples.

    python samples/make_stream_samples.py              # drops/, whole/, gisgate.toml, stream.toml
    python samples/make_stream_samples.py --expected   # and (re)generate expected/ with one `gisgate convert`

A stream case is a route fed in pieces: `drops/` holds the files a partner drops, named in arrival
order (`01-…`, `02-…`); `stream.toml` says what the case shows, which drops each `gisgate watch --once`
run finds in the inbox, and `whole`, the data of all the drops as one conversion reads it (the
shipped sample's inputs, or for corrections the latest row per key); `expected/` is what one
`gisgate convert` of `whole` writes, and what the gateway's folder target must end up holding
(tests/test_stream_samples.py checks both).

    stream-cwfm                 the issue's own example: samples/cwfm AgentUpdates cut in two at
                                06:07:00 UTC (inside the second, EST 01:00 hour), events before /
                                from that instant
    stream-talkdesk             samples/talkdesk user_status as two exports cut at 05:37:41 UTC
                                (a status running at the cut truncated there in the first, whole in
                                the second), contacts in three overlapping windows, out of order
    stream-generic-corrections  samples/generic-ny-fallback rows cut inside the repeated hour, then
                                corrections of some rows (EDT and EST 01:15 among them), and one
                                correction taken back in a later file
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from stream_check import csv_rows, csv_text, naive_utc  # noqa: E402  (the cutting helpers the tests use)

GATEWAY = """\
[acd]
timezone = "America/New_York"
interval_minutes = 15
{mapping}
[watch]
converters = 0                 # in-process: a few small drops need no converter processes
reports = false

[[route]]
name = "partner"
format = "{fmt}"
outputs = ["gis"]
targets = ["dataserver"]
# stream = true (the default): every drop merged into the route's state, changed intervals sent again
# hold_minutes = 20, stream_days = 2, corrections = true

[target.dataserver]
kind = "folder"
path = "dataserver"
"""


def inline(table: dict[str, str]) -> str:
    return "{ " + ", ".join(f'{k} = "{v}"' for k, v in table.items()) + " }"


def fresh(case: Path) -> None:
    for sub in ("drops", "whole"):
        shutil.rmtree(case / sub, ignore_errors=True)
    (case / "drops").mkdir(parents=True)


def write_case(case: Path, fmt: str, mapping: str, spec: str, drops: dict[str, str]) -> None:
    fresh(case)
    for name, text in drops.items():
        (case / "drops" / name).write_text(text)
    (case / "gisgate.toml").write_text(GATEWAY.format(fmt=fmt, mapping=mapping))
    (case / "stream.toml").write_text(spec)


def stream_cwfm() -> None:
    case = HERE / "stream-cwfm"
    header, rows = csv_rows(HERE / "cwfm" / "input" / "agent_updates.csv")
    cut = datetime(2024, 11, 3, 6, 7, tzinfo=UTC)
    write_case(case, "cwfm", '\n[mapping]\ndefault_service = "101"      # as --service 101 in samples/cwfm\n', '''\
# The issue's own example: samples/cwfm's AgentUpdates cut in two at 06:07:00 UTC (01:07 EST, inside the
# repeated hour), the events before that instant in the first drop, those from it in the second, each
# drop taken by its own gateway run. The agents' states running at the cut are continued by the second
# drop: the intervals the first run sent up to its latest event are sent again where they changed.
shows = "events cut inside an interval and inside the repeated 01:00 hour"
whole = ["../cwfm/input/agent_updates.csv"]
convert = ["--from", "cwfm", "--config", "gisgate.toml"]   # no --until: open spans end at the latest event
runs = [["01-agent_updates-before-0607Z.csv"], ["02-agent_updates-from-0607Z.csv"]]
''', {"01-agent_updates-before-0607Z.csv": csv_text(header, [r for r in rows if naive_utc(r["EventTime"]) < cut]),
      "02-agent_updates-from-0607Z.csv": csv_text(header, [r for r in rows if naive_utc(r["EventTime"]) >= cut])})


def stream_talkdesk() -> None:
    case = HERE / "stream-talkdesk"
    src = HERE / "talkdesk" / "input"
    header, rows = csv_rows(src / "user_status.csv")
    cut = datetime(2024, 11, 3, 5, 37, 41, tzinfo=UTC)
    first, second = [], []
    for r in rows:
        start = naive_utc(r["status_start_at"])
        end = naive_utc(r["status_end_at"]) if r["status_end_at"] else None
        if start < cut:  # the first export ends at the cut: a status running then is cut there
            first.append(dict(r, status_end_at=f"{cut:%Y-%m-%d %H:%M:%S}",
                              status_time=str(int((cut - start).total_seconds()))) if end is None or end > cut else r)
        if end is None or end > cut:  # the second export holds every status still running after the cut, whole
            second.append(r)
    doc = json.loads((src / "contacts.json").read_text())

    def contacts(lo: datetime | None, hi: datetime | None) -> str:
        entries = [e for e in doc["entries"] if (lo is None or naive_utc(e["started_at"]) >= lo)
                   and (hi is None or naive_utc(e["started_at"]) < hi)]
        return json.dumps({**doc, "total": len(entries), "entries": entries}, indent=1) + "\n"

    t = lambda h, m: datetime(2024, 11, 3, h, m, tzinfo=UTC)  # noqa: E731
    mapping = tomllib.loads((HERE / "talkdesk" / "gisgate.toml").read_text())["mapping"]
    write_case(case, "talkdesk", "\n[mapping]\n" + "".join(f"{k} = {inline(v)}\n" for k, v in mapping.items()), '''\
# samples/talkdesk fed as a partner's hourly exports would come: user_status as two exports cut at 05:37:41
# UTC (a status running at the cut ends there in the first export and comes whole in the second: the stream
# keeps both and the whole one wins), contacts in three windows that overlap by 15 minutes (a contact in two
# windows counts once), the later windows arriving first.
shows = "a status cut by an export window meets its other part; overlapping contact windows; arrival out of order"
whole = ["../talkdesk/input/contacts.json", "../talkdesk/input/user_status.csv"]
convert = ["--from", "talkdesk", "--config", "gisgate.toml"]
runs = [["01-contacts-0605Z-end.json", "02-user_status-to-0537Z.csv"],
        ["03-contacts-0505Z-0620Z.json", "04-user_status-from-0537Z.csv"],
        ["05-contacts-start-0520Z.json"]]
''', {"01-contacts-0605Z-end.json": contacts(t(6, 5), None),
      "02-user_status-to-0537Z.csv": csv_text(header, first),
      "03-contacts-0505Z-0620Z.json": contacts(t(5, 5), t(6, 20)),
      "04-user_status-from-0537Z.csv": csv_text(header, second),
      "05-contacts-start-0520Z.json": contacts(None, t(5, 20))})


def stream_generic_corrections() -> None:
    case = HERE / "stream-generic-corrections"
    src = HERE / "generic-ny-fallback" / "input"
    sh, srows = csv_rows(src / "service.csv")
    ah, arows = csv_rows(src / "agent.csv")
    at = lambda r: datetime.fromisoformat(r["periodStart"])  # noqa: E731
    lo, cut, hi = (datetime.fromisoformat(s) for s in ("2024-11-03T00:00:00-04:00", "2024-11-03T01:30:00-05:00",
                                                       "2024-11-03T03:00:00-05:00"))
    service = [r for r in srows if lo <= at(r) < hi]
    agents = [r for r in arows if at(r) < datetime.fromisoformat("2024-11-03T09:00:00-05:00")]
    key = lambda r: (r["periodStart"], r.get("acdAgentId"), r["acdServiceId"])  # noqa: E731
    fixes = {("2024-11-03T01:15:00-04:00", "9912306"): {"contactsOffered": "11", "contactsAbandoned": "2"},
             ("2024-11-03T01:15:00-05:00", "9912306"): {"contactsOffered": "9", "contactsAbandoned": "1"},
             ("2024-11-03T02:00:00-05:00", "9912307"): {"contactsOffered": "3", "contactsAbandoned": "3"},
             ("2024-11-03T00:45:00-04:00", "9912307"): {"totalTalkSeconds": "999.5"}}
    fixed = [dict(r, **fixes[(r["periodStart"], r["acdServiceId"])]) for r in service
             if (r["periodStart"], r["acdServiceId"]) in fixes]
    back = [r for r in service if (r["periodStart"], r["acdServiceId"]) == ("2024-11-03T00:45:00-04:00", "9912307")]
    first_agent = agents[0]
    agent_fix = [dict(r, contactsHandled="2", totalTalkSeconds="420.5") for r in agents if key(r) == key(first_agent)]
    final = {key(r): r for r in [*service, *fixed, *back]}
    final_agents = {key(r): r for r in [*agents, *agent_fix]}
    write_case(case, "generic", "", '''\
# samples/generic-ny-fallback's rows from 00:00 EDT to 03:00 EST in pieces: the service rows cut inside the
# repeated hour (at 01:30 EST), the agent rows of 07:00-09:00 EST, then corrections: four service rows sent
# again with new values (01:15 EDT and 01:15 EST of 9912306 among them: two different intervals), one
# agent row, and finally the 00:45 EDT row of 9912307 sent again with its original values (a correction
# taken back). The latest row per key wins; the gateway sends each changed interval again.
shows = "interval rows cut inside the repeated hour, corrected, a correction taken back"
whole = ["whole/service.csv", "whole/agent.csv"]
convert = ["--from", "generic", "--config", "gisgate.toml"]
runs = [["01-service-to-0130EST.csv", "02-service-from-0130EST.csv", "03-agent.csv"],
        ["04-service-corrections.csv", "05-agent-correction.csv"],
        ["06-service-correction-taken-back.csv"]]
''', {"01-service-to-0130EST.csv": csv_text(sh, [r for r in service if at(r) < cut]),
      "02-service-from-0130EST.csv": csv_text(sh, [r for r in service if at(r) >= cut]),
      "03-agent.csv": csv_text(ah, agents),
      "04-service-corrections.csv": csv_text(sh, fixed),
      "05-agent-correction.csv": csv_text(ah, agent_fix),
      "06-service-correction-taken-back.csv": csv_text(sh, back)})
    (case / "whole").mkdir()
    (case / "whole" / "service.csv").write_text(csv_text(sh, list(final.values())))
    (case / "whole" / "agent.csv").write_text(csv_text(ah, list(final_agents.values())))


def expected(case: Path) -> None:
    """expected/ = one `gisgate convert` of the case's whole data."""
    spec = tomllib.loads((case / "stream.toml").read_text())
    shutil.rmtree(case / "expected", ignore_errors=True)
    subprocess.run([sys.executable, "-m", "gisgate", "convert", *spec["whole"], *spec["convert"], "--out", "expected",
                    "-q"], cwd=case, check=True)


def main() -> None:
    for make in (stream_cwfm, stream_talkdesk, stream_generic_corrections):
        make()
    if "--expected" in sys.argv:
        for case in sorted(HERE.glob("stream-*")):
            expected(case)


if __name__ == "__main__":
    main()
