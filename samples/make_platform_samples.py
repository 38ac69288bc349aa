"""Write the platform sample cases (samples/<case>/input + job.toml + gisgate.toml) from one simulated day.

    python samples/make_platform_samples.py              # inputs only
    python samples/make_platform_samples.py --expected   # and (re)generate expected/ with `gisgate convert`

One deterministic simulation (agents logging in, taking calls, breaks, an unknown status, logging
out; callers abandoning) on the America/New_York fall-back day, 2024-11-03 00:30 EDT to 03:00 EST,
is serialised in each platform's own shape with `json`/`csv` (never copied from vendor docs):

    talkdesk         user_status CSV (a duplicated row, a row split in two) + contacts JSON  → gis
    talkdesk-cwfm    the same inputs                                                        → cwfm
    livevox          two agent-event feed pages (overlapping, out of order, ms numbers, ms
                     strings and epoch-second strings) + interaction events with offsets     → gis
    livevox-rtstate  the agent-event pages                                                  → rtstate
    linklive         userStates (three-field and composite, s and ms epochs) +
                     queueEngagementIntervals                                               → gis
    cwfm             CallVolumeUpdates JSON (string numbers, M/D/YYYY dates) + AgentUpdates CSV → gis

`truth.json` in each case holds what the simulation knows (answered contacts, logged-in seconds
per agent) so tests can tie the outputs back to the inputs.
"""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
NY = ZoneInfo("America/New_York")
START = datetime(2024, 11, 3, 4, 30, tzinfo=UTC)  # 00:30 EDT
END = datetime(2024, 11, 3, 8, 0, tzinfo=UTC)  # 03:00 EST (the 01:00 hour happens twice)
QUEUES = ["billing", "support"]
AGENTS = ["5f2a11", "5f2a12", "5f2a13", "5f2a14", "td7c21"]  # Talkdesk-like user ids
AGENT_IDS = {"5f2a11": "1001", "5f2a12": "1002", "5f2a13": "1003", "5f2a14": "1004"}  # td7c21 unmapped
SERVICE_IDS = {"billing": "101", "support": "102"}


@dataclass
class Call:
    id: str
    queue: str
    arrived: datetime
    answered: datetime | None = None
    ended: datetime | None = None  # end of talk (+hold); ACW follows
    talk: int = 0
    hold: int = 0
    acw: int = 0
    agent: str | None = None
    outcome: str = "answered"  # answered | abandoned | short_abandoned | missed | outbound
    transferred: bool = False


@dataclass
class Day:
    segments: dict[str, list[tuple[str, datetime, datetime]]] = field(default_factory=dict)  # agent → (kind,s,e)
    calls: list[Call] = field(default_factory=list)


def simulate(seed: int = 20241103) -> Day:
    rng = random.Random(seed)
    day = Day()
    n = 0
    for i, agent in enumerate(AGENTS):
        t = START + timedelta(minutes=7 * i, seconds=rng.randint(0, 59))
        stop = END - timedelta(minutes=rng.randint(12, 30))  # calls end before END
        segs: list[tuple[str, datetime, datetime]] = []
        pause_done = i != 2  # agent 3 logs out for 20 minutes in the middle
        while t < stop:
            kind = rng.choices(["call", "away", "break", "unknown"], [0.75, 0.1, 0.1, 0.05])[0]
            ready = timedelta(seconds=rng.randint(20, 240), milliseconds=rng.choice([0, 0, 250, 500]))
            segs.append(("READY", t, min(t + ready, stop)))
            t += ready
            if t >= stop:
                break
            if kind == "call":
                n += 1
                talk, hold, acw = rng.randint(40, 500), rng.choice([0, 0, 0, 20, 45]), rng.choice([0, 15, 30, 60])
                outbound = rng.random() < 0.1
                wait = 0 if outbound else min(rng.randint(2, 50), int((t - START).total_seconds()))
                call = Call(
                    f"c{n:04d}",
                    "" if outbound else rng.choice(QUEUES),
                    t - timedelta(seconds=wait),
                    t,
                    t + timedelta(seconds=talk + hold),
                    talk,
                    hold,
                    acw,
                    agent,
                    "outbound" if outbound else "answered",
                    transferred=rng.random() < 0.08,
                )
                day.calls.append(call)
                segs.append(("TALK", t, call.ended))
                t = call.ended
                if acw:
                    segs.append(("ACW", t, t + timedelta(seconds=acw)))
                    t += timedelta(seconds=acw)
            else:
                length = timedelta(seconds=rng.randint(60, 600))
                segs.append((kind.upper(), t, t + length))
                t += length
            if not pause_done and t > START + timedelta(hours=1, minutes=30):
                segs.append(("LOGOUT", t, t + timedelta(minutes=20)))
                t += timedelta(minutes=20)
                pause_done = True
        end = segs[-1][2]
        segs.append(("LOGOUT", end, END))
        day.segments[agent] = segs
    # callers who never reached an agent
    for _ in range(30):
        n += 1
        arrived = START + timedelta(seconds=rng.randint(0, int((END - START).total_seconds()) - 200))
        outcome = rng.choices(["abandoned", "short_abandoned", "missed"], [0.6, 0.2, 0.2])[0]
        wait = rng.randint(1, 4) if outcome == "short_abandoned" else rng.randint(10, 180)
        day.calls.append(
            Call(f"c{n:04d}", rng.choice(QUEUES), arrived, None, arrived + timedelta(seconds=wait), outcome=outcome)
        )
    day.calls.sort(key=lambda c: (c.arrived, c.id))
    return day


def naive(t: datetime | None) -> str:
    return "None" if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso_local(t: datetime) -> str:
    return t.astimezone(NY).isoformat(timespec="milliseconds")


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def csv_text(rows: list[dict], newline: str = "\r\n") -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator=newline)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")


def job(case: Path, args: list[str], config: str, about: str) -> None:
    """job.toml: the inputs (relative to the case) and the arguments, run from the case folder
    (`--config gisgate.toml` holds the case's mapping tables)."""
    inputs = sorted(f"input/{p.name}" for p in (case / "input").iterdir())
    args = ["--tz", "America/New_York", *args]
    write(case / "job.toml", f"# {about}\ninputs = {json.dumps(inputs)}\nargs = {json.dumps(args)}\n")
    write(case / "gisgate.toml", config)


def truth(case: Path, day: Day, logged: dict[str, float]) -> None:
    answered = sum(1 for c in day.calls if c.outcome == "answered")
    write(
        case / "truth.json",
        json.dumps({"answered_contacts": answered, "logged_in_seconds": logged}, indent=2, sort_keys=True) + "\n",
    )


def logged_in(day: Day, ids: dict[str, str] | None = None, whole_seconds: bool = False) -> dict[str, float]:
    """Logged-in seconds per agent, as the serialised input says (`whole_seconds`: times written without ms)."""

    def cut(t: datetime) -> datetime:
        return t.replace(microsecond=0) if whole_seconds else t

    out = {}
    for agent, segs in day.segments.items():
        secs = sum((cut(e) - cut(s)).total_seconds() for k, s, e in segs if k != "LOGOUT")
        out[(ids or {}).get(agent, agent)] = round(secs, 3)
    return out


TALKDESK_LABELS = {
    "READY": "Available",
    "TALK": "On a Call",
    "ACW": "After Call Work",
    "AWAY": "Away",
    "BREAK": "Break",
    "UNKNOWN": "Coaching Session",
    "LOGOUT": "Offline",
}
MAPPING = (
    "[mapping]\n"
    f"agents = {{ {', '.join(f'{k} = {json.dumps(v)}' for k, v in AGENT_IDS.items())} }}\n"
    f"services = {{ {', '.join(f'{k} = {json.dumps(v)}' for k, v in SERVICE_IDS.items())} }}\n"
)
ACD = '[acd]\ntimezone = "America/New_York"\ninterval_minutes = 15\n\n'


def talkdesk(day: Day, case: Path, to: str) -> None:
    rows = []
    for agent, segs in day.segments.items():
        team = "Team A" if agent < "5f2a13" else "Team B"
        for k, s, e in segs:
            row = {
                "user_id": agent,
                "user_name": f"Agent {agent[-2:]}",
                "user_email": f"{agent}@example.com",
                "status_label": TALKDESK_LABELS[k],
                "status_start_at": naive(s),
                "status_end_at": naive(e),
                "status_time": int((e - s).total_seconds()),
                "is_user_active": "true",
                "team_id": team[-1],
                "team_name": team,
                "ring_groups": json.dumps(QUEUES),
            }
            if k == "BREAK" and (e - s).total_seconds() > 120:  # split at a "team change": end = next start
                mid = s + (e - s) / 2
                rows.append(row | {"status_end_at": naive(mid), "status_time": int((mid - s).total_seconds())})
                row = row | {"status_start_at": naive(mid), "status_time": int((e - mid).total_seconds())}
            rows.append(row)
    rows.insert(7, dict(rows[6]))  # the duplicated row Talkdesk sends at month/team/campaign changes
    write(case / "input" / "user_status.csv", csv_text(rows))
    entries = []
    for c in day.calls:
        out = c.outcome == "outbound"
        types = {
            "answered": "Answered",
            "abandoned": "Abandoned",
            "short_abandoned": "Short Abandoned",
            "missed": "Voicemail",
            "outbound": "Outbound Connected",
        }
        entries.append(
            {
                "interaction_id": f"i-{c.id}",
                "contact_id": c.id,
                "company_number": "+18005550100",
                "contact_person_number": "+12125550123",
                "direction": "OUT" if out else "IN",
                "contact_type": types[c.outcome],
                "started_at": naive(c.arrived),
                "answered_at": naive(c.answered),
                "finished_at": naive(c.ended),
                "wait_time": int(((c.answered or c.ended) - c.arrived).total_seconds()),
                "talk_time": c.talk,
                "hold_time": c.hold,
                "after_call_work_time": c.acw,
                "duration": int((c.ended - c.arrived).total_seconds()) + c.acw,
                "handle_time": c.talk + c.hold + c.acw,
                "inside_business_hours": "Yes",
                "within_service_level_threshold": "Yes"
                if (c.answered and (c.answered - c.arrived).total_seconds() <= 20)
                else "No",
                "transfer_out": "Yes" if c.transferred else "No",
                "transfer_in": "No",
                "callback": "None",
                "ring_groups": json.dumps([c.queue]) if c.queue else "None",
                "handling_ring_groups": c.queue if c.queue and c.agent else "None",
                "user_id": c.agent or "None",
                "user_name": f"Agent {c.agent[-2:]}" if c.agent else "None",
            }
        )
    body = {"type": "contacts", "version": "v1", "total": len(entries), "entries": entries}
    write(case / "input" / "contacts.json", json.dumps(body, indent=1) + "\n")
    job(case, ["--from", "talkdesk", "--to", to, "--config", "gisgate.toml"], ACD + MAPPING,
        f"Talkdesk user_status CSV + contacts JSON on the New York fall-back day → {to}.")
    truth(case, day, logged_in(day, AGENT_IDS, whole_seconds=True))


LIVEVOX_EVENTS = {
    "READY": ("READY", None),
    "TALK": ("IN_CALL", None),
    "ACW": ("WRAPUP", None),
    "AWAY": ("NOT_READY", "OTHER"),
    "BREAK": ("NOT_READY", "BREAK"),
    "UNKNOWN": ("COACHING", None),
    "LOGOUT": ("LOGOFF", None),
}


def livevox_agent_pages(day: Day, rng: random.Random) -> list[dict]:
    events = []
    for n, (agent, segs) in enumerate(day.segments.items()):
        numeric = 70100 + n
        login = AGENT_IDS.get(agent, agent).replace("100", "AG")  # AG1, AG2, ...; td7c21 stays
        first = True
        for k, s, _ in segs:
            if k != "LOGOUT" and first:
                events.append((s, numeric, login, "LOGON", None))
                first = False
            kind, reason = LIVEVOX_EVENTS[k]
            events.append((s, numeric, login, kind, reason))
            first = first or k == "LOGOUT"
    events.sort(key=lambda e: (e[0], e[1]))
    records = []
    for seq, (t, numeric, login, kind, reason) in enumerate(events, start=1):
        stamp: object = ms(t)
        if seq % 11 == 0:
            stamp = str(ms(t))  # epoch ms as a string
        if seq % 17 == 0 and t.microsecond == 0:
            stamp = str(int(t.timestamp()))  # epoch seconds as a string
        rec = {
            "timestamp": stamp,
            "clientId": 93119,
            "agentId": numeric,
            "agentLoginId": login,
            "agentServiceId": 5501,
            "agentTeamId": 12,
            "lineNumber": "ACD",
            "eventType": kind,
            "notReadyReasonCode": reason,
            "seqNum": seq,
            "eventId": f"cid=93119:aid={numeric}:seq={seq}",
        }
        if reason is None:
            del rec["notReadyReasonCode"]
        records.append(rec)
    half = len(records) // 2
    pages = [records[: half + 5], records[half:]]  # pages overlap by five events
    for page in pages:  # events arrive slightly out of order inside a page
        for i in range(0, len(page) - 1, 9):
            page[i], page[i + 1] = page[i + 1], page[i]
    return [{"agentEvent": page, "token": f"{rng.getrandbits(128):032x}"} for page in pages]


def livevox(day: Day, case: Path, to: str) -> None:
    rng = random.Random(7)
    for i, page in enumerate(livevox_agent_pages(day, rng), start=1):
        write(case / "input" / f"agent_events_{i}.json", json.dumps(page, indent=1) + "\n")
    if to == "gis":
        events = []
        login = {a: AGENT_IDS.get(a, a).replace("100", "AG") for a in AGENTS}
        for c in day.calls:
            if c.outcome in ("outbound", "short_abandoned", "missed"):
                continue
            service = SERVICE_IDS[c.queue]
            common = {
                "interactionType": "VOICE",
                "transactionId": f"T{c.id}",
                "sessionId": f"S{c.id}",
                "clientId": "93119",
                "serviceId": service if len(events) % 2 else int(service),
            }
            events.append(common | {"callEventType": "CALL_START", "start": iso_local(c.arrived)})
            end = c.ended if c.agent else c.ended
            term = common | {
                "callEventType": "CALL_TERMINATION",
                "start": iso_local(c.arrived),
                "end": iso_local(end) if len(events) % 3 else end.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "duration": c.talk + c.hold if c.agent else 0,
                "serviceLevelThreshold": 20,
            }
            if c.agent:
                term |= {"agentLoginId": login[c.agent], "agentId": str(70100 + AGENTS.index(c.agent))}
            events.append(term)
            if c.agent:
                events.append(
                    common
                    | {
                        "callEventType": "CALL_DISPOSITION",
                        "start": iso_local(c.arrived),
                        "agentLoginId": login[c.agent],
                    }
                )
        events.append(
            {
                "interactionType": "VOICE",
                "transactionId": "Tlive",
                "clientId": "93119",
                "serviceId": "101",
                "callEventType": "CALL_START",
                "start": iso_local(END - timedelta(seconds=40)),
            }
        )
        write(case / "input" / "interaction_events.json", json.dumps({"events": events}, indent=1) + "\n")
    login_map = {AGENT_IDS.get(a, a).replace("100", "AG"): AGENT_IDS.get(a, a) for a in AGENTS}
    job(
        case,
        ["--from", "livevox", "--to", to, "--config", "gisgate.toml", "--until", END.isoformat()],
        ACD + "[mapping]\n" + f"agents = {{ {', '.join(f'{k} = {json.dumps(v)}' for k, v in login_map.items())} }}\n",
        f"LiveVox agent-event pages (overlapping, out of order, mixed epochs) + interaction events → {to}.",
    )
    truth(case, day, logged_in(day, AGENT_IDS))


LINKLIVE = {
    "READY": "online_available_not_allocated",
    "TALK": "online_available_fully_allocated",
    "ACW": "online_available_partially_allocated",
    "AWAY": "online_unavailable_not_allocated",
    "BREAK": "busy_unavailable_not_allocated",
    "UNKNOWN": "dnd_unavailable_not_allocated",
    "LOGOUT": "offline_unavailable_not_allocated",
}


def queued_calls(day: Day) -> dict[tuple[str, datetime], list]:
    """The day's queued calls (short abandons left out) by queue and 15-minute window of arrival;
    every window from START to END of every queue is present, empty or not."""
    step = timedelta(minutes=15)
    windows: dict[tuple[str, datetime], list] = {(q, START + i * step): [] for i in range((END - START) // step)
                                                  for q in QUEUES}
    for c in day.calls:
        if c.queue and c.outcome != "short_abandoned":
            windows[(c.queue, START + (c.arrived - START) // step * step)].append(c)
    return windows


def linklive(day: Day, case: Path) -> None:
    states = []
    for n, (agent, segs) in enumerate(day.segments.items()):
        for i, (k, s, _) in enumerate(segs):
            composite = LINKLIVE[k]
            if k == "LOGOUT" and n == 1:
                composite = "offline_unavailable_partially_allocatedAvailable"  # malformed, as in the docs
            stamp = int(s.timestamp()) if s.microsecond == 0 and i % 2 else ms(s)
            rec = {"userId": f"u-{agent}", "startTimestamp": stamp}
            if i % 3:
                p, a, alloc = composite.split("_", 2)
                rec |= {"presenceStatus": p, "activity": a, "allocationStatus": alloc}
            else:
                rec["status"] = composite
            states.append(rec)
    write(
        case / "input" / "user_states.json",
        json.dumps({"organizationId": "org_123", "userStates": states}, indent=1) + "\n",
    )
    rows = [
        {
            "queueId": f"q-{q}",
            "intervalStart": int(t.timestamp()),
            "enqueuedCount": len(calls),
            "abandonedCount": sum(c.outcome in ("abandoned", "missed") for c in calls),
            "totalHandleTimeMs": sum((c.talk + c.hold + c.acw) * 1000 for c in calls),
        }
        for (q, t), calls in sorted(queued_calls(day).items())
    ]
    write(
        case / "input" / "queue_intervals.json",
        json.dumps({"organizationId": "org_123", "queueEngagementIntervals": rows}, indent=1) + "\n",
    )
    agents = {f"u-{a}": v for a, v in AGENT_IDS.items()}
    config = (
        ACD
        + "[mapping]\n"
        + f"agents = {{ {', '.join(f'{json.dumps(k)} = {json.dumps(v)}' for k, v in agents.items())} }}\n"
        + 'services = { "q-billing" = "101", "q-support" = "102" }\n'
        + 'home_queue = { "1001" = "101", "1002" = "102" }\n'
    )
    job(
        case,
        ["--from", "linklive", "--config", "gisgate.toml", "--service", "101", "--until", END.isoformat()],
        config,
        "LinkLive userStates (three-field and composite, s and ms epochs) + queueEngagementIntervals → gis.",
    )
    truth(case, day, {agents.get(f"u-{a}", f"u-{a}"): v for a, v in logged_in(day).items()})


CWFM_ACTIVITY = {
    "READY": "Ready",
    "TALK": "OnCall",
    "ACW": "WRAPUP",
    "AWAY": "NotReady",
    "BREAK": "notready",
    "UNKNOWN": "Coaching",
    "LOGOUT": "LoggedOut",
}


def cwfm(day: Day, case: Path) -> None:
    def within_20s(c) -> bool:
        return bool(c.answered and (c.answered - c.arrived).total_seconds() <= 20)

    updates = [
        {
            "UpdateExisting": "false",
            "CollectionPoint": SERVICE_IDS[q],
            "Interval": f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}:00",
            "ContactsOffered": str(len(calls)),
            "ContactsNotHandled": str(sum(c.outcome != "answered" for c in calls)),
            "TalkTime": str(sum(c.talk + c.acw for c in calls)),
            "HoldTime": str(sum(c.hold for c in calls)),
            "ServiceLevelPct": f"{100 * sum(map(within_20s, calls)) / len(calls):.1f}" if calls else "0",
        }
        for (q, t), calls in sorted(queued_calls(day).items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
    write(
        case / "input" / "call_volume.json",
        json.dumps({"AccountId": "1", "CallVolumeUpdates": updates}, indent=1) + "\n",
    )
    rows = []
    for n, (agent, segs) in enumerate(day.segments.items()):
        for i, (k, s, _) in enumerate(segs):
            when = (
                f"{s.month}/{s.day}/{s.year} {s.hour}:{s.minute:02d}:{s.second:02d}"
                if i % 2
                else s.strftime("%Y-%m-%d %H:%M:%S")
            )
            rows.append(
                {
                    "AgentId": AGENT_IDS.get(agent, str(2000 + n)),
                    "EventTime": when,
                    "Activity": CWFM_ACTIVITY[k],
                    "ReasonCode": "Break" if k == "BREAK" else "",
                }
            )
    write(case / "input" / "agent_updates.csv", csv_text(rows))
    job(
        case,
        ["--from", "cwfm", "--config", "gisgate.toml", "--service", "101", "--until", END.isoformat()],
        ACD,
        "CommunityWFM CallVolumeUpdates JSON (string numbers, M/D/YYYY dates) + AgentUpdates CSV → gis.",
    )
    logged = logged_in(day, whole_seconds=True)
    truth(case, day, {AGENT_IDS.get(a, str(2000 + n)): logged[a] for n, a in enumerate(AGENTS)})


CASES = {
    "talkdesk": lambda d, c: talkdesk(d, c, "gis"),
    "talkdesk-cwfm": lambda d, c: talkdesk(d, c, "cwfm"),
    "livevox": lambda d, c: livevox(d, c, "gis"),
    "livevox-rtstate": lambda d, c: livevox(d, c, "rtstate"),
    "linklive": linklive,
    "cwfm": cwfm,
}


def expected(case: Path) -> None:
    """Run the real `gisgate convert` on the case and keep its outputs as the golden files."""
    import tomllib

    spec = tomllib.loads((case / "job.toml").read_text())
    out = case / "expected"
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "gisgate", "convert", *spec["inputs"], "--out", "expected", "-q",
                    *spec["args"]], check=True, cwd=case)


def main() -> None:
    day = simulate()
    for name, make in CASES.items():
        case = HERE / name
        shutil.rmtree(case / "input", ignore_errors=True)
        make(day, case)
        if "--expected" in sys.argv:
            expected(case)


if __name__ == "__main__":
    main()
